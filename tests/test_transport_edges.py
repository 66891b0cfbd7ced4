"""Issue 10, points 6-12: bounded waits and bodies, hostile HTTP, cookies, settings, fork."""

from __future__ import annotations

import asyncio
import json
import os
import socketserver
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chatapi import (
    APIConnectionError,
    APIProtocolError,
    APITimeoutError,
    AsyncChatClient,
    ChatClient,
    ConfigurationError,
    IncompleteStreamError,
    InternalServerError,
    ResponseDecodeError,
    ResponseTooLargeError,
    SSEDecodeError,
    StreamIdleTimeoutError,
    Timeout,
)
from chatapi._http import MAX_ERROR_BODY
from chatapi.cli import main
from chatapi.sse import SSEDecoder

from .conftest import API_KEY, ReplayServer, Reply, acquired_connections, sse
from .test_faults import GUARD, STREAM_HEADERS, RawServer, Script, chunked

# -- settings (point 12) --------------------------------------------------------------------

SECRET = "s3cret-value"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"base_url": f"http://alice:{SECRET}@dify.example/v1"}, "credentials"),
        ({"base_url": f"https://{SECRET}@dify.example/v1"}, "credentials"),
        ({"base_url": "https://dify.example/v1?tenant=a"}, "query"),
        ({"base_url": "https://dify.example/v1?"}, "query"),
        ({"base_url": "https://dify.example/v1#top"}, "fragment"),
        ({"default_headers": {f"X-A\r\nAuthorization: Bearer {SECRET}": "v"}}, "'X-A'"),
        ({"default_headers": {"X-Trace": f"a\r\nAuthorization: Bearer {SECRET}"}}, "line break"),
        ({"default_headers": {"X-Trace": f"a\n{SECRET}"}}, "line break"),
        ({"default_headers": {"X-Trace": f"{SECRET}\0"}}, "NUL"),
        ({"default_headers": {b"X-Bytes": SECRET}}, "names must be strings"),
        ({"default_headers": {"X-Number": 7}}, "must be a string, got int"),
        ({"default_headers": {"": SECRET}}, "empty header name"),
        ({"default_headers": {"X Space": SECRET}}, "not a valid HTTP header name"),
        ({"default_headers": [("X-Trace", SECRET)]}, "must be a mapping"),
    ],
)
@pytest.mark.parametrize("client_class", [AsyncChatClient, ChatClient])
def test_bad_settings_fail_at_construction_without_showing_secrets(
    client_class: type[AsyncChatClient] | type[ChatClient], settings: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        client_class(api_key=API_KEY, **settings)  # type: ignore[arg-type]
    message = str(info.value)
    assert says in message
    assert SECRET not in message and API_KEY not in message
    assert SECRET not in repr(info.value)


def test_good_settings_still_pass() -> None:
    client = AsyncChatClient(
        api_key=API_KEY,
        base_url="https://dify.example:8443/v1/",
        default_headers={"X-Trace-Id": "abc-1", "Accept-Language": "fr, en;q=0.8"},
    )
    assert client.base_url == "https://dify.example:8443/v1"


# -- cookies (point 11) ---------------------------------------------------------------------


async def test_cookies_set_by_the_server_are_never_sent_back(server: ReplayServer) -> None:
    # aiohttp's default jar ignores cookies from IP addresses: go through a host name.
    base_url = server.base_url.replace("127.0.0.1", "localhost")
    server.queue(
        Reply(
            body=b"{}",
            content_type="application/json",
            headers={"Set-Cookie": "session=alice-only; Path=/"},
        )
    )
    async with AsyncChatClient(api_key=API_KEY, base_url=base_url) as client:
        await client._http.request_json("GET", "/info")
        await client._http.request_json("GET", "/parameters")
    first, second = server.requests
    assert "Set-Cookie" not in first.headers  # sanity: the reply above was the first one
    assert "Cookie" not in second.headers
    assert second.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_no_cookie_jar_on_the_session_the_client_creates(server: ReplayServer) -> None:
    server.queue(
        Reply(body=b"{}", content_type="application/json", headers={"Set-Cookie": "a=b"})
    )
    base_url = server.base_url.replace("127.0.0.1", "localhost")
    async with AsyncChatClient(api_key=API_KEY, base_url=base_url) as client:
        await client._http.request_json("GET", "/info")
        session = client._http._session
        assert session is not None
        assert len(session.cookie_jar) == 0


# -- malformed HTTP (point 10) --------------------------------------------------------------


class ThreadedRawServer:
    """A TCP server on 127.0.0.1, in a thread, that answers every request with ``reply``
    bytes and closes: for the CLI, which runs its own event loop."""

    def __init__(self, reply: bytes) -> None:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                received = b""
                while b"\r\n\r\n" not in received:
                    data = self.request.recv(65536)
                    if not data:
                        return
                    received += data
                self.request.sendall(outer.reply)

        self.reply = reply
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=30)


