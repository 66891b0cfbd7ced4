"""``client.workflows``: Chatflow runs: details, logs, and the event stream of a run."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncWorkflows"]


class AsyncWorkflows(AsyncResource):
    """Chatflow runs: details, logs, and the event stream of a run."""
