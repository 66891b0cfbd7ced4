"""Writing an event stream: pings while idle, and the byte-level faults."""

from __future__ import annotations

import asyncio
import contextlib
import math

from aiohttp import web

from ._wire import PING

__all__ = ["EventStream", "StreamEnded", "open_event_stream", "wait_or_wake"]


class StreamEnded(Exception):
    """The stream ended early (an injected fault, or the client left); nothing more is
    written."""


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    """Start a ``text/event-stream`` answer with the headers Dify sends."""
    response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    await response.prepare(request)
    return response


class EventStream:
    """Writes the bytes of one streamed answer.

    ``idle`` lets time pass the way Dify's queue does: a ping goes out whenever nothing was
    written for ``ping_interval`` seconds. ``drop_after_bytes`` cuts the connection once
    that many bytes of body have been written.
    """

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        *,
        ping_interval: float,
        drop_after_bytes: int | None = None,
    ) -> None:
        self._request = request
        self._response = response
        self.ping_interval = ping_interval
        self._budget = drop_after_bytes
        self._loop = asyncio.get_running_loop()
        self._last_write = self._loop.time()
        self.dropped = False

    async def write(self, data: bytes) -> None:
        budget = self._budget
        if budget is not None:
            if len(data) >= budget:
                if budget:
                    await self._response.write(data[:budget])
                self._drop()
            self._budget = budget - len(data)
        try:
            await self._response.write(data)
        except ConnectionResetError:
            # The client went away: the run ends here, quietly.
            self.dropped = True
            raise StreamEnded from None
        self._last_write = self._loop.time()

    async def ping(self) -> None:
        await self.write(PING)

    async def idle(self, seconds: float, wake: asyncio.Event) -> None:
        """Wait ``seconds`` (pinging as needed), or less if ``wake`` is set."""
        loop = self._loop
        deadline = loop.time() + seconds
        while not wake.is_set():
            current = loop.time()
            if current >= deadline:
                return
            next_ping = self._last_write + self.ping_interval
            if current >= next_ping:
                await self.ping()
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), min(deadline, next_ping) - current)

    async def finish(self) -> None:
        """End the body properly (the chunked terminator), unless the connection was cut."""
        if not self.dropped:
            with contextlib.suppress(ConnectionResetError):
                await self._response.write_eof()

    def _drop(self) -> None:
        # Closing the transport flushes what was written, then sends FIN without the chunked
        # terminator: the client sees a body that broke off.
        self.dropped = True
        transport = self._request.transport
        if transport is not None:
            transport.close()
        raise StreamEnded


async def wait_or_wake(seconds: float, wake: asyncio.Event) -> None:
    """Sleep ``seconds`` unless ``wake`` is set first (no stream to ping)."""
    if wake.is_set() or seconds <= 0:
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(wake.wait(), None if math.isinf(seconds) else seconds)
