"""``client.<resource>.with_raw_response``: every resource method, answering a
:class:`~chatapi.RawResponse` instead of its plain result.

Nothing here is written per method. The namespace looks the method up on its resource, runs
it inside :func:`chatapi._response.capture`, and pairs the result with the last response the
transport recorded. The sync namespace hands the async one to the bridge, so both clients
offer the same methods with the same parameters.

For type checkers each resource declares its namespace class, one line per method, next to
the resource (``send = raw(AsyncChat.send)``; in :mod:`chatapi.sync`, ``send =
sync_raw(Chat.send)``): ``ParamSpec`` carries the parameters and the result type, so that
``(await client.chat.with_raw_response.send("Hi")).parse()`` is a ``ChatCompletion``. The
declarations add types only; a test checks that none is missing.

Which methods: every coroutine method, and every method returning a stream. A stream is
opened by the raw call (the response head is what there is to show) and :meth:`parse`
returns it open; use it with ``async with`` / ``with`` as usual, which also closes it. The
auto-paging iterators (``iter``, ``iter_logs``...) are left out: they send a request per
page, lazily; the raw form of one page is ``with_raw_response.list(...)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from functools import partial, wraps
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from ._response import RawResponse, ResponseInfo, capture
from .errors import ChatAPIError, ResponseDecodeError

if TYPE_CHECKING:
    from ._bridge import SyncMethod, SyncResource

__all__ = ["AsyncRawResponses", "SyncRawResponses", "raw", "raw_stream", "sync_raw"]

P = ParamSpec("P")
T = TypeVar("T")


def _method(resource: object, name: str) -> Callable[..., Any]:
    """The plain function behind ``resource.<name>``, if it has a raw form; else raise
    AttributeError saying why."""
    cls = type(resource)
    fn = None if name.startswith("_") else getattr(cls, name, None)
    if not inspect.isfunction(fn) or name == "with_raw_response":
        raise AttributeError(f"{cls.__name__}.with_raw_response has no method {name!r}")
    if inspect.isasyncgenfunction(fn):
        raise AttributeError(
            f"{cls.__name__}.{name} pages through many responses lazily and has no raw form; "
            "use with_raw_response.list(...) for the response of one page"
        )
    return fn


def _raw_names(resource: object) -> list[str]:
    names = []
    for name in dir(type(resource)):
        try:
            _method(resource, name)
        except AttributeError:
            continue
        names.append(name)
    return names


def _last(seen: list[ResponseInfo], what: str) -> ResponseInfo:
    if not seen:  # every resource method sends a request; this guards a new one that doesn't
        raise ChatAPIError(f"{what} sent no request, so it has no raw response")
    return seen[-1]


async def _raw_call(what: str, call: Callable[[], Awaitable[Any]]) -> RawResponse[Any]:
    with capture() as seen:
        try:
            result = await call()
        except ResponseDecodeError as error:
            if not seen:
                raise
            return RawResponse(seen[-1], None, error)
    return RawResponse(_last(seen, what), result)


async def _raw_stream(what: str, make: Callable[[], Any]) -> RawResponse[Any]:
    stream = make()
    with capture() as seen:
        try:
            await stream.__aenter__()
        except ResponseDecodeError as error:
            if not seen:
                raise
            return RawResponse(seen[-1], None, error)
    return RawResponse(_last(seen, what), stream)


class AsyncRawResponses:
    """``resource.with_raw_response``: the resource's methods, each answering a
    :class:`~chatapi.RawResponse` (see :mod:`chatapi._raw` for which methods)."""

    def __init__(self, resource: object) -> None:
        self._resource = resource

    def __getattr__(self, name: str) -> Callable[..., Awaitable[RawResponse[Any]]]:
        return self._raw_method(name)

    def _raw_method(self, name: str) -> Callable[..., Awaitable[RawResponse[Any]]]:
        fn = _method(self._resource, name)
        bound = getattr(self._resource, name)
        what = f"{type(self._resource).__name__}.{name}"
        runner = _raw_call if inspect.iscoroutinefunction(fn) else _raw_stream

        @wraps(fn)
        async def raw(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            return await runner(what, partial(bound, *args, **kwargs))

        raw.__signature__ = inspect.signature(bound)  # type: ignore[attr-defined]
        return raw

    def __dir__(self) -> list[str]:
        return _raw_names(self._resource)

    def __repr__(self) -> str:
        return f"<with_raw_response of {self._resource!r}>"


class SyncRawResponses:
    """The sync twin of :class:`AsyncRawResponses`: each method blocks and returns a
    :class:`~chatapi.RawResponse`; a stream's :meth:`~chatapi.RawResponse.parse` gives a
    :class:`~chatapi.ChatStream`."""

    def __init__(self, resource: SyncResource[Any]) -> None:
        self._resource = resource

    def __getattr__(self, name: str) -> Callable[..., RawResponse[Any]]:
        return self._raw_method(name)

    def _raw_method(self, name: str) -> Callable[..., RawResponse[Any]]:
        from ._bridge import SyncMethod

        sync_method = getattr(type(self._resource), name, None)
        target = self._resource._resource
        if not isinstance(sync_method, SyncMethod):
            raise AttributeError(f"{type(self._resource).__name__} has no method {name!r}")
        _method(target, name)  # the same methods as the async namespace
        async_raw = getattr(AsyncRawResponses(target), name)
        loop, adapt = self._resource._loop, sync_method.adapt_result
        signature = sync_method.signature
        qualname = f"{type(self._resource).__name__}.with_raw_response.{name}"

        def raw(*args: Any, **kwargs: Any) -> RawResponse[Any]:
            try:
                # As for the plain sync methods: a wrong argument is reported here, against
                # the sync name, before the call crosses to the loop thread.
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{qualname}() {exc}") from None
            response: RawResponse[Any] = loop.call(partial(async_raw, *args, **kwargs))
            if response._error is not None or adapt is None:
                return response
            return response._replace(adapt(loop, response._result))

        raw.__name__ = name
        raw.__doc__ = sync_method.fn.__doc__
        raw.__signature__ = sync_method.signature.replace(  # type: ignore[attr-defined]
            return_annotation=f"RawResponse[{sync_method.signature.return_annotation}]"
        )
        return raw

    def __dir__(self) -> list[str]:
        return _raw_names(self._resource._resource)

    def __repr__(self) -> str:
        return f"<with_raw_response of {self._resource!r}>"


# -- typed declarations ----------------------------------------------------------------------


class RawMethod(Generic[P, T]):
    """A method of a typed async raw namespace (made by :func:`raw` or :func:`raw_stream`)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __set_name__(self, owner: type[Any], name: str) -> None:
        if name != self.fn.__name__:
            raise TypeError(f"{owner.__qualname__}.{name} must declare {self.fn.__qualname__}")

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> RawMethod[P, T]: ...

    @overload
    def __get__(
        self, instance: AsyncRawResponses, owner: type[Any]
    ) -> Callable[P, Awaitable[RawResponse[T]]]: ...

    def __get__(
        self, instance: AsyncRawResponses | None, owner: type[Any]
    ) -> RawMethod[P, T] | Callable[P, Awaitable[RawResponse[T]]]:
        if instance is None:
            return self
        return instance._raw_method(self.fn.__name__)


