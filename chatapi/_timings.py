"""Per-stream timings: when a streamed run's milestones happened, for load tools and logs.

Every :class:`~chatapi.streaming.AsyncChatStream` fills one :class:`StreamTimings` as it
goes, so any runner (``chatapi load``, ``chatapi.locust``, your own) gets time to first
token, inter-token gaps and end-to-end time without wrapping the stream.

The cost has to stay inside the benchmarks' noise, because it is always on: the stream reads
the clock once per network chunk and writes it into preallocated slots; each answer delta,
when the stream takes it, is stamped with the arrival time of its chunk (the stream reads a
chunk's events before the next chunk). The arrival time of each answer delta goes into an
``array('d')``: 8 bytes per delta and no Python object per delta, which is what inter-token
gaps need (a running mean cannot give their percentiles). The array stops growing after
:data:`MAX_DELTA_TIMES` entries, so an endless answer cannot grow memory without bound;
``delta_count`` keeps counting.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import islice
from typing import Any

from .events import PING

__all__ = ["MAX_DELTA_TIMES", "StreamTimings"]

# 64 Ki deltas (512 KiB): far beyond any LLM answer; the bound only guards endless streams.
MAX_DELTA_TIMES = 65_536


class StreamTimings:
    """Milestones of one streamed run, in seconds of the event loop's monotonic clock.

    ``sent``: the request went out; ``headers``: the response headers arrived; ``first_byte``:
    the first chunk of the body; ``first_event``: the first event other than a ping;
    ``first_text``: the first answer delta; ``end``: the stream ended. A milestone not reached
    is ``None``. ``delta_times`` holds the arrival time of each answer delta the stream
    read (a chunk's events share its arrival time). ``outcome`` says how the stream ended:
    ``"completed"``, ``"paused"`` (a Human Input node), ``"stopped"`` (``stop()``),
    ``"closed"`` (left before the end) or ``"error"``, with the exception's class name in
    ``error_type``.

    The properties give the usual load-test metrics: :attr:`ttft`,
    :attr:`time_to_first_event`, :attr:`total` and :meth:`inter_token_gaps`.
    """

    __slots__ = (
        "_uncounted",
        "answer_chars",
        "chunk_at",
        "delta_times",
        "end",
        "error_type",
        "events",
        "first_byte",
        "first_event",
        "headers",
        "outcome",
        "sent",
    )

    def __init__(self) -> None:
        self.sent: float | None = None
        self.headers: float | None = None
        self.first_byte: float | None = None
        self.first_event: float | None = None
        self.end: float | None = None
        self.delta_times = array("d")
        self._uncounted = 0
        self.answer_chars = 0
        self.events = 0
        self.outcome: str | None = None
        self.error_type: str | None = None
        # When the chunk whose events the stream is reading arrived (events are decoded
        # when read; every one of them came with that chunk).
        self.chunk_at = 0.0

    # -- fed by the stream ------------------------------------------------------------------

    def on_events(self, queue: Sequence[Any], start: int, arrived: float) -> None:
        """A chunk arrived at ``arrived`` and queued ``queue[start:]`` (not yet decoded,
        some of them pings); the stream reads them before it reads the next chunk."""
        if self.first_event is None:
            self.first_event = arrived
        self.chunk_at = arrived
        added = len(queue) - start
        # The stream only calls this for chunks with more than pings: one item is an event.
        if added == 1:
            self.events += 1
        else:
            self.events += sum(1 for item in islice(queue, start, None) if item is not PING)

    def on_delta(self, size: int) -> None:
        """The stream took an answer delta of ``size`` characters from the current chunk."""
        times = self.delta_times
        if len(times) < MAX_DELTA_TIMES:
            times.append(self.chunk_at)
        else:
            self._uncounted += 1
        self.answer_chars += size

    @property
    def first_text(self) -> float | None:
        """When the first answer delta arrived."""
        return self.delta_times[0] if self.delta_times else None

    @property
    def delta_count(self) -> int:
        """The answer deltas read (also those beyond :data:`MAX_DELTA_TIMES`)."""
        return len(self.delta_times) + self._uncounted

    def finish(self, outcome: str, at: float, error: BaseException | None = None) -> None:
        """Record how and when the stream ended; the first call wins."""
        if self.end is not None:
            return
        self.end = at
        self.outcome = outcome
        self.error_type = type(error).__name__ if error is not None else None

    # -- metrics ----------------------------------------------------------------------------

    @property
    def ttft(self) -> float | None:
        """Time to first token: from sending the request to the first answer delta."""
        return _between(self.sent, self.first_text)

    @property
    def time_to_first_event(self) -> float | None:
        """From sending the request to the first event other than a ping."""
        return _between(self.sent, self.first_event)

    @property
    def total(self) -> float | None:
        """From sending the request to the end of the stream."""
        return _between(self.sent, self.end)

    def inter_token_gaps(self) -> array[float]:
        """The gaps between consecutive answer deltas, in seconds (deltas that came in one
        chunk have a gap of 0)."""
        times = self.delta_times
        return array("d", (times[i] - times[i - 1] for i in range(1, len(times))))

    def __repr__(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1e3:.1f}ms"

        return (
            f"<StreamTimings {self.outcome or 'open'} ttft={ms(self.ttft)} "
            f"total={ms(self.total)} deltas={self.delta_count} events={self.events}>"
        )


def _between(start: float | None, stop: float | None) -> float | None:
    return None if start is None or stop is None else stop - start
