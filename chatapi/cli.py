"""The ``chatapi`` command: chat with a Dify app from a terminal, or serve the fake API.

``chatapi chat "question"`` streams the answer; without a question it reads one question
per line and keeps the conversation. ``--fake`` answers from an embedded
:class:`~chatapi.testing.FakeChatServer`, so the command works with nothing else running.
``chatapi fake-server`` serves that fake API for other programs. ``chatapi load`` runs a
load test (its code lives in :mod:`chatapi.load`).

Exit codes: 0 done, 1 the API or the connection failed, 2 bad usage or configuration,
130 interrupted (Ctrl-C; a streamed run is stopped on the server first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs
import orjson

from ._config import ENV_API_KEY, ENV_USER
from ._version import __version__
from .client import AsyncChatClient
from .errors import (
    APIConnectionError,
    APIProtocolError,
    BadRequestError,
    ChatAPIError,
    ConfigurationError,
    IncompleteStreamError,
    StreamError,
)
from .events import (
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
from .load._cli import add_fake_server_options, add_load_parser, fake_server_settings
from .models import ChatCompletion, InputFile
from .testing import FakeChatServer

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_USER = "chatapi-cli"
# Seconds between answer chunks of the embedded fake server: visible streaming, still quick.
FAKE_CHUNK_DELAY = 0.02
STOP_TIMEOUT = 10.0
_EXIT_WORDS = frozenset({"exit", "quit"})
_FILE_TYPES = (
    ({"jpg", "jpeg", "png", "gif", "webp", "svg"}, "image"),
    ({"mp3", "m4a", "wav", "webm", "amr", "mpga"}, "audio"),
    ({"mp4", "mov", "mpeg"}, "video"),
    (
        {
            "txt",
            "md",
            "markdown",
            "mdx",
            "pdf",
            "html",
            "xlsx",
            "xls",
            "doc",
            "docx",
            "csv",
            "eml",
            "msg",
            "pptx",
            "ppt",
            "xml",
            "epub",
        },
        "document",
    ),
)


class Interrupted(Exception):
    """Ctrl-C ended the command (after stopping the run on the server)."""


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _readable_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _file_type(path: Path) -> str:
    extension = path.suffix.lower().lstrip(".")
    return next((kind for names, kind in _FILE_TYPES if extension in names), "custom")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``chatapi`` command."""
    parser = argparse.ArgumentParser(
        prog="chatapi",
        description="Chat with a Dify chat app (Chatflow, chatbot or agent) from a terminal.",
    )
    parser.add_argument("--version", action="version", version=f"chatapi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser(
        "chat",
        help="ask a question and stream the answer (no question: a conversation)",
        description=(
            "Ask QUERY and print the answer as it streams. Without QUERY, read one question "
            "per line from standard input and keep the conversation going, until an empty "
            "input, 'exit' or end of input. Settings not given come from DIFY_API_KEY, "
            "DIFY_BASE_URL and DIFY_USER."
        ),
    )
    chat.add_argument("query", nargs="?", help="the question (leave out for a conversation)")
    chat.add_argument("--user", help=f"end-user id (default: ${ENV_USER}, else {DEFAULT_USER})")
    chat.add_argument(
        "--input",
        dest="inputs",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="an input variable of the app (repeatable)",
    )
    chat.add_argument(
        "--file",
        dest="files",
        action="append",
        type=_readable_file,
        default=[],
        metavar="PATH",
        help="upload a file and attach it to the (first) question (repeatable)",
    )
    chat.add_argument("--conversation", metavar="ID", help="continue this conversation")
    chat.add_argument(
        "--blocking", action="store_true", help="wait for the whole answer instead of streaming"
    )
    chat.add_argument(
        "--json",
        action="store_true",
        help="print each event as one line of JSON (in blocking mode: the answer)",
    )
    chat.add_argument(
        "--show-workflow",
        action="store_true",
        help="show workflow and node progress, with timings, on standard error",
    )
    chat.add_argument("--base-url", help="API root (default: $DIFY_BASE_URL or Dify Cloud)")
    chat.add_argument("--api-key", help=f"the app's API key (default: ${ENV_API_KEY})")
    chat.add_argument(
        "--fake",
        action="store_true",
        help="answer from an embedded fake server (no Dify and no key needed)",
    )
    chat.set_defaults(run=_chat_command)

    serve = commands.add_parser(
        "fake-server",
        help="serve the fake Dify API until interrupted",
        description=(
            "Serve the fake Dify chat API of chatapi.testing.FakeChatServer until Ctrl-C. "
            "The first line on standard output is its base URL."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=5001, help="port (0: any free port)")
    serve.add_argument(
        "--mode",
        default="advanced-chat",
        choices=("advanced-chat", "chat", "agent-chat", "workflow", "completion"),
        help="the app mode to play",
    )
    serve.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help="accept only this key (repeatable; default: any key)",
    )
    serve.add_argument(
        "--chunk-delay", type=float, default=0.0, help="seconds between answer chunks"
    )
    serve.add_argument(
        "--ping-interval", type=float, default=10.0, help="seconds of silence between pings"
    )
    add_fake_server_options(serve)
    serve.set_defaults(run=_serve_command)

    from .cli_run import add_run_command  # it builds on this module

    add_run_command(commands)
    add_load_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``chatapi`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output stopped reading (``| head``): end quietly, and keep the
        # interpreter's final flush from failing on the closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


# -- running coroutines with Ctrl-C handled ------------------------------------------------


@contextlib.contextmanager
def _on_interrupt(callback: Callable[[], object]) -> Iterator[None]:
    """Call ``callback`` on Ctrl-C instead of raising KeyboardInterrupt wherever we are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: callback())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, int]) -> int:
    """Run ``coroutine``; Ctrl-C cancels it (it may clean up, e.g. stop the run)."""
    task = loop.create_task(coroutine)
    with _on_interrupt(lambda: loop.call_soon_threadsafe(task.cancel)):
        try:
            return loop.run_until_complete(task)
        except (asyncio.CancelledError, Interrupted):
            return EXIT_INTERRUPTED


def _uncancel() -> None:
    """Forget the cancellation we handled, so that the awaits that follow work normally."""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


# -- chat ----------------------------------------------------------------------------------


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

    async def open(self) -> None:
        args = self.args
        api_key = args.api_key
        base_url = args.base_url
        if args.fake:
            self.server = FakeChatServer(chunk_delay=FAKE_CHUNK_DELAY)
            await self.server.start()
            base_url = self.server.base_url
            api_key = api_key or self.server.api_key
        self.client = AsyncChatClient(api_key=api_key, base_url=base_url, user=self.user)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.server is not None:
            await self.server.stop()

    async def turn(self, query: str) -> int:
        """Ask one question and show the answer; returns the exit code of this turn."""
        client = self.client
        assert client is not None
        try:
            files = [await self._upload(path) for path in self.pending_files]
            self.pending_files = []
            if self.args.blocking:
                reply = await client.chat.send(
                    query,
                    inputs=self.inputs,
                    conversation_id=self.conversation_id,
                    files=files or None,
                )
                self._show_reply(reply)
            else:
                await self._stream(query, files)
        except ChatAPIError as error:
            self._end_line()
            self.error(_describe(error))
            return EXIT_USAGE if isinstance(error, ConfigurationError) else EXIT_FAILED
        return EXIT_OK

    async def _upload(self, path: Path) -> InputFile:
        assert self.client is not None
        uploaded = await self.client.files.upload(path)
        return InputFile.local(uploaded.id, type=_file_type(path))

    async def _stream(self, query: str, files: list[InputFile]) -> None:
        assert self.client is not None
        stream = self.client.chat.stream(
            query,
            inputs=self.inputs,
            conversation_id=self.conversation_id,
            files=files or None,
        )
        try:
            async with stream:
                try:
                    async for event in stream:
                        self._show_event(event)
                except asyncio.CancelledError:
                    # Ctrl-C: stop the run on the server (the stream is still open, so the
                    # server can end it properly), then leave.
                    _uncancel()
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
            self.note("the run is waiting for a Human Input form (see the API's form endpoints)")

    def _show_event(self, event: StreamEvent) -> None:
        if self.args.json:
            self._print_json(event.raw)
        elif isinstance(event, (MessageEvent, AgentMessageEvent)):
            self._write(event.answer or "")
        elif isinstance(event, MessageFileEvent) and event.answer and not event.url:
            self._write(event.answer)
        elif isinstance(event, MessageReplaceEvent):
            self._end_line()
            self._write(event.answer or "")
        if self.args.show_workflow:
            self._show_progress(event)
        if isinstance(event, WorkflowPausedEvent) and not self.args.json:
            self._end_line()
            self.note("the run is waiting for a Human Input form (see the API's form endpoints)")

    def _show_progress(self, event: StreamEvent) -> None:
        line: str | None = None
        if isinstance(event, WorkflowStartedEvent):
            line = f"[workflow] started run {event.workflow_run_id}"
        elif isinstance(event, NodeStartedEvent) and event.data is not None:
            line = f"[node] {event.data.title} ({event.data.node_type}) started"
        elif isinstance(event, NodeFinishedEvent) and event.data is not None:
            node = event.data
            line = (
                f"[node] {node.title} ({node.node_type}) {node.status} "
                f"in {node.elapsed_time or 0.0:.3f} s"
            )
        elif isinstance(event, WorkflowFinishedEvent) and event.data is not None:
            run = event.data
            line = (
                f"[workflow] {run.status} in {run.elapsed_time or 0.0:.3f} s, "
                f"{run.total_steps} steps, {run.total_tokens} tokens"
            )
        if line is not None:
            if self._line_open and self._progress_breaks_line:
                # Keep progress off the answer's line when both share a terminal.
                self.out.flush()
                self.err.write("\n")
            self.err.write(line + "\n")
            self.err.flush()

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self._line_open = not text.endswith("\n")

    def _end_line(self) -> None:
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


def _chat_command(args: argparse.Namespace) -> int:
    err = sys.stderr
    if args.fake and args.base_url:
        err.write("chatapi: error: --fake and --base-url cannot be used together\n")
        return EXIT_USAGE
    if not args.fake and not (args.api_key or os.environ.get(ENV_API_KEY, "").strip()):
        err.write(
            f"chatapi: error: no API key: pass --api-key or set {ENV_API_KEY} (or try --fake)\n"
        )
        return EXIT_USAGE
    session = ChatSession(args, sys.stdout, err)
    loop = asyncio.new_event_loop()
    try:
        try:
            loop.run_until_complete(session.open())
        except ConfigurationError as error:
            session.error(str(error))
            return EXIT_USAGE
        if args.query is not None:
            return _run(loop, session.turn(args.query))
        return _conversation(loop, session, sys.stdin)
    finally:
        try:
            loop.run_until_complete(session.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _conversation(loop: asyncio.AbstractEventLoop, session: ChatSession, lines: TextIO) -> int:
    """Questions from ``lines`` until the end (or ``exit``), in one conversation."""
    interactive = lines.isatty()
    if interactive:
        session.note("one question per line; 'exit' or Ctrl-D to quit")
    while True:
        if interactive:
            session.err.write("> ")
            session.err.flush()
        line = lines.readline()
        if not line:
            return EXIT_OK
        query = line.strip()
        if not query:
            continue
        if query.lower() in _EXIT_WORDS:
            return EXIT_OK
        code = _run(loop, session.turn(query))
        # At a terminal a failed turn is shown and the conversation goes on; a script's
        # input stops at the first failure.
        if code == EXIT_INTERRUPTED or (code != EXIT_OK and not interactive):
            return code


# -- fake-server ---------------------------------------------------------------------------


def _serve_command(args: argparse.Namespace) -> int:
    try:
        server = FakeChatServer(
            api_key=args.api_keys,
            host=args.host,
            port=args.port,
            mode=args.mode,
            chunk_delay=args.chunk_delay,
            ping_interval=args.ping_interval,
            load=(load := fake_server_settings(args)),
        )
    except (TypeError, ValueError) as error:
        sys.stderr.write(f"chatapi: error: {error}\n")
        return EXIT_USAGE
    # A load target would spend its time logging every request.
    logging.basicConfig(
        level=logging.INFO if load is None else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    loop = asyncio.new_event_loop()
    try:
        return _run(loop, _serve(server, any_key=not args.api_keys))
    finally:
        try:
            loop.run_until_complete(server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            if load is not None:
                counts = attrs.asdict(server.stream_counts())
                sys.stdout.write(orjson.dumps({"stream_counts": counts}).decode() + "\n")
                sys.stdout.flush()


async def _serve(server: FakeChatServer, *, any_key: bool) -> int:
    try:
        await server.start()
    except OSError as error:
        sys.stderr.write(f"chatapi: error: cannot listen: {error}\n")
        return EXIT_FAILED
    sys.stdout.write(server.base_url + "\n")
    sys.stdout.flush()
    keys = "any API key" if any_key else "the given API keys"
    sys.stderr.write(f"chatapi: fake Dify API ({server.mode}, {keys}); Ctrl-C to stop\n")
    sys.stderr.flush()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        sys.stderr.write("chatapi: stopped\n")
    return EXIT_OK
