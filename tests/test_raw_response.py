"""with_raw_response on every resource, APIStatusError.response, per-call max_retries and
with_options, for both clients, against local servers."""

from __future__ import annotations

import datetime
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatapi import (
    AsyncChatClient,
    AsyncChatStream,
    ChatClient,
    ChatCompletion,
    ChatStream,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    RawResponse,
    ResponseDecodeError,
)
from chatapi._bridge import SyncResource
from chatapi._raw import AsyncRawResponses, RawMethod, SyncRawMethod, SyncRawResponses
from chatapi.models import AppInfo, Page
from chatapi.resources import AsyncResource
from chatapi.testing import FakeChatServer

from .conftest import API_KEY, ReplayServer, Reply, acquired_connections

# A 503 that asks for an immediate retry, so that retry tests do not wait for the backoff.
RETRY_NOW = {"Retry-After": "0"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer() as server:
        yield server


@pytest.fixture
async def client(fake: FakeChatServer) -> AsyncIterator[AsyncChatClient]:
    async with AsyncChatClient(fake.api_key, base_url=fake.base_url, user="u-1") as c:
        yield c


@pytest.fixture
def threaded_fake() -> Iterator[FakeChatServer]:
    with FakeChatServer.running_in_thread() as server:
        yield server


@pytest.fixture
def sync_client(threaded_fake: FakeChatServer) -> Iterator[ChatClient]:
    with ChatClient(threaded_fake.api_key, base_url=threaded_fake.base_url, user="u-1") as c:
        yield c


# -- with_raw_response -------------------------------------------------------------------


async def test_raw_send_has_the_response_and_parses_to_the_usual_result(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    fake.script.reply("Hi", "Hello!")
    raw = await client.chat.with_raw_response.send("Hi")
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["x-version"]  # case-insensitive: the fake sends X-Version
    assert raw.headers["Content-Type"].startswith("application/json")
    assert isinstance(raw.elapsed, datetime.timedelta)
    assert raw.elapsed >= datetime.timedelta(0)
    assert raw.retries_taken == 0
    assert raw.method == "POST"
    assert raw.url == fake.base_url + "/chat-messages"
    assert raw.content is not None and b"Hello!" in raw.content
    reply = raw.parse()
    assert isinstance(reply, ChatCompletion)
    assert reply.answer == "Hello!"
    assert API_KEY not in repr(raw) and fake.api_key not in repr(raw.http_response)


async def test_raw_counts_the_retries_taken(client: AsyncChatClient, fake: FakeChatServer) -> None:
    fake.script.fail(503, path="/info", times=2, headers=RETRY_NOW)
    raw = await client.app.with_raw_response.info()
    assert raw.retries_taken == 2
    assert raw.status_code == 200
    assert isinstance(raw.parse(), AppInfo)


async def test_raw_works_for_a_method_without_result_and_a_page(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    reply = await client.chat.send("Hi")
    assert reply.conversation_id is not None
    stop = await client.chat.with_raw_response.stop("task-1")
    assert stop.status_code == 200 and stop.parse() is None
    page = await client.messages.with_raw_response.list(reply.conversation_id)
    assert isinstance(page.parse(), Page)
    assert page.parse().data[0].answer == reply.answer
    assert page.url.startswith(fake.base_url + "/messages?")


async def test_raw_stream_opens_the_stream_and_parse_gives_it(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    fake.script.reply("Hi", "Streamed hello")
    raw = await client.chat.with_raw_response.stream("Hi")
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.content is None
    stream = raw.parse()
    assert isinstance(stream, AsyncChatStream)
    async with stream:
        assert "".join([text async for text in stream.text_stream]) == "Streamed hello"
    assert acquired_connections(client) == 0


async def test_raw_stream_of_a_failed_open_raises_with_the_response(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    fake.script.fail(500, path="/chat-messages")
    with pytest.raises(InternalServerError) as caught:
        await client.chat.with_raw_response.stream("Hi")
    assert caught.value.response is not None
    assert caught.value.response.status_code == 500
    assert acquired_connections(client) == 0


async def test_pagers_and_unknown_names_have_no_raw_form(client: AsyncChatClient) -> None:
    with pytest.raises(AttributeError, match=r"with_raw_response\.list"):
        client.messages.with_raw_response.iter  # noqa: B018
    with pytest.raises(AttributeError, match="no method 'nope'"):
        client.chat.with_raw_response.nope  # noqa: B018
    with pytest.raises(AttributeError):
        client.chat.with_raw_response._body  # noqa: B018
    assert "iter" not in dir(client.messages.with_raw_response)
    assert {"list", "feedback", "suggested"} <= set(dir(client.messages.with_raw_response))


async def test_raw_signature_is_the_methods(client: AsyncChatClient) -> None:
    raw = client.chat.with_raw_response.send
    assert inspect.signature(raw).parameters == inspect.signature(client.chat.send).parameters
    assert raw.__doc__ == client.chat.send.__doc__


async def test_a_body_that_does_not_decode_raises_from_parse(server: ReplayServer) -> None:
    server.queue(Reply(body=b"<html>not json</html>", content_type="application/json"))
    async with AsyncChatClient(API_KEY, base_url=server.base_url, user="u") as client:
        raw = await client.app.with_raw_response.info()
        assert raw.status_code == 200
        assert raw.content == b"<html>not json</html>"
        with pytest.raises(ResponseDecodeError):
            raw.parse()


# -- APIStatusError.response ----------------------------------------------------------------


async def test_status_errors_carry_the_response(server: ReplayServer) -> None:
    server.queue(
        Reply(
            body=b'{"code": "not_found", "message": "Conversation Not Exists.", "status": 404}',
            status=404,
            content_type="application/json",
            headers={"X-Trace-Id": "trace-123", "X-Version": "1.15.0"},
        )
    )
    async with AsyncChatClient(API_KEY, base_url=server.base_url, user="u") as client:
        with pytest.raises(NotFoundError) as caught:
            await client.conversations.delete("c-1")
    response = caught.value.response
    assert response is not None
    assert response.status_code == 404
    assert response.headers["x-trace-id"] == "trace-123"
    assert response.method == "DELETE"
    assert response.url == server.base_url + "/conversations/c-1"
    assert response.retries_taken == 0
    assert response.content is not None and b"Conversation Not Exists." in response.content
    assert API_KEY not in repr(response) and API_KEY not in str(caught.value)


async def test_status_error_after_retries_counts_them(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    fake.script.fail(503, path="/info", times=3, headers=RETRY_NOW)
    with pytest.raises(InternalServerError) as caught:
        await client.app.info()
    assert caught.value.response is not None
    assert caught.value.response.retries_taken == 2  # the client's default max_retries


# -- per-call max_retries ----------------------------------------------------------------


async def test_max_retries_per_call_overrides_the_clients(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    fake.script.fail(503, path="/info", times=1, headers=RETRY_NOW)
    with pytest.raises(InternalServerError):
        await client.app.info(max_retries=0)
    fake.script.fail(503, path="/info", times=4, headers=RETRY_NOW)
    raw = await client.app.with_raw_response.info(max_retries=4)
    assert raw.retries_taken == 4


async def test_max_retries_per_call_reaches_streams_and_pagers(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    # POST /chat-messages is never retried after a status; a GET stream is. The pager
    # passes max_retries on to every page.
    reply = await client.chat.send("Hi")
    assert reply.conversation_id is not None
    fake.script.fail(503, path="/messages", times=1, headers=RETRY_NOW)
    with pytest.raises(InternalServerError):
        [m async for m in client.messages.iter(reply.conversation_id, max_retries=0)]
    fake.script.fail(503, path="/messages", times=1, headers=RETRY_NOW)
    found = [m async for m in client.messages.iter(reply.conversation_id, max_retries=1)]
    assert [m.id for m in found] == [reply.message_id]


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2"])
async def test_bad_max_retries_per_call_is_refused(client: AsyncChatClient, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        await client.app.info(max_retries=bad)


def test_every_method_takes_max_retries() -> None:
    client = AsyncChatClient(API_KEY, base_url="http://127.0.0.1:9/v1")
    checked = 0
    for resource in vars(client).values():
        if not isinstance(resource, AsyncResource):
            continue
        for name in dir(type(resource)):
            fn = getattr(type(resource), name)
            if name.startswith("_") or not inspect.isfunction(fn):
                continue
            parameter = inspect.signature(fn).parameters.get("max_retries")
            assert parameter is not None, f"{type(resource).__name__}.{name}"
            assert parameter.default is None and parameter.kind is parameter.KEYWORD_ONLY
            checked += 1
    assert checked > 30


# -- with_options ------------------------------------------------------------------------


async def test_with_options_shares_the_connections(server: ReplayServer) -> None:
    async with AsyncChatClient(
        API_KEY, base_url=server.base_url, user="u", default_headers={"X-App": "base"}
    ) as client:
        derived = client.with_options(
            timeout=7.5, max_retries=5, default_headers={"X-Tenant": "t-1"}
        )
        assert derived.max_retries == 5 and client.max_retries == 2
        assert derived.timeout.total == 7.5 and derived.timeout.connect == client.timeout.connect
        assert derived.chat._client is derived and client.chat._client is client
        await client.app.info()
        await derived.app.info()
        assert derived._http._pool is client._http._pool  # one session for both
        assert client._http._pool.session is not None
        first, second = server.requests
        assert "X-Tenant" not in first.headers and second.headers["X-Tenant"] == "t-1"
        assert second.headers["X-App"] == "base"
        assert second.headers["Authorization"] == f"Bearer {API_KEY}"
        # Closing the derived client leaves the original working.
        await derived.aclose()
        assert derived.closed and not client.closed
        with pytest.raises(ConfigurationError, match="closed"):
            await derived.app.info()
        await client.app.info()
        other = client.with_options(max_retries=0)
    assert other.closed  # the connections closed with the original
    with pytest.raises(ConfigurationError, match="closed"):
        await other.app.info()


async def test_with_options_refuses_bad_values(client: AsyncChatClient) -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        client.with_options(max_retries=-1)
    with pytest.raises(ConfigurationError, match="timeout"):
        client.with_options(timeout="soon")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="default_headers"):
        client.with_options(default_headers={"X-Bad": "a\r\nInjected: b"})


async def test_with_options_max_retries_applies(
    client: AsyncChatClient, fake: FakeChatServer
) -> None:
    fake.script.fail(503, path="/info", times=1, headers=RETRY_NOW)
    with pytest.raises(InternalServerError):
        await client.with_options(max_retries=0).app.info()


# -- the sync client -----------------------------------------------------------------------


def test_sync_raw_response_and_stream(
    sync_client: ChatClient, threaded_fake: FakeChatServer
) -> None:
    threaded_fake.script.reply("Hi", "Hello there")
    raw = sync_client.chat.with_raw_response.send("Hi")
    assert raw.status_code == 200 and raw.retries_taken == 0
    assert raw.parse().answer == "Hello there"
    raw_stream = sync_client.chat.with_raw_response.stream("Hi")
    assert raw_stream.headers["content-type"].startswith("text/event-stream")
    stream = raw_stream.parse()
    assert isinstance(stream, ChatStream)
    with stream:
        assert "".join(stream.text_stream) == "Hello there"
    threaded_fake.script.fail(503, path="/info", times=1, headers=RETRY_NOW)
    assert sync_client.app.with_raw_response.info(max_retries=1).retries_taken == 1
    with pytest.raises(TypeError, match=r"Chat\.with_raw_response\.send\(\) got an unexpected"):
        sync_client.chat.with_raw_response.send("Hi", bogus=1)  # type: ignore[call-arg]


def test_sync_with_options_shares_the_loop_and_connections(
    sync_client: ChatClient, threaded_fake: FakeChatServer
) -> None:
    derived = sync_client.with_options(max_retries=0)
    sync_client.app.info()
    threaded_fake.script.fail(503, path="/info", times=1, headers=RETRY_NOW)
    with pytest.raises(InternalServerError):
        derived.app.info()
    assert derived._loop is sync_client._loop
    assert derived._async._http._pool is sync_client._async._http._pool
    derived.close()
    assert derived.closed and not sync_client.closed
    with pytest.raises(ConfigurationError, match="closed"):
        derived.app.info()
    sync_client.app.info()


def test_sync_raw_namespaces_match_the_async_ones() -> None:
    async_client = AsyncChatClient(API_KEY, base_url="http://127.0.0.1:9/v1")
    with ChatClient(API_KEY, base_url="http://127.0.0.1:9/v1") as sync_client:
        compared = 0
        for name, resource in vars(sync_client).items():
            if not isinstance(resource, SyncResource):
                continue
            async_raw = getattr(async_client, name).with_raw_response
            sync_raw = resource.with_raw_response
            assert dir(sync_raw) == dir(async_raw)
            for method in dir(async_raw):
                sync_params = inspect.signature(getattr(sync_raw, method)).parameters
                assert sync_params == inspect.signature(getattr(async_raw, method)).parameters
                compared += 1
        assert compared > 25


def test_every_raw_method_is_declared_for_the_type_checker() -> None:
    """The typed namespace classes declare exactly the methods with a raw form."""
    async_client = AsyncChatClient(API_KEY, base_url="http://127.0.0.1:9/v1")
    with ChatClient(API_KEY, base_url="http://127.0.0.1:9/v1") as sync_client:
        checked = 0
        for name, resource in vars(async_client).items():
            if not isinstance(resource, AsyncResource):
                continue
            namespace = resource.with_raw_response
            assert type(namespace) is not AsyncRawResponses, f"declare {name}'s raw namespace"
            declared = {k for k, v in vars(type(namespace)).items() if isinstance(v, RawMethod)}
            assert declared == set(dir(namespace)), name
            sync_namespace = getattr(sync_client, name).with_raw_response
            assert type(sync_namespace) is not SyncRawResponses, name
            sync_declared = {
                k for k, v in vars(type(sync_namespace)).items() if isinstance(v, SyncRawMethod)
            }
            assert sync_declared == declared, name
            checked += len(declared)
        assert checked > 25


def test_mypy_sees_the_typed_raw_results(tmp_path: Path) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    source = tmp_path / "usage.py"
    source.write_text(
        "from chatapi import AsyncChatClient, ChatClient\n"
        "async def main(aclient: AsyncChatClient, client: ChatClient) -> None:\n"
        "    reveal_type((await aclient.chat.with_raw_response.send('Hi')).parse())\n"
        "    reveal_type((await aclient.chat.with_raw_response.stream('Hi')).parse())\n"
        "    reveal_type(client.messages.with_raw_response.list('c').parse())\n"
        "    reveal_type(client.chat.with_raw_response.stream('Hi').parse())\n"
        "    reveal_type(client.with_options(max_retries=1).app.with_raw_response.info())\n"
        "    await aclient.chat.with_raw_response.send(42)\n"
    )
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    out, err, _ = mypy_api.run(["--strict", "--config-file", str(pyproject), str(source)])
    lines = [line.split(": ", 2)[-1] for line in out.splitlines() if "usage.py" in line]
    assert lines == [
        'Revealed type is "chatapi.models.ChatCompletion"',
        'Revealed type is "chatapi.streaming.AsyncChatStream"',
        'Revealed type is "chatapi.models.Page[chatapi.models.Message]"',
        'Revealed type is "chatapi.sync.ChatStream"',
        'Revealed type is "chatapi._response.RawResponse[chatapi.models.AppInfo]"',
        'Argument 1 has incompatible type "int"; expected "str"  [arg-type]',
    ], out + err
