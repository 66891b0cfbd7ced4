"""The benchmark suite still runs: ``python -m benchmarks --quick`` at toy sizes.

It measures nothing worth reading and asserts no speed (that is the suite's job); it keeps
the suite from rotting as the package changes. Rows of other libraries are left out, so
that the test extra is enough.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOY_SIZES = [
    "--quick",
    "--no-peers",
    "--events=300",
    "--slow-events=40",
    "--big-event=65536",
    "--repeat=1",
    "--streams=3",
    "--flood=5",
    "--pace=0.01",
    "--calls=3",
    "--imports=1",
]


def run_suite(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *TOY_SIZES, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_quick_run_prints_one_table_of_all_parts(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "# Results\n\nbefore\n\n<!-- results:start -->\nold\n<!-- results:end -->\n\nafter\n"
    )

    done = run_suite("--write-results", f"--results={results}")

    assert done.returncode == 0, done.stderr
    table = done.stdout
    parts = ["1: decode 300 events", "1: decode 40 events, 16 B", "1: one 64 KiB event"]
    parts += ["2: end to end", "3: 3 concurrent streams", "4: cost of import", "4: blocking"]
    for part in parts:
        assert part in table, part
    header, _, *lines = table.splitlines()
    assert "ratio to baseline" in header
    chatapi = [line for line in lines if "chatapi (bytes → typed events)" in line]
    assert len(chatapi) == 4
    assert all("x" in line for line in chatapi)  # a ratio to the orjson limit
    assert sum("baseline" in line for line in lines) == 9
    assert sum("skipped" in line for line in lines) == 18  # peers, not installed or not asked
    assert "one event per write" in table and "p50 write → event" in table
    assert "completed (open-and-hold rounds)" in table and "= 3 met" in table
    assert "targets not met:" in lines[-2]

    written = results.read_text()
    assert written.startswith("# Results\n\nbefore\n\n<!-- results:start -->")
    assert written.endswith("<!-- results:end -->\n\nafter\n")
    assert "\nold\n" not in written
    assert "- **CPU**:" in written and "- **Python**:" in written
    assert (
        "| 2: end to end, 300 events over loopback, one event per write | chatapi async stream |"
        in written
    )


def test_unknown_part_is_a_usage_error() -> None:
    done = run_suite("--parts=decode,warp")

    assert done.returncode == 2
    assert "unknown part(s): warp" in done.stderr
