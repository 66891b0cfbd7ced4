"""The ``chatapi`` command: chat with a Dify app from a terminal, or serve the fake API.

``chatapi chat "question"`` streams the answer; without a question it reads one question
per line and keeps the conversation. ``--fake`` answers from an embedded
:class:`~chatapi.testing.FakeChatServer`, so the command works with nothing else running.
``chatapi fake-server`` serves that fake API for other programs.

Exit codes: 0 done (also when a reader such as ``| head`` stopped reading), 1 the API or
the connection failed, 2 bad usage or configuration, 130 interrupted (Ctrl-C; a streamed
run is stopped on the server first). In a conversation at a terminal, Ctrl-C during an
answer stops that answer and returns to the prompt; Ctrl-C or Ctrl-D at the prompt ends the
conversation (exit 0) after printing its id.

This module only parses arguments, so that ``chatapi --version`` and ``--help`` start fast:
each subcommand names its implementation as ``"module:function"`` (``run=`` in
``set_defaults``), imported when the subcommand runs. To add a subcommand, write a function
``add_<name>(commands)`` that adds its parser and list it in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._version import __version__

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

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
        help="ask a question and stream the answer (no question: a conversation)",
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
        help="serve the fake Dify API until interrupted",
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
        choices=("advanced-chat", "chat", "agent-chat"),
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
    serve.set_defaults(run="chatapi._cli.serve:run")


# The subcommands, in the order of ``chatapi --help``.
SUBCOMMANDS: list[Callable[[Commands], None]] = [add_chat, add_fake_server]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``chatapi`` command."""
    parser = argparse.ArgumentParser(
        prog="chatapi",
        description="Chat with a Dify chat app (Chatflow, chatbot or agent) from a terminal.",
    )
    parser.add_argument("--version", action="version", version=f"chatapi {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(commands)
    return parser


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser()
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


def _resolve(run: str | Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    if callable(run):
        return run
    module, _, name = run.partition(":")
    function: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
    return function


def main(argv: list[str] | None = None) -> int:
    """Run the ``chatapi`` command; returns the exit code."""
    args = _parse(argv)
    try:
        return _resolve(args.run)(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output stopped reading (``| head``): that is their choice, not a
        # failure. End quietly, and keep the interpreter's final flush from failing on the
        # closed pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
