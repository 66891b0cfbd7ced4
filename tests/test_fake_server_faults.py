"""FakeChatServer's scripted faults, each producing the exception the SDK documents for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from chatapi import (
    APIStatusError,
    AsyncChatClient,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    StreamError,
    StreamIdleTimeoutError,
    Timeout,
)
from chatapi.events import MessageEvent, WorkflowFinishedEvent
from chatapi.testing import FakeChatServer

USER = "user-1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer(ping_interval=0.05) as server:
        yield server


@pytest.fixture
async def api(fake: FakeChatServer) -> AsyncIterator[AsyncChatClient]:
    async with AsyncChatClient(
        api_key="app-test", base_url=fake.base_url, user=USER, max_retries=0
    ) as client:
        yield client


async def test_error_event_raises_stream_error(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.error_event(after=6, code="completion_request_error", message="boom", status=400)
    seen = []
    with pytest.raises(StreamError) as caught:
        async with api.chat.stream("one two three") as stream:
            async for event in stream:
                seen.append(event.event)
    error = caught.value
    assert (error.code, error.status, error.message) == ("completion_request_error", 400, "boom")
    # Six events went out before the error: the workflow start, two nodes, two chunks.
    assert seen == [
        "workflow_started", "node_started", "node_finished", "node_started", "message", "message",
    ]  # fmt: skip
    assert error.answer == "Echo: one "
    assert error.task_id and error.conversation_id and error.workflow_run_id
    history = await api.messages.list(error.conversation_id)
    assert (history.data[0].status, history.data[0].error) == ("error", "boom")
    # The fault was used up: the next run is fine.
    async with api.chat.stream("again") as stream:
        assert (await stream.final_message()).answer == "Echo: again"


async def test_dropped_connection_raises_incomplete_stream(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.drop_after(2000)
    with pytest.raises(IncompleteStreamError) as caught:
        async with api.chat.stream("cut me off") as stream:
            await stream.until_done()
    # The events before the cut arrived: the error carries what the stream knew.
    assert caught.value.task_id is not None


async def test_dropped_connection_cuts_after_exactly_n_bytes(fake: FakeChatServer) -> None:
    fake.script.drop_after(100)
    received = bytearray()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.base_url}/chat-messages",
            json={"query": "x", "inputs": {}, "user": USER, "response_mode": "streaming"},
            headers={"Authorization": "Bearer k"},
        ) as response,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in response.content.iter_any():
                received.extend(chunk)
    assert len(received) == 100
    assert received.startswith(b"event: ping\n\ndata: {")


async def test_connection_kept_open_after_the_last_event(fake: FakeChatServer) -> None:
    fake.script.keep_open()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.base_url}/chat-messages",
            json={"query": "x", "inputs": {}, "user": USER, "response_mode": "streaming"},
            headers={"Authorization": "Bearer k"},
        ) as response,
    ):
        body = b""
        while b'"event":"workflow_finished"' not in body:
            body += await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        # After the last event the server goes on pinging instead of ending the body.
        after = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 10)
        assert after == b"event: ping\n\n"
        await asyncio.wait_for(fake.stop(), 10)
        assert await asyncio.wait_for(response.content.read(), 10) == b""


async def test_stream_kept_open_still_ends_once_its_closers_arrived(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.keep_open()

    async def read_all() -> tuple[list[str], str]:
        # A long close_grace: the stream must end because both closers arrived.
        async with api.chat.stream("still ends", timeout=Timeout(close_grace=60)) as stream:
            return [event.event async for event in stream], stream.current_answer

    events, answer = await asyncio.wait_for(read_all(), 10)
    assert events[-2:] == ["message_end", "workflow_finished"]
    assert answer == "Echo: still ends"


async def test_pings_only_raise_stream_idle_timeout(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.pings_only(interval=0.02)
    with pytest.raises(StreamIdleTimeoutError) as caught:
        async with api.chat.stream("anyone?", timeout=Timeout(stream_idle=0.3)) as stream:
            await asyncio.wait_for(stream.until_done(), 10)
    assert caught.value.timeout == "stream_idle"


async def test_http_error_for_the_next_requests(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.fail(500, times=2)
    for _ in range(2):
        with pytest.raises(InternalServerError) as caught:
            await api.chat.send("x")
        assert caught.value.code == "internal_server_error"
    assert (await api.chat.send("x")).answer == "Echo: x"


async def test_http_error_with_code_path_and_headers(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.fail(
        429, "too_many_requests", "slow down", path="/chat-messages", headers={"Retry-After": "7"}
    )
    assert (await api.app.info()).mode == "advanced-chat"
    with pytest.raises(RateLimitError) as caught:
        async with api.chat.stream("x") as stream:
            await stream.until_done()
    assert (caught.value.code, caught.value.message) == ("too_many_requests", "slow down")
    assert caught.value.retry_after == 7


async def test_http_error_with_a_gateway_page(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.fail(502, body=b"<html><body>Bad Gateway</body></html>", method="GET")
    await api.chat.send("POST is not concerned")
    with pytest.raises(APIStatusError) as caught:
        await api.app.site()
    assert caught.value.status_code == 502
    assert caught.value.code is None
    assert "Bad Gateway" in caught.value.message


async def test_faults_without_a_count_last_until_reset(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.fail(404, "not_found", "gone", times=None, path="/info")
    for _ in range(3):
        with pytest.raises(NotFoundError):
            await api.app.info()
    fake.script.reply_with("scripted")
    fake.script.reset()
    assert (await api.app.info()).name == "Fake Chat App"
    assert (await api.chat.send("after reset")).answer == "Echo: after reset"


async def test_flood_sends_n_message_events(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.flood(2000)
    count = 0
    async with api.chat.stream("a b c") as stream:
        async for event in stream:
            if isinstance(event, MessageEvent):
                count += 1
            last = event
        reply = await stream.final_message()
    assert count == 2000
    assert isinstance(last, WorkflowFinishedEvent)
    assert len(reply.answer) == len("".join(["Echo: ", "a ", "b ", "c"] * 500))
    assert reply.usage is not None and reply.usage.completion_tokens == 2000
