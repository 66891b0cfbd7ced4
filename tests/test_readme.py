"""Every ```python block of README.md runs, as written, against a FakeChatServer.

How a block runs:

- **Server and settings.** Each test gets a fresh ``fake_chat_server`` (the fixture chatapi
  installs). ``DIFY_API_KEY``, ``DIFY_BASE_URL`` and ``DIFY_USER`` point at it, and the
  README's placeholder URL ``http://localhost/v1`` is replaced by its address; any
  ``api_key`` works (the fake accepts every key). Write examples with
  ``base_url="http://localhost/v1"`` (or none) and they reach the fake.
- **Top-level await.** Blocks are compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``: a block
  with top-level ``await`` / ``async with`` / ``async for`` runs on an event loop of the
  test; any other block runs as plain code (so ``asyncio.run(main())`` and ``ChatClient``
  work too).
- **Context.** The blocks under one heading (``##`` or ``###``) share a namespace and run in
  README order: a block sees what the blocks before it under the same heading defined.
  Every namespace starts with what "The whole API" says its examples assume: ``client``, an
  open ``AsyncChatClient``, and ``reply`` / ``conversation_id`` from a first
  ``await client.chat.send(...)``. The test of a block first runs the blocks before it.
- **Files.** Blocks run in a temporary directory holding the files named in SAMPLE_FILES.
- **Special setup.** An HTML comment right before a block names a function of this module
  that runs it instead of the default: ``<!-- readme-test: human-input -->`` scripts a
  Human Input pause first, ``<!-- readme-test: pytest-file -->`` runs the block as a test
  file in a new project, ``workflow-app``, ``workflow-app-pause`` and ``completion-app`` run
  it against a fake app of that mode (a workflow app, one whose next run pauses, a
  completion app) instead of the Chatflow. To add one, write a function taking
  ``(ctx, block)`` decorated with ``@runner("name")``; most script ``ctx.server`` and then
  call ``ctx.run(block)``.

There is no way to skip a block: a ```python block that must not run is not an example.
Every code block names its language (```bash, ```text...), and Python is spelt ``python``,
so no Python example escapes the collection.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import orjson
import pytest
import uvicorn
from aiohttp import web

from chatapi import AsyncChatClient, ChatClient
from chatapi.sse import SSEDecoder
from chatapi.testing import FakeChatServer

from .conftest import child_env

README = Path(__file__).resolve().parent.parent / "README.md"
PLACEHOLDER_URL = "http://localhost/v1"
USER = "readme-user"

# Files the examples open, by path relative to the working directory of a block.
SAMPLE_FILES: dict[str, bytes] = {
    "photos/receipt.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    "receipt.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    "notes.txt": b"Remember the milk.\n",
    "question.mp3": b"ID3" + b"\0" * 64,
}

_FENCE = re.compile(r"^```(\S*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*([\w-]+)\s*-->$")
_PYTHON_ALIASES = {"py", "py3", "python3", "pycon", "ipython", "pyi"}


@attrs.frozen
class Fence:
    """One fenced code block of the README."""

    line: int  # line number of the first line of code
    language: str
    heading: str
    section: int  # line number of the heading (0: before any)
    source: str
    before: str  # the last non-blank line before the opening fence


@attrs.frozen
class Block:
    """One ```python block: where it is, the heading it is under and how it runs."""

    line: int
    heading: str
    section: int
    source: str
    runner: str

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"L{self.line}-{slug}"


def fences(text: str) -> list[Fence]:
    """The fenced code blocks of a Markdown text, with the heading each is under."""
    found: list[Fence] = []
    heading, section = "(top)", 0
    before = ""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence is None:
            title = _HEADING.match(line)
            if title is not None:
                heading, section = title.group(2), index + 1
            if line.strip():
                before = line.strip()
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md:{index + 1}: the code block is never closed")
        source = "\n".join(lines[index + 1 : end]) + "\n"
        found.append(Fence(index + 2, fence.group(1), heading, section, source, before))
        before = lines[end]
        index = end + 1
    return found


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, with their heading and runner marker."""
    blocks = []
    for fence in fences(text):
        if fence.language == "python":
            marker = _MARKER.match(fence.before)
            runner = marker.group(1) if marker else "default"
            blocks.append(Block(fence.line, fence.heading, fence.section, fence.source, runner))
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


class Context:
    """The fake server, event loop and namespace the blocks under one heading share."""

    def __init__(self, server: FakeChatServer, loop: asyncio.AbstractEventLoop, workdir: Path):
        self.server = server
        self.loop = loop
        self.workdir = workdir
        self.namespace: dict[str, Any] = {"__name__": "readme"}
        self._clients: list[AsyncChatClient] = []

    def start(self) -> None:
        """Fill the namespace with what the README's API examples assume."""
        client = AsyncChatClient(api_key=self.server.api_key, base_url=self.server.base_url)
        self._clients.append(client)
        reply = self.loop.run_until_complete(client.chat.send("Hello"))
        self.namespace.update(client=client, reply=reply, conversation_id=reply.conversation_id)

    def run(self, block: Block) -> None:
        """Run a block as written (the placeholder URL aside) in the shared namespace."""
        source = block.source.replace(PLACEHOLDER_URL, self.server.base_url)
        # Padding keeps the line numbers of tracebacks those of README.md.
        padded = "\n" * (block.line - 1) + source
        code = compile(padded, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if code.co_flags & inspect.CO_COROUTINE:
            self.loop.run_until_complete(eval(code, self.namespace))
        else:
            exec(code, self.namespace)

    def close(self) -> None:
        """Close every client the blocks left open (a block may rebind ``client``)."""
        for value in list(self.namespace.values()):
            if isinstance(value, ChatClient):
                value.close()
            elif isinstance(value, AsyncChatClient) and value not in self._clients:
                self._clients.append(value)
        for client in self._clients:
            self.loop.run_until_complete(client.aclose())


Runner = Callable[[Context, Block], None]
RUNNERS: dict[str, Runner] = {}


def runner(name: str) -> Callable[[Runner], Runner]:
    """Register a way of running a block, chosen by ``<!-- readme-test: name -->``."""

    def register(function: Runner) -> Runner:
        RUNNERS[name] = function
        return function

    return register


@runner("default")
def _as_written(ctx: Context, block: Block) -> None:
    ctx.run(block)


@runner("human-input")
def _with_a_paused_run(ctx: Context, block: Block) -> None:
    """The next chat run stops at the fake Chatflow's Human Input node."""
    ctx.server.script.pause_for_input()
    ctx.run(block)


@contextlib.contextmanager
def _app_of_mode(ctx: Context, mode: str) -> Iterator[FakeChatServer]:
    """For the length of one block, the README's placeholder URL and ``DIFY_BASE_URL`` lead
    to a fake app of ``mode`` instead of the Chatflow of the context."""
    chatflow, base_url = ctx.server, os.environ.get("DIFY_BASE_URL")
    with FakeChatServer.running_in_thread(mode=mode) as server:
        ctx.server = server
        os.environ["DIFY_BASE_URL"] = server.base_url
        try:
            yield server
        finally:
            ctx.server = chatflow
            if base_url is not None:
                os.environ["DIFY_BASE_URL"] = base_url


@runner("workflow-app")
def _against_a_workflow_app(ctx: Context, block: Block) -> None:
    """The block talks to a workflow app (``workflows.run`` / ``stream``)."""
    with _app_of_mode(ctx, "workflow"):
        ctx.run(block)


@runner("workflow-app-pause")
def _against_a_workflow_app_that_pauses(ctx: Context, block: Block) -> None:
    """The block talks to a workflow app whose next run stops at a Human Input node."""
    with _app_of_mode(ctx, "workflow") as server:
        server.script.pause_for_input()
        ctx.run(block)


@runner("completion-app")
def _against_a_completion_app(ctx: Context, block: Block) -> None:
    """The block talks to a completion app (``completions.send`` / ``stream``)."""
    with _app_of_mode(ctx, "completion"):
        ctx.run(block)


@runner("pytest-file")
def _as_a_test_file(ctx: Context, block: Block) -> None:
    """The block is a test module of a new project that installed ``chatapi pytest``: it runs
    in a subprocess with pytest-asyncio disabled, so only the plugins chatapi brings (its own
    and anyio's) can run it. Every test function in it must pass."""
    tests = [
        node.name
        for node in ast.parse(block.source).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test")
    ]
    assert tests, f"README.md:{block.line}: the block defines no test function"
    project = ctx.workdir / "new-project"
    project.mkdir()
    (project / "test_example.py").write_text(block.source, encoding="utf-8")
    # An ini file of its own: no configuration from directories above applies.
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {key: value for key, value in child_env().items() if not key.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:asyncio", "test_example.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert f"{len(tests)} passed" in report, report


async def _ask_over_http(url: str) -> None:
    """Ask a re-streaming endpoint as a browser's EventSource would; check the SSE answer."""
    async with aiohttp.ClientSession() as session:
        response = await session.get(url, params={"query": "Hi", "user": USER})
        body = await response.read()
    assert response.status == 200, body
    assert response.content_type == "text/event-stream"
    decoder = SSEDecoder()
    payloads = [orjson.loads(event.data) for event in decoder.feed(body) + decoder.close()]
    answer = "".join(p["answer"] for p in payloads if p["event"] == "message")
    assert answer == "Echo: Hi", payloads


@runner("asgi-app")
def _served_by_uvicorn(ctx: Context, block: Block) -> None:
    """The block defines an ASGI ``app`` with ``GET /chat``: uvicorn serves it on 127.0.0.1
    and a question goes through it."""
    ctx.run(block)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    config = uvicorn.Config(ctx.namespace["app"], log_level="warning", lifespan="off")
    server = uvicorn.Server(config)

    async def exchange() -> None:
        serving = asyncio.ensure_future(server.serve(sockets=[listener]))
        try:
            await _ask_over_http(f"http://127.0.0.1:{port}/chat")
        finally:
            server.should_exit = True
            await serving

    try:
        ctx.loop.run_until_complete(exchange())
    finally:
        listener.close()


@runner("aiohttp-app")
def _served_by_aiohttp(ctx: Context, block: Block) -> None:
    """The block defines an aiohttp.web ``app`` with ``GET /chat``: it is served on
    127.0.0.1 and a question goes through it."""
    ctx.run(block)

    async def exchange() -> None:
        app_runner = web.AppRunner(ctx.namespace["app"])
        await app_runner.setup()
        try:
            site = web.TCPSite(app_runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            await _ask_over_http(f"http://127.0.0.1:{port}/chat")
        finally:
            await app_runner.cleanup()

    ctx.loop.run_until_complete(exchange())


def _section(block: Block) -> list[Block]:
    """The blocks under the heading of ``block``, up to and including it."""
    return [o for o in BLOCKS if o.section == block.section and o.line <= block.line]


@pytest.fixture
def context(
    fake_chat_server: FakeChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Context]:
    for name, content in SAMPLE_FILES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIFY_API_KEY", fake_chat_server.api_key)
    monkeypatch.setenv("DIFY_BASE_URL", fake_chat_server.base_url)
    monkeypatch.setenv("DIFY_USER", USER)
    loop = asyncio.new_event_loop()
    ctx = Context(fake_chat_server, loop, tmp_path)
    try:
        ctx.start()
        yield ctx
    finally:
        try:
            ctx.close()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def test_the_readme_has_python_examples_and_every_marker_is_known() -> None:
    assert len(BLOCKS) >= 10
    unknown = {block.runner for block in BLOCKS} - RUNNERS.keys()
    assert not unknown, f"README markers with no runner in {__file__}: {sorted(unknown)}"
    # A marker not right before a ```python block would be silently ignored.
    markers = README.read_text(encoding="utf-8").count("<!-- readme-test:")
    assert markers == sum(block.runner != "default" for block in BLOCKS)


