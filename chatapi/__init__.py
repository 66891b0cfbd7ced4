"""chatapi: an async-first, typed client for Dify chat apps (Chatflow, chatbot, agent).

Everything a user needs is importable from here; submodules named in the docs
(``chatapi.events``, ``chatapi.models``, ``chatapi.sse``, ``chatapi.errors``, ``chatapi.web``)
hold the rest.
"""

from ._app_streams import AsyncWorkflowStream
from ._config import Timeout
from ._logging import setup_from_env as _setup_logging_from_env
from ._timings import StreamTimings
from ._version import __version__
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
    "RequestTooLargeError",
    "ResponseDecodeError",
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

_setup_logging_from_env()
