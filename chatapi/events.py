"""Typed events of a Dify chat stream, and the decoder that builds them from SSE payloads.

Dify names the type of each streamed event in the JSON key ``"event"`` (only keep-alives use
the SSE ``event:`` field). Each wire name maps to one frozen, slotted attrs class here, a direct
subclass of :class:`StreamEvent`; :data:`EVENT_TYPES` is that mapping. Field names are Dify's
wire names, and the payload nested under ``data`` is an attrs class of its own.

Decoding is lenient because servers of different versions send different fields: a missing
field becomes ``None`` (or an empty list), an extra field is ignored, and every event has the
whole decoded JSON object in ``raw`` so nothing a newer server sends is lost (built from the
event's bytes when first read). msgspec decodes well-typed payloads straight into the classes;
anything else takes the converter's lenient path (see :mod:`chatapi._fast_decode`). An event
type this module does not know becomes an :class:`UnknownEvent` instead of an error, so a new
Dify release never breaks a stream. What cannot be decoded at all (invalid JSON, a payload that is
not an object or has no ``"event"``, a field of the wrong type) raises
:class:`~chatapi.errors.ResponseDecodeError` showing the offending payload. Keep-alives
(``event: ping`` blocks) carry no data to decode; :data:`PING` stands for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import msgspec
import orjson

from ._convert import SHAPE_ERRORS, presets_defaults, shape_error, structure_hook
from ._fast_decode import fast_decoder
from ._serialize import Serializable
from .errors import ResponseDecodeError
from .models import (
    HumanInputFormDefinition,
    MessageEndFile,
    MessageMetadata,
    WorkflowPausedData,
)

__all__ = [
    "EVENT_TYPES",
    "PING",
    "AgentLogData",
    "AgentLogEvent",
    "AgentMessageEvent",
    "AgentThoughtEvent",
    "ErrorEvent",
    "HumanInputFormFilledData",
    "HumanInputFormFilledEvent",
    "HumanInputFormTimeoutData",
    "HumanInputFormTimeoutEvent",
    "HumanInputRequiredData",
    "HumanInputRequiredEvent",
    "IterationCompletedEvent",
    "IterationData",
    "IterationNextEvent",
    "IterationStartedEvent",
    "LoopCompletedEvent",
    "LoopData",
    "LoopNextEvent",
    "LoopStartedEvent",
    "MessageEndEvent",
    "MessageEvent",
    "MessageFileEvent",
    "MessageReplaceEvent",
    "NodeData",
    "NodeFinishedEvent",
    "NodeRetryEvent",
    "NodeStartedEvent",
    "ParallelBranchData",
    "ParallelBranchFinishedEvent",
    "ParallelBranchStartedEvent",
    "PingEvent",
    "ReasoningChunkData",
    "ReasoningChunkEvent",
    "StreamEvent",
    "TTSMessageEndEvent",
    "TTSMessageEvent",
    "TextChunkData",
    "TextChunkEvent",
    "TextReplaceData",
    "TextReplaceEvent",
    "UnknownEvent",
    "WorkflowFinishedData",
    "WorkflowFinishedEvent",
    "WorkflowPausedEvent",
    "WorkflowStartedData",
    "WorkflowStartedEvent",
    "decode_event",
]


@attrs.frozen(kw_only=True)
class StreamEvent(Serializable):
    """Base class of every stream event: its wire name, the ids of the run and the raw JSON.

    Which ids are present depends on the event and the server version; ``error`` events and
    the synthetic events of a failed Chatflow start lack some of them.
    """

    event: str
    task_id: str | None = None
    conversation_id: str | None = None
    message_id: str | None = None
    created_at: int | None = None
    workflow_run_id: str | None = None
    # Given as ``raw=`` (attrs drops the underscore). An event decoded on the fast path keeps
    # its JSON bytes here until ``raw`` is first read: most events are never asked for it.
    _raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @presets_defaults
    def __attrs_pre_init__(self) -> None:
        # msgspec calls this on the bare instance before it decodes into it, and afterwards
        # asks the instance for every field: a slot still empty costs a raised and cleared
        # AttributeError, several times the price of filling it here. ``raw`` is never in the
        # JSON and Dify leaves ``workflow_run_id`` out of most events, so both start with
        # their defaults (attrs' ``__init__`` calls this too, then sets every field anyway).
        _keep_raw(self, _NO_RAW)
        _set_workflow_run_id(self, None)

    @property
    def raw(self) -> dict[str, Any]:
        """The whole JSON object of the event, fields this version does not know included."""
        raw: Any = self._raw
        if raw.__class__ is bytes:
            raw = _parse_raw(raw)
            _keep_raw(self, raw)
        return raw  # type: ignore[no-any-return]


# Write the slots of a frozen event: ``raw`` (the kept bytes, later their dict) and one id.
_keep_raw: Callable[[StreamEvent, Any], None] = StreamEvent.__dict__["_raw"].__set__
_set_workflow_run_id: Callable[[StreamEvent, Any], None] = StreamEvent.__dict__[
    "workflow_run_id"
].__set__
# What ``raw`` holds until the decoder (or ``__init__``) gives it the event's own JSON.
_NO_RAW = b"{}"


# Answer text and files


@attrs.frozen(kw_only=True)
class MessageEvent(StreamEvent):
    """A piece of the answer text: append ``answer`` to what came before.

    ``from_variable_selector`` names the workflow variable the text came from (Chatflow only).
    A New Agent app sends one closing copy with the whole answer after its ``agent_message``
    deltas; that one replaces rather than extends the text.
    """

    event: str = "message"
    id: str | None = None
    answer: str | None = None
    from_variable_selector: list[str] | None = None


@attrs.frozen(kw_only=True)
class AgentMessageEvent(StreamEvent):
    """A piece of the answer text of an Agent app: append ``answer`` to what came before."""

    event: str = "agent_message"
    id: str | None = None
    answer: str | None = None


@attrs.frozen(kw_only=True)
class AgentThoughtEvent(StreamEvent):
    """One reasoning or tool-call step of an Agent app.

    A step may be sent again with more content under the same ``position`` and ``id``: update
    the step you already have instead of adding a new one.
    """

    event: str = "agent_thought"
    id: str | None = None
    position: int | None = None
    thought: str | None = None
    observation: str | None = None
    tool: str | None = None
    tool_labels: dict[str, Any] | None = None
    tool_input: str | None = None
    message_files: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class MessageFileEvent(StreamEvent):
    """A file attached to the answer (``url`` points to it), or, in disguise, answer text.

    Once a chat or agent answer holds a file, Dify labels its later text deltas
    ``message_file``: such an event has ``answer`` and no ``url`` and extends the answer text.
    """

    event: str = "message_file"
    id: str | None = None
    type: str | None = None
    belongs_to: str | None = None
    url: str | None = None
    answer: str | None = None


@attrs.frozen(kw_only=True)
class MessageEndEvent(StreamEvent):
    """The answer is complete; ``metadata`` holds its token usage and citations."""

    event: str = "message_end"
    id: str | None = None
    metadata: MessageMetadata | None = None
    files: list[MessageEndFile] | None = None


@attrs.frozen(kw_only=True)
class MessageReplaceEvent(StreamEvent):
    """Moderation rewrote the answer: ``answer`` replaces all the text received so far."""

    event: str = "message_replace"
    answer: str | None = None
    reason: str | None = None


@attrs.frozen(kw_only=True)
class TTSMessageEvent(StreamEvent):
    """A chunk of the spoken answer (base64 audio) when text-to-speech autoplay is on."""

    event: str = "tts_message"
    audio: str | None = None


@attrs.frozen(kw_only=True)
class TTSMessageEndEvent(StreamEvent):
    """The spoken answer is complete; join the decoded ``tts_message`` chunks in order."""

    event: str = "tts_message_end"
    audio: str | None = None


@attrs.frozen(kw_only=True)
class ReasoningChunkData(Serializable):
    """A piece of an LLM node's separated reasoning; ``is_final`` closes that node's reasoning."""

    message_id: str | None = None
    reasoning: str | None = None
    node_id: str | None = None
    is_final: bool | None = None


@attrs.frozen(kw_only=True)
class ReasoningChunkEvent(StreamEvent):
    """A piece of a Chatflow LLM node's reasoning, streamed beside the answer (Dify 1.15+)."""

    event: str = "reasoning_chunk"
    data: ReasoningChunkData | None = None


