"""``chatapi run``: run a workflow app (or a completion app) with inputs from a terminal.

``chatapi run --input query="Hello"`` streams the run's text as it arrives; ``--json`` prints
each event as a line of JSON, ``--show-workflow`` the node progress on standard error, and
``--blocking`` waits for the result and prints its outputs. Ctrl-C stops the run on the
server. An API key of a completion app works too: the command then streams its answer.
Exit codes are those of ``chatapi chat``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import orjson

from ._cli.chat import FAKE_CHUNK_DELAY, STOP_TIMEOUT, ChatSession, _describe, run_session
from ._cli.running import Interrupted
from ._cli.running import run as _run
from ._cli.running import uncancel as _uncancel
from ._config import ENV_API_KEY, ENV_USER
from .cli import DEFAULT_USER, EXIT_FAILED, EXIT_OK, EXIT_USAGE, _key_value
from .client import AsyncChatClient
from .errors import BadRequestError, ChatAPIError, ConfigurationError
from .events import StreamEvent, TextChunkEvent, TextReplaceEvent
from .models import WorkflowRunResult
from .streaming import AsyncChatStream
from .testing import FakeChatServer

__all__ = ["add_run_command"]

PAUSED_NOTE = (
    "the run is waiting for a Human Input form; submit it with human_input.submit, then "
    "follow the run with workflows.events ({run_id})"
)


def add_run_command(commands: Any) -> None:
    """Register ``run`` on the ``chatapi`` subcommands (``commands`` from add_subparsers)."""
    run = commands.add_parser(
        "run",
        help="run a workflow app (or a completion app) with inputs and stream its output",
        description=(
            "Run the app with the given inputs and print its text as it streams (workflow "
            "apps: the text_chunk events; completion apps: the answer). Settings not given "
            "come from DIFY_API_KEY, DIFY_BASE_URL and DIFY_USER."
        ),
    )
    run.add_argument(
        "--input",
        dest="inputs",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="an input variable of the app (repeatable)",
    )
    run.add_argument("--workflow-id", help="run this published workflow version")
    run.add_argument("--user", help=f"end-user id (default: ${ENV_USER}, else {DEFAULT_USER})")
    run.add_argument(
        "--blocking", action="store_true", help="wait for the result and print its outputs"
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print each event as one line of JSON (in blocking mode: the result)",
    )
    run.add_argument(
        "--show-workflow",
        action="store_true",
        help="show workflow and node progress, with timings, on standard error",
    )
    run.add_argument("--base-url", help="API root (default: $DIFY_BASE_URL or Dify Cloud)")
    run.add_argument("--api-key", help=f"the app's API key (default: ${ENV_API_KEY})")
    run.add_argument(
        "--fake",
        action="store_true",
        help="run an embedded fake workflow app (no Dify and no key needed)",
    )
    # What the chat session underneath reads and a run does not have.
    # ``timeout`` and ``plain``: the chat session's terminal options, left at plain output.
    run.set_defaults(run=_run_command, conversation=None, files=[], timeout=None, plain=True)


class RunSession(ChatSession):
    """One ``chatapi run`` invocation: the chat session's client and output, a run instead
    of a question."""

    _wrote_text = False

    async def open(self) -> None:
        args = self.args
        api_key, base_url = args.api_key, args.base_url
        if args.fake:
            self.server = FakeChatServer(mode="workflow", chunk_delay=FAKE_CHUNK_DELAY)
            await self.server.start()
            base_url = self.server.base_url
            api_key = api_key or self.server.api_key
        self.client = AsyncChatClient(api_key=api_key, base_url=base_url, user=self.user)

    async def run(self) -> int:
        """Run the app once and show its output; returns the exit code."""
        client = self.client
        assert client is not None
        try:
            try:
                await self._workflow()
            except BadRequestError as error:
                if error.code != "not_workflow_app":
                    raise
                # Not a workflow app: a completion app runs the same way, a chat app does not.
                mode = (await client.app.info()).mode
                if mode != "completion":
                    self.error(
                        f"this API key belongs to a {mode or 'chat'} app, not a workflow app: "
                        'use `chatapi chat "QUESTION"` instead'
                    )
                    return EXIT_USAGE
                await self._completion()
        except ChatAPIError as error:
            self._end_line()
            self.error(_describe(error))
            return EXIT_USAGE if isinstance(error, ConfigurationError) else EXIT_FAILED
        return EXIT_OK

    async def _workflow(self) -> None:
        assert self.client is not None
        workflows = self.client.workflows
        if self.args.blocking:
            result = await workflows.run(self.inputs, workflow_id=self.args.workflow_id)
            if self.args.json:
                self._print_json(result.raw)
            else:
                self._show_result(result)
            return
        stream = workflows.stream(self.inputs, workflow_id=self.args.workflow_id)
        await self._follow(stream)
        result = await stream.final_run()
        # A paused run was announced by its event; a run whose text streamed has shown it.
        if not self.args.json and not result.paused and not self._wrote_text:
            self._show_result(result)

    async def _completion(self) -> None:
        assert self.client is not None
        completions = self.client.completions
        if self.args.blocking:
            self._show_reply(await completions.send(self.inputs))
            return
        await self._follow(completions.stream(self.inputs))

    async def _follow(self, stream: AsyncChatStream) -> None:
        async with stream:
            try:
                async for event in stream:
                    self._show_event(event)
            except asyncio.CancelledError:
                # Ctrl-C: stop the run on the server while the stream is still open.
                _uncancel()
                self._end_line()
                with contextlib.suppress(ChatAPIError, asyncio.TimeoutError):
                    await asyncio.wait_for(stream.stop(), STOP_TIMEOUT)
                self.note("stopped")
                raise Interrupted from None
        self._end_line()

    def _show_event(self, event: StreamEvent) -> None:
        if not self.args.json:
            if isinstance(event, TextChunkEvent) and event.data is not None:
                self._wrote_text = self._wrote_text or bool(event.data.text)
                self._write(event.data.text or "")
            elif isinstance(event, TextReplaceEvent) and event.data is not None:
                self._end_line()
                self._write(event.data.text or "")
        super()._show_event(event)

    def _show_result(self, result: WorkflowRunResult) -> None:
        if result.paused:
            self.note(PAUSED_NOTE.format(run_id=result.workflow_run_id))
        elif result.error:
            self.error(f"the run {result.status}: {result.error}")
        else:
            for name, value in result.outputs.items():
                shown = value if isinstance(value, str) else orjson.dumps(value).decode()
                self._write(f"{name}: {shown}\n")


def _run_command(args: argparse.Namespace) -> int:
    return run_session(args, RunSession, lambda loop, session: _run(loop, session.run()))
