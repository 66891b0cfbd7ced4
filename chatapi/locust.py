"""Load tests beyond one machine: ``chatapi.locust.ChatUser`` for Locust master/workers.

A locustfile needs three lines::

    from chatapi.locust import ChatUser

    class Chat(ChatUser):
        queries = ["What is Dify?", "Summarize our refund policy."]

``locust -f locustfile.py --host https://dify.example/v1`` with ``DIFY_API_KEY`` set (or
``--master`` and any number of ``--worker --master-host ...``). Each Locust user is one
stream slot: it sends a query, reads the whole stream, and starts the next. The stats rows
``ttft`` (time to first token) and ``stream`` (end to end; failures named by exception
type) appear in Locust's UI, ``--csv`` and ``--html``.

How it runs: Locust patches the process with gevent, and the sync ``ChatClient`` under
gevent shares Locust's greenlet loop (high added latency, and one client per user fails).
So each worker process runs one asyncio loop in a real OS thread (gevent's original thread
start and selector) with one :class:`~chatapi.AsyncChatClient` and no connection limit.
Users hand their streams to that loop and wait on a gevent event; a greenlet on Locust's
side takes the finished streams (every 10 ms) and reports them to Locust, so the loop
thread never calls into gevent. Times come from each stream's :class:`~chatapi.
StreamTimings`, taken on the loop thread, so the handover adds nothing to them.

Stopping: with ``--stop-timeout S``, open streams may finish for up to S seconds, then are
cancelled (and not reported). Host names are resolved by the system resolver in a real
thread, never by gevent's. When Locust reports the worker's CPU above 90 %, a warning says
that the numbers then measure the client rather than the server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import aiohttp
import gevent
import gevent.event
from aiohttp.abc import AbstractResolver, ResolveResult
from gevent import monkey
from locust import User, constant, events, task
from locust.env import Environment
from locust.stats import CSV_STATS_INTERVAL_SEC

from ._config import resolve_settings
from ._timings import StreamTimings
from .client import AsyncChatClient
from .errors import ConfigurationError
from .events import MessageEvent
from .load import LoadQuery
from .load._engine import GC_THRESHOLD
from .load._stats import percentile
from .testing._load import SENT_AT_FIELD as SENT_AT

__all__ = ["ChatUser"]

log = logging.getLogger("chatapi.locust")

REQUEST_TYPE = "chat"
# How often the reporting greenlet collects finished streams (it only delays the next
# stream of a slot, never a measurement).
POLL_INTERVAL = 0.01
_JOIN_TIMEOUT = 30.0

_start_thread = monkey.get_original("_thread", "start_new_thread")
_allocate_lock = monkey.get_original("_thread", "allocate_lock")
_Selector = monkey.get_original("selectors", "DefaultSelector")
_getaddrinfo = monkey.get_original("socket", "getaddrinfo")
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class _Resolver(AbstractResolver):
    """The system resolver in a real thread: gevent's resolver belongs to Locust's hub and
    must not be called from the loop thread."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()

        def settle(result: list[Any] | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result or [])

        def lookup() -> None:
            try:
                infos = _getaddrinfo(host, port, family, socket.SOCK_STREAM)
            except BaseException as error:  # handed to the loop, raised there
                loop.call_soon_threadsafe(settle, None, error)
            else:
                loop.call_soon_threadsafe(settle, infos, None)

        _start_thread(lookup, ())
        infos = await future
        results: list[ResolveResult] = []
        for info_family, _, proto, _, address in infos:
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address[0],
                    port=address[1],
                    family=info_family,
                    proto=proto,
                    flags=_NUMERIC,
                )
            )
        return results

    async def close(self) -> None:
        return None


class _Job:
    """One stream a user asked for; filled on the loop thread, reported on Locust's side."""

    __slots__ = ("cancelled", "conversation_id", "done", "error", "inputs", "query", "timings",
                 "user")

    def __init__(
        self, query: str, inputs: Mapping[str, Any], user: str, conversation_id: str | None
    ) -> None:
        self.query = query
        self.inputs = inputs
        self.user = user
        self.conversation_id = conversation_id
        self.done = gevent.event.Event()
        self.timings: StreamTimings | None = None
        self.error: BaseException | None = None
        self.cancelled = False


class _Failure(Exception):
    """Stands for a failure in Locust's stats: named by the type of the real exception."""


_failure_types: dict[str, type[_Failure]] = {}


def _failure(error: BaseException) -> _Failure:
    name = type(error).__name__
    cls = _failure_types.get(name)
    if cls is None:
        cls = _failure_types[name] = type(name, (_Failure,), {})
    return cls()


