"""The exception hierarchy of chatapi, and the mapping from an HTTP error response to it.

Every exception the library raises derives from :class:`ChatAPIError`::

    ChatAPIError
    ├── ConfigurationError          bad or missing settings, raised before any request
    ├── APIConnectionError          could not connect, or the connection broke
    │   ├── APIProtocolError        the server answered with malformed HTTP
    │   └── APITimeoutError         a connect / read / total limit fired
    │       └── StreamIdleTimeoutError   no non-ping event within ``stream_idle``
    ├── APIStatusError              the server answered with a non-2xx status
    │   ├── BadRequestError             400
    │   ├── AuthenticationError         401
    │   ├── PermissionDeniedError       403
    │   ├── NotFoundError               404
    │   ├── RequestTooLargeError        413
    │   ├── UnsupportedMediaTypeError   415
    │   ├── RateLimitError              429
    │   └── InternalServerError         >= 500
    ├── StreamError                 an ``error`` event, or a failed workflow, inside a stream
    ├── IncompleteStreamError       the stream ended before its run was over
    └── ResponseDecodeError         a body or an event is not what the API promises
        ├── ResponseTooLargeError   a body larger than ``max_response_size``
        └── SSEDecodeError          the event stream itself is malformed (e.g. too large)

Stream errors carry what the stream had received (:class:`StreamState`): the partial answer
and the ids needed to resume, stop or look up the run. Transport exceptions of aiohttp or
asyncio never escape; they are chained as ``__cause__``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
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
    "status_error_from_response",
]

# How much of an offending body an exception message shows.
_SNIPPET_LIMIT = 200


def snippet(data: bytes | str, limit: int = _SNIPPET_LIMIT) -> str:
    """Return a printable, truncated rendering of ``data`` for an error message."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


class ChatAPIError(Exception):
    """Base class of every exception raised by chatapi."""


class ConfigurationError(ChatAPIError):
    """The client is missing a setting (API key, user, ...) or was given a bad one."""


class StreamState:
    """What a stream had received when it failed: the partial answer and the run's ids."""

    answer: str
    task_id: str | None
    conversation_id: str | None
    message_id: str | None
    workflow_run_id: str | None

    def _set_state(
        self,
        *,
        answer: str = "",
        task_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        workflow_run_id: str | None = None,
    ) -> None:
        self.answer = answer
        self.task_id = task_id
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.workflow_run_id = workflow_run_id


class APIConnectionError(ChatAPIError):
    """The server could not be reached, or the connection broke during the exchange."""


class APIProtocolError(APIConnectionError):
    """The server answered with something that is not valid HTTP (a garbage status line, a
    bad header or chunk size): it was reached, but what came back could not be read.

    A subclass of :class:`APIConnectionError` because, like a broken connection, the
    exchange failed below HTTP: there is no status or body to act on, and it is retried
    under the same rules.
    """


