"""What the HTTP exchange behind a call looked like: :class:`ResponseInfo` and
:class:`RawResponse`, and how the transport hands them to ``with_raw_response``.

The transport records a :class:`ResponseInfo` for every final response (the one after the
retries): attached to the :class:`~chatapi.errors.APIStatusError` of a non-2xx answer, and,
while a ``with_raw_response`` call runs, into the :func:`capture` of that call. A context
variable carries the capture, so no resource method has to know about it: every method is
written once and gets its raw variant for free.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

import attrs

__all__ = ["RawResponse", "ResponseInfo", "capture", "record"]

T = TypeVar("T")
U = TypeVar("U")


@attrs.frozen(kw_only=True)
class ResponseInfo:
    """The final HTTP response of a call, as the transport saw it.

    ``headers`` are case-insensitive (``headers["x-version"]`` finds ``X-Version``);
    ``elapsed`` runs from the start of the first attempt to the end of the body (to the
    response head for a stream), retries and their pauses included; ``retries_taken``
    counts the attempts before the one that answered;
    ``content`` is the body, or ``None`` for a stream (whose body is its events).
    """

    method: str
    url: str
    status_code: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    elapsed: datetime.timedelta
    retries_taken: int
    content: bytes | None = attrs.field(default=None, repr=False)

    @property
    def text(self) -> str | None:
        """The body as text (UTF-8, undecodable bytes replaced); ``None`` for a stream."""
        return None if self.content is None else self.content.decode("utf-8", "replace")


class RawResponse(Generic[T]):
    """The result of ``client.<resource>.with_raw_response.<method>(...)``.

    The HTTP details (``status_code``, ``headers``, ``elapsed``, ``retries_taken``,
    ``method``, ``url``, ``content``) of the call's final response, and :meth:`parse`, which
    returns what the plain method returns. A body that did not decode does not hide the
    response: the :class:`~chatapi.errors.ResponseDecodeError` is raised by :meth:`parse`.
    """

    __slots__ = ("_error", "_result", "http_response")

    def __init__(
        self, info: ResponseInfo, result: T | None, error: BaseException | None = None
    ) -> None:
        self.http_response = info
        self._result = result
        self._error = error

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self.http_response.headers

    @property
    def elapsed(self) -> datetime.timedelta:
        return self.http_response.elapsed

    @property
    def retries_taken(self) -> int:
        return self.http_response.retries_taken

    @property
    def method(self) -> str:
        return self.http_response.method

    @property
    def url(self) -> str:
        return self.http_response.url

    @property
    def content(self) -> bytes | None:
        return self.http_response.content

    def parse(self) -> T:
        """The typed result of the call (what the method without ``with_raw_response`` gives)."""
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def _replace(self, result: U) -> RawResponse[U]:
        """The same response with another result (the sync twin of a stream)."""
        return RawResponse(self.http_response, result, self._error)

    def __repr__(self) -> str:
        info = self.http_response
        return (
            f"<RawResponse {info.method} {info.url} -> {info.status_code} "
            f"retries_taken={info.retries_taken}>"
        )


_current: contextvars.ContextVar[list[ResponseInfo] | None] = contextvars.ContextVar(
    "chatapi_raw_response", default=None
)


@contextlib.contextmanager
def capture() -> Iterator[list[ResponseInfo]]:
    """Collect the final responses of the requests sent inside the block."""
    seen: list[ResponseInfo] = []
    token = _current.set(seen)
    try:
        yield seen
    finally:
        _current.reset(token)


def capturing() -> bool:
    """Whether a ``with_raw_response`` call wants the responses (cheap: one lookup)."""
    return _current.get() is not None


def record(info: ResponseInfo) -> None:
    """Hand ``info`` to the capture of the call in progress, if any."""
    seen = _current.get()
    if seen is not None:
        seen.append(info)
