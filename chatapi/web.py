"""Serving a chat stream to a browser as Server-Sent Events.

``AsyncChatStream.to_sse()`` (for ASGI servers and aiohttp.web) and ``ChatStream.to_sse()``
(for WSGI servers) turn a stream into the bytes of a ``text/event-stream`` response body.
This module holds what both share:

- **What goes out.** By default each event as Dify sent it (``data: {json}``) and Dify's
  ``event: ping`` keep-alives, so browser code written against Dify works unchanged. ``events``
  keeps only the named event types; ``transform`` maps each event to what should be sent
  instead (see :data:`SSEItem`) or to ``None`` to skip it.
- **How it ends.** A run that fails mid-stream cannot change the response status any more:
  the failure goes out as Dify's ``error`` event (an :class:`~chatapi.events.ErrorEvent`,
  through ``events`` and ``transform`` like any other event) and the body ends normally.
  Only Dify's own code, status and message are passed on; a connection problem on the Dify
  side is described generically (it is logged on the ``chatapi`` logger in full).
- **When the consumer goes away** (the browser disconnected: the server cancels the task,
  closes the iterator, or drops it), the run is stopped on the Dify server, with the same
  user, before the connection is released. The stop is shielded from the cancellation that
  caused it and bounded by :data:`STOP_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
import orjson

from ._serialize import Serializable
from .errors import (
    APIStatusError,
    APITimeoutError,
    ChatAPIError,
    IncompleteStreamError,
    StreamError,
)
from .events import ErrorEvent, PingEvent, StreamEvent
from .sse import ServerSentEvent

if TYPE_CHECKING:
    from .streaming import AsyncChatStream
    from .sync import ChatStream

__all__ = ["SSE_HEADERS", "STOP_TIMEOUT", "SSEItem", "Transform", "encode_sse"]

log = logging.getLogger("chatapi")

SSEItem = ServerSentEvent | Serializable | Mapping[str, Any] | str
"""What a ``transform`` may return for an event: a :class:`~chatapi.sse.ServerSentEvent`
(sent with its ``event``, ``id``, ``retry`` and ``data``), a chatapi event (as Dify sent it)
or model (its ``to_json()``), a mapping (as JSON), or a text (as the data)."""

Transform = Callable[[StreamEvent], SSEItem | None]

STOP_TIMEOUT = 10.0
"""Seconds a stop request may take once the consumer of ``to_sse()`` has gone away."""

SSE_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache",
        # nginx buffers proxied responses unless told otherwise: events would arrive in bursts.
        "X-Accel-Buffering": "no",
    }
)
"""Headers for a response whose body is ``to_sse()``."""

_PING = b"event: ping\n\n"
# Stops still running after the task that asked for them was cancelled by its own caller.
_detached_stops: set[asyncio.Task[None]] = set()


def _data_lines(text: str) -> bytes:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return b"".join(b"data: " + line.encode() + b"\n" for line in lines)


def _field(name: str, value: str) -> bytes:
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {name} cannot contain a line break: {value!r}")
    return f"{name}: {value}\n".encode()


def encode_sse(item: SSEItem) -> bytes:
    """Encode one item (see :data:`SSEItem`) as an SSE block, blank line included."""
    if isinstance(item, StreamEvent):
        if isinstance(item, PingEvent):
            return _PING
        kept = getattr(item, "_raw", None)
        if kept.__class__ is bytes:
            payload = kept  # the JSON exactly as Dify sent it, not yet parsed (see events)
        elif item.raw:
            payload = orjson.dumps(item.raw)
        else:
            payload = item.to_json().encode()
        return b"data: " + payload + b"\n\n"
    if isinstance(item, ServerSentEvent):
        head = b"" if item.event == "message" else _field("event", item.event)
        if item.id is not None:
            head += _field("id", item.id)
        if item.retry is not None:
            head += f"retry: {int(item.retry)}\n".encode()
        return head + _data_lines(item.data) + b"\n"
    if isinstance(item, str):
        return _data_lines(item) + b"\n"
    if isinstance(item, Serializable):
        return b"data: " + item.to_json().encode() + b"\n\n"
    if isinstance(item, Mapping):
        try:
            return b"data: " + orjson.dumps(item) + b"\n\n"
        except TypeError as exc:
            raise TypeError(f"cannot send this mapping as JSON in an SSE event: {exc}") from exc
    raise TypeError(
        "a to_sse() transform must return a ServerSentEvent, a chatapi event or model, a "
        f"mapping, a string or None; got {type(item).__name__}"
    )


def _error_event(exc: ChatAPIError, stream: AsyncChatStream) -> ErrorEvent:
    """The failure of a stream as the ``error`` event Dify sends for a failed run."""
    if isinstance(exc, StreamError):
        status, code, message = exc.status, exc.code, exc.message
    elif isinstance(exc, APIStatusError):
        status, code, message = exc.status_code, exc.code, exc.message
    elif isinstance(exc, APITimeoutError):
        status, code, message = 504, None, "the answer timed out"
    elif isinstance(exc, IncompleteStreamError):
        status, code, message = 502, None, "the answer was cut off"
    else:
        status, code, message = 502, None, "the answer failed"
    return ErrorEvent(
        task_id=stream.task_id,
        conversation_id=stream.conversation_id,
        message_id=stream.message_id,
        workflow_run_id=stream.workflow_run_id,
        status=status,
        code=code,
        message=message,
    )


class SSEEncoder:
    """Chooses, maps and encodes the events of one ``to_sse()`` call."""

    def __init__(
        self,
        *,
        events: Collection[str] | None,
        transform: Transform | None,
        pings: bool,
    ) -> None:
        if isinstance(events, str):
            raise TypeError("events must be a collection of event names, not one string")
        if events is not None and not all(isinstance(name, str) for name in events):
            raise TypeError("events must be a collection of event names (strings)")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self._events = frozenset(events) if events is not None else None
        self._transform = transform
        self.pings = pings

    def encode(self, event: StreamEvent) -> bytes | None:
        if isinstance(event, PingEvent):
            return _PING if self.pings else None
        if self._events is not None and event.event not in self._events:
            return None
        item = event if self._transform is None else self._transform(event)
        return None if item is None else encode_sse(item)

    def encode_failure(self, exc: ChatAPIError, stream: AsyncChatStream) -> bytes | None:
        if not isinstance(exc, StreamError):
            log.warning("re-streamed %r failed: %s", stream, exc)
        return self.encode(_error_event(exc, stream))


async def stop_within_limit(stream: AsyncChatStream, *, read_on: bool = True) -> None:
    """Stop the run (bounded by :data:`STOP_TIMEOUT`), log a failure, release the stream.

    A consumer may leave before the event carrying the run's task id was read (after the
    first keep-alive): unless another reader owns it (``read_on=False``), the stream, still
    intact, is then read on until the id is known.
    """
    try:
        with anyio.move_on_after(STOP_TIMEOUT):
            if read_on and stream.task_id is None and not stream.closed and not stream._failure:
                async for _ in stream:
                    if stream.task_id is not None:
                        break
            await stream.stop()
    except ChatAPIError as exc:
        log.warning("could not stop the run of %r: %s", stream, exc)
    finally:
        stream._release()


async def _stop_shielded(stream: AsyncChatStream) -> None:
    """Stop the run even though the calling task is being cancelled.

    anyio-style cancellation (Starlette) is held off by the shielded scope; a plain asyncio
    cancellation of this task interrupts only the wait, and the stop goes on in its own task.
    """
    task = asyncio.get_running_loop().create_task(stop_within_limit(stream))
    _detached_stops.add(task)
    task.add_done_callback(_detached_stops.discard)
    with anyio.CancelScope(shield=True):
        await asyncio.shield(task)


async def aiter_sse(stream: AsyncChatStream, encoder: SSEEncoder) -> AsyncIterator[bytes]:
    """The body of ``AsyncChatStream.to_sse()``."""
    over = False
    try:
        try:
            async for event in stream:
                chunk = encoder.encode(event)
                if chunk is not None:
                    yield chunk
            over = True
        except ChatAPIError as exc:
            # A failed run is over; a broken connection may have left it running.
            over = isinstance(exc, StreamError)
            chunk = encoder.encode_failure(exc, stream)
            if chunk is not None:
                yield chunk
    finally:
        if over:
            await stream.aclose()
        else:
            await _stop_shielded(stream)


def iter_sse(stream: ChatStream, encoder: SSEEncoder) -> Iterator[bytes]:
    """The body of ``ChatStream.to_sse()``; a WSGI server calls ``close()`` on disconnect."""
    over = False
    try:
        try:
            # Not ``for event in stream``: that iterator closes the stream when dropped,
            # before the ``finally`` below could stop the run.
            while (event := stream._next_event()) is not None:
                chunk = encoder.encode(event)
                if chunk is not None:
                    yield chunk
            over = True
        except ChatAPIError as exc:
            over = isinstance(exc, StreamError)
            chunk = encoder.encode_failure(exc, stream._stream)
            if chunk is not None:
                yield chunk
    finally:
        if over:
            stream.close()
        else:
            stream._stop_quietly()
