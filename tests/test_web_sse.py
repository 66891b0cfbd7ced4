"""Re-streaming to browsers: ``to_sse()`` output, event selection, failures, and stopping the
run when the consumer goes away (in-process, under aiohttp.web, and under uvicorn in its own
process with Starlette's StreamingResponse)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import aiohttp
import orjson
import pytest
from aiohttp import web

from chatapi import AsyncChatClient, ChatClient, events
from chatapi import web as chatapi_web
from chatapi.sse import ServerSentEvent, SSEDecoder
from chatapi.testing import FakeChatServer
from chatapi.web import encode_sse

from .conftest import acquired_connections

ROOT = Path(__file__).resolve().parent.parent
LONG_ANSWER = " ".join(f"word{i}" for i in range(400))
# Generous safety nets only: every wait below ends as soon as its condition holds.
WAIT = 30.0


def decode_body(body: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder(dispatch_empty=True)  # keep the data-less pings
    return decoder.feed(body) + decoder.close()


def payloads(body: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(event.data) for event in decode_body(body) if event.data]


def stops(server: FakeChatServer) -> list[str]:
    """The task ids of the stop requests the fake server received."""
    return [
        request.path.split("/")[2]
        for request in server.requests
        if request.method == "POST" and request.path.endswith("/stop")
    ]


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for a condition another process or thread makes true."""
    deadline = asyncio.get_running_loop().time() + WAIT
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer() as server:
        yield server


@pytest.fixture
async def client(fake: FakeChatServer) -> AsyncIterator[AsyncChatClient]:
    async with AsyncChatClient(api_key="app-web", base_url=fake.base_url, user="u-1") as c:
        yield c


def slow(server: FakeChatServer) -> None:
    """A long answer in small paced pieces, so that the consumer leaves mid-answer."""
    server.script.reply_with(LONG_ANSWER)
    server.script.chunk_delay = 0.02


# -- what goes out ---------------------------------------------------------------------------


async def test_default_output_is_each_event_as_dify_sent_it(client: AsyncChatClient) -> None:
    async with client.chat.stream("Hello there") as reference:
        expected = [event.raw async for event in reference]
    body = b"".join([chunk async for chunk in client.chat.stream("Hello there").to_sse()])
    sent = payloads(body)
    assert [p["event"] for p in sent] == [p["event"] for p in expected]
    answer = "".join(p["answer"] for p in sent if p["event"] == "message")
    assert answer == "Echo: Hello there"
    assert decode_body(body)[0].event == "ping"  # Dify's keep-alives are passed on


async def test_events_option_keeps_only_the_named_types(client: AsyncChatClient) -> None:
    stream = client.chat.stream("Hi", include_pings=False)
    body = b"".join([c async for c in stream.to_sse(events={"message_end"}, pings=False)])
    assert [p["event"] for p in payloads(body)] == ["message_end"]
    assert all(event.event == "message" for event in decode_body(body))


async def test_transform_maps_and_skips_events(client: AsyncChatClient) -> None:
    def text_only(event: events.StreamEvent) -> ServerSentEvent | None:
        if isinstance(event, events.MessageEvent):
            return ServerSentEvent(event="delta", data=event.answer or "")
        return None

    body = b"".join([c async for c in client.chat.stream("a b").to_sse(transform=text_only)])
    sent = [event for event in decode_body(body) if event.event != "ping"]
    assert {event.event for event in sent} == {"delta"}
    assert "".join(event.data for event in sent) == "Echo: a b"


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("two\nlines", b"data: two\ndata: lines\n\n"),
        ("cr\r\nlf\rend", b"data: cr\ndata: lf\ndata: end\n\n"),
        ({"a": [1, None]}, b'data: {"a":[1,null]}\n\n'),
        (ServerSentEvent(data="x"), b"data: x\n\n"),
        (
            ServerSentEvent(event="done", data="", id="7", retry=3000),
            b"event: done\nid: 7\nretry: 3000\ndata: \n\n",
        ),
        (events.PingEvent(), b"event: ping\n\n"),
        (
            events.MessageEvent(answer="hi", raw={"event": "message", "answer": "hi", "x": 1}),
            b'data: {"event":"message","answer":"hi","x":1}\n\n',
        ),
    ],
)
def test_encode_sse(item: Any, expected: bytes) -> None:
    assert encode_sse(item) == expected
    if expected.startswith(b"data: {"):
        assert decode_body(expected)[0].data == expected[6:-2].decode()


