"""AsyncChatStream against a real aiohttp server on 127.0.0.1 replaying Dify's bytes."""

from __future__ import annotations

import asyncio

import pytest

from chatapi import (
    APITimeoutError,
    AsyncChatClient,
    IncompleteStreamError,
    ResponseDecodeError,
    StreamError,
    StreamIdleTimeoutError,
    Timeout,
)
from chatapi import events as ev

from .conftest import API_KEY, ReplayServer, Reply, acquired_connections, recording, sse

# Guard against a hang turning into a stuck test run; never reached when the code is right.
GUARD = 10

V1121_STREAM = "dify-1.12.1/v1_22_chat_streaming_new"
V1150_STREAM = "dify-1.15.0/v1_22_chat_streaming_new"

V1121_SEQUENCE = [
    ev.WorkflowStartedEvent,
    ev.NodeStartedEvent,
    *[ev.MessageEvent] * 6,
    ev.NodeFinishedEvent,
    ev.NodeStartedEvent,
    ev.NodeFinishedEvent,
    ev.WorkflowFinishedEvent,
    ev.MessageEndEvent,
]
V1150_SEQUENCE = [
    ev.WorkflowStartedEvent,
    *[ev.MessageEvent] * 6,
    ev.NodeStartedEvent,
    ev.NodeFinishedEvent,
    ev.NodeStartedEvent,
    ev.NodeFinishedEvent,
    ev.MessageEndEvent,
    ev.WorkflowFinishedEvent,
]

CHUNKINGS = [None, 1, 7, 64]


async def collect(stream: object) -> list[ev.StreamEvent]:
    async def run() -> list[ev.StreamEvent]:
        async with stream as s:  # type: ignore[attr-defined]
            return [event async for event in s]

    return await asyncio.wait_for(run(), GUARD)


@pytest.mark.parametrize("chunk_size", CHUNKINGS)
async def test_dify_1_12_recording_yields_exact_typed_sequence(
    server: ReplayServer, client: AsyncChatClient, chunk_size: int | None
) -> None:
    server.queue(Reply(recording(V1121_STREAM), chunk_size=chunk_size))
    stream = client.chat.stream("Stream me", inputs={"name": "Bob"})
    events = await collect(stream)
    assert [type(e) for e in events] == V1121_SEQUENCE
    reply = await stream.final_message()
    assert reply.answer == "Echo: Stream me | name=Bob | memo=hello"
    assert reply.event == "message"
    assert reply.mode == "advanced-chat"
    assert reply.conversation_id == "48f87fbb-f5aa-416f-89a9-b1bcb9dbdb30"
    assert reply.message_id == reply.id == "cc9ff027-7eae-4990-b4eb-b047a4ed881c"
    assert reply.task_id == "8c4184df-4b00-4fdc-81b5-305d32766b05"
    assert reply.workflow_run_id == "46015616-2dc4-4485-bbb3-88332373d272"
    assert reply.created_at == 1795660613
    assert reply.usage is not None and reply.usage.time_to_first_token == 1.013
    assert reply.files == []
    assert acquired_connections(client) == 0


@pytest.mark.parametrize("chunk_size", CHUNKINGS)
async def test_dify_1_15_recording_with_ping_and_reversed_closers(
    server: ReplayServer, client: AsyncChatClient, chunk_size: int | None
) -> None:
    server.queue(Reply(recording(V1150_STREAM), chunk_size=chunk_size))
    events = await collect(client.chat.stream("Stream me", include_pings=True))
    assert [type(e) for e in events] == [ev.PingEvent, *V1150_SEQUENCE]
    finished = events[-1]
    assert isinstance(finished, ev.WorkflowFinishedEvent)
    assert finished.data is not None and finished.data.status == "succeeded"


async def test_pings_are_consumed_by_default(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(recording(V1150_STREAM)))
    events = await collect(client.chat.stream("Stream me"))
    assert [type(e) for e in events] == V1150_SEQUENCE