@attrs.frozen(kw_only=True)
class TextChunkData(Serializable):
    """A piece of workflow output text and the variable it came from."""

    text: str | None = None
    from_variable_selector: list[str] | None = None


@attrs.frozen(kw_only=True)
class TextChunkEvent(StreamEvent):
    """A piece of output text of a workflow app; Chatflow answers arrive as ``message``."""

    event: str = "text_chunk"
    data: TextChunkData | None = None


@attrs.frozen(kw_only=True)
class TextReplaceData(Serializable):
    """The text that replaces a workflow's output so far."""

    text: str | None = None


@attrs.frozen(kw_only=True)
class TextReplaceEvent(StreamEvent):
    """A workflow app's output text was rewritten: ``data.text`` replaces what came before."""

    event: str = "text_replace"
    data: TextReplaceData | None = None


# Workflow runs


@attrs.frozen(kw_only=True)
class WorkflowStartedData(Serializable):
    """The run that started: its id, the workflow, its inputs and whether it is a resumption."""

    id: str | None = None
    workflow_id: str | None = None
    inputs: dict[str, Any] | None = None
    created_at: int | None = None
    reason: str | None = None
    sequence_number: int | None = None


@attrs.frozen(kw_only=True)
class WorkflowStartedEvent(StreamEvent):
    """A Chatflow run began, or resumed after a pause; ``workflow_run_id`` identifies it."""

    event: str = "workflow_started"
    data: WorkflowStartedData | None = None


