"""``chatapi load``: the command line of the load engine, and the fake server's load options.

Live progress goes to standard error once a second; the table of results to standard
output at the end; ``--json`` and ``--html`` write the report to files.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs
import orjson

from .._config import ENV_API_KEY
from ..errors import ChatAPIError, ConfigurationError
from ..testing import LoadSettings
from ._config import LoadConfig, LoadQuery, read_queries
from ._engine import ProgressSnapshot, run_load
from ._fake import FakeServerProcess
from ._html import render_html
from ._stats import LoadReport, percentile

__all__ = ["add_fake_server_options", "add_load_parser", "fake_server_settings"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_METRIC_NAMES = {
    "ttft": "time to first token",
    "first_event": "time to first event",
    "inter_token": "inter-token gap",
    "total": "end to end",
    "added_latency": "latency added by client",
}


def add_fake_server_options(parser: argparse.ArgumentParser) -> None:
    """The load-target options of ``chatapi fake-server``."""
    group = parser.add_argument_group("load target (counts are printed as JSON on exit)")
    group.add_argument("--events-per-answer", type=int, help="message events in every answer")
    group.add_argument(
        "--first-token-delay", type=float, default=0.0, help="seconds before the first token"
    )
    group.add_argument(
        "--error-rate", type=float, default=0.0, help="share of streams ending in an error event"
    )
    group.add_argument(
        "--rate-limit-rate", type=float, default=0.0, help="share of requests answered 429"
    )
    group.add_argument(
        "--stamp-send-times",
        action="store_true",
        help="add the server's monotonic send time (sent_at) to every answer delta",
    )
    group.add_argument("--seed", type=int, help="seed of the injected failures")


def fake_server_settings(args: argparse.Namespace) -> LoadSettings | None:
    """Load settings from the fake-server options, or ``None`` when none was given."""
    if (
        args.events_per_answer is None
        and not args.first_token_delay
        and not args.error_rate
        and not args.rate_limit_rate
        and not args.stamp_send_times
        and args.seed is None
    ):
        return None
    return LoadSettings(
        events_per_answer=args.events_per_answer,
        first_token_delay=args.first_token_delay,
        error_rate=args.error_rate,
        rate_limit_rate=args.rate_limit_rate,
        stamp_send_times=args.stamp_send_times,
        seed=args.seed,
    )


def add_load_parser(commands: Any) -> None:
    """Register ``chatapi load`` on the ``chatapi`` subcommands."""
    load = commands.add_parser(
        "load",
        help="load-test a Dify chat app with many concurrent streams",
        description=(
            "Run many concurrent streams against a Dify chat app and report time to first "
            "token, inter-token gaps, end-to-end latency, throughput and errors. Closed "
            "model: --concurrency N streams back to back; open model: --rate R new streams "
            "per second. Settings not given come from DIFY_API_KEY and DIFY_BASE_URL."
        ),
    )
    model = load.add_mutually_exclusive_group(required=True)
    model.add_argument("--concurrency", type=int, help="streams open at once (closed model)")
    model.add_argument("--rate", type=float, help="new streams per second (open model)")
    load.add_argument(
        "--max-concurrency",
        type=int,
        default=1000,
        help="open model: most streams open at once; arrivals beyond it are skipped",
    )
    load.add_argument("--duration", type=float, default=10.0, help="seconds of starting streams")
    load.add_argument("--ramp-up", type=float, default=0.0, help="seconds to reach full load")
    load.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        help="seconds open streams may take to finish after --duration",
    )
    load.add_argument(
        "--processes",
        type=int,
        help="event loops in separate processes (default: the number of CPUs)",
    )
    load.add_argument(
        "--query", dest="queries", action="append", default=[], help="a query (repeatable)"
    )
    load.add_argument(
        "--queries-file",
        type=Path,
        metavar="JSONL",
        help='JSON Lines: {"query": ..., "inputs": {...}, "conversation": [follow-ups]}',
    )
    load.add_argument("--user", default="chatapi-load", help="prefix of the end-user ids")
    load.add_argument("--base-url", help="API root (default: $DIFY_BASE_URL or Dify Cloud)")
    load.add_argument("--api-key", help=f"the app's API key (default: ${ENV_API_KEY})")
    load.add_argument("--max-retries", type=int, default=0, help="retries per request")
    load.add_argument("--timeout", type=float, help="total seconds allowed per stream")
    load.add_argument("--json", type=Path, metavar="FILE", help="write the report as JSON")
    load.add_argument("--html", type=Path, metavar="FILE", help="write the report as HTML")
    load.add_argument("--quiet", action="store_true", help="no live progress")
    fake = load.add_argument_group("fake server (--fake)")
    fake.add_argument(
        "--fake",
        action="store_true",
        help="run against a local fake server process (no Dify needed)",
    )
    fake.add_argument("--fake-events", type=int, default=20, help="message events per answer")
    fake.add_argument(
        "--fake-first-token-delay", type=float, default=0.2, help="seconds before the first token"
    )
    fake.add_argument(
        "--fake-event-delay", type=float, default=0.05, help="seconds between events"
    )
    fake.add_argument("--fake-error-rate", type=float, default=0.0, help="share of error streams")
    fake.add_argument(
        "--fake-rate-limit-rate", type=float, default=0.0, help="share of 429 answers"
    )
    load.set_defaults(run=load_command)


def load_command(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        config = _config(args)
        fake = _fake_server(args) if args.fake else None
    except (ChatAPIError, ValueError) as error:
        err.write(f"chatapi: error: {error}\n")
        return EXIT_USAGE
    progress = None if args.quiet else _Progress(err).show
    stop = threading.Event()
    try:
        if fake is not None:
            config = attrs.evolve(config, base_url=fake.base_url, api_key=fake.api_key)
        with _first_interrupt_stops(stop, err):
            report = run_load(config, progress=progress, stop=stop)
    except ConfigurationError as error:
        err.write(f"chatapi: error: {error}\n")
        return EXIT_USAGE
    except ChatAPIError as error:
        err.write(f"chatapi: error: {error}\n")
        return EXIT_FAILED
    finally:
        counts = fake.stop() if fake is not None else None
    if counts is not None:
        report = attrs.evolve(report, server=attrs.asdict(counts))
    if progress is not None:
        err.write("\n" if err.isatty() else "")
    sys.stdout.write(format_table(report))
    sys.stdout.flush()
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    if args.html is not None:
        args.html.write_text(render_html(report), encoding="utf-8")
    return EXIT_INTERRUPTED if stop.is_set() else EXIT_OK


@contextlib.contextmanager
def _first_interrupt_stops(stop: threading.Event, err: TextIO) -> Iterator[None]:
    """The first Ctrl-C ends the run early (open streams drain, the report is written);
    a second one aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.write("\nchatapi: stopping: open streams may finish (Ctrl-C again to abort)\n")
        err.flush()

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _config(args: argparse.Namespace) -> LoadConfig:
    if args.fake and args.base_url:
        raise ConfigurationError("--fake and --base-url cannot be used together")
    if not args.fake and not (args.api_key or os.environ.get(ENV_API_KEY, "").strip()):
        raise ConfigurationError(f"no API key: pass --api-key or set {ENV_API_KEY} (or try --fake)")
    queries = [LoadQuery(text) for text in args.queries]
    if args.queries_file is not None:
        queries += read_queries(args.queries_file)
    if not queries:
        queries = [LoadQuery("Hello! How are you today?")]
    processes = args.processes or os.cpu_count() or 1
    if args.concurrency is not None:
        processes = max(1, min(processes, args.concurrency))
    return LoadConfig(
        queries=queries,
        concurrency=args.concurrency,
        rate=args.rate,
        max_concurrency=args.max_concurrency,
        duration=args.duration,
        ramp_up=args.ramp_up,
        processes=processes,
        stop_timeout=args.stop_timeout,
        api_key=args.api_key,
        base_url=args.base_url,
        user=args.user,
        max_retries=args.max_retries,
        timeout=args.timeout,
        added_latency=args.fake,
    )