async def test_ids_are_known_from_the_first_event(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(recording(V1121_STREAM), chunk_size=50))
    async with client.chat.stream("Stream me") as stream:
        assert stream.task_id is None and stream.conversation_id is None
        first = await asyncio.wait_for(stream.__anext__(), GUARD)
        assert isinstance(first, ev.WorkflowStartedEvent)
        assert stream.task_id == "8c4184df-4b00-4fdc-81b5-305d32766b05"
        assert stream.conversation_id == "48f87fbb-f5aa-416f-89a9-b1bcb9dbdb30"
        assert stream.message_id == "cc9ff027-7eae-4990-b4eb-b047a4ed881c"
        assert stream.workflow_run_id == "46015616-2dc4-4485-bbb3-88332373d272"
        assert stream.current_answer == ""


async def test_text_stream_yields_answer_deltas(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(recording(V1150_STREAM), chunk_size=13))

    async def run() -> list[str]:
        async with client.chat.stream("Stream me") as stream:
            deltas = [text async for text in stream.text_stream]
            assert stream.current_answer == "".join(deltas)
            return deltas

    deltas = await asyncio.wait_for(run(), GUARD)
    assert deltas == ["Echo: ", "Stream me", " | name=", "Bob", " | memo=", "hello"]


async def test_iteration_recording(server: ReplayServer, client: AsyncChatClient) -> None:
    server.queue(Reply(recording("dify-1.15.0/v1_50_iter_streaming"), chunk_size=100))
    stream = client.chat.stream("iterate please")
    events = await collect(stream)
    kinds = [type(e) for e in events]
    assert kinds.count(ev.IterationNextEvent) == 3
    assert kinds.index(ev.IterationStartedEvent) < kinds.index(ev.IterationCompletedEvent)
    reply = await stream.final_message()
    assert reply.answer.endswith("result=- apple\n- banana\n- cherry")


async def test_paused_run_final_message_has_pause_details(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(recording("dify-1.15.0/v1_70_hitl_streaming_pause"), chunk_size=31))
    stream = client.chat.stream("please approve")
    events = await collect(stream)
    assert isinstance(events[-2], ev.HumanInputRequiredEvent)
    assert isinstance(events[-1], ev.WorkflowPausedEvent)
    reply = await stream.final_message()
    assert reply.event == "workflow_paused" and reply.paused
    assert reply.workflow_run_id == "2fdd6723-f66b-4cb2-a473-8dea8b107dcc"
    assert reply.data is not None
    assert reply.data.paused_nodes == ["hi"]
    reason = reply.data.reasons[0]
    assert reason.type == "human_input_required"
    assert reason.form_token == "3fsT3tlwoqh8SlAKtJpN1C"
    assert [action.id for action in reason.actions] == ["approve", "reject"]
    assert reply.answer == "Request from Bob: please approve\n"


async def test_resumed_stream_recording(server: ReplayServer, client: AsyncChatClient) -> None:
    server.queue(Reply(recording("dify-1.15.0/v1_78_hitl_events_resumed_stream"), chunk_size=5))
    stream = client.chat.stream("x")
    events = await collect(stream)
    filled = [e for e in events if isinstance(e, ev.HumanInputFormFilledEvent)]
    assert filled and filled[0].data is not None
    assert filled[0].data.submitted_data == {"comment": "ship it", "decision": "yes"}
    reply = await stream.final_message()
    assert reply.event == "message"
    finished = events[-1]
    assert isinstance(finished, ev.WorkflowFinishedEvent) and finished.data is not None
    assert finished.data.outputs is not None
    # Dify 1.15 replays the pre-pause answer as messages and streams none of the text after
    # the resume: the final answer is the run's outputs.answer, the deltas stay available.
    assert stream.current_answer == "Request from Bob: please approve\n"
    assert reply.answer == finished.data.outputs["answer"]
    assert reply.answer.startswith("Request from Bob: please approve\n")
    assert "Approved: comment=ship it decision=yes" in reply.answer


