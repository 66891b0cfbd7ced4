"""Part 3: many concurrent streams from one event loop against FakeChatServer.

The servers run in a child process (``benchmarks._server fake``). For each level N:

- **open and hold**: N streams start at once on a fresh client against the paced server,
  which answers three words, one per second (``Settings.pace``). Each stream reads its first event
  (``workflow_started``; the time from its start is its *time to first event*) and then
  waits until all N have theirs: at that moment all N are mid-stream, and the growth of the
  process's resident memory since before the client was created, divided by N, is the memory
  of one open stream (connection, buffers, decoder, stream state). Then every stream reads
  on to its end; *completed* counts those that got the whole answer without an error.
- **flood**: N streams at once against the flooding server, each answering with many
  message events as fast as it can; *events/s* is all events of all streams over the wall
  time of the round (the client and the server share the machine's cores).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import resource
import statistics
import subprocess
import sys
import time

from chatapi import AsyncChatClient

from ._common import Row, Settings, rss_bytes
from ._server import start_server

__all__ = ["run"]

API_KEY = "app-benchmark"


def _raise_file_limit(streams: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = streams + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(hard, max(wanted, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


async def _hold(base_url: str, streams: int) -> tuple[int, list[float], float, dict[str, int]]:
    """Open ``streams`` at once, hold them all mid-stream, then finish them.

    Returns the completed count, the times to first event, the memory per open stream and
    the failures by kind (the exception's class, or "wrong answer").
    """
    gc.collect()
    before = rss_bytes()
    all_open = asyncio.Event()
    arrived = 0
    first_event: list[float] = []

    async def one(client: AsyncChatClient) -> bool:
        nonlocal arrived
        started = time.perf_counter()
        async with client.chat.stream("hold") as stream:
            await stream.__anext__()
            first_event.append(time.perf_counter() - started)
            arrived += 1
            if arrived == streams:
                all_open.set()
            await all_open.wait()
            await stream.until_done()
            return stream.current_answer == "one two three"

    async with AsyncChatClient(
        API_KEY, base_url=base_url, user="bench", connector_limit=0
    ) as client:
        tasks = [asyncio.ensure_future(one(client)) for _ in range(streams)]
        waiter = asyncio.ensure_future(all_open.wait())
        # Before every stream is open, a task can only end by failing.
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        if not all_open.is_set():
            all_open.set()  # let the others go on rather than wait for the failed one
            per_stream = float("nan")
        else:
            per_stream = (rss_bytes() - before) / streams
        results = await asyncio.gather(*tasks, return_exceptions=True)
        waiter.cancel()
    completed = sum(result is True for result in results)
    failures = collections.Counter(
        type(result).__name__ if isinstance(result, BaseException) else "wrong answer"
        for result in results
        if result is not True
    )
    return completed, first_event, per_stream, dict(failures)


def _hold_in_child(
    base_url: str, streams: int
) -> tuple[int, list[float], float | None, dict[str, int]]:
    """Run one open-and-hold round in a fresh process: memory freed by an earlier round
    would otherwise be reused and hide what the streams take."""
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.concurrency", base_url, str(streams)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    done, firsts, per_stream, failures = json.loads(output)
    return done, firsts, per_stream, failures


async def _hold_round(
    base_url: str, streams: int
) -> tuple[int, list[float], float, dict[str, int]]:
    _raise_file_limit(streams)
    # Warm up first (imports, the event classes' structure functions), on another client.
    async with (
        AsyncChatClient(API_KEY, base_url=base_url, user="bench") as client,
        client.chat.stream("warm up") as stream,
    ):
        await stream.until_done()
    return await _hold(base_url, streams)


async def _flood(client: AsyncChatClient, streams: int) -> tuple[int, int, float]:
    """N flooding streams at once; returns completed, events and seconds."""

    async def one() -> int:
        count = 0
        async with client.chat.stream("flood") as stream:
            async for _ in stream:
                count += 1
        return count

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(streams)), return_exceptions=True)
    elapsed = time.perf_counter() - started
    counts = [result for result in results if isinstance(result, int)]
    return len(counts), sum(counts), elapsed


async def _level(ports: list[int], streams: int, settings: Settings) -> list[Row]:
    paced = f"http://127.0.0.1:{ports[0]}/v1"
    flooding = f"http://127.0.0.1:{ports[1]}/v1"
    part = f"3: {streams:,} concurrent streams"
    completed = Row(part, "completed (open-and-hold rounds)", "streams")
    ttfe_p50 = Row(part, "time to first event p50", "ms", higher_is_better=False)
    ttfe_p99 = Row(part, "time to first event p99", "ms", higher_is_better=False)
    memory = Row(part, "memory per open stream (RSS)", "KiB", higher_is_better=False)
    rate = Row(part, f"flood: {settings.flood} events per stream", "events/s")
    flood_done = Row(part, "completed (flood rounds)", "streams")
    failed: collections.Counter[str] = collections.Counter()
    for _ in range(settings.repeat):
        done, firsts, per_stream, failures = _hold_in_child(paced, streams)
        completed.values.append(done)
        failed.update(failures)
        if firsts:
            ordered = sorted(firsts)
            ttfe_p50.values.append(statistics.median(ordered) * 1e3)
            ttfe_p99.values.append(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3)
        if per_stream is not None:  # every stream got to its first event
            memory.values.append(per_stream / 1024)
    async with AsyncChatClient(
        API_KEY, base_url=flooding, user="bench", connector_limit=0
    ) as client:
        await _flood(client, min(streams, 100))  # warm up
        for _ in range(settings.repeat):
            done, events, seconds = await _flood(client, streams)
            flood_done.values.append(done)
            rate.values.append(events / seconds)
    if failed:
        # Which failures, over all rounds: the count alone would not say why.
        completed.note = "failed: " + ", ".join(f"{kind} x{n}" for kind, n in failed.items())
    completed.check(f"= {streams:,}", lambda value: value == streams, on="value")
    flood_done.check(f"= {streams:,}", lambda value: value == streams, on="value")
    if streams >= 1_000:
        memory.check("<= 20 KiB", lambda value: value <= 20, on="value")
    return [completed, ttfe_p50, ttfe_p99, memory, rate, flood_done]


def main() -> None:
    """Child process: ``python -m benchmarks.concurrency BASE_URL STREAMS``."""
    base_url, streams = sys.argv[1], int(sys.argv[2])
    done, firsts, per_stream, failures = asyncio.run(_hold_round(base_url, streams))
    print(json.dumps([done, firsts, None if per_stream != per_stream else per_stream, failures]))


def run(settings: Settings) -> list[Row]:
    """Part 3 at each concurrency level of the settings."""
    _raise_file_limit(max(settings.streams))
    rows: list[Row] = []
    with start_server("fake", str(settings.flood), str(settings.pace)) as ports:
        for streams in settings.streams:
            rows += asyncio.run(_level(ports, streams, settings))
    return rows


if __name__ == "__main__":
    main()
