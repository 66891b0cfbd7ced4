"""Part 4: what chatapi costs besides streaming — importing it, and one blocking call.

- **import**: wall time of ``python -c "import chatapi"`` next to ``python -c "import
  aiohttp"`` (chatapi's transport), each started afresh, round-robin. ``python -c pass``
  shows the interpreter's own start; ``chatapi --version`` and ``chatapi chat --help`` the
  command's (it parses arguments without importing the client).
- **per call**: sequential blocking-mode ``chat.send`` calls to the raw benchmark server
  (a prepared JSON answer), next to the same POST made with aiohttp and decoded with
  ``json.loads`` on the same kind of pooled session; microseconds per call, so lower is
  better and the ratio says how much the typed client adds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable

import aiohttp

from chatapi import AsyncChatClient, ChatClient

from ._common import Row, Settings, interleaved
from ._server import start_server

__all__ = ["run"]

API_KEY = "app-benchmark"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
BODY = {"inputs": {}, "query": "benchmark", "response_mode": "blocking", "user": "bench"}


def _start(code: str) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
        return (time.perf_counter() - started) * 1e3

    return run


def _import_rows(settings: Settings) -> list[Row]:
    part = "4: cost of import (fresh interpreter)"
    commands = {
        "python -c 'import aiohttp'": "import aiohttp",
        "python -c 'import chatapi'": "import chatapi",
        # The command's start: argument parsing only, no client (issue 13).
        "chatapi --version": "from chatapi.cli import main; main(['--version'])",
        "chatapi chat --help": "from chatapi.cli import main; main(['chat', '--help'])",
        "python -c pass": "pass",
    }
    runs = {name: _start(code) for name, code in commands.items()}
    results = interleaved(runs, settings.imports)
    rows = {
        name: Row(part, name, "ms", values, higher_is_better=False)
        for name, values in results.items()
    }
    aiohttp_row = rows["python -c 'import aiohttp'"]
    aiohttp_row.baseline = aiohttp_row.name
    for row in rows.values():
        if row is not aiohttp_row:
            row.ratio_of(aiohttp_row)
    return list(rows.values())


def _per_call(calls: int, call: Callable[[], object]) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def _raw_calls(url: str, calls: int) -> Callable[[], float]:
    async def timed() -> float:
        async with aiohttp.ClientSession() as session:

            async def one() -> object:
                async with session.post(url, json=BODY, headers=HEADERS) as response:
                    response.raise_for_status()
                    return json.loads(await response.read())

            await one()
            started = time.perf_counter()
            for _ in range(calls):
                await one()
            return (time.perf_counter() - started) / calls * 1e6

    return lambda: asyncio.run(timed())


def _async_calls(base_url: str, calls: int) -> Callable[[], float]:
    async def timed() -> float:
        async with AsyncChatClient(API_KEY, base_url=base_url, user="bench") as client:
            await client.chat.send("benchmark")
            started = time.perf_counter()
            for _ in range(calls):
                await client.chat.send("benchmark")
            return (time.perf_counter() - started) / calls * 1e6

    return lambda: asyncio.run(timed())


def _sync_calls(base_url: str, calls: int) -> Callable[[], float]:
    def timed() -> float:
        with ChatClient(API_KEY, base_url=base_url, user="bench") as client:
            client.chat.send("benchmark")
            return _per_call(calls, lambda: client.chat.send("benchmark"))

    return timed


RAW = "raw aiohttp POST + json.loads"


def _call_rows(settings: Settings) -> list[Row]:
    part = f"4: blocking call, {settings.calls:,} in a row"
    with start_server("raw", "1") as (port,):
        base_url = f"http://127.0.0.1:{port}/v1"
        runs = {
            RAW: _raw_calls(base_url + "/chat-messages", settings.calls),
            "chatapi AsyncChatClient.chat.send": _async_calls(base_url, settings.calls),
            "chatapi ChatClient.chat.send": _sync_calls(base_url, settings.calls),
        }
        results = interleaved(runs, settings.repeat)
    rows = {
        name: Row(part, name, "µs/call", values, higher_is_better=False)
        for name, values in results.items()
    }
    raw = rows[RAW]
    raw.baseline = RAW
    for row in rows.values():
        if row is not raw:
            row.ratio_of(raw)
    return list(rows.values())


def run(settings: Settings) -> list[Row]:
    """Part 4: import cost and per-call overhead."""
    return _import_rows(settings) + _call_rows(settings)
