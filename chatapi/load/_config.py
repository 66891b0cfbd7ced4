"""What a load run does: the queries to send, the arrival model, the duration, the target."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson

from ..errors import ConfigurationError

__all__ = ["LoadConfig", "LoadQuery", "read_queries"]


@attrs.frozen
class LoadQuery:
    """One conversation a stream slot plays: ``query`` with ``inputs``, then each of
    ``follow_ups`` in the same conversation (every turn is one measured stream)."""

    query: str
    inputs: Mapping[str, Any] = attrs.field(factory=dict)
    follow_ups: tuple[str, ...] = ()

    @property
    def turns(self) -> tuple[str, ...]:
        return (self.query, *self.follow_ups)


def read_queries(path: str | Path) -> list[LoadQuery]:
    """Queries from a JSON Lines file: one object per line with ``query`` (a string),
    optional ``inputs`` (an object) and optional ``conversation`` (follow-up queries, sent
    in the same conversation). Blank lines are skipped."""
    queries = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigurationError(f"cannot read the queries file {path}: {error}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise ConfigurationError(f"{where}: not JSON ({error})") from None
        if not isinstance(item, dict):
            raise ConfigurationError(f"{where}: expected a JSON object")
        query = item.get("query")
        inputs = item.get("inputs", {})
        follow_ups = item.get("conversation", [])
        if not isinstance(query, str) or not query:
            raise ConfigurationError(f"{where}: 'query' must be a non-empty string")
        if not isinstance(inputs, dict):
            raise ConfigurationError(f"{where}: 'inputs' must be an object")
        if not isinstance(follow_ups, list) or not all(
            isinstance(turn, str) and turn for turn in follow_ups
        ):
            raise ConfigurationError(f"{where}: 'conversation' must be a list of strings")
        queries.append(LoadQuery(query, inputs, tuple(follow_ups)))
    if not queries:
        raise ConfigurationError(f"{path}: no queries")
    return queries


def _positive_number(name: str, value: object, *, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise ConfigurationError(f"{name} must be {'>= 0' if zero else 'positive'}, got {value!r}")


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be an integer >= 1, got {value!r}")


def _to_tuple(queries: Iterable[LoadQuery]) -> tuple[LoadQuery, ...]:
    return tuple(queries)


@attrs.frozen
class LoadConfig:
    """A load run.

    Arrivals: ``concurrency=N`` is the closed model (N stream slots, each starting its next
    stream when the last one ends); ``rate=R`` the open model (R new streams per second
    whatever the answers do, at most ``max_concurrency`` open at once; arrivals beyond it
    are counted as ``skipped``). Give exactly one of them.

    ``duration``: seconds during which streams start; ``ramp_up``: seconds over which the
    slots (or the rate) grow to their full number. After ``duration`` the streams still
    open may finish for up to ``stop_timeout`` seconds, then they are cancelled (and
    counted as ``cancelled``), so that the counts match what the server completed.

    ``processes``: event loops in separate processes sharing the work (results merged).
    ``api_key``, ``base_url`` and ``user`` (a prefix: each slot is its own end user) default
    as for :class:`~chatapi.AsyncChatClient`. Requests are not retried unless
    ``max_retries`` says so: a load test reports failures, it does not hide them.
    ``added_latency``: read the fake server's ``sent_at`` stamps and report the latency the
    client adds (client and server on one machine).
    """

    queries: tuple[LoadQuery, ...] = attrs.field(converter=_to_tuple)
    concurrency: int | None = None
    rate: float | None = None
    max_concurrency: int = 1000
    duration: float = 10.0
    ramp_up: float = 0.0
    processes: int = 1
    stop_timeout: float = 30.0
    api_key: str | None = attrs.field(default=None, repr=False)
    base_url: str | None = None
    user: str = "chatapi-load"
    max_retries: int = 0
    timeout: float | None = None
    added_latency: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.queries or not all(isinstance(q, LoadQuery) for q in self.queries):
            raise ConfigurationError("queries must be a non-empty sequence of LoadQuery")
        if (self.concurrency is None) == (self.rate is None):
            raise ConfigurationError("give exactly one of concurrency and rate")
        if self.concurrency is not None:
            _positive_int("concurrency", self.concurrency)
        if self.rate is not None:
            _positive_number("rate", self.rate)
        _positive_int("max_concurrency", self.max_concurrency)
        _positive_int("processes", self.processes)
        _positive_number("duration", self.duration)
        _positive_number("ramp_up", self.ramp_up, zero=True)
        _positive_number("stop_timeout", self.stop_timeout, zero=True)
        if self.timeout is not None:
            _positive_number("timeout", self.timeout)
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or (
            self.max_retries < 0
        ):
            raise ConfigurationError(
                f"max_retries must be an integer >= 0, got {self.max_retries!r}"
            )
        if self.concurrency is not None and self.processes > self.concurrency:
            raise ConfigurationError(
                f"processes ({self.processes}) must not exceed concurrency ({self.concurrency})"
            )

    def share(self, index: int) -> LoadConfig:
        """This config's part for process ``index`` of ``processes`` (one process each)."""
        n = self.processes
        if n == 1:
            return self
        if self.concurrency is not None:
            part = self.concurrency // n + (1 if index < self.concurrency % n else 0)
            return attrs.evolve(self, concurrency=part, processes=1, user=f"{self.user}-p{index}")
        assert self.rate is not None
        return attrs.evolve(
            self,
            rate=self.rate / n,
            max_concurrency=max(1, self.max_concurrency // n),
            processes=1,
            user=f"{self.user}-p{index}",
        )

    def describe(self) -> dict[str, Any]:
        """The settings for a report (no key)."""
        return {
            "concurrency": self.concurrency,
            "rate": self.rate,
            "max_concurrency": self.max_concurrency if self.rate is not None else None,
            "duration": self.duration,
            "ramp_up": self.ramp_up,
            "processes": self.processes,
            "stop_timeout": self.stop_timeout,
            "base_url": self.base_url,
            "queries": len(self.queries),
        }

