"""The load engine (chatapi.load) and ``chatapi load``: arrival models, the bounded stop,
counts equal to the server's, reports (JSON, table, self-contained HTML), bad settings."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chatapi import ConfigurationError
from chatapi.load import (
    FakeServerProcess,
    LoadConfig,
    LoadQuery,
    ProgressSnapshot,
    arun_load,
    read_queries,
    render_html,
)
from chatapi.testing import FakeChatServer, LoadSettings

from .conftest import child_env

# A safety net for a busy CI machine, not an expectation.
COMMAND_TIMEOUT = 180


def config_for(server: FakeChatServer, **options: object) -> LoadConfig:
    settings: dict[str, object] = {
        "queries": [LoadQuery("Hello")],
        "duration": 1.0,
        "base_url": server.base_url,
        "api_key": server.api_key,
    }
    settings.update(options)
    return LoadConfig(**settings)  # type: ignore[arg-type]


async def test_closed_model_counts_match_the_server_and_failures_are_typed() -> None:
    settings = LoadSettings(events_per_answer=5, error_rate=0.2, rate_limit_rate=0.1, seed=3,
                            stamp_send_times=True)
    async with FakeChatServer(load=settings, chunk_delay=0.01) as server:
        ticks: list[ProgressSnapshot] = []
        report = await arun_load(
            config_for(server, concurrency=8, duration=1.5, added_latency=True),
            progress=ticks.append,
        )
        counts = server.stream_counts()
    streams = report.streams
    assert streams["completed"] == counts.completed > 0
    assert streams["started"] == counts.started + counts.rate_limited
    assert streams["failed"] == counts.errors + counts.rate_limited > 0
    assert report.errors == {
        name: n
        for name, n in {"StreamError": counts.errors, "RateLimitError": counts.rate_limited}.items()
        if n
    }
    assert streams["cancelled"] == streams["skipped"] == 0
    metrics = report.metrics
    assert metrics["ttft"]["count"] == metrics["total"]["count"] == counts.completed
    assert metrics["inter_token"]["count"] == 4 * counts.completed
    # Every delta of the completed streams was matched with the server's send stamp.
    assert metrics["added_latency"]["count"] == 5 * counts.completed
    assert 0 <= metrics["added_latency"]["p50"] <= metrics["added_latency"]["max"]  # type: ignore[operator]
    assert metrics["ttft"]["p50"] <= metrics["ttft"]["p95"] <= metrics["total"]["max"]  # type: ignore[operator]
    assert report.throughput["streams_per_s"] == pytest.approx(
        counts.completed / report.elapsed
    )
    assert sum(row["completed"] for row in report.timeline) == counts.completed
    assert sum(row["failed"] for row in report.timeline) == streams["failed"]
    assert ticks and ticks[-1].completed == counts.completed and ticks[-1].active == 0


async def test_stop_lets_open_streams_finish_within_the_stop_timeout() -> None:
    settings = LoadSettings(events_per_answer=3, first_token_delay=0.3)
    async with FakeChatServer(load=settings) as server:
        report = await arun_load(config_for(server, concurrency=6, duration=0.2))
        counts = server.stream_counts()
    assert report.streams["cancelled"] == 0
    assert report.streams["completed"] == counts.completed == counts.started == 6


async def test_streams_still_open_after_the_stop_timeout_are_cancelled() -> None:
    settings = LoadSettings(events_per_answer=3, first_token_delay=30.0)
    async with FakeChatServer(load=settings) as server:
        report = await arun_load(
            config_for(server, concurrency=4, duration=0.1, stop_timeout=0.2)
        )
        assert server.stream_counts().completed == 0
    assert report.streams["started"] == report.streams["cancelled"] == 4
    assert report.streams["completed"] == 0
    assert report.metrics["ttft"]["count"] == 0 and report.metrics["ttft"]["p50"] is None


async def test_open_model_skips_arrivals_beyond_the_cap() -> None:
    settings = LoadSettings(events_per_answer=2, first_token_delay=0.5)
    async with FakeChatServer(load=settings) as server:
        report = await arun_load(
            config_for(server, rate=40.0, max_concurrency=5, duration=0.5)
        )
        counts = server.stream_counts()
    streams = report.streams
    # 20 arrivals in 0.5 s; the streams last longer than that, so only 5 are admitted.
    assert streams["started"] == streams["completed"] == counts.completed == 5
    assert streams["skipped"] == 15


async def test_conversations_from_a_jsonl_file_keep_their_conversation(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text(
        json.dumps({"query": "first", "inputs": {"lang": "en"}, "conversation": ["second"]})
        + "\n\n"
    )
    queries = read_queries(path)
    assert queries == [LoadQuery("first", {"lang": "en"}, ("second",))]
    async with FakeChatServer() as server:
        report = await arun_load(
            config_for(server, queries=queries, concurrency=1, duration=0.3)
        )
        chats = [r.json for r in server.requests if r.path == "/chat-messages"]
    completed = report.streams["completed"]
    # A conversation whose first turn ends after the duration plays no follow-up.
    assert completed == len(chats) >= 2
    assert [c["query"] for c in chats] == ["first", "second"] * (completed // 2) + [
        "first"
    ] * (completed % 2)
    assert all(c["inputs"] == {"lang": "en"} for c in chats)
    assert all(not c.get("conversation_id") for c in chats[::2])
    # Each follow-up continues its own conversation.
    follow_ups = [c["conversation_id"] for c in chats[1::2]]
    assert all(follow_ups) and len(set(follow_ups)) == completed // 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not JSON"),
        ("[1]", "line 1: expected a JSON object"),
        ('{"query": 3}', "'query' must be a non-empty string"),
        ('{"query": "q", "inputs": []}', "'inputs' must be an object"),
        ('{"query": "q", "conversation": [1]}', "'conversation' must be a list of strings"),
        ("", "no queries"),
    ],
)
def test_bad_queries_files_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ConfigurationError, match=message):
        read_queries(path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of concurrency and rate"),
        ({"concurrency": 2, "rate": 1.0}, "exactly one of concurrency and rate"),
        ({"concurrency": 0}, "concurrency must be an integer >= 1"),
        ({"rate": -1.0}, "rate must be positive"),
        ({"concurrency": 2, "duration": float("nan")}, "duration must be a number"),
        ({"concurrency": 2, "processes": 3}, "must not exceed concurrency"),
        ({"concurrency": 2, "queries": []}, "queries must be a non-empty sequence"),
        ({"concurrency": 2, "max_retries": -1}, "max_retries must be an integer >= 0"),
    ],
)
def test_bad_settings_raise_configuration_error(options: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"queries": [LoadQuery("q")], **options}
    with pytest.raises(ConfigurationError, match=message):
        LoadConfig(**settings)  # type: ignore[arg-type]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatapi", "load", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        env=child_env(),
    )


def test_cli_against_a_fake_server_process_counts_what_it_completed(tmp_path: Path) -> None:
    with FakeServerProcess(LoadSettings(events_per_answer=5), chunk_delay=0.01) as server:
        result = run_cli(
            "--base-url", server.base_url, "--api-key", "app-test", "--concurrency", "10",
            "--duration", "1.5", "--processes", "2", "--json", str(tmp_path / "r.json"),
            "--query", "Hello",
        )
        counts = server.stop()
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert counts is not None and counts.completed > 0
    assert report["streams"]["completed"] == counts.completed == counts.started
    assert set(report["metrics"]) == {"ttft", "first_event", "inter_token", "total"}
    for summary in report["metrics"].values():
        assert set(summary) == {"count", "p50", "p90", "p95", "p99", "max"}
    assert set(report["throughput"]) == {"streams_per_s", "events_per_s", "answer_chars_per_s"}
    assert report["errors"] == {}
    assert f"{counts.completed} completed" in result.stdout
    assert "time to first token" in result.stdout
    assert "active" in result.stderr and "ttft p50" in result.stderr  # live progress


def test_cli_fake_runs_its_own_server_and_writes_html(tmp_path: Path) -> None:
    html_path = tmp_path / "r.html"
    result = run_cli(
        "--fake", "--rate", "20", "--duration", "1", "--processes", "2", "--quiet",
        "--fake-events", "4", "--fake-first-token-delay", "0.05", "--fake-event-delay", "0.01",
        "--json", str(tmp_path / "r.json"), "--html", str(html_path),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["server"]["completed"] == report["streams"]["completed"] > 0
    # 20 arrivals a second for 1 s, split over two processes whose arrivals interleave.
    assert report["streams"]["started"] + report["streams"]["skipped"] == 20
    assert "added_latency" in report["metrics"]
    assert result.stderr == ""  # --quiet
    page = html_path.read_text()
    assert page.count("<svg") == 3
    assert "<script" not in page and "<link" not in page and "url(" not in page


def test_cli_usage_errors_exit_2() -> None:
    result = run_cli("--concurrency", "2", "--base-url", "http://127.0.0.1:9/v1")
    assert result.returncode == 2 and "no API key" in result.stderr
    result = run_cli("--fake", "--concurrency", "0")
    assert result.returncode == 2 and "concurrency must be an integer >= 1" in result.stderr


def test_html_report_escapes_and_handles_an_empty_run() -> None:
    from chatapi.load import LoadReport
    from chatapi.load._stats import Samples

    report = LoadReport.build(Samples(0.0), {"base_url": "<b>x</b>"}, 1.0)
    page = render_html(report)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "no data" in page


def test_gc_is_tuned_only_during_a_run() -> None:
    from chatapi.load._engine import GC_THRESHOLD, gc_tuned

    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    with gc_tuned():
        assert gc.get_threshold() == GC_THRESHOLD
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == frozen


def test_open_model_arrivals_ramp_up_linearly_then_keep_the_rate() -> None:
    from itertools import islice

    from chatapi.load._engine import _arrival_offsets

    assert list(islice(_arrival_offsets(4.0, 0.0), 5)) == [0.0, 0.25, 0.5, 0.75, 1.0]
    ramped = list(islice(_arrival_offsets(10.0, 2.0), 30))
    # Over the 2-s ramp the rate grows from 0 to 10/s: 10 arrivals, then one per 0.1 s.
    assert sum(1 for t in ramped if t < 2.0) == 10
    assert ramped[10:13] == pytest.approx([2.0, 2.1, 2.2])
    assert ramped == sorted(ramped)


def test_cli_first_ctrl_c_ends_the_run_early_and_still_reports(tmp_path: Path) -> None:
    report_path = tmp_path / "r.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "chatapi", "load", "--fake", "--concurrency", "4",
         "--duration", "600", "--processes", "2", "--fake-events", "3",
         "--fake-first-token-delay", "0.01", "--fake-event-delay", "0.01",
         "--json", str(report_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        # Wait for a progress line that shows finished streams, then press Ctrl-C.
        for line in process.stderr:
            if re.search(r"done [1-9]", line):
                break
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=COMMAND_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "stopping: open streams may finish" in err
    report = json.loads(report_path.read_text())
    assert report["streams"]["completed"] == report["server"]["completed"] > 0
    assert report["streams"]["cancelled"] == report["streams"]["failed"] == 0
    assert report["elapsed"] < 600
    assert "completed by the fake server" in out
