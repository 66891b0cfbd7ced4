"""What every resource namespace shares: access to the client's transport and defaults."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from .._config import Timeout
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .._http import HTTPClient
    from ..client import AsyncChatClient

__all__ = [
    "AsyncResource",
    "check_positive_int",
    "check_str",
    "path_segment",
    "query_params",
]


def path_segment(value: str, name: str) -> str:
    """URL-quote one path parameter, refusing values that cannot be one."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return quote(value, safe="")


def check_str(value: object, name: str, *, optional: bool = False) -> None:
    """Refuse a value that is not a non-empty string (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")


def check_positive_int(value: object, name: str, *, maximum: int | None = None) -> int:
    """Refuse a value (a page size, a page number) that is not an integer from 1 to
    ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"from 1 to {maximum}" if maximum is not None else "of at least 1"
        raise ValueError(f"{name} must be an integer {bound}, got {value}")
    return value


def query_params(params: Mapping[str, object]) -> dict[str, str]:
    """Encode query parameters the way Dify reads them.

    ``None`` is left out (never sent as an empty string), booleans become ``true`` /
    ``false``, datetimes ISO 8601 text, numbers their decimal text.
    """
    query: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            query[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            query[key] = value.isoformat()
        else:
            query[key] = str(value)
    return query


class AsyncResource:
    """Base of the resource namespaces (``client.chat``, ``client.messages``...)."""

    def __init__(self, client: AsyncChatClient) -> None:
        self._client = client

    @property
    def _http(self) -> HTTPClient:
        return self._client._http

    def _user(self, user: str | None) -> str:
        """The end-user id for a call: the argument, else the client's default."""
        if user is None:
            user = self._client.user
        if user is None:
            raise ConfigurationError(
                "this call needs an end-user id: pass user=... or set a default with "
                f"{self._client._public_name}(user=...) or the DIFY_USER environment variable"
            )
        if not isinstance(user, str) or not user.strip():
            raise ValueError(f"user must be a non-empty string, got {user!r}")
        return user

    def _optional_user(self, user: str | None) -> str | None:
        """The end-user id for a call where Dify accepts none: the argument, else the
        client's default, else ``None`` (Dify then uses its shared default end user)."""
        if user is None and self._client.user is None:
            return None
        return self._user(user)

    def _timeout(self, timeout: Timeout | float | None) -> Timeout:
        return Timeout.coerce(timeout, base=self._http.timeout)