def replying(data: bytes) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return script


GARBAGE_STATUS = b"GARBAGE 200 OK\r\n\r\n"

BAD_CHUNK_JSON = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\n{}\r\n0\r\n\r\n"
)


@pytest.mark.parametrize("reply", [GARBAGE_STATUS, BAD_CHUNK_JSON, b"HTTP/1.1 200 OK\r\nX\r\n\r\n"])
async def test_malformed_http_is_a_protocol_error(reply: bytes) -> None:
    async with RawServer(replying(reply)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", max_retries=0
    ) as client:
        with pytest.raises(APIProtocolError) as info:
            await client.chat.send("q")
    message = str(info.value)
    assert "malformed HTTP" in message
    assert "ClientResponseError" not in message and "400" not in message
    assert isinstance(info.value, APIConnectionError)
    assert isinstance(info.value.__cause__, aiohttp.ClientResponseError)


async def test_malformed_http_opening_a_stream_is_a_protocol_error() -> None:
    # The first event and a bad chunk size in one packet: aiohttp fails before the
    # response is handed over.
    reply = (
        STREAM_HEADERS
        + chunked(sse({"event": "message", "task_id": "t", "answer": "Hel"}))
        + b"zz\r\nlo\r\n"
    )
    async with RawServer(replying(reply)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u"
    ) as client:
        with pytest.raises(APIProtocolError) as info:
            await client.chat.stream("q").final_message()
    assert "malformed HTTP (Invalid character in chunk size" in str(info.value)


async def test_a_bad_chunk_after_the_first_event_breaks_the_stream_off_at_once() -> None:
    first_read = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(STREAM_HEADERS)
        writer.write(chunked(sse({"event": "message", "task_id": "t", "answer": "Hel"})))
        await writer.drain()
        await first_read.wait()  # a packet of its own, after the response was handed over
        writer.write(b"zz\r\nlo\r\n")
        await writer.drain()
        await reader.read()  # keep the socket open: only the client may close it

    # Limits far beyond the guard: aiohttp alone would wait for one of them.
    limits = Timeout(read=600, stream_idle=600)
    async with RawServer(script) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", timeout=limits
    ) as client:
        async with client.chat.stream("q") as stream:
            first = await stream.__anext__()
            assert first.event == "message"
            first_read.set()
            with pytest.raises(IncompleteStreamError) as info:
                await asyncio.wait_for(stream.__anext__(), GUARD)
        assert acquired_connections(client) == 0
    assert info.value.answer == "Hel"
    assert "malformed HTTP" in str(info.value)


