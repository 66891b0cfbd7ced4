"""What the command does differently at a terminal: a spinner while the server thinks,
line editing and history at the prompt, and answers rendered as Markdown."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any, TextIO

__all__ = ["MarkdownAnswer", "Prompt", "Spinner", "markdown_answer"]

SPINNER_FRAMES = "|/-\\"
SPINNER_INTERVAL = 0.1
# Redraws of a Markdown answer per second at most; each redraw renders the whole answer.
MARKDOWN_REFRESH = 0.08


class Spinner:
    """``| waiting 1.2 s`` on stderr, redrawn until :meth:`stop`; nothing unless enabled."""

    def __init__(self, err: TextIO, *, enabled: bool, label: str = "waiting") -> None:
        self._err = err
        self._enabled = enabled
        self._label = label
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._spin())

    async def _spin(self) -> None:
        started = time.monotonic()
        frame = 0
        while True:
            elapsed = time.monotonic() - started
            symbol = SPINNER_FRAMES[frame % len(SPINNER_FRAMES)]
            self._err.write(f"\r{symbol} {self._label} {elapsed:.1f} s")
            self._err.flush()
            frame += 1
            await asyncio.sleep(SPINNER_INTERVAL)

    def stop(self) -> None:
        """Stop and erase the spinner; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self._err.write("\r\x1b[K")
            self._err.flush()


class Prompt:
    """Reads the questions of a conversation. At a terminal, ``input()`` with readline gives
    line editing (arrow keys move the cursor instead of typing escape codes) and the
    history of the session's questions (up and down arrows)."""

    def __init__(self, stdin: TextIO, err: TextIO) -> None:
        self._stdin = stdin
        self._err = err
        # input() edits lines only when both standard streams are the terminal.
        self._editing = stdin is sys.stdin and sys.stdin.isatty() and sys.stdout.isatty()
        if self._editing:
            # Loading readline is what enables editing in input(); some builds lack it.
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401

    def read(self, prompt: str) -> str:
        """The next line, without its newline; raises EOFError at the end of input and
        KeyboardInterrupt on Ctrl-C."""
        if self._editing:
            return input(prompt)
        if prompt:
            self._err.write(prompt)
            self._err.flush()
        line = self._stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")


class MarkdownAnswer:
    """An answer rendered as Markdown at the terminal as it streams (with Rich).

    Rich redraws the whole answer in place on each refresh; redraws are spaced by
    :data:`MARKDOWN_REFRESH` and the last one is made by :meth:`finish`.
    """

    def __init__(self, out: TextIO, rich: Any) -> None:
        self._console = rich.console.Console(file=out)
        self._markdown = rich.markdown.Markdown
        self._live_class = rich.live.Live
        self._live: Any = None
        self._text = ""
        self._drawn_at = 0.0

    def write(self, text: str) -> None:
        self.show(self._text + text)

    def show(self, text: str) -> None:
        """Show ``text`` as the whole answer (e.g. after ``message_replace``)."""
        self._text = text
        if self._live is None:
            self._live = self._live_class(
                self._markdown(text),
                console=self._console,
                auto_refresh=False,  # no refresh thread: redraws happen here
                vertical_overflow="visible",
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
            self._drawn_at = time.monotonic()
            return
        now = time.monotonic()
        refresh = now - self._drawn_at >= MARKDOWN_REFRESH
        self._live.update(self._markdown(text), refresh=refresh)
        if refresh:
            self._drawn_at = now

    @property
    def open(self) -> bool:
        return self._live is not None

    def finish(self) -> None:
        """Draw the answer as it ends and leave it on the screen; the next text starts a new
        block."""
        live, self._live = self._live, None
        if live is not None:
            live.update(self._markdown(self._text), refresh=True)
            live.stop()
        self._text = ""


def markdown_answer(out: TextIO) -> MarkdownAnswer | None:
    """A Markdown renderer for ``out`` when it is a terminal and Rich is installed
    (``pip install 'chatapi[cli]'``); otherwise None: answers are printed as they come."""
    if not out.isatty():
        return None
    try:
        import rich.console
        import rich.live
        import rich.markdown
    except ImportError:
        return None
    return MarkdownAnswer(out, rich)
