"""The servers the benchmarks talk to, each run in a child process of its own.

A server in the benchmark's own process would compete with the client for the GIL and
measure both at once. ``start_server(...)`` launches ``python -m benchmarks._server ...``,
reads the port(s) it prints and stops it by closing its standard input.

- ``raw EVENTS``: a bare aiohttp app answering ``POST /v1/chat-messages``: in streaming mode
  with a prepared Chatflow body of EVENTS message deltas, written in 64 KiB pieces as fast as
  the socket takes them; in blocking mode with a prepared JSON answer. The cheapest possible
  server, so that the client's work dominates.
- ``paced EVENTS INTERVAL``: EVENTS message deltas, one every INTERVAL seconds, each with
  the time it was written (for the latency of a stream's events), then the closing events.
- ``fake FLOOD PACE``: two :class:`~chatapi.testing.FakeChatServer` instances. The first
  streams a three-word answer, one word every PACE seconds (streams that stay open, for
  memory and time to first event); the second floods FLOOD message events per answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ._data import blocking_body, end_events, message_event, stream_body

__all__ = ["start_server"]

_WRITE = 64 * 1024


@contextlib.contextmanager
def start_server(*args: str) -> Iterator[list[int]]:
    """Run ``python -m benchmarks._server ARGS`` until the block ends; yield its ports."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark server {args} did not start")
        yield [int(port) for port in line.split()]
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _split_events(body: bytes) -> list[bytes]:
    """The body cut after each blank line: one write per event, as Dify flushes them."""
    pieces = body.split(b"\n\n")
    return [piece + b"\n\n" for piece in pieces[:-1]]


async def _serve_raw(events: int, per_event: bool) -> None:
    body = stream_body(events)
    writes = (
        _split_events(body)
        if per_event
        else [body[start : start + _WRITE] for start in range(0, len(body), _WRITE)]
    )
    answer = blocking_body()

    async def chat_messages(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        if payload.get("response_mode") == "blocking":
            return web.Response(body=answer, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in writes:
            await response.write(piece)
        await response.write_eof()
        return response

    await _serve_app(chat_messages)


async def _serve_paced(events: int, interval: float) -> None:
    """Answer deltas one per ``interval`` seconds, each carrying the monotonic time of its
    write in nanoseconds as its answer (the clock is shared by the processes of a machine)."""

    async def chat_messages(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(events):
            await response.write(message_event(str(time.monotonic_ns())))
            await asyncio.sleep(interval)
        await response.write(end_events())
        await response.write_eof()
        return response

    await _serve_app(chat_messages)


async def _serve_app(handler: Any) -> None:
    app = web.Application()
    app.router.add_post("/v1/chat-messages", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    print(server.sockets[0].getsockname()[1], flush=True)
    try:
        await _until_stdin_closes()
    finally:
        await runner.cleanup()


async def _serve_fake(flood: int, pace: float) -> None:
    from chatapi.testing import FakeChatServer

    paced = FakeChatServer(replies="one two three", chunk_delay=pace, ping_interval=60.0)
    flooding = FakeChatServer(ping_interval=60.0)
    flooding.script.flood(flood, times=None)
    async with paced, flooding:
        print(paced.port, flooding.port, flush=True)
        await _until_stdin_closes()


def main() -> None:
    kind, count = sys.argv[1], int(sys.argv[2])
    if kind == "raw":
        asyncio.run(_serve_raw(count, per_event=sys.argv[3:] == ["per-event"]))
    elif kind == "paced":
        asyncio.run(_serve_paced(count, float(sys.argv[3])))
    else:
        asyncio.run(_serve_fake(count, float(sys.argv[3])))


if __name__ == "__main__":
    main()
