"""Starting over in a child process made by ``os.fork()``.

A forked child inherits the parent's clients but not their threads: a ``ChatClient``'s loop
thread is gone, and the connections of a pool belong to an event loop that never runs there
(gunicorn ``--preload``, Celery prefork, ``multiprocessing``). Objects registered here are
told, in the child, to drop that state and build it again on their next call.

What they drop is kept here for the life of the child and never closed or collected: the
sockets and the epoll set behind it are shared with the parent, and closing a transport would
deregister the parent's socket from the parent's own selector.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Protocol

__all__ = ["keep_inherited", "on_fork_in_child", "register"]


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_registered: weakref.WeakSet[ForkAware] = weakref.WeakSet()
_module_resets: list[Callable[[], None]] = []
_inherited: list[object] = []


def on_fork_in_child(reset: Callable[[], None]) -> None:
    """Call ``reset()`` in every forked child (for module state), before the objects'."""
    _module_resets.append(reset)


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked while ``obj`` lives."""
    _registered.add(obj)


def keep_inherited(*objects: object) -> None:
    """Hold the parent's ``objects`` for the life of the child, untouched."""
    _inherited.extend(obj for obj in objects if obj is not None)


def _after_fork_in_child() -> None:
    for reset in _module_resets:
        reset()
    for obj in list(_registered):
        obj._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)
