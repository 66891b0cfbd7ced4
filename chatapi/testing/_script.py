"""What the fake server answers and how: reply texts, pacing, and faults to inject.

A :class:`Script` belongs to one :class:`~chatapi.testing.FakeChatServer` (``server.script``).
Change it at any time, from any thread; a change applies from the next request on. Faults are
queued: each applies to the next ``times`` requests it concerns (``times=None``: all of them,
until :meth:`Script.reset`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = ["HTTPFault", "RunPlan", "Script", "split_tokens"]

Responder = Callable[[str], str]

_TOKEN = re.compile(r"\s+|\S+\s*")


def split_tokens(text: str) -> list[str]:
    """Cut text into word-sized tokens (each word keeps the spaces after it)."""
    return _TOKEN.findall(text)


def _check_times(times: int | None) -> int | None:
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a positive integer or None, got {times!r}")
    return times


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value


@attrs.define
class HTTPFault:
    """An error answer given instead of the real one."""

    status: int
    code: str
    message: str
    path: str | None
    method: str | None
    headers: dict[str, str]
    body: bytes | None
    content_type: str
    times: int | None

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path == path) and (
            self.method is None or self.method == method
        )


@attrs.define
class _RunRule:
    """One queued change to the next chat runs (see the Script methods)."""

    kind: str
    times: int | None
    streaming_only: bool
    options: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class RunPlan:
    """The faults and behaviours that apply to one chat run, taken from the script."""

    error_after: int | None = None
    error: dict[str, Any] | None = None
    drop_after_bytes: int | None = None
    keep_open: bool = False
    pings_only: bool = False
    ping_interval: float | None = None
    flood: int | None = None
    pause_for_input: bool = False
    stop_as_failure: bool = False


_DEFAULT_CODES = {
    400: (
        "bad_request",
        "The browser (or proxy) sent a request that this server could not understand.",
    ),
    401: ("unauthorized", "Access token is invalid"),
    403: ("forbidden", "The app's API service has been disabled."),
    404: ("not_found", "Conversation Not Exists."),
    413: ("file_too_large", "File size exceeded."),
    415: ("unsupported_file_type", "File type not allowed."),
    429: ("too_many_requests", "Too many requests. Please try again later."),
    500: (
        "internal_server_error",
        "The server encountered an internal error and was unable "
        "to complete your request. Either the server is overloaded or there is an error in "
        "the application.",
    ),
}
DEFAULT_TRANSCRIPT = "This is what the fake server heard."


class Script:
    """Reply texts, pacing and queued faults of a fake server.

    Replies: :meth:`reply` answers one exact query with a given text; :meth:`reply_with`
    sets the answer to every other query (a text, a mapping of query to text, or a function
    of the query). Without either the server echoes: ``"Echo: <query>"``.

    Pacing: the answer goes out ``tokens_per_chunk`` words per ``message`` event, with
    ``chunk_delay`` seconds before each event.
    """

    def __init__(
        self,
        *,
        replies: str | Mapping[str, str] | Responder | None = None,
        tokens_per_chunk: int = 1,
        chunk_delay: float = 0.0,
    ) -> None:
        self._lock = threading.Lock()
        self._exact: dict[str, str] = {}
        self._responder: str | Mapping[str, str] | Responder | None = None
        self._http_faults: list[HTTPFault] = []
        self._run_rules: list[_RunRule] = []
        self.tokens_per_chunk = tokens_per_chunk
        self.chunk_delay = chunk_delay
        self.transcript = DEFAULT_TRANSCRIPT
        if replies is not None:
            self.reply_with(replies)
        self._initial = (self._responder, self._tokens_per_chunk, self._chunk_delay)

    # -- replies and pacing -------------------------------------------------------------

    @property
    def tokens_per_chunk(self) -> int:
        """Words of the answer per ``message`` event (at least 1)."""
        return self._tokens_per_chunk

    @tokens_per_chunk.setter
    def tokens_per_chunk(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"tokens_per_chunk must be an integer >= 1, got {value!r}")
        self._tokens_per_chunk = value

    @property
    def chunk_delay(self) -> float:
        """Seconds the server waits before each ``message`` event."""
        return self._chunk_delay

    @chunk_delay.setter
    def chunk_delay(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"chunk_delay must be a number of seconds >= 0, got {value!r}")
        self._chunk_delay = float(value)

    def reply(self, query: str, text: str) -> None:
        """Answer ``text`` whenever the query is exactly ``query``."""
        if not isinstance(query, str) or not isinstance(text, str):
            raise TypeError("reply(query, text) takes two strings")
        with self._lock:
            self._exact[query] = text

    def reply_with(self, responder: str | Mapping[str, str] | Responder) -> None:
        """Set the answer to queries :meth:`reply` does not cover.

        A string is the answer to all of them; a mapping answers the queries it has (the
        others are echoed); a function gets the query and returns the answer.
        """
        if not isinstance(responder, (str, Mapping)) and not callable(responder):
            raise TypeError(
                "reply_with() takes a string, a mapping of query to answer or a function, "
                f"got {type(responder).__name__}"
            )
        with self._lock:
            self._responder = responder

    def answer_for(self, query: str, *, files: list[str] | None = None) -> str:
        """The answer the server gives to ``query`` (with the names of attached files)."""
        with self._lock:
            exact = self._exact.get(query)
            responder = self._responder
        if exact is not None:
            return exact
        if isinstance(responder, str):
            return responder
        if isinstance(responder, Mapping):
            found = responder.get(query)
            if found is not None:
                return str(found)
        elif responder is not None:
            text = responder(query)
            if not isinstance(text, str):
                raise TypeError(f"the reply function returned {type(text).__name__}, not str")
            return text
        echo = f"Echo: {query}"
        if files:
            echo += f" [files: {', '.join(files)}]"
        return echo

    def chunks(self, text: str) -> list[str]:
        """The ``message`` deltas ``text`` goes out in."""
        tokens = split_tokens(text)
        size = self._tokens_per_chunk
        return ["".join(tokens[i : i + size]) for i in range(0, len(tokens), size)]

    # -- faults -------------------------------------------------------------------------

    def fail(
        self,
        status: int,
        code: str | None = None,
        message: str | None = None,
        *,
        times: int | None = 1,
        path: str | None = None,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "text/html",
    ) -> None:
        """Answer the next ``times`` requests with an HTTP error instead of the real answer.

        ``code`` and ``message`` go into Dify's ``{"code", "message", "status"}`` body (a
        typical pair for the status when left out). ``path`` (e.g. ``"/chat-messages"``,
        relative to ``/v1``) and ``method`` limit the requests concerned. ``body`` replaces
        the JSON body with raw bytes of ``content_type``, like a gateway's HTML error page;
        ``headers`` are added (``Retry-After``...).
        """
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), got {status!r}")
        default_code, default_message = _DEFAULT_CODES.get(
            status, ("internal_server_error" if status >= 500 else "bad_request", "Fake error.")
        )
        fault = HTTPFault(
            status=status,
            code=code if code is not None else default_code,
            message=message if message is not None else default_message,
            path=path,
            method=method.upper() if method is not None else None,
            headers=dict(headers or {}),
            body=body,
            content_type=content_type,
            times=_check_times(times),
        )
        with self._lock:
            self._http_faults.append(fault)

    def error_event(
        self,
        *,
        after: int = 0,
        code: str = "internal_server_error",
        message: str = "Internal Server Error, please contact support.",
        status: int = 500,
        times: int | None = 1,
    ) -> None:
        """In the next streamed answers, send an ``error`` event after ``after`` events
        (pings not counted) and end the stream there."""
        error = {"code": code, "status": status, "message": message}
        self._add_rule("error", times, error_after=_check_count("after", after), error=error)

    def drop_after(self, n_bytes: int, *, times: int | None = 1) -> None:
        """Close the connection of the next streamed answers after ``n_bytes`` bytes of body,
        without ending the chunked body properly (as a broken connection does)."""
        self._add_rule("drop", times, drop_after_bytes=_check_count("n_bytes", n_bytes))

    def keep_open(self, *, times: int | None = 1) -> None:
        """After the last event of the next streamed answers, keep the connection open
        (sending pings) until the client goes away, as some Dify versions do."""
        self._add_rule("keep_open", times, keep_open=True)

    def pings_only(self, *, interval: float | None = None, times: int | None = 1) -> None:
        """Let the next streamed answers send nothing but pings (every ``interval`` seconds,
        default the server's ``ping_interval``) until the client goes away."""
        if interval is not None and not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self._add_rule("pings_only", times, pings_only=True, ping_interval=interval)

    def flood(self, n_events: int, *, times: int | None = 1) -> None:
        """Stream ``n_events`` ``message`` events as fast as possible in the next streamed
        answers (no delay, big writes), then end the run normally. For benchmarks."""
        if _check_count("n_events", n_events) == 0:
            raise ValueError("n_events must be at least 1")
        self._add_rule("flood", times, flood=n_events)

    def pause_for_input(self, *, times: int | None = 1) -> None:
        """Make the next Chatflow runs (streaming or blocking) stop at a Human Input node.

        The stream ends with ``human_input_required`` and ``workflow_paused``; the form can
        then be read and submitted (``/form/human_input/{token}``) and the rest of the run
        followed with ``GET /workflow/{workflow_run_id}/events``.
        """
        self._add_rule("pause", times, streaming_only=False, pause_for_input=True)

    def stop_as_failure(self, *, times: int | None = 1) -> None:
        """Make the next stopped Chatflow runs report the stop the way Dify 1.15 does when
        the stop request races the run: ``workflow_finished`` with status ``failed`` and
        error ``"Aborted: User requested stop"``, and no ``message_end``. (By default a
        stopped run ends with status ``stopped``.)"""
        self._add_rule("stop_as_failure", times, stop_as_failure=True)

    def reset(self) -> None:
        """Drop every queued fault and scripted reply; the replies and pacing given when the
        server was created apply again."""
        with self._lock:
            self._exact.clear()
            self._http_faults.clear()
            self._run_rules.clear()
            self._responder, self._tokens_per_chunk, self._chunk_delay = self._initial
            self.transcript = DEFAULT_TRANSCRIPT

    # -- used by the server -------------------------------------------------------------

    def _add_rule(
        self, kind: str, times: int | None, *, streaming_only: bool = True, **options: Any
    ) -> None:
        rule = _RunRule(
            kind=kind, times=_check_times(times), streaming_only=streaming_only, options=options
        )
        with self._lock:
            self._run_rules.append(rule)

    def take_http_fault(self, method: str, path: str) -> HTTPFault | None:
        """The HTTP fault for this request, if one is queued (counts it as used)."""
        with self._lock:
            for fault in self._http_faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._http_faults.remove(fault)
                    return fault
        return None

    def take_run_plan(self, *, streaming: bool) -> RunPlan:
        """Everything queued for the next chat run (counts each rule as used once)."""
        plan = RunPlan()
        with self._lock:
            for rule in list(self._run_rules):
                if rule.streaming_only and not streaming:
                    continue
                for name, value in rule.options.items():
                    if value is not None:
                        setattr(plan, name, value)
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._run_rules.remove(rule)
        return plan