def test_every_code_block_names_its_language_and_python_is_spelt_python() -> None:
    # Python that is not collected must be impossible: no unlabelled block, no alias.
    for fence in fences(README.read_text(encoding="utf-8")):
        where = f"README.md:{fence.line - 1}"
        assert fence.language, f"{where}: say the language (```text for plain text)"
        assert fence.language not in _PYTHON_ALIASES, f"{where}: write ```python to run it"


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_readme_example_runs(block: Block, context: Context) -> None:
    *before, this = _section(block)
    for earlier in before:
        try:
            _runner_of(earlier)(context, earlier)
        except Exception as exc:
            pytest.fail(f"the block at README.md:{earlier.line}, run first, failed: {exc!r}")
    _runner_of(this)(context, this)


def _runner_of(block: Block) -> Runner:
    found = RUNNERS.get(block.runner)
    if found is None:
        pytest.fail(f"README.md:{block.line}: no @runner({block.runner!r}) in {__file__}")
    return found


def test_blocks_are_found_with_their_heading_and_marker() -> None:
    text = (
        "# Title\n\n## One\n\n```python\na = 1\n```\n\n```bash\nls\n```\n\n### Two\n\n"
        "<!-- readme-test: human-input -->\n```python\nb = 2\nc = 3\n```\n"
    )
    assert python_blocks(text) == [
        Block(line=6, heading="One", section=3, source="a = 1\n", runner="default"),
        Block(line=17, heading="Two", section=13, source="b = 2\nc = 3\n", runner="human-input"),
    ]
    with pytest.raises(ValueError, match="never closed"):
        python_blocks("```python\nx = 1\n")
    assert [fence.language for fence in fences("```\ntree\n```\n```py\nx\n```\n")] == ["", "py"]
