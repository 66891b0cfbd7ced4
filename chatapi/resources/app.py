"""``client.app``: the app's info, parameters, meta and site settings."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncApp"]


class AsyncApp(AsyncResource):
    """The app's info, parameters, meta and site settings."""
