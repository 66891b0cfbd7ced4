"""AsyncChatClient: configuration, request construction and error mapping (aioresponses)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

import chatapi
from chatapi import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncChatClient,
    AuthenticationError,
    BadRequestError,
    ChatAPIError,
    ConfigurationError,
    InputFile,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ResponseDecodeError,
    Timeout,
    UnsupportedMediaTypeError,
)

from .conftest import (
    AIORESPONSES_PROBLEM,
    API_KEY,
    STREAMS,
    ReplayServer,
    Reply,
    acquired_connections,
)

BASE = "http://dify.test/v1"
CHAT_URL = f"{BASE}/chat-messages"


def recorded_json(name: str) -> Any:
    return json.loads((STREAMS / name / "body.txt").read_bytes())


@pytest.fixture
def mocked() -> Any:
    if AIORESPONSES_PROBLEM is not None:
        pytest.skip(AIORESPONSES_PROBLEM)
    with aioresponses() as m:
        yield m


def sent_json(mocked: Any, method: str, url: str) -> Any:
    calls = mocked.requests[(method, aiohttp.client.URL(url))]
    return calls[-1].kwargs["json"]


def sent_headers(mocked: Any, method: str, url: str) -> dict[str, str]:
    calls = mocked.requests[(method, aiohttp.client.URL(url))]
    return dict(calls[-1].kwargs["headers"])


# -- configuration ------------------------------------------------------------------------


def test_missing_api_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="DIFY_API_KEY"):
        AsyncChatClient()
    with pytest.raises(ConfigurationError):
        AsyncChatClient(api_key="  ")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFY_API_KEY", "app-env")
    monkeypatch.setenv("DIFY_BASE_URL", "http://localhost:5001/v1/")
    monkeypatch.setenv("DIFY_USER", "env-user")
    client = AsyncChatClient()
    assert client.base_url == "http://localhost:5001/v1"
    assert client.user == "env-user"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFY_BASE_URL", raising=False)
    monkeypatch.delenv("DIFY_USER", raising=False)
    client = AsyncChatClient(api_key="k")
    assert client.base_url == "https://api.dify.ai/v1"
    assert client.user is None
    assert client.max_retries == 2
    assert client.timeout == Timeout()
    assert client.timeout.total_for(stream=False) == 120
    assert client.timeout.total_for(stream=True) is None


@pytest.mark.parametrize("base_url", ["localhost/v1", "ftp://x/v1", "", "http://"])
def test_bad_base_url(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncChatClient(api_key="k", base_url=base_url or " ")


@pytest.mark.parametrize(
    "kwargs",
    [{"connect": -1}, {"read": 0}, {"total": "10"}, {"stream_idle": float("nan")}],
)
def test_bad_timeout_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="Timeout"):
        Timeout(**kwargs)


def test_close_grace_needs_a_number() -> None:
    with pytest.raises(ConfigurationError, match="close_grace"):
        Timeout(close_grace=None)  # type: ignore[arg-type]


def test_settings_of_the_wrong_type_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncChatClient(api_key="k", base_url=123)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="control characters") as info:
        AsyncChatClient(api_key="app-sec\nret", base_url=BASE)
    assert "sec" not in str(info.value)
    # Surrounding white space (a newline read from a file) is not part of the key.
    client = AsyncChatClient(api_key="app-secret\n", base_url=BASE)
    assert client._http._headers["Authorization"] == "Bearer app-secret"


def test_timeout_number_means_total() -> None:
    assert AsyncChatClient(api_key="k", timeout=5).timeout == Timeout(total=5.0)
    with pytest.raises(ConfigurationError):
        AsyncChatClient(api_key="k", timeout="5")  # type: ignore[arg-type]


def test_bad_max_retries() -> None:
    with pytest.raises(ConfigurationError, match="max_retries"):
        AsyncChatClient(api_key="k", max_retries=-1)


def test_api_key_never_in_repr() -> None:
    client = AsyncChatClient(api_key=API_KEY, base_url=BASE, user="u")
    for text in (repr(client), str(client), repr(client._http), repr(client.chat.stream("q"))):
        assert API_KEY not in text


async def test_call_without_any_user_fails_before_sending(mocked: Any) -> None:
    async with AsyncChatClient(api_key="k", base_url=BASE) as client:
        with pytest.raises(ConfigurationError, match="user"):
            await client.chat.send("hi")
        with pytest.raises(ConfigurationError, match="user"):
            client.chat.stream("hi")
    assert not mocked.requests


async def test_bad_arguments_are_typed_errors() -> None:
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        with pytest.raises(TypeError, match="query"):
            await client.chat.send(42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="inputs"):
            await client.chat.send("q", inputs=["a"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="task_id"):
            await client.chat.stop("")


async def test_closed_client_refuses_calls() -> None:
    client = AsyncChatClient(api_key="k", base_url=BASE, user="u")
    await client.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await client.chat.send("hi")


def test_client_is_bound_to_its_first_event_loop() -> None:
    client = AsyncChatClient(api_key="k", base_url=f"http://127.0.0.1:{_unused_port()}/v1",
                             user="u", max_retries=0)

    async def first_loop() -> None:
        with pytest.raises(APIConnectionError):
            await client.chat.send("hi")
        assert client._http._session is not None
        await client._http._session.close()  # the loop ends here; release what it owned

    async def second_loop() -> None:
        await client.chat.send("hi")

    asyncio.run(first_loop())
    with pytest.raises(ConfigurationError, match="event loop"):
        asyncio.run(second_loop())


async def test_injected_session_is_used_and_not_closed(mocked: Any) -> None:
    mocked.post(CHAT_URL, payload=recorded_json("dify-1.12.1/v1_20_chat_blocking_new"))
    async with aiohttp.ClientSession() as session:
        async with AsyncChatClient(api_key="k", base_url=BASE, user="u", session=session) as c:
            await c.chat.send("hi")
        assert not session.closed


# -- request construction ----------------------------------------------------------------


async def test_blocking_send_builds_the_documented_request(mocked: Any) -> None:
    mocked.post(CHAT_URL, payload=recorded_json("dify-1.12.1/v1_20_chat_blocking_new"))
    async with AsyncChatClient(api_key=API_KEY, base_url=BASE + "/", user="user-1") as client:
        reply = await client.chat.send("Hello world", inputs={"name": "Alice"})
    assert sent_json(mocked, "POST", CHAT_URL) == {
        "query": "Hello world",
        "inputs": {"name": "Alice"},
        "response_mode": "blocking",
        "user": "user-1",
    }
    headers = sent_headers(mocked, "POST", CHAT_URL)
    assert headers["Authorization"] == f"Bearer {API_KEY}"
    assert re.fullmatch(r"chatapi/\S+ python/\S+ aiohttp/\S+", headers["User-Agent"])
    assert reply.answer == "Echo: Hello world | name=Alice | memo=hello"
    assert reply.message_id == reply.id == "867e26c5-7a8e-42a8-9f6f-c7668817241c"
    assert reply.mode == "advanced-chat"
    assert reply.usage is not None and reply.usage.time_to_first_token == 1.013
    assert reply.usage.total_price == "0.0"
    assert reply.metadata.retriever_resources == []
    assert reply.raw["task_id"] == "239fe49d-f283-4966-af50-56ea39a8b5ec"


async def test_optional_parameters_are_sent_only_when_given(mocked: Any) -> None:
    mocked.post(CHAT_URL, payload={"event": "message", "answer": "ok"})
    async with AsyncChatClient(api_key="k", base_url=BASE, user="default-user") as client:
        await client.chat.send(
            "q",
            user="other",
            conversation_id="c-1",
            files=[InputFile.local("f-1"), {"type": "document", "transfer_method": "remote_url",
                                            "url": "https://x/doc.pdf"}],
            auto_generate_name=False,
            workflow_id="wf-1",
        )
    assert sent_json(mocked, "POST", CHAT_URL) == {
        "query": "q",
        "inputs": {},
        "response_mode": "blocking",
        "user": "other",
        "conversation_id": "c-1",
        "files": [
            {"type": "image", "transfer_method": "local_file", "upload_file_id": "f-1"},
            {"type": "document", "transfer_method": "remote_url", "url": "https://x/doc.pdf"},
        ],
        "auto_generate_name": False,
        "workflow_id": "wf-1",
    }


async def test_stream_request_uses_streaming_mode(server: ReplayServer) -> None:
    server.queue(Reply(b'data: {"event":"message_end","task_id":"t","id":"m"}\n\n'))
    client = AsyncChatClient(api_key=API_KEY, base_url=server.base_url, user="u")
    async with client, client.chat.stream("hi", inputs={"a": 1}, conversation_id="c") as stream:
        await stream.final_message()
    request = server.requests[0]
    assert request.method == "POST" and request.path == "/v1/chat-messages"
    assert request.json() == {"query": "hi", "inputs": {"a": 1}, "response_mode": "streaming",
                              "user": "u", "conversation_id": "c"}
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_stop_request(mocked: Any) -> None:
    url = f"{BASE}/chat-messages/task%2F1/stop"
    mocked.post(url, payload={"result": "success"})
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        assert await client.chat.stop("task/1") is None
    assert sent_json(mocked, "POST", url) == {"user": "u"}


async def test_paused_blocking_answer(mocked: Any) -> None:
    mocked.post(CHAT_URL, payload=recorded_json("dify-1.15.0/v1_88_hitl_blocking"))
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        reply = await client.chat.send("blocking review")
    assert reply.event == "workflow_paused" and reply.paused
    assert reply.workflow_run_id == "bb916282-6986-4f2d-b4d0-1cd8e1bab993"
    assert reply.data is not None and reply.data.paused_nodes == ["hi"]
    reason = reply.data.reasons[0]
    assert reason.form_id == "01a215fa-27b2-743e-8608-24ceba6cc18b"
    assert [i.output_variable_name for i in reason.inputs] == ["comment", "decision"]
    assert [a.id for a in reason.actions] == ["approve", "reject"]


# -- error mapping -------------------------------------------------------------------------

STATUS_CASES = [
    (400, "invalid_param", BadRequestError),
    (400, "not_chat_app", BadRequestError),
    (401, "unauthorized", AuthenticationError),
    (403, "forbidden", PermissionDeniedError),
    (404, "not_found", NotFoundError),
    (412, "human_input_form_submitted", APIStatusError),
    (413, "file_too_large", RequestTooLargeError),
    (415, "unsupported_file_type", UnsupportedMediaTypeError),
    (429, "too_many_requests", RateLimitError),
    (500, "internal_server_error", InternalServerError),
    (503, "unknown", InternalServerError),
]


@pytest.mark.parametrize(("status", "code", "cls"), STATUS_CASES)
async def test_json_error_bodies_map_by_status(
    mocked: Any, status: int, code: str, cls: type[APIStatusError]
) -> None:
    body = {"code": code, "message": f"something about {code}", "status": status}
    mocked.post(CHAT_URL, status=status, payload=body)
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u", max_retries=0) as client:
        with pytest.raises(cls) as info:
            await client.chat.send("q")
    error = info.value
    assert type(error) is cls
    assert (error.status_code, error.code) == (status, code)
    assert error.message == f"something about {code}"
    assert error.body == body
    assert code in str(error) and str(status) in str(error)


@pytest.mark.parametrize(
    "name", ["dify-1.12.1/v1_91_no_auth", "dify-1.12.1/v1_92_missing_query"]
)
async def test_recorded_error_responses(mocked: Any, name: str) -> None:
    body = (STREAMS / name / "body.txt").read_bytes()
    status = int((STREAMS / name / "meta.txt").read_text().split()[0])
    mocked.post(CHAT_URL, status=status, body=body, content_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="api"'})
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        with pytest.raises(APIStatusError) as info:
            await client.chat.send("q")
    expected = json.loads(body)
    assert info.value.status_code == status
    assert info.value.code == expected["code"]
    assert info.value.message == expected["message"]


@pytest.mark.parametrize("status", [502, 524])
async def test_html_gateway_page_is_handled(mocked: Any, status: int) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
    mocked.get(f"{BASE}/info", status=status, body=page, content_type="text/html", repeat=True)
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u", max_retries=0) as client:
        with pytest.raises(InternalServerError) as info:
            await client._http.request_json("GET", "/info")
    assert info.value.code is None
    assert info.value.status_code == status
    assert "502 Bad Gateway" in str(info.value)


async def test_rate_limit_carries_retry_after(mocked: Any) -> None:
    mocked.post(CHAT_URL, status=429, headers={"Retry-After": "7"},
                payload={"code": "too_many_requests", "message": "slow down", "status": 429})
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        with pytest.raises(RateLimitError) as info:
            await client.chat.send("q")
    assert info.value.retry_after == 7


async def test_chat_post_is_never_retried_after_a_response(mocked: Any) -> None:
    mocked.post(CHAT_URL, status=503, payload={"code": "unknown", "message": "busy"})
    mocked.post(CHAT_URL, payload={"event": "message", "answer": "second"})
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u", max_retries=2) as client:
        with pytest.raises(InternalServerError):
            await client.chat.send("q")
    assert len(mocked.requests[("POST", aiohttp.client.URL(CHAT_URL))]) == 1


async def test_malformed_json_body_is_a_decode_error(mocked: Any) -> None:
    mocked.post(CHAT_URL, body=b'{"event": "message", "answ', content_type="application/json")
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        with pytest.raises(ResponseDecodeError, match="answ"):
            await client.chat.send("q")


async def test_wrong_shape_is_a_decode_error(mocked: Any) -> None:
    mocked.post(CHAT_URL, payload={"event": "message", "answer": "x", "created_at": {"a": 1}})
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        with pytest.raises(ResponseDecodeError, match="created_at"):
            await client.chat.send("q")


async def test_aiohttp_errors_do_not_escape(mocked: Any) -> None:
    mocked.post(CHAT_URL, exception=aiohttp.ServerDisconnectedError())
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u", max_retries=0) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.chat.send("q")
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="chatapi")
    port = _unused_port()
    async with AsyncChatClient(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/v1",
                               user="u", max_retries=1,
                               timeout=Timeout(connect=2)) as client:
        with pytest.raises(APIConnectionError, match=f"127.0.0.1:{port}") as info:
            await client.chat.send("q")
    assert not isinstance(info.value, APITimeoutError)
    assert isinstance(info.value, ChatAPIError)
    assert any("retry 1" in record.getMessage() for record in caplog.records)
    assert all(API_KEY not in record.getMessage() for record in caplog.records)
    assert API_KEY not in str(info.value)


async def test_total_timeout_on_a_blocking_call(server: ReplayServer) -> None:
    server.queue(Reply(b"{", content_type="application/json", hold_open=True))
    async with AsyncChatClient(api_key="k", base_url=server.base_url, user="u",
                               timeout=Timeout(total=0.2)) as client:
        with pytest.raises(APITimeoutError) as info:
            await client.chat.send("q")
        assert info.value.timeout == "total"
        assert acquired_connections(client) == 0


async def test_per_call_timeout_overrides_the_client_default(server: ReplayServer) -> None:
    server.queue(Reply(b"{", content_type="application/json", hold_open=True))
    async with AsyncChatClient(api_key="k", base_url=server.base_url, user="u") as client:
        with pytest.raises(APITimeoutError):
            await client.chat.send("q", timeout=0.2)


def test_public_names() -> None:
    for name in chatapi.__all__:
        assert hasattr(chatapi, name), name
    from chatapi import errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, ChatAPIError)


async def test_namespaces_exist() -> None:
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        for name in ("chat", "messages", "conversations", "files", "audio", "app", "end_users",
                     "annotations", "feedbacks", "workflows", "human_input"):
            assert getattr(client, name)._client is client



async def test_connect_timeout_is_named_and_retried(mocked: Any) -> None:
    for _ in range(2):
        mocked.post(CHAT_URL, exception=aiohttp.ConnectionTimeoutError())
    mocked.post(CHAT_URL, payload={"event": "message", "answer": "third time"})
    async with AsyncChatClient(api_key="k", base_url=BASE, user="u") as client:
        client._http.max_retries = 1
        with pytest.raises(APITimeoutError) as info:
            await client.chat.send("q")
        assert info.value.timeout == "connect"
        # Nothing reached the server, so even a chat message may be sent again.
        client._http.max_retries = 2
        reply = await client.chat.send("q")
    assert reply.answer == "third time"
