"""Part 2: one streamed answer end to end over loopback, from a server in another process.

The server (``benchmarks._server raw``) writes a prepared Chatflow stream of N message
deltas as fast as the socket takes it, in 64 KiB writes (hundreds of events share a read)
or one write, and one HTTP chunk, per event (as Dify flushes each event; a read then
carries as many events as piled up in the socket while the client was busy, often one).
Each consumer sends the request and reads every event; the rate is events per second from
sending the request to the last event. Clients are created, and their connection pools
warmed, outside the timed part.

- **raw aiohttp** (the limit): ``response.content.iter_any()``, split at blank lines,
  ``json.loads``: untyped dicts, no SSE rules.
- **chatapi async**: ``AsyncChatClient.chat.stream`` iterated with ``async for``.
- **chatapi sync**: ``ChatClient.chat.stream`` iterated with ``for`` (the event loop runs in
  the client's thread; a reader there pushes the events to the calling thread).
- **httpx + httpx-sse**: ``aconnect_sse`` on an ``httpx.AsyncClient``, ``json.loads`` each.

Latency: a paced server writes a delta every 2 ms stamped with ``time.monotonic_ns()``; the
row is the median delay until the event is in the consumer's hands, async and sync.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from chatapi import AsyncChatClient, ChatClient
from chatapi.events import MessageEvent

from ._common import MISSING_PEER, Row, Settings, interleaved, peer_version
from ._data import EXTRA_EVENTS
from ._server import start_server

__all__ = ["API_KEY", "run"]

API_KEY = "app-benchmark"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
BODY = {"inputs": {}, "query": "benchmark", "response_mode": "streaming", "user": "bench"}


async def _raw_aiohttp(url: str, session: aiohttp.ClientSession) -> int:
    loads = json.loads
    count = 0
    async with session.post(url, json=BODY, headers=HEADERS) as response:
        buffer = bytearray()
        async for chunk in response.content.iter_any():
            start = len(buffer) - 1
            buffer += chunk
            if buffer.find(b"\n\n", start if start > 0 else 0) < 0:
                continue
            blocks = buffer.split(b"\n\n")
            buffer = blocks.pop()
            for block in blocks:
                if block.startswith(b"data:"):
                    loads(block[5:])
                count += 1
    return count


def _rate(name: str, count: int, expected: int, started: float) -> float:
    if count != expected:
        raise AssertionError(f"{name} read {count} events, expected {expected}")
    return count / (time.perf_counter() - started)


def raw_aiohttp(base_url: str, expected: int) -> Callable[[], float]:
    url = base_url + "/chat-messages"

    async def timed() -> float:
        async with aiohttp.ClientSession() as session:
            await _raw_aiohttp(url, session)  # warm the connection pool
            started = time.perf_counter()
            return _rate(RAW, await _raw_aiohttp(url, session), expected, started)

    return lambda: asyncio.run(timed())


async def _chatapi_async(client: AsyncChatClient) -> int:
    count = 0
    async with client.chat.stream("benchmark") as stream:
        async for _ in stream:
            count += 1
    return count


def chatapi_async(base_url: str, expected: int) -> Callable[[], float]:
    async def timed() -> float:
        async with AsyncChatClient(API_KEY, base_url=base_url, user="bench") as client:
            await _chatapi_async(client)
            started = time.perf_counter()
            # The stream's ping is consumed, not yielded.
            return _rate(ASYNC, await _chatapi_async(client), expected - 1, started)

    return lambda: asyncio.run(timed())


def _chatapi_sync(client: ChatClient) -> int:
    count = 0
    with client.chat.stream("benchmark") as stream:
        for _ in stream:
            count += 1
    return count


def chatapi_sync(base_url: str, expected: int) -> Callable[[], float]:
    def timed() -> float:
        with ChatClient(API_KEY, base_url=base_url, user="bench") as client:
            _chatapi_sync(client)
            started = time.perf_counter()
            return _rate(SYNC, _chatapi_sync(client), expected - 1, started)

    return timed


async def _httpx_sse(url: str, client: Any) -> int:
    from httpx_sse import aconnect_sse

    loads = json.loads
    count = 0
    async with aconnect_sse(client, "POST", url, json=BODY, headers=HEADERS) as source:
        async for sse in source.aiter_sse():
            if sse.data:
                loads(sse.data)
            count += 1
    return count


def httpx_sse(base_url: str, expected: int) -> Callable[[], float]:
    import httpx

    url = base_url + "/chat-messages"

    async def timed() -> float:
        async with httpx.AsyncClient(timeout=60) as client:
            await _httpx_sse(url, client)
            started = time.perf_counter()
            return _rate(HTTPX, await _httpx_sse(url, client), expected, started)

    return lambda: asyncio.run(timed())


RAW = "raw aiohttp iter_any + split + json"
ASYNC = "chatapi async stream"
SYNC = "chatapi sync stream"
HTTPX = "httpx + httpx-sse + json"
CONSUMERS: list[tuple[str, Callable[[str, int], Callable[[], float]], list[str]]] = [
    (RAW, raw_aiohttp, []),
    (ASYNC, chatapi_async, []),
    (SYNC, chatapi_sync, []),
    (HTTPX, httpx_sse, ["httpx", "httpx-sse"]),
]


PER_EVENT: list[str] = ["per-event"]
PATTERNS: tuple[tuple[str, list[str]], ...] = (
    ("64 KiB writes", []),
    ("one event per write", PER_EVENT),
)


def run(settings: Settings) -> list[Row]:
    """Part 2: every consumer reads the same stream, round-robin, ``repeat`` times, for each
    way of writing it; then the latency of events paced like model output."""
    rows: list[Row] = []
    for label, server_args in PATTERNS:
        rows += _throughput(settings, label, server_args)
    rows += _latency(settings)
    return rows


def _throughput(settings: Settings, label: str, server_args: list[str]) -> list[Row]:
    part = f"2: end to end, {settings.events:,} events over loopback, {label}"
    rows = {name: Row(part, name, "events/s") for name, _, _ in CONSUMERS}
    with start_server("raw", str(settings.events), *server_args) as (port,):
        base_url = f"http://127.0.0.1:{port}/v1"
        runs: dict[str, Callable[[], float]] = {}
        for name, consumer, requirements in CONSUMERS:
            if requirements and not (settings.peers and all(map(peer_version, requirements))):
                rows[name].note = MISSING_PEER if settings.peers else "skipped"
                continue
            runs[name] = consumer(base_url, settings.events + EXTRA_EVENTS)
        for name, values in interleaved(runs, settings.repeat).items():
            rows[name].values = values
    raw = rows[RAW]
    raw.baseline = RAW
    for row in rows.values():
        if row is not raw and row.values:
            row.ratio_of(raw)
    async_ = rows[ASYNC]
    async_.check(">= 1.0x raw aiohttp", lambda ratio: ratio >= 1.0)
    _versus(rows[SYNC], async_, "async", 0.9)
    # Issue 11 sets the httpx target for Dify's pattern, one event per chunk; with large
    # reads the ratio is shown for information.
    _versus(rows[HTTPX], async_, "async", 0.5, reverse=True, judged=server_args == PER_EVENT)
    return list(rows.values())


def _versus(
    row: Row,
    other: Row,
    label: str,
    floor: float,
    *,
    reverse: bool = False,
    judged: bool = True,
) -> None:
    """Judge ``row`` against ``other`` repetition by repetition (or ``other`` against ``row``
    with ``reverse``: "async >= 2x this" is "this <= 0.5x async"). Not ``judged``: the
    ratio is shown without a target."""
    if not (row.values and other.values):
        return
    pairs = zip(row.values, other.values, strict=True)
    median = statistics.median([mine / theirs for mine, theirs in pairs])
    if not judged:
        row.target = f"{label} / this: {1 / median:.2f}x" if reverse else f"{median:.2f}x {label}"
    elif reverse:
        row.target = f"async >= {1 / floor:g}x this: {1 / median:.2f}x"
        row.met = median <= floor
    else:
        row.target = f">= {floor}x {label}: {median:.2f}x"
        row.met = median >= floor


async def _paced_async(base_url: str) -> list[int]:
    lags = []
    client = AsyncChatClient(API_KEY, base_url=base_url, user="bench")
    async with client, client.chat.stream("latency") as stream:
        async for event in stream:
            if isinstance(event, MessageEvent) and event.answer:
                lags.append(time.monotonic_ns() - int(event.answer))
    return lags


def _paced_sync(base_url: str) -> list[int]:
    lags = []
    client = ChatClient(API_KEY, base_url=base_url, user="bench")
    with client, client.chat.stream("latency") as stream:
        for event in stream:
            if isinstance(event, MessageEvent) and event.answer:
                lags.append(time.monotonic_ns() - int(event.answer))
    return lags


def _latency(settings: Settings) -> list[Row]:
    """From the server's write of an event to the consumer's hands, one event every 2 ms."""
    count = max(50, min(settings.events // 100, 500))
    part = f"2: latency per event, {count} events 2 ms apart"
    async_row = Row(part, "chatapi async: p50 write → event", "µs", higher_is_better=False)
    sync_row = Row(part, "chatapi sync: p50 write → event", "µs", higher_is_better=False)
    with start_server("paced", str(count), "0.002") as (port,):
        base_url = f"http://127.0.0.1:{port}/v1"

        def p50(lags: list[int]) -> float:
            if len(lags) != count:
                raise AssertionError(f"read {len(lags)} paced events, expected {count}")
            return statistics.median(lags) / 1e3

        runs = {
            "async": lambda: p50(asyncio.run(_paced_async(base_url))),
            "sync": lambda: p50(_paced_sync(base_url)),
        }
        results = interleaved(runs, settings.repeat)
    async_row.values, sync_row.values = results["async"], results["sync"]
    async_row.baseline = async_row.name
    sync_row.ratio_of(async_row)
    added = statistics.median(
        [mine - theirs for mine, theirs in zip(sync_row.values, async_row.values, strict=True)]
    )
    sync_row.target = f"<= async + 50 µs: {added:+.0f} µs"
    sync_row.met = added <= 50
    return [async_row, sync_row]
