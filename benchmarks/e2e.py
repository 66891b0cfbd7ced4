"""Part 2: one streamed answer end to end over loopback, from a server in another process.

The server (``benchmarks._server raw``) writes a prepared Chatflow stream of N message
deltas as fast as the socket takes it. Each consumer sends the request and reads every event;
the rate is events per second from sending the request to the last event. Clients are
created, and their connection pools warmed, outside the timed part.

- **raw aiohttp** (the limit): ``response.content.iter_any()``, split at blank lines,
  ``json.loads``: untyped dicts, no SSE rules.
- **chatapi async**: ``AsyncChatClient.chat.stream`` iterated with ``async for``.
- **chatapi sync**: ``ChatClient.chat.stream`` iterated with ``for`` (the event loop runs in
  the client's thread; events cross in batches).
- **httpx + httpx-sse**: ``aconnect_sse`` on an ``httpx.AsyncClient``, ``json.loads`` each.
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


def run(settings: Settings) -> list[Row]:
    """Part 2: every consumer reads the same stream, round-robin, ``repeat`` times."""
    part = f"2: end to end, {settings.events:,} events over loopback"
    rows = {name: Row(part, name, "events/s") for name, _, _ in CONSUMERS}
    with start_server("raw", str(settings.events)) as (port,):
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
    rows[ASYNC].check(">= 0.8x raw aiohttp", lambda ratio: ratio >= 0.8)
    sync, async_ = rows[SYNC], rows[ASYNC]
    if sync.values and async_.values:
        pairs = zip(sync.values, async_.values, strict=True)
        versus = [mine / theirs for mine, theirs in pairs]
        sync.target = f">= 0.7x async: {statistics.median(versus):.2f}x"
        sync.met = statistics.median(versus) >= 0.7
    return list(rows.values())
