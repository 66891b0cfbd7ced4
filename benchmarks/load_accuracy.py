"""How many concurrent 5-s streams one client process carries before it adds latency.

``python -m benchmarks.load_accuracy [--quick] [--write-results]``

A fake server process (``chatapi fake-server --stamp-send-times``) sends every answer delta
with its own ``time.monotonic()``; the client compares each delta's arrival (its
``StreamTimings``) with that stamp. The difference is the latency added after the server
wrote the bytes: loopback, the client's event loop and its decoding. Each level of
concurrency runs for ``--duration`` seconds of 5-s streams (0.5 s to the first token, then
50 deltas 0.09 s apart), first with ``chatapi load``'s engine in one process, then with a
Locust process (``chatapi.locust.ChatUser``, headless, local mode: the user side of a
worker). The largest level whose p95 added latency stays within 50 ms is the result.

Both sides share the machine: on 2 cores the server's own CPU competes with the client's,
so the figures are lower bounds for a client with a core to itself.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chatapi.load import FakeServerProcess, LoadConfig, LoadQuery, run_load
from chatapi.testing import LoadSettings

from ._common import machine, peer_version

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
START, END = "<!-- load-accuracy:start -->", "<!-- load-accuracy:end -->"
SERVER = LoadSettings(events_per_answer=50, first_token_delay=0.5, stamp_send_times=True)
EVENT_DELAY = 0.09
BUDGET = 0.050
LOCUSTFILE = """
from chatapi.locust import ChatUser


class Chat(ChatUser):
    queries = ["How does the load test measure latency?"]
    measure_added_latency = True
"""
_LOCUST_LINE = re.compile(
    r"added latency over (\d+) deltas: p50 ([\d.]+) ms, p95 ([\d.]+) ms, max ([\d.]+) ms"
)


def native(level: int, duration: float) -> dict[str, float]:
    with FakeServerProcess(SERVER, chunk_delay=EVENT_DELAY) as server:
        config = LoadConfig(
            queries=[LoadQuery("How does the load test measure latency?")],
            concurrency=level,
            duration=duration,
            ramp_up=min(5.0, duration / 2),
            base_url=server.base_url,
            api_key=server.api_key,
            added_latency=True,
        )
        cpu, wall = time.process_time(), time.monotonic()
        report = run_load(config)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    added = report.metrics["added_latency"]
    return {
        "streams": report.streams["completed"],
        "failed": report.streams["failed"],
        "deltas": float(added["count"] or 0),
        "p50": float(added["p50"] or 0),
        "p95": float(added["p95"] or 0),
        "max": float(added["max"] or 0),
        "cpu": cpu / wall,
    }


def locust(level: int, duration: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder, FakeServerProcess(
        SERVER, chunk_delay=EVENT_DELAY
    ) as server:
        locustfile = Path(folder) / "locustfile.py"
        locustfile.write_text(LOCUSTFILE)
        rate = max(1, int(level / min(5.0, duration / 2)))
        command = [
            sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "-u", str(level), "-r", str(rate), "-t", f"{duration:g}s", "--stop-timeout", "15",
            "--host", server.base_url, "--only-summary",
        ]
        env = {**os.environ, "DIFY_API_KEY": "app-bench"}
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, check=False, timeout=600
        )
    found = _LOCUST_LINE.findall(result.stderr)
    if not found:
        raise RuntimeError(f"locust did not report its added latency:\n{result.stderr[-2000:]}")
    deltas, p50, p95, most = found[-1]
    streams = re.findall(r"this worker reported (\d+) streams", result.stderr)
    return {
        "streams": float(streams[-1]) if streams else 0.0,
        "failed": 0.0,
        "deltas": float(deltas),
        "p50": float(p50) / 1e3,
        "p95": float(p95) / 1e3,
        "max": float(most) / 1e3,
        "cpu": float("nan"),
    }


def sweep(
    name: str, run: Callable[[int, float], dict[str, float]], levels: list[int], duration: float
) -> list[str]:
    rows = []
    best = 0
    for level in levels:
        figures = run(level, duration)
        ok = figures["p95"] <= BUDGET
        cpu = "-" if figures["cpu"] != figures["cpu"] else f"{figures['cpu']:.2f}"
        rows.append(
            f"| {name} | {level:,} | {figures['streams']:,.0f} | {figures['deltas']:,.0f} | "
            f"{figures['p50'] * 1e3:.1f} | {figures['p95'] * 1e3:.1f} | "
            f"{figures['max'] * 1e3:.1f} | {cpu} | {'yes' if ok else 'no'} |"
        )
        print(rows[-1], flush=True)
        if not ok:
            break
        best = level
    rows.append(f"| **{name}: most streams within 50 ms p95** | **{best:,}** | | | | | | | |")
    print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load_accuracy")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter levels")
    parser.add_argument("--levels", help="comma-separated concurrency levels")
    parser.add_argument("--locust-levels", help="comma-separated levels for Locust")
    parser.add_argument("--duration", type=float, help="seconds of starting streams per level")
    parser.add_argument("--skip-locust", action="store_true")
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    args = parser.parse_args(argv)
    duration = args.duration or (6.0 if args.quick else 15.0)
    levels = [int(x) for x in (args.levels or ("100,500" if args.quick else
                                               "250,500,1000,1500,2000,3000")).split(",")]
    locust_levels = [int(x) for x in (args.locust_levels or ("100,500" if args.quick else
                                                             "250,500,1000,1500")).split(",")]
    started = time.monotonic()
    load_before = _load_average()
    header = [
        "| client | concurrent 5-s streams | completed | deltas | p50 ms | p95 ms | max ms "
        "| client CPU (cores) | p95 <= 50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(header), flush=True)
    rows = sweep("chatapi load (1 process)", native, levels, duration)
    if not args.skip_locust:
        rows += sweep("Locust worker (ChatUser)", locust, locust_levels, duration)
    if args.write_results:
        info = machine()
        info["packages"] += ", " + ", ".join(
            f"{name} {peer_version(name) or 'not installed'}" for name in ("locust", "gevent")
        )
        info["load average (1 min) before / after"] = f"{load_before} / {_load_average()}"
        info["command"] = " ".join(["python -m benchmarks.load_accuracy", *(argv or sys.argv[1:])])
        block = "\n".join(
            [
                START,
                f"Generated by `{info['command']}` on {datetime.date.today()} in "
                f"{time.monotonic() - started:.0f} s; {duration:g} s of starting streams per "
                "level; fake server in its own process on the same machine.",
                "",
                *(f"- **{key}**: {value}" for key, value in info.items() if key != "command"),
                "",
                *header,
                *rows,
                END,
            ]
        )
        text = RESULTS.read_text()
        if START in text:
            text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
        else:
            heading = "\n\n## Load-test accuracy (issue 12)\n\n"
            text = text.rstrip() + heading + _NOTE + "\n" + block + "\n"
        RESULTS.write_text(text)
    return 0


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


_NOTE = """How many concurrent 5-s streams one client process carries while the latency it adds
to each answer delta stays within 50 ms at p95 (targets: >= 2,000 per core for `chatapi
load`, >= 1,000 for a Locust worker). Rerun with `python -m benchmarks.load_accuracy
--write-results` (`--quick` for a short check); see the module's docstring for the method.
"""


if __name__ == "__main__":
    sys.exit(main())
