"""Specification of ``chatapi.events``: one class per wire name, lenient but never sloppy."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, get_args, get_type_hints

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatapi import events
from chatapi.errors import ResponseDecodeError
from chatapi.events import (
    EVENT_TYPES,
    PING,
    AgentLogEvent,
    AgentMessageEvent,
    AgentThoughtEvent,
    ErrorEvent,
    HumanInputFormFilledEvent,
    HumanInputFormTimeoutEvent,
    HumanInputRequiredEvent,
    IterationCompletedEvent,
    IterationNextEvent,
    IterationStartedEvent,
    LoopCompletedEvent,
    LoopNextEvent,
    LoopStartedEvent,
    MessageEndEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
    NodeFinishedEvent,
    NodeRetryEvent,
    NodeStartedEvent,
    ParallelBranchFinishedEvent,
    ParallelBranchStartedEvent,
    PingEvent,
    ReasoningChunkEvent,
    StreamEvent,
    TextChunkEvent,
    TextReplaceEvent,
    TTSMessageEndEvent,
    TTSMessageEvent,
    UnknownEvent,
    WorkflowFinishedEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
    decode_event,
)

STREAMS = Path(__file__).resolve().parent / "fixtures" / "streams"
RECORDINGS = [
    STREAMS / "dify-1.12.1" / "v1_22_chat_streaming_new" / "body.txt",
    *sorted(STREAMS.glob("dify-1.15.0/*/body.txt")),
]

CONVERSATION_ID = "5b1e7f0c-2d7a-4c61-9a57-0f3c2e9d8a41"
MESSAGE_ID = "e3c0a9f2-7b54-4d1e-8c2a-61f0d7b3a9c5"
TASK_ID = "0d9f4b6e-3a21-4f8c-b7e5-92c4a1d0e6f3"
RUN_ID = "a7c2e5d1-9f40-4b3a-8e6c-5d1f2a9b0c74"


def wire(event: str, *, workflow: bool = False, **payload: Any) -> bytes:
    """A compact payload as a Dify >= 1.8.1 server writes it, with the usual envelope."""
    envelope: dict[str, Any] = {
        "event": event,
        "conversation_id": CONVERSATION_ID,
        "message_id": MESSAGE_ID,
        "created_at": 1795660613,
        "task_id": TASK_ID,
    }
    if workflow:
        envelope["workflow_run_id"] = RUN_ID
    return orjson.dumps({**envelope, **payload})


@functools.cache
def _recorded_events() -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for path in RECORDINGS:
        if not path.is_file():
            continue
        for line in path.read_bytes().splitlines():
            if line.startswith(b"data: "):
                data = line.removeprefix(b"data: ")
                found.setdefault(orjson.loads(data)["event"], []).append(data)
    return found


def recorded(name: str) -> bytes:
    """The first ``name`` event of the real Dify 1.12.1 / 1.15.0 recordings."""
    payloads = _recorded_events().get(name)
    if not payloads:
        pytest.skip(f"no recorded {name!r} event is available")
    return payloads[0]


def example_stream(filename: str) -> str:
    """An example stream of ``shared/streams`` (docs and issue pastes)."""
    path = STREAMS / filename
    if not path.is_file():
        pytest.skip(f"{filename} is not available")
    return path.read_text(encoding="utf-8")


# The catalogue


CATALOGUE = [
    ("message", MessageEvent),
    ("agent_message", AgentMessageEvent),
    ("agent_thought", AgentThoughtEvent),
    ("message_file", MessageFileEvent),
    ("message_end", MessageEndEvent),
    ("message_replace", MessageReplaceEvent),
    ("tts_message", TTSMessageEvent),
    ("tts_message_end", TTSMessageEndEvent),
    ("reasoning_chunk", ReasoningChunkEvent),
    ("error", ErrorEvent),
    ("ping", PingEvent),
    ("workflow_started", WorkflowStartedEvent),
    ("node_started", NodeStartedEvent),
    ("node_finished", NodeFinishedEvent),
    ("node_retry", NodeRetryEvent),
    ("iteration_started", IterationStartedEvent),
    ("iteration_next", IterationNextEvent),
    ("iteration_completed", IterationCompletedEvent),
    ("loop_started", LoopStartedEvent),
    ("loop_next", LoopNextEvent),
    ("loop_completed", LoopCompletedEvent),
    ("agent_log", AgentLogEvent),
    ("workflow_finished", WorkflowFinishedEvent),
    ("workflow_paused", WorkflowPausedEvent),
    ("human_input_required", HumanInputRequiredEvent),
    ("human_input_form_filled", HumanInputFormFilledEvent),
    ("human_input_form_timeout", HumanInputFormTimeoutEvent),
    ("text_chunk", TextChunkEvent),
    ("text_replace", TextReplaceEvent),
    ("parallel_branch_started", ParallelBranchStartedEvent),
    ("parallel_branch_finished", ParallelBranchFinishedEvent),
]

PUBLIC_ATTRS_CLASSES = [
    obj
    for name in events.__all__
    if isinstance(obj := getattr(events, name), type) and attrs.has(obj)
]


def test_every_wire_name_of_the_catalogue_has_a_class() -> None:
    assert dict(CATALOGUE) == EVENT_TYPES


@pytest.mark.parametrize(("name", "cls"), CATALOGUE)
def test_wire_name_decodes_to_its_class(name: str, cls: type[StreamEvent]) -> None:
    event = decode_event(orjson.dumps({"event": name}))

    assert type(event) is cls
    assert event.event == name
    assert attrs.fields_dict(cls)["event"].default == name


@pytest.mark.parametrize(("name", "cls"), CATALOGUE)
def test_missing_fields_become_none_or_empty(name: str, cls: type[StreamEvent]) -> None:
    event = decode_event(orjson.dumps({"event": name}))

    for field in attrs.fields(cls):
        if field.name not in ("event", "_raw"):
            assert getattr(event, field.name) in (None, []), field.name


@pytest.mark.parametrize("cls", [*EVENT_TYPES.values(), UnknownEvent])
def test_event_classes_derive_directly_from_stream_event(cls: type[StreamEvent]) -> None:
    assert cls.__bases__ == (StreamEvent,)


@pytest.mark.parametrize("cls", PUBLIC_ATTRS_CLASSES, ids=lambda cls: cls.__name__)
def test_classes_are_frozen_and_slotted(cls: type[Any]) -> None:
    instance = cls(event="x") if issubclass(cls, StreamEvent) else cls()
    field = attrs.fields(cls)[0].name

    assert "__slots__" in vars(cls)
    assert not hasattr(instance, "__dict__")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(instance, field, None)


def test_ping_constant_is_an_empty_ping_event() -> None:
    assert PingEvent() == PING
    assert PING.event == "ping"
    assert PING.raw == {}


# Recorded streams of real servers


def test_recorded_streams_contain_only_known_events() -> None:
    if not _recorded_events():
        pytest.skip("the recorded Dify streams are not available")
    for name, payloads in _recorded_events().items():
        for data in payloads:
            event = decode_event(data)
            assert type(event) is EVENT_TYPES[name]
            assert event.raw == orjson.loads(data)


def test_message_from_recording() -> None:
    event = decode_event(recorded("message"))

    assert event == MessageEvent(
        task_id="8c4184df-4b00-4fdc-81b5-305d32766b05",
        conversation_id="48f87fbb-f5aa-416f-89a9-b1bcb9dbdb30",
        message_id="cc9ff027-7eae-4990-b4eb-b047a4ed881c",
        created_at=1795660613,
        id="cc9ff027-7eae-4990-b4eb-b047a4ed881c",
        answer="Echo: ",
        from_variable_selector=["answer", "answer"],
    )
    assert event.workflow_run_id is None


def test_workflow_started_from_recording() -> None:
    event = decode_event(recorded("workflow_started"))

    assert isinstance(event, WorkflowStartedEvent)
    assert event.workflow_run_id == "46015616-2dc4-4485-bbb3-88332373d272"
    assert event.data is not None
    assert event.data.id == event.workflow_run_id
    assert event.data.workflow_id == "d3c51cf5-4fdf-4391-b5d6-5c37d079d351"
    assert event.data.inputs is not None
    assert event.data.inputs["name"] == "Bob"
    assert event.data.inputs["sys.dialogue_count"] == 1
    assert event.data.created_at == 1795660614


def test_node_started_from_recording() -> None:
    event = decode_event(recorded("node_started"))

    assert isinstance(event, NodeStartedEvent)
    assert event.data is not None
    assert (event.data.node_id, event.data.node_type, event.data.title) == (
        "start",
        "start",
        "Start",
    )
    assert event.data.index == 1
    assert event.data.predecessor_node_id is None
    assert event.data.inputs is None
    assert event.data.inputs_truncated is False
    assert event.data.extras == {}
    assert event.data.status is None


def test_node_finished_from_recording() -> None:
    event = decode_event(recorded("node_finished"))

    assert isinstance(event, NodeFinishedEvent)
    assert event.data is not None
    assert event.data.status == "succeeded"
    assert event.data.elapsed_time == 0.993925
    assert event.data.error is None
    assert event.data.outputs is not None
    assert event.data.outputs["sys.query"] == "Stream me"
    assert event.data.process_data == {}
    assert event.data.execution_metadata is None
    assert event.data.finished_at == 1795660614
    assert event.data.files == []


def test_workflow_finished_from_recording() -> None:
    event = decode_event(recorded("workflow_finished"))

    assert isinstance(event, WorkflowFinishedEvent)
    assert event.data is not None
    assert event.data.status == "succeeded"
    assert event.data.outputs == {"answer": "Echo: Stream me | name=Bob | memo=hello", "files": []}
    assert event.data.elapsed_time == 0.006877
    assert (event.data.total_tokens, event.data.total_steps) == (0, 2)
    assert event.data.created_by == {"id": "978f89ad-e018-49a0-bcd5-b1505c4d063e", "user": "user-1"}
    assert event.data.exceptions_count == 0


def test_message_end_from_recording() -> None:
    event = decode_event(recorded("message_end"))

    assert isinstance(event, MessageEndEvent)
    assert event.id == event.message_id
    assert event.metadata is not None
    assert event.metadata.usage is not None
    assert event.metadata.usage.total_tokens == 0
    assert event.metadata.usage.total_price == "0.0"
    assert event.metadata.usage.currency == "USD"
    assert event.metadata.usage.time_to_first_token == 1.013
    assert event.metadata.retriever_resources == []
    assert event.metadata.annotation_reply is None
    assert event.files == []


def test_iteration_events_from_recording() -> None:
    started = decode_event(recorded("iteration_started"))
    next_item = decode_event(recorded("iteration_next"))
    completed = decode_event(recorded("iteration_completed"))

    assert isinstance(started, IterationStartedEvent)
    assert started.data is not None
    assert started.data.metadata == {"iteration_length": 3}
    assert started.data.inputs == {"iterator_selector": ["apple", "banana", "cherry"]}
    assert isinstance(next_item, IterationNextEvent)
    assert next_item.data is not None
    assert next_item.data.index == 0
    assert isinstance(completed, IterationCompletedEvent)
    assert completed.data is not None
    assert completed.data.status == "succeeded"
    assert completed.data.steps == 3
    assert completed.data.elapsed_time == 0.325247
    assert completed.data.outputs == {"output": ["apple", "banana", "cherry"]}
    assert completed.data.execution_metadata is not None
    assert completed.data.execution_metadata["iteration_duration_map"]["2"] == 0.107207


def test_human_input_required_from_recording() -> None:
    event = decode_event(recorded("human_input_required"))

    assert isinstance(event, HumanInputRequiredEvent)
    assert event.data is not None
    assert event.data.form_token == "3fsT3tlwoqh8SlAKtJpN1C"
    assert event.data.node_title == "Review"
    assert [i.output_variable_name for i in event.data.inputs] == ["comment", "decision"]
    assert event.data.inputs[0].default == {
        "type": "constant",
        "selector": [],
        "value": "looks good",
    }
    assert [(a.id, a.title, a.button_style) for a in event.data.actions] == [
        ("approve", "Approve", "primary"),
        ("reject", "Reject", "default"),
    ]
    assert event.data.display_in_ui is True
    assert event.data.approval_channels == ["console"]
    assert event.data.expiration_time == 1795751434


def test_workflow_paused_from_recording() -> None:
    event = decode_event(recorded("workflow_paused"))

    assert isinstance(event, WorkflowPausedEvent)
    assert event.data is not None
    assert event.data.status == "paused"
    assert event.data.paused_nodes == ["hi"]
    assert event.data.total_steps == 3
    reason = event.data.reasons[0]
    assert reason.type == "human_input_required"  # sent as "TYPE"
    assert reason.form_token == "3fsT3tlwoqh8SlAKtJpN1C"
    assert reason.form_id == "01a215f9-fb54-74c8-a17d-a52f15f81e7c"
    assert [a.id for a in reason.actions] == ["approve", "reject"]


def test_human_input_form_filled_from_recording() -> None:
    event = decode_event(recorded("human_input_form_filled"))

    assert isinstance(event, HumanInputFormFilledEvent)
    assert event.data is not None
    assert (event.data.action_id, event.data.action_text) == ("approve", "Approve")
    assert event.data.submitted_data == {"comment": "ship it", "decision": "yes"}
    assert event.data.rendered_content is not None
    assert "Comment: ship it" in event.data.rendered_content


# Events the recordings do not contain


def test_agent_thought() -> None:
    event = decode_event(
        wire(
            "agent_thought",
            id="9f1c3b2a-6d4e-4a8b-b0c7-2e5f8a1d3c6b",
            position=2,
            thought="I should look the weather up.",
            observation='{"temperature": "21C"}',
            tool="weather;clock",
            tool_labels={"weather": {"en_US": "Weather"}},
            tool_input='{"weather": {"city": "Lyon"}}',
            message_files=["4c2d9e7a-1b3f-4e6d-8a5c-7f0b2d1e9a3c"],
        )
    )

    assert isinstance(event, AgentThoughtEvent)
    assert event.position == 2
    assert event.tool == "weather;clock"
    assert event.tool_labels == {"weather": {"en_US": "Weather"}}
    assert event.tool_input == '{"weather": {"city": "Lyon"}}'
    assert event.message_files == ["4c2d9e7a-1b3f-4e6d-8a5c-7f0b2d1e9a3c"]


def test_agent_message() -> None:
    event = decode_event(wire("agent_message", id=MESSAGE_ID, answer="It is 21C in Lyon."))

    assert isinstance(event, AgentMessageEvent)
    assert (event.id, event.answer) == (MESSAGE_ID, "It is 21C in Lyon.")


def test_message_file_with_a_url() -> None:
    event = decode_event(
        wire(
            "message_file",
            id="4c2d9e7a-1b3f-4e6d-8a5c-7f0b2d1e9a3c",
            type="image",
            belongs_to="assistant",
            url="/files/tools/4c2d9e7a.png?timestamp=1795660613&sign=abc",
        )
    )

    assert isinstance(event, MessageFileEvent)
    assert (event.type, event.belongs_to) == ("image", "assistant")
    assert event.url == "/files/tools/4c2d9e7a.png?timestamp=1795660613&sign=abc"
    assert event.answer is None


def test_message_file_carrying_a_text_delta() -> None:
    event = decode_event(wire("message_file", id=MESSAGE_ID, answer="Here it is."))

    assert isinstance(event, MessageFileEvent)
    assert event.answer == "Here it is."
    assert event.url is None


def test_message_replace() -> None:
    event = decode_event(
        wire("message_replace", answer="I cannot answer that.", reason="output_moderation")
    )

    assert isinstance(event, MessageReplaceEvent)
    assert event.answer == "I cannot answer that."
    assert event.reason == "output_moderation"


def test_tts_events() -> None:
    chunk = decode_event(wire("tts_message", audio="SUQzBAAAAAAAI1RTU0UAAAAP"))
    end = decode_event(wire("tts_message_end", audio=""))

    assert isinstance(chunk, TTSMessageEvent)
    assert chunk.audio == "SUQzBAAAAAAAI1RTU0UAAAAP"
    assert isinstance(end, TTSMessageEndEvent)
    assert end.audio == ""


def test_reasoning_chunk() -> None:
    event = decode_event(
        wire(
            "reasoning_chunk",
            data={
                "message_id": MESSAGE_ID,
                "reasoning": "",
                "node_id": "llm",
                "is_final": True,
            },
        )
    )

    assert isinstance(event, ReasoningChunkEvent)
    assert event.workflow_run_id is None
    assert event.data is not None
    assert (event.data.message_id, event.data.reasoning) == (MESSAGE_ID, "")
    assert (event.data.node_id, event.data.is_final) == ("llm", True)


def test_text_chunk_and_text_replace() -> None:
    chunk = decode_event(
        wire(
            "text_chunk",
            workflow=True,
            data={"text": "Bonjour", "from_variable_selector": ["llm", "text"]},
        )
    )
    replace = decode_event(wire("text_replace", workflow=True, data={"text": "Hello"}))

    assert isinstance(chunk, TextChunkEvent)
    assert chunk.data is not None
    assert chunk.data.text == "Bonjour"
    assert chunk.data.from_variable_selector == ["llm", "text"]
    assert isinstance(replace, TextReplaceEvent)
    assert replace.data is not None
    assert replace.data.text == "Hello"


def test_node_retry() -> None:
    event = decode_event(
        wire(
            "node_retry",
            workflow=True,
            data={
                "id": "6e2b9c4d-0a1f-4d7e-93b8-c5a2f1e0d4b7",
                "node_id": "http",
                "node_type": "http-request",
                "title": "Fetch",
                "index": 3,
                "predecessor_node_id": "start",
                "inputs": None,
                "process_data": None,
                "outputs": None,
                "status": "retry",
                "error": "Reached maximum retries (0) for URL http://10.0.0.9/slow",
                "elapsed_time": 10.02,
                "execution_metadata": None,
                "created_at": 1795660613,
                "finished_at": 1795660623,
                "files": [],
                "iteration_id": None,
                "loop_id": None,
                "retry_index": 1,
            },
        )
    )

    assert isinstance(event, NodeRetryEvent)
    assert event.data is not None
    assert (event.data.status, event.data.retry_index) == ("retry", 1)
    assert event.data.error == "Reached maximum retries (0) for URL http://10.0.0.9/slow"
    assert event.data.elapsed_time == 10.02


def test_loop_events() -> None:
    common = {"id": "loop", "node_id": "loop", "node_type": "loop", "title": "Loop"}
    started = decode_event(
        wire(
            "loop_started",
            workflow=True,
            data={**common, "created_at": 1795660613, "metadata": {"loop_length": 3}},
        )
    )
    next_round = decode_event(
        wire(
            "loop_next",
            workflow=True,
            data={**common, "index": 1, "pre_loop_output": {"count": 1}, "extras": {}},
        )
    )
    completed = decode_event(
        wire(
            "loop_completed",
            workflow=True,
            data={
                **common,
                "outputs": {"count": 3},
                "status": "succeeded",
                "error": None,
                "elapsed_time": 0.42,
                "total_tokens": 0,
                "execution_metadata": {"loop_duration_map": {"0": 0.1}},
                "finished_at": 1795660614,
                "steps": 3,
            },
        )
    )

    assert isinstance(started, LoopStartedEvent)
    assert started.data is not None
    assert started.data.metadata == {"loop_length": 3}
    assert isinstance(next_round, LoopNextEvent)
    assert next_round.data is not None
    assert (next_round.data.index, next_round.data.pre_loop_output) == (1, {"count": 1})
    assert isinstance(completed, LoopCompletedEvent)
    assert completed.data is not None
    assert (completed.data.status, completed.data.steps) == ("succeeded", 3)
    assert completed.data.outputs == {"count": 3}


def test_parallel_branch_events_of_old_servers() -> None:
    branch = {
        "parallel_id": "p1",
        "parallel_branch_id": "b2",
        "parent_parallel_id": None,
        "parent_parallel_start_node_id": None,
        "iteration_id": None,
        "loop_id": None,
        "created_at": 1745399115,
    }
    started = decode_event(wire("parallel_branch_started", workflow=True, data=branch))
    finished = decode_event(
        wire(
            "parallel_branch_finished",
            workflow=True,
            data={**branch, "status": "failed", "error": "timeout"},
        )
    )

    assert isinstance(started, ParallelBranchStartedEvent)
    assert started.data is not None
    assert (started.data.parallel_id, started.data.parallel_branch_id) == ("p1", "b2")
    assert isinstance(finished, ParallelBranchFinishedEvent)
    assert finished.data is not None
    assert (finished.data.status, finished.data.error) == ("failed", "timeout")


def test_agent_log() -> None:
    event = decode_event(
        wire(
            "agent_log",
            data={
                "node_execution_id": "1f3e5d7c-9b2a-4c6e-8d0f-a2b4c6d8e0f1",
                "id": "log-2",
                "label": "CALL weather",
                "parent_id": "log-1",
                "error": None,
                "status": "success",
                "data": {"tool_input": {"city": "Lyon"}},
                "metadata": {"elapsed_time": 0.31},
                "node_id": "agent",
            },
        )
    )

    assert isinstance(event, AgentLogEvent)
    assert event.workflow_run_id is None
    assert event.data is not None
    assert (event.data.label, event.data.parent_id, event.data.status) == (
        "CALL weather",
        "log-1",
        "success",
    )
    assert event.data.data == {"tool_input": {"city": "Lyon"}}


def test_human_input_form_timeout() -> None:
    event = decode_event(
        wire(
            "human_input_form_timeout",
            workflow=True,
            data={"node_id": "hi", "node_title": "Review", "expiration_time": 1795751434},
        )
    )

    assert isinstance(event, HumanInputFormTimeoutEvent)
    assert event.data is not None
    assert (event.data.node_id, event.data.expiration_time) == ("hi", 1795751434)


def test_error_event() -> None:
    data = orjson.dumps(
        {
            "event": "error",
            "conversation_id": CONVERSATION_ID,
            "message_id": MESSAGE_ID,
            "created_at": 1795660613,
            "code": "completion_request_error",
            "status": 400,
            "message": "[openai] Error: rate limit exceeded",
        }
    )

    event = decode_event(data)

    assert event == ErrorEvent(
        conversation_id=CONVERSATION_ID,
        message_id=MESSAGE_ID,
        created_at=1795660613,
        status=400,
        code="completion_request_error",
        message="[openai] Error: rate limit exceeded",
    )
    assert event.task_id is None


def test_ping_sent_as_data() -> None:
    assert decode_event(b'{"event":"ping"}') == PING


# Leniency


def test_unknown_event_keeps_its_name_and_payload() -> None:
    data = wire("workflow_suspended", workflow=True, data={"reason": "maintenance"})

    event = decode_event(data)

    assert type(event) is UnknownEvent
    assert event.event == "workflow_suspended"
    assert (event.task_id, event.conversation_id, event.message_id) == (
        TASK_ID,
        CONVERSATION_ID,
        MESSAGE_ID,
    )
    assert (event.created_at, event.workflow_run_id) == (1795660613, RUN_ID)
    assert event.raw == orjson.loads(data)


def test_unknown_event_drops_common_fields_of_the_wrong_type() -> None:
    event = decode_event(
        orjson.dumps({"event": "brand_new", "task_id": 7, "created_at": True, "message_id": {}})
    )

    assert event == UnknownEvent(event="brand_new")
    assert event.raw["task_id"] == 7


def test_extra_fields_are_ignored_but_kept_in_raw() -> None:
    data = wire("message", id=MESSAGE_ID, answer="Hi", sequence_number=3, mood="cheerful")

    event = decode_event(data)

    assert isinstance(event, MessageEvent)
    assert event.answer == "Hi"
    assert event.raw["mood"] == "cheerful"
    assert event.raw == orjson.loads(data)


def test_raw_is_left_out_of_equality_and_repr() -> None:
    plain = decode_event(wire("message", answer="Hi"))
    decorated = decode_event(wire("message", answer="Hi", mood="cheerful"))

    assert plain == decorated
    assert plain.raw != decorated.raw
    assert "raw" not in repr(decorated)
    assert "cheerful" not in repr(decorated)


def test_numbers_sent_as_strings_are_accepted() -> None:
    event = decode_event(wire("message", created_at="1795660613", id=MESSAGE_ID))

    assert event.created_at == 1795660613


def test_text_and_bytes_decode_alike() -> None:
    data = recorded("node_finished")

    assert decode_event(data.decode()) == decode_event(data)


def test_spaced_json_decodes_like_compact_json() -> None:
    payload = orjson.loads(recorded("workflow_paused"))

    spaced = decode_event(json.dumps(payload))
    compact = decode_event(orjson.dumps(payload))

    assert spaced == compact


def test_old_json_dumps_payload_with_escapes() -> None:
    text = example_stream("11_issue_marsDes11_chatflow_workflow_started.txt")
    first_event = text.split("\n\n")[0].removeprefix("data: ")
    assert "\\u4f60" in first_event  # a pre-1.8.1 server escaped non-ASCII text

    event = decode_event(first_event)

    assert isinstance(event, WorkflowStartedEvent)
    assert event.workflow_run_id == "b9cf5abc-a1cc-42c0-8a68-1db9b2085a88"
    assert event.data is not None
    assert event.data.sequence_number == 44
    assert event.data.inputs is not None
    assert event.data.inputs["sys.query"] == "你是谁"


def test_old_json_dumps_payload_of_an_agent_stream() -> None:
    data = (
        '{"event": "agent_thought", "conversation_id": "a5233957", "message_id": "47d025d4", '
        '"created_at": 1719915570, "task_id": "1ae6620c", "id": "d01ba9c8", "position": 1, '
        '"thought": "\\u5929\\u6c14", "observation": "", "tool": "", "tool_labels": {}, '
        '"tool_input": "", "message_files": []}'
    )

    event = decode_event(data)

    assert isinstance(event, AgentThoughtEvent)
    assert event.thought == "天气"
    assert (event.position, event.tool_labels, event.message_files) == (1, {}, [])


# Rejections


def test_malformed_json_shows_the_offending_bytes() -> None:
    text = example_stream("11_issue_marsDes11_chatflow_workflow_started.txt")
    truncated = text.split("\n\n")[1].removeprefix("data: ").encode()

    with pytest.raises(ResponseDecodeError, match="not valid JSON") as caught:
        decode_event(truncated)

    assert caught.value.data == truncated
    assert repr(truncated[:40].decode())[1:-1] in str(caught.value)
    assert f"({len(truncated)} characters)" in str(caught.value)


@pytest.mark.parametrize("data", [b"[]", b'"message"', b"42", b"null", b"true"])
def test_payload_that_is_not_an_object_is_rejected(data: bytes) -> None:
    with pytest.raises(ResponseDecodeError, match="not an object"):
        decode_event(data)


@pytest.mark.parametrize(
    "payload",
    [{"answer": "Hi"}, {"event": 5}, {"event": None}, {"event": ["message"]}, {"event": {}}],
)
def test_payload_without_a_string_event_is_rejected(payload: dict[str, Any]) -> None:
    with pytest.raises(ResponseDecodeError, match='no string "event"'):
        decode_event(orjson.dumps(payload))


@pytest.mark.parametrize(
    ("data", "path", "found"),
    [
        (wire("message", created_at={}), "created_at", "got object"),
        (wire("message", answer=["Hi"]), "answer", "got array"),
        (wire("message", from_variable_selector="answer"), "from_variable_selector", "string"),
        (wire("error", status=True), "status", "got boolean"),
        (wire("node_finished", data={"elapsed_time": "fast"}), "data.elapsed_time", "string"),
        (wire("node_finished", data={"inputs": ["not", "an"]}), "data.inputs", "got array"),
        (
            wire("message_end", metadata={"usage": {"total_tokens": 1.5}}),
            "metadata.usage.total_tokens",
            "expected an integer",
        ),
        (wire("message_end", metadata={"reasoning": ["llm"]}), "metadata.reasoning", "array"),
        (
            wire("human_input_required", data={"actions": [{"title": "No id"}]}),
            "data.actions[0].id",
            "required field missing",
        ),
        (
            wire("workflow_paused", data={"reasons": "human_input_required"}),
            "data.reasons",
            "not JSON text",
        ),
        (wire("workflow_finished", data={"outputs": [1, 2]}), "data.outputs", "got array"),
    ],
    ids=lambda value: orjson.loads(value)["event"] if isinstance(value, bytes) else "",
)
def test_field_of_the_wrong_type_is_rejected_naming_its_path(
    data: bytes, path: str, found: str
) -> None:
    name = orjson.loads(data)["event"]

    with pytest.raises(ResponseDecodeError, match=f"cannot decode a '{name}' event") as caught:
        decode_event(data)

    assert caught.value.data == data
    assert caught.value.path == path
    assert f": {path}: " in str(caught.value)
    assert found in str(caught.value)


def test_objects_sent_as_json_text_are_decoded_and_raw_keeps_the_text() -> None:
    # The rule of the converter: wherever an object or a list is declared, JSON text of one
    # is accepted (Dify serialises some columns with json.dumps).
    data = wire(
        "workflow_finished",
        workflow=True,
        data={"status": "succeeded", "outputs": '{"answer": "done"}', "files": "[]"},
    )
    event = decode_event(data)

    assert isinstance(event, WorkflowFinishedEvent)
    assert event.data is not None
    assert event.data.outputs == {"answer": "done"}
    assert event.data.files == []
    assert event.raw["data"]["outputs"] == '{"answer": "done"}'

    end = decode_event(wire("message_end", metadata={"reasoning": '{"llm": "thought"}'}))
    assert isinstance(end, MessageEndEvent) and end.metadata is not None
    assert end.metadata.reasoning == {"llm": "thought"}  # a typed mapping follows the rule too


def _field_names(tp: Any, seen: set[type[Any]]) -> set[str]:
    """The field names of an attrs class and of every attrs class nested in its fields."""
    if not (isinstance(tp, type) and attrs.has(tp)) or tp in seen:
        return set()
    seen.add(tp)
    names: set[str] = set()
    for name, hint in get_type_hints(tp).items():
        names.add(name)
        for nested in (hint, *get_args(hint)):
            names |= _field_names(nested, seen)
    return names


KNOWN_FIELD_NAMES = sorted(
    _field_names(StreamEvent, set()).union(
        *(_field_names(cls, set()) for cls in EVENT_TYPES.values())
    )
    - {"raw"}
)
# A fixed alphabet (digits for numeric strings, non-ASCII, escapes) spares Hypothesis from
# building its Unicode tables, which is slow on a fresh checkout.
JSON_TEXT = st.text(alphabet='019.-e xé你"\\', max_size=4)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | JSON_TEXT,
    lambda children: (
        st.lists(children, max_size=2)
        | st.dictionaries(st.sampled_from(KNOWN_FIELD_NAMES), children, max_size=3)
    ),
    max_leaves=6,
)


@given(
    name=st.sampled_from(sorted(EVENT_TYPES)),
    fields=st.dictionaries(st.sampled_from(KNOWN_FIELD_NAMES), JSON_VALUES, max_size=4),
)
def test_any_payload_decodes_or_raises_response_decode_error(
    name: str, fields: dict[str, Any]
) -> None:
    payload = {**fields, "event": name}
    data = orjson.dumps(payload)

    try:
        event = decode_event(data)
    except ResponseDecodeError as exc:
        assert exc.data == data
    else:
        assert type(event) is EVENT_TYPES[name]
        assert event.raw == payload
