"""msgspec's fast path decodes exactly what the converter path decodes.

The converter path (``events._decode_with_converter``: orjson, then the cattrs converter's
hooks) is what ``decode_event`` did before the fast path existed, and it still decodes every
payload msgspec refuses; here it is the oracle. "Exactly" is checked strictly: same classes,
same field values of the same types all the way down (``1`` is not ``1.0``), same ``raw``, or
the same ``ResponseDecodeError``.
"""

from __future__ import annotations

import json
import math
import pickle
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapi import ResponseDecodeError
from chatapi import events as ev
from chatapi._fast_decode import fast_decoder
from chatapi.sse import SSEDecoder

from .test_events import JSON_TEXT, JSON_VALUES

FIXTURES = Path(__file__).parent / "fixtures" / "streams"
RECORDED_BODIES = sorted(
    [*FIXTURES.glob("*.txt"), *FIXTURES.glob("*/*/body.txt")], key=lambda path: str(path)
)


def assert_same(new: Any, old: Any, path: str = "$") -> None:
    """``new`` and ``old`` are equal values of identical types, recursively."""
    assert type(new) is type(old), f"{path}: {type(new).__name__} != {type(old).__name__}"
    if attrs.has(type(new)):
        for field in attrs.fields(type(new)):
            name = "raw" if field.name == "_raw" else field.name
            assert_same(getattr(new, name), getattr(old, name), f"{path}.{name}")
    elif isinstance(new, dict):
        assert list(new) == list(old), f"{path}: keys differ"
        for key in new:
            assert_same(new[key], old[key], f"{path}.{key}")
    elif isinstance(new, list):
        assert len(new) == len(old), f"{path}: lengths differ"
        for index, (a, b) in enumerate(zip(new, old, strict=True)):
            assert_same(a, b, f"{path}[{index}]")
    elif isinstance(new, float):
        assert new == old or (math.isnan(new) and math.isnan(old)), path
        assert math.copysign(1, new) == math.copysign(1, old), f"{path}: sign of zero"
    else:
        assert new == old, f"{path}: {new!r} != {old!r}"


def outcome(decode: Any, data: bytes | str) -> Any:
    try:
        return decode(data)
    except ResponseDecodeError as exc:
        return ResponseDecodeError, str(exc), exc.data


def assert_decodes_as_before(data: bytes | str) -> Any:
    new = outcome(ev.decode_event, data)
    old = outcome(ev._decode_with_converter, data)
    if isinstance(old, tuple) or isinstance(new, tuple):
        assert new == old
        return None
    assert_same(new, old)
    return new


def recorded_payloads() -> list[bytes]:
    payloads = []
    for path in RECORDED_BODIES:
        decoder = SSEDecoder(dispatch_empty=True)
        for item in decoder.feed_data(path.read_bytes()):
            if isinstance(item, bytes):
                payloads.append(item)
            elif item.data:
                payloads.append(item.data.encode())
    return payloads


# -- recorded streams -----------------------------------------------------------------------


def test_every_recorded_event_decodes_as_the_converter_does() -> None:
    payloads = recorded_payloads()
    if not payloads:
        pytest.skip("the recorded streams are not available")
    fast = 0
    for data in payloads:
        event = ev.decode_event(data)
        # Before ``raw`` is read, an event from the fast path holds only its bytes.
        fast += event._raw.__class__ is bytes
        assert_decodes_as_before(data)
    # The fast path is not bypassed: it decoded all but the rare classes of the recordings.
    assert fast >= len(payloads) - 5, (fast, len(payloads))


# -- every event class, generated payloads --------------------------------------------------

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)


def well_typed(tp: Any) -> st.SearchStrategy[Any]:
    """JSON values of the type ``tp`` declares (what the fast path accepts)."""
    if tp is str:
        return JSON_TEXT
    if tp is int:
        return INT64
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False) | INT64
    if tp is bool:
        return st.booleans()
    if tp is Any:
        return JSON_VALUES
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        inner = next(arg for arg in get_args(tp) if arg is not type(None))
        return st.none() | well_typed(inner)
    if origin is list:
        return st.lists(well_typed(get_args(tp)[0]), max_size=2)
    if origin is dict:
        return st.dictionaries(JSON_TEXT, well_typed(get_args(tp)[1]), max_size=2)
    assert attrs.has(tp), tp
    return object_of(tp)


def object_of(cls: type[Any]) -> st.SearchStrategy[dict[str, Any]]:
    hints = get_type_hints(cls)
    fields = {
        field.name: st.one_of(well_typed(hints[field.name]), JSON_VALUES)
        if field.name != "event"
        else st.just(attrs.fields_dict(cls)["event"].default)
        for field in attrs.fields(cls)
        if field.name != "_raw"
    }
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def event_payloads(draw: st.DrawFn) -> bytes:
    name, cls = draw(st.sampled_from(sorted(ev.EVENT_TYPES.items())))
    fields = draw(object_of(cls))
    fields.pop("event", None)
    extra = draw(st.dictionaries(st.sampled_from(["mood", "raw", "_raw", "x"]), JSON_VALUES))
    if draw(st.booleans()):
        payload = {"event": name, **fields, **extra}  # the order Dify writes
    else:
        payload = {**fields, **extra, "event": name}
    if draw(st.booleans()):
        return orjson.dumps(payload)
    return json.dumps(payload, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=600, deadline=None)
