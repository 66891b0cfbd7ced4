"""Reading requests the way Dify validates them, with its error codes and messages."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from ._wire import FakeAPIError, parse_uuid

__all__ = [
    "bool_param",
    "date_param",
    "int_param",
    "path_uuid",
    "read_json",
    "require_user",
]

_BAD_JSON = "Invalid JSON payload received or JSON payload is empty."
_NOT_JSON = (
    "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."
)


async def read_json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object of the body; ``optional`` bodies may be left out entirely."""
    raw = await request.read()
    if not raw.strip() and optional:
        return {}
    if request.content_type != "application/json":
        raise FakeAPIError(415, "unsupported_media_type", _NOT_JSON)
    try:
        data = json.loads(raw)
    except ValueError:
        raise FakeAPIError(400, "bad_request", _BAD_JSON) from None
    if data is None and optional:
        return {}
    if not isinstance(data, dict):
        raise FakeAPIError(400, "bad_request", _BAD_JSON)
    return data


def require_user(value: Any) -> str:
    """The ``user`` of an endpoint that needs one."""
    if not isinstance(value, str) or not value.strip():
        raise FakeAPIError(400, "invalid_param", "Arg user must be provided.")
    return value


def int_param(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise FakeAPIError(
            400, "invalid_param", f"{name}: Input should be a valid integer"
        ) from None
    if not low <= value <= high:
        raise FakeAPIError(
            400,
            "invalid_param",
            f"{name}: Input should be greater than or equal to {low} and less than or "
            f"equal to {high}",
        )
    return value


def bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").strip().lower()
    if raw in ("true", "1", "yes"):
        return True
    if raw in ("false", "0", "no", ""):
        return False
    raise FakeAPIError(400, "invalid_param", f"{name}: Input should be a valid boolean")


def date_param(request: web.Request, name: str) -> float | None:
    """An ISO-8601 date/time of the query as a Unix time (UTC when no zone is given)."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise FakeAPIError(
            400, "invalid_param", f"{name}: Input should be a valid datetime"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def path_uuid(request: web.Request, name: str) -> str:
    """A UUID path parameter in canonical form (the route pattern already checked it)."""
    value = parse_uuid(request.match_info[name])
    assert value is not None
    return value
