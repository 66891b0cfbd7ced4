"""chatapi.otel: one CLIENT span per call (HTTP semantic conventions, Dify attributes), the
trace context sent with the request, and nothing at all while tracing is off."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

import chatapi.otel
from chatapi import AsyncChatClient, ChatClient, NotFoundError, StreamError
from chatapi.testing import FakeChatServer

from .conftest import API_KEY, ReplayServer, Reply

BLOCKING_ANSWER = {
    "event": "message",
    "task_id": "task-1",
    "id": "msg-1",
    "message_id": "msg-1",
    "conversation_id": "conv-1",
    "mode": "advanced-chat",
    "answer": "Hi",
    "metadata": {"usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
    "created_at": 1,
}


@pytest.fixture
def provider() -> TracerProvider:
    return TracerProvider()


@pytest.fixture
def exporter(provider: TracerProvider) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    chatapi.otel.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        chatapi.otel.uninstrument()


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer() as server:
        yield server


@pytest.fixture
async def fake_client(fake: FakeChatServer) -> AsyncIterator[AsyncChatClient]:
    async with AsyncChatClient(api_key="app-otel", base_url=fake.base_url, user="u-1") as c:
        yield c


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    return span


async def test_a_blocking_call_is_one_client_span_with_http_and_dify_attributes(
    exporter: InMemorySpanExporter, server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(json.dumps(BLOCKING_ANSWER).encode(), content_type="application/json"))
    await client.chat.send("Hi")
    span = only_span(exporter)
    assert span.name == "POST /chat-messages"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    port = int(server.base_url.split(":")[2].split("/")[0])
    assert attributes == {
        "http.request.method": "POST",
        "url.full": server.base_url + "/chat-messages",
        "url.template": "/chat-messages",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": 200,
        "dify.app.mode": "advanced-chat",
        "dify.task_id": "task-1",
        "dify.conversation_id": "conv-1",
        "dify.message_id": "msg-1",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 2,
        "dify.usage.total_tokens": 7,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert API_KEY not in json.dumps(attributes)


async def test_the_trace_context_goes_out_with_the_request(
    exporter: InMemorySpanExporter, server: ReplayServer, client: AsyncChatClient
) -> None:
    tracer = trace.get_tracer("test", tracer_provider=chatapi_provider(exporter))
    with tracer.start_as_current_span("handler") as parent:
        await client.app.info()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    call = spans["GET /info"]
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    headers = server.requests[0].headers
    trace_id = format_trace_id(call.context.trace_id)
    span_id = format_span_id(call.context.span_id)
    assert headers["traceparent"].startswith(f"00-{trace_id}-{span_id}-")  # then the flags
    assert headers["X-Trace-Id"] == trace_id


def chatapi_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


async def test_an_x_trace_id_of_the_user_is_kept(
    exporter: InMemorySpanExporter, server: ReplayServer
) -> None:
    async with AsyncChatClient(
        api_key=API_KEY, base_url=server.base_url, default_headers={"X-Trace-Id": "mine"}
    ) as client:
        await client.app.info()
    assert server.requests[0].headers["X-Trace-Id"] == "mine"
    assert "traceparent" in server.requests[0].headers


async def test_an_error_status_marks_the_span(
    exporter: InMemorySpanExporter, server: ReplayServer, client: AsyncChatClient
) -> None:
    body = b'{"code": "not_found", "message": "Conversation Not Exists.", "status": 404}'
    server.queue(Reply(body, status=404, content_type="application/json"))
    with pytest.raises(NotFoundError):
        await client.conversations.delete("5b1e7f0c-2d7a-4c61-9a57-0f3c2e9d8a41")
    span = only_span(exporter)
    assert span.name == "DELETE /conversations/{id}"
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["error.type"] == "404"
    assert span.status.status_code is StatusCode.ERROR


async def test_retries_stay_in_one_span_with_their_count(
    exporter: InMemorySpanExporter, server: ReplayServer, client: AsyncChatClient
) -> None:
    error = b'{"code": "too_many_requests", "message": "slow down", "status": 429}'
    server.queue(
        Reply(error, status=429, content_type="application/json", headers={"Retry-After": "0"}),
        Reply(b'{"name": "app"}', content_type="application/json"),
    )
    await client.app.info()
    span = only_span(exporter)
    assert span.attributes is not None
    assert span.attributes["http.request.resend_count"] == 1
    assert span.attributes["http.response.status_code"] == 200
    assert len(server.requests) == 2


async def test_a_connection_failure_names_the_error_type(
    exporter: InMemorySpanExporter,
) -> None:
    async with AsyncChatClient(
        api_key=API_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0
    ) as client:
        with pytest.raises(chatapi.APIConnectionError):
            await client.app.info()
    span = only_span(exporter)
    assert span.attributes is not None
    assert span.attributes["error.type"] == "APIConnectionError"
    assert "http.response.status_code" not in span.attributes
    assert span.status.status_code is StatusCode.ERROR


async def test_a_stream_span_lasts_until_the_end_with_ttft_and_tokens(
    exporter: InMemorySpanExporter, fake_client: AsyncChatClient
) -> None:
    async with fake_client.chat.stream("Hello there") as stream:
        async for _ in stream:
            assert exporter.get_finished_spans() == ()  # still open while reading
    span = only_span(exporter)
    assert span.name == "POST /chat-messages"
    attributes = dict(span.attributes or {})
    assert attributes["dify.stream.end"] == "completed"
    assert attributes["dify.app.mode"] == "advanced-chat"
    assert attributes["dify.task_id"] == stream.task_id
    assert attributes["dify.conversation_id"] == stream.conversation_id
    assert attributes["dify.workflow_run_id"] == stream.workflow_run_id
    assert attributes["dify.workflow.status"] == "succeeded"
    assert attributes["dify.usage.total_tokens"] > 0
    assert attributes["dify.stream.events"] > 3
    [first_token] = [event for event in span.events if event.name == "first_token"]
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time < first_token.timestamp <= span.end_time
    assert first_token.attributes is not None
    assert first_token.attributes["dify.time_to_first_token"] > 0


@pytest.mark.parametrize(
    ("setup", "expected", "error"),
    [
        ("error_event", "failed", "StreamError"),
        ("drop", "incomplete", "IncompleteStreamError"),
        ("leave", "closed", None),
    ],
)
async def test_how_a_stream_ended(
    exporter: InMemorySpanExporter,
    fake: FakeChatServer,
    fake_client: AsyncChatClient,
    setup: str,
    expected: str,
    error: str | None,
) -> None:
    if setup == "error_event":
        fake.script.error_event(after=3, code="completion_request_error")
    elif setup == "drop":
        fake.script.drop_after(1500)
    expectation = pytest.raises((StreamError, chatapi.IncompleteStreamError))
    with expectation if error else contextlib.nullcontext():
        async with fake_client.chat.stream("Hi") as stream:
            async for _ in stream:
                if setup == "leave":
                    break
    span = only_span(exporter)
    assert span.attributes is not None
    assert span.attributes["dify.stream.end"] == expected
    assert span.attributes.get("error.type") == error
    expected_status = StatusCode.ERROR if error else StatusCode.UNSET
    assert span.status.status_code is expected_status


async def test_a_stop_is_a_span_of_its_own_with_an_id_free_template(
    exporter: InMemorySpanExporter, fake: FakeChatServer, fake_client: AsyncChatClient
) -> None:
    fake.script.chunk_delay = 0.01
    async with fake_client.chat.stream("one two three four") as stream:
        async for _ in stream:
            await stream.stop()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert sorted(spans) == ["POST /chat-messages", "POST /chat-messages/{id}/stop"]
    stream_span = spans["POST /chat-messages"]
    assert stream_span.attributes is not None
    assert stream_span.attributes["dify.stream.end"] == "stopped"
    assert stream_span.status.status_code is StatusCode.UNSET


def test_the_sync_client_is_traced_too(exporter: InMemorySpanExporter) -> None:
    with FakeChatServer.running_in_thread() as server, ChatClient(
        api_key="app-otel", base_url=server.base_url, user="u-1"
    ) as client:
        assert client.chat.stream("Hi").final_message().answer == "Echo: Hi"
    span = only_span(exporter)
    assert span.attributes is not None
    assert span.attributes["dify.stream.end"] == "completed"


async def test_uninstrument_stops_tracing(
    exporter: InMemorySpanExporter, server: ReplayServer, client: AsyncChatClient
) -> None:
    assert chatapi.otel.is_instrumented()
    chatapi.otel.uninstrument()
    assert not chatapi.otel.is_instrumented()
    await client.app.info()
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in server.requests[0].headers
    assert "X-Trace-Id" not in server.requests[0].headers


def test_opentelemetry_is_not_imported_unless_enabled() -> None:
    code = textwrap.dedent(
        """
        import asyncio, sys
        from chatapi import AsyncChatClient
        from chatapi.testing import FakeChatServer

        async def main():
            async with FakeChatServer() as server, AsyncChatClient(
                api_key="app-x", base_url=server.base_url, user="u"
            ) as client:
                async with client.chat.stream("Hi") as stream:
                    await stream.until_done()
                assert stream._trace is None
        asyncio.run(main())
        print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
