"""The fake server as a load target: answer shape, pacing, injected failures and counters.

``FakeChatServer(load=LoadSettings(...))`` turns a fake app into something to point a load
tool at: every answer has the same number of ``message`` events, the first one comes after
a think time, a share of the requests fail, and the server counts what it completed so that
a test can compare the client's counts with the server's. ``stamp_send_times`` adds the
server's clock to every answer delta, so a client on the same machine can tell how much
latency it added itself.
"""

from __future__ import annotations

import random

import attrs

from ._script import split_tokens
from ._state import Conversation, Message, Store, WorkflowRun

__all__ = ["LoadSettings", "StreamCounts"]

SENT_AT_FIELD = "sent_at"
# Conversations a load target keeps for follow-up questions (the oldest go first).
KEPT_CONVERSATIONS = 10_000


def _check_rate(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be a fraction from 0 to 1, got {value!r}")


def _check_delay(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a number of seconds >= 0, got {value!r}")


def _check_events(
    instance: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{attribute.name} must be an integer >= 1 or None, got {value!r}")


@attrs.frozen
class LoadSettings:
    """How a fake server behaves as a load target.

    - ``events_per_answer``: every answer goes out in exactly this many ``message`` events
      (the reply's words repeated or cut to fit); ``None`` keeps the reply as it is.
    - ``first_token_delay``: seconds before the first ``message`` event (the model's think
      time); the server's ``chunk_delay`` then paces the events after it.
    - ``error_rate``: the share of streamed runs that end with an ``error`` event part-way.
    - ``rate_limit_rate``: the share of chat requests answered ``429 Too Many Requests``.
    - ``stamp_send_times``: each answer delta carries ``sent_at``, the server's
      ``time.monotonic()`` when it was written (comparable with the client's clock on the
      same machine only).
    - ``seed``: makes the injected failures repeatable.

    A server with load settings does not keep the list of received requests
    (``server.requests``), nor finished runs and their messages, which would grow with
    every stream; it keeps the latest 10,000 conversations for follow-up questions.
    """

    events_per_answer: int | None = attrs.field(default=None, validator=_check_events)
    first_token_delay: float = attrs.field(default=0.0, validator=_check_delay)
    error_rate: float = attrs.field(default=0.0, validator=_check_rate)
    rate_limit_rate: float = attrs.field(default=0.0, validator=_check_rate)
    stamp_send_times: bool = False
    seed: int | None = None


@attrs.frozen
class StreamCounts:
    """What a fake server did with streamed chat runs so far.

    ``started``: streams opened; ``completed``: streams whose every event was written (the
    run neither failed, nor was stopped or paused, nor lost its client); ``errors``: streams
    ended by an ``error`` event (``error_rate`` or ``script.error_event``); ``rate_limited``:
    requests answered 429 by ``rate_limit_rate``.
    """

    started: int = 0
    completed: int = 0
    errors: int = 0
    rate_limited: int = 0


class LoadState:
    """The live counters and the random draws of one server (used on its loop only)."""

    def __init__(self, settings: LoadSettings | None) -> None:
        self.settings = settings or LoadSettings()
        self.enabled = settings is not None
        self._random = random.Random(self.settings.seed)
        self.started = 0
        self.completed = 0
        self.errors = 0
        self.rate_limited = 0

    def counts(self) -> StreamCounts:
        return StreamCounts(
            started=self.started,
            completed=self.completed,
            errors=self.errors,
            rate_limited=self.rate_limited,
        )

    def forget(
        self,
        store: Store,
        conversation: Conversation,
        message: Message,
        workflow: WorkflowRun | None,
    ) -> None:
        """Drop a finished run's records, so that a long load test does not grow memory;
        the conversation stays (the latest few thousand) for follow-up questions."""
        store.messages.pop(message.id, None)
        if message in conversation.messages:
            conversation.messages.remove(message)
        if workflow is not None:
            store.runs.pop(workflow.id, None)
        conversations = store.conversations
        while len(conversations) > KEPT_CONVERSATIONS:
            del conversations[next(iter(conversations))]

    def draw_rate_limited(self) -> bool:
        rate = self.settings.rate_limit_rate
        if rate and self._random.random() < rate:
            self.rate_limited += 1
            return True
        return False

    def draw_error_after(self, n_events: int) -> int | None:
        """Where to cut a run with an error event (events before it), or None."""
        rate = self.settings.error_rate
        if rate and self._random.random() < rate:
            return self._random.randint(1, max(n_events, 1))
        return None

    def shape(self, text: str) -> list[str] | None:
        """The answer's deltas when ``events_per_answer`` fixes their number."""
        count = self.settings.events_per_answer
        if count is None:
            return None
        # Each token keeps a space after it, so that repeated words stay apart.
        tokens = [t if t[-1].isspace() else t + " " for t in split_tokens(text)] or ["token "]
        return [tokens[i % len(tokens)] for i in range(count)]
