"""chatapi.locust on a real Locust cluster: a headless master and two workers on 127.0.0.1
against a fake server process. The master's ``stream`` count must equal the sum of what the
workers reported and what the server completed (open streams finish during the stop)."""

from __future__ import annotations

import csv
import importlib.util
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chatapi.load import FakeServerProcess
from chatapi.testing import LoadSettings

from .conftest import child_env

# Only look for Locust: importing it here would monkey-patch this test process with gevent.
if importlib.util.find_spec("locust") is None:
    pytest.skip(
        "chatapi.locust needs Locust: pip install 'chatapi[locust]'", allow_module_level=True
    )

LOCUSTFILE = """
from chatapi.locust import ChatUser


class Chat(ChatUser):
    queries = ["Hello there", "What is Dify?"]
"""
# Safety nets on a busy machine, not expectations.
PROCESS_TIMEOUT = 180
WORKER_LINE = re.compile(r"this worker reported (\d+) streams")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def locust_command() -> list[str]:
    executable = shutil.which("locust", path=str(Path(sys.executable).parent))
    return [executable] if executable else [sys.executable, "-m", "locust"]


def test_master_and_two_workers_count_what_the_server_completed(tmp_path: Path) -> None:
    assert "locust" not in sys.modules  # Locust (and gevent) only in the child processes
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    port = free_port()
    env = child_env(DIFY_API_KEY="app-locust-test", PYTHONUNBUFFERED="1")
    settings = LoadSettings(events_per_answer=10)
    processes: list[subprocess.Popen[bytes]] = []
    with FakeServerProcess(settings, chunk_delay=0.03) as server:
        try:
            master = subprocess.Popen(
                [*locust_command(), "-f", str(locustfile), "--master", "--headless",
                 "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                 "--expect-workers", "2", "-u", "12", "-r", "12", "-t", "3s",
                 "--stop-timeout", "20",
                 # A host name: resolved in the gevent-patched process.
                 "--host", server.base_url.replace("127.0.0.1", "localhost"),
                 "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "run.html")],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )
            processes.append(master)
            for _ in range(2):
                processes.append(
                    subprocess.Popen(
                        [*locust_command(), "-f", str(locustfile), "--worker",
                         "--master-host", "127.0.0.1", "--master-port", str(port)],
                        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    )
                )
            outputs = [p.communicate(timeout=PROCESS_TIMEOUT)[1].decode() for p in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        counts = server.stop()

    master_log, *worker_logs = outputs
    assert master.returncode == 0, master_log
    with open(tmp_path / "run_stats.csv", newline="") as file:
        rows = {row["Name"]: row for row in csv.DictReader(file)}
    master_streams = int(rows["stream"]["Request Count"])
    assert int(rows["stream"]["Failure Count"]) == 0
    assert int(rows["ttft"]["Request Count"]) == master_streams
    per_worker = [int(WORKER_LINE.findall(log)[-1]) for log in worker_logs]
    assert all(n > 0 for n in per_worker), worker_logs  # both workers ran users
    assert counts is not None
    assert master_streams == sum(per_worker) == counts.completed
    assert counts.started == counts.completed  # nothing was cut off at the stop
    html = (tmp_path / "run.html").read_text()
    assert "ttft" in html and "stream" in html


def test_a_saturated_worker_cpu_is_reported_as_a_client_limit() -> None:
    # In a child process: importing chatapi.locust patches the process with gevent.
    script = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stderr, level=logging.INFO)\n"
        "from locust import events\n"
        "import chatapi.locust\n"
        "events.cpu_warning.fire(environment=None, cpu_usage=97.0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=child_env(),
        timeout=PROCESS_TIMEOUT, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "CPU is at 97%" in result.stderr
    assert "measure the load generator, not the Dify app" in result.stderr
