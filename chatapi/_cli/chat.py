"""``chatapi chat``: one question, or a conversation, streamed to the terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import orjson

from .._config import ENV_API_KEY, ENV_USER, Timeout
from ..cli import DEFAULT_USER, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ..client import AsyncChatClient
from ..errors import (
    APIConnectionError,
    APIProtocolError,
    BadRequestError,
    ChatAPIError,
    ConfigurationError,
    IncompleteStreamError,
    StreamError,
)
from ..events import (
    AgentMessageEvent,
    MessageEvent,
    MessageFileEvent,
    MessageReplaceEvent,
    NodeFinishedEvent,
    NodeStartedEvent,
    StreamEvent,
    WorkflowFinishedEvent,
    WorkflowPausedEvent,
    WorkflowStartedEvent,
)
from ..models import ChatCompletion, InputFile
from .running import Interrupted, uncancel
from .running import run as run_interruptible
from .terminal import Prompt, Spinner, markdown_answer

if TYPE_CHECKING:
    from ..testing import FakeChatServer

__all__ = ["ChatSession", "run"]

# Seconds between answer chunks of the embedded fake server: visible streaming, still quick.
FAKE_CHUNK_DELAY = 0.02
STOP_TIMEOUT = 10.0
PAUSED_NOTE = "the run is waiting for a Human Input form (see the API's form endpoints)"
_EXIT_WORDS = frozenset({"exit", "quit"})
_FILE_TYPES = (
    ({"jpg", "jpeg", "png", "gif", "webp", "svg"}, "image"),
    ({"mp3", "m4a", "wav", "webm", "amr", "mpga"}, "audio"),
    ({"mp4", "mov", "mpeg"}, "video"),
    (
        {"txt", "md", "markdown", "mdx", "pdf", "html", "xlsx", "xls", "doc", "docx", "csv"}
        | {"eml", "msg", "pptx", "ppt", "xml", "epub"},
        "document",
    ),
)


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _file_type(path: Path) -> str:
    extension = path.suffix.lower().lstrip(".")
    return next((kind for names, kind in _FILE_TYPES if extension in names), "custom")


class ChatSession:
    """One ``chatapi chat`` invocation: the client (and fake server), the conversation id,
    and how events are shown."""

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.user: str = args.user or os.environ.get(ENV_USER) or DEFAULT_USER
        self.inputs = dict(args.inputs)
        self.conversation_id: str | None = args.conversation
        self.pending_files: list[Path] = list(args.files)
        self.server: FakeChatServer | None = None
        self.client: AsyncChatClient | None = None
        self._line_open = False
        self._progress_breaks_line = out.isatty() and err.isatty()
        self._interactive_err = err.isatty()
        self._markdown = None if args.json or args.plain else markdown_answer(out)

    async def open(self) -> None:
        args = self.args
        api_key = args.api_key
        base_url = args.base_url
        if args.fake:
            from ..testing import FakeChatServer  # only here: the fake is heavy to import

            self.server = FakeChatServer(chunk_delay=FAKE_CHUNK_DELAY)
            await self.server.start()
            base_url = self.server.base_url
            api_key = api_key or self.server.api_key
        timeout = None if args.timeout is None else Timeout(connect=args.timeout, read=args.timeout)
        self.client = AsyncChatClient(
            api_key=api_key, base_url=base_url, user=self.user, timeout=timeout
        )

    async def close(self) -> None:
        if self._markdown is not None:
            self._markdown.finish()  # also shows the cursor again, however the command ends
        if self.client is not None:
            await self.client.aclose()
        if self.server is not None:
            await self.server.stop()

    async def turn(self, query: str) -> int:
        """Ask one question and show the answer; returns the exit code of this turn."""
        client = self.client
        assert client is not None
        spinner = Spinner(self.err, enabled=self._interactive_err)
        try:
            files = [await self._upload(path) for path in self.pending_files]
            self.pending_files = []
            if self.args.blocking:
                spinner.start()
                reply = await client.chat.send(
                    query,
                    inputs=self.inputs,
                    conversation_id=self.conversation_id,
                    files=files or None,
                )
                spinner.stop()
                self._show_reply(reply)
            else:
                await self._stream(query, files, spinner)
        except ChatAPIError as error:
            spinner.stop()
            self._end_line()
            self.error(_describe(error))
            return EXIT_USAGE if isinstance(error, ConfigurationError) else EXIT_FAILED
        finally:
            spinner.stop()
        return EXIT_OK

    async def _upload(self, path: Path) -> InputFile:
        assert self.client is not None
        uploaded = await self.client.files.upload(path)
        return InputFile.local(uploaded.id, type=_file_type(path))

    async def _stream(self, query: str, files: list[InputFile], spinner: Spinner) -> None:
        assert self.client is not None
        stream = self.client.chat.stream(
            query,
            inputs=self.inputs,
            conversation_id=self.conversation_id,
            files=files or None,
        )
        spinner.start()
        try:
            async with stream:
                try:
                    async for event in stream:
                        spinner.stop()
                        self._show_event(event)
                except asyncio.CancelledError:
                    # Ctrl-C: stop the run on the server (the stream is still open, so the
                    # server can end it properly), then leave.
                    uncancel()
                    spinner.stop()
                    self._end_line()
                    with contextlib.suppress(ChatAPIError, asyncio.TimeoutError):
                        await asyncio.wait_for(stream.stop(), STOP_TIMEOUT)
                    self.note("stopped")
                    raise Interrupted from None
        finally:
            self.conversation_id = stream.conversation_id or self.conversation_id
        self._end_line()

    # -- output -------------------------------------------------------------------------

    def _show_reply(self, reply: ChatCompletion) -> None:
        self.conversation_id = reply.conversation_id or self.conversation_id
        if self.args.json:
            self._print_json(reply.raw)
            return
        self._write(reply.answer)
        self._end_line()
        if reply.paused:
            self.note(PAUSED_NOTE)

    def _show_event(self, event: StreamEvent) -> None:
        if self.args.json:
            self._print_json(event.raw)
        elif isinstance(event, (MessageEvent, AgentMessageEvent)):
            self._write(event.answer or "")
        elif isinstance(event, MessageFileEvent) and event.answer and not event.url:
            self._write(event.answer)
        elif isinstance(event, MessageReplaceEvent):
            self._replace(event.answer or "")
        if self.args.show_workflow:
            self._show_progress(event)
        if isinstance(event, WorkflowPausedEvent) and not self.args.json:
            self._end_line()
            self.note(PAUSED_NOTE)

    def _show_progress(self, event: StreamEvent) -> None:
        line = _progress_line(event)
        if line is None:
            return
        if self._markdown is not None:
            self._markdown.finish()
        elif self._line_open and self._progress_breaks_line:
            # Keep progress off the answer's line when both share a terminal; the answer
            # goes on below the progress lines.
            self.out.flush()
            self.err.write("\n")
            self._line_open = False
        self.err.write(line + "\n")
        self.err.flush()

    def _write(self, text: str) -> None:
        if not text:
            return
        if self._markdown is not None:
            self._markdown.write(text)
            return
        self.out.write(text)
        self.out.flush()
        self._line_open = not text.endswith("\n")

    def _replace(self, text: str) -> None:
        if self._markdown is not None and self._markdown.open:
            self._markdown.show(text)
            return
        self._end_line()
        self._write(text)

    def _end_line(self) -> None:
        if self._markdown is not None:
            self._markdown.finish()
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open = False

    def _print_json(self, payload: Any) -> None:
        self.out.write(orjson.dumps(payload).decode() + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.err.write(f"chatapi: {text}\n")
        self.err.flush()

    def error(self, text: str) -> None:
        self.err.write(f"chatapi: error: {_one_line(text)}\n")
        self.err.flush()


def _progress_line(event: StreamEvent) -> str | None:
    if isinstance(event, WorkflowStartedEvent):
        return f"[workflow] started run {event.workflow_run_id}"
    if isinstance(event, NodeStartedEvent) and event.data is not None:
        return f"[node] {event.data.title} ({event.data.node_type}) started"
    if isinstance(event, NodeFinishedEvent) and event.data is not None:
        node = event.data
        return (
            f"[node] {node.title} ({node.node_type}) {node.status} "
            f"in {node.elapsed_time or 0.0:.3f} s"
        )
    if isinstance(event, WorkflowFinishedEvent) and event.data is not None:
        run = event.data
        return (
            f"[workflow] {run.status} in {run.elapsed_time or 0.0:.3f} s, "
            f"{run.total_steps} steps, {run.total_tokens} tokens"
        )
    return None


def _describe(error: ChatAPIError) -> str:
    """The one-line message of a failure."""
    if isinstance(error, BadRequestError) and error.code == "not_chat_app":
        return (
            "this API key belongs to a workflow or completion app, not a chat app: "
            "use `chatapi run --input NAME=VALUE` instead"
        )
    if isinstance(error, StreamError):
        return f"the run failed: {error}"
    if isinstance(error, IncompleteStreamError):
        return f"the answer broke off: {error}"
    if isinstance(error, APIProtocolError):
        return f"the server answered badly: {error}"
    if isinstance(error, APIConnectionError):
        return f"cannot reach the API: {error}"
    return str(error)


S = TypeVar("S", bound="ChatSession")


def run_session(
    args: argparse.Namespace,
    make_session: Callable[[argparse.Namespace, TextIO, TextIO], S],
    body: Callable[[asyncio.AbstractEventLoop, S], int],
) -> int:
    """Check the connection flags, open a session on a new loop, run ``body``, clean up.

    Shared by the commands that talk to an app (``chat``, ``run``), so that their usage
    checks, exit codes and shutdown stay the same.
    """
    err = sys.stderr
    if args.fake and args.base_url:
        err.write("chatapi: error: --fake and --base-url cannot be used together\n")
        return EXIT_USAGE
    if not args.fake and not (args.api_key or os.environ.get(ENV_API_KEY, "").strip()):
        err.write(
            f"chatapi: error: no API key: pass --api-key or set {ENV_API_KEY} (or try --fake)\n"
        )
        return EXIT_USAGE
    session = make_session(args, sys.stdout, err)
    loop = asyncio.new_event_loop()
    try:
        try:
            loop.run_until_complete(session.open())
        except ConfigurationError as error:
            session.error(str(error))
            return EXIT_USAGE
        return body(loop, session)
    finally:
        try:
            loop.run_until_complete(session.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _chat(loop: asyncio.AbstractEventLoop, session: ChatSession) -> int:
    if session.args.query is not None:
        return run_interruptible(loop, session.turn(session.args.query))
    return _conversation(loop, session, sys.stdin)


def run(args: argparse.Namespace) -> int:
    return run_session(args, ChatSession, _chat)


def _conversation(loop: asyncio.AbstractEventLoop, session: ChatSession, lines: TextIO) -> int:
    """Questions from ``lines`` until the end (or ``exit``), in one conversation.

    At a terminal, Ctrl-C during an answer stops it and asks for the next question; Ctrl-C
    or Ctrl-D at the prompt end the conversation, printing its id to continue it later.
    From a script, the first failure or interruption ends the command with its code.
    """
    interactive = lines.isatty()
    prompt = Prompt(lines, session.err)
    if interactive:
        session.note("one question per line; 'exit', Ctrl-D or Ctrl-C to quit")
    while True:
        try:
            query = prompt.read("> " if interactive else "").strip()
        except (EOFError, KeyboardInterrupt):
            if interactive:
                session.err.write("\n")  # the cursor is still on the prompt's line
            return _goodbye(session, interactive)
        if not query:
            continue
        if query.lower() in _EXIT_WORDS:
            return _goodbye(session, interactive)
        code = run_interruptible(loop, session.turn(query))
        if code == EXIT_OK or interactive:
            continue
        return code


def _goodbye(session: ChatSession, interactive: bool) -> int:
    if interactive and session.conversation_id:
        cid = session.conversation_id
        session.note(f"conversation {cid} (continue it with --conversation {cid})")
    return EXIT_OK
