"""The conftest ``ReplayServer``, run on its own event loop thread for sync tests.

A sync client blocks the thread that calls it; a server on that same thread's loop could
never answer. Here the server has a loop of its own, and the test thread talks to it through
thread-safe calls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Literal, TypeVar

from .conftest import RecordedRequest, ReplayServer, Reply

T = TypeVar("T")

GUARD = 10


class _HoldSignal(asyncio.Event):
    """The server's ``release`` event, which also tells other threads when a reply waits on
    it: that is when a ``hold_open`` reply has written its whole body."""

    def __init__(self, holding: threading.Event) -> None:
        super().__init__()
        self._holding = holding

    async def wait(self) -> Literal[True]:
        self._holding.set()
        return await super().wait()


class ThreadedReplayServer:
    """A ``ReplayServer`` served from a private loop thread; a context manager."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="replay-server", daemon=True
        )
        self.server: ReplayServer | None = None
        self._holding = threading.Event()

    def __enter__(self) -> ThreadedReplayServer:
        self._thread.start()
        self.server = self.run(self._start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.run(self._srv.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(GUARD)
            self._loop.close()

    async def _start(self) -> ReplayServer:
        server = ReplayServer()
        server.release = _HoldSignal(self._holding)
        await server.start()
        return server

    @property
    def _srv(self) -> ReplayServer:
        assert self.server is not None, "use the server as a context manager"
        return self.server

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(GUARD)

    @property
    def base_url(self) -> str:
        return self._srv.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._srv.requests

    def queue(self, *replies: Reply) -> None:
        self._srv.queue(*replies)

    def release(self) -> None:
        """Let replies with ``hold_open`` finish."""
        self._loop.call_soon_threadsafe(self._srv.release.set)

    def wait_disconnected(self) -> None:
        """Block until the client dropped a connection the server was writing to."""
        self.run(asyncio.wait_for(self._srv.disconnected.wait(), GUARD))

    def wait_holding(self) -> None:
        """Block until a ``hold_open`` reply has written its whole body and is holding."""
        assert self._holding.wait(GUARD), "the server never started holding a reply open"