@attrs.frozen(kw_only=True)
class WorkflowFinishedData(Serializable):
    """The outcome of a run: its status, outputs or error, cost and timing."""

    id: str | None = None
    workflow_id: str | None = None
    status: str | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    created_by: dict[str, Any] | None = None
    created_at: int | None = None
    finished_at: int | None = None
    exceptions_count: int | None = None
    files: list[dict[str, Any]] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class WorkflowFinishedEvent(StreamEvent):
    """A Chatflow run ended; a ``data.status`` other than ``succeeded`` means it failed or
    was stopped, even when no ``error`` event follows."""

    event: str = "workflow_finished"
    data: WorkflowFinishedData | None = None


@attrs.frozen(kw_only=True)
class WorkflowPausedEvent(StreamEvent):
    """A Chatflow run stopped at a Human Input node; ``data.reasons`` describe the forms to
    submit before the run can be resumed. The stream ends here."""

    event: str = "workflow_paused"
    data: WorkflowPausedData | None = None


# Nodes, iterations, loops, parallel branches and agent logs


@attrs.frozen(kw_only=True)
class NodeData(Serializable):
    """One execution of a workflow node, shared by the started, finished and retry events.

    The result fields (``outputs``, ``status``, ``elapsed_time``...) are set once the node has
    run; the ``parallel_*`` fields come only from servers older than Dify 1.10.
    """

    id: str | None = None
    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    index: int | None = None
    predecessor_node_id: str | None = None
    inputs: dict[str, Any] | None = None
    inputs_truncated: bool | None = None
    created_at: int | None = None
    extras: dict[str, Any] | None = None
    iteration_id: str | None = None
    loop_id: str | None = None
    agent_strategy: dict[str, Any] | None = None
    process_data: dict[str, Any] | None = None
    process_data_truncated: bool | None = None
    outputs: dict[str, Any] | None = None
    outputs_truncated: bool | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    execution_metadata: dict[str, Any] | None = None
    finished_at: int | None = None
    files: list[dict[str, Any]] = attrs.field(factory=list)
    retry_index: int | None = None
    parallel_id: str | None = None
    parallel_start_node_id: str | None = None
    parent_parallel_id: str | None = None
    parent_parallel_start_node_id: str | None = None
    parallel_run_id: str | None = None


@attrs.frozen(kw_only=True)
class NodeStartedEvent(StreamEvent):
    """A workflow node began to run; use it to show progress."""

    event: str = "node_started"
    data: NodeData | None = None


@attrs.frozen(kw_only=True)
class NodeFinishedEvent(StreamEvent):
    """A workflow node finished; ``data.status``, ``outputs`` and ``error`` tell how."""

    event: str = "node_finished"
    data: NodeData | None = None


@attrs.frozen(kw_only=True)
class NodeRetryEvent(StreamEvent):
    """A workflow node failed and will run again; ``data.retry_index`` counts the attempts."""

    event: str = "node_retry"
    data: NodeData | None = None


@attrs.frozen(kw_only=True)
class IterationData(Serializable):
    """The state of an Iteration node, shared by its started, next and completed events."""

    id: str | None = None
    node_id: str | None = None
    node_type: str | None = None
    title: str | None = None
    index: int | None = None
    created_at: int | None = None
    extras: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    inputs_truncated: bool | None = None
    outputs: dict[str, Any] | None = None
    outputs_truncated: bool | None = None
    status: str | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    execution_metadata: dict[str, Any] | None = None
    finished_at: int | None = None
    steps: int | None = None


