"""What a load run measured: raw samples per process, merged, and the report built from them.

Samples stay raw (``array('d')`` of seconds) until the end, so that percentiles over
several processes are exact rather than averaged percentiles.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from .._timings import StreamTimings

__all__ = ["METRICS", "LoadReport", "Samples", "percentile", "summarize"]

# The latency metrics of a report, in the order they are shown.
METRICS = ("ttft", "first_event", "inter_token", "total", "added_latency")
PERCENTILES = (50, 90, 95, 99)
_NAN = float("nan")


def percentile(ordered: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of sorted values, interpolated between neighbours."""
    if not ordered:
        return _NAN
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, p50, p90, p95, p99 and max of ``values`` in seconds (``None`` when empty)."""
    ordered = sorted(v for v in values if not math.isnan(v))
    summary: dict[str, float | int | None] = {"count": len(ordered)}
    for p in PERCENTILES:
        summary[f"p{p}"] = percentile(ordered, p) if ordered else None
    summary["max"] = ordered[-1] if ordered else None
    return summary


class Samples:
    """The raw measurements of one process (picklable, mergeable).

    Times of day are seconds since the run's common start (``t0``, a monotonic time shared
    by the processes of one run on one machine).
    """

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.skipped = 0
        self.events = 0
        self.answer_chars = 0
        self.errors: Counter[str] = Counter()
        self.ttft = array("d")
        self.first_event = array("d")
        self.inter_token = array("d")
        self.total = array("d")
        self.added_latency = array("d")
        # One entry per completed stream, for the timeline: when it ended, its ttft (NaN if
        # no answer text) and its total time.
        self.done_at = array("d")
        self.done_ttft = array("d")
        self.done_total = array("d")
        self.failed_at = array("d")
        self.last_end = 0.0

    def add_completed(self, timings: StreamTimings, stamps: Sequence[float] = ()) -> None:
        self.completed += 1
        self.events += timings.events
        self.answer_chars += timings.answer_chars
        ttft = timings.ttft
        first_event = timings.time_to_first_event
        total = timings.total
        end = timings.end
        if ttft is not None:
            self.ttft.append(ttft)
        if first_event is not None:
            self.first_event.append(first_event)
        if total is not None:
            self.total.append(total)
        self.inter_token.extend(timings.inter_token_gaps())
        for arrived, sent in zip(timings.delta_times, stamps, strict=False):
            self.added_latency.append(arrived - sent)
        if end is not None:
            self.done_at.append(end - self.t0)
            self.done_ttft.append(_NAN if ttft is None else ttft)
            self.done_total.append(_NAN if total is None else total)
            self.last_end = max(self.last_end, end - self.t0)

    def add_failed(self, error: BaseException, at: float) -> None:
        self.failed += 1
        self.errors[type(error).__name__] += 1
        self.failed_at.append(at - self.t0)
        self.last_end = max(self.last_end, at - self.t0)

    def merge(self, other: Samples) -> None:
        for name in ("started", "completed", "failed", "cancelled", "skipped", "events",
                     "answer_chars"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.update(other.errors)
        for name in (*METRICS, "done_at", "done_ttft", "done_total", "failed_at"):
            getattr(self, name).extend(getattr(other, name))
        self.last_end = max(self.last_end, other.last_end)


@attrs.frozen
class LoadReport:
    """The result of a load run; :meth:`to_dict` is what ``--json`` writes.

    ``streams``: started, completed, failed, cancelled (still open after ``stop_timeout``)
    and skipped (open model: arrivals beyond ``max_concurrency``); ``metrics``: per latency
    metric, count and p50/p90/p95/p99/max in seconds; ``throughput``: completed streams,
    events and answer characters per second of the run; ``errors``: failures by exception
    type; ``timeline``: per second of the run, completed streams, failures and TTFT / total
    percentiles; ``server``: what the fake server counted (``--fake`` only).
    """

    config: dict[str, Any]
    elapsed: float
    streams: dict[str, int]
    metrics: dict[str, dict[str, float | int | None]]
    throughput: dict[str, float]
    errors: dict[str, int]
    timeline: list[dict[str, Any]]
    ttft_values: list[float] = attrs.field(repr=False, eq=False)
    server: dict[str, int] | None = None

    @classmethod
    def build(
        cls,
        samples: Samples,
        config: dict[str, Any],
        elapsed: float,
        server: dict[str, int] | None = None,
    ) -> LoadReport:
        metrics = {name: summarize(getattr(samples, name)) for name in METRICS}
        if not samples.added_latency:
            del metrics["added_latency"]
        span = max(elapsed, 1e-9)
        return cls(
            config=config,
            elapsed=elapsed,
            streams={
                "started": samples.started,
                "completed": samples.completed,
                "failed": samples.failed,
                "cancelled": samples.cancelled,
                "skipped": samples.skipped,
            },
            metrics=metrics,
            throughput={
                "streams_per_s": samples.completed / span,
                "events_per_s": samples.events / span,
                "answer_chars_per_s": samples.answer_chars / span,
            },
            errors=dict(samples.errors.most_common()),
            timeline=_timeline(samples),
            ttft_values=list(samples.ttft),
            server=server,
        )

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, filter=lambda attribute, _: attribute.name != "ttft_values")
        if data["server"] is None:
            del data["server"]
        return data


def _timeline(samples: Samples) -> list[dict[str, Any]]:
    seconds = math.ceil(max(samples.last_end, 0.0)) or 1
    done: list[list[tuple[float, float]]] = [[] for _ in range(seconds)]
    failures = [0] * seconds
    for at, ttft, total in zip(
        samples.done_at, samples.done_ttft, samples.done_total, strict=True
    ):
        done[min(max(int(at), 0), seconds - 1)].append((ttft, total))
    for at in samples.failed_at:
        failures[min(max(int(at), 0), seconds - 1)] += 1
    timeline = []
    for second, ended in enumerate(done):
        ttfts = sorted(t for t, _ in ended if not math.isnan(t))
        totals = sorted(t for _, t in ended if not math.isnan(t))
        timeline.append(
            {
                "t": second,
                "completed": len(ended),
                "failed": failures[second],
                "ttft_p50": percentile(ttfts, 50) if ttfts else None,
                "ttft_p95": percentile(ttfts, 95) if ttfts else None,
                "total_p50": percentile(totals, 50) if totals else None,
                "total_p95": percentile(totals, 95) if totals else None,
            }
        )
    return timeline
