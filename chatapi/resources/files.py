"""``client.files``: upload files to attach to messages, and preview them."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncFiles"]


class AsyncFiles(AsyncResource):
    """Upload files to attach to messages, and preview them."""
