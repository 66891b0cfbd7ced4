"""Per-stream timings (StreamTimings): milestones in order, delta arrivals, how streams end,
and the fake server's load settings that the load tools rely on."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

import pytest

from chatapi import (
    AsyncChatClient,
    ChatClient,
    RateLimitError,
    StreamError,
    StreamTimings,
    _timings,
)
from chatapi.events import PING, MessageEvent
from chatapi.testing import FakeChatServer, LoadSettings, StreamCounts

USER = "user-1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer(
        load=LoadSettings(events_per_answer=5, stamp_send_times=True), chunk_delay=0.002
    ) as server:
        yield server


def client_for(server: FakeChatServer) -> AsyncChatClient:
    return AsyncChatClient(
        api_key="app-test", base_url=server.base_url, user=USER, max_retries=0
    )


def assert_in_order(timings: StreamTimings) -> None:
    milestones = [
        timings.sent,
        timings.headers,
        timings.first_byte,
        timings.first_event,
        timings.first_text,
        timings.end,
    ]
    assert None not in milestones, timings
    assert milestones == sorted(milestones)  # type: ignore[type-var]


async def test_completed_stream_has_every_milestone_and_each_delta(fake: FakeChatServer) -> None:
    async with client_for(fake) as client:
        async with client.chat.stream("one two three") as stream:
            stamps = [
                event.raw["sent_at"]
                async for event in stream
                if isinstance(event, MessageEvent)
            ]
        timings = stream.timings
    assert_in_order(timings)
    assert timings.outcome == "completed" and timings.error_type is None
    assert timings.delta_count == 5 == len(timings.delta_times) == len(stamps)
    assert timings.answer_chars == len(stream.current_answer)
    assert timings.events > timings.delta_count  # workflow and node events count too
    assert timings.delta_times[0] == timings.first_text
    gaps = timings.inter_token_gaps()
    assert len(gaps) == 4 and min(gaps) >= 0
    # The server's send stamps come from the same monotonic clock: each delta arrived
    # after it was sent.
    assert all(arrived >= sent for arrived, sent in zip(timings.delta_times, stamps, strict=True))
    assert timings.ttft == timings.first_text - timings.sent  # type: ignore[operator]
    assert 0 < timings.time_to_first_event <= timings.ttft <= timings.total  # type: ignore[operator]
    assert "completed" in repr(timings)


async def test_error_event_stopped_and_closed_streams_say_how_they_ended(
    fake: FakeChatServer,
) -> None:
    async with client_for(fake) as client:
        fake.script.error_event(after=3)
        with pytest.raises(StreamError):
            async with client.chat.stream("boom") as failing:
                await failing.until_done()
        assert failing.timings.outcome == "error"
        assert failing.timings.error_type == "StreamError"

        async with client.chat.stream("stop me") as stopped:
            async for event in stopped:
                if isinstance(event, MessageEvent):
                    await stopped.stop()
                    break
        assert stopped.timings.outcome == "stopped" and stopped.timings.end is not None

        async with client.chat.stream("leave early") as left:
            await left.__anext__()
        assert left.timings.outcome == "closed"
        assert left.timings.first_text is None


async def test_failed_open_is_timed_with_the_error_type() -> None:
    async with FakeChatServer(load=LoadSettings(rate_limit_rate=1.0)) as server:
        async with client_for(server) as client:
            stream = client.chat.stream("hi")
            with pytest.raises(RateLimitError):
                async with stream:
                    pass
        assert stream.timings.outcome == "error"
        assert stream.timings.error_type == "RateLimitError"
        assert stream.timings.headers is None
        assert server.stream_counts() == StreamCounts(rate_limited=1)


def test_sync_stream_exposes_the_same_timings() -> None:
    with FakeChatServer.running_in_thread(load=LoadSettings(events_per_answer=3)) as server:
        with (
            ChatClient(api_key="app-test", base_url=server.base_url, user=USER) as client,
            client.chat.stream("hi") as stream,
        ):
            text = "".join(stream.text_stream)
        assert_in_order(stream.timings)
        assert stream.timings.delta_count == 3
        assert stream.timings.answer_chars == len(text)
        assert server.stream_counts().completed == 1


async def test_fake_server_load_settings_shape_pace_and_count() -> None:
    settings = LoadSettings(
        events_per_answer=4, first_token_delay=0.05, error_rate=0.5, seed=7
    )
    async with FakeChatServer(load=settings, replies="a b") as server:
        async with client_for(server) as client:
            outcomes = []
            for _ in range(12):
                try:
                    async with client.chat.stream("q") as stream:
                        await stream.until_done()
                    outcomes.append("completed")
                    assert stream.current_answer == "a b a b "
                    # The think time comes between the run's first events and the first
                    # answer text.
                    assert stream.timings.first_text - stream.timings.first_event >= 0.05  # type: ignore[operator]
                except StreamError:
                    outcomes.append("error")
        counts = server.stream_counts()
        assert server.requests == []  # a load target keeps no request log
        store = server._ctx.store  # ... nor finished runs and their messages
        assert not store.runs and not store.messages and len(store.conversations) == 12
    assert counts.started == 12
    assert counts.completed == outcomes.count("completed")
    assert counts.errors == outcomes.count("error")
    assert 0 < counts.errors < 12  # seeded: both kinds happen


@pytest.mark.parametrize(
    "options",
    [
        {"events_per_answer": 0},
        {"first_token_delay": -1},
        {"error_rate": 1.5},
        {"rate_limit_rate": True},
    ],
)
def test_load_settings_reject_bad_values(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        LoadSettings(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["agent-chat", "chat"])
async def test_deltas_of_agent_and_chatbot_apps(mode: str) -> None:
    async with (
        FakeChatServer(mode=mode, replies="one two three") as server,
        client_for(server) as client,
        client.chat.stream("q") as stream,
    ):
        await stream.until_done()
    timings = stream.timings
    # Agent apps close with a message event repeating the answer: not a delta.
    assert timings.delta_count == 3 == len(timings.delta_times)
    assert timings.answer_chars == len("one two three") == len(stream.current_answer)
    assert timings.outcome == "completed"


def test_events_are_counted_per_chunk_without_pings() -> None:
    timings = StreamTimings()
    queue: deque[object] = deque([b"{}"])
    timings.on_events(queue, 0, 1.0)
    queue.extend([PING, b"{}", PING, b"{}"])
    timings.on_events(queue, 1, 2.0)
    assert timings.events == 3
    assert timings.first_event == 1.0 and timings.chunk_at == 2.0
    timings.on_delta(4)
    timings.on_delta(2)
    assert list(timings.delta_times) == [2.0, 2.0] and timings.first_text == 2.0
    assert timings.answer_chars == 6 and list(timings.inter_token_gaps()) == [0.0]


def test_delta_times_stop_growing_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_timings, "MAX_DELTA_TIMES", 3)
    timings = StreamTimings()
    queue: deque[object] = deque()
    for moment in range(5):
        queue.append(b"{}")
        timings.on_events(queue, len(queue) - 1, float(moment))
        timings.on_delta(1)
    assert timings.delta_count == 5 and timings.answer_chars == 5
    assert list(timings.delta_times) == [0.0, 1.0, 2.0]
