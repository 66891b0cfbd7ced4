"""Where optional instrumentation (:mod:`chatapi.otel`) plugs into the transport and streams.

Nothing here imports a tracing library. While :data:`tracer` is ``None`` (the default) the
transport pays one ``None`` check per call and a stream one when it opens and one when it
releases its connection; no chunk or event is looked at (the first answer text's time comes
from the stream's own timings). :mod:`chatapi.otel` installs a :class:`Tracer` when enabled.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .streaming import AsyncChatStream

__all__ = ["CallTrace", "Tracer", "take_stream_trace", "tracer"]


class CallTrace(Protocol):
    """One API call being traced: its retries, its outcome and, for a stream, its events."""

    resends: int

    def headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """The request headers with the trace context added."""

    def succeeded(self, status: int, result: Any) -> None:
        """A 2xx answer; ``result`` is the read response or, for a stream, the open one."""

    def failed(self, exc: BaseException) -> None:
        """The call raised (an error status, a transport failure, a cancellation)."""

    def stream_ended(self, stream: AsyncChatStream) -> None:
        """The stream released its connection, however it ended; called once or more."""


class Tracer(Protocol):
    def start(self, method: str, url: str, path: str, *, stream: bool) -> CallTrace: ...


tracer: Tracer | None = None
"""The installed tracer; ``None`` while tracing is off."""

# A streaming call's trace goes on with the stream that reads the response.
_stream_traces: weakref.WeakKeyDictionary[Any, CallTrace] = weakref.WeakKeyDictionary()


def hand_to_stream(response: Any, call: CallTrace) -> None:
    _stream_traces[response] = call


def take_stream_trace(response: Any) -> CallTrace | None:
    """The trace of the call that opened ``response``, for the stream reading it."""
    if not _stream_traces:
        return None
    return _stream_traces.pop(response, None)