@attrs.frozen(kw_only=True)
class IterationStartedEvent(StreamEvent):
    """An Iteration node began; ``data.metadata`` tells how many items it will go through."""

    event: str = "iteration_started"
    data: IterationData | None = None


@attrs.frozen(kw_only=True)
class IterationNextEvent(StreamEvent):
    """An Iteration node moved on to its item number ``data.index`` (counted from 0)."""

    event: str = "iteration_next"
    data: IterationData | None = None


@attrs.frozen(kw_only=True)
class IterationCompletedEvent(StreamEvent):
    """An Iteration node finished all its items; ``data`` holds its outputs and status."""

    event: str = "iteration_completed"
    data: IterationData | None = None


@attrs.frozen(kw_only=True)
class LoopData(IterationData):
    """The state of a Loop node, shared by its started, next and completed events.

    The fields of an iteration, and ``pre_loop_output``: what the previous round produced.
    """

    pre_loop_output: Any = None


@attrs.frozen(kw_only=True)
class LoopStartedEvent(StreamEvent):
    """A Loop node began its first round."""

    event: str = "loop_started"
    data: LoopData | None = None


@attrs.frozen(kw_only=True)
class LoopNextEvent(StreamEvent):
    """A Loop node began round ``data.index``; ``pre_loop_output`` is what the last round made."""

    event: str = "loop_next"
    data: LoopData | None = None


@attrs.frozen(kw_only=True)
class LoopCompletedEvent(StreamEvent):
    """A Loop node stopped looping; ``data`` holds its outputs and status."""

    event: str = "loop_completed"
    data: LoopData | None = None


@attrs.frozen(kw_only=True)
class ParallelBranchData(Serializable):
    """A branch of a parallel block; ``status`` and ``error`` are set when it finished."""

    parallel_id: str | None = None
    parallel_branch_id: str | None = None
    parent_parallel_id: str | None = None
    parent_parallel_start_node_id: str | None = None
    iteration_id: str | None = None
    loop_id: str | None = None
    created_at: int | None = None
    status: str | None = None
    error: str | None = None


@attrs.frozen(kw_only=True)
class ParallelBranchStartedEvent(StreamEvent):
    """A parallel branch began (sent only by servers older than Dify 1.9)."""

    event: str = "parallel_branch_started"
    data: ParallelBranchData | None = None


@attrs.frozen(kw_only=True)
class ParallelBranchFinishedEvent(StreamEvent):
    """A parallel branch ended (sent only by servers older than Dify 1.9)."""

    event: str = "parallel_branch_finished"
    data: ParallelBranchData | None = None


@attrs.frozen(kw_only=True)
class AgentLogData(Serializable):
    """One entry of an Agent node's log; ``parent_id`` nests entries into a tree."""

    node_execution_id: str | None = None
    id: str | None = None
    label: str | None = None
    parent_id: str | None = None
    error: str | None = None
    status: str | None = None
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    node_id: str | None = None


@attrs.frozen(kw_only=True)
class AgentLogEvent(StreamEvent):
    """A step of an Agent node inside a Chatflow (a thought, a tool call, its result)."""

    event: str = "agent_log"
    data: AgentLogData | None = None


# Human Input forms


@attrs.frozen(kw_only=True)
class HumanInputRequiredData(HumanInputFormDefinition):
    """The form a Human Input node waits for: its text, inputs, actions and ``form_token``."""

    approval_channels: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class HumanInputRequiredEvent(StreamEvent):
    """A Human Input node waits for a form; ``data`` describes it, and ``data.form_token`` is
    what to submit it with. A ``workflow_paused`` event follows and ends the stream."""

    event: str = "human_input_required"
    data: HumanInputRequiredData | None = None


@attrs.frozen(kw_only=True)
class HumanInputFormFilledData(Serializable):
    """The submitted form: the action chosen, the values entered and the rendered text."""

    node_id: str | None = None
    node_title: str | None = None
    rendered_content: str | None = None
    action_id: str | None = None
    action_text: str | None = None
    submitted_data: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class HumanInputFormFilledEvent(StreamEvent):
    """A Human Input form was submitted; it arrives on the stream of the resumed run."""

    event: str = "human_input_form_filled"
    data: HumanInputFormFilledData | None = None