def test_a_decoded_event_goes_out_byte_for_byte_as_received() -> None:
    data = b'{"event": "message", "task_id": "t", "answer": "caf\\u00e9", "x": [1, 2.50]}'
    compact = b'{"event":"message","task_id":"t","answer":"hi"}'
    for payload in (data, compact):
        assert encode_sse(events.decode_event(payload)) == b"data: " + payload + b"\n\n"


def test_an_event_without_raw_goes_out_as_its_to_json() -> None:
    event = events.MessageEvent(answer="hi", task_id="t")
    assert encode_sse(event) == b"data: " + event.to_json().encode() + b"\n\n"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (42, "must return a ServerSentEvent"),
        (ServerSentEvent(event="a\nb"), "line break"),
        ({"a": object()}, "cannot send this mapping as JSON"),
    ],
)
def test_encode_sse_refuses_what_it_cannot_send(item: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        encode_sse(item)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"events": "message"}, "not one string"),
        ({"events": [1]}, "event names"),
        ({"transform": "upper"}, "transform must be callable"),
    ],
)
async def test_bad_options_raise_at_once(
    client: AsyncChatClient, options: dict[str, Any], message: str
) -> None:
    stream = client.chat.stream("Hi")
    with pytest.raises(TypeError, match=message):
        stream.to_sse(**options)
    await stream.aclose()


# -- failures ----------------------------------------------------------------------------


async def test_a_failed_run_becomes_an_error_event_and_the_body_ends(
    fake: FakeChatServer, client: AsyncChatClient
) -> None:
    fake.script.error_event(after=3, code="completion_request_error", message="model down")
    stream = client.chat.stream("Hi")
    body = b"".join([c async for c in stream.to_sse()])
    last = payloads(body)[-1]
    assert last["event"] == "error"
    assert (last["code"], last["message"], last["status"]) == (
        "completion_request_error",
        "model down",
        500,
    )
    assert last["task_id"] == stream.task_id is not None
    assert stream.closed and stops(fake) == []  # a failed run is over: nothing to stop


async def test_an_http_error_at_open_becomes_an_error_event(
    fake: FakeChatServer, client: AsyncChatClient
) -> None:
    fake.script.fail(404, "conversation_not_exists", "Conversation Not Exists.")
    body = b"".join([c async for c in client.chat.stream("Hi").to_sse()])
    [error] = payloads(body)
    assert error["event"] == "error"
    assert (error["status"], error["code"]) == (404, "conversation_not_exists")


