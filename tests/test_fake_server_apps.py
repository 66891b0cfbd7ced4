"""FakeChatServer as a workflow app and as a completion app, through the SDK (async and
sync): runs, streams, stop, a Human Input pause and its resumption, and the errors of the
wrong app mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatapi import AsyncChatClient, BadRequestError, ChatClient, InputFile, StreamError
from chatapi.events import (
    HumanInputFormFilledEvent,
    HumanInputRequiredEvent,
    MessageEndEvent,
    MessageEvent,
    NodeStartedEvent,
    PingEvent,
    TextChunkEvent,
    WorkflowFinishedEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
)
from chatapi.testing import FakeChatServer

USER = "user-1"
GUARD = 30


@pytest.fixture
async def workflow_app() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer(mode="workflow") as server:
        yield server


@pytest.fixture
async def completion_app() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer(mode="completion") as server:
        yield server


def client_of(server: FakeChatServer) -> AsyncChatClient:
    return AsyncChatClient(api_key="app-test", base_url=server.base_url, user=USER, max_retries=0)


# -- workflow apps -------------------------------------------------------------------------------


async def test_workflow_run_returns_the_outputs(workflow_app: FakeChatServer) -> None:
    async with client_of(workflow_app) as client:
        result = await client.workflows.run({"query": "Hello"})
        assert result.status == "succeeded"
        assert result.outputs == {"result": "Echo: Hello"}
        assert result.data.total_steps == 3 and result.data.finished_at is not None
        detail = await client.workflows.get_run(result.workflow_run_id)  # type: ignore[arg-type]
        assert (detail.status, detail.outputs) == ("succeeded", result.outputs)


async def test_workflow_run_of_a_published_version(workflow_app: FakeChatServer) -> None:
    async with client_of(workflow_app) as client:
        first = await client.workflows.run({"query": "a"})
        assert first.data.workflow_id is not None
        again = await client.workflows.run({"query": "b"}, workflow_id=first.data.workflow_id)
        assert again.outputs == {"result": "Echo: b"}
        with pytest.raises(BadRequestError) as caught:
            await client.workflows.run({}, workflow_id="not-a-uuid")
        assert caught.value.code == "bad_request"


async def test_workflow_stream_sends_the_workflow_app_events(workflow_app: FakeChatServer) -> None:
    async with client_of(workflow_app) as client:
        async with client.workflows.stream({"query": "Hi there"}, include_pings=True) as stream:
            events = [event async for event in stream]
        run = await stream.final_run()
    assert isinstance(events[0], PingEvent)
    assert isinstance(events[1], WorkflowStartedEvent)
    assert isinstance(events[-1], WorkflowFinishedEvent)
    assert not any(isinstance(e, (MessageEvent, MessageEndEvent)) for e in events)
    texts = [e.data.text for e in events if isinstance(e, TextChunkEvent) and e.data]
    assert "".join(t or "" for t in texts) == "Echo: Hi there" == stream.current_answer
    assert all(e.conversation_id is None for e in events)
    assert run.outputs == {"result": "Echo: Hi there"}
    assert run.task_id == stream.task_id and run.workflow_run_id == stream.workflow_run_id
    assert run.data.created_by is not None and run.data.created_by["user"] == USER


async def test_workflow_stop_ends_the_run_as_stopped(workflow_app: FakeChatServer) -> None:
    workflow_app.script.chunk_delay = 30
    workflow_app.script.reply_with("never finished in time")
    async with client_of(workflow_app) as client:

        async def run() -> Any:
            async with client.workflows.stream({"query": "q"}) as stream:
                async for event in stream:
                    if isinstance(event, NodeStartedEvent) and event.data and (
                        event.data.node_type == "llm"
                    ):
                        await client.workflows.stop(stream.task_id)  # type: ignore[arg-type]
            return await stream.final_run()

        result = await asyncio.wait_for(run(), GUARD)
    assert result.status == "stopped"


async def test_a_stop_reported_as_failure_ends_the_stopping_clients_stream_cleanly(
    workflow_app: FakeChatServer,
) -> None:
    workflow_app.script.chunk_delay = 30
    workflow_app.script.stop_as_failure()
    async with client_of(workflow_app) as client:

        async def run() -> Any:
            async with client.workflows.stream({"query": "q"}) as stream:
                async for event in stream:
                    if isinstance(event, NodeStartedEvent) and event.data and (
                        event.data.node_type == "llm"
                    ):
                        await client.workflows.stop(stream.task_id)  # type: ignore[arg-type]
            return stream, await stream.final_run()

        stream, result = await asyncio.wait_for(run(), GUARD)
    assert stream.stopped
    assert (result.status, result.error) == ("failed", "Aborted: User requested stop")


async def test_an_error_event_of_a_workflow_run_raises(workflow_app: FakeChatServer) -> None:
    workflow_app.script.error_event(after=3, code="completion_request_error", message="boom")
    async with client_of(workflow_app) as client, client.workflows.stream({"query": "q"}) as stream:
        with pytest.raises(StreamError) as caught:
            await stream.final_run()
    assert caught.value.code == "completion_request_error"
    assert caught.value.workflow_run_id == stream.workflow_run_id is not None


async def test_workflow_pause_and_resume(workflow_app: FakeChatServer) -> None:
    workflow_app.script.pause_for_input(times=2)
    async with client_of(workflow_app) as client:
        blocking = await client.workflows.run({"query": "Review me"})
        assert blocking.paused and blocking.data.paused_nodes == ["review"]

        async with client.workflows.stream({"query": "Review me"}) as stream:
            events = [event async for event in stream]
        assert isinstance(events[-2], HumanInputRequiredEvent)
        assert isinstance(events[-1], WorkflowPausedEvent)
        paused = await stream.final_run()
        assert paused.paused
        token = paused.data.reasons[0].form_token
        assert token is not None

        form = await client.human_input.get(token)
        assert [action.id for action in form.user_actions] == ["approve", "reject"]
        await client.human_input.submit(token, inputs={"decision": "yes"}, action="approve")
        async with client.workflows.events(paused.workflow_run_id) as resumed:  # type: ignore[arg-type]
            rest = [event async for event in resumed]
        detail = await client.workflows.get_run(paused.workflow_run_id)  # type: ignore[arg-type]
    assert resumed.current_answer == resumed_text_of(rest)
    assert any(isinstance(e, HumanInputFormFilledEvent) for e in rest)
    assert not any(isinstance(e, (MessageEvent, MessageEndEvent)) for e in rest)
    resumed_text = "".join(
        e.data.text or "" for e in rest if isinstance(e, TextChunkEvent) and e.data
    )
    assert "Approve" in resumed_text and "decision=yes" in resumed_text
    finished = rest[-1]
    assert isinstance(finished, WorkflowFinishedEvent) and finished.data is not None
    assert finished.data.status == "succeeded"
    assert detail.status == "succeeded"


async def test_files_as_workflow_inputs(workflow_app: FakeChatServer) -> None:
    async with client_of(workflow_app) as client:
        upload = await client.files.upload(b"%PDF-1.4 fake", filename="doc.pdf")
        await client.workflows.run(
            {"doc": InputFile.local(upload.id, type="document")},
            files=[InputFile.remote("https://example.com/a.png")],
        )
    body = workflow_app.requests[-1].json
    assert body["inputs"]["doc"] == {
        "type": "document",
        "transfer_method": "local_file",
        "upload_file_id": upload.id,
    }
    assert body["files"] == [
        {"type": "image", "transfer_method": "remote_url", "url": "https://example.com/a.png"}
    ]


def resumed_text_of(events: list[Any]) -> str:
    return "".join(e.data.text or "" for e in events if isinstance(e, TextChunkEvent) and e.data)


async def test_events_of_a_workflow_app_run_have_its_text(workflow_app: FakeChatServer) -> None:
    # workflows.events returns the chat stream, which also reads text_chunk deltas.
    workflow_app.script.pause_for_input()
    async with client_of(workflow_app) as client:
        paused = await client.workflows.run({"query": "Review me"})
        token = paused.data.reasons[0].form_token
        assert token is not None
        await client.human_input.submit(token, inputs={"decision": "no"}, action="reject")
        async with client.workflows.events(paused.workflow_run_id) as stream:  # type: ignore[arg-type]
            texts = [text async for text in stream.text_stream]
    assert "".join(texts) == stream.current_answer == "\nReject: comment=looks good decision=no"


# -- completion apps -----------------------------------------------------------------------------


async def test_completion_send_and_stream(completion_app: FakeChatServer) -> None:
    async with client_of(completion_app) as client:
        reply = await client.completions.send({"query": "Hello"})
        assert (reply.mode, reply.answer, reply.conversation_id) == (
            "completion",
            "Echo: Hello",
            None,
        )
        assert reply.usage is not None and reply.usage.total_tokens
        async with client.completions.stream({"query": "Hi"}) as stream:
            texts = [text async for text in stream.text_stream]
        final = await stream.final_message()
    assert "".join(texts) == final.answer == "Echo: Hi"
    assert final.mode == "completion" and final.conversation_id is None
    assert final.task_id == stream.task_id is not None


async def test_completion_legacy_query_field(completion_app: FakeChatServer) -> None:
    async with client_of(completion_app) as client:
        reply = await client.completions.send({}, query="Old style")
    assert reply.answer == "Echo: Old style"


async def test_completion_stop(completion_app: FakeChatServer) -> None:
    # A completion sends no event before its first chunk, so the pacing must let that one
    # out: 200 chunks at 50 ms leave the stop ten seconds to arrive.
    long_text = " ".join(["word"] * 200)
    completion_app.script.chunk_delay = 0.05
    completion_app.script.reply_with(long_text)
    async with client_of(completion_app) as client:

        async def run() -> tuple[str, list[Any]]:
            seen = []
            async with client.completions.stream({"query": "q"}) as stream:
                async for event in stream:
                    seen.append(event)
                    if len(seen) == 1:
                        await client.completions.stop(stream.task_id)  # type: ignore[arg-type]
            return (await stream.final_message()).answer, seen

        answer, events = await asyncio.wait_for(run(), GUARD)
    assert isinstance(events[-1], MessageEndEvent)
    assert answer and len(answer) < len(long_text)


# -- the wrong app mode --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "call", "code"),
    [
        ("workflow", lambda c: c.chat.send("Hi"), "not_chat_app"),
        ("completion", lambda c: c.chat.send("Hi"), "not_chat_app"),
        ("workflow", lambda c: c.chat.stop("t"), "not_chat_app"),
        ("advanced-chat", lambda c: c.workflows.run({}), "not_workflow_app"),
        ("completion", lambda c: c.workflows.stop("t"), "not_workflow_app"),
        ("chat", lambda c: c.completions.send({}), "app_unavailable"),
        ("workflow", lambda c: c.completions.stop("t"), "app_unavailable"),
    ],
)
async def test_each_app_answers_the_other_modes_routes_as_dify(
    mode: str, call: Any, code: str
) -> None:
    async with FakeChatServer(mode=mode) as server, client_of(server) as client:
        with pytest.raises(BadRequestError) as caught:
            await call(client)
    assert caught.value.code == code


# -- sync ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fake_chat_server", [{"mode": "workflow"}], indirect=True)
def test_sync_workflow_app(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.script.pause_for_input()
    with ChatClient("app-test", base_url=fake_chat_server.base_url, user=USER) as client:
        assert client.workflows.run({"query": "Hi"}).paused
        with client.workflows.stream({"query": "Hi"}) as stream:
            assert "".join(stream.text_stream) == "Echo: Hi"
        assert stream.final_run().outputs == {"result": "Echo: Hi"}
        client.workflows.stop("no-such-task")


@pytest.mark.parametrize("fake_chat_server", [{"mode": "completion"}], indirect=True)
def test_sync_completion_app(fake_chat_server: FakeChatServer) -> None:
    with ChatClient("app-test", base_url=fake_chat_server.base_url, user=USER) as client:
        assert client.completions.send({"query": "Hi"}).answer == "Echo: Hi"
        with client.completions.stream({"query": "Yo"}) as stream:
            assert "".join(stream.text_stream) == "Echo: Yo"
        assert stream.final_message().mode == "completion"
        client.completions.stop("no-such-task")
