"""``client.audio``: speech to text and text to speech."""

from __future__ import annotations

from ._base import AsyncResource

__all__ = ["AsyncAudio"]


class AsyncAudio(AsyncResource):
    """Speech to text and text to speech."""
