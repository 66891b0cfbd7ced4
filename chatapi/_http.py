"""The transport: owns the aiohttp session, sends requests, retries, and translates failures.

Nothing above this module sees an aiohttp or asyncio exception: connection problems become
:class:`~chatapi.errors.APIConnectionError` / :class:`~chatapi.errors.APITimeoutError`, and
non-2xx answers become the :class:`~chatapi.errors.APIStatusError` family, with the original
exception chained as ``__cause__``.

Retry rule: a request is tried again only when doing so cannot run it twice on the server.
Any call may be retried when the connection could not be opened (nothing was sent). Only
idempotent calls (GET, PUT, DELETE) are retried after a status of 408/429/502/503/504 or a
connection that broke after the request went out; ``POST /chat-messages`` never is.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
import random
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import attrs

from . import _fork, _trace
from ._config import Settings, Timeout, check_headers, user_agent
from ._convert import decode_json
from ._response import ResponseInfo, capturing, record
from .errors import (
    APIConnectionError,
    APIProtocolError,
    APIStatusError,
    APITimeoutError,
    ChatAPIError,
    ConfigurationError,
    ResponseTooLargeError,
    parse_retry_after,
    status_error_from_response,
)

__all__ = ["HTTPClient", "Response", "translate_transport_error"]

log = logging.getLogger("chatapi")
T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0
RETRY_AFTER_MAX = 60.0
# How much of an error body is read: enough for any Dify envelope or gateway page, and a
# server that streams an endless error body cannot grow the client.
MAX_ERROR_BODY = 64 * 1024
# The default cap of a non-streaming 2xx body: above Dify's default upload limits (100 MB for
# video), which bound what ``files.preview`` can return.
DEFAULT_MAX_RESPONSE_SIZE = 128 * 1024 * 1024


@attrs.frozen
class Response:
    """A fully read response: status, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


def translate_transport_error(exc: BaseException, *, what: str) -> ChatAPIError:
    """Turn an aiohttp/asyncio failure into the matching chatapi exception (not raised)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(f"{what}: connect timeout", timeout="connect")
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return APITimeoutError(f"{what}: read timeout (socket idle)", timeout="read")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return APITimeoutError(f"{what}: timeout ({exc})", timeout="read")
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError(f"{what}: total timeout", timeout="total")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return APIConnectionError(
            f"{what}: could not connect to {exc.host}:{exc.port} ({exc.os_error})"
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        # The client never raises for a status itself: aiohttp raises this when it could
        # not parse the answer (status line, headers, chunk sizes).
        return APIProtocolError(
            f"{what}: the server answered with malformed HTTP ({_parser_message(exc)})"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return APIConnectionError(f"{what}: server closed the connection")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(f"{what}: response body broke off ({exc})")
    if isinstance(exc, (aiohttp.ClientError, OSError)):
        return APIConnectionError(f"{what}: connection error ({type(exc).__name__}: {exc})")
    return APIConnectionError(f"{what}: {type(exc).__name__}: {exc}")


def _parser_message(exc: aiohttp.ClientResponseError) -> str:
    """aiohttp's parser message on one line, without its caret line and status code."""
    lines = [line.strip() for line in str(exc.message).splitlines()]
    return " ".join(line for line in lines if line and set(line) != {"^"}) or "unreadable"


def _wake_reader_when_lost(response: aiohttp.ClientResponse) -> None:
    """Make sure a reader of ``response``'s body hears of a connection lost mid-body.

    aiohttp (3.13 and 3.14) closes the connection when a body that arrives after the
    headers is malformed (a bad chunk size), but never tells the body's reader, which then
    waits for bytes that cannot come until a time limit fires. When the connection closes
    with the body unfinished and no error on it, give the reader one. Registered once per
    response and removed when its connection is released: nothing per event.
    """
    connection = response.connection
    if connection is None:
        return
    closed = getattr(connection.protocol, "closed", None)
    if not isinstance(closed, asyncio.Future) or closed.done():
        return
    watch = _LossWatch(response, closed)
    closed.add_done_callback(watch)
    connection.add_callback(watch.forget)


