"""``client.conversations``: list, rename and delete conversations; their variables."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncConversations"]


class AsyncConversations(AsyncResource):
    """List, rename and delete conversations; their variables."""