@attrs.frozen(kw_only=True)
class HumanInputFormTimeoutData(Serializable):
    """The Human Input node whose form expired, and when."""

    node_id: str | None = None
    node_title: str | None = None
    expiration_time: int | None = None


@attrs.frozen(kw_only=True)
class HumanInputFormTimeoutEvent(StreamEvent):
    """A Human Input form expired before anyone submitted it (seen on a resumed run's stream)."""

    event: str = "human_input_form_timeout"
    data: HumanInputFormTimeoutData | None = None


# Control events


@attrs.frozen(kw_only=True)
class PingEvent(StreamEvent):
    """A keep-alive the server sends about every 10 seconds; it carries nothing."""

    event: str = "ping"


@attrs.frozen(kw_only=True)
class ErrorEvent(StreamEvent):
    """The run failed mid-stream; the stream ends after it.

    ``status`` is the HTTP status the error would have had (the response itself is a 200),
    ``code`` Dify's error code and ``message`` its text. Streams raise it as ``StreamError``.
    """

    event: str = "error"
    status: int | None = None
    code: str | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class UnknownEvent(StreamEvent):
    """An event type this version of chatapi does not know; its payload is only in ``raw``.

    Newer Dify servers add event types; skipping what you do not recognise keeps working.
    """


EVENT_TYPES: dict[str, type[StreamEvent]] = {
    "message": MessageEvent,
    "agent_message": AgentMessageEvent,
    "agent_thought": AgentThoughtEvent,
    "message_file": MessageFileEvent,
    "message_end": MessageEndEvent,
    "message_replace": MessageReplaceEvent,
    "tts_message": TTSMessageEvent,
    "tts_message_end": TTSMessageEndEvent,
    "reasoning_chunk": ReasoningChunkEvent,
    "text_chunk": TextChunkEvent,
    "text_replace": TextReplaceEvent,
    "workflow_started": WorkflowStartedEvent,
    "workflow_finished": WorkflowFinishedEvent,
    "workflow_paused": WorkflowPausedEvent,
    "node_started": NodeStartedEvent,
    "node_finished": NodeFinishedEvent,
    "node_retry": NodeRetryEvent,
    "iteration_started": IterationStartedEvent,
    "iteration_next": IterationNextEvent,
    "iteration_completed": IterationCompletedEvent,
    "loop_started": LoopStartedEvent,
    "loop_next": LoopNextEvent,
    "loop_completed": LoopCompletedEvent,
    "parallel_branch_started": ParallelBranchStartedEvent,
    "parallel_branch_finished": ParallelBranchFinishedEvent,
    "agent_log": AgentLogEvent,
    "human_input_required": HumanInputRequiredEvent,
    "human_input_form_filled": HumanInputFormFilledEvent,
    "human_input_form_timeout": HumanInputFormTimeoutEvent,
    "ping": PingEvent,
    "error": ErrorEvent,
}
"""The event class of each wire name; names missing here decode to :class:`UnknownEvent`."""

PING = PingEvent()
"""The event for an ``event: ping`` SSE block, which has no data to decode."""

_StructureHook = Callable[[Any, Any], StreamEvent]

# Converter hooks by wire name, filled on first use so importing this module stays cheap.
_hooks: dict[str, tuple[type[StreamEvent], _StructureHook]] = {}

_loads = orjson.loads


def _parse_raw(data: bytes) -> dict[str, Any]:
    # Only bytes that msgspec has decoded into an event are kept, so they parse to an object.
    raw: dict[str, Any] = msgspec.json.decode(data)
    return raw


_FastEntry = tuple[str, Callable[[bytes], StreamEvent]]
# msgspec decoders keyed by how a payload naming the event starts, up to the closing quote of
# the name (``{"event":"message``, and the spelling with a space after the colon), made on
# first use. Only known names are cached, so the table stays bounded whatever a server sends;
# None: that class goes through the converter.
_fast: dict[bytes, _FastEntry | None] = {}
_COMPACT = b'{"event":"'
_SPACED = b'{"event": "'


