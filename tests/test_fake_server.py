"""FakeChatServer: chat runs end to end through the SDK (events, modes, stop, pause/resume),
authentication and errors, and the ways to run it (async, thread, pytest fixture)."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from chatapi import (
    APIStatusError,
    AsyncChatClient,
    AuthenticationError,
    BadRequestError,
    ChatClient,
    NotFoundError,
)
from chatapi.events import (
    AgentMessageEvent,
    AgentThoughtEvent,
    HumanInputFormFilledEvent,
    HumanInputRequiredEvent,
    MessageEndEvent,
    MessageEvent,
    NodeFinishedEvent,
    NodeStartedEvent,
    PingEvent,
    StreamEvent,
    WorkflowFinishedEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
)
from chatapi.testing import FakeChatServer

from .conftest import STREAMS

USER = "user-1"
ENVELOPE = ["event", "conversation_id", "message_id", "created_at", "task_id"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer() as server:
        yield server


@pytest.fixture
async def api(fake: FakeChatServer) -> AsyncIterator[AsyncChatClient]:
    async with AsyncChatClient(
        api_key="app-test", base_url=fake.base_url, user=USER, max_retries=0
    ) as client:
        yield client


async def collect(client: AsyncChatClient, query: str, **kwargs: Any) -> list[StreamEvent]:
    async with client.chat.stream(query, **kwargs) as stream:
        return [event async for event in stream]


def names(events: list[StreamEvent]) -> list[str]:
    return [event.event for event in events]


# -- answers ---------------------------------------------------------------------------


async def test_blocking_answer_echoes_and_starts_a_conversation(api: AsyncChatClient) -> None:
    reply = await api.chat.send("Hello world")

    assert reply.answer == "Echo: Hello world"
    assert reply.mode == "advanced-chat"
    assert reply.id == reply.message_id
    assert reply.task_id and reply.conversation_id
    usage = reply.usage
    assert usage is not None and usage.currency == "USD"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens  # type: ignore[operator]
    assert isinstance(usage.total_price, str)
    assert list(reply.raw) == [
        "event", "task_id", "id", "message_id", "conversation_id", "mode", "answer",
        "metadata", "created_at",
    ]  # fmt: skip
    page = await api.conversations.list()
    assert [c.id for c in page.data] == [reply.conversation_id]


async def test_stream_has_the_chatflow_event_sequence(api: AsyncChatClient) -> None:
    async with api.chat.stream("one two three", include_pings=True) as stream:
        events = [event async for event in stream]

    assert isinstance(events[0], PingEvent)
    assert names(events[1:]) == [
        "workflow_started",
        "node_started", "node_finished",
        "node_started", "message", "message", "message", "message", "node_finished",
        "node_started", "node_finished",
        "message_end", "workflow_finished",
    ]  # fmt: skip
    nodes = [e.data.node_type for e in events if isinstance(e, NodeStartedEvent) and e.data]
    assert nodes == ["start", "llm", "answer"]
    finished = [e for e in events if isinstance(e, NodeFinishedEvent)]
    assert all(e.data and e.data.status == "succeeded" for e in finished)
    assert "".join(e.answer or "" for e in events if isinstance(e, MessageEvent)) == (
        "Echo: one two three"
    )
    for event in events[1:]:
        assert list(event.raw)[:5] == ENVELOPE
        assert event.task_id == stream.task_id
    end = next(e for e in events if isinstance(e, MessageEndEvent))
    assert end.metadata is not None and end.metadata.usage is not None
    assert end.metadata.usage.prompt_price is not None
    done = events[-1]
    assert isinstance(done, WorkflowFinishedEvent) and done.data is not None
    assert done.data.status == "succeeded"
    assert done.data.outputs == {"answer": "Echo: one two three", "files": []}
    assert done.data.created_by == {"id": done.data.created_by["id"], "user": USER}  # type: ignore[index]


async def test_events_have_the_recorded_field_sets(api: AsyncChatClient) -> None:
    recorded: dict[str, set[str]] = {}
    for line in (
        (STREAMS / "dify-1.15.0/v1_22_chat_streaming_new/body.txt").read_text().split("\n\n")
    ):
        if line.startswith("data: "):
            payload = json.loads(line[6:])
            key = payload["event"] + (
                f":{payload['data']['node_type']}" if "node" in payload["event"] else ""
            )
            recorded.setdefault(key, set(payload) | {f"data.{k}" for k in payload.get("data", {})})

    events = await collect(api, "Stream me")

    for event in events:
        key = event.event + (f":{event.raw['data']['node_type']}" if "node" in event.event else "")
        if key in recorded:
            mine = set(event.raw) | {f"data.{k}" for k in event.raw.get("data", {})}
            assert mine == recorded[key], key


async def test_stream_bytes_are_compact_json(fake: FakeChatServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.base_url}/chat-messages",
            json={"query": "hi", "inputs": {}, "user": USER, "response_mode": "streaming"},
            headers={"Authorization": "Bearer k"},
        ) as response,
    ):
        body = await response.read()
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert body.startswith(b'event: ping\n\ndata: {"event":"workflow_started","conversation_id":')
    assert b'", "' not in body


async def test_streaming_and_blocking_give_the_same_answer(api: AsyncChatClient) -> None:
    fake_reply = await api.chat.send("same answer?")
    async with api.chat.stream("same answer?") as stream:
        streamed = await stream.final_message()
    assert streamed.answer == fake_reply.answer == "Echo: same answer?"
    assert streamed.usage is not None and fake_reply.usage is not None
    assert streamed.usage.total_tokens == fake_reply.usage.total_tokens


async def test_conversation_continues_with_its_id(api: AsyncChatClient) -> None:
    first = await api.chat.send("first", inputs={"name": "Ann"})
    async with api.chat.stream("second", conversation_id=first.conversation_id) as stream:
        events = [event async for event in stream]
    assert stream.conversation_id == first.conversation_id
    started = next(e for e in events if isinstance(e, WorkflowStartedEvent))
    assert started.data is not None and started.data.inputs is not None
    assert started.data.inputs["sys.dialogue_count"] == 2
    assert started.data.inputs["sys.query"] == "second"
    history = await api.messages.list(first.conversation_id)  # type: ignore[arg-type]
    assert [m.query for m in history.data] == ["first", "second"]


async def test_scripted_replies(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.reply("Hi", "Hello, human!")
    fake.script.reply_with(lambda query: query.upper())
    assert (await api.chat.send("Hi")).answer == "Hello, human!"
    assert (await api.chat.send("shout")).answer == "SHOUT"
    fake.script.reply_with({"known": "I know this one"})
    assert (await api.chat.send("known")).answer == "I know this one"
    assert (await api.chat.send("unknown")).answer == "Echo: unknown"
    fake.script.reply_with("Always this.")
    assert (await api.chat.send("anything")).answer == "Always this."


async def test_tokens_per_chunk_sets_the_number_of_message_events(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.reply_with("a b c d e f g")
    fake.script.tokens_per_chunk = 3
    events = await collect(api, "q")
    chunks = [e.answer for e in events if isinstance(e, MessageEvent)]
    assert chunks == ["a b c ", "d e f ", "g"]


def test_script_rejects_bad_settings() -> None:
    server = FakeChatServer()
    with pytest.raises(ValueError):
        server.script.tokens_per_chunk = 0
    with pytest.raises(ValueError):
        server.script.chunk_delay = -1
    with pytest.raises(TypeError):
        server.script.reply_with(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        server.script.fail(200)
    with pytest.raises(ValueError):
        server.script.error_event(after=1, times=0)
    with pytest.raises(ValueError):
        FakeChatServer(mode="agent")
    with pytest.raises(ValueError):
        FakeChatServer(ping_interval=0)


async def test_pings_fill_the_silence() -> None:
    # One word after a second: fifty ping intervals, a margin that a busy machine's stalls
    # (the first stream of a process also builds its decoders) do not use up.
    slow = FakeChatServer(ping_interval=0.02, chunk_delay=1.0, replies="a")
    async with (
        slow,
        AsyncChatClient(api_key="k", base_url=slow.base_url, user=USER) as client,
        client.chat.stream("q", include_pings=True) as stream,
    ):
        events = [event async for event in stream]
    first_message = names(events).index("message")
    # The chunk waits fifty ping intervals: pings come before it.
    assert "ping" in names(events)[1:first_message]


# -- other app modes -------------------------------------------------------------------


async def test_chat_mode_sends_messages_and_message_end() -> None:
    async with (
        FakeChatServer(mode="chat") as server,
        AsyncChatClient(api_key="k", base_url=server.base_url, user=USER) as client,
    ):
        events = await collect(client, "hello there")
        reply = await client.chat.send("again")
        with pytest.raises(BadRequestError) as caught:
            await client.workflows.get_run("any")
    assert names(events) == ["message", "message", "message", "message_end"]
    assert events[0].raw["from_variable_selector"] is None
    assert reply.mode == "chat" and reply.answer == "Echo: again"
    assert caught.value.code == "not_workflow_app"


async def test_agent_mode_streams_thoughts_and_agent_messages() -> None:
    async with (
        FakeChatServer(mode="agent-chat") as server,
        AsyncChatClient(api_key="k", base_url=server.base_url, user=USER) as client,
    ):
        async with client.chat.stream("think") as stream:
            events = [event async for event in stream]
            reply = await stream.final_message()
        with pytest.raises(BadRequestError) as caught:
            await client.chat.send("blocking is refused")
        history = await client.messages.list(stream.conversation_id)  # type: ignore[arg-type]
    assert isinstance(events[0], AgentThoughtEvent)
    assert [type(e) for e in events[1:3]] == [AgentMessageEvent, AgentMessageEvent]
    assert names(events)[-2:] == ["agent_thought", "message_end"]
    assert reply.answer == "Echo: think"
    assert caught.value.code == "invalid_param"
    assert history.data[0].agent_thoughts[0].thought == "Echo: think"


# -- stop ------------------------------------------------------------------------------


async def test_stop_ends_the_stream_with_the_stopped_status(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.chunk_delay = 30
    fake.script.reply_with("never finished in time")

    async def run() -> tuple[list[StreamEvent], str]:
        async with api.chat.stream("q") as stream:
            seen = []
            async for event in stream:
                seen.append(event)
                if (
                    isinstance(event, NodeStartedEvent)
                    and event.data
                    and (event.data.node_type == "llm")
                ):
                    await api.chat.stop(stream.task_id)  # type: ignore[arg-type]
            return seen, stream.workflow_run_id  # type: ignore[return-value]

    events, run_id = await asyncio.wait_for(run(), 10)

    assert names(events)[-3:] == ["node_finished", "workflow_finished", "message_end"]
    finished = events[-2]
    assert isinstance(finished, WorkflowFinishedEvent) and finished.data is not None
    assert finished.data.status == "stopped"
    assert (await api.workflows.get_run(run_id)).status == "stopped"


async def test_stop_by_another_user_is_ignored(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.chunk_delay = 30

    async def run() -> str | None:
        async with api.chat.stream("q") as stream:
            async for event in stream:
                if (
                    isinstance(event, NodeStartedEvent)
                    and event.data
                    and (event.data.node_type == "llm")
                ):
                    await api.chat.stop(stream.task_id, user="intruder")  # type: ignore[arg-type]
                    run = await api.workflows.get_run(stream.workflow_run_id)  # type: ignore[arg-type]
                    assert run.status == "running"
                    await stream.stop()
            return stream.workflow_run_id

    run_id = await asyncio.wait_for(run(), 10)
    assert (await api.workflows.get_run(run_id)).status == "stopped"  # type: ignore[arg-type]
    stops = [r for r in fake.requests if r.path.endswith("/stop")]
    assert [r.json["user"] for r in stops] == ["intruder", USER]


# -- Human Input pause and resumption ----------------------------------------------------


async def test_paused_run_is_resumed_by_its_form(
    fake: FakeChatServer, api: AsyncChatClient
) -> None:
    fake.script.pause_for_input()
    async with api.chat.stream("please approve") as stream:
        events = [event async for event in stream]
        paused = await stream.final_message()
    assert names(events)[-2:] == ["human_input_required", "workflow_paused"]
    required = events[-2]
    assert isinstance(required, HumanInputRequiredEvent) and required.data is not None
    assert isinstance(events[-1], WorkflowPausedEvent)
    assert paused.paused and paused.data is not None
    token = paused.data.reasons[0].form_token
    assert token == required.data.form_token
    assert (await api.workflows.get_run(paused.workflow_run_id)).status == "paused"  # type: ignore[arg-type]

    form = await api.human_input.get(token)  # type: ignore[arg-type]
    assert [a.id for a in form.user_actions] == ["approve", "reject"]
    assert [i.output_variable_name for i in form.inputs] == ["comment", "decision"]
    await api.human_input.submit(token, inputs={"decision": "yes"}, action="approve")  # type: ignore[arg-type]

    async with api.workflows.events(paused.workflow_run_id) as resumed:  # type: ignore[arg-type]
        rest = [event async for event in resumed]
        final = await resumed.final_message()
    assert isinstance(rest[0], WorkflowStartedEvent) and rest[0].data is not None
    assert rest[0].data.reason == "resumption"
    filled = next(e for e in rest if isinstance(e, HumanInputFormFilledEvent))
    assert filled.data is not None and filled.data.action_id == "approve"
    assert filled.data.submitted_data == {"comment": "looks good", "decision": "yes"}
    assert names(rest)[-2:] == ["message_end", "workflow_finished"]
    assert "Approve: comment=looks good decision=yes" in final.answer
    with pytest.raises(APIStatusError) as caught:
        await api.human_input.get(token)  # type: ignore[arg-type]
    assert caught.value.status_code == 412
    assert caught.value.code == "human_input_form_submitted"


async def test_blocking_run_that_pauses(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.pause_for_input()
    reply = await api.chat.send("review this")
    assert reply.paused and reply.data is not None
    assert reply.data.paused_nodes == ["review"]
    assert reply.workflow_run_id is not None
    with pytest.raises(BadRequestError) as caught:
        await api.human_input.submit(
            reply.data.reasons[0].form_token,  # type: ignore[arg-type]
            inputs={},
            action="approve",
        )
    assert caught.value.code == "invalid_form_data"


async def test_events_of_a_finished_run_are_its_final_event(api: AsyncChatClient) -> None:
    async with api.chat.stream("done") as stream:
        await stream.until_done()
    async with api.workflows.events(stream.workflow_run_id) as replay:  # type: ignore[arg-type]
        events = [event async for event in replay]
    assert names(events) == ["workflow_finished"]
    assert "conversation_id" not in events[0].raw
    with pytest.raises(NotFoundError):
        async with api.workflows.events(stream.workflow_run_id, user="someone-else"):  # type: ignore[arg-type]
            pass


# -- authentication and errors -------------------------------------------------------------


async def test_missing_bearer_key_gets_the_recorded_401(fake: FakeChatServer) -> None:
    recorded = (STREAMS / "dify-1.12.1/v1_91_no_auth/body.txt").read_bytes()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.base_url}/chat-messages",
            json={"inputs": {}, "query": "x", "response_mode": "blocking", "user": USER},
        ) as response,
    ):
        body = await response.read()
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert body.strip() == recorded.strip()


async def test_only_configured_keys_are_accepted() -> None:
    async with FakeChatServer(api_key="app-right") as server:
        assert server.api_key == "app-right"
        async with AsyncChatClient(api_key="app-wrong", base_url=server.base_url) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.app.info()
        async with AsyncChatClient(api_key="app-right", base_url=server.base_url) as client:
            assert (await client.app.info()).mode == "advanced-chat"
    assert caught.value.message == "Access token is invalid"


async def test_missing_query_is_the_recorded_validation_error(fake: FakeChatServer) -> None:
    recorded = json.loads((STREAMS / "dify-1.12.1/v1_92_missing_query/body.txt").read_bytes())
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.base_url}/chat-messages",
            json={"inputs": {}, "response_mode": "blocking", "user": USER},
            headers={"Authorization": "Bearer k"},
        ) as response,
    ):
        body = await response.json()
    assert response.status == 400
    assert body["code"] == recorded["code"] == "invalid_param"
    assert body["message"].splitlines()[:3] == recorded["message"].splitlines()[:3]


async def test_unknown_conversation_is_not_found(api: AsyncChatClient) -> None:
    missing = "0b8ebf40-0a43-4a5d-92a6-2e8b7a4ecb11"
    with pytest.raises(NotFoundError) as caught:
        await api.chat.send("x", conversation_id=missing)
    assert (caught.value.code, caught.value.message) == ("not_found", "Conversation Not Exists.")
    with pytest.raises(BadRequestError) as bad:
        await api.chat.send("x", conversation_id="not-a-uuid")
    assert bad.value.code == "invalid_param"


async def test_conversations_are_scoped_by_user(api: AsyncChatClient) -> None:
    mine = await api.chat.send("mine")
    with pytest.raises(NotFoundError):
        await api.chat.send("theirs", conversation_id=mine.conversation_id, user="user-2")
    assert (await api.conversations.list(user="user-2")).data == []


async def test_non_uuid_path_ids_are_unknown_routes(api: AsyncChatClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        await api.conversations.rename("not-a-uuid", "x")
    assert caught.value.code == "not_found"
    assert caught.value.message.startswith("The requested URL was not found on the server.")


async def test_requests_are_recorded(fake: FakeChatServer, api: AsyncChatClient) -> None:
    await api.chat.send("log me", inputs={"name": "Ann"})
    request = fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/chat-messages")
    assert request.json["inputs"] == {"name": "Ann"}
    assert request.json["response_mode"] == "blocking"


# -- ways to run it --------------------------------------------------------------------


def _get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": "Bearer app-test"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_running_in_a_thread_from_sync_code() -> None:
    with FakeChatServer.running_in_thread(mode="chat") as server:
        assert _get_json(f"{server.base_url}/info")["mode"] == "chat"
        url = server.base_url
    assert not any(t.name == "FakeChatServer" for t in threading.enumerate())
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with pytest.raises(OSError):
        _get_json(f"{url}/info")


def test_sync_client_against_a_server_in_a_thread() -> None:
    with (
        FakeChatServer.running_in_thread(replies="Hello from a thread") as server,
        ChatClient(api_key="app-test", base_url=server.base_url, user=USER) as client,
    ):
        with client.chat.stream("Hi") as stream:
            streamed = "".join(stream.text_stream)
        assert streamed == "Hello from a thread"
        assert client.chat.send("Hi").answer == "Hello from a thread"


def test_pytest_fixture_in_a_sync_test(fake_chat_server: FakeChatServer) -> None:
    assert _get_json(f"{fake_chat_server.base_url}/meta") == {"tool_icons": {}}


async def test_pytest_fixture_in_an_async_test(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.script.reply("Hi", "Hello from the fixture")
    async with AsyncChatClient(
        api_key="app-test", base_url=fake_chat_server.base_url, user=USER
    ) as client:
        assert (await client.chat.send("Hi")).answer == "Hello from the fixture"


@pytest.mark.parametrize("fake_chat_server", [{"mode": "agent-chat"}], indirect=True)
def test_pytest_fixture_takes_server_options(fake_chat_server: FakeChatServer) -> None:
    assert fake_chat_server.mode == "agent-chat"
