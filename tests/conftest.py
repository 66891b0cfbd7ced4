"""Shared fixtures: recorded Dify streams and a local aiohttp server that replays them."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

from chatapi import AsyncChatClient

STREAMS = Path(__file__).parent / "fixtures" / "streams"
API_KEY = "app-test-secret-key-0123456789"

# Settings of whoever runs the tests that make a child Python write to stderr by itself:
# asyncio's debug mode (PYTHONASYNCIODEBUG set to any value, even "0", or dev mode) reports
# every callback slower than 0.1 s, which a busy machine produces at random.
NOISY_ENV = ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONWARNINGS")


# Hypothesis times every example (a 200 ms deadline) and the generation of data (the
# too_slow health check): on a busy machine both fail tests that are correct. Speed is the
# benchmarks' business, never a test's.
settings.register_profile(
    "chatapi-tests", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("chatapi-tests")


def _aioresponses_problem() -> str | None:
    """Why aioresponses cannot mock the installed aiohttp (None when it can): tried once with
    a real mocked request, so that the tests run again as soon as it catches up."""
    try:
        from aioresponses import aioresponses
    except ImportError as exc:
        return f"aioresponses is not installed ({exc})"

    async def probe() -> None:
        with aioresponses() as mocked:
            mocked.get("http://probe.test/", payload={})
            async with (
                aiohttp.ClientSession() as session,
                session.get("http://probe.test/") as response,
            ):
                await response.json()

    try:
        # On a thread of its own: no event loop of the test session is touched.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except Exception as exc:
        return (
            f"aioresponses cannot mock aiohttp {aiohttp.__version__} "
            f"({type(exc).__name__}: {exc}); .ci/run runs these tests on the pinned aiohttp"
        )
    return None


AIORESPONSES_PROBLEM = _aioresponses_problem()
# For tests built on aioresponses: they skip, saying why, where it cannot work (aiohttp
# 3.14 changed the ClientResponse constructor that aioresponses 0.7.9 calls).
requires_aioresponses = pytest.mark.skipif(
    AIORESPONSES_PROBLEM is not None, reason=AIORESPONSES_PROBLEM or ""
)


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a Python subprocess whose stderr a test checks."""
    env = {name: value for name, value in os.environ.items() if name not in NOISY_ENV}
    env.update(overrides)
    return env


def recording(name: str) -> bytes:
    """The raw body of a recorded response, e.g. ``dify-1.12.1/v1_22_chat_streaming_new``."""
    return (STREAMS / name / "body.txt").read_bytes()


def sse(*payloads: dict[str, Any] | str) -> bytes:
    """Encode events the way Dify does: ``data: {json}`` blocks, ``event: ping`` for "ping"."""
    out = []
    for payload in payloads:
        if payload == "ping":
            out.append(b"event: ping\n\n")
        else:
            out.append(b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n")
    return b"".join(out)


@attrs.define
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Handler = Callable[[web.Request, "ReplayServer"], Awaitable[web.StreamResponse]]


@attrs.define
class Reply:
    """What the server answers: a status, headers and a body written in chunks."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/event-stream; charset=utf-8"
    chunk_size: int | None = None
    hold_open: bool = False
    headers: dict[str, str] = attrs.Factory(dict)


class ReplayServer:
    """An aiohttp server on 127.0.0.1 answering each request with the next queued reply."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.replies: list[Reply] = []
        self.default = Reply(body=b"{}", content_type="application/json")
        self.release = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.base_url = ""

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        reply = self.replies.pop(0) if self.replies else self.default
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_type = reply.content_type.split(";")[0]
        if "charset=" in reply.content_type:
            response.charset = reply.content_type.split("charset=")[1]
        await response.prepare(request)
        try:
            size = reply.chunk_size or max(len(reply.body), 1)
            for start in range(0, len(reply.body), size):
                await response.write(reply.body[start : start + size])
            if reply.hold_open:
                await self.release.wait()
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        await response.write_eof()
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    srv = ReplayServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client(server: ReplayServer) -> AsyncIterator[AsyncChatClient]:
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="user-1") as c:
        yield c


def acquired_connections(client: AsyncChatClient) -> int:
    """How many connections the client's pool has handed out and not got back."""
    session = client._http._session
    if session is None:
        return 0
    return len(session.connector._acquired)  # type: ignore[union-attr]
