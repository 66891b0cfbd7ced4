"""The events of an :class:`AsyncChatStream`, pushed from its loop to a consumer thread.

A sync :class:`~chatapi.ChatStream` used to ask the loop for each batch of events: one
cross-thread round trip (~170 µs on a busy machine) per network read, which with Dify's one
event per read was a round trip per event. Here a reader task on the loop runs ``async for``
over the stream — the async stream's own reading, state, closing rules and errors, unchanged
— and appends each event, with a view of the run state right after it, to a buffer. The
consumer takes events from the buffer without any cross-thread call while there are some, and
waits on a condition only when it is empty; meanwhile the reader goes on reading. The buffer
is bounded: when it is full the reader waits until the consumer has taken half of it, so a
slow consumer holds at most ``limit`` events in memory and the server is slowed down through
TCP flow control, as with an async consumer.

Events reach the consumer in stream order, and an error raised by the stream (a
``StreamError``, a broken connection) comes after every event that preceded it, carrying the
state the async stream had at that point, which the consumer reaches just then.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from .streaming import AsyncChatStream

__all__ = ["CUT_OFF", "END", "EventFeed"]

END: Any = object()
"""Taken once the stream is over; nothing follows."""
CUT_OFF: Any = object()
"""Taken when the client's loop was closed under the stream."""

DEFAULT_LIMIT = 256
# Seconds a released stream's reader gets to end by itself (a safety net: it ends at once).
STOP_WAIT = 5.0


class EventFeed:
    """A bounded buffer of ``(event, view)`` items between the loop and one consumer thread.

    Items are ``(event, view)`` tuples, an exception raised by the stream, :data:`END` or
    :data:`CUT_OFF`. :meth:`start`, :meth:`stop` and :meth:`cut_off` run on the loop,
    :meth:`take` on the consumer thread.
    """

    def __init__(self, stream: AsyncChatStream, *, limit: int = DEFAULT_LIMIT) -> None:
        self._stream = stream
        self._items: deque[Any] = deque()
        self._limit = limit
        self._ready = threading.Condition(threading.Lock())
        self._consumer_waits = False
        self._reader_waits = False
        self._room: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        return self._task is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop of the reader, once started."""
        return self._loop

    # -- on the loop ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the reader task (on the loop)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._room = asyncio.Event()
            self._task = self._loop.create_task(self._read())

    async def stop(self) -> None:
        """After the stream was released: let the reader end, and end the reading (on the loop).

        A reader inside the stream sees the released connection and ends as a closed stream
        does; cancelling it there would record an interruption as the stream's failure. One
        waiting for room is cancelled. The wait is bounded, in case a read did not notice.
        """
        task = self._task
        if task is not None and not task.done():
            if self._reader_waits:
                task.cancel()
            if not (await asyncio.wait([task], timeout=STOP_WAIT))[0]:
                task.cancel()
                await asyncio.wait([task])
        self._put(END)

    def cut_off(self) -> None:
        """The loop is closing: end the reader, and the consumer's reading with CUT_OFF."""
        if self._task is not None:
            self._task.cancel()
        self._put(CUT_OFF)

    async def _read(self) -> None:
        stream = self._stream
        view = stream._view
        queued = stream._pending
        items = self._items
        limit = self._limit
        try:
            async for event in stream:
                if len(items) >= limit:
                    await self._wait_for_room()
                items.append((event, view()))
                # The consumer is woken once the events of a network read are all here (or
                # the buffer is full): waking it at the first one would have it contend for
                # the GIL with this thread for each of the others.
                if not queued or len(items) >= limit:
                    self._wake()
        except asyncio.CancelledError:
            raise  # stop() or cut_off(): whoever cancelled tells the consumer
        except BaseException as exc:  # the stream's failure, raised again on the consumer
            self._put(exc)
        else:
            self._put(END)

    async def _wait_for_room(self) -> None:
        room = self._room
        assert room is not None
        room.clear()
        self._reader_waits = True
        # Checked again after raising the flag: a consumer that emptied the buffer in
        # between saw no flag, and would otherwise never signal.
        while len(self._items) >= self._limit:
            await room.wait()
            room.clear()
        self._reader_waits = False

    def _put(self, item: Any) -> None:
        self._items.append(item)
        self._wake()

    def _wake(self) -> None:
        # Appending needs no lock; the consumer raises its flag before checking the buffer
        # a last time, so either it sees the items or this finds it waiting.
        if self._consumer_waits:
            with self._ready:
                # One wake-up is enough: the consumer drains all that is there when it runs.
                self._consumer_waits = False
                self._ready.notify()

    # -- on the consumer thread -----------------------------------------------------------------

    def take(self) -> Any:
        """The next item, waiting for one."""
        items = self._items
        while True:
            try:
                item = items.popleft()
            except IndexError:
                with self._ready:
                    self._consumer_waits = True
                    try:
                        if not items:
                            self._ready.wait()
                    finally:
                        self._consumer_waits = False
                continue
            if self._reader_waits:
                self.taken()
            return item

    def taken(self) -> None:
        """After items were taken from ``items`` directly: let a waiting reader go on once
        half the buffer is free."""
        if self._reader_waits and len(self._items) <= self._limit // 2:
            self._reader_waits = False
            loop, room = self._loop, self._room
            if loop is not None and room is not None and not loop.is_closed():
                loop.call_soon_threadsafe(room.set)

    @property
    def items(self) -> deque[Any]:
        """The buffer, for a consumer's fast path: ``popleft()``, then :meth:`taken` if
        ``reader_waits``; :meth:`take` when it is empty."""
        return self._items

    @property
    def reader_waits(self) -> bool:
        return self._reader_waits

    def clear(self) -> None:
        self._items.clear()