class _Engine:
    """The asyncio side of one worker process, and the greenlet that reports to Locust."""

    def __init__(self, environment: Environment, base_url: str | None, measure: bool) -> None:
        self.environment = environment
        self.base_url = base_url
        self.finished: deque[_Job] = deque()
        self.tasks: dict[_Job, asyncio.Task[None]] = {}
        self.completed = self.failed = self.cancelled = 0
        self.client: AsyncChatClient | None = None
        # Latency this process adds to each answer delta, against the fake server's stamps.
        self.added_latency: array[float] | None = array("d") if measure else None
        self.session: aiohttp.ClientSession | None = None
        self.loop = asyncio.SelectorEventLoop(_Selector())
        # Rare collections for the life of the worker, as in chatapi load (gc_tuned).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLD)
        self._stopped = _allocate_lock()
        self._stopped.acquire()
        _start_thread(self._run, ())
        self.reporter = gevent.spawn(self._report)

    # -- loop thread ----------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            self.loop.run_until_complete(self._close_client())
        finally:
            self.loop.close()
            self._stopped.release()

    def _client(self) -> AsyncChatClient:
        if self.client is None:
            connector = aiohttp.TCPConnector(limit=0, resolver=_Resolver())
            self.session = aiohttp.ClientSession(connector=connector)
            self.client = AsyncChatClient(
                base_url=self.base_url, max_retries=0, session=self.session
            )
        return self.client

    def _start(self, job: _Job) -> None:
        self.tasks[job] = self.loop.create_task(self._stream(job))

    def _cancel(self, job: _Job) -> None:
        running = self.tasks.get(job)
        if running is not None:
            running.cancel()

    async def _stream(self, job: _Job) -> None:
        stream = None
        try:
            stream = self._client().chat.stream(
                job.query, inputs=job.inputs, user=job.user, conversation_id=job.conversation_id
            )
            async with stream:
                if self.added_latency is None:
                    await stream.until_done()
                else:
                    stamps = [
                        event.raw[SENT_AT]
                        async for event in stream
                        if type(event) is MessageEvent and SENT_AT in event.raw
                    ]
                    arrivals = stream.timings.delta_times
                    self.added_latency.extend(
                        arrived - sent for arrived, sent in zip(arrivals, stamps, strict=False)
                    )
            job.conversation_id = stream.conversation_id
        except asyncio.CancelledError:
            job.cancelled = True
        except Exception as error:
            job.error = error
        finally:
            job.timings = stream.timings if stream is not None else None
            self.tasks.pop(job, None)
            self.finished.append(job)

    async def _close_client(self) -> None:
        for running in list(self.tasks.values()):
            running.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()
        if self.session is not None:
            await self.session.close()

    # -- Locust's side (greenlets) -----------------------------------------------------------

    def submit(self, job: _Job) -> None:
        self.loop.call_soon_threadsafe(self._start, job)

    def abandon(self, job: _Job) -> None:
        """The user was killed while its stream ran: cancel the stream."""
        self.loop.call_soon_threadsafe(self._cancel, job)

    def _report(self) -> None:
        fire = self.environment.events.request.fire
        while True:
            gevent.sleep(POLL_INTERVAL)
            while self.finished:
                job = self.finished.popleft()
                self._fire(fire, job)
                job.done.set()

    def _fire(self, fire: Any, job: _Job) -> None:
        if job.cancelled:
            self.cancelled += 1
            return
        timings = job.timings
        total = timings.total if timings is not None else None
        if job.error is None:
            self.completed += 1
            ttft = timings.ttft if timings is not None else None
            if ttft is not None:
                fire(request_type=REQUEST_TYPE, name="ttft", response_time=ttft * 1e3,
                     response_length=0, exception=None, context={})
            fire(request_type=REQUEST_TYPE, name="stream", response_time=(total or 0.0) * 1e3,
                 response_length=timings.answer_chars if timings is not None else 0,
                 exception=None, context={})
        else:
            self.failed += 1
            fire(request_type=REQUEST_TYPE, name="stream", response_time=(total or 0.0) * 1e3,
                 response_length=0, exception=_failure(job.error), context={})

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        # Wait for the loop thread without blocking the hub.
        with gevent.Timeout(_JOIN_TIMEOUT, False):
            while not self._stopped.acquire(False):
                gevent.sleep(POLL_INTERVAL)
        gevent.sleep(POLL_INTERVAL * 2)
        self.reporter.kill()
        while self.finished:
            self._fire(self.environment.events.request.fire, self.finished.popleft())


