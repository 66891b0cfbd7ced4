"""``client.end_users``: look up an end user by id."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncEndUsers"]


class AsyncEndUsers(AsyncResource):
    """Look up an end user by id."""