def decode_event(data: str | bytes) -> StreamEvent:
    """Decode the JSON ``data`` of one SSE block into the event class of its ``"event"`` name.

    Bytes are read as UTF-8, invalid sequences as U+FFFD (as :class:`~chatapi.sse.SSEDecoder`
    decodes text). Raises :class:`~chatapi.errors.ResponseDecodeError` when ``data`` is not a
    JSON object with a string ``"event"``, or when a known event has a field of the wrong type.
    """
    if isinstance(data, bytes):
        encoded = data
    else:
        try:
            encoded = data.encode()
        except UnicodeEncodeError:  # lone surrogates: only the converter path copes
            return _decode_with_converter(data)
    # Dify writes "event" first and compact: one slice of the start finds the class. Any
    # other start misses the table and is sorted out by ``_fast_entry``. Whatever the start
    # claims, msgspec checks the whole payload, and a later duplicate "event" key (which
    # msgspec would let win) is caught below.
    entry = _fast.get(encoded[: encoded.find(b'"', 10)])
    if entry is None:
        entry = _fast_entry(encoded)
        if entry is None:
            return _decode_with_converter(data)
    try:
        event = entry[1](encoded)
    except msgspec.MsgspecError:
        # Only strictly typed JSON gets through: the converter applies its leniency to the
        # rest, or raises the error.
        return _decode_with_converter(data)
    if event.event != entry[0]:
        return _decode_with_converter(data)
    _keep_raw(event, encoded)
    return event


def _fast_entry(encoded: bytes) -> _FastEntry | None:
    """The table entry for a payload whose start missed the table, made if it is a known name."""
    if encoded.startswith(_COMPACT):
        start = len(_COMPACT)
    elif encoded.startswith(_SPACED):
        start = len(_SPACED)
    else:
        return None
    end = encoded.find(b'"', start)
    if end < 0:
        return None
    head = encoded[:end]
    if head in _fast:
        return _fast[head]  # a spaced start, or a class the converter decodes
    # An escaped name (a backslash before the quote found) is no key of EVENT_TYPES.
    name = encoded[start:end].decode("utf-8", "replace")
    cls = EVENT_TYPES.get(name)
    if cls is None:
        return None
    decode = fast_decoder(cls)
    entry = _fast[head] = (name, decode) if decode is not None else None
    return entry


def _decode_with_converter(data: str | bytes) -> StreamEvent:
    """The general path: orjson to a dict, then the converter's hook of the event class.

    It takes every payload the fast path does not: lenient types, invalid UTF-8, unknown or
    escaped names, keys in another order, and everything that is an error.
    """
    try:
        payload = _loads(data)
    except orjson.JSONDecodeError:
        payload = _loads_leniently(data)
    try:
        cls, hook = _hooks[payload["event"]]
    except (KeyError, TypeError):
        # Not cached yet, unknown, or not an event at all: the rare cases, kept off the hot path.
        cls, hook = _lookup(payload, data)
    try:
        return hook(payload, cls)
    except SHAPE_ERRORS as exc:
        head = f"cannot decode a {payload['event']!r} event"
        raise shape_error(payload, cls, head=head, data=data) from exc


def _loads_leniently(data: str | bytes) -> Any:
    """Parse what orjson refused: bytes that are not UTF-8 get a second try as decoded text."""
    if isinstance(data, bytes):
        text = data.decode("utf-8", "replace")
        # A text that decodes without replacement failed for another reason: it stays failed.
        if text.encode() != data:
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass
    raise ResponseDecodeError("event payload is not valid JSON", data=data)


def _lookup(payload: Any, data: str | bytes) -> tuple[type[StreamEvent], _StructureHook]:
    if not isinstance(payload, dict):
        raise ResponseDecodeError(
            f"event payload is a JSON {type(payload).__name__}, not an object", data=data
        )
    name = payload.get("event")
    if not isinstance(name, str):
        raise ResponseDecodeError('event payload has no string "event" key', data=data)
    cls = EVENT_TYPES.get(name)
    if cls is None:
        # Not cached: unknown names are whatever the server sends, an unbounded set.
        return UnknownEvent, _structure_unknown
    entry = _hooks[name] = (cls, structure_hook(cls))
    return entry


def _structure_unknown(payload: dict[str, Any], _: Any) -> UnknownEvent:
    # Nothing is known about this event, so a common field of the wrong type is dropped
    # rather than rejected.
    def text(key: str) -> str | None:
        value = payload.get(key)
        return value if isinstance(value, str) else None

    created_at = payload.get("created_at")
    if not isinstance(created_at, int) or isinstance(created_at, bool):
        created_at = None
    return UnknownEvent(
        event=payload["event"],
        task_id=text("task_id"),
        conversation_id=text("conversation_id"),
        message_id=text("message_id"),
        created_at=created_at,
        workflow_run_id=text("workflow_run_id"),
        raw=payload,
    )
