"""``client.messages``: conversation history, feedback and suggested questions."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncMessages"]


class AsyncMessages(AsyncResource):
    """Conversation history, feedback and suggested questions."""
