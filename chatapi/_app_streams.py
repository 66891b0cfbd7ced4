"""The streams of workflow and completion apps: the chat stream's engine, other closers.

A workflow app (``POST /workflows/run``) sends its text as ``text_chunk`` events (rewritten
by ``text_replace``; the chat stream reads both) and no ``message_end``: its stream ends at
once on ``workflow_finished`` or ``workflow_paused``. A completion app
(``POST /completion-messages``) streams like a chat app and ends on ``message_end``; only
its answer has no conversation. Everything else (ids,
timeouts, errors, stop, connection release) is :class:`~chatapi.streaming.AsyncChatStream`'s.
"""

from __future__ import annotations

from typing import Any

import attrs

from .events import StreamEvent
from .models import ChatCompletion, WorkflowRunData, WorkflowRunResult
from .streaming import AsyncChatStream

__all__ = ["AsyncCompletionStream", "AsyncWorkflowStream"]


class AsyncWorkflowStream(AsyncChatStream):
    """The events of one workflow app run; use it as an async context manager::

        async with client.workflows.stream(inputs={"query": "Hi"}) as stream:
            async for text in stream.text_stream:
                print(text, end="")
        run = await stream.final_run()

    ``text_stream`` yields the ``text_chunk`` deltas, ``current_answer`` is the text so far
    (``text_replace`` applied), ``final_run()`` the same :class:`WorkflowRunResult` as
    ``workflows.run``; ``final_message()`` the text as a chat-shaped answer
    (``mode == "workflow"``). A failed run raises :class:`StreamError`; a paused one ends
    cleanly (``final_run().paused``) and can be followed with ``workflows.events``.
    """

    __slots__ = ()

    async def __aenter__(self) -> AsyncWorkflowStream:
        await self._open()
        return self

    def __aiter__(self) -> AsyncWorkflowStream:
        return self

    @property
    def outputs(self) -> dict[str, Any]:
        """The run's output variables once ``workflow_finished`` has arrived, else empty."""
        finished = self._workflow_finished
        if finished is None or finished.data is None:
            return {}
        return finished.data.outputs or {}

    async def final_run(self) -> WorkflowRunResult:
        """Read the rest of the stream and return the run's result, as ``workflows.run``
        would."""
        async for _ in self:
            pass
        return self._run_result()

    def _accept_closer(self, event: StreamEvent) -> None:
        super()._accept_closer(event)
        # No message_end follows in a workflow app: the run's own end is the stream's.
        if self._workflow_finished is not None:
            self._complete = True

    def _completion(self) -> ChatCompletion:
        # final_message() of a workflow run: its text as a chat-shaped answer.
        return attrs.evolve(super()._completion(), mode="workflow")

    def _run_result(self) -> WorkflowRunResult:
        finished, paused = self._workflow_finished, self._paused
        if finished is not None and finished.data is not None:
            done = finished.data
            data = WorkflowRunData(
                id=done.id,
                workflow_id=done.workflow_id,
                status=done.status,
                outputs=done.outputs,
                error=done.error,
                elapsed_time=done.elapsed_time,
                total_tokens=done.total_tokens,
                total_steps=done.total_steps,
                created_at=done.created_at,
                finished_at=done.finished_at,
                exceptions_count=done.exceptions_count,
                created_by=done.created_by,
                files=list(done.files),
            )
            raw = dict(finished.raw)
        elif paused is not None and paused.data is not None:
            pause = paused.data
            data = WorkflowRunData(
                id=pause.workflow_run_id or self.workflow_run_id,
                status=pause.status or "paused",
                outputs=pause.outputs,
                elapsed_time=pause.elapsed_time,
                total_tokens=pause.total_tokens,
                total_steps=pause.total_steps,
                created_at=pause.created_at,
                paused_nodes=list(pause.paused_nodes),
                reasons=list(pause.reasons),
            )
            raw = dict(paused.raw)
        else:
            # Stopped or closed before the run said how it ended.
            data, raw = WorkflowRunData(id=self.workflow_run_id), {}
        return WorkflowRunResult(
            task_id=self.task_id, workflow_run_id=self.workflow_run_id, data=data, raw=raw
        )

    def __repr__(self) -> str:
        return super().__repr__().replace("<AsyncChatStream", "<AsyncWorkflowStream", 1)


class AsyncCompletionStream(AsyncChatStream):
    """The events of one completion app answer: a chat stream whose ``final_message()``
    says ``mode == "completion"`` and has no conversation."""

    __slots__ = ()

    async def __aenter__(self) -> AsyncCompletionStream:
        await self._open()
        return self

    def __aiter__(self) -> AsyncCompletionStream:
        return self

    def _completion(self) -> ChatCompletion:
        return attrs.evolve(super()._completion(), mode="completion")
