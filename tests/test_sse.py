"""Tests of chatapi.sse: the WHATWG event stream rules, chunking, limits, cost, real streams."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatapi.errors import ConfigurationError, ResponseDecodeError
from chatapi.sse import ServerSentEvent, SSEDecodeError, SSEDecoder

E = ServerSentEvent
BOM = b"\xef\xbb\xbf"
STREAMS = Path(__file__).resolve().parent / "fixtures" / "streams"


def decode(chunks: bytes | Iterable[bytes], **options: Any) -> list[ServerSentEvent]:
    """Feed ``chunks`` (one bytes object is a single chunk) to a new decoder, then close it."""
    if isinstance(chunks, bytes):
        chunks = [chunks]
    decoder = SSEDecoder(**options)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return events


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


_LINE_END = re.compile(r"\r\n|\r|\n")


def reference(stream: bytes, *, dispatch_empty: bool = False) -> list[ServerSentEvent]:
    """A direct, unoptimised transcription of the WHATWG algorithm, as the test oracle."""
    text = stream.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = _LINE_END.split(text)
    lines.pop()  # whatever follows the last line end is never completed
    events = []
    data = event_type = ""
    last_event_id: str | None = None
    retry: int | None = None
    had_field = False
    for line in lines:
        if not line:
            if data or (dispatch_empty and had_field):
                events.append(
                    E(event_type or "message", data.removesuffix("\n"), last_event_id, retry)
                )
            data = event_type = ""
            had_field = False
            continue
        if line.startswith(":"):
            continue
        had_field = True
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id" and "\0" not in value:
            last_event_id = value
        elif name == "retry" and value and all("0" <= c <= "9" for c in value):
            retry = int(value)
    return events


def case(
    case_id: str, chunks: bytes | list[bytes], expected: list[ServerSentEvent], **options: Any
) -> Any:
    return pytest.param(chunks, options, expected, id=case_id)


RULES = [
    # Line ends.
    case("lf", b"data: a\n\n", [E(data="a")]),
    case("cr", b"data: a\r\r", [E(data="a")]),
    case("crlf", b"data: a\r\n\r\n", [E(data="a")]),
    case(
        "mixed-line-ends",
        b"data: a\rdata: b\r\n\ndata: c\n\r\n",
        [E(data="a\nb"), E(data="c")],
    ),
    case("cr-then-crlf-is-two-line-ends", b"data: a\r\r\n", [E(data="a")]),
    case("lf-then-cr-is-two-line-ends", b"data: a\n\rdata: b\n\n", [E(data="a"), E(data="b")]),
    case(
        "crlf-split-across-chunks",
        [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"],
        [E(data="a\nb")],
    ),
    case(
        "crlf-split-by-an-empty-chunk",
        [b"data: a\r", b"", b"\ndata: b\r\n\r\n"],
        [E(data="a\nb")],
    ),
    case("cr-at-chunk-end-then-cr", [b"data: a\r", b"\r"], [E(data="a")]),
    case("crlf-in-one-chunk-cr-in-next", [b"data: a\r\n", b"\r"], [E(data="a")]),
    # Byte order mark.
    case("bom-stripped", BOM + b"data: a\n\n", [E(data="a")]),
    case("bom-split-across-chunks", [b"\xef", b"\xbb", b"\xbfdata: a\n\n"], [E(data="a")]),
    case("bom-after-empty-chunk", [b"", BOM, b"data: a\n\n"], [E(data="a")]),
    case("second-bom-is-part-of-the-field-name", BOM + BOM + b"data: a\n\n", []),
    case("bom-later-in-the-stream-is-kept", b"data: " + BOM + b"a\n\n", [E(data="\ufeffa")]),
    case(
        "bom-at-start-of-second-block-is-kept",
        b"data: a\n\n" + BOM + b"data: b\n\n",
        [E(data="a")],
    ),
    case(
        "bom-prefix-that-is-no-bom",
        [b"\xef", b"\xbb\ndata: a\n\n"],
        [E(data="a")],
    ),
    # Comments and field parsing.
    case("comments-ignored", b": hello\ndata: a\n:\n\n", [E(data="a")]),
    case("comment-only-block-not-dispatched", b": ping\n\n", [], dispatch_empty=True),
    case("blank-lines-only", b"\n\n\r\n\r", [], dispatch_empty=True),
    case("data-without-colon", b"data\n\n", [E(data="")]),
    case("two-data-without-colon", b"data\ndata\n\n", [E(data="\n")]),
    case("only-one-space-stripped", b"data:  a\n\n", [E(data=" a")]),
    case("no-space-after-colon", b"data:a\n\n", [E(data="a")]),
    case("tab-not-stripped", b"data:\ta\n\n", [E(data="\ta")]),
    case("empty-value", b"data: \n\n", [E(data="")]),
    case("colon-in-value", b"data: a: b\n\n", [E(data="a: b")]),
    case("field-names-are-case-sensitive", b"Data: a\n\n", []),
    case("leading-space-in-field-name", b" data: a\n\n", []),
    case("unknown-field-ignored", b"foo: bar\ndata: a\n\n", [E(data="a")]),
    case("multi-line-data", b"data: a\ndata: b\ndata: c\n\n", [E(data="a\nb\nc")]),
    case("empty-middle-data-line", b"data: a\ndata:\ndata: c\n\n", [E(data="a\n\nc")]),
    case("nul-in-data-kept", b"data: a\x00b\n\n", [E(data="a\x00b")]),
    # Dispatch.
    case("no-data-no-event", b"event: ping\n\n", []),
    case("ping-with-dispatch-empty", b"event: ping\n\n", [E("ping", "")], dispatch_empty=True),
    case(
        "any-field-line-with-dispatch-empty",
        b"id: 7\n\n",
        [E("message", "", "7")],
        dispatch_empty=True,
    ),
    case(
        "dispatch-empty-keeps-data-events",
        b"event: ping\n\ndata: a\n\n",
        [E("ping", ""), E(data="a")],
        dispatch_empty=True,
    ),
    case("event-type", b"event: update\ndata: a\n\n", [E("update", "a")]),
    case(
        "event-type-resets-after-dispatch",
        b"event: x\ndata: a\n\ndata: b\n\n",
        [E("x", "a"), E("message", "b")],
    ),
    case(
        "event-type-resets-after-empty-block",
        b"event: x\n\ndata: b\n\n",
        [E("message", "b")],
    ),
    case("empty-event-type-is-message", b"event:\ndata: a\n\n", [E("message", "a")]),
    case("last-event-type-wins", b"event: x\nevent: y\ndata: a\n\n", [E("y", "a")]),
    # Last event ID and retry.
    case("no-id-is-none", b"data: a\n\n", [E(data="a", id=None)]),
    case(
        "id-persists",
        b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
        [E(data="a", id="1"), E(data="b", id="1"), E(data="c", id="")],
    ),
    case("id-from-a-block-without-data", b"id: 1\n\ndata: a\n\n", [E(data="a", id="1")]),
    case("id-with-nul-ignored", b"id: 1\n\nid: 2\x003\ndata: a\n\n", [E(data="a", id="1")]),
    case("retry-digits", b"retry: 1000\ndata: a\n\n", [E(data="a", retry=1000)]),
    case("retry-not-digits", b"retry: 10a\ndata: a\n\n", [E(data="a")]),
    case("retry-empty", b"retry:\ndata: a\n\n", [E(data="a")]),
    case("retry-negative", b"retry: -1\ndata: a\n\n", [E(data="a")]),
    case("retry-extra-space", b"retry:  5\ndata: a\n\n", [E(data="a")]),
    case("retry-non-ascii-digits", "retry: \u0661\u0662\ndata: a\n\n".encode(), [E(data="a")]),
    case(
        "retry-persists-invalid-ignored",
        b"retry: 1000\n\nretry: 5x\ndata: a\n\n",
        [E(data="a", retry=1000)],
    ),
    # End of stream.
    case("unterminated-block-discarded", b"data: a\n\ndata: b\n", [E(data="a")]),
    case("unterminated-line-discarded", b"data: a\n\ndata: b", [E(data="a")]),
    case("no-line-end-at-all", b"data: a", []),
    # Text decoding.
    case("invalid-utf8-replaced", b"data: a\xffb\n\n", [E(data="a\ufffdb")]),
    case(
        "invalid-bytes-do-not-merge-across-lines",
        b"data: \xe2\x82\ndata: \xac\n\n",
        [E(data="\ufffd\n\ufffd")],
    ),
    case("invalid-utf8-in-event-type", b"event: \xff\ndata: a\n\n", [E("\ufffd", "a")]),
    case("non-ascii-id", "id: é\ndata: a\n\n".encode(), [E(data="a", id="é")]),
    case(
        "multi-byte-split-across-chunks",
        [b"data: \xe2", b"\x82", b"\xac\xf0\x9f", b"\x98\x80\n\n"],
        [E(data="€😀")],
    ),
]


@pytest.mark.parametrize(("chunks", "options", "expected"), RULES)
def test_rules(chunks: bytes | list[bytes], options: dict[str, Any], expected: list[E]) -> None:
    assert decode(chunks, **options) == expected


@pytest.mark.parametrize(("chunks", "options", "expected"), RULES)
def test_rules_byte_by_byte_and_by_the_reference(
    chunks: bytes | list[bytes], options: dict[str, Any], expected: list[E]
) -> None:
    stream = chunks if isinstance(chunks, bytes) else b"".join(chunks)
    assert decode(bytewise(stream), **options) == expected
    assert reference(stream, **options) == expected


@pytest.mark.parametrize("cut", range(1, len("data: €😀\n\n".encode())))
def test_multi_byte_characters_split_anywhere(cut: int) -> None:
    stream = "data: €😀\n\n".encode()
    assert decode([stream[:cut], stream[cut:]]) == [E(data="€😀")]


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [E(data="a")]
    assert decoder.feed(b"\ndata: b\n") == []
    assert decoder.feed(b"\n") == [E(data="b")]


def test_last_event_id_and_retry_properties() -> None:
    decoder = SSEDecoder()
    assert (decoder.last_event_id, decoder.retry) == (None, None)
    decoder.feed(b"id: 42\nretry: 3000\n")
    assert (decoder.last_event_id, decoder.retry) == ("42", 3000)


def test_close_discards_the_open_block_and_allows_a_new_stream() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\nretry: 5\n\ndata: lost\ndata: part") == []
    assert decoder.close() == []
    # The next stream starts clean (its BOM is stripped again); the last event ID and the
    # reconnection time carry over, as for an EventSource that reconnects.
    assert decoder.feed(BOM + b"data: b\n\n") == [E(data="b", id="1", retry=5)]
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.close() == []
    assert decoder.feed(b"\xbfdata: c\n\n") == []  # no longer a BOM: unknown field


# --- Limits ---------------------------------------------------------------------------------


def test_line_never_terminated_exceeds_limit() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    decoder.feed(b"data: ")
    for _ in range(994):
        decoder.feed(b"x")
    with pytest.raises(SSEDecodeError, match=r"max_event_size \(1000 bytes\)"):
        decoder.feed(b"x")


def test_oversized_line_in_one_chunk() -> None:
    with pytest.raises(SSEDecodeError, match="1000"):
        SSEDecoder(max_event_size=1000).feed(b"data: " + b"x" * 2000)


def test_oversized_complete_event_in_one_chunk() -> None:
    with pytest.raises(SSEDecodeError, match="100"):
        SSEDecoder(max_event_size=100).feed(b"data: " + b"x" * 200 + b"\n\n")


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_many_data_lines_in_one_block_exceed_limit(chunk_size: int) -> None:
    stream = b"data: x\n" * 20 + b"\n"
    chunks = [stream[i : i + chunk_size] for i in range(0, len(stream), chunk_size)]
    with pytest.raises(SSEDecodeError):
        decode(chunks, max_event_size=100)


@pytest.mark.parametrize(
    ("at_limit", "over_limit"),
    [
        (b"data: abcd\n\n", b"data: abcde\n\n"),
        (b"event: xyz\ndata: abcd\n\n", b"event: xyz\ndata: abcde\n\n"),
        (b"data:a\ndata\n\n", b"data:ab\ndata\n\n"),
    ],
    ids=["single-line", "general-path", "two-lines"],
)
def test_event_exactly_at_limit_is_accepted(at_limit: bytes, over_limit: bytes) -> None:
    assert decode(at_limit, max_event_size=10) == reference(at_limit)
    assert decode(bytewise(at_limit), max_event_size=10) == reference(at_limit)
    with pytest.raises(SSEDecodeError):
        decode(over_limit, max_event_size=10)
    with pytest.raises(SSEDecodeError):
        decode(bytewise(over_limit), max_event_size=10)


def test_limit_applies_per_event_not_per_stream() -> None:
    stream = b"event: x\ndata: 0123456789\n\n" * 1000 + b": comment\n" * 1000
    assert len(decode(stream, max_event_size=40)) == 1000


def test_decode_error_hierarchy_and_bad_limit() -> None:
    assert issubclass(SSEDecodeError, ResponseDecodeError)
    with pytest.raises(ConfigurationError):
        SSEDecoder(max_event_size=0)


# --- Chunking independence (property tests) -------------------------------------------------

_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=8)
_line = st.one_of(
    st.just(""),
    st.just(""),
    _text.map(lambda t: "data: " + t),
    _text.map(lambda t: "data:" + t),
    st.sampled_from(["data", "event: ping", "event:", "id", "retry", ": keep-alive"]),
    st.sampled_from(["message", "update", "é", ""]).map(lambda t: "event: " + t),
    _text.map(lambda t: "id: " + t),
    st.sampled_from(["0", "1000", "10a", "", " 5", "\u0661"]).map(lambda t: "retry: " + t),
    _text.map(lambda t: ":" + t),
    _text,
).map(str.encode)
_raw_line = st.tuples(_line, st.sampled_from([b"", b"", b"\xff", b"\xe2\x82", BOM])).map(b"".join)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_raw_line, max_size=30))
    line_end = st.sampled_from([b"\n", b"\r", b"\r\n"])
    ends = draw(st.lists(line_end, min_size=len(lines), max_size=len(lines)))
    body = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    return draw(st.sampled_from([b"", BOM])) + body + draw(_raw_line)


def _chunked(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(stream=streams(), data=st.data(), dispatch_empty=st.booleans())
def test_any_chunking_gives_the_same_events(
    stream: bytes, data: st.DataObject, dispatch_empty: bool
) -> None:
    whole = decode(stream, dispatch_empty=dispatch_empty)
    assert whole == reference(stream, dispatch_empty=dispatch_empty)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert decode(_chunked(stream, cuts), dispatch_empty=dispatch_empty) == whole
    assert decode(bytewise(stream), dispatch_empty=dispatch_empty) == whole


def _outcome(chunks: bytes | list[bytes], limit: int) -> list[ServerSentEvent] | str:
    try:
        return decode(chunks, max_event_size=limit)
    except SSEDecodeError:
        return "too large"


@settings(max_examples=200, deadline=None)
@given(stream=streams(), data=st.data(), limit=st.integers(1, 40))
def test_limit_verdict_does_not_depend_on_chunking(
    stream: bytes, data: st.DataObject, limit: int
) -> None:
    whole = _outcome(stream, limit)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert _outcome(_chunked(stream, cuts), limit) == whole
    assert _outcome(bytewise(stream), limit) == whole


# --- Cost -----------------------------------------------------------------------------------


def _one_line_event(size: int) -> bytes:
    return b"data: " + b"x" * size + b"\n\n"


def _many_lines_event(size: int) -> bytes:
    line = b"data: " + b"x" * 100 + b"\n"
    return line * (size // len(line)) + b"\n"


def _work(stream: bytes, chunk_size: int) -> int:
    """Decode ``stream`` (one event) in chunks; return the bytes the decoder examined."""
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for start in range(0, len(stream), chunk_size):
        events += decoder.feed(stream[start : start + chunk_size])
    assert len(events) == 1
    assert decoder._scanned_bytes <= 3 * len(stream)
    return decoder._scanned_bytes


@pytest.mark.parametrize(
    ("make_event", "size", "chunk_size"),
    [
        (_one_line_event, 256 * 1024, 1),
        (_one_line_event, 8 * 1024 * 1024, 4096),
        (_many_lines_event, 256 * 1024, 1),
        (_many_lines_event, 8 * 1024 * 1024, 4096),
    ],
    ids=["one-line-1-byte-chunks", "one-line-4-KiB-chunks", "lines-1-byte-chunks", "lines-4-KiB"],
)
def test_work_is_linear_in_event_size(
    make_event: Callable[[int], bytes], size: int, chunk_size: int
) -> None:
    small = _work(make_event(size), chunk_size)
    large = _work(make_event(2 * size), chunk_size)
    assert large < 2.5 * small


# --- Recorded and published streams ---------------------------------------------------------


def _stream_files(pattern: str) -> list[Any]:
    files = sorted(STREAMS.glob(pattern)) if STREAMS.is_dir() else []
    return [pytest.param(path, id=str(path.relative_to(STREAMS))) for path in files] or [
        pytest.param(None, id="missing")
    ]


def _event_stream_recordings() -> list[Any]:
    params = _stream_files("dify-*/*/body.txt")
    return [
        param
        for param in params
        if param.values[0] is None
        or "text/event-stream" in (param.values[0].parent / "headers.txt").read_text()
    ]


def _require(path: Path | None) -> Path:
    if path is None:
        pytest.skip(f"example streams not found at {STREAMS}")
    return path


@pytest.mark.parametrize("path", _event_stream_recordings())
def test_recorded_dify_streams(path: Path | None) -> None:
    body = _require(path).read_bytes()
    events = decode(body, dispatch_empty=True)
    for event in events:
        if event.event == "ping":
            assert event == E("ping", "")
        else:
            assert event.event == "message"
            assert isinstance(json.loads(event.data)["event"], str)
    data_events = [event for event in events if event.event == "message"]
    assert len(data_events) == body.count(b"\n\ndata: ") + body.startswith(b"data: ")
    assert decode(bytewise(body), dispatch_empty=True) == events
    assert decode(_chunked(body, list(range(7, len(body), 7))), dispatch_empty=True) == events
    assert decode(body) == data_events


def test_recordings_include_the_expected_streams() -> None:
    names = {param.id for param in _event_stream_recordings()}
    if names == {"missing"}:
        pytest.skip(f"example streams not found at {STREAMS}")
    assert "dify-1.12.1/v1_22_chat_streaming_new/body.txt" in names
    assert "dify-1.15.0/v1_88_hitl_blocking/body.txt" not in names
    assert len([name for name in names if name.startswith("dify-1.15.0/")]) == 4


@pytest.mark.parametrize("path", _stream_files("[0-9]*.txt"))
def test_published_streams_decode_like_the_reference(path: Path | None) -> None:
    body = _require(path).read_bytes()
    expected = reference(body, dispatch_empty=True)
    assert decode(body, dispatch_empty=True) == expected
    assert decode(bytewise(body), dispatch_empty=True) == expected
    assert decode(_chunked(body, list(range(7, len(body), 7))), dispatch_empty=True) == expected


def test_dify_agent_stream_with_pings() -> None:
    path = STREAMS / "09_issue_dify16068_agent_message_ping.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    body = path.read_bytes()
    events = decode(body, dispatch_empty=True)
    assert [event.event for event in events] == ["message"] * 2 + ["ping"] * 20 + ["message"]
    assert all(event.data == "" for event in events if event.event == "ping")
    for event in events:
        if event.event == "message":
            assert json.loads(event.data)["event"] == "agent_message"
    # The paste ends inside a fourth data event, which is never dispatched.
    assert body.count(b"data: ") == 4
    assert not body.endswith(b"\n")
    assert decode(body) == [event for event in events if event.event == "message"]
