"""What every part of the suite shares: settings, result rows, timing, the table, the machine."""

from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MISSING_PEER",
    "Row",
    "Settings",
    "interleaved",
    "machine",
    "median_spread",
    "peer_version",
    "rss_bytes",
    "table",
]

#: What a row says when the package it needs is not installed.
MISSING_PEER = "skipped (install .[bench])"


@dataclass(frozen=True)
class Settings:
    """Sizes and repetitions of one run (``--quick``, default, ``--full``, or the smoke test)."""

    events: int = 100_000  # message events per decoded or streamed answer
    slow_events: int = 100_000  # the same for the 16-byte chunking
    big_event: int = 16 * 1024 * 1024  # bytes of the one large event
    repeat: int = 5  # timed repetitions of each row
    streams: tuple[int, ...] = (100, 1_000)  # concurrency levels
    flood: int = 100  # message events per stream in the concurrency throughput round
    pace: float = 1.0  # seconds between the words of a held stream's answer
    calls: int = 2_000  # sequential blocking calls in part 4
    imports: int = 7  # interpreter starts per import row
    peers: bool = True  # run the rows of other libraries (when installed)

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            events=20_000,
            slow_events=5_000,
            big_event=4 * 1024 * 1024,
            repeat=3,
            streams=(100, 1_000),
            flood=20,
            calls=300,
            imports=3,
        )

    @classmethod
    def full(cls) -> Settings:
        return cls(streams=(100, 1_000, 5_000, 10_000))


@dataclass
class Row:
    """One line of the table: a measured quantity and how it compares with its baseline.

    ``values`` holds one figure per repetition; ``ratios`` the same repetitions divided by
    the baseline's figure of the same repetition (so drifting machine speed cancels out).
    ``higher_is_better`` tells which way the ratio should go.
    """

    part: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    baseline: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""
    higher_is_better: bool = True

    def ratio_of(self, baseline: Row) -> None:
        """Fill ``ratios`` from the baseline's values of the same repetitions."""
        self.baseline = baseline.name
        self.ratios = [
            mine / theirs
            for mine, theirs in zip(self.values, baseline.values, strict=True)
            if theirs
        ]

    def check(self, target: str, passed: Callable[[float], bool], *, on: str = "ratio") -> None:
        """Judge the median ratio (or value, ``on="value"``) against a target."""
        self.target = target
        figures = self.ratios if on == "ratio" else self.values
        if figures:
            self.met = passed(statistics.median(figures))


def median_spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, minimum and maximum."""
    return statistics.median(values), min(values), max(values)


def interleaved(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, list[float]]:
    """Time each run ``repeat`` times, round-robin, so that the runs share the machine's moods.

    Each callable returns its own figure (a rate or a duration); a full garbage collection
    before each keeps the debris of one run out of the next.
    """
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            gc.collect()
            results[name].append(run())
    return results


def timed(function: Callable[[], int]) -> tuple[int, float]:
    """Call ``function``; return its result and the seconds it took."""
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peer_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _figure(value: float) -> str:
    if value >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cells(row: Row) -> list[str]:
    if not row.values:
        return [row.part, row.name, row.note or "-", "", row.unit, "", ""]
    median, low, high = median_spread(row.values)
    spread = f"{_figure(low)}-{_figure(high)}" if len(row.values) > 1 else ""
    ratio = ""
    if row.ratios:
        r_median, r_low, r_high = median_spread(row.ratios)
        ratio = f"{r_median:.2f}x ({r_low:.2f}-{r_high:.2f})"
    elif row.baseline == row.name:
        ratio = "baseline"
    verdict = {None: "", True: "met", False: "NOT MET"}[row.met]
    target = f"{row.target} {verdict}".strip()
    name = f"{row.name} ({row.note})" if row.note else row.name
    return [row.part, name, _figure(median), spread, row.unit, ratio, target]


HEADER = ["part", "row", "median", "min-max", "unit", "ratio to baseline", "target"]


def table(rows: Sequence[Row], *, markdown: bool = False) -> str:
    """The results as one table (aligned text, or Markdown)."""
    body = [_cells(row) for row in rows]
    header = HEADER
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    numeric = {2, 3, 5}

    def render(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(header), rule, *(render(cells) for cells in body)])


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    packages = ["chatapi", "aiohttp", "orjson", "msgspec", "attrs", "cattrs"]
    peers = ["httpx", "httpx-sse", "openai", "pydantic", "dify-client-python"]
    versions = ", ".join(
        f"{name} {peer_version(name) or 'not installed'}" for name in packages + peers
    )
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": f"{platform.system()} {platform.release()}",
        "packages": versions,
        "GC": (
            f"enabled during the timed runs (thresholds {gc.get_threshold()}); a full collection "
            "before each repetition"
        ),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
    }
