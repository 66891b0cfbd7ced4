"""Part 1: decoding an in-memory event stream, chatapi next to its peers and the limit.

Every pipeline gets the same chunks of the same body and must produce the same number of
events. Rates are events (or megabytes) per second of the whole pass over the stream.

- **chatapi**: what ``AsyncChatStream`` runs on each chunk it reads — the SSE decoder and the
  typed events, queued — without the network. (The run state it then keeps per event, the
  answer so far and the ids, is part of the end-to-end figures of part 2.)
- **orjson limit** (the baseline): the least an untyped consumer can do: split the buffer at
  blank lines (searching only new bytes) and ``orjson.loads`` each ``data:`` payload into a
  dict. No line-end normalisation, comments, multi-line data or BOM. chatapi parses with
  orjson too (where msgspec does not decode the event), so this is the honest limit.
- **stdlib limit**: the same with ``json.loads``.
- **msgspec Structs**: the same splitting, each payload decoded by msgspec into Structs (one
  tagged union): the fastest typed decoding available, the reference for "typed".
- **framing floor**: the same splitting without the JSON: what any decoder pays at least.
- **httpx-sse**: its ``EventSource`` over an ``httpx.Response`` streaming the chunks, then
  ``json.loads``; **openai**: ``openai._streaming.SSEDecoder.iter_bytes`` then
  ``json.loads``; **httpx-sse + pydantic (own models)**: httpx-sse, ``json.loads`` and one
  pydantic model per event as an SDK would declare them; **dify-client-python models**: the
  same with that SDK's real models (``build_chat_stream_response``), when it is installed.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from typing import Any, Union, cast

import orjson

from chatapi._config import Timeout
from chatapi.streaming import AsyncChatStream

from ._common import MISSING_PEER, Row, Settings, interleaved, peer_version, timed
from ._data import EXTRA_EVENTS, big_event, chunked, fixed_chunks, stream_body

__all__ = ["run"]

Pipeline = Callable[[list[bytes]], int]


async def _never_opened() -> Any:
    raise AssertionError("the decode benchmark never opens a connection")


def chatapi_pipeline(chunks: list[bytes]) -> int:
    """Bytes to typed events, by the code ``AsyncChatStream`` runs on each chunk it reads."""
    stream = AsyncChatStream(_never_opened, timeout=Timeout(), include_pings=True)
    feed = stream._decoder.feed_data
    queue = stream._queue
    take = stream._take_pending
    pending = stream._pending
    count = 0
    for chunk in chunks:
        # What ``AsyncChatStream._fill`` does with each chunk it reads, then what
        # ``__anext__`` does to each queued event before accepting it.
        blocks = feed(chunk)
        if blocks:
            queue(blocks)
            while pending:
                take()
                count += 1
    return count


def stdlib_limit(chunks: list[bytes]) -> int:
    """Split at blank lines, ``json.loads`` each data payload: untyped dicts."""
    loads = json.loads
    buffer = bytearray()
    count = 0
    for chunk in chunks:
        # Only the new bytes (and the last old one) can complete a block.
        start = len(buffer) - 1
        buffer += chunk
        if buffer.find(b"\n\n", start if start > 0 else 0) < 0:
            continue
        blocks = buffer.split(b"\n\n")
        buffer = blocks.pop()
        for block in blocks:
            if block.startswith(b"data:"):
                loads(block[5:])
            count += 1
    return count


def orjson_limit(chunks: list[bytes]) -> int:
    """Split at blank lines, ``orjson.loads`` each data payload: the honest untyped limit
    (chatapi itself parses with orjson)."""
    loads = orjson.loads
    buffer = bytearray()
    count = 0
    for chunk in chunks:
        start = len(buffer) - 1
        buffer += chunk
        if buffer.find(b"\n\n", start if start > 0 else 0) < 0:
            continue
        blocks = buffer.split(b"\n\n")
        buffer = blocks.pop()
        for block in blocks:
            if block.startswith(b"data:"):
                loads(block[5:])
            count += 1
    return count


def _struct_decoder() -> Callable[[bytes | bytearray], Any]:
    """msgspec Structs of the benchmark's events, one tagged union: the fastest typed decode
    Python offers, without chatapi's public attrs classes or its leniency."""
    import msgspec

    class Event(msgspec.Struct, tag_field="event", gc=False):
        task_id: str | None = None
        conversation_id: str | None = None
        message_id: str | None = None
        created_at: int | None = None
        workflow_run_id: str | None = None

    class Message(Event, tag="message", gc=False):
        id: str | None = None
        answer: str | None = None
        from_variable_selector: list[str] | None = None

    class MessageEnd(Event, tag="message_end", gc=False):
        id: str | None = None
        metadata: dict[str, Any] | None = None
        files: list[dict[str, Any]] | None = None

    def with_data(name: str) -> type[Event]:
        return cast(
            "type[Event]",
            msgspec.defstruct(
                name, [("data", "dict[str, Any] | None", None)], bases=(Event,), tag=name
            ),
        )

    names = ("workflow_started", "workflow_finished", "node_started", "node_finished")
    types = (Message, MessageEnd, *(with_data(name) for name in names))
    decoder = msgspec.json.Decoder(Union[types])  # noqa: UP007
    return decoder.decode


