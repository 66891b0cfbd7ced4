"""The load engine: stream slots on one asyncio loop, and several loops in processes.

Each process runs one :class:`~chatapi.AsyncChatClient` without a connection limit (the
slots are the limit) and one task per open conversation. Measurements come from each
stream's :class:`~chatapi.StreamTimings`, so the engine adds nothing to the hot path but
a callback per finished stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import math
import multiprocessing
import queue as queue_module
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from .._config import Timeout
from ..client import AsyncChatClient
from ..errors import ChatAPIError
from ..events import MessageEvent
from ..testing._load import SENT_AT_FIELD as _SENT_AT
from ._config import LoadConfig, LoadQuery
from ._stats import LoadReport, Samples

__all__ = ["LoadError", "ProgressSnapshot", "arun_load", "run_load"]

TICK = 1.0
# How often a run checks whether it was asked to stop early.
_STOP_POLL = 0.2
GC_THRESHOLD = (100_000, 50, 1000)
# Spawned processes import chatapi first; a run waits for all of them before it starts.
_READY_TIMEOUT = 120.0


class LoadError(ChatAPIError):
    """A load run could not be carried out (a worker process failed)."""


@attrs.frozen
class ProgressSnapshot:
    """The state of a run, taken each second: streams open, started, completed and failed
    so far, and the times to first token of the streams completed since the last one."""

    elapsed: float
    active: int
    started: int
    completed: int
    failed: int
    recent_ttft: tuple[float, ...]


ProgressCallback = Callable[[ProgressSnapshot], None]


def _arrival_offsets(rate: float, ramp_up: float) -> Iterator[float]:
    """Seconds after the start of each arrival of the open model: the rate grows linearly
    to ``rate`` over ``ramp_up``, then stays (k arrivals by t: rate*t^2/(2*ramp_up))."""
    ramp_arrivals = rate * ramp_up / 2
    for k in itertools.count():
        if k < ramp_arrivals:
            yield math.sqrt(2 * ramp_up * k / rate)
        else:
            yield ramp_up + (k - ramp_arrivals) / rate


class _Part:
    """One process's share of a run."""

    def __init__(
        self, config: LoadConfig, client: AsyncChatClient, t0: float, phase: float = 0.0
    ) -> None:
        self.config = config
        # Open model over several processes: each one's arrivals shifted by its share of
        # the interval, so that together they arrive evenly rather than in bursts.
        self.phase = phase
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.t0 = t0
        self.deadline = t0 + config.duration
        self.samples = Samples(t0)
        self.active = 0
        self.recent_ttft: list[float] = []
        self._queries = itertools.cycle(config.queries)
        self._stopped_early = asyncio.Event()

    async def run(
        self, on_tick: ProgressCallback | None, should_stop: Callable[[], bool] | None = None
    ) -> Samples:
        await self._sleep_until(self.t0)
        ticker = asyncio.ensure_future(self._tick(on_tick)) if on_tick else None
        watcher = asyncio.ensure_future(self._watch(should_stop)) if should_stop else None
        tasks: set[asyncio.Task[None]] = set()
        try:
            if self.config.concurrency is not None:
                tasks.update(
                    asyncio.ensure_future(self._slot(i)) for i in range(self.config.concurrency)
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        self._stopped_early.wait(), max(self.deadline - self.loop.time(), 0)
                    )
            else:
                await self._arrivals(tasks)
            await self._drain(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for helper in (ticker, watcher):
                if helper is not None:
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
            if on_tick is not None:
                on_tick(self.snapshot())
        return self.samples

    async def _watch(self, should_stop: Callable[[], bool]) -> None:
        """End the run early (no new streams; open ones drain) once ``should_stop()``."""
        # Polled: the flag is set from a signal handler, another thread or the parent process.
        while True:
            if should_stop():
                break
            await asyncio.sleep(_STOP_POLL)
        self.deadline = min(self.deadline, self.loop.time())
        self._stopped_early.set()

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        """Let the open streams finish, for ``stop_timeout`` at most, then cancel them."""
        if tasks:
            await asyncio.wait(list(tasks), timeout=self.config.stop_timeout)

    async def _slot(self, index: int) -> None:
        config = self.config
        assert config.concurrency is not None
        await self._sleep_until(self.t0 + config.ramp_up * index / config.concurrency)
        user = f"{config.user}-{index}"
        while self.loop.time() < self.deadline:
            await self._conversation(user, next(self._queries))

    async def _arrivals(self, tasks: set[asyncio.Task[None]]) -> None:
        config = self.config
        assert config.rate is not None
        for number, offset in enumerate(_arrival_offsets(config.rate, config.ramp_up)):
            at = self.t0 + self.phase + offset
            if at >= self.deadline:
                return
            await self._sleep_until(at)
            if self._stopped_early.is_set():
                return
            if len(tasks) >= config.max_concurrency:
                self.samples.skipped += 1
                continue
            task = asyncio.ensure_future(
                # A bounded set of end users: one per slot of the cap.
                self._conversation(
                    f"{config.user}-{number % config.max_concurrency}", next(self._queries)
                )
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _conversation(self, user: str, query: LoadQuery) -> None:
        conversation_id: str | None = None
        for number, turn in enumerate(query.turns):
            if number and self.loop.time() >= self.deadline:
                return
            conversation_id = await self._stream(user, turn, query, conversation_id)
            if conversation_id is None:
                return

    async def _stream(
        self, user: str, text: str, query: LoadQuery, conversation_id: str | None
    ) -> str | None:
        """One measured stream; returns its conversation id (``None`` if it failed)."""
        samples = self.samples
        stream = self.client.chat.stream(
            text, inputs=query.inputs, user=user, conversation_id=conversation_id
        )
        stamps: list[float] = []
        samples.started += 1
        self.active += 1
        try:
            async with stream:
                if self.config.added_latency:
                    async for event in stream:
                        if type(event) is MessageEvent:
                            sent = event.raw.get(_SENT_AT)
                            if isinstance(sent, float):
                                stamps.append(sent)
                else:
                    await stream.until_done()
        except asyncio.CancelledError:
            samples.cancelled += 1
            raise
        except Exception as error:
            # A load test records failures and goes on; the type names the failure.
            samples.add_failed(error, self.loop.time())
            return None
        finally:
            self.active -= 1
        samples.add_completed(stream.timings, stamps)
        ttft = stream.timings.ttft
        if ttft is not None:
            self.recent_ttft.append(ttft)
        return stream.conversation_id or ""

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - self.loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _tick(self, on_tick: ProgressCallback) -> None:
        while True:
            await asyncio.sleep(TICK)
            on_tick(self.snapshot())

    def snapshot(self) -> ProgressSnapshot:
        recent, self.recent_ttft = self.recent_ttft, []
        samples = self.samples
        return ProgressSnapshot(
            elapsed=self.loop.time() - self.t0,
            active=self.active,
            started=samples.started,
            completed=samples.completed,
            failed=samples.failed,
            recent_ttft=tuple(recent),
        )


def _client(config: LoadConfig) -> AsyncChatClient:
    return AsyncChatClient(
        api_key=config.api_key,
        base_url=config.base_url,
        user=config.user,
        max_retries=config.max_retries,
        timeout=Timeout.coerce(config.timeout) if config.timeout is not None else None,
        connector_limit=0,
    )


async def _run_part(
    config: LoadConfig,
    t0: float | None,
    on_tick: ProgressCallback | None,
    phase: float = 0.0,
    should_stop: Callable[[], bool] | None = None,
) -> Samples:
    async with _client(config) as client:
        loop = asyncio.get_running_loop()
        part = _Part(config, client, loop.time() if t0 is None else t0, phase)
        return await part.run(on_tick, should_stop)


async def arun_load(
    config: LoadConfig, *, progress: ProgressCallback | None = None
) -> LoadReport:
    """Run ``config`` on the running event loop (``processes`` is ignored: one loop)."""
    samples = await _run_part(config, None, progress)
    return LoadReport.build(samples, config.describe(), _elapsed(samples, config))


def run_load(
    config: LoadConfig,
    *,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> LoadReport:
    """Run ``config`` and return its report: in this process when ``processes`` is 1, else
    in that many spawned processes whose samples are merged. ``progress`` is called about
    once a second (in this process, with the sums over all processes). Setting ``stop``
    (from a signal handler, another thread) ends the run early the way ``duration`` does:
    no new streams, the open ones drain. Garbage collection
    runs rarely while the streams run (see :func:`gc_tuned`); :func:`arun_load` leaves
    the collector of its caller's process alone."""
    if config.processes == 1:
        with gc_tuned():
            samples = asyncio.run(
                _run_part(config, None, progress, should_stop=stop.is_set if stop else None)
            )
    else:
        samples = _run_processes(config, progress, stop)
    stopped_early = stop is not None and stop.is_set()
    return LoadReport.build(samples, config.describe(), _elapsed(samples, config, stopped_early))


@contextlib.contextmanager
def gc_tuned() -> Iterator[None]:
    """Rarer garbage collections while a run's process measures.

    With thousands of streams open, a full collection walks every live object and stalls
    the loop for hundreds of milliseconds, which the streams then report as latency (the
    accuracy benchmark saw 240-300 ms maxima at 500 streams; 20-30 ms with this). The
    objects alive before the run are frozen out of the collector, and a collection waits
    for 100,000 new objects instead of 700.
    """
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _elapsed(samples: Samples, config: LoadConfig, stopped_early: bool = False) -> float:
    # Throughput is per second of the measured window: the duration, or longer if the last
    # streams ended later (up to stop_timeout); a run stopped early ends with its last stream.
    if stopped_early:
        return samples.last_end
    return max(config.duration, samples.last_end)


def _child(
    index: int,
    config: LoadConfig,
    messages: Any,
    go: Any,
    start_at: Any,
    report_progress: bool,
    phase: float,
    stop: Any,
) -> None:
    """The body of a worker process: wait for the common start, run, send the samples."""
    # Ctrl-C reaches every process of the group: the parent decides (through ``stop``).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    messages.put(("ready", index, None))
    if not go.wait(_READY_TIMEOUT):
        return

    def tick(snapshot: ProgressSnapshot) -> None:
        messages.put(("progress", index, snapshot))

    try:
        with gc_tuned():
            samples = asyncio.run(
                _run_part(
                    config,
                    start_at.value,
                    tick if report_progress else None,
                    phase,
                    stop.is_set,
                )
            )
    except BaseException as error:
        messages.put(("error", index, f"{type(error).__name__}: {error}"))
        raise
    messages.put(("result", index, samples))


def _run_processes(
    config: LoadConfig, progress: ProgressCallback | None, stop: threading.Event | None
) -> Samples:
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    go = context.Event()
    stop_all = context.Event()
    start_at = context.Value("d", 0.0)
    n = config.processes
    workers = [
        context.Process(
            target=_child,
            args=(
                i,
                config.share(i),
                messages,
                go,
                start_at,
                progress is not None,
                i / config.rate if config.rate is not None else 0.0,
                stop_all,
            ),
            name=f"chatapi-load-{i}",
            daemon=True,
        )
        for i in range(n)
    ]
    for worker in workers:
        worker.start()
    try:
        ready = 0
        while ready < n:
            kind, index, payload = _next_message(messages, workers, _READY_TIMEOUT)
            if kind != "ready":
                raise LoadError(f"load process {index} failed before the start: {payload}")
            ready += 1
        start_at.value = time.monotonic() + 0.05
        go.set()
        return _collect(config, messages, workers, progress, stop, stop_all)
    finally:
        for worker in workers:
            worker.join(5.0)
            if worker.is_alive():
                worker.terminate()
                worker.join(5.0)
        messages.close()


def _collect(
    config: LoadConfig,
    messages: Any,
    workers: list[Any],
    progress: ProgressCallback | None,
    stop: threading.Event | None,
    stop_all: Any,
) -> Samples:
    merged: Samples | None = None
    results = 0
    latest: dict[int, ProgressSnapshot] = {}
    recent: list[float] = []
    # Generous: the run, its drain, and time for a loaded machine to send the samples.
    wait = config.ramp_up + config.duration + config.stop_timeout + _READY_TIMEOUT
    while results < len(workers):
        kind, index, payload = _next_message(messages, workers, wait, stop, stop_all)
        if kind == "error":
            raise LoadError(f"load process {index} failed: {payload}")
        if kind == "result":
            results += 1
            if merged is None:
                merged = payload
            else:
                merged.merge(payload)
        elif kind == "progress" and progress is not None:
            latest[index] = payload
            recent.extend(payload.recent_ttft)
            # Every process ticks once a second; the first one paces the display.
            if index == 0:
                progress(_combine(latest.values(), recent))
                recent = []
    assert merged is not None
    return merged


def _next_message(
    messages: Any,
    workers: list[Any],
    timeout: float,
    stop: threading.Event | None = None,
    stop_all: Any = None,
) -> tuple[str, int, Any]:
    deadline = time.monotonic() + timeout
    while True:
        if stop is not None and stop.is_set() and not stop_all.is_set():
            stop_all.set()
        try:
            item: tuple[str, int, Any] = messages.get(timeout=_STOP_POLL)
            return item
        except queue_module.Empty:
            dead = [w.name for w in workers if not w.is_alive() and w.exitcode not in (0, None)]
            if dead:
                raise LoadError(f"load process {dead[0]} died") from None
            if time.monotonic() > deadline:
                raise LoadError("the load processes stopped reporting") from None


def _combine(snapshots: Any, recent: list[float]) -> ProgressSnapshot:
    items = list(snapshots)
    return ProgressSnapshot(
        elapsed=max(s.elapsed for s in items),
        active=sum(s.active for s in items),
        started=sum(s.started for s in items),
        completed=sum(s.completed for s in items),
        failed=sum(s.failed for s in items),
        recent_ttft=tuple(recent),
    )