class APITimeoutError(APIConnectionError, StreamState):
    """A time limit fired. ``timeout`` names which one: connect, read, total or stream_idle.

    When the limit fired inside a stream, the stream's partial answer and ids are attached.
    """

    def __init__(
        self,
        message: str,
        *,
        timeout: str,
        answer: str = "",
        task_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        workflow_run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.timeout = timeout
        self._set_state(
            answer=answer,
            task_id=task_id,
            conversation_id=conversation_id,
            message_id=message_id,
            workflow_run_id=workflow_run_id,
        )


class StreamIdleTimeoutError(APITimeoutError):
    """The stream sent nothing but pings (or nothing at all) for ``Timeout.stream_idle``."""


class APIStatusError(ChatAPIError):
    """The API answered with a non-2xx status.

    ``code`` is Dify's error code (``invalid_param``, ``conversation_not_exists``...) or
    ``None`` when the body was not Dify's JSON error envelope (an HTML page from a gateway);
    ``body`` is the decoded JSON body, or the raw text for a non-JSON body.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.status_code}{code}: {self.message}"


class BadRequestError(APIStatusError):
    """400: the request was invalid (``invalid_param``, ``bad_request``, ``not_chat_app``...)."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the app, its API or the workspace is not available to this key."""


class NotFoundError(APIStatusError):
    """404: the conversation, message, file or route does not exist (for this user)."""


class RequestTooLargeError(APIStatusError):
    """413: an uploaded file or audio clip is larger than the server accepts."""


class UnsupportedMediaTypeError(APIStatusError):
    """415: the file type or request content type is not accepted."""


class RateLimitError(APIStatusError):
    """429: too many concurrent requests or quota exhausted.

    ``retry_after`` is the delay in seconds the server asked for, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, body=body, headers=headers)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server or a gateway in front of it failed."""


class StreamError(ChatAPIError, StreamState):
    """The run failed inside a 200 stream.

    Raised for an ``error`` event (``status``, ``code`` and ``message`` as Dify sent them) and
    for a ``workflow_finished`` event with status ``failed`` that no ``error`` event followed
    (then ``code`` and ``status`` are ``None`` and ``message`` is the workflow's error text).
    ``workflow_status`` is the final workflow status when one was seen.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        workflow_status: str | None = None,
        answer: str = "",
        task_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        workflow_run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.workflow_status = workflow_status
        self._set_state(
            answer=answer,
            task_id=task_id,
            conversation_id=conversation_id,
            message_id=message_id,
            workflow_run_id=workflow_run_id,
        )

    def __str__(self) -> str:
        code = f"{self.code}: " if self.code else ""
        return f"{code}{self.message}"


class IncompleteStreamError(ChatAPIError, StreamState):
    """The stream ended or broke before its run was over (no closing event was received)."""

    def __init__(
        self,
        message: str,
        *,
        answer: str = "",
        task_id: str | None = None,
        conversation_id: str | None = None,
        message_id: str | None = None,
        workflow_run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self._set_state(
            answer=answer,
            task_id=task_id,
            conversation_id=conversation_id,
            message_id=message_id,
            workflow_run_id=workflow_run_id,
        )


class ResponseDecodeError(ChatAPIError):
    """A response body or a stream event could not be decoded as the API promises.

    ``data`` holds the offending bytes (possibly truncated by the caller); ``path`` names the
    field that did not fit (``outputs``, ``data.outputs``, ``data[2].id``) when one did.
    """

    def __init__(
        self, message: str, *, data: bytes | str | None = None, path: str | None = None
    ) -> None:
        if data is not None:
            message = f"{message}: {snippet(data)}"
        super().__init__(message)
        self.data = data
        self.path = path


class ResponseTooLargeError(ResponseDecodeError):
    """A response body is larger than the client's ``max_response_size``; ``limit`` is that
    size in bytes. Nothing past the limit was read."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class SSEDecodeError(ResponseDecodeError):
    """The event stream could not be decoded: it violates a limit of the decoder (an event
    larger than ``max_event_size``, a ``retry`` value past ``int()``'s digit limit), or the
    decoder failed on it unexpectedly (the original exception is chained)."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    415: UnsupportedMediaTypeError,
    429: RateLimitError,
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (delta seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_error_from_response(
    status_code: int, body: bytes, headers: Mapping[str, str], *, cut: str | None = None
) -> APIStatusError:
    """Build the exception for a non-2xx response from its status, body and headers.

    A JSON body in Dify's envelope ``{"code", "message", "status"}`` gives ``code`` and
    ``message``; any other body (an HTML gateway page, plain text, nothing) keeps
    ``code=None`` and shows its first bytes in the message. ``cut`` says why ``body`` is
    only the start of the body (it is added to the message).
    """
    code: str | None = None
    message: str | None = None
    decoded: Any
    try:
        decoded = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        decoded = body.decode("utf-8", "replace")
    if isinstance(decoded, dict):
        raw_code = decoded.get("code")
        raw_message = decoded.get("message")
        code = raw_code if isinstance(raw_code, str) else None
        message = raw_message if isinstance(raw_message, str) else None
    if message is None or (not message and code is None):
        if isinstance(decoded, str):
            message = f"unexpected non-JSON error body {snippet(decoded)}"
        elif body:
            message = f"error body {snippet(body)}"
        else:
            message = "empty error body"
    elif not message:
        message = "(no message)"
    if cut is not None:
        message = f"{message} [{cut}]"
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = InternalServerError if status_code >= 500 else APIStatusError
    if cls is RateLimitError:
        return RateLimitError(
            message,
            status_code=status_code,
            code=code,
            body=decoded,
            headers=headers,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    return cls(message, status_code=status_code, code=code, body=decoded, headers=headers)