@given(data=event_payloads())
def test_every_event_class_decodes_as_the_converter_does(data: bytes) -> None:
    assert_decodes_as_before(data)


@pytest.mark.parametrize(("name", "cls"), sorted(ev.EVENT_TYPES.items()))
def test_each_class_is_decoded_by_msgspec_unless_a_hook_forbids_it(
    name: str, cls: type[ev.StreamEvent]
) -> None:
    # workflow_paused carries pause reasons, whose "TYPE" key needs the converter's hook.
    assert (fast_decoder(cls) is None) == (name == "workflow_paused")
    event = ev.decode_event(orjson.dumps({"event": name, "task_id": "t-1"}))
    assert (event._raw.__class__ is bytes) == (name != "workflow_paused")


# -- leniency, errors and edge cases, each through the fallback -------------------------------

LENIENT = [
    b'{"event":"message","answer":5,"created_at":"1795660613"}',  # number → text, text → int
    b'{"event":"message","created_at":1.0}',  # integral float → int
    b'{"event":"agent_thought","message_files":null}',  # null → empty list
    b'{"event":"node_finished","data":{"files":null,"elapsed_time":"0.5"}}',
    b'{"event":"message","answer":"caf\xe9 \xff"}',  # invalid UTF-8 → U+FFFD
    b'{"task_id":"t","event":"message","answer":"late name"}',  # "event" not first
    b'{"event":"mes\\u0073age","answer":"escaped name"}',
    b'{"event":"message","answer":"first","event":"message_end"}',  # duplicate key: last wins
    b'{"event":"surprise","task_id":7,"created_at":"x"}',  # unknown: bad common fields dropped
    b'{"event": "message", "answer": "spaced"}',
    b'{"event":"workflow_paused","data":{"reasons":[{"TYPE":"human_input_required"}]}}',
]
ERRORS = [
    b'{"event":"message","answer":{"not":"text"}}',
    b'{"event":"node_started","data":{"index":"one"}}',
    b'{"event":"node_started","data":[]}',
    b'{"event":"reasoning_chunk","data":{"is_final":"true"}}',  # no text → bool leniency
    b'{"event":"reasoning_chunk","data":{"is_final":1}}',
    b'{"event":"message"',
    b'["event","message"]',
    b'{"event":3}',
    b'{"answer":"no name"}',
    b'{"event":"message","answer":"\\ud800"}',  # a lone surrogate
]


@pytest.mark.parametrize("data", LENIENT)
def test_lenient_payloads_decode_as_before(data: bytes) -> None:
    assert assert_decodes_as_before(data) is not None
    assert assert_decodes_as_before(data.decode("utf-8", "replace")) is not None


@pytest.mark.parametrize("data", ERRORS)
def test_bad_payloads_raise_the_same_response_decode_error(data: bytes) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        ev.decode_event(data)
    assert caught.value.data == data
    assert_decodes_as_before(data)


def test_duplicate_event_key_takes_the_last_name() -> None:
    event = ev.decode_event(b'{"event":"message","answer":"Hi","event":"message_end"}')
    assert type(event) is ev.MessageEndEvent


# -- raw is built late, from the kept bytes -----------------------------------------------------


def test_raw_is_parsed_once_when_first_read() -> None:
    data = b'{"event":"message","answer":"Hi","mood":{"level":3}}'
    event = ev.decode_event(data)

    assert event._raw == data  # only the bytes so far
    raw = event.raw
    assert raw == {"event": "message", "answer": "Hi", "mood": {"level": 3}}
    assert event.raw is raw  # parsed once, then kept
    assert event._raw is raw


def test_raw_of_a_constructed_event_is_the_given_dict() -> None:
    payload = {"event": "message", "answer": "Hi"}
    event = ev.MessageEvent(answer="Hi", raw=payload)

    assert event.raw is payload
    assert ev.MessageEvent().raw == {}
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.raw = {}  # type: ignore[misc]


def test_events_with_kept_bytes_pickle_and_evolve_with_their_raw() -> None:
    event = ev.decode_event(b'{"event":"message","answer":"Hi","mood":"calm"}')

    copy = pickle.loads(pickle.dumps(event))
    changed = attrs.evolve(event, answer="Ho")

    assert copy == event and copy.raw == event.raw
    assert changed.answer == "Ho" and changed.raw["mood"] == "calm"


def test_a_wrong_type_refused_by_msgspec_is_reported_with_its_field_path() -> None:
    data = b'{"event":"node_started","task_id":"t","data":{"title":"LLM","index":"one"}}'

    with pytest.raises(ResponseDecodeError) as caught:
        ev.decode_event(data)

    assert caught.value.path == "data.index"
    assert "data.index" in str(caught.value) and caught.value.data == data