def raw(fn: Callable[Concatenate[Any, P], Awaitable[T]]) -> RawMethod[P, T]:
    """Declare the raw twin of an ``async def`` resource method."""
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"raw() takes an async def method, not {fn!r}")
    return RawMethod(fn)


def raw_stream(fn: Callable[Concatenate[Any, P], T]) -> RawMethod[P, T]:
    """Declare the raw twin of a resource method returning a stream."""
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"raw_stream() takes a method returning a stream, not {fn!r}")
    return RawMethod(fn)


class SyncRawMethod(Generic[P, T]):
    """A method of a typed sync raw namespace (made by :func:`sync_raw`)."""

    def __init__(self, method: SyncMethod[P, T]) -> None:
        self.method = method

    def __set_name__(self, owner: type[Any], name: str) -> None:
        if name != self.method.fn.__name__:
            raise TypeError(f"{owner.__qualname__}.{name} must declare {self.method!r}")

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> SyncRawMethod[P, T]: ...

    @overload
    def __get__(
        self, instance: SyncRawResponses, owner: type[Any]
    ) -> Callable[P, RawResponse[T]]: ...

    def __get__(
        self, instance: SyncRawResponses | None, owner: type[Any]
    ) -> SyncRawMethod[P, T] | Callable[P, RawResponse[T]]:
        if instance is None:
            return self
        return instance._raw_method(self.method.fn.__name__)


def sync_raw(method: SyncMethod[P, T]) -> SyncRawMethod[P, T]:
    """Declare the raw twin of a sync resource method (``sync_raw(Chat.send)``)."""
    return SyncRawMethod(method)
