"""ChatStream: the same events and state as AsyncChatStream, and a connection never left open."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from chatapi import (
    AsyncChatClient,
    AsyncChatStream,
    ChatAPIError,
    ChatClient,
    ChatStream,
    StreamError,
)
from chatapi import events as ev

from ._sync_server import ThreadedReplayServer
from .conftest import API_KEY, ReplayServer, Reply, acquired_connections, recording, sse

GUARD = 10
V1121_STREAM = "dify-1.12.1/v1_22_chat_streaming_new"
V1150_STREAM = "dify-1.15.0/v1_22_chat_streaming_new"
BLOCKING = "dify-1.12.1/v1_20_chat_blocking_new"
TASK_ID = "8c4184df-4b00-4fdc-81b5-305d32766b05"
ANSWER = "Echo: Stream me | name=Bob | memo=hello"


# -- the same scenarios through both clients ------------------------------------------------

Step = tuple[ev.StreamEvent, str, str | None, str | None, str | None, str | None]


def step(stream: AsyncChatStream | ChatStream, event: ev.StreamEvent) -> Step:
    """An event with the state the stream shows right after it."""
    return (
        event,
        stream.current_answer,
        stream.task_id,
        stream.conversation_id,
        stream.message_id,
        stream.workflow_run_id,
    )


def outcome_of_error(exc: ChatAPIError) -> tuple[type, str, dict[str, Any]]:
    return type(exc), str(exc), dict(vars(exc))


async def observe_async(client: AsyncChatClient, options: dict[str, Any]) -> Any:
    steps: list[Step] = []
    stream = client.chat.stream("Stream me", **options)
    try:
        async with stream:
            async for event in stream:
                steps.append(step(stream, event))
        outcome: Any = await stream.final_message()
    except ChatAPIError as exc:
        outcome = outcome_of_error(exc)
    return steps, outcome, acquired_connections(client)


def observe_sync(client: ChatClient, options: dict[str, Any]) -> Any:
    steps: list[Step] = []
    stream = client.chat.stream("Stream me", **options)
    try:
        with stream:
            for event in stream:
                steps.append(step(stream, event))
        outcome: Any = stream.final_message()
    except ChatAPIError as exc:
        outcome = outcome_of_error(exc)
    return steps, outcome, acquired_connections(client._async)


MESSAGE_REPLACE = sse(
    {"event": "message", "task_id": "t", "answer": "bad words"},
    {"event": "message_replace", "task_id": "t", "answer": "[redacted]"},
    {"event": "message_file", "task_id": "t", "answer": " then text", "id": "m"},
    {"event": "message_end", "task_id": "t", "id": "m"},
)
AGENT = sse(
    {"event": "agent_thought", "task_id": "t", "id": "a", "position": 1, "thought": ""},
    {"event": "agent_message", "task_id": "t", "answer": "Hel"},
    "ping",
    {"event": "agent_message", "task_id": "t", "answer": "lo"},
    {"event": "message_end", "task_id": "t", "id": "m"},
)
ERROR_EVENT = sse(
    {"event": "message", "task_id": "t", "conversation_id": "c", "answer": "So far"},
    {"event": "message", "task_id": "t", "conversation_id": "c", "answer": " and more"},
    {"event": "error", "status": 400, "code": "completion_request_error", "message": "boom"},
    {"event": "message", "task_id": "t", "answer": "never seen"},
)
FAILED_WORKFLOW = sse(
    {"event": "workflow_started", "task_id": "r", "workflow_run_id": "r", "data": {"id": "r"}},
    {"event": "workflow_finished", "task_id": "r", "workflow_run_id": "r",
     "data": {"id": "r", "status": "failed", "error": "name is required"}},
)
TRUNCATED = recording(V1121_STREAM)[: recording(V1121_STREAM).index(b"node_finished") + 30]

SCENARIOS = {
    "dify-1.12.1 whole": (Reply(recording(V1121_STREAM)), {}),
    "dify-1.12.1 one byte at a time": (Reply(recording(V1121_STREAM), chunk_size=1), {}),
    "dify-1.15.0 with pings": (Reply(recording(V1150_STREAM), chunk_size=7), {}),
    "pings included": (Reply(recording(V1150_STREAM)), {"include_pings": True}),
    "message_replace": (Reply(MESSAGE_REPLACE, chunk_size=5), {}),
    "agent": (Reply(AGENT, chunk_size=3), {}),
    "error event": (Reply(ERROR_EVENT, hold_open=True), {}),
    "failed workflow": (Reply(FAILED_WORKFLOW), {}),
    "body ends early": (Reply(TRUNCATED, chunk_size=64), {}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_sync_and_async_clients_observe_the_same_stream(
    server: ReplayServer, client: AsyncChatClient, scenario: str
) -> None:
    reply, options = SCENARIOS[scenario]
    server.queue(reply)
    expected = await asyncio.wait_for(observe_async(client, options), GUARD)
    server.queue(reply)
    with ChatClient(API_KEY, base_url=server.base_url, user="user-1") as sync_client:
        # The server runs on this test's loop: the sync client must wait on another thread.
        observed = await asyncio.wait_for(
            asyncio.to_thread(observe_sync, sync_client, options), GUARD
        )
    assert observed == expected
    assert expected[0] or scenario == "failed workflow"  # the scenario produced events
    first, second = server.requests
    assert (first.method, first.path, first.json()) == (second.method, second.path, second.json())


async def test_sync_and_async_clients_send_and_stream_alike(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    async def run_async() -> tuple[Any, list[str]]:
        reply = await client.chat.send("Hello world", inputs={"name": "Alice"})
        async with client.chat.stream("Stream me", conversation_id="c-1") as stream:
            deltas = [text async for text in stream.text_stream]
        return reply, deltas

    def run_sync(sync_client: ChatClient) -> tuple[Any, list[str]]:
        reply = sync_client.chat.send("Hello world", inputs={"name": "Alice"})
        with sync_client.chat.stream("Stream me", conversation_id="c-1") as stream:
            deltas = list(stream.text_stream)
        return reply, deltas

    replies = [
        Reply(recording(BLOCKING), content_type="application/json"),
        Reply(recording(V1121_STREAM), chunk_size=16),
    ]
    server.queue(*replies)
    expected = await asyncio.wait_for(run_async(), GUARD)
    server.queue(*replies)
    with ChatClient(API_KEY, base_url=server.base_url, user="user-1") as sync_client:
        observed = await asyncio.wait_for(asyncio.to_thread(run_sync, sync_client), GUARD)
    assert observed == expected
    assert "".join(observed[1]) == ANSWER
    async_requests, sync_requests = server.requests[:2], server.requests[2:]
    assert [r.json() for r in sync_requests] == [r.json() for r in async_requests]


# -- sync-only behaviour --------------------------------------------------------------------


@pytest.fixture
def sync_server() -> Iterator[ThreadedReplayServer]:
    with ThreadedReplayServer() as srv:
        yield srv


@pytest.fixture
def sync_client(sync_server: ThreadedReplayServer) -> Iterator[ChatClient]:
    with ChatClient(API_KEY, base_url=sync_server.base_url, user="user-1") as c:
        yield c


def tasks_on_loop(client: ChatClient) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return client._loop.call(count)


def connections(client: ChatClient) -> int:
    return client._loop.call(lambda: acquired_connections(client._async))


def test_ids_are_known_from_the_first_event(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(Reply(recording(V1121_STREAM)))
    with sync_client.chat.stream("Stream me") as stream:
        assert stream.task_id is None and stream.current_answer == ""
        first = next(stream)
        assert isinstance(first, ev.WorkflowStartedEvent)
        assert stream.task_id == TASK_ID
        assert stream.conversation_id == "48f87fbb-f5aa-416f-89a9-b1bcb9dbdb30"
        assert stream.workflow_run_id == "46015616-2dc4-4485-bbb3-88332373d272"
        assert stream.current_answer == ""  # later events were fetched, not yet seen
        rest = list(stream)
    assert len(rest) == 12
    assert stream.closed
    assert stream.final_message().answer == ANSWER


def test_iterating_without_with_releases_at_the_end(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(Reply(recording(V1150_STREAM)))
    stream = sync_client.chat.stream("Stream me")
    events = list(stream)
    assert len(events) == 13
    assert stream.closed and connections(sync_client) == 0


def test_break_from_a_bare_for_loop_closes_the_response_at_once(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    baseline = tasks_on_loop(sync_client)
    sync_server.queue(Reply(recording(V1121_STREAM), hold_open=True))
    stream = sync_client.chat.stream("Stream me")
    for _ in stream:
        break
    assert stream.closed
    assert connections(sync_client) == 0
    assert tasks_on_loop(sync_client) == baseline
    sync_server.wait_disconnected()


def test_inside_with_a_break_keeps_the_stream_until_the_block_ends(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    baseline = tasks_on_loop(sync_client)
    body = recording(V1121_STREAM)
    # Cut before the closing events: the reader on the loop reads ahead, and would otherwise
    # finish the run and release the connection on its own.
    sync_server.queue(Reply(body[: body.index(b"message_end")], hold_open=True))
    with sync_client.chat.stream("Stream me") as stream:
        for event in stream:
            assert isinstance(event, ev.WorkflowStartedEvent)
            break
        assert not stream.closed and connections(sync_client) == 1
        for event in stream:  # reading goes on where it stopped
            assert isinstance(event, ev.NodeStartedEvent)
            break
    assert stream.closed
    assert connections(sync_client) == 0
    assert tasks_on_loop(sync_client) == baseline
    sync_server.wait_disconnected()


@pytest.mark.parametrize("use_with", [True, False], ids=["with", "bare for"])
def test_an_exception_in_the_loop_body_closes_the_response(
    sync_server: ThreadedReplayServer, sync_client: ChatClient, use_with: bool
) -> None:
    sync_server.queue(Reply(recording(V1121_STREAM), hold_open=True))
    stream = sync_client.chat.stream("Stream me")

    def consume() -> None:
        for _ in stream:
            raise LookupError("user code failed")

    with pytest.raises(LookupError):
        if use_with:
            with stream:
                consume()
        else:
            consume()
    assert stream.closed
    assert connections(sync_client) == 0
    sync_server.wait_disconnected()


def test_text_stream_left_early_closes_the_response(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(Reply(recording(V1121_STREAM), hold_open=True))
    stream = sync_client.chat.stream("Stream me")
    for text in stream.text_stream:
        assert text == "Echo: "
        break
    assert stream.closed
    sync_server.wait_disconnected()


def test_keyboard_interrupt_while_waiting_closes_the_response(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    baseline = tasks_on_loop(sync_client)
    body = recording(V1121_STREAM)
    sync_server.queue(Reply(body[: body.index(b"node_finished")], hold_open=True))
    stream = sync_client.chat.stream("Stream me")
    seen: list[ev.StreamEvent] = []
    main_thread = threading.main_thread().ident or 0

    class InterruptedWait(threading.Condition):
        # The consumer waits here for the next event: the moment a Ctrl-C would catch a
        # script blocked on a slow server.
        def wait(self, timeout: float | None = None) -> bool:
            if seen:
                signal.pthread_kill(main_thread, signal.SIGINT)
            return super().wait(timeout)

    stream._feed._ready = InterruptedWait(threading.Lock())
    with pytest.raises(KeyboardInterrupt), stream:
        for event in stream:
            seen.append(event)
    assert seen  # interrupted mid-stream, not before it began
    assert stream.closed
    assert connections(sync_client) == 0
    assert tasks_on_loop(sync_client) == baseline
    sync_server.wait_disconnected()


def test_stop_calls_the_stop_endpoint_and_closes(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    body = recording(V1121_STREAM)
    sync_server.queue(
        # A run still going: the reader on the loop would otherwise have read it to the end
        # already, and a finished run needs no stop.
        Reply(body[: body.index(b"message_end")], hold_open=True),
        Reply(b'{"result": "success"}', content_type="application/json"),
    )
    with sync_client.chat.stream("Stream me", user="alice") as stream:
        next(stream)
        stream.stop()
        assert stream.closed
        assert list(stream) == []
    assert connections(sync_client) == 0
    stop = sync_server.requests[1]
    assert (stop.method, stop.path) == ("POST", f"/v1/chat-messages/{TASK_ID}/stop")
    assert stop.json() == {"user": "alice"}


def test_an_error_event_comes_after_the_events_before_it(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(Reply(ERROR_EVENT))  # one chunk: the error arrives in the same batch
    seen = []
    with pytest.raises(StreamError) as caught, sync_client.chat.stream("q") as stream:
        for event in stream:
            seen.append(event.answer)  # type: ignore[attr-defined]
    assert seen == ["So far", " and more"]
    assert caught.value.answer == "So far and more"
    assert caught.value.code == "completion_request_error"
    assert connections(sync_client) == 0


def test_reading_after_close_ends_quietly(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(Reply(recording(V1121_STREAM), hold_open=True))
    stream = sync_client.chat.stream("Stream me")
    with stream:
        next(stream)
    assert stream.closed
    assert list(stream) == []
    stream.close()  # idempotent
    assert "ChatStream POST /chat-messages closed" in repr(stream)


def test_a_stream_is_a_context_manager_and_iterator_of_itself(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(Reply(recording(V1121_STREAM)))
    stream = sync_client.chat.stream("Stream me")
    with stream as entered:
        assert entered is stream
        assert stream.response is not None
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        assert isinstance(next(stream), ev.WorkflowStartedEvent)
        assert isinstance(next(iter(stream)), ev.NodeStartedEvent)
        stream.until_done()
    with pytest.raises(StopIteration):
        next(stream)


# -- the feed from the loop: bounded, in order, released on close ------------------------------


def many_messages(count: int) -> bytes:
    deltas = [{"event": "message", "task_id": "t", "answer": f"{n} "} for n in range(count)]
    return sse(*deltas, {"event": "message_end", "task_id": "t", "id": "m"})


def watch_feed(stream: ChatStream) -> tuple[list[int], threading.Event]:
    """Record the buffer's length at each push; set the event when the reader waits."""
    feed = stream._feed
    feed._limit = 4
    lengths: list[int] = []
    reader_blocked = threading.Event()
    put, wait_for_room = feed._put, feed._wait_for_room

    def recording_put(item: Any) -> None:
        put(item)
        lengths.append(len(feed._items))

    async def signalling_wait() -> None:
        reader_blocked.set()
        await wait_for_room()

    feed._put = recording_put  # type: ignore[method-assign]
    feed._wait_for_room = signalling_wait  # type: ignore[method-assign]
    return lengths, reader_blocked


