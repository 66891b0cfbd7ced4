"""The shortcuts of the streaming hot path give exactly what the general code gives.

- ``SSEDecoder.feed_data`` (the stream's entry point) against ``SSEDecoder.feed``: same events
  and same size verdicts for any stream and any chunking, including its whole-chunk split;
- the structure functions generated for slotted attrs classes against cattrs' own;
- ``decode_event`` on bytes that are not valid UTF-8, as ``feed`` would have decoded them.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest
from cattrs.gen import make_dict_structure_fn, override
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapi import AsyncChatClient, ResponseDecodeError, models
from chatapi import events as ev
from chatapi._convert import _raw_field, converter, structure
from chatapi.sse import ServerSentEvent, SSEDecodeError, SSEDecoder

from .conftest import ReplayServer, Reply, sse
from .test_events import JSON_VALUES, KNOWN_FIELD_NAMES
from .test_sse import _chunked, streams

# -- feed_data against feed ---------------------------------------------------------------


def as_events(items: Any, decoder: SSEDecoder) -> list[tuple[str, str]]:
    """``feed_data`` output in ``feed``'s terms: data bytes are a "message" event's text."""
    return [
        ("message", item.decode("utf-8", "replace"))
        if isinstance(item, bytes)
        else (item.event, item.data)
        for item in items
    ]


def both_ways(chunks: list[bytes], **options: Any) -> tuple[list[Any], list[Any]]:
    plain, raw = SSEDecoder(**options), SSEDecoder(**options)
    expected: list[tuple[str, str]] = []
    got: list[tuple[str, str]] = []
    for chunk in chunks:
        expected += [(event.event, event.data) for event in plain.feed(chunk)]
        got += as_events(raw.feed_data(chunk), raw)
    assert (raw.last_event_id, raw.retry) == (plain.last_event_id, plain.retry)
    return expected, got


_payload = st.sampled_from(
    [b'{"event":"message","answer":"Hi"}', b'{"answer":"caf\xc3\xa9"}', b"x", b"", b"\xff\xfe"]
)
_block = st.one_of(
    _payload.map(lambda data: b"data: " + data + b"\n\n"),
    _payload.map(lambda data: b"data:" + data + b"\n\n"),  # no space after the colon
    st.just(b"event: ping\n\n"),
    st.just(b": keep-alive\n\n"),
    st.just(b"\n"),  # a stray blank line
    st.just(b"data: a\ndata: b\n\n"),
    st.just(b"id: 7\ndata: x\n\n"),
    st.just(b"data: tail\r\n\r\n"),
)


@st.composite
def dify_streams(draw: st.DrawFn) -> bytes:
    """Mostly one-line data blocks, as Dify sends, with every kind of exception mixed in."""
    return b"".join(draw(st.lists(_block, max_size=20))) + draw(st.sampled_from([b"", b"data"]))


@settings(max_examples=200, deadline=None)
@given(stream=st.one_of(streams(), dify_streams()), data=st.data(), empty=st.booleans())
def test_feed_data_gives_the_events_of_feed(
    stream: bytes, data: st.DataObject, empty: bool
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))

    expected, got = both_ways(_chunked(stream, cuts), dispatch_empty=empty)

    assert got == expected


@settings(max_examples=200, deadline=None)
@given(stream=dify_streams(), data=st.data(), limit=st.integers(1, 60))
def test_feed_data_size_verdict_is_feeds(stream: bytes, data: st.DataObject, limit: int) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    chunks = _chunked(stream, cuts)

    def outcome(method: str) -> str:
        decoder = SSEDecoder(max_event_size=limit)
        try:
            for chunk in chunks:
                getattr(decoder, method)(chunk)
        except SSEDecodeError:
            return "too large"
        return "ok"

    assert outcome("feed_data") == outcome("feed")


def test_chunk_of_one_line_data_blocks_is_split_in_one_go() -> None:
    decoder = SSEDecoder()

    assert decoder.feed_data(b"data: {}\n\ndata: caf\xc3\xa9\n\ndata: \xff\n\n") == [
        b"{}",
        "café".encode(),
        b"\xff",
    ]
    assert decoder.feed_data(b"data: a\n\ndata: b\ndata: c\n\ndata: d\n\n") == [
        b"a",
        ServerSentEvent("message", "b\nc"),
        b"d",
    ]
    # An extra blank line takes the block-by-block path; the events are the same.
    items = decoder.feed_data(b"data: a\n\n\ndata: b\n\n")
    assert as_events(items, decoder) == [("message", "a"), ("message", "b")]


def test_partial_line_chunks_wait_for_their_line_end() -> None:
    decoder = SSEDecoder()
    event = b'data: {"event":"message","answer":"Hello"}\n\n'

    pieces = [decoder.feed_data(event[start : start + 5]) for start in range(0, len(event), 5)]

    assert [item for piece in pieces for item in piece] == [event[6:-2]]
    assert all(not piece for piece in pieces[:-1])


def test_whole_chunk_split_enforces_the_size_limit_with_the_events_head() -> None:
    decoder = SSEDecoder(max_event_size=20)
    chunk = b"data: short\n\ndata: " + b"x" * 30 + b"\n\n"

    with pytest.raises(SSEDecodeError, match=r"max_event_size \(20 bytes\)") as caught:
        decoder.feed_data(chunk)

    assert caught.value.data == b"data: " + b"x" * 30


def test_cr_at_a_chunk_end_is_honoured_by_the_small_chunk_path() -> None:
    decoder = SSEDecoder()

    chunks = (b"data: a\r", b"\n", b"\r", b"\ndata: b\n\n", b"data: c\n", b"\n")
    items = [item for chunk in chunks for item in decoder.feed_data(chunk)]

    assert as_events(items, decoder) == [("message", "a"), ("message", "b"), ("message", "c")]


# -- decode_event on bytes ----------------------------------------------------------------


def test_bytes_that_are_not_utf8_decode_like_feeds_text() -> None:
    data = b'{"event":"message","answer":"caf\xe9 \xff!","task_id":"t-1"}'

    event = ev.decode_event(data)

    assert event == ev.decode_event(data.decode("utf-8", "replace"))
    assert isinstance(event, ev.MessageEvent)
    assert event.answer == "caf\ufffd \ufffd!"


def test_invalid_json_that_is_not_utf8_either_shows_the_original_bytes() -> None:
    data = b'{"event":"message","answer":"\xff'

    with pytest.raises(ResponseDecodeError, match="not valid JSON") as caught:
        ev.decode_event(data)

    assert caught.value.data == data


async def test_stream_decodes_invalid_utf8_as_replacement_characters(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = b'data: {"event":"message","task_id":"t","answer":"caf\xe9"}\n\n' + sse(
        {"event": "message_end", "task_id": "t", "id": "m", "metadata": {}}
    )
    server.queue(Reply(body, chunk_size=7))

    async with client.chat.stream("q") as stream:
        reply = await stream.final_message()

    assert reply.answer == "caf\ufffd"


# -- generated structure functions against cattrs' ----------------------------------------


def reference_hook(cls: Any) -> Any:
    """The hook cattrs would build (what chatapi used before generating its own)."""
    raw_field = _raw_field(cls)
    overrides = {raw_field: override(omit=True)} if raw_field is not None else {}
    fields = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]

    def structure_reference(value: Any, _: Any) -> Any:
        if value.__class__ is not dict:
            raise TypeError("not an object")
        instance = fields(value, cls)
        if raw_field is not None:
            object.__setattr__(instance, raw_field, value)
        return instance

    return structure_reference


def _attrs_classes(module: Any) -> list[type[Any]]:
    found = []
    for name in sorted(dir(module)):
        value = getattr(module, name)
        if (
            isinstance(value, type)
            and attrs.has(value)
            and not getattr(value, "__parameters__", None)
        ):
            found.append(value)
    return found


CLASSES = sorted({*_attrs_classes(ev), *_attrs_classes(models)}, key=lambda cls: cls.__qualname__)
FIELD_NAMES = sorted(
    set(KNOWN_FIELD_NAMES) | {field.name for cls in CLASSES for field in attrs.fields(cls)}
)


def outcome(hook: Any, payload: Any, cls: type[Any]) -> Any:
    try:
        result = hook(payload, cls)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return type(exc)
    except Exception as exc:  # cattrs' own validation errors
        return type(exc).__mro__[1] if type(exc).__name__.endswith("Error") else type(exc)
    return result, getattr(result, "raw", None)


def test_hot_classes_get_generated_functions() -> None:
    for cls in (ev.MessageEvent, ev.NodeData, ev.WorkflowFinishedEvent, models.ChatCompletion):
        hook = converter.get_structure_hook(cls)
        assert hook.__code__.co_filename.startswith("<chatapi structure"), cls


@settings(max_examples=300, deadline=None)
@given(
    cls=st.sampled_from(CLASSES),
    payload=st.one_of(
        st.dictionaries(st.sampled_from(FIELD_NAMES), JSON_VALUES, max_size=6),
        JSON_VALUES,
    ),
)
def test_generated_functions_agree_with_cattrs(cls: type[Any], payload: Any) -> None:
    generated = converter.get_structure_hook(cls)

    assert outcome(generated, payload, cls) == outcome(reference_hook(cls), payload, cls)


def test_recorded_events_decode_as_cattrs_would() -> None:
    from .conftest import recording

    body = recording("dify-1.15.0/v1_50_iter_streaming")
    payloads = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: {")]
    assert len(payloads) > 10
    for data in payloads:
        payload = orjson.loads(data)
        cls = ev.EVENT_TYPES.get(payload["event"], ev.UnknownEvent)
        if cls is ev.UnknownEvent:
            continue
        event = ev.decode_event(data)
        assert event == reference_hook(cls)(payload, cls)
        assert event.raw == payload


@attrs.frozen
class _Validated:
    count: int = attrs.field(validator=attrs.validators.ge(0))


@attrs.frozen
class _PostInit:
    name: str
    seen: list[str] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.seen.append(self.name)


@attrs.define(slots=False)
class _NotSlotted:
    name: str | None = None


def test_classes_whose_init_does_more_keep_cattrs_functions() -> None:
    with pytest.raises(ResponseDecodeError):
        structure({"count": -1}, _Validated)
    assert structure({"name": "x"}, _PostInit).seen == ["x"]
    assert structure({"name": "x"}, _NotSlotted) == _NotSlotted("x")
    for cls in (_Validated, _PostInit, _NotSlotted):
        hook = converter.get_structure_hook(cls)
        assert not hook.__code__.co_filename.startswith("<chatapi structure"), cls


@attrs.frozen(kw_only=True)
class _Required:
    name: str
    tags: list[str] = attrs.field(factory=list)
    size: float = 1.5


def test_generated_function_handles_required_fields_and_defaults() -> None:
    assert structure({"name": "x"}, _Required) == _Required(name="x")
    assert structure({"name": 3, "tags": None, "size": 2}, _Required) == _Required(
        name="3", tags=[], size=2.0
    )
    with pytest.raises(ResponseDecodeError, match="name: required field missing"):
        structure({"tags": []}, _Required)
    with pytest.raises(ResponseDecodeError, match="expected a number"):
        structure({"name": "x", "size": None}, _Required)
