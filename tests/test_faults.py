"""Fault handling: misbehaving servers on 127.0.0.1 end in a typed exception or a clean result."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import warnings
from collections.abc import Awaitable, Callable

import pytest

import chatapi._http
from chatapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncChatClient,
    AuthenticationError,
    BadRequestError,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    SSEDecodeError,
    StreamError,
    Timeout,
    UnsupportedMediaTypeError,
)
from chatapi import events as ev

from .conftest import API_KEY, ReplayServer, Reply, acquired_connections, recording, sse

GUARD = 10
STREAM_HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def chunked(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``script`` for each connection, for faults that
    a well-behaved HTTP server cannot produce (resets, truncated bodies, trickled bytes)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.release = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chatapi._http, "BACKOFF_INITIAL", 0.001)


async def test_reset_before_headers_is_a_connection_error_and_chat_is_not_resent() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    raw = RawServer(reset)
    async with raw as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", max_retries=2
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.chat.send("q")
        assert raw.connections == 1  # the request may have reached the server: never re-sent
        assert API_KEY not in str(info.value)


async def test_reset_before_headers_retries_a_get(fast_backoff: None) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    raw = RawServer(reset)
    async with raw as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", max_retries=2
    ) as client:
        with pytest.raises(APIConnectionError):
            await client._http.request_json("GET", "/info")
        assert raw.connections == 3


async def test_reset_mid_stream_is_incomplete_with_partial_answer() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(STREAM_HEADERS)
        writer.write(chunked(sse({"event": "message", "task_id": "t", "conversation_id": "c",
                                  "answer": "Hello"})))
        await writer.drain()
        writer.transport.abort()

    async with RawServer(script) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u"
    ) as client:
        seen: list[ev.StreamEvent] = []
        with pytest.raises(IncompleteStreamError) as info:
            async with client.chat.stream("q") as stream:
                async for event in stream:
                    seen.append(event)
        assert [e.event for e in seen] == ["message"]
        assert info.value.answer == "Hello"
        assert info.value.task_id == "t" and info.value.conversation_id == "c"
        assert acquired_connections(client) == 0


async def test_truncated_json_at_end_of_body_is_incomplete(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(b'data: {"event":"message","task_id":"t","answer":"Hi"}\n\n'
                       b'data: {"event":"message_end","task_'))
    with pytest.raises(IncompleteStreamError) as info:
        await asyncio.wait_for(client.chat.stream("q").final_message(), GUARD)
    assert info.value.answer == "Hi"


async def test_invalid_utf8_is_replaced_not_fatal(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(b'data: {"event":"message","task_id":"t","answer":"caf\xc3 ok"}\n\n'
                       + sse({"event": "message_end", "task_id": "t", "id": "m"})))
    reply = await asyncio.wait_for(client.chat.stream("q").final_message(), GUARD)
    assert reply.answer == "caf\ufffd ok"


async def test_event_larger_than_the_limit(server: ReplayServer) -> None:
    big = {"event": "message", "task_id": "t", "answer": "x" * 5000}
    server.queue(Reply(sse(big), chunk_size=1000, hold_open=True))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u",
                               max_event_size=1024) as client:
        with pytest.raises(SSEDecodeError, match="1024"):
            await asyncio.wait_for(client.chat.stream("q").final_message(), GUARD)
        assert acquired_connections(client) == 0


async def test_slow_server_that_still_completes() -> None:
    body = sse({"event": "message", "answer": "ok"}, {"event": "message_end"})

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(STREAM_HEADERS)
        for byte in body:
            writer.write(chunked(bytes([byte])))
            await writer.drain()
            await asyncio.sleep(0.05)  # the fault under test: one byte per 50 ms
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with RawServer(trickle) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", timeout=Timeout(read=5)
    ) as client:
        reply = await asyncio.wait_for(client.chat.stream("q").final_message(), 3 * GUARD)
    assert reply.answer == "ok"


@pytest.mark.parametrize("status", [502, 524])
async def test_html_gateway_pages_from_a_real_server(
    server: ReplayServer, status: int
) -> None:
    page = b"<!DOCTYPE html><html><title>Gateway timeout</title><body>cloudflare</body></html>"
    server.queue(Reply(page, status=status, content_type="text/html"))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        with pytest.raises(InternalServerError) as info:
            await client.chat.send("q")
    assert info.value.status_code == status and info.value.code is None
    assert "Gateway timeout" in str(info.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_param", BadRequestError),
        (401, "unauthorized", AuthenticationError),
        (403, "forbidden", PermissionDeniedError),
        (404, "not_found", NotFoundError),
        (412, "human_input_form_expired", APIStatusError),
        (413, "file_too_large", RequestTooLargeError),
        (415, "unsupported_file_type", UnsupportedMediaTypeError),
        (429, "too_many_requests", RateLimitError),
        (500, "internal_server_error", InternalServerError),
        (502, "bad_gateway", InternalServerError),
        (503, "unknown", InternalServerError),
        (504, "gateway_timeout", InternalServerError),
    ],
)
async def test_json_error_bodies_from_a_real_server(
    server: ReplayServer, status: int, code: str, cls: type[APIStatusError]
) -> None:
    body = json.dumps({"code": code, "message": f"about {code}", "status": status}).encode()
    server.queue(Reply(body, status=status, content_type="application/json"))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        with pytest.raises(cls) as info:
            await client.chat.send("q")
    assert type(info.value) is cls
    assert (info.value.status_code, info.value.code) == (status, code)
    assert info.value.message == f"about {code}"
    assert len(server.requests) == 1  # a chat message is never re-sent after a response


async def test_429_retry_after_is_honoured_for_a_get(server: ReplayServer) -> None:
    error = json.dumps({"code": "too_many_requests", "message": "wait", "status": 429}).encode()
    server.queue(
        Reply(error, status=429, content_type="application/json", headers={"Retry-After": "0"}),
        Reply(b'{"name": "app"}', content_type="application/json"),
    )
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        assert await client._http.request_json("GET", "/info") == {"name": "app"}
    assert len(server.requests) == 2


async def test_429_retry_after_beyond_the_cap_raises_at_once(server: ReplayServer) -> None:
    error = json.dumps({"code": "too_many_requests", "message": "wait", "status": 429}).encode()
    server.queue(Reply(error, status=429, content_type="application/json",
                       headers={"Retry-After": "3600"}))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        with pytest.raises(RateLimitError) as info:
            await client._http.request_json("GET", "/info")
    assert info.value.retry_after == 3600
    assert len(server.requests) == 1


async def test_503_is_retried_for_a_get_not_for_chat(
    server: ReplayServer, fast_backoff: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatapi")
    error = json.dumps({"code": "unknown", "message": "busy", "status": 503}).encode()
    busy = Reply(error, status=503, content_type="application/json")
    server.queue(busy, busy, Reply(b'{"ok": 1}', content_type="application/json"), busy)
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        assert await client._http.request_json("GET", "/info") == {"ok": 1}
        with pytest.raises(InternalServerError):
            await client.chat.send("q")
    assert len(server.requests) == 4
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2 and all("503" in message for message in retries)


async def test_max_retries_zero_disables_retries(server: ReplayServer) -> None:
    error = json.dumps({"code": "unknown", "message": "busy", "status": 503}).encode()
    server.queue(Reply(error, status=503, content_type="application/json"))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u",
                               max_retries=0) as client:
        with pytest.raises(InternalServerError):
            await client._http.request_json("GET", "/info")
    assert len(server.requests) == 1


async def _mixed_streams(client: AsyncChatClient, server: ReplayServer, count: int) -> None:
    """Run ``count`` streams that end in the four ways a stream can end."""
    body = recording("dify-1.12.1/v1_22_chat_streaming_new")
    failing = sse({"event": "message", "task_id": "t", "answer": "a"},
                  {"event": "error", "status": 500, "code": "internal_server_error",
                   "message": "boom"})

    async def complete() -> None:
        await client.chat.stream("q").final_message()

    async def break_out() -> None:
        async with client.chat.stream("q") as stream:
            async for _ in stream:
                break

    async def fail() -> None:
        with pytest.raises(StreamError):
            await client.chat.stream("q").final_message()

    async def cancel() -> None:
        started = asyncio.Event()

        async def consume() -> None:
            async with client.chat.stream("q") as stream:
                async for _ in stream:
                    started.set()

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    kinds = [
        (complete, Reply(body)),
        (break_out, Reply(body, hold_open=True)),
        (fail, Reply(failing, hold_open=True)),
        (cancel, Reply(sse({"event": "message", "task_id": "t", "answer": "a"}),
                       hold_open=True)),
    ]
    for index in range(count):
        run, reply = kinds[index % len(kinds)]
        server.queue(reply)
        await run()


async def test_a_thousand_streams_leak_nothing(
    server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    before = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u",
                                   connector_limit=10) as client:
            await asyncio.wait_for(_mixed_streams(client, server, 1000), 120)
            assert acquired_connections(client) == 0
        gc.collect()
    ours = {
        task for task in asyncio.all_tasks()
        if task is not asyncio.current_task() and task not in before
        and "chatapi" in repr(task.get_coro())
    }
    assert not ours
    assert len(server.requests) == 1000
    # aiohttp reports leaked sessions and connections through the loop's exception handler.
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def test_no_secret_in_logs_reprs_or_errors(
    server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error = json.dumps({"code": "unauthorized", "message": "Access token is invalid",
                        "status": 401}).encode()
    server.queue(
        Reply(recording("dify-1.12.1/v1_22_chat_streaming_new")),
        Reply(error, status=401, content_type="application/json"),
    )
    texts: list[str] = []
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        stream = client.chat.stream("q")
        texts.append(repr(stream))
        reply = await stream.final_message()
        texts += [repr(reply), str(reply), repr(client), repr(client.timeout)]
        with pytest.raises(AuthenticationError) as info:
            await client.chat.send("q")
        texts += [repr(info.value), str(info.value), repr(info.value.__dict__)]
    assert any("POST /chat-messages" in r.getMessage() for r in caplog.records)
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.args) for r in caplog.records]
    assert all(API_KEY not in text for text in texts)
    assert all(API_KEY[4:] not in text for text in texts)


def test_no_handler_installed_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from chatapi import _logging

    logger = logging.getLogger("chatapi")
    monkeypatch.delenv("CHATAPI_LOG", raising=False)
    assert _logging.setup_from_env() is None
    assert not [h for h in logger.handlers if h.get_name() == "chatapi-env-handler"]
    monkeypatch.setenv("CHATAPI_LOG", "debug")
    handler = _logging.setup_from_env()
    try:
        assert handler is not None and handler in logger.handlers
        assert logger.level == logging.DEBUG
        assert _logging.setup_from_env() is handler  # idempotent
    finally:
        if handler is not None:
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)



async def test_a_get_whose_body_breaks_off_is_retried(fast_backoff: None) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if raw.connections == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{\"name\":")
            await writer.drain()
            writer.transport.abort()
            return
        body = b'{"name": "app"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()

    raw = RawServer(script)
    async with raw as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u"
    ) as client:
        assert await client._http.request_json("GET", "/info") == {"name": "app"}
        assert acquired_connections(client) == 0
    assert raw.connections == 2


async def test_503_with_retry_after_waits_as_asked(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the header ignored, the (huge) backoff would trip the guard.
    monkeypatch.setattr(chatapi._http, "BACKOFF_INITIAL", 1000.0)
    error = json.dumps({"code": "unknown", "message": "busy", "status": 503}).encode()
    server.queue(
        Reply(error, status=503, content_type="application/json", headers={"Retry-After": "0"}),
        Reply(b'{"ok": 1}', content_type="application/json"),
    )
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        reply = await asyncio.wait_for(client._http.request_json("GET", "/info"), GUARD)
    assert reply == {"ok": 1}


async def test_a_hung_get_is_not_retried_past_its_total_limit(server: ReplayServer) -> None:
    # The total limit bounds the whole call: retries may not multiply it.
    server.queue(Reply(b"{", content_type="application/json", hold_open=True))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u",
                               timeout=Timeout(total=0.3), max_retries=2) as client:
        with pytest.raises(APITimeoutError) as info:
            await asyncio.wait_for(client._http.request_json("GET", "/info"), GUARD)
    assert info.value.timeout == "total"
    assert len(server.requests) == 1
