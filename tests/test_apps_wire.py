"""Workflow and completion apps against hand-written wire data in the spec's shapes.

The bodies are the examples of ``openapi_service.json`` (tests/fixtures/streams/SOURCES.txt)
and payloads built from its schemas; each behaviour is checked with the async client and,
through the bridge, with the sync one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from chatapi import AsyncChatClient, ChatClient, InternalServerError, StreamError, Timeout
from chatapi.events import TextChunkEvent, WorkflowFinishedEvent

from ._sync_server import ThreadedReplayServer
from .conftest import API_KEY, STREAMS, ReplayServer, Reply, sse
from .resource_helpers import example, json_reply

RUN = "fb47b2e6-5e43-4f90-be01-d5c5a088d156"
TASK = "c3800678-a077-43df-a102-53f23ed20b88"
GUARD = 30
# Dify's answer to a chat route called with the key of another kind of app (REFERENCE.md §1).
NOT_CHAT_APP = {
    "code": "not_chat_app",
    "message": "Please check if your app mode matches the right API route.",
    "status": 400,
}


def stream_reply(name: str, *, hold_open: bool = False) -> Reply:
    return Reply(body=(STREAMS / name).read_bytes(), hold_open=hold_open)


def workflow_event(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "task_id": TASK, "workflow_run_id": RUN, "data": data}


FAILED_RUN = sse(
    workflow_event("workflow_started", {"id": RUN, "workflow_id": "w", "inputs": {}}),
    workflow_event("text_chunk", {"text": "partial", "from_variable_selector": ["llm", "text"]}),
    workflow_event(
        "workflow_finished",
        {"id": RUN, "status": "failed", "outputs": None, "error": "LLM node timed out"},
    ),
)
REPLACED_TEXT = sse(
    workflow_event("workflow_started", {"id": RUN, "workflow_id": "w", "inputs": {}}),
    workflow_event("text_chunk", {"text": "bad words", "from_variable_selector": None}),
    workflow_event("text_replace", {"text": "[removed]"}),
    workflow_event("workflow_finished", {"id": RUN, "status": "succeeded", "outputs": {}}),
)
PAUSED_BLOCKING = {
    "task_id": TASK,
    "workflow_run_id": RUN,
    "data": {
        "id": RUN,
        "workflow_id": "7c3e33d4-2a8b-4e5f-9b1a-d3c6e8f12345",
        "status": "paused",
        "outputs": {},
        "error": None,
        "elapsed_time": 0.5,
        "total_tokens": 12,
        "total_steps": 2,
        "created_at": 1705407629,
        "finished_at": None,
        "paused_nodes": ["review"],
        "reasons": [{"TYPE": "human_input_required", "form_id": "f-1", "form_token": "tok-1",
                     "node_id": "review", "inputs": [], "actions": []}],
    },
}


# -- async -------------------------------------------------------------------------------------


async def test_workflow_run_reads_the_blocking_result(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("workflow_run_result")))
    result = await client.workflows.run({"query": "Translate this to French: Hello world"})
    assert result.task_id == TASK
    assert result.workflow_run_id == RUN
    assert result.status == "succeeded"
    assert result.outputs == {"result": "Bonjour le monde"}
    assert (result.data.elapsed_time, result.data.total_tokens, result.data.total_steps) == (
        1.23,
        150,
        3,
    )
    assert result.error is None and not result.paused


async def test_a_paused_blocking_run_says_so_with_its_forms(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(PAUSED_BLOCKING))
    result = await client.workflows.run({"query": "x"})
    assert result.paused
    assert result.outputs == {}
    assert result.data.paused_nodes == ["review"]
    (reason,) = result.data.reasons
    assert (reason.type, reason.form_token) == ("human_input_required", "tok-1")


async def test_workflow_stream_yields_text_chunks_and_the_final_run(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(stream_reply("spec_workflow_streaming.txt"))
    async with client.workflows.stream({"query": "Translate this"}) as stream:
        assert [text async for text in stream.text_stream] == ["Bonjour"]
        assert (stream.task_id, stream.workflow_run_id) == (TASK, RUN)
    run = await stream.final_run()
    assert run.status == "succeeded"
    assert run.outputs == stream.outputs != {}
    assert stream.current_answer == "Bonjour"


async def test_workflow_stream_ends_on_workflow_finished_while_the_socket_stays_open(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # A close grace far beyond the guard: only the workflow app's own closing rule ends it.
    server.queue(stream_reply("spec_workflow_streaming.txt", hold_open=True))
    stream = client.workflows.stream({}, timeout=Timeout(close_grace=3600))
    async with stream:
        events = await asyncio.wait_for(_events(stream), GUARD)
    assert isinstance(events[-1], WorkflowFinishedEvent)


async def _events(stream: Any) -> list[Any]:
    return [event async for event in stream]


async def test_workflow_stream_paused_at_human_input_ends_cleanly(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(stream_reply("spec_workflow_human_input_pause.txt", hold_open=True))
    stream = client.workflows.stream({}, timeout=Timeout(close_grace=3600))
    async with stream:
        run = await asyncio.wait_for(stream.final_run(), GUARD)
    assert run.paused
    assert run.workflow_run_id == RUN


async def test_a_failed_workflow_stream_raises_stream_error(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(body=FAILED_RUN))
    async with client.workflows.stream({}) as stream:
        with pytest.raises(StreamError) as caught:
            await stream.final_run()
    assert caught.value.workflow_status == "failed"
    assert "LLM node timed out" in str(caught.value)
    assert caught.value.answer == "partial"


async def test_text_replace_rewrites_the_answer(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(body=REPLACED_TEXT))
    async with client.workflows.stream({}) as stream:
        events = [event async for event in stream]
    assert sum(isinstance(event, TextChunkEvent) for event in events) == 1
    assert stream.current_answer == "[removed]"


async def test_workflow_stream_stop_calls_the_workflow_stop_endpoint(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(stream_reply("spec_workflow_streaming.txt", hold_open=True))
    async with client.workflows.stream({}, user="someone") as stream:
        await stream.__anext__()
        await stream.stop()
    stop = server.requests[-1]
    assert stop.path == f"/v1/workflows/tasks/{TASK}/stop"
    assert stop.json() == {"user": "someone"}


async def test_stopping_a_workflow_apps_run_followed_with_events(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # workflows.events cannot know the app mode: a workflow app refuses the chat stop route
    # with not_chat_app, and the run is stopped through the workflow route instead.
    server.queue(
        stream_reply("spec_workflow_streaming.txt", hold_open=True),
        json_reply(NOT_CHAT_APP, status=400),
        json_reply({"result": "success"}),
    )
    async with client.workflows.events(RUN) as stream:
        await stream.__anext__()
        await stream.stop()
    assert [r.path for r in server.requests[1:]] == [
        f"/v1/chat-messages/{TASK}/stop",
        f"/v1/workflows/tasks/{TASK}/stop",
    ]


async def test_completion_send_and_stream_read_the_spec_examples(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("completion_message")))
    reply = await client.completions.send({"city": "New York"})
    assert (reply.mode, reply.answer) == ("completion", "Hello World!...")
    assert reply.conversation_id is None
    assert reply.usage is not None and reply.usage.total_tokens == 1161

    server.queue(stream_reply("spec_completion_streaming.txt", hold_open=True))
    stream = client.completions.stream({"city": "San Francisco"}, timeout=Timeout(close_grace=3600))
    async with stream:
        texts = await asyncio.wait_for(_texts(stream), GUARD)
    assert texts == [" I", "'m"]
    final = await stream.final_message()
    assert (final.mode, final.answer, final.task_id) == (
        "completion",
        " I'm",
        "900bbd43-dc0b-4383-a372-aa6e6c414227",
    )
    assert final.usage is not None and final.usage.total_tokens == 1168


async def _texts(stream: Any) -> list[str]:
    return [text async for text in stream.text_stream]


async def test_input_files_become_the_file_objects_of_the_spec(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    from chatapi import InputFile

    server.queue(json_reply(example("workflow_run_result")))
    await client.workflows.run(
        {
            "my_documents": [
                InputFile.local("a1b2c3d4-5678-90ab-cdef-1234567890ab", type="document"),
                InputFile.remote("https://example.com/image.jpg"),
            ]
        }
    )
    assert server.requests[0].json()["inputs"] == {
        "my_documents": [
            {"type": "document", "transfer_method": "local_file",
             "upload_file_id": "a1b2c3d4-5678-90ab-cdef-1234567890ab"},
            {"type": "image", "transfer_method": "remote_url",
             "url": "https://example.com/image.jpg"},
        ]
    }


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.workflows.run({"query": "q"}),
        lambda c: c.completions.send({"query": "q"}),
    ],
    ids=["workflows.run", "completions.send"],
)
async def test_a_run_that_reached_the_server_is_never_sent_again(
    server: ReplayServer, client: AsyncChatClient, call: Any
) -> None:
    server.queue(
        json_reply({"code": "unknown", "message": "Bad gateway", "status": 502}, status=502),
        json_reply(example("workflow_run_result")),
    )
    with pytest.raises(InternalServerError):
        await call(client)
    assert len(server.requests) == 1


async def test_final_message_of_a_workflow_stream_is_its_text(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(stream_reply("spec_workflow_streaming.txt"))
    async with client.workflows.stream({}) as stream:
        reply = await stream.final_message()
    assert (reply.mode, reply.answer, reply.workflow_run_id) == ("workflow", "Bonjour", RUN)


async def test_bad_inputs_are_refused_before_anything_is_sent(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(TypeError, match="inputs must be a mapping"):
        await client.workflows.run(["query"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="query must be a string"):
        await client.completions.send({}, query=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workflow_id must not be empty"):
        client.workflows.stream({}, workflow_id=" ")
    assert server.requests == []


# -- sync --------------------------------------------------------------------------------------


@pytest.fixture
def sync_server() -> Iterator[ThreadedReplayServer]:
    with ThreadedReplayServer() as srv:
        yield srv


@pytest.fixture
def sync_client(sync_server: ThreadedReplayServer) -> Iterator[ChatClient]:
    with ChatClient(API_KEY, base_url=sync_server.base_url, user="user-1") as c:
        yield c


def test_sync_workflow_run_stream_and_stop(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(json_reply(PAUSED_BLOCKING))
    assert sync_client.workflows.run({"query": "x"}).paused
    sync_server.queue(stream_reply("spec_workflow_streaming.txt"))
    with sync_client.workflows.stream({"query": "Translate this"}) as stream:
        assert list(stream.text_stream) == ["Bonjour"]
    assert stream.final_run().outputs == stream.outputs != {}
    sync_server.queue(Reply(body=FAILED_RUN))
    with sync_client.workflows.stream({}) as failing, pytest.raises(StreamError):
        failing.final_run()
    sync_server.queue(json_reply({"result": "success"}))
    sync_client.workflows.stop(TASK)
    assert sync_server.requests[-1].path == f"/v1/workflows/tasks/{TASK}/stop"


def test_sync_completions(sync_server: ThreadedReplayServer, sync_client: ChatClient) -> None:
    sync_server.queue(json_reply(example("completion_message")))
    assert sync_client.completions.send({"city": "New York"}).mode == "completion"
    sync_server.queue(stream_reply("spec_completion_streaming.txt"))
    with sync_client.completions.stream({"city": "San Francisco"}) as stream:
        assert list(stream.text_stream) == [" I", "'m"]
    assert stream.final_message().mode == "completion"
    sync_server.queue(json_reply({"result": "success"}))
    sync_client.completions.stop(TASK, user="abc-123")
    stop = sync_server.requests[-1]
    assert stop.path == f"/v1/completion-messages/{TASK}/stop"
    assert json.loads(stop.body) == {"user": "abc-123"}