def test_cli_says_the_server_answered_badly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DIFY_API_KEY", "DIFY_BASE_URL", "DIFY_USER"):
        monkeypatch.delenv(name, raising=False)
    with ThreadedRawServer(GARBAGE_STATUS) as base_url:
        code = main(["chat", "--base-url", base_url, "--api-key", API_KEY, "Hi"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("chatapi: error: the server answered badly: POST /chat-messages:")
    assert "cannot reach" not in err and "Traceback" not in err
    assert err.count("\n") == 1


# -- decoder failures (point 9) -------------------------------------------------------------

HUGE_RETRY = b"retry: " + b"9" * 5000 + b"\n\n"
FIRST_EVENT = sse({"event": "message", "task_id": "t", "conversation_id": "c", "answer": "Hi"})


def stream_reply(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@pytest.mark.parametrize("method", ["feed", "feed_data"])
def test_a_retry_field_past_the_int_conversion_limit_is_an_sse_decode_error(method: str) -> None:
    decoder = SSEDecoder()
    with pytest.raises(SSEDecodeError) as info:
        getattr(decoder, method)(HUGE_RETRY)
    assert "retry field of 5000 digits" in str(info.value)
    assert decoder.retry is None


def test_a_long_but_convertible_retry_is_kept() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: " + b"1" * 40 + b"\n\n")
    assert decoder.retry == int("1" * 40)


async def test_a_huge_retry_field_ends_the_stream_with_sse_decode_error(
    server: ReplayServer,
) -> None:
    server.queue(Reply(body=FIRST_EVENT + HUGE_RETRY + FIRST_EVENT))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        seen: list[str] = []
        with pytest.raises(SSEDecodeError):
            async with client.chat.stream("q") as stream:
                async for text in stream.text_stream:
                    seen.append(text)
        assert acquired_connections(client) == 0
    assert seen in ([], ["Hi"])  # the event before may be delivered, never one after


async def test_a_decoder_bug_comes_out_as_sse_decode_error(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: SSEDecoder, chunk: bytes) -> list[bytes]:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(SSEDecoder, "feed_data", broken)
    server.queue(Reply(body=FIRST_EVENT))
    async with AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u") as client:
        stream = client.chat.stream("q")
        with pytest.raises(SSEDecodeError) as info:
            await stream.final_message()
        with pytest.raises(SSEDecodeError):  # and again on a later read
            await stream.final_message()
        assert acquired_connections(client) == 0
    assert "RuntimeError: decoder bug" in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_huge_retry_field_in_a_sync_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    with ThreadedRawServer(stream_reply(FIRST_EVENT + HUGE_RETRY)) as base_url, ChatClient(
        api_key=API_KEY, base_url=base_url, user="u"
    ) as client, pytest.raises(SSEDecodeError):
        client.chat.stream("q").final_message()


def test_cli_reports_a_huge_retry_field_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DIFY_API_KEY", "DIFY_BASE_URL", "DIFY_USER"):
        monkeypatch.delenv(name, raising=False)
    with ThreadedRawServer(stream_reply(FIRST_EVENT + HUGE_RETRY)) as base_url:
        code = main(["chat", "--base-url", base_url, "--api-key", API_KEY, "Hi"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("chatapi: error: retry field of 5000 digits")
    assert "Traceback" not in err and err.count("\n") == 1


# -- the open phase of a stream (point 6) ---------------------------------------------------

TRICKLE_LIMITS = Timeout(connect=2, read=5, stream_idle=0.5)


def trickling(head: bytes, tail: bytes, release: asyncio.Event) -> Script:
    """Send ``head``, then ``tail`` one byte at a time, repeated, until ``release`` is set:
    the socket is never silent long enough for the ``read`` limit."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        for _ in range(100_000):
            for byte in tail:
                if release.is_set():
                    return
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.02)

    return script


@pytest.mark.parametrize(
    ("head", "tail"),
    [
        # Headers that never end.
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n", b"X-Pad: trickle\r\n"),
        # A 503 whose body never ends.
        (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            chunked(b"<p>busy</p>"),
        ),
    ],
)
async def test_the_open_phase_of_a_stream_is_bounded_by_stream_idle(
    head: bytes, tail: bytes
) -> None:
    release = asyncio.Event()
    async with RawServer(trickling(head, tail, release)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", timeout=TRICKLE_LIMITS
    ) as client:
        stream = client.chat.stream("q")
        try:
            with pytest.raises(StreamIdleTimeoutError) as info:
                await asyncio.wait_for(stream.final_message(), GUARD)
        finally:
            release.set()
        assert info.value.timeout == "stream_idle"
        assert "of sending the request" in str(info.value)
        assert acquired_connections(client) == 0


async def test_the_first_event_is_due_within_stream_idle_of_the_request() -> None:
    release = asyncio.Event()
    # Headers complete, then a body of comments that never ends: no event ever arrives.
    head = STREAM_HEADERS
    tail = chunked(b": still here\n")
    async with RawServer(trickling(head, tail, release)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", timeout=TRICKLE_LIMITS
    ) as client:
        try:
            with pytest.raises(StreamIdleTimeoutError):
                await asyncio.wait_for(client.chat.stream("q").final_message(), GUARD)
        finally:
            release.set()


async def test_stream_idle_none_leaves_the_open_phase_to_the_other_limits() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # nothing comes back: the read limit fires

    limits = Timeout(connect=2, read=0.3, stream_idle=None)
    async with RawServer(silent) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", timeout=limits
    ) as client:
        with pytest.raises(APITimeoutError) as info:
            await asyncio.wait_for(client.chat.stream("q").final_message(), GUARD)
    assert info.value.timeout == "read"


# -- body caps (point 7) --------------------------------------------------------------------

PIECE = b"x" * 65536


def endless(head: bytes, release: asyncio.Event, pieces: int = 4096) -> Script:
    """Send ``head`` then up to ``pieces`` 64 KiB chunks (256 MiB), as fast as read."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        for _ in range(pieces):
            if release.is_set():
                return
            writer.write(chunked(PIECE))
            await writer.drain()

    return script


CHUNKED_500 = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
CHUNKED_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.parametrize("streaming", [False, True])
async def test_an_endless_error_body_is_read_up_to_a_cap(streaming: bool) -> None:
    release = asyncio.Event()
    async with RawServer(endless(CHUNKED_500, release)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", max_retries=0
    ) as client:
        try:
            with pytest.raises(InternalServerError) as info:
                if streaming:
                    await asyncio.wait_for(client.chat.stream("q").final_message(), GUARD)
                else:
                    await asyncio.wait_for(client.chat.send("q"), GUARD)
        finally:
            release.set()
        assert acquired_connections(client) == 0
    error = info.value
    assert error.status_code == 500 and error.code is None
    assert error.body == "x" * MAX_ERROR_BODY  # what was read is kept
    assert f"[error body cut at {MAX_ERROR_BODY} bytes]" in str(error)


async def test_an_error_body_that_outlasts_the_call_keeps_what_came() -> None:
    release = asyncio.Event()
    head = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"upstream busy, ")
    )
    async with RawServer(trickling(head, chunked(b"."), release)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", max_retries=0
    ) as client:
        try:
            with pytest.raises(InternalServerError) as info:
                await asyncio.wait_for(
                    client._http.request_json("GET", "/info", timeout=Timeout(total=0.5)), GUARD
                )
        finally:
            release.set()
        assert acquired_connections(client) == 0
    assert str(info.value.body).startswith("upstream busy, ")
    assert "error body incomplete" in str(info.value) and "timeout" in str(info.value)


async def test_a_200_body_past_max_response_size_is_refused() -> None:
    release = asyncio.Event()
    async with RawServer(endless(CHUNKED_200, release)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", max_response_size=100_000
    ) as client:
        try:
            with pytest.raises(ResponseTooLargeError) as info:
                await asyncio.wait_for(client.chat.send("q"), GUARD)
        finally:
            release.set()
        assert acquired_connections(client) == 0
    assert info.value.limit == 100_000
    assert "max_response_size (100000 bytes)" in str(info.value)
    assert isinstance(info.value, ResponseDecodeError)


async def test_a_declared_length_past_max_response_size_is_refused_unread() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5000000000\r\n\r\n"
    release = asyncio.Event()
    async with RawServer(trickling(head, b"x", release)) as base_url, AsyncChatClient(
        api_key=API_KEY, base_url=base_url, user="u", max_response_size=1000
    ) as client:
        try:
            with pytest.raises(ResponseTooLargeError):
                await asyncio.wait_for(client._http.request_json("GET", "/info"), GUARD)
        finally:
            release.set()


async def test_a_body_of_exactly_max_response_size_is_accepted(server: ReplayServer) -> None:
    body = b'"' + b"a" * 998 + b'"'
    server.queue(Reply(body=body, content_type="application/json", chunk_size=100))
    async with AsyncChatClient(
        api_key=API_KEY, base_url=server.base_url, max_response_size=1000
    ) as client:
        assert await client._http.request_json("GET", "/info") == "a" * 998


@pytest.mark.parametrize("client_class", [AsyncChatClient, ChatClient])
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1000"])
def test_max_response_size_is_checked(
    client_class: type[AsyncChatClient] | type[ChatClient], bad: object
) -> None:
    with pytest.raises(ConfigurationError, match="max_response_size"):
        client_class(api_key=API_KEY, max_response_size=bad)  # type: ignore[arg-type]


def test_both_clients_take_max_response_size() -> None:
    with ChatClient(api_key=API_KEY, max_response_size=4096) as client:
        assert client.max_response_size == 4096
    assert AsyncChatClient(api_key=API_KEY).max_response_size == 128 * 1024 * 1024


# -- fork (point 8) -------------------------------------------------------------------------

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="the platform has no fork()")


def run_fork_script(mode: str) -> dict[str, Any]:
    """Fork in a fresh interpreter (never in the test process, whose threads a child would
    not have): tests/_fork_script.py bounds each child with an alarm."""
    script = Path(__file__).with_name("_fork_script.py")
    done = subprocess.run(
        [sys.executable, str(script), mode],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@needs_fork
def test_a_chat_client_used_before_fork_works_in_the_child() -> None:
    results = run_fork_script("sync")
    assert results == {
        "parent_before": "Echo: one",
        "child": {"ok": ["Echo: two", "Echo: three"]},
        "parent_after": "Echo: four",
        "pool": "Echo: five",
    }


@needs_fork
def test_an_async_client_used_before_fork_opens_a_fresh_session_in_the_child() -> None:
    results = run_fork_script("async")
    assert results["parent_before"] == "Echo: one"
    assert results["child"] == {"ok": "Echo: two"}
    assert results["parent_after"] == "Echo: three"
    # A session the user passed belongs to the parent: a clear error, at once.
    assert results["own_session_parent"] == "Echo: four"
    error = results["child_own_session"]["error"]
    assert error.startswith("ConfigurationError:") and "os.fork()" in error
