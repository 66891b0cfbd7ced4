"""``client.annotations``: the app's annotated Q&A pairs and annotation reply."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncAnnotations"]


class AsyncAnnotations(AsyncResource):
    """The app's annotated Q&A pairs and annotation reply."""
