"""What every resource namespace shares: access to the client's transport and defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from .._config import Timeout
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .._http import HTTPClient
    from ..client import AsyncChatClient

__all__ = ["AsyncResource", "path_segment"]


def path_segment(value: str, name: str) -> str:
    """URL-quote one path parameter, refusing values that cannot be one."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return quote(value, safe="")


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
                "AsyncChatClient(user=...) or the DIFY_USER environment variable"
            )
        if not isinstance(user, str) or not user.strip():
            raise ValueError(f"user must be a non-empty string, got {user!r}")
        return user

    def _timeout(self, timeout: Timeout | float | None) -> Timeout:
        return Timeout.coerce(timeout, base=self._http.timeout)
