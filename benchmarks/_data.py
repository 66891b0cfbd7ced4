"""The byte streams every benchmark feeds: a Dify 1.15 Chatflow answer, stretched.

The events around the answer (ping, ``workflow_started``, the start and LLM nodes, then
``message_end`` and ``workflow_finished``) follow the recorded 1.15.0 stream in
``tests/fixtures/streams``; in between come ``count`` ``message`` deltas of about 310 bytes,
shaped like the recorded ones (compact JSON, raw UTF-8, ``from_variable_selector``). Tokens
mix short and long English words with some Chinese text, so the decoders see multi-byte
UTF-8 as real answers carry.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

__all__ = [
    "IDS",
    "big_event",
    "blocking_body",
    "chunked",
    "end_events",
    "fixed_chunks",
    "message_event",
    "stream_body",
]

IDS = {
    "conversation_id": "5670cf37-2d49-4680-ada4-fd40fc38bf9c",
    "message_id": "fa1a8471-0d46-41ea-be77-eea0aad3c113",
    "task_id": "697c83e2-d29a-4f29-a9bf-ef052df258a8",
}
_RUN_ID = "0d8a4f7e-2f5e-4f0a-9d51-3c7d4e36b6a1"
_WORKFLOW_ID = "d3c51cf5-4fdf-4391-b5d6-5c37d079d351"
_CREATED = 1795665023
_TOKENS = (
    " the",
    " answer",
    " Dify",
    " streams",
    " token",
    " by",
    " token",
    ",",
    " and",
    " a",
    " Chatflow",
    " app",
    " sends",
    " each",
    " piece",
    " as",
    " one",
    " event",
    ".",
    "\n\n",
    " 你好",
    "的",
    "世界",
    " café",
    " naïve",
    " throughput",
    " of",
    " 42",
    " ms",
    " —",
)


def _encode(payload: dict[str, object]) -> bytes:
    # Dify 1.15 writes events as compact JSON with raw UTF-8 (the recordings show it).
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return b"data: " + text.encode() + b"\n\n"


def _envelope(event: str) -> dict[str, object]:
    return {
        "event": event,
        "conversation_id": IDS["conversation_id"],
        "message_id": IDS["message_id"],
        "created_at": _CREATED,
        "task_id": IDS["task_id"],
    }


def message_event(token: str) -> bytes:
    """One ``message`` delta carrying ``token``, as Dify 1.15 frames it (~310 bytes)."""
    payload = _envelope("message")
    payload["id"] = IDS["message_id"]
    payload["answer"] = token
    payload["from_variable_selector"] = ["llm", "text"]
    return _encode(payload)


def _node(event: str, node_id: str, node_type: str, index: int, finished: bool) -> bytes:
    data: dict[str, object] = {
        "id": f"6a0c2e55-0000-4000-8000-00000000000{index}",
        "node_id": node_id,
        "node_type": node_type,
        "title": node_type.upper(),
        "index": index,
        "predecessor_node_id": None,
        "inputs": {"sys.query": "Stream me"} if finished else None,
        "created_at": _CREATED,
        "extras": {},
    }
    if finished:
        data.update(
            status="succeeded",
            outputs={"text": "..."},
            elapsed_time=0.0123,
            execution_metadata=None,
            finished_at=_CREATED,
            files=[],
        )
    payload = _envelope(event)
    payload["workflow_run_id"] = _RUN_ID
    payload["data"] = data
    return _encode(payload)


def _head() -> bytes:
    started = _envelope("workflow_started")
    started["workflow_run_id"] = _RUN_ID
    started["data"] = {
        "id": _RUN_ID,
        "workflow_id": _WORKFLOW_ID,
        "inputs": {"sys.query": "Stream me", "sys.dialogue_count": 1},
        "created_at": _CREATED,
        "reason": "initial",
    }
    return b"".join(
        (
            b"event: ping\n\n",
            _encode(started),
            _node("node_started", "start", "start", 1, False),
            _node("node_finished", "start", "start", 1, True),
            _node("node_started", "llm", "llm", 2, False),
        )
    )


def end_events() -> bytes:
    """A ``message_end`` alone: what closes a chat (not Chatflow) answer."""
    end = _envelope("message_end")
    end["id"] = IDS["message_id"]
    end["metadata"] = {"usage": {"total_tokens": 1}}
    return _encode(end)


def _tail(count: int) -> bytes:
    end = _envelope("message_end")
    end["id"] = IDS["message_id"]
    end["metadata"] = {
        "annotation_reply": None,
        "retriever_resources": [],
        "usage": {
            "prompt_tokens": 9,
            "prompt_unit_price": "0.0",
            "prompt_price_unit": "0.0",
            "prompt_price": "0.0",
            "completion_tokens": count,
            "completion_unit_price": "0.0",
            "completion_price_unit": "0.0",
            "completion_price": "0.0",
            "total_tokens": count + 9,
            "total_price": "0.0",
            "currency": "USD",
            "latency": 1.5,
            "time_to_first_token": 0.389,
            "time_to_generate": 1.1,
        },
        "reasoning": {},
    }
    end["files"] = []
    finished = _envelope("workflow_finished")
    finished["workflow_run_id"] = _RUN_ID
    finished["data"] = {
        "id": _RUN_ID,
        "workflow_id": _WORKFLOW_ID,
        "status": "succeeded",
        "outputs": {"answer": "..."},
        "error": None,
        "elapsed_time": 1.5,
        "total_tokens": count + 9,
        "total_steps": 3,
        "created_by": {"id": "978f89ad-e018-49a0-bcd5-b1505c4d063e", "user": "bench"},
        "created_at": _CREATED,
        "finished_at": _CREATED + 2,
        "exceptions_count": 0,
        "files": [],
    }
    return b"".join(
        (_node("node_finished", "llm", "llm", 2, True), _encode(end), _encode(finished))
    )


#: Events of a stream besides its ``message`` deltas (ping included).
EXTRA_EVENTS = 8


def stream_body(count: int, *, seed: int = 7) -> bytes:
    """A whole Chatflow answer with ``count`` message deltas (``count + 8`` SSE blocks)."""
    rng = random.Random(seed)
    cache: dict[str, bytes] = {}
    parts = [_head()]
    for _ in range(count):
        token = rng.choice(_TOKENS)
        encoded = cache.get(token)
        if encoded is None:
            encoded = cache[token] = message_event(token)
        parts.append(encoded)
    parts.append(_tail(count))
    return b"".join(parts)


def big_event(size: int) -> bytes:
    """One ``message`` event of about ``size`` bytes (a long answer in one delta)."""
    filler = "Dify streams long answers too; 你好, café. " * (size // 40 + 1)
    overhead = len(message_event(""))
    text = filler.encode()[: max(size - overhead, 0)].decode("utf-8", "ignore")
    return message_event(text)


def chunked(body: bytes, low: int, high: int, *, seed: int = 11) -> list[bytes]:
    """``body`` cut into chunks of random sizes in ``[low, high]`` (a fixed seed)."""
    rng = random.Random(seed)
    chunks = []
    start = 0
    while start < len(body):
        end = start + rng.randint(low, high)
        chunks.append(body[start:end])
        start = end
    return chunks


def fixed_chunks(body: bytes, size: int) -> list[bytes]:
    """``body`` cut into chunks of ``size`` bytes (the last one shorter)."""
    return [body[start : start + size] for start in range(0, len(body), size)]


def iter_chunks(chunks: list[bytes]) -> Iterator[bytes]:
    """The chunks one by one (what a network read loop hands over)."""
    return iter(chunks)


def blocking_body() -> bytes:
    """The JSON body of a blocking ``chat-messages`` reply (Dify 1.15 Chatflow shape)."""
    payload = _envelope("message")
    payload.update(
        mode="advanced-chat",
        id=IDS["message_id"],
        answer="Echo: Stream me",
        metadata={
            "annotation_reply": None,
            "retriever_resources": [],
            "usage": {
                "prompt_tokens": 9,
                "completion_tokens": 4,
                "total_tokens": 13,
                "total_price": "0.0",
                "currency": "USD",
                "latency": 0.5,
            },
        },
        workflow_run_id=_RUN_ID,
    )
    return json.dumps(payload, separators=(", ", ": ")).encode()