class _LossWatch:
    """The callback of :func:`_wake_reader_when_lost`: one small object per response held
    for the life of a stream, rather than two closures and their cells."""

    __slots__ = ("closed", "response")

    def __init__(self, response: aiohttp.ClientResponse, closed: asyncio.Future[Any]) -> None:
        self.response = response
        self.closed = closed

    def __call__(self, _: object) -> None:
        # aiohttp reports every other loss mid-body itself, before this runs: only the
        # parser's rejection of the body leaves the reader without an error.
        response = self.response
        content = response.content
        if not content.is_eof() and content.exception() is None:
            content.set_exception(
                aiohttp.ClientResponseError(
                    response.request_info,
                    response.history,
                    status=response.status,
                    message="the body broke off at a part that is not valid HTTP",
                )
            )

    def forget(self) -> None:
        """The connection was released: a later loss is not this response's."""
        self.closed.remove_done_callback(self)


def _sent_nothing(exc: BaseException) -> bool:
    """True when the failure happened before any byte of the request left the client."""
    return isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


async def _keep_open(response: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
    return response


async def _read_at_most(
    response: aiohttp.ClientResponse, limit: int, buffer: bytearray
) -> bool:
    """Read the body into ``buffer``, up to ``limit`` bytes; True when there was more.

    ``buffer`` keeps what was read when a read fails.
    """
    # Bounded: every read returns at least one byte, or b"" at the end of the body.
    while len(buffer) <= limit:
        chunk = await response.content.read(limit + 1 - len(buffer))
        if not chunk:
            return False
        buffer += chunk
    del buffer[limit:]
    return True


def _content_length(response: aiohttp.ClientResponse) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() and len(value) < 20 else None


def _status_retry_delay(error: APIStatusError, attempt: int) -> float | None:
    """How long to wait before retrying after ``error``; None when it must not be retried."""
    if error.status_code not in RETRY_STATUSES:
        return None
    retry_after = parse_retry_after(error.headers.get("Retry-After"))
    if retry_after is not None:
        # A server asking for a long pause gets its answer now (with ``retry_after``).
        return None if retry_after > RETRY_AFTER_MAX else retry_after
    return backoff_delay(attempt)


def _in_time(deadline: float | None, delay: float) -> bool:
    """Whether a retry after ``delay`` seconds would still start before ``deadline``."""
    return deadline is None or time.monotonic() + delay < deadline


def check_max_retries(value: object) -> int:
    """Refuse a ``max_retries`` that is not an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"max_retries must be an integer >= 0, got {value!r}")
    return value


def _info(
    response: aiohttp.ClientResponse, *, started: float, attempt: int, content: bytes | None
) -> ResponseInfo:
    return ResponseInfo(
        method=response.method,
        url=str(response.url),
        status_code=response.status,
        headers=response.headers,
        elapsed=datetime.timedelta(seconds=time.monotonic() - started),
        retries_taken=attempt,
        content=content,
    )


class _Connections:
    """The session, and the event loop it belongs to, shared by an :class:`HTTPClient` and
    the clients derived from it with :meth:`HTTPClient.with_options`."""

    def __init__(self, session: aiohttp.ClientSession | None, connector_limit: int) -> None:
        self.session = session
        self.owns_session = session is None
        self.connector_limit = connector_limit
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        # A session given by the caller, inherited by a forked child: unusable there.
        self.forked_session = False
        # Closes a session the client created if no one closes the client.
        self.abandoned: weakref.finalize[Any, Any] | None = None
        _fork.register(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: the parent's connections and loop are not ours to use; the
        next call opens a new session (one the client created) on the child's loop."""
        if self.session is not None:
            if self.owns_session:
                _fork.keep_inherited(self.session)
                self.session = None
                if self.abandoned is not None:  # closing it at exit would hurt the parent
                    self.abandoned.detach()
                    self.abandoned = None
            else:
                self.forked_session = True
        self.loop = None


def backoff_delay(attempt: int) -> float:
    """Delay before retry number ``attempt`` (0-based): doubling from 0.5 s, capped, jittered."""
    ceiling = min(BACKOFF_MAX, BACKOFF_INITIAL * 2.0**attempt)
    return ceiling * random.uniform(0.75, 1.0)


def _close_abandoned(session: aiohttp.ClientSession, base_url: str) -> None:
    """Close the session of a client dropped, or left open at exit, without ``aclose()``.

    ``ClientSession.close()`` is a coroutine and the loop may be gone by now; the pool's
    synchronous part closes the sockets (if the loop still runs) and marks it closed, which
    spares the user aiohttp's "Unclosed client session" / "Unclosed connector" reports.
    """
    connector = session.connector
    if connector is None or connector.closed:
        return
    loop = getattr(connector, "_loop", None)
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if loop is not None and loop.is_running() and loop is not current:
        return  # its loop runs in another thread (a ChatClient's), which closes it itself
    connector._close()
    warnings.warn(
        f"an AsyncChatClient of {base_url} was never closed; chatapi closed its connections. "
        "Use 'async with AsyncChatClient(...)' or 'await client.aclose()'.",
        ResourceWarning,
        stacklevel=1,
    )


class HTTPClient:
    """Sends the API's requests over one aiohttp session, created on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: Timeout,
        max_retries: int,
        session: aiohttp.ClientSession | None,
        default_headers: Mapping[str, str] | None,
        connector_limit: int,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        check_max_retries(max_retries)
        if (
            isinstance(connector_limit, bool)
            or not isinstance(connector_limit, int)
            or connector_limit < 0
        ):
            raise ConfigurationError(
                f"connector_limit must be an integer >= 0 (0: no limit), got {connector_limit!r}"
            )
        if (
            isinstance(max_response_size, bool)
            or not isinstance(max_response_size, int)
            or max_response_size <= 0
        ):
            raise ConfigurationError(
                f"max_response_size must be a positive number of bytes, got {max_response_size!r}"
            )
        self.max_response_size = max_response_size
        self._settings = settings
        self.timeout = timeout
        self.max_retries = max_retries
        self._pool = _Connections(session, connector_limit)
        self._headers = {
            "User-Agent": user_agent(),
            **check_headers(default_headers),
            "Authorization": f"Bearer {settings.api_key}",
        }
        # Closed on its own: a client derived with with_options() closes only its view.
        self._closed = False
        self._derived = False

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def closed(self) -> bool:
        return self._closed or self._pool.closed

    def close_view(self) -> None:
        """Make this client unusable without closing the connections it shares."""
        self._closed = True

    def with_options(
        self,
        *,
        timeout: Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> HTTPClient:
        """A client with other defaults on the same connections (no new session)."""
        derived = copy.copy(self)
        derived._closed = False
        derived._derived = True
        if timeout is not None:
            derived.timeout = timeout
        if max_retries is not None:
            derived.max_retries = check_max_retries(max_retries)
        if default_headers is not None:
            derived._headers = {
                **self._headers,
                **check_headers(default_headers),
                "Authorization": self._headers["Authorization"],
            }
        return derived

    def url(self, path: str) -> str:
        return self._settings.base_url + path

    async def _read_whole(self, response: aiohttp.ClientResponse) -> Response:
        """Read a 2xx body, refusing one larger than ``max_response_size``."""
        limit = self.max_response_size
        length = _content_length(response)
        too_large = length is not None and length > limit
        body = bytearray()
        if not too_large:
            too_large = await _read_at_most(response, limit, body)
        if too_large:
            response.close()  # the rest is never read: this connection cannot be reused
            raise ResponseTooLargeError(
                f"{response.method} {response.url.path}: the response body is larger than "
                f"max_response_size ({limit} bytes)",
                limit=limit,
            )
        response.release()
        return Response(status=response.status, headers=response.headers, body=bytes(body))

    def _check_usable(self) -> None:
        if self.closed:
            raise ConfigurationError("the client is closed; create a new one")
        if self._pool.forked_session:
            raise ConfigurationError(
                "this AsyncChatClient was given an aiohttp session in the parent process, "
                "which cannot be used after os.fork(); create the session and the client in "
                "the child (or let the client create its own session)"
            )
        loop = asyncio.get_running_loop()
        pool = self._pool
        if pool.loop is None:
            pool.loop = loop
        elif pool.loop is not loop:
            raise ConfigurationError(
                "this AsyncChatClient is bound to the event loop it first ran on and cannot be "
                "used from another one; create one client per event loop (or use ChatClient)"
            )

    def _get_session(self) -> aiohttp.ClientSession:
        pool = self._pool
        if pool.session is None:
            connector = aiohttp.TCPConnector(limit=pool.connector_limit)
            # No cookie jar: the client authenticates with its key alone, and a cookie set
            # for one end user must not ride along with the calls made for another.
            pool.session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            )
            # aiohttp silently re-sends an idempotent request once when a connection drops;
            # retries here are ours alone, so that ``max_retries`` means what it says.
            if hasattr(pool.session, "_retry_connection"):
                pool.session._retry_connection = False
            pool.abandoned = weakref.finalize(
                pool, _close_abandoned, pool.session, self._settings.base_url
            )
        return pool.session

    async def open(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        timeout: Timeout | None = None,
        stream: bool = False,
        retry: bool = True,
        max_retries: int | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the open 2xx response (the caller reads and closes it).

        A non-2xx response is read, closed and raised as an ``APIStatusError`` subclass.
        ``retry=False`` turns retries off for a body that cannot be sent twice;
        ``max_retries`` overrides the client's for this call.
        """
        return await self._send(
            method,
            path,
            _keep_open,
            params=params,
            json=json,
            data=data,
            timeout=timeout,
            stream=stream,
            retry=retry,
            max_retries=max_retries,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        timeout: Timeout | None = None,
        retry: bool = True,
        max_retries: int | None = None,
    ) -> Response:
        """Send a request and read the whole 2xx response."""
        return await self._send(
            method,
            path,
            self._read_whole,
            params=params,
            json=json,
            data=data,
            timeout=timeout,
            stream=False,
            retry=retry,
            max_retries=max_retries,
        )

    async def _send(
        self,
        method: str,
        path: str,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        **options: Any,
    ) -> T:
        """Send, hand a 2xx response to ``handle``, and retry what is safe to retry."""
        tracer = _trace.tracer
        if tracer is None:
            return await self._attempts(method, path, handle, self._headers, None, **options)
        call = tracer.start(method, self.url(path), path, stream=options["stream"])
        headers = call.headers(self._headers)
        try:
            result = await self._attempts(method, path, handle, headers, call, **options)
        except BaseException as exc:
            call.failed(exc)
            raise
        if isinstance(result, Response):
            call.succeeded(result.status, result)
        elif isinstance(result, aiohttp.ClientResponse):
            call.succeeded(result.status, result)
            if options["stream"]:
                _trace.hand_to_stream(result, call)
        return result

    async def _attempts(
        self,
        method: str,
        path: str,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        headers: Mapping[str, str],
        call: _trace.CallTrace | None,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        data: Any,
        timeout: Timeout | None,
        stream: bool,
        retry: bool,
        max_retries: int | None,
    ) -> T:
        self._check_usable()
        limits = timeout or self.timeout
        session = self._get_session()
        what = f"{method} {path}"
        idempotent = method in IDEMPOTENT_METHODS
        if max_retries is None:
            max_retries = self.max_retries
        else:
            check_max_retries(max_retries)
        if not retry:
            max_retries = 0
        # The total limit bounds the whole call, retries and their pauses included.
        total = limits.total_for(stream=stream)
        deadline = None if total is None else time.monotonic() + total
        attempt = 0
        first_started = time.monotonic()
        while True:
            started = time.monotonic()
            remaining = None if deadline is None else max(deadline - started, 0.001)
            client_timeout = limits.client_timeout(stream=stream, remaining=remaining)
            response: aiohttp.ClientResponse | None = None
            try:
                response = await session.request(
                    method,
                    self.url(path),
                    params=params,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=client_timeout,
                    allow_redirects=False,
                )
                _wake_reader_when_lost(response)
                if log.isEnabledFor(logging.DEBUG):
                    elapsed = (time.monotonic() - started) * 1e3
                    log.debug("%s -> %d in %.1f ms", what, response.status, elapsed)
                if response.status < 300:
                    result = await handle(response)
                    if capturing():
                        body = result.body if isinstance(result, Response) else None
                        info = _info(response, started=first_started, attempt=attempt, content=body)
                        record(info)
                    return result
            except asyncio.CancelledError:
                if response is not None:
                    response.close()
                raise
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                if response is not None:
                    response.close()
                error = translate_transport_error(exc, what=what)
                # Before the connection opened nothing was sent; after it, only an idempotent
                # call may go out again.
                delay = backoff_delay(attempt)
                if (
                    attempt < max_retries
                    and (idempotent or _sent_nothing(exc))
                    and _in_time(deadline, delay)
                ):
                    log.info("%s failed (%s); retry %d in %.2fs", what, error, attempt + 1, delay)
                    attempt += 1
                    if call is not None:
                        call.resends = attempt
                    await asyncio.sleep(delay)
                    continue
                raise error from exc
            status_error = await self._status_error(
                response, what=what, started=first_started, attempt=attempt
            )
            retry_delay = None
            if attempt < max_retries and idempotent:
                retry_delay = _status_retry_delay(status_error, attempt)
            if retry_delay is None or not _in_time(deadline, retry_delay):
                raise status_error
            log.info(
                "%s answered %d; retry %d in %.2fs",
                what,
                status_error.status_code,
                attempt + 1,
                retry_delay,
            )
            attempt += 1
            if call is not None:
                call.resends = attempt
            await asyncio.sleep(retry_delay)

    async def _status_error(
        self, response: aiohttp.ClientResponse, *, what: str, started: float, attempt: int
    ) -> APIStatusError:
        """Read the start of an error body (up to ``MAX_ERROR_BODY``) and build the error.

        What was read is kept when the body is longer, breaks off or outlasts the call's
        time limit; the message says so.
        """
        body = bytearray()
        cut: str | None = None
        try:
            if await _read_at_most(response, MAX_ERROR_BODY, body):
                cut = f"error body cut at {MAX_ERROR_BODY} bytes"
        except asyncio.CancelledError:
            response.close()
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            cut = f"error body incomplete: {translate_transport_error(exc, what='reading it')}"
        if cut is None:
            response.release()
        else:
            response.close()
        error = status_error_from_response(response.status, bytes(body), response.headers, cut=cut)
        error.response = _info(response, started=started, attempt=attempt, content=bytes(body))
        return error

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        timeout: Timeout | None = None,
        max_retries: int | None = None,
    ) -> Any:
        """Send a request and decode its JSON body (``None`` for an empty body or a 204)."""
        response = await self.request(
            method,
            path,
            params=params,
            json=json,
            data=data,
            timeout=timeout,
            max_retries=max_retries,
        )
        if response.status == 204 or not response.body.strip():
            return None
        return decode_json(response.body, what=f"the response to {method} {path}")

    async def aclose(self) -> None:
        """Close the session if this client created it; idempotent.

        A client derived with :meth:`with_options` only closes itself: the connections
        belong to the client it was derived from.
        """
        if self._closed:
            return
        self.close_view()
        pool = self._pool
        if self._derived or pool.closed:
            return
        pool.closed = True
        if pool.abandoned is not None:
            pool.abandoned.detach()
        if pool.owns_session and pool.session is not None:
            await pool.session.close()
        pool.session = None

    def __repr__(self) -> str:
        return f"<HTTPClient base_url={self._settings.base_url!r}>"