def _fake_server(args: argparse.Namespace) -> FakeServerProcess:
    settings = LoadSettings(
        events_per_answer=args.fake_events,
        first_token_delay=args.fake_first_token_delay,
        error_rate=args.fake_error_rate,
        rate_limit_rate=args.fake_rate_limit_rate,
        stamp_send_times=True,
    )
    return FakeServerProcess(settings, chunk_delay=args.fake_event_delay)



class _Progress:
    """One line a second on standard error (rewritten in place at a terminal)."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.tty = err.isatty()
        self._last_completed = 0
        self._last_elapsed = 0.0

    def show(self, snapshot: ProgressSnapshot) -> None:
        span = snapshot.elapsed - self._last_elapsed
        rate = (snapshot.completed - self._last_completed) / span if span > 0 else 0.0
        self._last_completed, self._last_elapsed = snapshot.completed, snapshot.elapsed
        ttft = sorted(snapshot.recent_ttft)
        ttft_text = (
            f"ttft p50 {_ms(percentile(ttft, 50))} p95 {_ms(percentile(ttft, 95))}"
            if ttft
            else "ttft -"
        )
        line = (
            f"[{snapshot.elapsed:5.0f}s] active {snapshot.active}  done {snapshot.completed}  "
            f"{rate:.1f}/s  {ttft_text}  errors {snapshot.failed}"
        )
        self.err.write(f"\r\x1b[K{line}" if self.tty else line + "\n")
        self.err.flush()


def _ms(seconds: float | int | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f} ms"


def format_table(report: LoadReport) -> str:
    """The results as a plain-text table."""
    streams = report.streams
    lines = [
        f"streams: {streams['started']} started, {streams['completed']} completed, "
        f"{streams['failed']} failed, {streams['cancelled']} cancelled, "
        f"{streams['skipped']} skipped in {report.elapsed:.1f} s",
    ]
    if report.server is not None:
        lines.append(f"server:  {report.server['completed']} completed by the fake server")
    header = f"{'metric':<26}{'count':>8}" + "".join(
        f"{name:>11}" for name in ("p50", "p90", "p95", "p99", "max")
    )
    lines += ["", header, "-" * len(header)]
    for name, summary in report.metrics.items():
        cells = "".join(f"{_ms(summary[key]):>11}" for key in ("p50", "p90", "p95", "p99", "max"))
        lines.append(f"{_METRIC_NAMES.get(name, name):<26}{summary['count']:>8}{cells}")
    throughput = report.throughput
    lines += [
        "",
        f"throughput: {throughput['streams_per_s']:.1f} streams/s, "
        f"{throughput['events_per_s']:.0f} events/s, "
        f"{throughput['answer_chars_per_s']:.0f} answer chars/s",
    ]
    if report.errors:
        lines.append(
            "errors: " + ", ".join(f"{name} {count}" for name, count in report.errors.items())
        )
    return "\n".join(lines) + "\n"
