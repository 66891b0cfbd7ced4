"""The servers the benchmarks talk to, each run in a child process of its own.

A server in the benchmark's own process would compete with the client for the GIL and
measure both at once. ``start_server(...)`` launches ``python -m benchmarks._server ...``,
reads the port(s) it prints and stops it by closing its standard input.

- ``raw EVENTS``: a bare aiohttp app answering ``POST /v1/chat-messages``: in streaming mode
  with a prepared Chatflow body of EVENTS message deltas, written in 64 KiB pieces as fast as
  the socket takes them; in blocking mode with a prepared JSON answer. The cheapest possible
  server, so that the client's work dominates.
- ``fake FLOOD PACE``: two :class:`~chatapi.testing.FakeChatServer` instances. The first
  streams a three-word answer, one word every PACE seconds (streams that stay open, for
  memory and time to first event); the second floods FLOOD message events per answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator

from aiohttp import web

from ._data import blocking_body, stream_body

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


async def _serve_raw(events: int) -> None:
    body = stream_body(events)
    answer = blocking_body()

    async def chat_messages(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        if payload.get("response_mode") == "blocking":
            return web.Response(body=answer, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, len(body), _WRITE):
            await response.write(body[start : start + _WRITE])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat-messages", chat_messages)
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
        asyncio.run(_serve_raw(count))
    else:
        asyncio.run(_serve_fake(count, float(sys.argv[3])))


if __name__ == "__main__":
    main()
