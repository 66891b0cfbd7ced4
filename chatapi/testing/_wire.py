"""How the fake server writes things on the wire, the way a real Dify server does.

Dify (1.8.1 and later) serialises stream events with orjson: compact, raw UTF-8. Its plain
JSON answers go through Flask's ``json.dumps`` instead: ``", "`` / ``": "`` separators and
non-ASCII as ``\\uXXXX``. The recorded 1.12.1 and 1.15.0 responses show both; the fake server
copies the difference so that clients are tested against each.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson
from aiohttp import web

__all__ = [
    "NOT_FOUND_MESSAGE",
    "PING",
    "UUID_PATTERN",
    "FakeAPIError",
    "encode_event",
    "iso_time",
    "json_response",
    "missing_field",
    "new_id",
    "now",
    "parse_uuid",
]

PING = b"event: ping\n\n"
UUID_PATTERN = "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_UUID_RE = re.compile(UUID_PATTERN)

# Werkzeug's default texts, which Dify returns for routes that do not match.
NOT_FOUND_MESSAGE = (
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again."
)


class FakeAPIError(Exception):
    """An error answer in Dify's envelope ``{"code", "message", "status"}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return json_response(
            {"code": self.code, "message": self.message, "status": self.status},
            status=self.status,
            headers=self.headers,
        )


def missing_field(model: str, field: str, payload: Any) -> FakeAPIError:
    """The 400 pydantic gives for a missing required field (as in the 1.12.1 recording)."""
    shown = repr(payload)
    if len(shown) > 50:
        shown = shown[:25] + "..." + shown[-24:]
    return FakeAPIError(
        400,
        "invalid_param",
        f"1 validation error for {model}\n{field}\n  Field required [type=missing, "
        f"input_value={shown}, input_type={type(payload).__name__}]\n"
        "    For further information visit https://errors.pydantic.dev/2.11/v/missing",
    )


def encode_event(payload: Mapping[str, Any]) -> bytes:
    """One stream event as Dify writes it: ``data: {compact json}`` and a blank line."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def json_response(
    payload: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    charset: bool = False,
) -> web.Response:
    """A plain JSON answer, serialised like Flask's ``json.dumps`` (spaced, ASCII only)."""
    body = json.dumps(payload).encode("ascii") + b"\n"
    response = web.Response(body=body, status=status, headers=headers)
    response.content_type = "application/json"
    if charset:
        response.charset = "utf-8"
    return response


def new_id() -> str:
    return str(uuid.uuid4())


def parse_uuid(value: str) -> str | None:
    """The canonical (lower-case) form of a UUID, or None when ``value`` is not one."""
    if not _UUID_RE.fullmatch(value):
        return None
    return str(uuid.UUID(value))


def now() -> int:
    """The current time in Unix seconds, the unit of Dify's chat timestamps."""
    return int(time.time())


def iso_time(timestamp: float) -> str:
    """An ISO-8601 UTC time, the format of Dify's feedback and end-user dates."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