def test_a_slow_consumer_holds_a_bounded_number_of_events(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    sync_server.queue(Reply(many_messages(100)))  # one write: the whole run in few reads
    stream = sync_client.chat.stream("q")
    lengths, reader_blocked = watch_feed(stream)
    with stream:
        first = next(stream)
        # The consumer pauses; the reader fills the buffer and has to wait for room.
        assert reader_blocked.wait(GUARD)
        rest = list(stream)
    answers = [event.answer for event in [first, *rest] if isinstance(event, ev.MessageEvent)]
    assert answers == [f"{n} " for n in range(100)]
    assert stream.current_answer == "".join(answers)
    assert max(lengths) <= 4


def test_closing_while_the_reader_waits_for_room_ends_it(
    sync_server: ThreadedReplayServer, sync_client: ChatClient
) -> None:
    baseline = tasks_on_loop(sync_client)
    sync_server.queue(Reply(many_messages(100), hold_open=True))
    stream = sync_client.chat.stream("q")
    _, reader_blocked = watch_feed(stream)
    with stream:
        next(stream)
        assert reader_blocked.wait(GUARD)
    assert stream.closed
    assert list(stream) == []  # no failure recorded: the stream was closed, not broken
    assert connections(sync_client) == 0
    assert tasks_on_loop(sync_client) == baseline
