"""Client configuration: time limits and the settings read from the environment."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs
import yarl

from ._version import __version__
from .errors import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "Timeout", "check_headers", "resolve_settings", "user_agent"]

DEFAULT_BASE_URL = "https://api.dify.ai/v1"
ENV_API_KEY = "DIFY_API_KEY"
ENV_BASE_URL = "DIFY_BASE_URL"
ENV_USER = "DIFY_USER"

# The total limit of a plain (non-streaming) call when ``Timeout.total`` is left as None.
DEFAULT_REQUEST_TOTAL = 120.0


def _check_limit(instance: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None:
        if attribute.name == "close_grace":
            raise ConfigurationError("Timeout.close_grace must be a number of seconds")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(
            f"Timeout.{attribute.name} must be a number of seconds or None, got {value!r}"
        )
    if math.isnan(value) or value <= 0:
        raise ConfigurationError(f"Timeout.{attribute.name} must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class Timeout:
    """Time limits in seconds; ``None`` means no limit.

    - ``connect``: establishing the TCP (and TLS) connection.
    - ``read``: the longest silence on the socket. Dify pings streams every 10 s, so the
      default of 60 s only fires when the connection is really dead.
    - ``total``: the whole call. ``None`` (the default) means 120 s for plain calls and no
      limit for streams; ``math.inf`` lifts it for plain calls too.
    - ``stream_idle``: the longest wait for a stream event other than a ping. Pings keep a
      socket alive while a run is stuck; this limit notices. It also bounds the opening of
      a stream, counted from the moment the request is sent: the headers (or a whole error
      body) and the first event must arrive within it, however slowly the bytes trickle.
    - ``close_grace``: after a closing event (``message_end``, ``workflow_finished``...) how
      long a stream waits for the rest before it ends on its own.
    """

    connect: float | None = attrs.field(default=10.0, validator=_check_limit)
    read: float | None = attrs.field(default=60.0, validator=_check_limit)
    total: float | None = attrs.field(default=None, validator=_check_limit)
    stream_idle: float | None = attrs.field(default=300.0, validator=_check_limit)
    close_grace: float = attrs.field(default=1.0, validator=_check_limit)

    @classmethod
    def coerce(cls, value: Timeout | float | None, *, base: Timeout | None = None) -> Timeout:
        """Accept a ``Timeout``, or a number meaning the total limit (other limits from
        ``base``), or ``None`` for ``base`` itself."""
        base = base if base is not None else cls()
        if value is None:
            return base
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(
                f"timeout must be a Timeout or a number of seconds, got {type(value).__name__}"
            )
        return attrs.evolve(base, total=float(value))

    def total_for(self, *, stream: bool) -> float | None:
        """The total limit that applies to a call of the given kind (``None``: none)."""
        if self.total is None:
            return None if stream else DEFAULT_REQUEST_TOTAL
        return None if math.isinf(self.total) else self.total

    def client_timeout(
        self, *, stream: bool, remaining: float | None = None
    ) -> aiohttp.ClientTimeout:
        """The aiohttp form of these limits (``stream_idle`` and ``close_grace`` are ours).

        ``remaining`` replaces the total limit: what is left of it for a retried call.
        """
        return aiohttp.ClientTimeout(
            total=self.total_for(stream=stream) if remaining is None else remaining,
            connect=None,
            sock_connect=self.connect,
            sock_read=self.read,
        )


@attrs.frozen
class Settings:
    api_key: str = attrs.field(repr=False)
    base_url: str
    user: str | None


def resolve_settings(
    api_key: str | None, base_url: str | None, user: str | None
) -> Settings:
    """Fill in what the caller left out from the environment, and check it."""
    if api_key is None:
        api_key = os.environ.get(ENV_API_KEY)
    if not isinstance(api_key, str) or not api_key.strip():
        raise ConfigurationError(
            f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in api_key.strip()):
        # Never show the key itself: say what is wrong with it.
        raise ConfigurationError("the API key contains control characters (a stray newline?)")
    if base_url is None:
        base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a string, got {type(base_url).__name__}")
    base_url = _check_base_url(base_url.strip().rstrip("/"))
    if user is None:
        user = os.environ.get(ENV_USER) or None
    if user is not None and (not isinstance(user, str) or not user.strip()):
        raise ConfigurationError(f"user must be a non-empty string, got {user!r}")
    return Settings(api_key=api_key.strip(), base_url=base_url, user=user)


def _check_base_url(base_url: str) -> str:
    """Refuse what would send requests elsewhere than meant, or leak a password in a repr."""
    _, sep, rest = base_url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        # A password in the URL would show in every repr and log line; say only where it is.
        raise ConfigurationError(
            "base_url must not contain credentials (user:password@...): the client "
            "authenticates with its API key only"
        )
    if "?" in base_url or "#" in base_url:
        # Paths are appended to base_url: a query or fragment would swallow them.
        raise ConfigurationError(
            f"base_url must not contain a query (?) or a fragment (#), got {base_url!r}"
        )
    try:
        url = yarl.URL(base_url)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"base_url {base_url!r} is not a valid URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"base_url must be an absolute http(s) URL such as {DEFAULT_BASE_URL!r}, "
            f"got {base_url!r}"
        )
    return base_url


# RFC 9110 token characters: what a header name may be made of.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def check_headers(headers: Any) -> dict[str, str]:
    """Check ``default_headers``: string names that are HTTP tokens, string values without
    CR, LF or NUL (which would split or cut the request). Values are never shown: they may
    be secrets."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(
            f"default_headers must be a mapping of names to values, got {type(headers).__name__}"
        )
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str):
            raise ConfigurationError(
                f"default_headers names must be strings, got {type(name).__name__}"
            )
        bad = next((i for i, char in enumerate(name) if char not in _TOKEN), None)
        if not name or bad is not None:
            # Show the name only up to the offending character: what follows a CR/LF may be
            # a smuggled header with a secret.
            raise ConfigurationError(
                f"default_headers name {name[:bad]!r}... is not a valid HTTP header name"
                if name
                else "default_headers has an empty header name"
            )
        if not isinstance(value, str):
            raise ConfigurationError(
                f"default_headers[{name!r}] must be a string, got {type(value).__name__}"
            )
        if any(char in value for char in "\r\n\0"):
            raise ConfigurationError(
                f"default_headers[{name!r}] contains a line break or NUL character"
            )
        checked[name] = value
    return checked


def user_agent() -> str:
    """The User-Agent sent with every request."""
    python = ".".join(str(part) for part in sys.version_info[:3])
    return f"chatapi/{__version__} python/{python} aiohttp/{aiohttp.__version__}"
