"""``client.feedbacks``: all feedback given on the app's messages."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncFeedbacks"]


class AsyncFeedbacks(AsyncResource):
    """All feedback given on the app's messages."""
