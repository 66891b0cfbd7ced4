"""``to_dict()`` / ``to_json()`` on events and models: plain data, no ``raw``, round trips."""

from __future__ import annotations

import json
from typing import Any

import attrs
import orjson
import pytest

from chatapi import events, models
from chatapi._convert import structure
from chatapi.events import decode_event

from .resource_helpers import EXAMPLES
from .test_events import RECORDINGS


def recorded_events() -> list[events.StreamEvent]:
    found = []
    for path in RECORDINGS:
        for line in path.read_bytes().splitlines():
            if line.startswith(b"data: "):
                found.append(decode_event(line.removeprefix(b"data: ")))
    return found


def no_raw(value: Any) -> bool:
    if isinstance(value, dict):
        return "raw" not in value and all(no_raw(v) for v in value.values())
    if isinstance(value, list):
        return all(no_raw(v) for v in value)
    return True


def test_recorded_events_round_trip_through_to_dict() -> None:
    seen = recorded_events()
    assert len({type(event) for event in seen}) >= 10
    for event in seen:
        data = event.to_dict()
        assert next(iter(data)) == "event"
        assert no_raw(data)
        assert structure(data, type(event), what="a dict") == event
        assert orjson.loads(event.to_json()) == data


def test_to_dict_gives_nested_models_as_plain_dicts() -> None:
    end = decode_event(
        orjson.dumps(
            {
                "event": "message_end",
                "task_id": "t",
                "metadata": {"usage": {"total_tokens": 7}, "retriever_resources": []},
                "unknown_field": 1,
            }
        )
    )
    data = end.to_dict()
    assert data["metadata"]["usage"]["total_tokens"] == 7
    assert type(data["metadata"]) is dict and "unknown_field" not in data
    assert end.raw["unknown_field"] == 1  # what is not typed stays in raw


def test_models_and_pages_have_to_dict_and_to_json() -> None:
    page = models.Page(
        data=[models.Conversation(id="c-1", name="Trip", raw={"id": "c-1"})],
        has_more=False,
        limit=20,
    )
    assert page.to_dict() == {
        "data": [
            {"id": "c-1", "name": "Trip", "inputs": None, "status": None,
             "introduction": None, "created_at": None, "updated_at": None}
        ],
        "has_more": False, "limit": 20, "page": None, "total": None,
    }  # fmt: skip
    assert json.loads(page.to_json(indent=2)) == page.to_dict()
    assert page.to_json(indent=2).startswith('{\n  "data"')


@pytest.mark.parametrize(
    ("example", "model"),
    [
        ("messages.json", models.Message),
        ("conversations.json", models.Conversation),
        ("workflow_run.json", models.WorkflowRun),
        ("app_parameters.json", models.AppParameters),
    ],
)
def test_api_examples_round_trip(example: str, model: type[Any]) -> None:
    payload = json.loads((EXAMPLES / example).read_text())
    listed = isinstance(payload.get("data"), list)
    items = payload["data"] if listed else [payload]
    for item in items:
        obj = structure(item, model, what=example)
        assert structure(obj.to_dict(), model, what=example) == obj
        assert no_raw(obj.to_dict())


def test_every_model_and_event_class_has_the_methods() -> None:
    classes = [getattr(models, name) for name in models.__all__]
    classes += [getattr(events, name) for name in events.__all__]
    for cls in classes:
        if isinstance(cls, type) and attrs.has(cls):
            assert callable(getattr(cls, "to_dict", None)), cls
            assert callable(getattr(cls, "to_json", None)), cls


def test_bytes_content_is_refused_by_to_json_with_a_clear_error() -> None:
    content = models.FileContent(content=b"\x89PNG", content_type="image/png", filename="a.png")
    assert content.to_dict()["content"] == b"\x89PNG"
    with pytest.raises(TypeError, match="bytes"):
        content.to_json()
