"""The generic sync bridge: an event loop in a daemon thread, and sync twins of async methods.

:class:`LoopThread` runs one event loop in a daemon thread through anyio's blocking portal.
It starts on the first call and stops in :meth:`LoopThread.close` (also at interpreter exit,
from an ``atexit`` hook). Every call made through it can be
called off: when the calling thread is interrupted (``KeyboardInterrupt``) the task on the
loop is cancelled and waited for, so nothing keeps running behind the caller's back; when the
loop is closed, calls still running are cut off and their callers get a clear error.

:func:`bridge` and :func:`bridge_iter` turn a method of an async resource class into a typed
descriptor of the sync resource class (``ParamSpec`` keeps the parameters), so that each
endpoint is written once, in its async form::

    class Messages(SyncResource[AsyncMessages]):
        list = bridge(AsyncMessages.list)        # async def        -> blocking call
        iter = bridge_iter(AsyncMessages.iter)   # async generator  -> iterator
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import inspect
import threading
import typing
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from functools import partial
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from . import _fork
from .errors import APIConnectionError, ConfigurationError

__all__ = ["LoopThread", "SyncMethod", "SyncResource", "bridge", "bridge_iter"]

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")

# How long close() gives the shutdown hooks (closing streams and the HTTP session) before it
# cancels them, and how long an interrupted caller waits for its cancelled task to unwind.
# Both only bound a misbehaving shutdown; a healthy one takes milliseconds.
SHUTDOWN_GRACE = 5.0
CANCEL_WAIT = 5.0

CLOSED_MESSAGE = "the client is closed; create a new one"


class Dependent(Protocol):
    """Something tied to a loop (a stream) that must be ended when the loop is closed."""

    def _loop_closed(self) -> None: ...


class _Call:
    """One function run on the loop for a caller thread, and what is needed to call it off.

    Every field except ``fn`` is read and written on the loop thread only.
    """

    __slots__ = ("cancelled", "completed", "cut_off", "finished", "fn", "scope")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.scope: anyio.CancelScope | None = None
        self.cancelled = False
        self.completed = False
        self.cut_off = False
        self.finished: threading.Event | None = None


def _name_loop_thread(name: str) -> int:
    thread = threading.current_thread()
    thread.name = f"{name}-{thread.ident}"
    return threading.get_ident()


class LoopThread:
    """An event loop in a daemon thread, reached through an anyio blocking portal.

    Thread-safe: any number of threads may call through it at once. ``on_close`` runs on the
    loop when it is closed (the owner's async cleanup, e.g. closing an HTTP session).
    """

    def __init__(self, *, name: str, on_close: Callable[[], Awaitable[None]]) -> None:
        self._name = name
        self._on_close = on_close
        self._lifecycle = threading.Lock()
        self._portal_cm: contextlib.AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._thread_id: int | None = None
        self._closed = False
        self._calls: set[_Call] = set()
        self._dependents_lock = threading.Lock()
        self._dependents: weakref.WeakSet[Dependent] = weakref.WeakSet()
        _fork.register(self)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def started(self) -> bool:
        return self._portal is not None

    def in_loop_thread(self) -> bool:
        """True on the loop's own thread, where blocking on the loop would deadlock."""
        return self._thread_id is not None and threading.get_ident() == self._thread_id

    def attach(self, dependent: Dependent) -> None:
        """End ``dependent`` (on the loop) when the loop is closed; held weakly."""
        with self._dependents_lock:
            self._dependents.add(dependent)

    def _after_fork_in_child(self) -> None:
        """In a forked child: the loop thread did not come along; start a new one on the
        next call. Streams of the parent cannot be continued here and are forgotten."""
        _fork.keep_inherited(self._portal, self._portal_cm, self._calls, self._dependents)
        self._lifecycle = threading.Lock()  # another thread may have held it at the fork
        self._portal = None
        self._portal_cm = None
        self._thread_id = None
        self._calls = set()
        self._dependents_lock = threading.Lock()
        self._dependents = weakref.WeakSet()

    def _start(self) -> BlockingPortal:
        portal = self._portal
        if portal is not None and not self._closed:
            return portal
        with self._lifecycle:
            if self._closed:
                raise ConfigurationError(CLOSED_MESSAGE)
            if self._portal is None:
                cm = start_blocking_portal()
                portal = cm.__enter__()
                self._portal_cm = cm
                self._portal = portal
                _register(self)
                self._thread_id = portal.call(_name_loop_thread, self._name)
            return self._portal

    @overload
    def call(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        cut_off: Callable[[], BaseException] | None = None,
    ) -> T: ...

    @overload
    def call(
        self, fn: Callable[[], T], *, cut_off: Callable[[], BaseException] | None = None
    ) -> T: ...

    def call(
        self, fn: Callable[[], Any], *, cut_off: Callable[[], BaseException] | None = None
    ) -> Any:
        """Run ``fn()`` on the loop (awaiting its result if awaitable) and return the result.

        Exceptions come back as they were raised. A call cut off by :meth:`close` raises
        ``cut_off()`` (default: :class:`APIConnectionError`); a call on a closed loop raises
        :class:`ConfigurationError`.
        """
        portal = self._start()
        call = _Call(fn)
        try:
            future = portal.start_task_soon(self._run, call)
        except RuntimeError:
            if self._closed:  # close() stopped the portal since _start()
                raise ConfigurationError(CLOSED_MESSAGE) from None
            raise
        except BaseException:  # interrupted while the task was being spawned
            self._call_off(portal, call)
            raise
        try:
            result = future.result()
        except concurrent.futures.CancelledError:
            # Only close() cancels tasks behind their callers' backs.
            raise self._cut_off_error(cut_off) from None
        except BaseException as exc:
            if not future.done():  # the caller was interrupted, not the call
                self._call_off(portal, call)
                raise
            if call.cut_off:
                raise self._cut_off_error(cut_off) from exc
            raise
        if call.cut_off and not call.completed:
            raise self._cut_off_error(cut_off)
        return result

    @staticmethod
    def _cut_off_error(cut_off: Callable[[], BaseException] | None) -> BaseException:
        if cut_off is not None:
            return cut_off()
        return APIConnectionError("the call was cut off: its client was closed while it ran")

    async def _run(self, call: _Call) -> Any:
        if call.cancelled:
            return None
        if self._closed:
            call.cut_off = True
            return None
        self._calls.add(call)
        try:
            with anyio.CancelScope() as scope:
                call.scope = scope
                result = call.fn()
                if inspect.isawaitable(result):
                    result = await result
                call.completed = True  # a result that beat close() is still delivered
                return result
            return None  # cancelled through call.scope: the caller gave up or close() cut in
        finally:
            call.scope = None
            self._calls.discard(call)
            if call.finished is not None:
                call.finished.set()

    def _call_off(self, portal: BlockingPortal, call: _Call) -> None:
        """Cancel a call whose caller was interrupted, and wait until its task has unwound."""
        try:
            finished = portal.call(_cancel_call, call)
        except RuntimeError:  # the portal is gone, and its tasks with it
            return
        if finished is not None:
            finished.wait(CANCEL_WAIT)

    def close(self) -> None:
        """Cut off running calls, end dependents, run ``on_close``, stop the loop, join it.

        Idempotent and thread-safe; later calls raise :class:`ConfigurationError`.
        """
        with self._lifecycle:
            if self._closed:
                return
            self._closed = True
            _unregister(self)
            portal, cm = self._portal, self._portal_cm
            if portal is None or cm is None:
                return
            try:
                portal.call(self._shutdown)
            finally:
                self._portal = None
                self._portal_cm = None
                with contextlib.suppress(RuntimeError):
                    portal.call(portal.stop, True)
                cm.__exit__(None, None, None)

    async def _shutdown(self) -> None:
        for call in list(self._calls):
            call.cut_off = True
            if call.scope is not None:
                call.scope.cancel()
        with self._dependents_lock:
            dependents = list(self._dependents)
            self._dependents.clear()
        for dependent in dependents:
            dependent._loop_closed()
        with anyio.move_on_after(SHUTDOWN_GRACE):
            await self._on_close()

    def cleanup(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run an async cleanup on the loop from a finalizer (a generator being closed).

        Does nothing when the loop is closed (closing it cleaned up already) or when called
        on the loop thread itself (garbage collection can run there; blocking would deadlock).
        """
        if self._closed or self.in_loop_thread():
            return
        with contextlib.suppress(ConfigurationError):
            self.call(fn)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("running" if self.started else "not started")
        return f"<LoopThread {self._name} {state}>"


def _cancel_call(call: _Call) -> threading.Event | None:
    """On the loop: call ``call`` off; the event to wait for if its task is still running."""
    call.cancelled = True
    if call.scope is None:
        return None
    call.finished = threading.Event()
    call.scope.cancel()
    return call.finished


# Loops still running, for the atexit hook. Held strongly: a client dropped without close()
# leaves its loop thread (a daemon) running, and its session is still closed at exit. A
# loop refers to its async client only, never to the ChatClient, which stays collectable.
_running_lock = threading.Lock()
_running: set[LoopThread] = set()


def _register(loop: LoopThread) -> None:
    with _running_lock:
        _running.add(loop)


def _unregister(loop: LoopThread) -> None:
    with _running_lock:
        _running.discard(loop)


def _forget_running_loops() -> None:
    # In a forked child the parent's loop threads do not exist; nothing is left to close.
    global _running_lock
    _running_lock = threading.Lock()
    _running.clear()


_fork.on_fork_in_child(_forget_running_loops)


@atexit.register
def _close_running_loops() -> None:
    # The loop threads are daemons, so the interpreter would not wait for them anyway; closing
    # them here lets their connections shut down cleanly instead of being dropped mid-write.
    with _running_lock:
        loops = list(_running)
    for loop in loops:
        loop.close()


# -- typed sync twins of async resource methods ----------------------------------------------


class SyncResource(Generic[R]):
    """Base of a sync resource namespace: wraps the async resource ``R`` of the same name.

    A subclass names its async class as the type argument (``SyncResource[AsyncChat]``); it
    takes that class's docstring, and may only bridge methods defined on that class.
    """

    _async_class: type[Any] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        bases = [b for b in getattr(cls, "__orig_bases__", ()) if typing.get_origin(b)]
        args = typing.get_args(bases[0]) if bases else ()
        if not args or not isinstance(args[0], type):
            raise TypeError(f"{cls.__qualname__} must subclass SyncResource[AsyncSomething]")
        async_class = args[0]
        cls._async_class = async_class
        if cls.__doc__ is None:
            cls.__doc__ = async_class.__doc__
        for name, value in vars(cls).items():
            if isinstance(value, SyncMethod) and getattr(async_class, name, None) is not value.fn:
                raise TypeError(
                    f"{cls.__qualname__}.{name} must bridge {async_class.__qualname__}.{name}, "
                    f"not {value.fn.__qualname__}"
                )

    def __init__(self, resource: R, loop: LoopThread) -> None:
        self._resource = resource
        self._loop = loop

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._resource!r}>"


Adapter = Callable[[LoopThread, Callable[[], Any]], Any]


class SyncMethod(Generic[P, T]):
    """A method of a sync resource class, derived from a method of the async one.

    Read from an instance it is a function with the async method's name, parameters and
    docstring, and ``T`` as return type; :func:`bridge` and its siblings create it.
    """

    def __init__(self, fn: Callable[..., Any], adapt: Adapter, returns: object) -> None:
        self.fn = fn
        self._adapt = adapt
        signature = inspect.signature(fn)
        parameters = list(signature.parameters.values())[1:]  # without ``self``
        self.signature = signature.replace(parameters=parameters, return_annotation=returns)
        self._name = fn.__name__
        self._qualname = fn.__qualname__

    def __set_name__(self, owner: type[Any], name: str) -> None:
        # SyncResource.__init_subclass__ checks that ``name`` is the async method's name.
        self._qualname = f"{owner.__qualname__}.{name}"

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> SyncMethod[P, T]: ...

    @overload
    def __get__(self, instance: SyncResource[Any], owner: type[Any]) -> Callable[P, T]: ...

    def __get__(
        self, instance: SyncResource[Any] | None, owner: type[Any]
    ) -> SyncMethod[P, T] | Callable[P, T]:
        if instance is None:
            return self
        method = self._bind(instance)
        # Bound once per resource: the instance attribute shadows this (non-data) descriptor.
        instance.__dict__[self._name] = method
        return method

    def _bind(self, resource: SyncResource[Any]) -> Callable[P, T]:
        fn, adapt = self.fn, self._adapt
        target, loop = resource._resource, resource._loop
        signature, qualname = self.signature, self._qualname

        def method(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                # Checked here, on the caller's thread, so that a wrong argument is reported
                # against the sync method, not the async one it runs on the loop.
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{qualname}() {exc}") from None
            return adapt(loop, partial(fn, target, *args, **kwargs))  # type: ignore[no-any-return]

        method.__name__ = self._name
        method.__qualname__ = self._qualname
        method.__doc__ = self.fn.__doc__
        method.__module__ = type(resource).__module__
        method.__signature__ = self.signature  # type: ignore[attr-defined]
        return method

    def __repr__(self) -> str:
        return f"<sync method {self._qualname}{self.signature}>"


def _call(loop: LoopThread, fn: Callable[[], Awaitable[Any]]) -> Any:
    return loop.call(fn)


def bridge(fn: Callable[Concatenate[Any, P], Awaitable[T]]) -> SyncMethod[P, T]:
    """The sync twin of an ``async def`` resource method: it blocks and returns the value."""
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"bridge() takes an async def method, not {fn!r}")
    return SyncMethod(fn, _call, inspect.signature(fn).return_annotation)


def iterate(loop: LoopThread, make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    """Iterate, from a caller thread, the async iterator that ``make()`` creates on the loop.

    One call per item: the iterators bridged this way page through an API, so each item is
    cheap next to the request that fetched its page. Leaving early closes the async iterator.
    """
    iterator = loop.call(make)
    pull = iterator.__anext__
    exhausted = False
    try:
        while True:
            try:
                item = loop.call(pull)
            except StopAsyncIteration:
                exhausted = True
                return
            yield item
    finally:
        close = getattr(iterator, "aclose", None)
        if not exhausted and close is not None:
            loop.cleanup(close)


def _sync_iterator_annotation(annotation: object) -> object:
    """``AsyncIterator[X]`` becomes ``Iterator[X]``, as a string if it was one."""
    if isinstance(annotation, str):
        prefix = "AsyncIterator["
        return annotation[len("Async") :] if annotation.startswith(prefix) else "Iterator"
    args = typing.get_args(annotation)
    return Iterator[args[0]] if len(args) == 1 else Iterator[Any]  # type: ignore[valid-type]


def bridge_iter(fn: Callable[Concatenate[Any, P], AsyncIterator[T]]) -> SyncMethod[P, Iterator[T]]:
    """The sync twin of an async generator resource method: it returns an iterator."""
    if not inspect.isasyncgenfunction(fn):
        raise TypeError(f"bridge_iter() takes an async generator method, not {fn!r}")
    returns = _sync_iterator_annotation(inspect.signature(fn).return_annotation)
    return SyncMethod(fn, iterate, returns)
