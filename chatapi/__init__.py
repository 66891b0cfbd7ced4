"""chatapi: an async-first, typed client for Dify chat apps (Chatflow, chatbot, agent).

Everything a user needs is importable from here; submodules named in the docs
(``chatapi.events``, ``chatapi.models``, ``chatapi.sse``, ``chatapi.errors``, ``chatapi.web``)
hold the rest.

The names are imported on first use (PEP 562), so that importing a light part of the
package (``chatapi --version``, the command line's argument parsing) does not load aiohttp
and the models. ``from chatapi import X`` and ``chatapi.X`` work as with eager imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._logging import setup_from_env as _setup_logging_from_env
from ._version import __version__

if TYPE_CHECKING:
    from ._app_streams import AsyncWorkflowStream
    from ._config import Timeout
    from ._response import RawResponse, ResponseInfo
    from ._timings import StreamTimings
    from .client import AsyncChatClient
    from .errors import (
        APIConnectionError,
        APIProtocolError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ChatAPIError,
        ConfigurationError,
        IncompleteStreamError,
        InternalServerError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        RequestTooLargeError,
        ResponseDecodeError,
        ResponseTooLargeError,
        SSEDecodeError,
        StreamError,
        StreamIdleTimeoutError,
        StreamState,
        UnsupportedMediaTypeError,
    )
    from .events import StreamEvent
    from .models import ChatCompletion, InputFile, Page, WorkflowRunResult
    from .streaming import AsyncChatStream
    from .sync import ChatClient, ChatStream, WorkflowStream

# Where each public name lives (the module is imported when the name is first asked for).
_LOCATIONS = {
    "Timeout": "._config",
    "RawResponse": "._response",
    "ResponseInfo": "._response",
    "StreamTimings": "._timings",
    "AsyncChatClient": ".client",
    **dict.fromkeys(
        (
            "APIConnectionError",
            "APIProtocolError",
            "APIStatusError",
            "APITimeoutError",
            "AuthenticationError",
            "BadRequestError",
            "ChatAPIError",
            "ConfigurationError",
            "IncompleteStreamError",
            "InternalServerError",
            "NotFoundError",
            "PermissionDeniedError",
            "RateLimitError",
            "RequestTooLargeError",
            "ResponseDecodeError",
            "ResponseTooLargeError",
            "SSEDecodeError",
            "StreamError",
            "StreamIdleTimeoutError",
            "StreamState",
            "UnsupportedMediaTypeError",
        ),
        ".errors",
    ),
    "StreamEvent": ".events",
    "ChatCompletion": ".models",
    "InputFile": ".models",
    "Page": ".models",
    "AsyncChatStream": ".streaming",
    "AsyncWorkflowStream": "._app_streams",
    "WorkflowRunResult": ".models",
    "ChatClient": ".sync",
    "ChatStream": ".sync",
    "WorkflowStream": ".sync",
}
# Submodules reachable as attributes (``chatapi.errors``) without importing them first.
_SUBMODULES = frozenset({"errors", "events", "models", "sse", "testing", "cli", "web"})

# test_public_names checks that each of these resolves.
__all__ = [
    "APIConnectionError",
    "APIProtocolError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncChatClient",
    "AsyncChatStream",
    "AsyncWorkflowStream",
    "AuthenticationError",
    "BadRequestError",
    "ChatAPIError",
    "ChatClient",
    "ChatCompletion",
    "ChatStream",
    "ConfigurationError",
    "IncompleteStreamError",
    "InputFile",
    "InternalServerError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "RequestTooLargeError",
    "ResponseDecodeError",
    "ResponseInfo",
    "ResponseTooLargeError",
    "SSEDecodeError",
    "StreamError",
    "StreamEvent",
    "StreamIdleTimeoutError",
    "StreamState",
    "StreamTimings",
    "Timeout",
    "UnsupportedMediaTypeError",
    "WorkflowRunResult",
    "WorkflowStream",
    "__version__",
]


def __getattr__(name: str) -> Any:
    location = _LOCATIONS.get(name)
    if location is not None:
        value = getattr(importlib.import_module(location, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'chatapi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LOCATIONS, *_SUBMODULES})


_setup_logging_from_env()
