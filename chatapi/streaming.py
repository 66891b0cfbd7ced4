"""``AsyncChatStream``: typed events from a streaming response, and what they add up to.

The stream reads ``response.content.iter_any()`` chunk by chunk, feeds the sans-I/O
:class:`~chatapi.sse.SSEDecoder`, decodes each data block into a typed event and keeps the
state a caller wants afterwards: the run's ids, the answer so far, ``message_end`` metadata
and the pause details of a Human Input node.

When does a stream end? Dify versions disagree on the order of the closing events
(``message_end``, ``workflow_finished``, ``workflow_paused``, ``error``) and some keep the
socket open after them. So the stream ends at the end of the body, or as soon as every closer
its app mode sends has arrived (Chatflow: ``workflow_finished`` and ``message_end``; chat
apps: ``message_end``), or ``Timeout.close_grace`` after the first closer, whichever comes
first. A body that ends before any closer raises :class:`IncompleteStreamError`.

A run stopped through the client that reads it ends cleanly (``stream.stopped``), whichever
way Dify reports the stop: Dify has two stop paths that race, and 1.15 often answers a stop
with a ``failed`` ``workflow_finished`` ("Aborted: User requested stop"). The client's
:class:`StreamRegistry` lets ``chat.stop(task_id)`` mark the streams reading that task.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp

from ._config import Timeout
from ._http import translate_transport_error
from ._timings import StreamTimings
from ._trace import CallTrace, take_stream_trace
from .errors import (
    APITimeoutError,
    ChatAPIError,
    IncompleteStreamError,
    ResponseDecodeError,
    SSEDecodeError,
    StreamError,
    StreamIdleTimeoutError,
)
from .events import (
    PING,
    AgentMessageEvent,
    AgentThoughtEvent,
    ErrorEvent,
    HumanInputFormFilledEvent,
    MessageEndEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
    PingEvent,
    StreamEvent,
    TextChunkEvent,
    TextReplaceEvent,
    WorkflowFinishedEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
    decode_event,
)
from .models import ChatCompletion, MessageMetadata, WorkflowPausedData
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from .web import Transform

if sys.version_info >= (3, 11):
    from asyncio import timeout_at
else:  # pragma: no cover - aiohttp installs async-timeout on Python 3.10
    from async_timeout import timeout_at

__all__ = ["AsyncChatStream", "StreamRegistry"]

log = logging.getLogger("chatapi")

Opener = Callable[[], Awaitable[aiohttp.ClientResponse]]
Stopper = Callable[[str], Awaitable[None]]

# Events that say the run is over (or paused); after one of them the stream only lingers for
# ``close_grace`` seconds.
_CLOSERS = (MessageEndEvent, WorkflowFinishedEvent, WorkflowPausedEvent)
_FAILED_STATUSES = frozenset({"failed"})
# Statuses of a run whose outputs are its result.
_SUCCEEDED_STATUSES = frozenset({"succeeded", "partial-succeeded"})
# Events that show a paused run has resumed.
_RESUMERS = (WorkflowStartedEvent, HumanInputFormFilledEvent)


# What AsyncChatStream._view returns: the answer's replacement round and length, task_id,
# conversation_id, message_id, workflow_run_id, agent mode.
StreamView = tuple[int, int, str | None, str | None, str | None, str | None, bool]


def text_delta(event: StreamEvent, *, agent_mode: bool) -> str | None:
    """The answer text ``event`` adds to a stream's answer, if it is a text delta."""
    if isinstance(event, AgentMessageEvent):
        return event.answer or None
    if isinstance(event, MessageEvent):
        # After agent_message deltas, a message event repeats the whole answer.
        return None if agent_mode else event.answer or None
    if isinstance(event, MessageFileEvent) and event.answer and not event.url:
        return event.answer
    if isinstance(event, TextChunkEvent) and event.data is not None:
        # Workflow apps stream their text this way (Chatflows never do).
        return event.data.text or None
    return None


# How a read waits for its deadline (stream_idle, or close_grace after a closing event).
# ``timeout_at`` around each read costs a timer armed and cancelled per network read, which
# with Dify's one event per read was a large share of a stream's own cost. Instead a stream
# keeps one timer (its watchdog) for the earliest deadline: a read only records its task,
# events that come in time just move the deadline on, and the timer, when it fires, either
# waits again until the new deadline or cancels the read and is taken back by the reader
# (``Task.uncancel``, Python 3.11+; earlier versions keep ``timeout_at``).
_WATCHDOG = sys.version_info >= (3, 11)


