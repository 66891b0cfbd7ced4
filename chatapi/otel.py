"""OpenTelemetry tracing of chatapi calls (``pip install 'chatapi[otel]'``), off until enabled.

:func:`instrument` turns it on for every client, sync and async::

    import chatapi.otel
    chatapi.otel.instrument()          # or instrument(tracer_provider=provider)

Each API call is one ``CLIENT`` span following the OpenTelemetry HTTP client semantic
conventions (name ``POST /chat-messages``; ``http.request.method``, ``url.full``,
``url.template``, ``server.address``, ``server.port``, ``http.response.status_code``,
``http.request.resend_count`` when retried, ``error.type`` and an error status on failure),
child of the span current when the call was made. Retries stay inside the one span.

A stream's span lasts until the stream releases its connection and adds what Dify told:
``dify.app.mode``, ``dify.task_id``, ``dify.conversation_id``, ``dify.message_id``,
``dify.workflow_run_id``, ``dify.workflow.status``, token counts (``gen_ai.usage.input_tokens``,
``gen_ai.usage.output_tokens``, ``dify.usage.total_tokens``), the number of events, a
``first_token`` span event at the first answer text (``dify.time_to_first_token``: seconds
since the request was sent, from the stream's ``timings``), and how it ended in
``dify.stream.end``: ``completed``, ``paused``, ``stopped``, ``failed`` (an error event or a
failed workflow), ``incomplete`` (the body ended or broke early), ``timeout``, ``error`` (an
undecodable event), or ``closed`` (left before the end by the consumer). ``stopped`` covers
``stop()`` and ``chat.stop()`` through the same client as well as a stop from elsewhere. A
blocking chat answer carries the same ids and tokens.

The trace context goes out with every request: W3C ``traceparent`` (through the globally
configured propagator) and Dify's ``X-Trace-Id`` with the trace id, so that Dify's own traces
of the run can be found from yours (an ``X-Trace-Id`` in ``default_headers`` wins).

Nothing of this runs, and OpenTelemetry is not imported, unless this module is imported and
:func:`instrument` called: chatapi's core only checks one module attribute per call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from . import _trace
from ._version import __version__
from .errors import (
    APIStatusError,
    APITimeoutError,
    IncompleteStreamError,
    StreamError,
)

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_trace_id
except ImportError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "chatapi.otel needs OpenTelemetry: pip install 'chatapi[otel]'"
    ) from exc

if TYPE_CHECKING:
    from .streaming import AsyncChatStream

__all__ = ["instrument", "is_instrumented", "uninstrument"]

# Path segments that are ids (UUIDs, task ids, form tokens) become ``{id}`` in url.template.
_ID_SEGMENT = re.compile(r"/(?=[^/]*\d)[A-Za-z0-9_-]{16,}(?=/|$)")
# A blocking answer is decoded again for its ids and tokens only below this size.
_MAX_DECODED_BODY = 1 << 20


def instrument(*, tracer_provider: trace.TracerProvider | None = None) -> None:
    """Trace every call of every chatapi client from now on (see the module docstring).

    ``tracer_provider`` defaults to the global one. Calling it again replaces the provider.
    """
    _trace.tracer = _Tracer(trace.get_tracer("chatapi", __version__, tracer_provider))


def uninstrument() -> None:
    """Stop tracing; calls already running finish their spans."""
    _trace.tracer = None


def is_instrumented() -> bool:
    return isinstance(_trace.tracer, _Tracer)


class _Tracer:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start(self, method: str, url: str, path: str, *, stream: bool) -> _Call:
        parts = urlsplit(url)
        template = _ID_SEGMENT.sub("/{id}", path)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.full": url,
            "url.template": template,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        }
        span = self._tracer.start_span(
            f"{method} {template}", kind=SpanKind.CLIENT, attributes=attributes
        )
        return _Call(span, stream=stream)


class _Call:
    def __init__(self, span: Span, *, stream: bool) -> None:
        self.span = span
        self.resends = 0
        self._stream = stream
        self._ended = False

    def headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        carrier = dict(headers)
        propagate.inject(carrier, context=trace.set_span_in_context(self.span))
        context = self.span.get_span_context()
        if context.is_valid and not any(name.lower() == "x-trace-id" for name in headers):
            carrier["X-Trace-Id"] = format_trace_id(context.trace_id)
        return carrier

    def _http_done(self, status: int | None) -> None:
        if status is not None:
            self.span.set_attribute("http.response.status_code", status)
        if self.resends:
            self.span.set_attribute("http.request.resend_count", self.resends)

    def succeeded(self, status: int, result: Any) -> None:
        self._http_done(status)
        if self._stream:
            return  # the stream ends the span
        body = getattr(result, "body", None)
        if isinstance(body, bytes) and 0 < len(body) < _MAX_DECODED_BODY:
            self._set_answer_attributes(body)
        self._end()

    def _set_answer_attributes(self, body: bytes) -> None:
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if not isinstance(answer, dict) or "task_id" not in answer:
            return
        usage = (answer.get("metadata") or {}).get("usage") or {}
        self._set_dify(
            mode=answer.get("mode"),
            task_id=answer.get("task_id"),
            conversation_id=answer.get("conversation_id"),
            message_id=answer.get("message_id") or answer.get("id"),
            workflow_run_id=answer.get("workflow_run_id"),
            usage=usage if isinstance(usage, dict) else {},
        )

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, APIStatusError):
            self._http_done(exc.status_code)
            error_type = str(exc.status_code)
        else:
            self._http_done(None)
            error_type = type(exc).__qualname__
        self.span.set_attribute("error.type", error_type)
        self.span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
        self._end()

    def stream_ended(self, stream: AsyncChatStream) -> None:
        if self._ended:
            return
        end = stream._message_end
        usage = end.metadata.usage if end is not None and end.metadata is not None else None
        finished = stream._workflow_finished
        status = finished.data.status if finished is not None and finished.data else None
        self._set_dify(
            mode=stream._app_mode(),
            task_id=stream.task_id,
            conversation_id=stream.conversation_id,
            message_id=stream.message_id,
            workflow_run_id=stream.workflow_run_id,
            usage={
                "prompt_tokens": usage.prompt_tokens if usage else None,
                "completion_tokens": usage.completion_tokens if usage else None,
                "total_tokens": usage.total_tokens if usage else None,
            },
        )
        if status is not None:
            self.span.set_attribute("dify.workflow.status", status)
        self.span.set_attribute("dify.stream.events", stream._event_count)
        self._add_first_token(stream)
        outcome = _outcome(stream, status)
        self.span.set_attribute("dify.stream.end", outcome)
        failure = stream._failure
        if failure is not None or outcome == "failed":
            self.span.set_attribute(
                "error.type", type(failure).__qualname__ if failure else "StreamError"
            )
            message = str(failure) if failure else "the workflow run failed"
            self.span.set_status(Status(StatusCode.ERROR, message[:200]))
        self._end()

    def _add_first_token(self, stream: AsyncChatStream) -> None:
        """The ``first_token`` event, at the time the stream's timings recorded for it."""
        timings = stream.timings
        first_text, ttft = timings.first_text, timings.ttft
        if first_text is None or ttft is None:
            return
        # The timings use the event loop's monotonic clock; spans use wall-clock nanoseconds.
        ago = stream._clock() - first_text
        self.span.add_event(
            "first_token",
            {"dify.time_to_first_token": ttft},
            timestamp=time.time_ns() - int(ago * 1e9),
        )

    def _set_dify(
        self,
        *,
        mode: Any,
        task_id: Any,
        conversation_id: Any,
        message_id: Any,
        workflow_run_id: Any,
        usage: Mapping[str, Any],
    ) -> None:
        values = {
            "dify.app.mode": mode,
            "dify.task_id": task_id,
            "dify.conversation_id": conversation_id,
            "dify.message_id": message_id,
            "dify.workflow_run_id": workflow_run_id,
            "gen_ai.usage.input_tokens": usage.get("prompt_tokens"),
            "gen_ai.usage.output_tokens": usage.get("completion_tokens"),
            "dify.usage.total_tokens": usage.get("total_tokens"),
        }
        for name, value in values.items():
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                self.span.set_attribute(name, value)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self.span.end()


def _outcome(stream: AsyncChatStream, workflow_status: str | None) -> str:
    """How a stream ended, in one word (``dify.stream.end``)."""
    failure = stream._failure
    if isinstance(failure, StreamError):
        return "failed"
    if stream.stopped or stream._stop_requested or workflow_status == "stopped":
        return "stopped"
    if workflow_status == "failed":
        return "failed"
    if isinstance(failure, APITimeoutError):
        return "timeout"
    if isinstance(failure, IncompleteStreamError):
        return "incomplete"
    if failure is not None:
        return "error"
    if stream._paused is not None:
        return "paused"
    if stream._complete or stream._grace_deadline is not None:
        return "completed"
    return "closed"