async def test_stream_ends_without_waiting_for_server_close(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # The server keeps the socket open after the last event; every closer of a Chatflow
    # has arrived, so the stream must end at once (the guard would fail the test otherwise).
    server.queue(Reply(recording(V1121_STREAM), hold_open=True))
    events = await collect(client.chat.stream("Stream me"))
    assert [type(e) for e in events] == V1121_SEQUENCE
    assert acquired_connections(client) == 0


async def test_stream_ends_after_close_grace_when_a_closer_is_missing(
    server: ReplayServer,
) -> None:
    # A stopped Chatflow run on Dify 1.15 ends with workflow_finished and no message_end.
    body = sse(
        {"event": "workflow_started", "task_id": "t", "workflow_run_id": "w", "data": {}},
        {"event": "message", "task_id": "t", "answer": "partial"},
        {"event": "workflow_finished", "task_id": "t", "workflow_run_id": "w",
         "data": {"status": "stopped"}},
    )
    server.queue(Reply(body, hold_open=True))
    async with AsyncChatClient(
        api_key=API_KEY, base_url=server.base_url, user="u",
        timeout=Timeout(close_grace=0.05),
    ) as client:
        stream = client.chat.stream("q")
        events = await collect(stream)
        assert [e.event for e in events] == ["workflow_started", "message", "workflow_finished"]
        reply = await stream.final_message()
        assert reply.answer == "partial"
        assert acquired_connections(client) == 0


async def test_chat_app_ends_at_message_end(server: ReplayServer, client: AsyncChatClient) -> None:
    body = sse(
        {"event": "message", "task_id": "t", "conversation_id": "c", "message_id": "m",
         "answer": "Hi"},
        {"event": "message_end", "task_id": "t", "id": "m", "metadata": {"usage": {
            "total_tokens": 7}}},
    )
    server.queue(Reply(body, hold_open=True))
    stream = client.chat.stream("q")
    events = await collect(stream)
    assert [e.event for e in events] == ["message", "message_end"]
    reply = await stream.final_message()
    assert reply.mode == "chat"
    assert reply.usage is not None and reply.usage.total_tokens == 7


async def test_message_replace_and_message_file_text(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = sse(
        {"event": "message", "task_id": "t", "answer": "bad words"},
        {"event": "message_replace", "task_id": "t", "answer": "[redacted]"},
        {"event": "message_file", "task_id": "t", "answer": " then text", "id": "m"},
        {"event": "message_file", "task_id": "t", "id": "f", "type": "image",
         "url": "https://x/y.png", "belongs_to": "assistant"},
        {"event": "message_end", "task_id": "t", "id": "m"},
    )
    server.queue(Reply(body))
    stream = client.chat.stream("q")
    await collect(stream)
    assert (await stream.final_message()).answer == "[redacted] then text"


async def test_agent_stream_accumulates_agent_messages(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = sse(
        {"event": "agent_thought", "task_id": "t", "id": "a", "position": 1, "thought": ""},
        {"event": "agent_message", "task_id": "t", "answer": "Hel"},
        "ping",
        {"event": "agent_message", "task_id": "t", "answer": "lo"},
        {"event": "message_end", "task_id": "t", "id": "m"},
    )
    server.queue(Reply(body, chunk_size=3))
    stream = client.chat.stream("q")
    await collect(stream)
    reply = await stream.final_message()
    assert reply.answer == "Hello" and reply.mode == "agent-chat"


async def test_end_of_body_before_a_closer_is_incomplete(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    full = recording(V1121_STREAM)
    cut = full.index(b'data: {"event":"node_finished"')
    server.queue(Reply(full[: cut + 40]))
    seen: list[ev.StreamEvent] = []
    with pytest.raises(IncompleteStreamError) as info:
        async with client.chat.stream("Stream me") as stream:
            async for event in stream:
                seen.append(event)
    assert len(seen) == 8  # the half-sent node_finished is discarded
    error = info.value
    assert error.answer == "Echo: Stream me | name=Bob | memo=hello"
    assert error.task_id == "8c4184df-4b00-4fdc-81b5-305d32766b05"
    assert error.conversation_id == "48f87fbb-f5aa-416f-89a9-b1bcb9dbdb30"
    assert error.message_id == "cc9ff027-7eae-4990-b4eb-b047a4ed881c"
    assert error.workflow_run_id == "46015616-2dc4-4485-bbb3-88332373d272"
    assert acquired_connections(client) == 0


async def test_error_event_raises_stream_error_with_partial_answer(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = sse(
        {"event": "message", "task_id": "t", "conversation_id": "c", "message_id": "m",
         "answer": "So far"},
        {"event": "error", "conversation_id": "c", "message_id": "m", "status": 400,
         "code": "completion_request_error", "message": "model exploded"},
    )
    server.queue(Reply(body, hold_open=True))
    with pytest.raises(StreamError) as info:
        await collect(client.chat.stream("q"))
    error = info.value
    assert (error.code, error.status, error.message) == (
        "completion_request_error", 400, "model exploded")
    assert error.answer == "So far" and error.conversation_id == "c" and error.task_id == "t"
    assert "model exploded" in str(error)
    assert acquired_connections(client) == 0


async def test_failed_workflow_without_error_event_raises_at_end(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # Dify >= 1.13 input-validation failure: a started + failed finished pair, no error event.
    body = sse(
        {"event": "workflow_started", "task_id": "r", "workflow_run_id": "r",
         "data": {"id": "r"}},
        {"event": "workflow_finished", "task_id": "r", "workflow_run_id": "r",
         "data": {"id": "r", "status": "failed", "error": "name is required"}},
    )
    server.queue(Reply(body))
    seen: list[str] = []
    with pytest.raises(StreamError) as info:
        async with client.chat.stream("q") as stream:
            async for event in stream:
                seen.append(event.event)
    assert seen == ["workflow_started", "workflow_finished"]
    error = info.value
    assert error.code is None and error.status is None
    assert error.message == "name is required"
    assert error.workflow_status == "failed"
    assert error.workflow_run_id == "r"


async def test_failed_workflow_followed_by_error_event_raises_once(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = sse(
        {"event": "workflow_started", "task_id": "r", "workflow_run_id": "r", "data": {}},
        {"event": "workflow_finished", "task_id": "r", "workflow_run_id": "r",
         "data": {"status": "failed", "error": "boom"}},
        {"event": "error", "status": 400, "code": "invalid_param", "message": "Run failed: boom"},
    )
    server.queue(Reply(body))
    with pytest.raises(StreamError) as info:
        await collect(client.chat.stream("q"))
    assert info.value.code == "invalid_param"
    assert info.value.workflow_status == "failed"


async def test_malformed_event_json_raises_decode_error(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(b'data: {"event":"message","answer":"x"\n\n', hold_open=True))
    with pytest.raises(ResponseDecodeError) as info:
        await collect(client.chat.stream("q"))
    assert '{"event":"message","answer":"x"' in str(info.value)
    assert acquired_connections(client) == 0


async def test_html_answer_where_a_stream_was_expected(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(b"<html><body>Welcome to nginx</body></html>", content_type="text/html"))
    with pytest.raises(ResponseDecodeError) as info:
        await collect(client.chat.stream("q"))
    assert "text/html" in str(info.value) and "Welcome to nginx" in str(info.value)
    assert acquired_connections(client) == 0


async def test_break_releases_the_connection(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(recording(V1121_STREAM), hold_open=True))

    async def run() -> None:
        async with client.chat.stream("q") as stream:
            async for _ in stream:
                break
            assert acquired_connections(client) == 1
        assert acquired_connections(client) == 0

    await asyncio.wait_for(run(), GUARD)
    await asyncio.wait_for(server.disconnected.wait(), GUARD)


async def test_exception_in_the_loop_body_releases_the_connection(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(recording(V1121_STREAM), hold_open=True))
    with pytest.raises(LookupError):
        async with client.chat.stream("q") as stream:
            async for _ in stream:
                raise LookupError("user code failed")
    assert acquired_connections(client) == 0


async def test_cancelling_the_consumer_releases_the_connection(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # One event, then the server stalls: the consumer is blocked in a read when cancelled.
    server.queue(Reply(sse({"event": "message", "task_id": "t", "answer": "a"}), hold_open=True))
    got_first = asyncio.Event()

    async def consume() -> None:
        async with client.chat.stream("q") as stream:
            async for _ in stream:
                got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), GUARD)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert acquired_connections(client) == 0
    await asyncio.wait_for(server.disconnected.wait(), GUARD)


async def test_iterating_without_context_manager_releases_at_the_end(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(recording(V1150_STREAM)))
    stream = client.chat.stream("q")
    events = await asyncio.wait_for(_drain(stream), GUARD)
    assert len(events) == len(V1150_SEQUENCE)
    assert stream.closed and acquired_connections(client) == 0


async def _drain(stream: object) -> list[ev.StreamEvent]:
    return [event async for event in stream]  # type: ignore[attr-defined]


async def test_stop_calls_the_stop_endpoint_with_the_same_user(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        Reply(recording(V1121_STREAM), hold_open=True),
        Reply(b'{"result": "success"}', content_type="application/json"),
    )

    async def run() -> None:
        async with client.chat.stream("q", user="alice") as stream:
            await stream.__anext__()
            await stream.stop()
            assert stream.closed
        assert acquired_connections(client) == 0

    await asyncio.wait_for(run(), GUARD)
    stop = server.requests[1]
    assert stop.method == "POST"
    assert stop.path == "/v1/chat-messages/8c4184df-4b00-4fdc-81b5-305d32766b05/stop"
    assert stop.json() == {"user": "alice"}


async def test_stream_idle_timeout_on_pings_only(server: ReplayServer) -> None:
    server.queue(Reply(sse({"event": "message", "task_id": "t", "answer": "a"}, "ping", "ping"),
                       hold_open=True))
    async with AsyncChatClient(
        api_key=API_KEY, base_url=server.base_url, user="u",
        timeout=Timeout(stream_idle=0.2),
    ) as client:
        with pytest.raises(StreamIdleTimeoutError) as info:
            await collect(client.chat.stream("q"))
        assert info.value.timeout == "stream_idle"
        assert info.value.answer == "a" and info.value.task_id == "t"
        assert isinstance(info.value, APITimeoutError)
        assert acquired_connections(client) == 0


async def test_socket_read_timeout_mid_stream(server: ReplayServer) -> None:
    server.queue(Reply(sse({"event": "message", "task_id": "t", "answer": "a"}), hold_open=True))
    async with AsyncChatClient(
        api_key=API_KEY, base_url=server.base_url, user="u", timeout=Timeout(read=0.2),
    ) as client:
        with pytest.raises(APITimeoutError) as info:
            await collect(client.chat.stream("q"))
        assert info.value.timeout == "read"
        assert info.value.answer == "a"
        assert acquired_connections(client) == 0


PAUSE_THEN_RESUME = sse(
    {"event": "workflow_started", "task_id": "t", "workflow_run_id": "r",
     "data": {"id": "r", "reason": "initial"}},
    {"event": "message", "task_id": "t", "answer": "Asking. "},
    {"event": "human_input_required", "task_id": "t", "workflow_run_id": "r",
     "data": {"form_id": "f", "form_token": "tok"}},
    {"event": "workflow_paused", "task_id": "t", "workflow_run_id": "r",
     "data": {"paused_nodes": ["hi"], "status": "paused"}},
    {"event": "message_end", "task_id": "t", "id": "m"},
    "ping",
    {"event": "human_input_form_filled", "task_id": "t", "workflow_run_id": "r",
     "data": {"action_id": "approve"}},
    {"event": "message", "task_id": "t", "answer": "Approved."},
    {"event": "message_end", "task_id": "t", "id": "m"},
    {"event": "workflow_finished", "task_id": "t", "workflow_run_id": "r",
     "data": {"status": "succeeded"}},
)


async def test_continue_on_pause_follows_the_run_to_its_end(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(PAUSE_THEN_RESUME, hold_open=True))
    stream = client.workflows.events("r", continue_on_pause=True)
    events = await collect(stream)
    assert [e.event for e in events][-3:] == ["message", "message_end", "workflow_finished"]
    reply = await stream.final_message()
    assert reply.event == "message" and not reply.paused
    assert reply.answer == "Asking. Approved."
    assert server.requests[0].query["continue_on_pause"] == "true"
    assert acquired_connections(client) == 0


async def test_without_continue_on_pause_the_stream_ends_at_the_pause(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # The server keeps the socket open after the pause; the stream must not wait for it.
    paused_at = PAUSE_THEN_RESUME.index(b'data: {"event":"message_end"')
    server.queue(Reply(PAUSE_THEN_RESUME[:paused_at], hold_open=True))
    stream = client.workflows.events("r")
    events = await collect(stream)
    assert events[-1].event == "workflow_paused"
    reply = await stream.final_message()
    assert reply.paused and reply.answer == "Asking. "


async def test_reading_again_after_a_failure_raises_again(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(sse({"event": "message", "task_id": "t", "answer": "partial"})))
    stream = client.chat.stream("q")
    with pytest.raises(IncompleteStreamError) as first:
        await asyncio.wait_for(stream.final_message(), GUARD)
    # A second look must not turn the cut-off answer into a finished one.
    with pytest.raises(IncompleteStreamError) as second:
        await stream.final_message()
    assert second.value is first.value
    with pytest.raises(IncompleteStreamError):
        await stream.__anext__()


async def test_reading_again_after_an_error_event_raises_again(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(sse({"event": "message", "task_id": "t", "answer": "a"},
                           {"event": "error", "status": 500, "code": "internal_server_error",
                            "message": "boom"})))
    stream = client.chat.stream("q")
    with pytest.raises(StreamError):
        await asyncio.wait_for(stream.final_message(), GUARD)
    with pytest.raises(StreamError, match="boom"):
        await stream.final_message()


async def test_stop_from_another_task_ends_the_reader_cleanly(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        Reply(sse({"event": "message", "task_id": "t", "answer": "a"}), hold_open=True),
        Reply(b'{"result": "success"}', content_type="application/json"),
    )
    stream = client.chat.stream("q", user="alice")
    first = asyncio.Event()

    async def read() -> list[str]:
        seen = []
        async with stream:
            async for event in stream:
                seen.append(event.event)
                first.set()
        return seen

    reader = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), GUARD)
    await stream.stop()
    assert await asyncio.wait_for(reader, GUARD) == ["message"]
    assert server.requests[1].path == "/v1/chat-messages/t/stop"
    assert server.requests[1].json() == {"user": "alice"}
    assert acquired_connections(client) == 0


async def test_events_before_a_malformed_one_are_still_delivered(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = sse({"event": "message", "task_id": "t", "answer": "one"},
               {"event": "message", "task_id": "t", "answer": "two"}) + b'data: {"event":\n\n'
    server.queue(Reply(body, hold_open=True))
    seen: list[str] = []
    with pytest.raises(ResponseDecodeError):
        async with client.chat.stream("q") as stream:
            async for event in stream:
                seen.append(event.answer)  # type: ignore[attr-defined]
    assert seen == ["one", "two"]
    assert acquired_connections(client) == 0


async def test_a_closing_message_of_an_agent_replaces_its_deltas(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # Agent apps stream agent_message deltas and may close with the whole answer as message.
    body = sse(
        {"event": "agent_message", "task_id": "t", "answer": "Hel"},
        {"event": "agent_message", "task_id": "t", "answer": "lo"},
        {"event": "message", "task_id": "t", "answer": "Hello"},
        {"event": "message_end", "task_id": "t", "id": "m"},
    )
    server.queue(Reply(body))
    stream = client.chat.stream("q")
    async with stream:
        deltas = [text async for text in stream.text_stream]
    assert deltas == ["Hel", "lo"]
    assert (await stream.final_message()).answer == "Hello"


async def test_stream_idle_deadline_interrupts_a_read_that_would_wait_forever() -> None:
    # Pings keep the connection busy and never end it: only the stream's own deadline (its
    # watchdog timer) can end this read. Timeout.read and total are off so that nothing else
    # does.
    from chatapi.testing import FakeChatServer

    async with FakeChatServer(ping_interval=0.05) as fake:
        fake.script.pings_only(interval=0.05)
        async with AsyncChatClient(
            api_key=API_KEY, base_url=fake.base_url, user="u",
            timeout=Timeout(stream_idle=0.3, read=None, total=None),
        ) as client:
            with pytest.raises(StreamIdleTimeoutError) as info:
                await asyncio.wait_for(collect(client.chat.stream("q")), GUARD)
            assert info.value.timeout == "stream_idle"
            assert acquired_connections(client) == 0
