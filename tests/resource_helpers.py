"""Helpers shared by the resource tests: API examples, JSON replies, multipart bodies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import pytest

from chatapi import AsyncChatClient

from .conftest import API_KEY, RecordedRequest, ReplayServer, Reply

EXAMPLES = Path(__file__).parent / "fixtures" / "api_examples"


def example(name: str) -> Any:
    """An example response body of the Chatflow API docs (copied into the fixtures)."""
    return json.loads((EXAMPLES / f"{name}.json").read_text("utf-8"))


def error_example(code: str) -> dict[str, Any]:
    """The documented error body with this ``code``."""
    errors: dict[str, dict[str, Any]] = example("errors")
    return errors[code]


def json_reply(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        body=json.dumps(payload).encode(),
        status=status,
        content_type="application/json",
        headers=headers or {},
    )


def error_reply(payload: dict[str, Any]) -> Reply:
    return json_reply(payload, status=int(payload["status"]))


@attrs.frozen
class Part:
    """One part of a multipart/form-data body."""

    headers: dict[str, str]
    content: bytes

    @property
    def disposition(self) -> str:
        return self.headers["Content-Disposition"]


def multipart_parts(request: RecordedRequest) -> dict[str, Part]:
    """Split a recorded multipart/form-data body into its parts, by field name."""
    content_type = request.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    sections = request.body.split(b"--" + boundary)
    assert sections[0] == b""
    assert sections[-1] == b"--\r\n"
    parts: dict[str, Part] = {}
    for section in sections[1:-1]:
        assert section.startswith(b"\r\n") and section.endswith(b"\r\n")
        head, _, content = section[2:-2].partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        match = re.search(r'\bname="([^"]*)"', headers["Content-Disposition"])
        assert match is not None
        parts[match.group(1)] = Part(headers=headers, content=content)
    return parts


def anonymous_client(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> AsyncChatClient:
    """A client bound to ``server`` without a default end user (also none from the env)."""
    monkeypatch.delenv("DIFY_USER", raising=False)
    return AsyncChatClient(api_key=API_KEY, base_url=server.base_url)