async def test_a_cut_connection_sends_a_generic_error_and_stops_the_run(
    fake: FakeChatServer, client: AsyncChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script.drop_after(1500)
    stream = client.chat.stream("Hi")
    body = b"".join([c async for c in stream.to_sse()])
    error = payloads(body)[-1]
    assert (error["event"], error["status"], error["message"]) == (
        "error",
        502,
        "the answer was cut off",
    )
    assert fake.base_url not in body.decode()  # details of the Dify side stay in the log
    assert "failed" in caplog.text
    assert stops(fake) == [stream.task_id]
    assert acquired_connections(client) == 0


# -- the consumer goes away --------------------------------------------------------------


async def test_closing_the_iterator_mid_answer_stops_the_run(
    fake: FakeChatServer, client: AsyncChatClient
) -> None:
    slow(fake)
    stream = client.chat.stream("Hi")
    body = stream.to_sse()
    async for chunk in body:
        if b'"message"' in chunk:
            break
    await body.aclose()  # type: ignore[attr-defined]
    assert stops(fake) == [stream.task_id]
    assert stream.closed and acquired_connections(client) == 0
    assert not chatapi_web._detached_stops


@pytest.mark.parametrize("style", ["asyncio", "anyio"])
async def test_cancelling_the_consumer_stops_the_run(
    fake: FakeChatServer, client: AsyncChatClient, style: str
) -> None:
    import anyio

    slow(fake)
    stream = client.chat.stream("Hi")
    got_text = asyncio.Event()

    async def consume() -> None:
        async for chunk in stream.to_sse():
            if b'"message"' in chunk:
                got_text.set()

    if style == "asyncio":
        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(got_text.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        # Level cancellation, as Starlette's task group does: every await in the cancelled
        # scope is cancelled again, so the stop only goes out when shielded.
        async with anyio.create_task_group() as group:
            group.start_soon(consume)
            with anyio.fail_after(WAIT):
                await got_text.wait()
            group.cancel_scope.cancel()
    assert stops(fake) == [stream.task_id]
    assert stream.closed and acquired_connections(client) == 0


@pytest.mark.parametrize("style", ["async", "sync"])
async def test_leaving_after_the_first_keep_alive_still_stops_the_run(
    fake: FakeChatServer, client: AsyncChatClient, style: str
) -> None:
    slow(fake)
    if style == "async":
        stream = client.chat.stream("Hi")
        body = stream.to_sse()
        assert await body.__anext__() == b"event: ping\n\n"  # no task id seen yet
        assert stream.task_id is None
        await body.aclose()  # type: ignore[attr-defined]
        task_id = stream.task_id
    else:

        def leave_early() -> str | None:
            with ChatClient(api_key="app-web", base_url=fake.base_url, user="u-1") as sync:
                sync_stream = sync.chat.stream("Hi")
                sync_body = sync_stream.to_sse()
                assert next(sync_body) == b"event: ping\n\n"
                sync_body.close()  # type: ignore[attr-defined]
                return sync_stream._stream.task_id  # the reading side's, which a stop uses

        task_id = await asyncio.to_thread(leave_early)
    assert task_id is not None
    assert stops(fake) == [task_id]


async def test_a_dropped_iterator_still_stops_the_run(
    fake: FakeChatServer, client: AsyncChatClient
) -> None:
    slow(fake)
    stream = client.chat.stream("Hi")
    body = stream.to_sse()
    async for chunk in body:
        if b'"message"' in chunk:
            break
    del body, chunk  # the event loop's async generator hook closes it in a task
    await wait_until(lambda: stops(fake) == [stream.task_id], "the stop request")
    await wait_until(lambda: stream.closed and not chatapi_web._detached_stops, "the release")


async def test_a_finished_stream_sends_no_stop(
    fake: FakeChatServer, client: AsyncChatClient
) -> None:
    stream = client.chat.stream("Hi")
    async for _ in stream.to_sse():
        pass
    assert stream.closed and stops(fake) == []


# -- real servers: aiohttp.web in this process --------------------------------------------


async def read_until_text_then_drop(url: str, **request: Any) -> str:
    """POST as a browser would, read until the first answer text, then disconnect.

    Returns the task id the answer events carried.
    """
    async with aiohttp.ClientSession() as session:
        response = await session.post(url, **request)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        decoder = SSEDecoder()
        async for chunk in response.content.iter_any():
            for event in decoder.feed(chunk):
                if event.data and orjson.loads(event.data)["event"] == "message":
                    response.close()  # the browser tab goes away mid-answer
                    task_id: str = orjson.loads(event.data)["task_id"]
                    return task_id
    raise AssertionError("the answer never started")


@pytest.mark.parametrize("handler_cancellation", [False, True])
async def test_aiohttp_web_client_disconnect_stops_the_run(
    fake: FakeChatServer, client: AsyncChatClient, handler_cancellation: bool
) -> None:
    slow(fake)
    done = asyncio.Event()
    opened: list[Any] = []

    async def chat(request: web.Request) -> web.StreamResponse:
        try:
            response = web.StreamResponse(headers=chatapi_web.SSE_HEADERS)
            await response.prepare(request)
            stream = client.chat.stream((await request.json())["query"])
            opened.append(stream)
            async with contextlib.aclosing(stream.to_sse()) as body:
                async for chunk in body:
                    await response.write(chunk)
            return response
        finally:
            done.set()

    app = web.Application()
    app.router.add_post("/chat", chat)
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        task_id = await read_until_text_then_drop(
            f"http://127.0.0.1:{port}/chat", json={"query": "Hi"}
        )
        await asyncio.wait_for(done.wait(), WAIT)
        assert stops(fake) == [task_id]
        assert opened[0].closed and acquired_connections(client) == 0
        assert not chatapi_web._detached_stops
    finally:
        await runner.cleanup()


# -- real servers: uvicorn + Starlette's StreamingResponse in its own process ----------------


@pytest.fixture
async def asgi_server(fake: FakeChatServer) -> AsyncIterator[str]:
    """tests/web_apps/asgi_app.py under uvicorn, in a process of its own; its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    env = {
        **os.environ,
        "DIFY_API_KEY": "app-web",
        "DIFY_BASE_URL": fake.base_url,
        "DIFY_USER": "u-1",
        "PYTHONWARNINGS": "always::ResourceWarning",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "tests.web_apps.asgi_app:app",
        "--fd", str(listener.fileno()), "--log-level", "warning",
        cwd=ROOT, env=env, pass_fds=[listener.fileno()], stderr=subprocess.PIPE,
    )  # fmt: skip
    listener.close()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def up() -> bool:
                try:
                    async with session.get(base + "/state") as response:
                        return response.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            deadline = asyncio.get_running_loop().time() + WAIT
            while not await up():
                assert process.returncode is None, "uvicorn exited"
                assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
                await asyncio.sleep(0.05)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), WAIT)
        except asyncio.TimeoutError:
            process.kill()
            _, stderr = await process.communicate()
    log = stderr.decode()
    for sign in ("Traceback", "Unclosed", "Task was destroyed", "never awaited"):
        assert sign not in log, log


async def test_uvicorn_starlette_client_disconnect_stops_the_run(
    fake: FakeChatServer, asgi_server: str
) -> None:
    slow(fake)
    async with aiohttp.ClientSession() as session:
        async with session.get(asgi_server + "/state") as response:
            before = await response.json()
        task_id = await read_until_text_then_drop(asgi_server + "/chat", json={"query": "Hi"})
        await wait_until(lambda: stops(fake) == [task_id], "the stop request")

        async def settled() -> dict[str, Any]:
            async with session.get(asgi_server + "/state") as response:
                state: dict[str, Any] = await response.json()
                return state

        deadline = asyncio.get_running_loop().time() + WAIT
        while (state := await settled()) != before:
            assert asyncio.get_running_loop().time() < deadline, (before, state)
            await asyncio.sleep(0.05)
    assert state == {"open_streams": 0, "pending_stops": 0, "tasks": before["tasks"]}


async def test_uvicorn_a_whole_answer_passes_through(
    fake: FakeChatServer, asgi_server: str
) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(asgi_server + "/chat", json={"query": "all of it"})
        body = await response.read()
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    sent = payloads(body)
    assert "".join(p["answer"] for p in sent if p["event"] == "message") == "Echo: all of it"
    assert sent[-1]["event"] in ("message_end", "workflow_finished")
    assert stops(fake) == []


# -- sync streams: ChatStream.to_sse() under a WSGI server --------------------------------------


@pytest.fixture
def sync_fake() -> Iterator[FakeChatServer]:
    with FakeChatServer.running_in_thread() as server:
        yield server


def test_sync_to_sse_gives_the_same_bytes_shape(sync_fake: FakeChatServer) -> None:
    with ChatClient(api_key="app-web", base_url=sync_fake.base_url, user="u-1") as sync_client:
        body = b"".join(sync_client.chat.stream("Hi").to_sse(events={"message"}))
    assert "".join(p["answer"] for p in payloads(body)) == "Echo: Hi"


def test_sync_to_sse_closed_mid_answer_stops_the_run(sync_fake: FakeChatServer) -> None:
    slow(sync_fake)
    with ChatClient(api_key="app-web", base_url=sync_fake.base_url, user="u-1") as sync_client:
        stream = sync_client.chat.stream("Hi")
        body = stream.to_sse()
        for chunk in body:
            if b'"message"' in chunk:
                break
        body.close()  # type: ignore[attr-defined]
        assert stops(sync_fake) == [stream.task_id]
        assert stream.closed


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_wsgi_client_disconnect_stops_the_run(sync_fake: FakeChatServer) -> None:
    slow(sync_fake)
    closed = threading.Event()
    with ChatClient(api_key="app-web", base_url=sync_fake.base_url, user="u-1") as sync_client:

        class Body:
            """The WSGI iterable, telling the test when the server has closed it."""

            def __init__(self) -> None:
                self.inner = sync_client.chat.stream("Hi").to_sse()

            def __iter__(self) -> Iterator[bytes]:
                return self.inner

            def close(self) -> None:
                try:
                    self.inner.close()  # type: ignore[attr-defined]
                finally:
                    closed.set()

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Body:
            start_response("200 OK", [("Content-Type", "text/event-stream")])
            return Body()

        server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", server.server_port), timeout=WAIT) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                received = b""
                while b'"message"' not in received:
                    data = s.recv(4096)
                    assert data, "the answer never started"
                    received += data
                task_id = orjson.loads(
                    next(e.data for e in decode_body(received.split(b"\r\n\r\n", 1)[1])
                         if e.data and b'"message"' in e.data.encode())
                )["task_id"]  # fmt: skip
                # Reset rather than close, as a browser tab killed mid-answer may.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            assert closed.wait(WAIT)
            thread.join(WAIT)
            assert stops(sync_fake) == [task_id]
        finally:
            server.server_close()
