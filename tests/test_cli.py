"""The ``chatapi`` command: the real command in a subprocess for what users type first
(``--fake``, a missing key, a conversation, Ctrl-C, ``fake-server``), the rest in-process."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatapi import _http
from chatapi.cli import main
from chatapi.testing import FakeChatServer

from .conftest import NOISY_ENV

MISSING = "0b8ebf40-0a43-4a5d-92a6-2e8b7a4ecb11"
needs_signals = pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No Dify settings (nor asyncio debug mode) from the environment of whoever runs the
    tests."""
    for name in ("DIFY_API_KEY", "DIFY_BASE_URL", "DIFY_USER", *NOISY_ENV):
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)


def chatapi(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the real command, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "chatapi", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


class Background:
    """Commands started by a test; each is killed after 60 s (a hung command must not hang
    the suite) and at the end of the test if still running."""

    def __init__(self) -> None:
        self.started: list[tuple[subprocess.Popen[str], threading.Timer]] = []

    def start(self, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatapi", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        watchdog = threading.Timer(60, process.kill)
        watchdog.start()
        self.started.append((process, watchdog))
        return process

    def close(self) -> None:
        for process, watchdog in self.started:
            watchdog.cancel()
            watchdog.join()
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=30)


@pytest.fixture
def background() -> Iterator[Background]:
    commands = Background()
    yield commands
    commands.close()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def get_json(url: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": "Bearer app-test"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# -- the real command --------------------------------------------------------------------


def test_main_job_command_answers_from_the_fake_server(clean_env: dict[str, str]) -> None:
    result = chatapi("chat", "--fake", "Hello", env=clean_env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Hello\n", "")


def test_missing_key_is_a_one_line_usage_error(clean_env: dict[str, str]) -> None:
    result = chatapi("chat", "Hello", env=clean_env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("chatapi: error: no API key")
    assert result.stderr.count("\n") == 1


def test_conversation_from_standard_input_keeps_its_id(clean_env: dict[str, str]) -> None:
    result = chatapi("chat", "--fake", "--json", env=clean_env, stdin="first\nsecond\n")
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    ends = [e for e in events if e["event"] == "message_end"]
    starts = [e for e in events if e["event"] == "workflow_started"]
    assert len(ends) == 2
    assert ends[0]["conversation_id"] == ends[1]["conversation_id"]
    assert ends[0]["message_id"] != ends[1]["message_id"]
    assert [s["data"]["inputs"]["sys.query"] for s in starts] == ["first", "second"]
    assert [s["data"]["inputs"]["sys.dialogue_count"] for s in starts] == [1, 2]


@needs_signals
def test_ctrl_c_stops_the_run_and_exits_130(
    fake_chat_server: FakeChatServer,
    clean_env: dict[str, str],
    background: Background,
) -> None:
    fake_chat_server.script.chunk_delay = 30
    process = background.start(
        "chat", "--json", "--base-url", fake_chat_server.base_url, "--api-key", "k", "q",
        env=clean_env,
    )  # fmt: skip
    assert process.stdout is not None
    started = None
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "node_started" and event["data"]["node_type"] == "llm":
            started = event
            break
    assert started is not None
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)

    assert process.returncode == 130
    assert err == "chatapi: stopped\n"
    stops = [r for r in fake_chat_server.requests if r.path.endswith("/stop")]
    assert [r.path for r in stops] == [f"/chat-messages/{started['task_id']}/stop"]
    run = get_json(f"{fake_chat_server.base_url}/workflows/run/{started['workflow_run_id']}")
    assert run["status"] == "stopped"


@needs_signals
def test_fake_server_serves_until_interrupted(
    clean_env: dict[str, str], background: Background
) -> None:
    process = background.start("fake-server", "--port", "0", "--mode", "chat", env=clean_env)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
    assert get_json(f"{base_url}/info")["mode"] == "chat"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 0


# -- in-process --------------------------------------------------------------------------


def test_show_workflow_prints_node_progress_on_stderr(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", "--fake", "--show-workflow", "Hi"]) == 0
    out, err = capsys.readouterr()
    assert out == "Echo: Hi\n"
    timed = re.compile(r"in \d+\.\d{3} s")
    assert [timed.sub("in T s", line) for line in err.splitlines()[1:]] == [
        "[node] Start (start) started",
        "[node] Start (start) succeeded in T s",
        "[node] LLM (llm) started",
        "[node] LLM (llm) succeeded in T s",
        "[node] Answer (answer) started",
        "[node] Answer (answer) succeeded in T s",
        "[workflow] succeeded in T s, 3 steps, 3 tokens",
    ]
    assert err.startswith("[workflow] started run ")


def test_blocking_answer(clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--fake", "--blocking", "Hi there"]) == 0
    assert capsys.readouterr().out == "Echo: Hi there\n"


def test_blocking_json_is_the_answer_body(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", "--fake", "--blocking", "--json", "Hi"]) == 0
    [reply] = json_lines(capsys.readouterr().out)
    assert (reply["event"], reply["answer"], reply["mode"]) == (
        "message",
        "Echo: Hi",
        "advanced-chat",
    )


def test_inputs_user_and_file_are_sent(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("remember me")
    code = main(
        ["chat", "--fake", "--json", "--user", "ann", "--input", "name=Ann", "--input",
         "city=Paris", "--file", str(note), "Hello"]
    )  # fmt: skip
    assert code == 0
    events = json_lines(capsys.readouterr().out)
    inputs = events[0]["data"]["inputs"]
    assert (inputs["name"], inputs["city"], inputs["sys.user_id"]) == ("Ann", "Paris", "ann")
    assert [f["filename"] for f in inputs["sys.files"]] == ["note.txt"]
    assert [f["type"] for f in inputs["sys.files"]] == ["document"]
    answer = "".join(e["answer"] for e in events if e["event"] == "message")
    assert answer == "Echo: Hello [files: note.txt]"


def test_conversation_stops_at_exit(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("one\n\n  two  \nexit\nthree\n"))
    assert main(["chat", "--fake"]) == 0
    assert capsys.readouterr().out == "Echo: one\nEcho: two\n"


def test_api_error_shows_its_code(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chat", "--fake", "--conversation", MISSING, "Hi"]) == 1
    _, err = capsys.readouterr()
    assert err == "chatapi: error: HTTP 404 not_found: Conversation Not Exists.\n"


def test_failed_run_is_one_line(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeChatServer.running_in_thread() as server:
        server.script.error_event(after=5, message="the model\nfailed")
        code = main(["chat", "--base-url", server.base_url, "--api-key", "k", "Hi"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == "Echo: \n"
    assert err == "chatapi: error: the run failed: internal_server_error: the model failed\n"


def test_refused_connection_is_one_line(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http, "backoff_delay", lambda attempt: 0.0)
    with FakeChatServer.running_in_thread() as server:
        base_url = server.base_url
    assert main(["chat", "--base-url", base_url, "--api-key", "k", "Hi"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("chatapi: error: cannot reach the API: POST /chat-messages: could not")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["chat", "--fake", "--base-url", "http://127.0.0.1:1/v1", "Hi"],
        ["chat", "--fake", "--input", "no-equals-sign", "Hi"],
        ["chat", "--fake", "--file", "/no/such/file", "Hi"],
        ["chat", "--api-key", "k", "--base-url", "ftp://example.com", "Hi"],
    ],
)
def test_bad_usage_exits_2(
    args: list[str], clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(args))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err
