"""``FakeChatServer``: the fake Dify app server, its lifecycle and its request pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

from aiohttp import web

from ._api import ResourceEndpoints, file_response
from ._apps import AppEndpoints
from ._chat import ChatEndpoints
from ._context import APP_MODES, SERVER_VERSION, Context, ReceivedRequest
from ._load import LoadSettings, LoadState, StreamCounts
from ._script import HTTPFault, Responder, Script
from ._wire import NOT_FOUND_MESSAGE, UUID_PATTERN, FakeAPIError, json_response

__all__ = ["FakeChatServer"]

log = logging.getLogger("chatapi.testing")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PREFIX = "/v1"
_NO_BEARER = "Authorization header must be provided and start with 'Bearer'"
_AUTH_HEADERS = {"WWW-Authenticate": 'Bearer realm="api"'}
# Requests may carry uploads: the size limits are the API's, not aiohttp's 1 MiB default.
_MAX_REQUEST_SIZE = 200 * 1024 * 1024
_THREAD_TIMEOUT = 30.0


def _unauthorized(message: str) -> FakeAPIError:
    return FakeAPIError(401, "unauthorized", message, headers=_AUTH_HEADERS)


class FakeChatServer:
    """A Dify chat app's Service API, served in-process by aiohttp on 127.0.0.1.

    It keeps conversations, messages, files, feedback, annotations and runs in memory and
    streams answers with the events and pings of a real Chatflow app, so that code written
    against Dify can be run and tested without one::

        async with FakeChatServer() as server:
            async with AsyncChatClient(api_key="app-test", base_url=server.base_url) as client:
                reply = await client.chat.send("Hello", user="u-1")   # "Echo: Hello"

    ``api_key``: the keys the server accepts (a string or several); by default any
    non-empty ``Bearer`` token. ``port=0`` picks a free port. ``mode`` is the app mode whose
    events are sent: ``"advanced-chat"`` (Chatflow), ``"chat"``, ``"agent-chat"``,
    ``"workflow"`` (``POST /workflows/run``; ``script.pause_for_input()`` makes the next run
    wait at a Human Input node) or ``"completion"`` (``POST /completion-messages``). Each
    app answers the run endpoints of the other modes with Dify's error for the wrong mode.
    ``ping_interval`` is the seconds of silence after which a stream gets ``event: ping``.
    ``replies``, ``tokens_per_chunk`` and ``chunk_delay`` set up :attr:`script`, which also
    injects faults. ``load`` (:class:`~chatapi.testing.LoadSettings`) makes it a load target;
    :meth:`stream_counts` says how many streams it started and completed.

    Use ``async with`` (or :meth:`start` / :meth:`stop`) inside an event loop, or
    :meth:`running_in_thread` from synchronous code.
    """

    def __init__(
        self,
        *,
        api_key: str | Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        mode: str = "advanced-chat",
        ping_interval: float = 10.0,
        replies: str | Mapping[str, str] | Responder | None = None,
        tokens_per_chunk: int = 1,
        chunk_delay: float = 0.0,
        app_name: str = "Fake Chat App",
        load: LoadSettings | None = None,
    ) -> None:
        if mode not in APP_MODES:
            raise ValueError(f"mode must be one of {', '.join(APP_MODES)}; got {mode!r}")
        if isinstance(ping_interval, bool) or not isinstance(ping_interval, (int, float)):
            raise TypeError(f"ping_interval must be a number, got {type(ping_interval).__name__}")
        if not ping_interval > 0:
            raise ValueError(f"ping_interval must be positive, got {ping_interval!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
        keys = [api_key] if isinstance(api_key, str) else list(api_key or [])
        if any(not isinstance(key, str) or not key.strip() for key in keys) or (
            api_key is not None and not keys
        ):
            raise ValueError("api_key must be a non-empty string or strings")
        self._keys = frozenset(keys) if keys else None
        self._host = host
        self._port = port
        self.script = Script(
            replies=replies, tokens_per_chunk=tokens_per_chunk, chunk_delay=chunk_delay
        )
        self._ctx = Context(
            mode=mode,
            ping_interval=float(ping_interval),
            script=self.script,
            app_name=app_name,
            load=LoadState(load),
        )
        self._runner: web.AppRunner | None = None

    # -- what tests use -----------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:54321/v1``."""
        return self.origin + _PREFIX

    @property
    def origin(self) -> str:
        """Scheme, host and port of the running server."""
        self._require_running()
        return self._ctx.origin

    def _require_running(self) -> None:
        if not self._ctx.origin:
            raise RuntimeError("the FakeChatServer is not running; start it first")

    @property
    def port(self) -> int:
        """The port the server listens on (the one picked when created with ``port=0``)."""
        self._require_running()
        return self._port

    @property
    def api_key(self) -> str:
        """A key this server accepts, for building a client."""
        return min(self._keys) if self._keys else "app-fake"

    @property
    def mode(self) -> str:
        """The app mode the server plays."""
        return self._ctx.mode

    @property
    def requests(self) -> list[ReceivedRequest]:
        """The API requests received so far, oldest first (method, path, query, JSON)."""
        return list(self._ctx.requests)

    def stream_counts(self) -> StreamCounts:
        """Streamed chat runs started, completed and failed so far (from any thread)."""
        return self._ctx.load.counts()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; returns once the server accepts connections."""
        if self._runner is not None:
            raise RuntimeError("the FakeChatServer is already running")
        self._ctx.closing = False
        app = web.Application(middlewares=[self._pipeline], client_max_size=_MAX_REQUEST_SIZE)
        app.on_response_prepare.append(_add_version_headers)
        router = app.router
        router.add_get(_PREFIX, self._index)
        router.add_get(f"{_PREFIX}/", self._index)
        ChatEndpoints(self._ctx).register(router, _PREFIX)
        AppEndpoints(self._ctx).register(router, _PREFIX)
        ResourceEndpoints(self._ctx).register(router, _PREFIX)
        router.add_get(f"/files/{{file_id:{UUID_PATTERN}}}/file-preview", self._signed_file)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=log)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self._port = server.sockets[0].getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._ctx.origin = f"http://{host}:{self._port}"

    async def stop(self) -> None:
        """End every open stream and stop listening; idempotent."""
        runner = self._runner
        if runner is None:
            return
        self._runner = None
        self._ctx.close()
        try:
            await runner.cleanup()
        finally:
            self._ctx.origin = ""
            self._ctx.wakers.clear()

    async def __aenter__(self) -> FakeChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @classmethod
    @contextlib.contextmanager
    def running_in_thread(cls, **options: Any) -> Iterator[FakeChatServer]:
        """Run a server (built with ``options``) on its own event loop in a daemon thread,
        for synchronous code and tests; stopped, and the thread ended, on exit::

            with FakeChatServer.running_in_thread(chunk_delay=0.01) as server:
                ...  # server.base_url; server.script works from this thread too
        """
        server = cls(**options)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=_run_loop, args=(loop,), name="FakeChatServer", daemon=True
        )
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result(_THREAD_TIMEOUT)
            yield server
        finally:
            try:
                asyncio.run_coroutine_threadsafe(server.stop(), loop).result(_THREAD_TIMEOUT)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(_THREAD_TIMEOUT)

    def __repr__(self) -> str:
        where = self._ctx.origin or "not running"
        return f"<FakeChatServer mode={self._ctx.mode!r} {where}>"

    # -- request pipeline ---------------------------------------------------------------

    @web.middleware
    async def _pipeline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Dify's order: routing (404/405), then the API key, then the endpoint."""
        route_error = request.match_info.http_exception
        if route_error is not None:
            return _route_error_response(route_error)
        path = request.path[len(_PREFIX) :] if request.path.startswith(_PREFIX) else None
        try:
            if path is not None and path not in ("", "/"):
                if not self._ctx.load.enabled:
                    await self._record(request, path)
                self._authenticate(request)
                fault = self.script.take_http_fault(request.method, path)
                if fault is not None:
                    return _fault_response(fault)
            return await handler(request)
        except FakeAPIError as error:
            return error.response()
        except web.HTTPRequestEntityTooLarge:
            return FakeAPIError(413, "file_too_large", "File size exceeded.").response()
        except web.HTTPException:
            raise
        except Exception:
            log.exception("the fake server failed on %s %s", request.method, request.path)
            return json_response(
                {"message": "Internal Server Error", "code": "unknown", "status": 500},
                status=500,
            )

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        if header is None or " " not in header:
            raise _unauthorized(_NO_BEARER)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise _unauthorized("Authorization scheme must be 'Bearer'")
        token = token.strip()
        if not token or (self._keys is not None and token not in self._keys):
            raise _unauthorized("Access token is invalid")

    async def _record(self, request: web.Request, path: str) -> None:
        body: Any = None
        if request.content_type == "application/json" and request.can_read_body:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        self._ctx.requests.append(
            ReceivedRequest(method=request.method, path=path, query=dict(request.query), json=body)
        )

    async def _index(self, request: web.Request) -> web.Response:
        return json_response(
            {"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": SERVER_VERSION}
        )

    async def _signed_file(self, request: web.Request) -> web.Response:
        upload = self._ctx.store.files.get(request.match_info["file_id"].lower())
        if upload is None:
            raise FakeAPIError(404, "not_found", NOT_FOUND_MESSAGE)
        return file_response(upload, as_attachment=False)


def _route_error_response(error: web.HTTPException) -> web.Response:
    if error.status == 405:
        return FakeAPIError(
            405, "method_not_allowed", "The method is not allowed for the requested URL."
        ).response()
    return FakeAPIError(404, "not_found", NOT_FOUND_MESSAGE).response()


def _fault_response(fault: HTTPFault) -> web.Response:
    if fault.body is not None:
        return web.Response(
            body=fault.body,
            status=fault.status,
            headers=fault.headers,
            content_type=fault.content_type,
        )
    return FakeAPIError(fault.status, fault.code, fault.message, headers=fault.headers).response()


async def _add_version_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Version"] = SERVER_VERSION


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The body of a server thread: run the loop until stopped, then close it cleanly."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