def msgspec_structs(chunks: list[bytes]) -> int:
    """Split at blank lines, decode each payload into a msgspec Struct."""
    decode = _struct_decoder()
    buffer = bytearray()
    count = 0
    for chunk in chunks:
        start = len(buffer) - 1
        buffer += chunk
        if buffer.find(b"\n\n", start if start > 0 else 0) < 0:
            continue
        blocks = buffer.split(b"\n\n")
        buffer = blocks.pop()
        for block in blocks:
            if block.startswith(b"data:"):
                decode(block[5:])
            count += 1
    return count


def framing_floor(chunks: list[bytes]) -> int:
    """Split at blank lines and nothing else."""
    buffer = bytearray()
    count = 0
    for chunk in chunks:
        start = len(buffer) - 1
        buffer += chunk
        if buffer.find(b"\n\n", start if start > 0 else 0) < 0:
            continue
        blocks = buffer.split(b"\n\n")
        buffer = blocks.pop()
        count += len(blocks)
    return count


def _httpx_sse_events(chunks: list[bytes]) -> Iterable[Any]:
    import httpx
    from httpx_sse import EventSource

    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
    )
    return EventSource(response).iter_sse()


def httpx_sse_json(chunks: list[bytes]) -> int:
    loads = json.loads
    count = 0
    for sse in _httpx_sse_events(chunks):
        if sse.data:
            loads(sse.data)
        count += 1
    return count


def openai_sse_json(chunks: list[bytes]) -> int:
    from openai._streaming import SSEDecoder

    loads = json.loads
    count = 0
    for sse in SSEDecoder().iter_bytes(iter(chunks)):
        if sse.data:
            loads(sse.data)
        count += 1
    return count


def _pydantic_models() -> tuple[type[Any], dict[str, type[Any]]]:
    """Event models as a pydantic SDK declares them: one per event type, extras allowed."""
    from pydantic import BaseModel, ConfigDict

    class Event(BaseModel):
        model_config = ConfigDict(extra="allow")
        event: str
        task_id: str | None = None
        conversation_id: str | None = None
        message_id: str | None = None
        created_at: int | None = None
        workflow_run_id: str | None = None

    class Message(Event):
        id: str | None = None
        answer: str | None = None
        from_variable_selector: list[str] | None = None

    class MessageEnd(Event):
        id: str | None = None
        metadata: dict[str, Any] | None = None
        files: list[dict[str, Any]] | None = None

    class Workflow(Event):
        data: dict[str, Any] | None = None

    by_name: dict[str, type[Any]] = {"message": Message, "message_end": MessageEnd}
    for name in ("workflow_started", "workflow_finished", "node_started", "node_finished"):
        by_name[name] = Workflow
    return Event, by_name


def httpx_sse_pydantic(chunks: list[bytes]) -> int:
    fallback, models = _pydantic_models()
    loads = json.loads
    count = 0
    for sse in _httpx_sse_events(chunks):
        if sse.data:
            payload = loads(sse.data)
            models.get(payload.get("event"), fallback).model_validate(payload)
        count += 1
    return count


def httpx_sse_dify_client(chunks: list[bytes]) -> int:
    """dify-client-python's own pipeline: httpx-sse, ``json.loads``, its pydantic models."""
    from dify_client.models.stream import (  # type: ignore[import-untyped]
        build_chat_stream_response,
    )

    loads = json.loads
    count = 0
    for sse in _httpx_sse_events(chunks):
        if sse.data:
            build_chat_stream_response(loads(sse.data))
        count += 1
    return count