# Joins the answer deltas; a module global so that a test can count the parts joined.
_join = "".join


class StreamRegistry:
    """The open streams of one client, by the task they read.

    ``chat.stop(task_id)`` marks the streams reading that task as stopped by this client, so
    that they end cleanly however Dify reports the stop. Held weakly; thread-safe (a sync
    stream registers itself on its caller's thread).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: weakref.WeakKeyDictionary[AsyncChatStream, str] = (
            weakref.WeakKeyDictionary()
        )

    def add(self, stream: AsyncChatStream, task_id: str) -> None:
        with self._lock:
            self._tasks[stream] = task_id

    def discard(self, stream: AsyncChatStream) -> None:
        with self._lock:
            self._tasks.pop(stream, None)

    def stopping(self, task_id: str) -> list[AsyncChatStream]:
        """Mark the streams reading ``task_id`` as stopped by their client; return the ones
        that were not marked already (so that a refused stop can unmark them)."""
        with self._lock:
            streams = [s for s, task in self._tasks.items() if task == task_id]
        marked = [stream for stream in streams if not stream._stop_requested]
        for stream in marked:
            stream._stop_requested = True
        return marked


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _fire_watchdog(ref: weakref.ref[AsyncChatStream]) -> None:
    stream = ref()
    if stream is not None:
        stream._on_watchdog()


def _expired(limit: Any) -> bool:
    # asyncio.Timeout.expired is a method, async_timeout's a property.
    expired = limit.expired
    return bool(expired() if callable(expired) else expired)


class AsyncChatStream:
    """An async iterator of the typed events of one streaming run.

    Use it as an async context manager so that the connection is released however the
    block ends (normal end, ``break``, exception, cancellation)::

        async with client.chat.stream("Hi") as stream:
            async for text in stream.text_stream:
                print(text, end="")
        reply = await stream.final_message()

    ``task_id``, ``conversation_id``, ``message_id`` and ``workflow_run_id`` are known from
    the first event that carries them; ``current_answer`` is the answer streamed so far.
    ``stopped`` tells whether the run was stopped (see :meth:`stop`). :attr:`timings` records
    when the request went out, when the first byte, event and answer delta arrived, each
    delta's arrival, and how the stream ended.
    """

    # Slots: with 40-odd attributes an instance dict outgrows CPython's shared keys and
    # costs about 1.5 KiB per stream; thousands of streams are held open at once. The four
    # public ids stay in a (small) instance dict, so that the class shows the same names
    # as before.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_agent_mode",
        "_answer_lock",
        "_answer_parts",
        "_answer_round",
        "_answer_size",
        "_answer_text",
        "_awaiting_resume",
        "_clock",
        "_closed",
        "_complete",
        "_content",
        "_created_at",
        "_deadline_hit",
        "_decoder",
        "_description",
        "_end_on_pause",
        "_eof",
        "_event_count",
        "_failure",
        "_grace_deadline",
        "_idle_deadline",
        "_include_pings",
        "_loop",
        "_message_end",
        "_opened",
        "_opened_at",
        "_opener",
        "_paused",
        "_pending",
        "_pending_at",
        "_reader",
        "_registry",
        "_replaced_answers",
        "_response",
        "_stop_requested",
        "_stopped",
        "_stopper",
        "_timeout",
        "_timings",
        "_trace",
        "_watchdog",
        "_workflow_finished",
        "_workflow_mode",
    )

    def __init__(
        self,
        opener: Opener,
        *,
        timeout: Timeout,
        stopper: Stopper | None = None,
        include_pings: bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        end_on_pause: bool = True,
        description: str = "stream",
        registry: StreamRegistry | None = None,
    ) -> None:
        # Dropped once the request went out: it holds the request body.
        self._opener: Opener | None = opener
        self._stopper = stopper
        self._timeout = timeout
        self._include_pings = include_pings
        self._description = description
        self._end_on_pause = end_on_pause
        # Following a run across a Human Input pause: closers are ignored until it resumes.
        self._awaiting_resume = False
        self._decoder = SSEDecoder(dispatch_empty=True, max_event_size=max_event_size)
        self._response: aiohttp.ClientResponse | None = None
        self._content: aiohttp.StreamReader | None = None
        # Data of the events read but not yet taken, decoded when taken: a stream held open
        # keeps the bytes of what its last read brought, not event objects (a third of the
        # memory), and a consumer that stops early never pays for decoding the rest.
        # A list read from ``_pending_at`` and cleared when its last item is taken: empty,
        # it costs 56 bytes where a deque keeps a 64-slot block (760 bytes) per stream.
        self._pending: list[bytes | str | StreamEvent] = []
        self._pending_at = 0
        self._opened = False
        self._closed = False
        self._eof = False
        # Run state.
        self.task_id: str | None = None
        self.conversation_id: str | None = None
        self.message_id: str | None = None
        self.workflow_run_id: str | None = None
        self._created_at: int | None = None
        # The answer is the joined text plus the deltas since it was last read, so that
        # reading ``current_answer`` after every event joins each delta once.
        self._answer_text = ""
        self._answer_parts: list[str] = []
        self._answer_lock = threading.Lock()
        # For a consumer on another thread (see _view): the answer's length in characters,
        # how many times it was replaced, and (once asked for) the answers replaced.
        self._answer_size = 0
        self._answer_round = 0
        self._replaced_answers: list[str] | None = None
        self._message_end: MessageEndEvent | None = None
        self._workflow_finished: WorkflowFinishedEvent | None = None
        self._paused: WorkflowPausedEvent | None = None
        self._workflow_mode = False
        self._agent_mode = False
        self._grace_deadline: float | None = None
        self._complete = False
        self._idle_deadline: float | None = None
        # The read deadline's one timer, and the task it interrupts (see _WATCHDOG).
        self._watchdog: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._deadline_hit = False
        self._clock: Callable[[], float] = time.monotonic
        self._opened_at = 0.0
        self._event_count = 0
        self._timings = StreamTimings()
        # The exception that ended the stream: raised again by any later read, so that a
        # cut-off answer never passes for a complete one.
        self._failure: BaseException | None = None
        # The trace of the call, when tracing is on (chatapi.otel).
        self._trace: CallTrace | None = None
        self._registry = registry
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    # -- public state -------------------------------------------------------------------

    @property
    def current_answer(self) -> str:
        """The answer streamed so far (deltas joined, ``message_replace`` applied).

        Cheap to read after every event: only the deltas since the last read are joined.
        """
        if not self._answer_parts:
            return self._answer_text
        # A sync stream takes events on its caller's thread while another thread (or the
        # loop, building an error) may read the answer: readers and replacements take the
        # lock; appends need none, as only the deltas joined here are removed.
        with self._answer_lock:
            parts = self._answer_parts
            if parts:
                joined = parts[:]
                tail = _join(joined)
                del parts[: len(joined)]
                text = self._answer_text
                # Dropping the attribute's reference lets CPython extend the string in
                # place when the caller no longer holds the previous answer.
                self._answer_text = ""
                text += tail
                self._answer_text = text
            return self._answer_text

    def _replace_answer(self, text: str) -> None:
        if self._replaced_answers is not None:
            self._replaced_answers.append(self.current_answer)
        with self._answer_lock:
            self._answer_text = text
            self._answer_parts.clear()
        self._answer_size = len(text)
        self._answer_round += 1

    def _answer_as_of(self, answer_round: int, start: int, end: int) -> str:
        """Characters ``start:end`` of the answer as it was when ``_view`` returned this
        round (any thread)."""
        if answer_round == self._answer_round:
            text = self.current_answer
            if answer_round == self._answer_round:  # not replaced meanwhile
                return text[start:end]
        replaced = self._replaced_answers or []
        return replaced[answer_round][start:end] if answer_round < len(replaced) else ""

    @property
    def stopped(self) -> bool:
        """True when the run was stopped: by :meth:`stop`, by ``chat.stop(task_id)`` of the
        same client while this stream read it, or elsewhere (its ``workflow_finished`` says
        ``stopped``)."""
        return self._stopped

    @property
    def response(self) -> aiohttp.ClientResponse | None:
        """The underlying HTTP response once the stream is open (for headers)."""
        return self._response

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def timings(self) -> StreamTimings:
        """When the request went out, the first byte, event and delta arrived, each delta's
        arrival, and how the stream ended (recorded on the loop thread as data arrives)."""
        return self._timings

    # -- context manager and iteration ----------------------------------------------------

    async def __aenter__(self) -> AsyncChatStream:
        try:
            await self._open()
        except BaseException as exc:
            self._timings.finish("error", self._clock(), exc)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        pending = self._pending
        while True:
            while pending:
                event = self._accept(self._take_pending())
                if event is not None:
                    return event
            if self._failure is not None:
                raise self._failure
            if self._complete or self._closed:
                await self._finish()
                raise StopAsyncIteration
            try:
                await self._fill()
            except BaseException as exc:
                self._fail(exc)
                raise

    @property
    def text_stream(self) -> AsyncIterator[str]:
        """The answer as it arrives: text deltas only; other events are consumed silently.

        ``message_replace`` is not a delta: ``current_answer`` and ``final_message()``
        reflect it, the deltas already yielded cannot.
        """
        return self._text_deltas()

    async def _text_deltas(self) -> AsyncIterator[str]:
        # Not ``async for event in self``: the loop variable would keep the last event (and
        # the JSON bytes it holds) alive while the stream waits for its next read.
        take = self.__anext__
        text_of = self._text_of
        while True:
            try:
                text = text_of(await take())
            except StopAsyncIteration:
                return
            if text:
                yield text

    def _text_of(self, event: StreamEvent) -> str | None:
        """The answer text ``event`` adds to the stream's answer, if it is a text delta."""
        return text_delta(event, agent_mode=self._agent_mode)

    async def final_message(self) -> ChatCompletion:
        """Read the rest of the stream and return the whole answer, as ``chat.send`` would."""
        await self.until_done()
        return self._completion()

    async def until_done(self) -> None:
        """Read the rest of the stream, discarding the events."""
        # Not ``async for _ in self``: ``_`` would keep the last event (and the JSON bytes
        # it holds) alive while the stream waits for its next read.
        take = self.__anext__
        try:
            while True:
                await take()
        except StopAsyncIteration:
            pass

    def to_sse(
        self,
        *,
        events: Collection[str] | None = None,
        transform: Transform | None = None,
        pings: bool = True,
    ) -> AsyncIterator[bytes]:
        """The stream as the body of a ``text/event-stream`` response, for a browser.

        Gives each event as Dify sent it (``data: {json}``) and Dify's keep-alives
        (``event: ping``, unless ``pings`` is false). ``events`` keeps only the named event
        types; ``transform`` maps each event to what is sent instead (a ``ServerSentEvent``,
        an event or model, a mapping sent as JSON, a text) or to ``None`` to skip it. A
        failure is sent as Dify's ``error`` event and ends the body. The stream is opened
        (if it is not yet) on the first iteration and closed at the end. If the consumer goes
        away first (the async iterator cancelled, closed or dropped; the sync iterable closed
        by a WSGI server), the run is stopped on the server. See :mod:`chatapi.web`.
        """
        from .web import SSEEncoder, aiter_sse  # imported on first use: it brings anyio

        encoder = SSEEncoder(events=events, transform=transform, pings=pings)
        self._include_pings = self._include_pings or pings
        return aiter_sse(self, encoder)

    async def stop(self) -> None:
        """Ask the server to stop the run (same ``user``), then close the connection.

        The stream ends cleanly: ``stopped`` is true, ``final_message()`` returns the partial
        answer. Before the first event the task id is unknown: the connection is only closed.
        A stream whose run was over already is left as it was.
        """
        running = not (self._complete or self._closed)
        if running:
            self._timings.finish("stopped", self._clock())
        try:
            if running:
                self._stop_requested = True
            if self._stopper is not None and self.task_id is not None and running:
                await self._stopper(self.task_id)
        finally:
            if running:
                self._stopped = True
            await self.aclose()

    async def aclose(self) -> None:
        """Release the connection; idempotent. Events not yet read are dropped."""
        self._release()

    def _release(self) -> None:
        # Synchronous so that the loop thread can release a stream without awaiting.
        self._closed = True
        self._clear_pending()
        self._close_response()
        self._timings.finish("closed", self._clock())
        self._forget()

    def __del__(self) -> None:
        # A stream dropped without being closed (``break`` out of ``async for`` without
        # ``async with``, a sync stream left after ``next()``) gives its connection back here,
        # on its loop's thread, instead of keeping it until the client closes.
        response = self._response
        loop = self._loop
        if response is None or loop is None:
            return
        self._response = None
        self._content = None
        try:
            if loop.is_closed():
                return
            if _running_loop() is loop:
                response.close()
            else:
                loop.call_soon_threadsafe(response.close)
        except Exception:  # a finalizer must not raise (the loop closed, interpreter exit)
            pass

    def _view(self) -> StreamView:
        """The run state right after the last accepted event, for a consumer on another thread
        (the sync ``ChatStream``) that reaches that event later. Cheap: the answer is named by
        its replacement round and length (see ``_answer_as_of``)."""
        return (
            self._answer_round,
            self._answer_size,
            self.task_id,
            self.conversation_id,
            self.message_id,
            self.workflow_run_id,
            self._agent_mode,
        )

    # -- internals ----------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """Record what ended the stream (once) and release the connection."""
        if self._failure is None:
            self._failure = (
                exc
                if isinstance(exc, ChatAPIError)
                else IncompleteStreamError(
                    f"{self._description} was interrupted ({type(exc).__name__})",
                    **self._state(),
                )
            )
            self._timings.finish("error", self._clock(), self._failure)
        self._close_response()

    async def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        self._loop = asyncio.get_running_loop()
        self._clock = self._loop.time
        self._opened_at = self._timings.sent = self._clock()
        idle = self._timeout.stream_idle
        if idle is None:
            await self._open_response()
            return
        # ``stream_idle`` runs from the moment the request is sent: headers or an error body
        # that trickle in byte by byte must not hold the caller longer than a silent stream
        # would (``read`` restarts on every byte, and streams have no total limit).
        deadline = self._opened_at + idle
        limit = timeout_at(deadline)
        try:
            async with limit:
                await self._open_response()
        except asyncio.TimeoutError:
            if not _expired(limit):
                raise
            raise StreamIdleTimeoutError(
                f"{self._description}: no event within {idle} s of sending the request "
                "(stream_idle)",
                timeout="stream_idle",
                **self._state(),
            ) from None
        # The first event is due within the same limit, counted from the request too.
        self._idle_deadline = deadline

    async def _open_response(self) -> None:
        opener = self._opener
        assert opener is not None  # _open() runs this once
        self._opener = None
        response = await opener()
        self._timings.headers = self._clock()
        self._response = response
        self._trace = take_stream_trace(response)
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "text/event-stream":
            try:
                head = await response.content.read(512)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                head = b""
            finally:
                self._close_response()
            raise ResponseDecodeError(
                f"expected an event stream from {self._description}, got "
                f"{content_type or 'no content type'} (HTTP {response.status})",
                data=head,
            )
        # Read with readany() itself: iter_any() would add an iterator and a coroutine
        # frame to every read an open stream waits in.
        self._content = response.content

    def _close_response(self) -> None:
        if self._trace is not None:
            self._trace.stream_ended(self)
        if self._watchdog is not None:
            # Its callback holds the stream: cancelled so that the stream can be collected.
            self._watchdog.cancel()
            self._watchdog = None
        response = self._response
        if response is None:
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %s after %d events in %.1f ms",
                self._description,
                "body ended" if self._eof else "connection closed",
                self._event_count,
                (self._clock() - self._opened_at) * 1e3,
            )
        if self._eof:
            response.release()
        else:
            response.close()
        self._response = None
        self._content = None

    async def _fill(self) -> None:
        """Read one chunk (or the end of the body) and queue the events it completes."""
        if not self._opened:
            await self._open()
        content = self._content
        if content is None:
            self._complete = True
            return
        deadline = self._idle_deadline
        grace = self._grace_deadline
        if grace is not None and (deadline is None or grace < deadline):
            deadline = grace
        try:
            if deadline is None:
                chunk = await content.readany()
            elif _WATCHDOG:
                self._arm_watchdog(deadline)
                task = self._reader = asyncio.current_task()
                try:
                    chunk = await content.readany()
                except asyncio.CancelledError:
                    if not self._deadline_hit or task is None:
                        raise
                    self._deadline_hit = False
                    if task.uncancel():  # type: ignore[attr-defined]  # 3.11+, see _WATCHDOG
                        raise
                    self._on_deadline()
                    return
                finally:
                    self._reader = None
            else:
                limit = timeout_at(deadline)
                try:
                    async with limit:
                        chunk = await content.readany()
                except asyncio.TimeoutError:
                    if not _expired(limit):
                        raise
                    self._on_deadline()
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            if self._grace_deadline is not None or self._closed:
                # The run was over already, or another task closed (or stopped) the stream
                # under this read: a connection that breaks now loses nothing.
                self._complete = True
                return
            raise self._transport_failure(exc) from exc
        if not chunk:  # readany() gives b"" only at the end of the body
            self._eof = True
            try:
                queued = len(self._pending)
                if self._queue(self._decoder.close()):
                    self._timings.on_events(self._pending, queued, self._clock())
            except ChatAPIError:
                raise
            except Exception as exc:
                raise self._decoder_failure(exc) from exc
            self._on_end_of_body()
            return
        now = self._clock()
        timings = self._timings
        if timings.first_byte is None:
            timings.first_byte = now
        # Most chunks of a stream read in small pieces complete no event.
        try:
            blocks = self._decoder.feed_data(chunk)
            queued = len(self._pending)
            progress = bool(blocks) and self._queue(blocks)
        except ChatAPIError:
            raise
        except Exception as exc:
            raise self._decoder_failure(exc) from exc
        if progress:
            timings.on_events(self._pending, queued, now)
            if self._idle_deadline is not None:
                self._idle_deadline = now + self._timeout.stream_idle  # type: ignore[operator]

    def _arm_watchdog(self, deadline: float) -> None:
        """Make sure the watchdog fires by ``deadline`` (see ``_WATCHDOG``)."""
        timer = self._watchdog
        if timer is not None:
            if timer.when() <= deadline:
                return  # it fires first, finds the deadline moved, and waits again
            timer.cancel()
        # Through a weak reference: a pending timer must not keep a dropped stream (and its
        # connection, released by __del__) alive until the deadline.
        self._watchdog = asyncio.get_running_loop().call_at(
            deadline, _fire_watchdog, weakref.ref(self)
        )

    def _on_watchdog(self) -> None:
        self._watchdog = None
        deadline = self._idle_deadline
        grace = self._grace_deadline
        if grace is not None and (deadline is None or grace < deadline):
            deadline = grace
        reader = self._reader
        if deadline is None or reader is None or reader.done():
            return  # not reading: the next read arms it again
        if self._clock() < deadline:
            self._arm_watchdog(deadline)  # events came in time: the deadline moved on
            return
        self._deadline_hit = True
        reader.cancel()

    def _decoder_failure(self, exc: Exception) -> SSEDecodeError:
        """A bug of the decoder surfacing in the stream: reported as a chatapi error."""
        return SSEDecodeError(
            f"{self._description}: the event stream could not be decoded "
            f"({type(exc).__name__}: {exc})"
        )

    def _on_deadline(self) -> None:
        if self._grace_deadline is not None and self._clock() >= self._grace_deadline - 1e-3:
            self._complete = True
            return
        state = self._state()
        raise StreamIdleTimeoutError(
            f"{self._description}: no event for {self._timeout.stream_idle} s "
            "(only pings or silence)",
            timeout="stream_idle",
            **state,
        )

    def _on_end_of_body(self) -> None:
        if self._grace_deadline is None and not self._closed:
            raise IncompleteStreamError(
                f"{self._description} ended before the run was over", **self._state()
            )
        self._complete = True

    def _transport_failure(self, exc: BaseException) -> ChatAPIError:
        error = translate_transport_error(exc, what=self._description)
        state = self._state()
        if isinstance(error, APITimeoutError):
            return APITimeoutError(str(error), timeout=error.timeout, **state)
        return IncompleteStreamError(f"{self._description} broke off: {error}", **state)

    def _queue(self, blocks: Sequence[bytes | ServerSentEvent]) -> bool:
        """Queue the data of SSE blocks; True if any of them was more than a ping."""
        append = self._pending.append
        progress = False
        for block in blocks:
            # Nearly every Dify event comes from the decoder's fast path as the bytes of its
            # data; Dify names the event type in the JSON, not in the SSE ``event:`` field.
            if block.__class__ is bytes:
                append(block)
                progress = True
            elif block.data:  # type: ignore[union-attr]
                append(block.data)  # type: ignore[union-attr]
                progress = True
            elif block.event == "ping":  # type: ignore[union-attr]
                append(PING)
        self._event_count += len(blocks)
        return progress

    def _take_pending(self) -> StreamEvent:
        """The next queued event, decoded. A payload that cannot be decoded ends the stream
        (the events before it were delivered)."""
        pending = self._pending
        at = self._pending_at
        item = pending[at]
        at += 1
        if at == len(pending):
            # All taken: empty again (``while pending`` and _feed's ``not queued`` rely on it).
            pending.clear()
            self._pending_at = 0
        else:
            pending[at - 1] = None  # type: ignore[call-overload]  # drop the taken data now
            self._pending_at = at
        if item is PING:
            return PING
        try:
            return decode_event(item)  # type: ignore[arg-type]
        except ResponseDecodeError as exc:
            self._clear_pending()
            self._fail(exc)
            raise

    def _clear_pending(self) -> None:
        self._pending.clear()
        self._pending_at = 0

    def _accept(self, event: StreamEvent) -> StreamEvent | None:
        """Update the run state with ``event``; return it if the caller should see it."""
        cls = type(event)
        if cls is MessageEvent:
            if self._agent_mode:
                # Agent apps close their agent_message deltas with the whole answer.
                self._replace_answer(event.answer or "")  # type: ignore[attr-defined]
            else:
                text = event.answer or ""  # type: ignore[attr-defined]
                self._answer_parts.append(text)
                self._answer_size += len(text)
                if text:
                    self._timings.on_delta(len(text))
        elif cls is PingEvent:
            return event if self._include_pings else None
        if self.task_id is None:
            self._take_ids(event)
        elif self.workflow_run_id is None and event.workflow_run_id is not None:
            self.workflow_run_id = event.workflow_run_id
        if cls is not MessageEvent:
            self._accept_other(event)
            if cls is ErrorEvent:  # not raised: the run was stopped by this client
                return None
        return event

    def _take_ids(self, event: StreamEvent) -> None:
        if event.task_id is not None:
            self.task_id = event.task_id
            if self._registry is not None and not self._closed:
                self._registry.add(self, event.task_id)
        if self.conversation_id is None:
            self.conversation_id = event.conversation_id
        if self.message_id is None:
            self.message_id = event.message_id
        if self.workflow_run_id is None:
            self.workflow_run_id = event.workflow_run_id
        if self._created_at is None:
            self._created_at = event.created_at

    def _accept_other(self, event: StreamEvent) -> None:
        if self.conversation_id is None and event.conversation_id is not None:
            self._take_ids(event)
        if event.workflow_run_id is not None:
            self._workflow_mode = True
        if isinstance(event, AgentMessageEvent):
            self._agent_mode = True
            self._add_text(event.answer)
        elif isinstance(event, MessageFileEvent):
            if event.answer and not event.url:
                self._add_text(event.answer)
        elif isinstance(event, MessageReplaceEvent):
            self._replace_answer(event.answer or "")
        elif isinstance(event, TextChunkEvent):
            if event.data is not None:
                self._add_text(event.data.text)
        elif isinstance(event, TextReplaceEvent):
            self._replace_answer((event.data.text if event.data is not None else None) or "")
        elif isinstance(event, AgentThoughtEvent):
            self._agent_mode = True
        elif isinstance(event, ErrorEvent):
            self._raise_error_event(event)
        elif isinstance(event, _CLOSERS):
            self._accept_closer(event)
        elif self._awaiting_resume and isinstance(event, _RESUMERS):
            self._awaiting_resume = False
            self._paused = None
            self._message_end = None

    def _add_text(self, text: str | None) -> None:
        if text:
            self._answer_parts.append(text)
            self._answer_size += len(text)
            self._timings.on_delta(len(text))

    def _accept_closer(self, event: StreamEvent) -> None:
        if self._awaiting_resume:
            # Dify closes a paused run's message with a message_end; the run goes on.
            return
        if isinstance(event, WorkflowPausedEvent) and not self._end_on_pause:
            self._workflow_mode = True
            self._paused = event
            self._awaiting_resume = True
            return
        if isinstance(event, MessageEndEvent):
            self._message_end = event
            if self.message_id is None:
                self.message_id = event.id
        elif isinstance(event, WorkflowFinishedEvent):
            self._workflow_mode = True
            self._workflow_finished = event
            if event.data is not None and event.data.status == "stopped":
                self._stopped = True
        elif isinstance(event, WorkflowPausedEvent):
            self._workflow_mode = True
            self._paused = event
        if self._grace_deadline is None:
            self._grace_deadline = self._clock() + self._timeout.close_grace
        if self._paused is not None or (
            self._message_end is not None
            and (not self._workflow_mode or self._workflow_finished is not None)
        ):
            self._complete = True

    def _raise_error_event(self, event: ErrorEvent) -> None:
        self._clear_pending()
        if self._stop_requested:
            # Stopping a run may end it with an error event: the end the caller asked for.
            self._stopped = True
            self._complete = True
            return
        status = (
            self._workflow_finished.data.status
            if self._workflow_finished is not None and self._workflow_finished.data is not None
            else None
        )
        error = StreamError(
            event.message or "the run failed",
            code=event.code,
            status=event.status,
            workflow_status=status,
            **self._state(),
        )
        self._fail(error)
        self._closed = True
        raise error

    async def _finish(self) -> None:
        """The stream is over: release the connection, then report a failed workflow."""
        self._close_response()
        finished = self._workflow_finished
        if (
            finished is not None
            and finished.data is not None
            and finished.data.status in _FAILED_STATUSES
            and not self._closed
        ):
            if self._stop_requested:
                # Dify 1.15 reports a stop that raced the run as a failure ("Aborted: User
                # requested stop"): this client asked for it, so it is a clean end.
                self._stopped = True
                self._closed = True
                self._forget()
                return
            self._closed = True
            error = StreamError(
                finished.data.error or "the workflow run failed",
                workflow_status=finished.data.status,
                **self._state(),
            )
            self._fail(error)
            raise error
        self._closed = True
        self._timings.finish("paused" if self._paused is not None else "completed", self._clock())
        self._forget()

    def _forget(self) -> None:
        if self._registry is not None:
            self._registry.discard(self)

    def _state(self) -> dict[str, Any]:
        return {
            "answer": self.current_answer,
            "task_id": self.task_id,
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "workflow_run_id": self.workflow_run_id,
        }

    def _final_answer(self) -> str:
        """The run's answer: a Chatflow run that succeeded says it in ``outputs.answer``
        (Dify streams no ``message`` for Answer nodes inside a Loop, nor for the text after
        a Human Input resume); otherwise the streamed deltas."""
        finished = self._workflow_finished
        data = finished.data if finished is not None else None
        if data is not None and data.status in _SUCCEEDED_STATUSES and data.outputs:
            answer = data.outputs.get("answer")
            if isinstance(answer, str):
                return answer
        return self.current_answer

    def _app_mode(self) -> str:
        """The app mode the events show so far (Chatflow, agent or chatbot)."""
        if self._workflow_mode:
            return "advanced-chat"
        return "agent-chat" if self._agent_mode else "chat"

    def _completion(self) -> ChatCompletion:
        end = self._message_end
        paused = self._paused
        mode = self._app_mode()
        pause_data: WorkflowPausedData | None = paused.data if paused is not None else None
        return ChatCompletion(
            event="workflow_paused" if paused is not None else "message",
            task_id=self.task_id,
            id=self.message_id,
            message_id=self.message_id,
            conversation_id=self.conversation_id,
            mode=mode,
            answer=self._final_answer(),
            metadata=(end.metadata if end is not None and end.metadata is not None
                      else MessageMetadata()),
            created_at=self._created_at,
            workflow_run_id=self.workflow_run_id,
            files=end.files if end is not None else None,
            data=pause_data,
            raw=dict(end.raw) if end is not None else {},
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._opened else "not started")
        if self._stopped:
            state += " (stopped)"
        return (
            f"<AsyncChatStream {self._description} {state} task_id={self.task_id!r} "
            f"conversation_id={self.conversation_id!r}>"
        )
