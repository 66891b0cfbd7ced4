"""Running a subcommand's coroutine on an event loop, with Ctrl-C handled."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from ..cli import EXIT_INTERRUPTED

__all__ = ["Interrupted", "on_interrupt", "run", "uncancel"]


class Interrupted(Exception):
    """Ctrl-C ended the operation (after stopping the run on the server)."""


@contextlib.contextmanager
def on_interrupt(callback: Callable[[], object]) -> Iterator[None]:
    """Call ``callback`` on Ctrl-C instead of raising KeyboardInterrupt wherever we are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: callback())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, int]) -> int:
    """Run ``coroutine``; Ctrl-C cancels it (it may clean up, e.g. stop the run) and gives
    exit code 130."""
    task = loop.create_task(coroutine)
    with on_interrupt(lambda: loop.call_soon_threadsafe(task.cancel)):
        try:
            return loop.run_until_complete(task)
        except (asyncio.CancelledError, Interrupted):
            return EXIT_INTERRUPTED


def uncancel() -> None:
    """Forget the cancellation we handled, so that the awaits that follow work normally."""
    task = asyncio.current_task()
    forget = getattr(task, "uncancel", None)
    if forget is not None:
        forget()
