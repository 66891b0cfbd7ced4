"""``chatapi run``: a workflow (or completion) app from the terminal, and ``chatapi chat``
pointing at the command to use when the key belongs to such an app."""

from __future__ import annotations

import json
import re
import signal

import pytest

from chatapi.cli import main
from chatapi.testing import FakeChatServer

from .test_cli import (
    Background,
    background,
    chatapi,
    clean_env,
    get_json,
    json_lines,
    needs_signals,
)

__all__ = ["background", "clean_env"]  # fixtures shared with test_cli

WORKFLOW = [{"mode": "workflow"}]


def test_run_streams_the_fake_workflow_apps_text(clean_env: dict[str, str]) -> None:
    result = chatapi("run", "--fake", "--input", "query=Hello", env=clean_env)
    assert (result.returncode, result.stdout, result.stderr) == (0, "Echo: Hello\n", "")


@pytest.mark.parametrize("fake_chat_server", WORKFLOW, indirect=True)
def test_run_shows_workflow_progress_on_stderr(
    fake_chat_server: FakeChatServer, clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "--base-url", fake_chat_server.base_url, "--api-key", "k", "--show-workflow",
         "--input", "query=Hi", "--input", "tone=dry"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert (code, out) == (0, "Echo: Hi\n")
    timed = re.compile(r"in \d+\.\d{3} s")
    assert [timed.sub("in T s", line) for line in err.splitlines()[1:]] == [
        "[node] Start (start) started",
        "[node] Start (start) succeeded in T s",
        "[node] LLM (llm) started",
        "[node] LLM (llm) succeeded in T s",
        "[node] End (end) started",
        "[node] End (end) succeeded in T s",
        "[workflow] succeeded in T s, 3 steps, 3 tokens",
    ]
    body = fake_chat_server.requests[-1].json
    assert body["inputs"] == {"query": "Hi", "tone": "dry"}
    assert body["user"] == "chatapi-cli"


def test_run_blocking_prints_the_outputs_and_json_the_result(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--fake", "--blocking", "--input", "query=Hi"]) == 0
    assert capsys.readouterr().out == "result: Echo: Hi\n"
    assert main(["run", "--fake", "--blocking", "--json", "--input", "query=Hi"]) == 0
    [result] = json_lines(capsys.readouterr().out)
    assert (result["data"]["status"], result["data"]["outputs"]) == (
        "succeeded",
        {"result": "Echo: Hi"},
    )


def test_run_json_prints_every_event(
    clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--fake", "--json", "--input", "query=Hi"]) == 0
    events = json_lines(capsys.readouterr().out)
    assert events[0]["event"] == "workflow_started"
    assert events[-1]["event"] == "workflow_finished"
    assert "".join(e["data"]["text"] for e in events if e["event"] == "text_chunk") == "Echo: Hi"


@pytest.mark.parametrize("fake_chat_server", WORKFLOW, indirect=True)
def test_run_that_pauses_says_how_to_resume(
    fake_chat_server: FakeChatServer, clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_chat_server.script.pause_for_input()
    code = main(["run", "--base-url", fake_chat_server.base_url, "--api-key", "k", "--blocking"])
    _, err = capsys.readouterr()
    assert code == 0
    assert "waiting for a Human Input form" in err and "workflows.events" in err


@pytest.mark.parametrize("fake_chat_server", [{"mode": "completion"}], indirect=True)
def test_run_also_runs_a_completion_app(
    fake_chat_server: FakeChatServer, clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--base-url", fake_chat_server.base_url, "--api-key", "k",
                 "--input", "query=Write"])  # fmt: skip
    assert (code, capsys.readouterr().out) == (0, "Echo: Write\n")


@pytest.mark.parametrize("fake_chat_server", [{"mode": "chat"}], indirect=True)
def test_run_against_a_chat_app_points_to_chat(
    fake_chat_server: FakeChatServer, clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--base-url", fake_chat_server.base_url, "--api-key", "k"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == (
        "chatapi: error: this API key belongs to a chat app, not a workflow app: "
        'use `chatapi chat "QUESTION"` instead\n'
    )


@pytest.mark.parametrize("fake_chat_server", [{"mode": "workflow"}, {"mode": "completion"}],
                         indirect=True)  # fmt: skip
def test_chat_against_a_workflow_or_completion_app_points_to_run(
    fake_chat_server: FakeChatServer, clean_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["chat", "--base-url", fake_chat_server.base_url, "--api-key", "k", "Hi"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err == (
        "chatapi: error: this API key belongs to a workflow or completion app, not a chat "
        "app: use `chatapi run --input NAME=VALUE` instead\n"
    )


@needs_signals
@pytest.mark.parametrize("fake_chat_server", WORKFLOW, indirect=True)
def test_ctrl_c_stops_the_workflow_run(
    fake_chat_server: FakeChatServer, clean_env: dict[str, str], background: Background
) -> None:
    fake_chat_server.script.chunk_delay = 30
    process = background.start(
        "run", "--json", "--base-url", fake_chat_server.base_url, "--api-key", "k",
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
    assert [r.path for r in stops] == [f"/workflows/tasks/{started['task_id']}/stop"]
    run = get_json(f"{fake_chat_server.base_url}/workflows/run/{started['workflow_run_id']}")
    assert run["status"] == "stopped"