CHATAPI = "chatapi (bytes → typed events)"
LIMIT = "orjson limit (split + orjson.loads)"
DIFY_CLIENT_ROW = "httpx-sse + json + dify-client-python models"
PYDANTIC_ROW = "httpx-sse + json + pydantic (own models)"
PIPELINES: list[tuple[str, Pipeline, str | None]] = [
    (CHATAPI, chatapi_pipeline, None),
    (LIMIT, orjson_limit, None),
    ("stdlib limit (split + json.loads)", stdlib_limit, None),
    ("msgspec Structs (split + typed decode)", msgspec_structs, None),
    ("framing floor (split only)", framing_floor, None),
    ("httpx-sse + json", httpx_sse_json, "httpx-sse"),
    ("openai SSEDecoder + json", openai_sse_json, "openai"),
    (PYDANTIC_ROW, httpx_sse_pydantic, "pydantic"),
    (DIFY_CLIENT_ROW, httpx_sse_dify_client, "dify-client-python"),
]


def _available(requirement: str | None, settings: Settings) -> bool:
    if requirement is None:
        return True
    if not settings.peers:
        return False
    needs = {"httpx-sse": ["httpx", "httpx-sse"], "openai": ["openai"]}
    needs["pydantic"] = ["httpx", "httpx-sse", "pydantic"]
    needs["dify-client-python"] = ["httpx", "httpx-sse", "dify-client-python"]
    if not all(peer_version(name) for name in needs[requirement]):
        return False
    if requirement == "openai":
        # A private class: check that this version has it, in the shape used here.
        try:
            from openai._streaming import SSEDecoder
        except ImportError:
            return False
        return hasattr(SSEDecoder, "iter_bytes")
    return True


def _measure(
    part: str,
    chunks: list[bytes],
    expected: int,
    scale: float,
    unit: str,
    settings: Settings,
) -> list[Row]:
    """Time every available pipeline on ``chunks``; rates are ``scale`` / seconds."""
    runs: dict[str, Callable[[], float]] = {}
    rows: dict[str, Row] = {}
    for name, pipeline, requirement in PIPELINES:
        row = rows[name] = Row(part, name, unit)
        if not _available(requirement, settings):
            row.note = MISSING_PEER if settings.peers else "skipped"
            continue

        def run(pipeline: Pipeline = pipeline, name: str = name) -> float:
            count, seconds = timed(lambda: pipeline(chunks))
            if count != expected:
                raise AssertionError(f"{name} decoded {count} events, expected {expected}")
            return scale / seconds

        runs[name] = run
    for name, values in interleaved(runs, settings.repeat).items():
        rows[name].values = values
    limit = rows[LIMIT]
    limit.baseline = LIMIT
    for row in rows.values():
        if row is not limit and row.values:
            row.ratio_of(limit)
    return list(rows.values())


def run(settings: Settings) -> list[Row]:
    """Part 1: the message stream in 1-4 KiB and 16-byte chunks, then one big event."""
    rows: list[Row] = []
    body = stream_body(settings.events)
    expected = settings.events + EXTRA_EVENTS
    kib = f"1: decode {settings.events:,} events, 1-4 KiB chunks"
    chunks = chunked(body, 1024, 4096)
    realistic = _measure(kib, chunks, expected, expected, "events/s", settings)
    _judge(realistic, 1.0)
    rows += realistic

    body = stream_body(settings.slow_events)
    expected = settings.slow_events + EXTRA_EVENTS
    tiny = f"1: decode {settings.slow_events:,} events, 16 B chunks"
    small = _measure(tiny, fixed_chunks(body, 16), expected, expected, "events/s", settings)
    _judge(small, 0.8)
    rows += small

    event = big_event(settings.big_event)
    megabytes = len(event) / 1e6
    size = f"{len(event) / 2**20:g} MiB" if len(event) >= 2**20 else f"{len(event) // 1024} KiB"
    for chunk_size, label in ((64 * 1024, "64 KiB"), (1024, "1 KiB")):
        part = f"1: one {size} event, {label} chunks"
        rows += _measure(part, fixed_chunks(event, chunk_size), 1, megabytes, "MB/s", settings)
    return rows


def _judge(rows: list[Row], floor: float) -> None:
    by_name = {row.name: row for row in rows}
    chatapi = by_name[CHATAPI]
    chatapi.check(f">= {floor}x limit", lambda ratio: ratio >= floor)
    # The pydantic target is judged against dify-client-python's real models when they are
    # installed, else against the models declared here.
    pydantic = by_name[DIFY_CLIENT_ROW]
    if not pydantic.values:
        pydantic = by_name[PYDANTIC_ROW]
    if pydantic.values and chatapi.values:
        # Shown on that row as chatapi's speed relative to it (its own ratio column stays
        # against the limit).
        pairs = zip(chatapi.values, pydantic.values, strict=True)
        speedups = [mine / theirs for mine, theirs in pairs]
        pydantic.target = f"chatapi >= 4x this: {statistics.median(speedups):.2f}x"
        pydantic.met = statistics.median(speedups) >= 4.0
