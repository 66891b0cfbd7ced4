"""The chatapi command at a terminal: run on a pseudo-terminal in a subprocess, typed at and
read as a user would (line editing, Ctrl-C, spinner, Markdown), plus its behaviour in pipes
and how little it imports to start.

Every wait is bounded: reads give up after EXPECT_TIMEOUT seconds with the output so far
in the failure message, and each command is killed at the end of its test.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatapi import cli
from chatapi.cli import main
from chatapi.testing import FakeChatServer

from .conftest import child_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")

EXPECT_TIMEOUT = 60.0
# Runs the command as the leader of a new session whose controlling terminal is the pty,
# so that Ctrl-C typed on the terminal reaches it as SIGINT, as in a real shell.
ON_ITS_TERMINAL = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'chatapi', *sys.argv[1:]])"
)
UP, LEFT, CTRL_C, CTRL_D = "\x1b[A", "\x1b[D", "\x03", "\x04"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("DIFY_API_KEY", "DIFY_BASE_URL", "DIFY_USER", "CHATAPI_LOG"):
        monkeypatch.delenv(name, raising=False)
    # child_env: no asyncio debug settings, whose slow-callback warnings would reach the
    # terminal on a busy machine.
    return child_env(TERM="xterm", COLUMNS="100", LINES="30")


class Terminal:
    """``chatapi`` on a pseudo-terminal of its own."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, "-c", ON_ITS_TERMINAL, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
        )
        os.close(slave)
        self.master = master
        self.output = ""
        self._seen = 0  # how much of the output earlier expect() calls consumed
        self._eof = False

    def _read(self, deadline: float) -> bool:
        """Read what is available (waiting until ``deadline``); False at the end."""
        if self._eof:
            return False
        ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            data = b""
        if not data:
            self._eof = True
            return False
        self.output += data.decode("utf-8", "replace")
        return True

    def expect(self, pattern: str) -> re.Match[str]:
        """Wait for ``pattern`` (a regex) in the output after what was already expected."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + EXPECT_TIMEOUT
        while True:
            match = compiled.search(self.output, self._seen)
            if match is not None:
                self._seen = match.end()
                return match
            if time.monotonic() > deadline or not self._read(deadline):
                raise AssertionError(f"{pattern!r} never came; output:\n{self.output!r}")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def wait_for_the_prompt_to_read(self) -> None:
        """Wait until the command sleeps in readline's ``select()`` on the terminal.

        CPython's readline looks at signals only when that ``select()`` is interrupted: a
        Ctrl-C landing after the prompt was printed but before the call began is noticed at
        the next key only. A person cannot type that fast; a test can, so it waits for the
        call first. Linux shows where a process sleeps in ``/proc``; elsewhere, or where the
        kernel hides it, this returns at once.
        """
        pid = self.process.pid
        deadline = time.monotonic() + EXPECT_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/wchan") as file:
                    where = file.read()
                with open(f"/proc/{pid}/stat") as file:
                    state = file.read().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                return
            if "poll_schedule_timeout" in where or "select" in where:
                return
            if state == "S" and where in ("", "0"):
                return  # asleep, but the kernel does not say where
            time.sleep(0.005)  # polling for a state the process is about to reach
        raise AssertionError(f"the command never waited for input; output:\n{self.output!r}")

    def wait(self) -> int:
        """Read to the end and return the exit code."""
        deadline = time.monotonic() + EXPECT_TIMEOUT
        while time.monotonic() < deadline and self._read(deadline):
            pass
        return self.process.wait(timeout=EXPECT_TIMEOUT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXPECT_TIMEOUT)
        os.close(self.master)


@pytest.fixture
def terminal(env: dict[str, str]) -> Iterator[type[Terminal]]:
    started: list[Terminal] = []

    class Started(Terminal):
        def __init__(self, args: list[str], env: dict[str, str] = env) -> None:
            super().__init__(args, env)
            started.append(self)

    yield Started
    for each in started:
        each.close()


def against(server: FakeChatServer, *args: str) -> list[str]:
    return ["chat", "--base-url", server.base_url, "--api-key", "app-key", *args]


def queries(server: FakeChatServer) -> list[tuple[str, str | None]]:
    return [
        (r.json["query"], r.json.get("conversation_id"))
        for r in server.requests
        if r.method == "POST" and r.path == "/chat-messages"
    ]


# -- the conversation prompt ---------------------------------------------------------------


def test_prompt_edits_lines_keeps_history_and_ctrl_c_exits_with_the_id(
    terminal: type[Terminal], fake_chat_server: FakeChatServer
) -> None:
    term = terminal(against(fake_chat_server, "--plain"))
    term.expect("> ")
    term.type("first\r")
    term.expect("Echo: first")
    term.expect("> ")
    term.type(UP + "\r")  # the previous question again, from the history
    term.expect("Echo: first")
    term.expect("> ")
    term.type("abc" + LEFT + LEFT + "X\r")  # the cursor moves; no escape codes are sent
    term.expect("Echo: aXbc")
    term.expect("> ")
    term.wait_for_the_prompt_to_read()
    term.type(CTRL_C)
    id_line = term.expect(r"\r\nchatapi: conversation (\S+) \(continue it with --conversation")
    assert term.wait() == 0
    sent = queries(fake_chat_server)
    assert [query for query, _ in sent] == ["first", "first", "aXbc"]
    conversation_id = id_line.group(1)
    assert [cid for _, cid in sent] == [None, conversation_id, conversation_id]
    assert term.output.endswith(f"--conversation {conversation_id})\r\n")


def test_ctrl_d_at_the_prompt_exits_with_the_id_on_a_new_line(
    terminal: type[Terminal], fake_chat_server: FakeChatServer
) -> None:
    term = terminal(against(fake_chat_server, "--plain"))
    term.expect("> ")
    term.type("hello\r")
    term.expect("Echo: hello")
    term.expect("> ")
    term.type(CTRL_D)
    term.expect(r"\r\nchatapi: conversation \S+ ")
    assert term.wait() == 0
    assert re.search(r"Echo: hello\r\n> \r\nchatapi: conversation ", term.output)


def test_ctrl_c_during_an_answer_stops_it_and_returns_to_the_prompt(
    terminal: type[Terminal], fake_chat_server: FakeChatServer
) -> None:
    fake_chat_server.script.chunk_delay = 30  # the answer would take minutes
    term = terminal(against(fake_chat_server, "--plain", "--show-workflow"))
    term.expect("> ")
    term.type("slow question\r")
    started = term.expect(r"\[workflow\] started run (\S+)")
    term.expect(r"\[node\] LLM \(llm\) started")
    term.type(CTRL_C)
    term.expect("chatapi: stopped")
    term.expect("> ")
    stops = [r.path for r in fake_chat_server.requests if r.path.endswith("/stop")]
    assert len(stops) == 1 and stops[0].startswith("/chat-messages/")
    # The run was stopped on the server, not just dropped by the client.
    run_url = f"{fake_chat_server.base_url}/workflows/run/{started.group(1)}"
    request = urllib.request.Request(run_url, headers={"Authorization": "Bearer app-key"})
    with urllib.request.urlopen(request, timeout=EXPECT_TIMEOUT) as response:
        assert json.loads(response.read())["status"] == "stopped"
    fake_chat_server.script.chunk_delay = 0
    term.type("again\r")
    term.expect("Echo: again")
    term.expect("> ")
    term.type("exit\r")
    assert term.wait() == 0


# -- waiting: spinner and --timeout ----------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        listener.close()


def test_spinner_shows_the_wait_and_timeout_ends_it(
    terminal: type[Terminal], silent_server: str
) -> None:
    term = terminal(["chat", "--api-key", "k", "--base-url", silent_server, "--timeout", "1", "q"])
    term.expect(r"[|/\-\\] waiting \d+\.\d s")
    assert term.wait() == 1
    assert re.search(r"\x1b\[Kchatapi: error: cannot reach the API: .*timeout", term.output)


def test_no_spinner_when_stderr_is_not_a_terminal(env: dict[str, str], silent_server: str) -> None:
    args = ["chat", "--api-key", "k", "--base-url", silent_server, "--timeout", "0.5", "q"]
    result = subprocess.run(
        [sys.executable, "-m", "chatapi", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=EXPECT_TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("chatapi: error: cannot reach the API:")
    assert "timeout" in result.stderr and result.stderr.count("\n") == 1
    assert "\r" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_bad_timeout_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["chat", "--fake", "--timeout", value, "q"])
    assert exited.value.code == 2
    assert "usage: chatapi chat" in capsys.readouterr().err


# -- output ------------------------------------------------------------------------------


def without_spinner(output: str) -> str:
    return re.sub(r"(\r[|/\-\\] waiting \d+\.\d s)*\r\x1b\[K", "", output)


def test_workflow_progress_has_no_blank_lines(terminal: type[Terminal]) -> None:
    term = terminal(["chat", "--fake", "--plain", "--show-workflow", "Hi there"])
    assert term.wait() == 0
    lines = without_spinner(term.output).split("\r\n")
    assert lines[-1] == ""  # ends with a newline
    assert "" not in lines[:-1], term.output
    assert sum(line.startswith("[node]") for line in lines) == 6
    assert "".join(line for line in lines if not line.startswith("[")) == "Echo: Hi there"


MARKDOWN_QUERY = "**bold** and `code`"


def test_answers_render_as_markdown_at_a_terminal(terminal: type[Terminal]) -> None:
    term = terminal(["chat", "--fake", MARKDOWN_QUERY])
    assert term.wait() == 0
    assert "**bold**" not in term.output  # Rich took the asterisks
    assert re.search(r"\x1b\[1m[^\n]*bold", term.output)  # and made the text bold


def test_plain_flag_and_missing_rich_print_the_text(
    terminal: type[Terminal], env: dict[str, str], tmp_path: Path
) -> None:
    plain = terminal(["chat", "--fake", "--plain", MARKDOWN_QUERY])
    assert plain.wait() == 0
    assert "Echo: **bold** and `code`\r\n" in plain.output
    blocked = tmp_path / "rich"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('rich is not installed')\n")
    without_rich = terminal(
        ["chat", "--fake", MARKDOWN_QUERY], {**env, "PYTHONPATH": str(tmp_path)}
    )
    assert without_rich.wait() == 0
    assert "Echo: **bold** and `code`\r\n" in without_rich.output


def test_markdown_is_not_used_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--fake", MARKDOWN_QUERY]) == 0
    assert capsys.readouterr().out == f"Echo: {MARKDOWN_QUERY}\n"


def test_a_reader_that_stops_early_ends_the_command_quietly(env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "chatapi", "chat", "--fake", "--json", "word " * 300],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        first = json.loads(process.stdout.readline())  # like `| head -n 1`
        assert first["event"] == "workflow_started"
        process.stdout.close()
        err = process.stderr.read()
        assert process.wait(timeout=EXPECT_TIMEOUT) == 0
        assert err == b""
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=EXPECT_TIMEOUT)
        if process.stderr is not None:
            process.stderr.close()


def test_a_bad_flag_shows_the_subcommands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["chat", "--fake", "--bogus", "q"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: chatapi chat ")
    assert err.rstrip().endswith("error: unrecognized arguments: --bogus")


# -- starting fast -------------------------------------------------------------------------

HEAVY = ("aiohttp", "chatapi.client", "chatapi.testing", "aiohttp.web", "rich", "orjson")
PROBE = """
import sys
from chatapi import cli
from chatapi.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = {heavy!r}
print(code, sorted(name for name in heavy if name in sys.modules))
"""


def _imports_after(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=EXPECT_TIMEOUT,
        check=False,
    )
    return result.stdout.splitlines()[-1]


def test_version_and_help_import_nothing_heavy(env: dict[str, str]) -> None:
    assert _imports_after(env, "--version") == "0 []"
    assert _imports_after(env, "chat", "--help") == "0 []"


def test_chat_does_not_import_the_fake_server_unless_asked(env: dict[str, str]) -> None:
    refused = ["chat", "--api-key", "k", "--base-url", "http://127.0.0.1:9/v1", "--plain", "q"]
    assert _imports_after(env, *refused) == "1 ['aiohttp', 'chatapi.client', 'orjson']"


def test_a_subcommand_module_is_imported_only_to_run_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "probe_command.py").write_text(
        "def add(commands):\n"
        "    probe = commands.add_parser('probe', help='a probe')\n"
        "    probe.add_argument('--code', type=int, default=0)\n"
        "    probe.set_defaults(run=lambda args: args.code)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = cli.Subcommand("probe", "a probe", "probe_command:add")
    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, probe])
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "probe" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["chat", "--help"])
    assert "probe_command" not in sys.modules
    assert main(["probe", "--code", "7"]) == 7
    assert "probe_command" in sys.modules
    monkeypatch.delitem(sys.modules, "probe_command")


def test_the_package_resolves_every_public_name_lazily() -> None:
    import chatapi

    assert set(chatapi.__all__) == {*chatapi._LOCATIONS, "__version__"}
    for name in chatapi.__all__:
        assert getattr(chatapi, name) is not None
    assert chatapi.errors.ChatAPIError is chatapi.ChatAPIError
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        chatapi.nope  # noqa: B018
