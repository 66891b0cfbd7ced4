"""The ``chatapi`` command: chat with a Dify app from a terminal, or serve the fake API.

``chatapi chat "question"`` streams the answer; without a question it reads one question
per line and keeps the conversation. ``--fake`` answers from an embedded
:class:`~chatapi.testing.FakeChatServer`, so the command works with nothing else running.
``chatapi fake-server`` serves that fake API for other programs. ``chatapi load`` runs a
load test (its code lives in :mod:`chatapi.load`).

Exit codes: 0 done (also when a reader such as ``| head`` stopped reading), 1 the API or
the connection failed, 2 bad usage or configuration, 130 interrupted (Ctrl-C; a streamed
run is stopped on the server first). In a conversation at a terminal, Ctrl-C during an
answer stops that answer and returns to the prompt; Ctrl-C or Ctrl-D at the prompt ends the
conversation (exit 0) after printing its id.

Starting fast: ``chatapi --version`` and ``chatapi --help`` import nothing but this module,
and a subcommand imports only what it uses. Each subcommand is a :class:`Subcommand` in
:data:`SUBCOMMANDS`: its name, its one-line help, and the function that adds its parser
(``add(commands)``, given as ``"module:function"``), which is imported only when that
subcommand is the one being run (or asked for ``--help``). Its ``run`` default (in
``set_defaults``) is the function that runs it, or a ``"module:function"`` string.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ._version import __version__

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_USER = "chatapi-cli"

Commands = Any  # argparse's private _SubParsersAction[ArgumentParser]


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def add_chat(commands: Commands) -> None:
    chat = commands.add_parser(
        "chat",
        help=CHAT_HELP,
        description=(
            "Ask QUERY and print the answer as it streams. Without QUERY, read one question "
            "per line from standard input and keep the conversation going, until an empty "
            "input, 'exit' or end of input. Settings not given come from DIFY_API_KEY, "
            "DIFY_BASE_URL and DIFY_USER."
        ),
    )
    chat.add_argument("query", nargs="?", help="the question (leave out for a conversation)")
    chat.add_argument("--user", help=f"end-user id (default: $DIFY_USER, else {DEFAULT_USER})")
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
    chat.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="give up when the server stays silent this long: connecting, waiting for the "
        "answer, between parts of it (default: 10 s to connect, 60 s of silence)",
    )
    chat.add_argument(
        "--plain",
        action="store_true",
        help="print answers as plain text (default at a terminal with chatapi[cli] installed: "
        "render Markdown)",
    )
    chat.add_argument("--base-url", help="API root (default: $DIFY_BASE_URL or Dify Cloud)")
    chat.add_argument("--api-key", help="the app's API key (default: $DIFY_API_KEY)")
    chat.add_argument(
        "--fake",
        action="store_true",
        help="answer from an embedded fake server (no Dify and no key needed)",
    )
    chat.set_defaults(run="chatapi._cli.chat:run")


def add_fake_server(commands: Commands) -> None:
    serve = commands.add_parser(
        "fake-server",
        help=FAKE_SERVER_HELP,
        description=(
            "Serve the fake Dify chat API of chatapi.testing.FakeChatServer until Ctrl-C "
            "(exit status 130). The first line on standard output is its base URL."
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
    # The load-target options live with the load engine (imported only for fake-server).
    from .load._cli import add_fake_server_options

    add_fake_server_options(serve)
    serve.set_defaults(run="chatapi._cli.serve:run")


class Subcommand(NamedTuple):
    """A subcommand of ``chatapi``: its name, its line in ``chatapi --help``, and the
    function (or ``"module:function"``) adding its parser to the subcommands."""

    name: str
    help: str
    add: str | Callable[[Commands], None]


CHAT_HELP = "ask a question and stream the answer (no question: a conversation)"
FAKE_SERVER_HELP = "serve the fake Dify API until interrupted"
RUN_HELP = "run a workflow app (or a completion app) with inputs and stream its output"
LOAD_HELP = "load-test a Dify chat app with many concurrent streams"

# The subcommands, in the order of ``chatapi --help``.
SUBCOMMANDS: list[Subcommand] = [
    Subcommand("chat", CHAT_HELP, add_chat),
    Subcommand("fake-server", FAKE_SERVER_HELP, add_fake_server),
    Subcommand("run", RUN_HELP, "chatapi.cli_run:add_run_command"),
    Subcommand("load", LOAD_HELP, "chatapi.load._cli:add_load_parser"),
]


def _load(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """A function given as itself or as ``"module:function"`` (imported now)."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the ``chatapi`` command.

    With ``only``, the other subcommands get a placeholder parser (their name and help,
    enough for ``chatapi --help``) instead of their own, which saves importing them.
    """
    parser = argparse.ArgumentParser(
        prog="chatapi",
        description="Chat with a Dify chat app (Chatflow, chatbot or agent) from a terminal.",
    )
    parser.add_argument("--version", action="version", version=f"chatapi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        if only is None or command.name == only:
            _load(command.add)(commands)
        else:
            commands.add_parser(command.name, help=command.help)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: the first argument that is not an option (the
    top-level options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    if argv is None:
        argv = sys.argv[1:]
    # No subcommand named (``--help``, ``--version``, a typo): placeholders only.
    parser = build_parser(only=_command_in(argv) or "")
    args, extra = parser.parse_known_args(argv)
    if extra:
        # argparse reports an unknown flag with the top-level usage; show the subcommand's.
        subparsers = next(
            action
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
        )
        subparsers.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the ``chatapi`` command; returns the exit code."""
    args = _parse(argv)
    try:
        run: Callable[[argparse.Namespace], int] = _load(args.run)
        return run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output stopped reading (``| head``): that is their choice, not a
        # failure. End quietly, and keep the interpreter's final flush from failing on the
        # closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
