"""How streams end: the final answer, stopped runs, dropped streams, and the cost of
reading ``current_answer`` (issue 10 points 3, 4, 13, 14)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatapi import AsyncChatClient, ChatClient, NotFoundError, StreamError, Timeout, streaming
from chatapi import events as ev
from chatapi.testing import FakeChatServer

from .conftest import API_KEY, ReplayServer, Reply, acquired_connections, sse

# Guard against a hang turning into a stuck test run; never reached when the code is right.
GUARD = 10
# A reply of 60 words, one per event, one event per second: a run stopped after its first
# words cannot have streamed the rest, whatever the load of the machine.
LONG_REPLY = " ".join(f"w{i}" for i in range(60))
TASK = "task-1"
RUN = "run-1"


def chatflow_events(deltas: list[str], **finished: Any) -> bytes:
    common = {"task_id": TASK, "workflow_run_id": RUN, "conversation_id": "c-1"}
    return sse(
        {"event": "workflow_started", **common, "data": {"id": RUN}},
        *({"event": "message", **common, "message_id": "m-1", "answer": d} for d in deltas),
        {"event": "message_end", **common, "message_id": "m-1", "id": "m-1"},
        {"event": "workflow_finished", **common, "data": {"id": RUN, **finished}},
    )


# -- point 3: the final answer of a Chatflow run ---------------------------------------------


async def test_final_answer_is_the_outputs_answer_of_a_successful_chatflow_run(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # Dify 1.15 streams no message for Answer nodes inside a Loop: a loop run streamed
    # "loop please + 2" while its answer was "1\n2\nloop please + 2".
    server.queue(
        Reply(
            chatflow_events(
                ["loop ", "please ", "+ 2"],
                status="succeeded",
                outputs={"answer": "1\n2\nloop please + 2"},
            )
        )
    )
    async with client.chat.stream("loop please") as stream:
        seen = [stream.current_answer async for _ in stream]
        final = await stream.final_message()

    assert seen[-1] == "loop please + 2"
    assert stream.current_answer == "loop please + 2"  # the streamed deltas stay available
    assert final.answer == "1\n2\nloop please + 2"


@pytest.mark.parametrize(
    "finished",
    [
        {"status": "succeeded", "outputs": {"text": "no answer key"}},
        {"status": "succeeded", "outputs": {"answer": ["not", "text"]}},
        {"status": "stopped", "outputs": {"answer": "what the run had"}},
    ],
    ids=["no-answer-output", "answer-not-text", "stopped"],
)
async def test_final_answer_falls_back_to_the_deltas(
    server: ReplayServer, client: AsyncChatClient, finished: dict[str, Any]
) -> None:
    server.queue(Reply(chatflow_events(["Hel", "lo"], **finished)))
    async with client.chat.stream("hi") as stream:
        final = await stream.final_message()
    assert final.answer == "Hello"


def test_sync_final_answer_follows_the_same_rule(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.script.reply("hi", "Hello there")
    with ChatClient(API_KEY, base_url=fake_chat_server.base_url, user="u-1") as client:
        with client.chat.stream("hi") as stream:
            events = list(stream)
        final = stream.final_message()
    finished = events[-1] if isinstance(events[-1], ev.WorkflowFinishedEvent) else events[-2]
    assert isinstance(finished, ev.WorkflowFinishedEvent) and finished.data is not None
    assert finished.data.outputs is not None
    assert final.answer == finished.data.outputs["answer"] == "Hello there"


# -- point 4: a stop is a clean end, whichever way Dify reports it ---------------------------


@pytest.fixture
def slow_server(fake_chat_server: FakeChatServer) -> FakeChatServer:
    fake_chat_server.script.reply("long", LONG_REPLY)
    fake_chat_server.script.chunk_delay = 1.0
    return fake_chat_server


async def read_until_text(stream: streaming.AsyncChatStream) -> None:
    async for event in stream:
        if isinstance(event, ev.MessageEvent):
            return
    raise AssertionError("the stream ended before any text")


def assert_partial(answer: str) -> None:
    assert answer and LONG_REPLY.startswith(answer) and answer != LONG_REPLY


@pytest.mark.parametrize("as_failure", [False, True], ids=["reported-stopped", "reported-failed"])
async def test_chat_stop_of_the_same_client_ends_its_stream_cleanly(
    slow_server: FakeChatServer, as_failure: bool
) -> None:
    if as_failure:
        slow_server.script.stop_as_failure()  # Dify 1.15: failed, "Aborted: User requested stop"
    async with AsyncChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as client:
        async with client.chat.stream("long") as stream:
            await asyncio.wait_for(read_until_text(stream), GUARD)
            assert stream.task_id is not None and not stream.stopped
            await client.chat.stop(stream.task_id)
            final = await asyncio.wait_for(stream.final_message(), GUARD)
            events = stream._workflow_finished
        assert stream.stopped
        assert_partial(final.answer)
        assert final.answer == stream.current_answer
        assert events is not None and events.data is not None
        assert events.data.status == ("failed" if as_failure else "stopped")
        run = await client.workflows.get_run(final.workflow_run_id)  # type: ignore[arg-type]
        assert run.status == "stopped"


async def test_a_stop_from_elsewhere_reported_as_failure_stays_a_stream_error(
    slow_server: FakeChatServer,
) -> None:
    slow_server.script.stop_as_failure()
    async with (
        AsyncChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as client,
        AsyncChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as other,
    ):
        async with client.chat.stream("long") as stream:
            await asyncio.wait_for(read_until_text(stream), GUARD)
            assert stream.task_id is not None
            await other.chat.stop(stream.task_id)
            with pytest.raises(StreamError, match="Aborted: User requested stop") as caught:
                await asyncio.wait_for(stream.final_message(), GUARD)
        assert caught.value.workflow_status == "failed"
        assert_partial(caught.value.answer)
        assert not stream.stopped


async def test_a_stop_from_elsewhere_reported_as_stopped_ends_cleanly(
    slow_server: FakeChatServer,
) -> None:
    async with (
        AsyncChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as client,
        AsyncChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as other,
    ):
        async with client.chat.stream("long") as stream:
            await asyncio.wait_for(read_until_text(stream), GUARD)
            await other.chat.stop(stream.task_id)  # type: ignore[arg-type]
            final = await asyncio.wait_for(stream.final_message(), GUARD)
        assert stream.stopped  # the run's workflow_finished says so
        assert_partial(final.answer)


async def test_stream_stop_ends_the_stream_with_its_partial_answer(
    slow_server: FakeChatServer,
) -> None:
    slow_server.script.stop_as_failure()
    async with AsyncChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as client:
        async with client.chat.stream("long") as stream:
            await asyncio.wait_for(read_until_text(stream), GUARD)
            await stream.stop()
            final = await stream.final_message()
        assert stream.stopped and stream.closed
        assert_partial(final.answer)
        assert [r.path for r in slow_server.requests][-1].endswith("/stop")


async def test_a_stream_whose_run_is_over_is_not_marked_stopped(
    fake_chat_server: FakeChatServer,
) -> None:
    base_url = fake_chat_server.base_url
    async with (
        AsyncChatClient(API_KEY, base_url=base_url, user="u") as client,
        client.chat.stream("hi") as stream,
    ):
        await stream.until_done()
        await stream.stop()
        assert not stream.stopped


async def test_a_stop_the_server_refuses_does_not_count(slow_server: FakeChatServer) -> None:
    slow_server.script.stop_as_failure()
    base_url = slow_server.base_url
    async with (
        AsyncChatClient(API_KEY, base_url=base_url, user="u-1") as client,
        AsyncChatClient(API_KEY, base_url=base_url, user="u-1") as other,
        client.chat.stream("long") as stream,
    ):
        await asyncio.wait_for(read_until_text(stream), GUARD)
        assert stream.task_id is not None
        slow_server.script.fail(404, path=f"/chat-messages/{stream.task_id}/stop")
        with pytest.raises(NotFoundError):
            await client.chat.stop(stream.task_id)
        # The run went on; stopped from elsewhere now, its failure is a failure again.
        await other.chat.stop(stream.task_id)
        with pytest.raises(StreamError, match="Aborted"):
            await asyncio.wait_for(stream.final_message(), GUARD)
    assert not stream.stopped


async def test_stop_of_a_workflow_events_stream_ends_the_clients_other_stream_cleanly(
    slow_server: FakeChatServer,
) -> None:
    slow_server.script.stop_as_failure()
    async with AsyncChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as client:
        async with client.chat.stream("long") as stream:
            await asyncio.wait_for(read_until_text(stream), GUARD)
            assert stream.workflow_run_id is not None
            # Re-attached to the same run; the snapshot's node events carry its task id.
            follower = client.workflows.events(stream.workflow_run_id, include_state_snapshot=True)
            async with follower:
                first = await asyncio.wait_for(follower.__anext__(), GUARD)
                assert first.task_id == stream.task_id
                await follower.stop()
            assert follower.stopped
            final = await asyncio.wait_for(stream.final_message(), GUARD)
        assert stream.stopped
        assert_partial(final.answer)


def test_sync_chat_stop_and_stream_stop_end_cleanly(slow_server: FakeChatServer) -> None:
    slow_server.script.stop_as_failure(times=2)
    with ChatClient(API_KEY, base_url=slow_server.base_url, user="u-1") as client:
        # chat.stop of the same client, for the task a ChatStream reads.
        with client.chat.stream("long") as stream:
            next(e for e in stream if isinstance(e, ev.MessageEvent))
            client.chat.stop(stream.task_id)  # type: ignore[arg-type]
            final = stream.final_message()
        assert stream.stopped
        assert_partial(final.answer)

        with client.chat.stream("long") as stream:
            next(e for e in stream if isinstance(e, ev.MessageEvent))
            stream.stop()
            final = stream.final_message()
        assert stream.stopped and stream.closed
        assert_partial(final.answer)


# -- point 13: dropped streams give their connection back -----------------------------------


async def test_an_async_stream_left_by_break_without_async_with_releases_its_connection(
    fake_chat_server: FakeChatServer,
) -> None:
    fake_chat_server.script.reply("long", LONG_REPLY)
    fake_chat_server.script.chunk_delay = 1.0
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reports.append(context))
    loop.set_debug(True)  # what -X dev does: aiohttp then reports unclosed responses
    try:
        async with AsyncChatClient(API_KEY, base_url=fake_chat_server.base_url, user="u") as c:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                stream = c.chat.stream("long")
                async for _ in stream:
                    break
                assert acquired_connections(c) == 1
                del stream
                gc.collect()
                await asyncio.sleep(0)  # let a close scheduled by the finalizer run
                assert acquired_connections(c) == 0
    finally:
        loop.set_debug(False)
        loop.set_exception_handler(None)
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not [r for r in reports if "Unclosed" in str(r.get("message"))]


def test_a_sync_stream_dropped_after_next_releases_its_connection(
    slow_server: FakeChatServer,
) -> None:
    with ChatClient(API_KEY, base_url=slow_server.base_url, user="u") as client:

        def acquired() -> int:
            return client._loop.call(lambda: acquired_connections(client._async))

        stream = client.chat.stream("long")
        next(stream)
        assert acquired() == 1
        del stream
        gc.collect()
        # The close was handed to the loop thread; this call queues behind it.
        assert acquired() == 0


# -- point 14: reading current_answer after every event is linear -----------------------------


@pytest.fixture
def counted_joins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    joined: list[int] = []
    real: Callable[[list[str]], str] = "".join

    def counting(parts: list[str]) -> str:
        joined.append(len(parts))
        return real(parts)

    monkeypatch.setattr(streaming, "_join", counting)
    yield joined


async def test_current_answer_after_every_event_joins_each_delta_once(
    fake_chat_server: FakeChatServer, counted_joins: list[int]
) -> None:
    deltas = 80_000
    fake_chat_server.script.reply("flood", "ab")
    fake_chat_server.script.flood(deltas)
    base_url = fake_chat_server.base_url
    lengths = 0
    async with (
        AsyncChatClient(API_KEY, base_url=base_url, user="u") as c,
        c.chat.stream("flood") as stream,
    ):
        async for event in stream:
            if isinstance(event, ev.MessageEvent):
                lengths += 1
                assert len(stream.current_answer) == 2 * lengths
    assert lengths == deltas
    # Each delta is joined once, whatever the number of reads: linear work in all.
    assert sum(counted_joins) == deltas
    assert stream.current_answer == "ab" * deltas


def test_current_answer_keeps_message_replace_and_agent_rules(counted_joins: list[int]) -> None:
    never_opened: Any = None
    stream = streaming.AsyncChatStream(never_opened, timeout=Timeout())
    stream._accept(ev.MessageEvent(answer="Hel"))
    stream._accept(ev.MessageEvent(answer="lo"))
    assert stream.current_answer == "Hello"
    stream._accept(ev.MessageEvent(answer="!"))
    stream._accept(ev.MessageReplaceEvent(answer="[moderated]"))
    assert stream.current_answer == "[moderated]"
    stream._accept(ev.MessageEvent(answer=" more"))
    assert stream.current_answer == "[moderated] more"
    assert sum(counted_joins) == 3  # "Hel" + "lo", then " more"
