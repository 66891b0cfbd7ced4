"""``client.human_input``: read and submit the form of a run paused at a Human Input node."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncHumanInput"]


class AsyncHumanInput(AsyncResource):
    """Read and submit the form of a run paused at a Human Input node."""