_engine: _Engine | None = None
_environment: Environment | None = None


def _engine_for(environment: Environment, base_url: str | None, measure: bool) -> _Engine:
    global _engine
    if _engine is None:
        # A missing key or a bad URL fails the user here, not every stream on the loop.
        resolve_settings(None, base_url, None)
        _engine = _Engine(environment, base_url, measure)
    return _engine


def _on_test_stop(environment: Environment, **kwargs: Any) -> None:
    if _engine is not None:
        log.info(
            "chatapi.locust: this worker reported %d streams (%d completed, %d failed); "
            "%d cancelled at stop",
            _engine.completed + _engine.failed,
            _engine.completed,
            _engine.failed,
            _engine.cancelled,
        )
        added = _engine.added_latency
        if added:
            ordered = sorted(added)
            log.info(
                "chatapi.locust: added latency over %d deltas: p50 %.1f ms, p95 %.1f ms, "
                "max %.1f ms",
                len(ordered),
                percentile(ordered, 50) * 1e3,
                percentile(ordered, 95) * 1e3,
                ordered[-1] * 1e3,
            )


def _on_quitting(environment: Environment, **kwargs: Any) -> None:
    global _engine
    if _engine is not None:
        _engine.close()
        _engine = None


def _on_quit(exit_code: int, **kwargs: Any) -> None:
    # Locust's --csv files are rewritten once a second by a greenlet and not again at exit,
    # so the last second of a run (the streams that finished during the stop) would be
    # missing from them; give that greenlet one more turn.
    environment = _environment
    options = environment.parsed_options if environment is not None else None
    if options is not None and getattr(options, "csv_prefix", None) and not options.worker:
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)


def _on_init(environment: Environment, **kwargs: Any) -> None:
    global _environment
    _environment = environment


def _on_cpu_warning(environment: Environment, cpu_usage: float, **kwargs: Any) -> None:
    log.warning(
        "chatapi.locust: this process's CPU is at %.0f%%: the latencies now measure the load "
        "generator, not the Dify app; add workers (or machines)",
        cpu_usage,
    )


events.test_stop.add_listener(_on_test_stop)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]
# Older Locust versions have no cpu_warning event (they only log the CPU warning).
_cpu_warning = getattr(events, "cpu_warning", None)
if _cpu_warning is not None:
    _cpu_warning.add_listener(_on_cpu_warning)
events.quit.add_listener(_on_quit)  # type: ignore[no-untyped-call]
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]


class ChatUser(User):
    """A Locust user that is one stream slot against a Dify chat app.

    Subclass it and set ``queries``: strings, or :class:`~chatapi.load.LoadQuery` items
    (inputs and follow-up turns). ``inputs`` applies to the plain strings. The base URL is
    Locust's ``--host`` (else ``DIFY_BASE_URL``); the key comes from ``DIFY_API_KEY``. Each
    user is its own end user (``user_prefix`` and a number) and its own conversation.
    ``measure_added_latency``: against a fake server with ``--stamp-send-times``, log at the
    end of the test the latency this worker added to the answer deltas (p50/p95/max).
    """

    abstract = True
    wait_time = constant(0)
    queries: ClassVar[Sequence[str | LoadQuery]] = ()
    inputs: ClassVar[Mapping[str, Any]] = {}
    user_prefix: ClassVar[str] = "locust"
    measure_added_latency: ClassVar[bool] = False
    _count: ClassVar[int] = 0

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        if not self.queries:
            raise ConfigurationError(f"{type(self).__name__}.queries is empty: give queries")
        self._plays = [
            item if isinstance(item, LoadQuery) else LoadQuery(item, dict(self.inputs))
            for item in self.queries
        ]
        ChatUser._count += 1
        self._number = ChatUser._count
        self._user_id = f"{self.user_prefix}-{self._number}"
        self._next = self._number % len(self._plays)
        self._engine = _engine_for(
            environment, self.host or None, self.measure_added_latency
        )

    @task
    def chat(self) -> None:
        """Play one query (and its follow-ups): one ``stream`` sample per turn."""
        play = self._plays[self._next]
        self._next = (self._next + 1) % len(self._plays)
        conversation_id: str | None = None
        for turn in play.turns:
            job = _Job(turn, play.inputs, self._user_id, conversation_id)
            self._engine.submit(job)
            try:
                job.done.wait()
            except BaseException:
                # Killed by Locust (stop timeout over): the stream is cancelled too.
                self._engine.abandon(job)
                raise
            if job.error is not None or job.cancelled:
                return
            conversation_id = job.conversation_id
