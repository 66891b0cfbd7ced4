"""Runs of the fake workflow and completion apps: the chat run's machinery, their events.

A workflow app (Dify's ``WorkflowAppGenerateResponseConverter``) sends ``event``,
``task_id``, ``workflow_run_id`` and ``data`` per event, its text as ``text_chunk``, and ends
with ``workflow_finished`` (or ``workflow_paused``); there is no conversation and no
``message_end``. A completion app streams ``message`` chunks and ``message_end`` like a
chatbot, without ``conversation_id``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._context import INTRODUCTION
from ._payloads import NodeExecution, paused_data
from ._run import ChatRun
from ._script import RunPlan
from ._state import AttachedFile, Conversation, EndUser, Message

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["CompletionRun", "WorkflowAppRun", "text_of_inputs"]

# The output variable of the fake workflow's End node.
OUTPUT = "result"


def text_of_inputs(inputs: dict[str, Any]) -> str:
    """What the fake app answers to: the ``query`` input if there is one, else all inputs."""
    query = inputs.get("query")
    if isinstance(query, str):
        return query
    return json.dumps(inputs, sort_keys=True, ensure_ascii=False)


def _hidden_turn(
    owner: EndUser, inputs: dict[str, Any], files: list[AttachedFile]
) -> tuple[Conversation, Message]:
    # A run keeps its inputs and text on a message of a conversation of its own (Dify keeps
    # one for completions too); neither is stored, so no conversation list shows them.
    conversation = Conversation(
        owner=owner, name="", inputs=dict(inputs), introduction=INTRODUCTION
    )
    message = Message(
        conversation_id=conversation.id,
        query=text_of_inputs(inputs),
        inputs=dict(inputs),
        files=files,
    )
    return conversation, message


class WorkflowAppRun(ChatRun):
    """A run started by ``POST /workflows/run``: Start, LLM (streaming ``text_chunk``) and End
    nodes, or a pause at a Human Input node after the LLM when the script asks for one."""

    def __init__(
        self,
        ctx: Context,
        *,
        owner: EndUser,
        inputs: dict[str, Any],
        files: list[AttachedFile],
        plan: RunPlan,
    ) -> None:
        conversation, message = _hidden_turn(owner, inputs, files)
        super().__init__(
            ctx,
            owner=owner,
            conversation=conversation,
            message=message,
            plan=plan,
            answer_text=ctx.script.answer_for(message.query, files=[f.filename for f in files]),
        )

    def envelope(self, event: str) -> dict[str, Any]:
        return {"event": event, "task_id": self.task_id}

    def error_event(self, error: dict[str, Any]) -> dict[str, Any]:
        assert self.workflow is not None
        return {
            "event": "error",
            "workflow_run_id": self.workflow.id,
            "code": error.get("code"),
            "status": error.get("status"),
            "message": error.get("message"),
        }

    def _chunk_event(self, event: str, chunk: str, selector: list[str] | None) -> dict[str, Any]:
        data = {"text": chunk, "from_variable_selector": selector}
        return self.workflow_event("text_chunk", data)

    async def play_events(self) -> None:
        run = self.workflow
        assert run is not None
        if self.stream is not None:
            await self.stream.ping()
        inputs = self.message.inputs
        system = {
            **inputs,
            "sys.files": [f.message_end_json(self.ctx.origin) for f in self.message.files],
            "sys.user_id": self.owner.session_id,
            "sys.app_id": self.ctx.app_id,
            "sys.workflow_id": self.ctx.workflow_id,
            "sys.workflow_run_id": run.id,
        }
        await self.emit(
            self.workflow_event(
                "workflow_started",
                {
                    "id": run.id,
                    "workflow_id": run.workflow_id,
                    "inputs": system,
                    "created_at": run.created_at,
                    "reason": "initial",
                },
            )
        )
        start = NodeExecution("start", "start", "Start")
        await self.emit(self.workflow_event("node_started", start.started()))
        await self.emit(
            self.workflow_event("node_finished", start.finished(inputs=inputs, outputs=inputs))
        )
        llm = NodeExecution("llm", "llm", "LLM")
        await self.emit(self.workflow_event("node_started", llm.started()))
        await self._generate("text_chunk", ["llm", "text"])
        usage = self._finish_usage()
        stopped = self.stop_requested
        await self.emit(
            self.workflow_event(
                "node_finished",
                llm.finished(
                    inputs={},
                    outputs={"text": self.message.answer, "usage": usage},
                    status="stopped" if stopped else "succeeded",
                    execution_metadata={"total_tokens": usage["total_tokens"]},
                ),
            )
        )
        run.total_tokens = usage["total_tokens"]
        run.total_steps = 2
        if stopped:
            if self.plan.stop_as_failure:
                run.finish("failed", outputs={}, error="Aborted: User requested stop")
                await self.emit(self._workflow_finished())
                run.status = "stopped"
                return
            run.finish("stopped", outputs={})
            await self.emit(self._workflow_finished())
            return
        if self.plan.pause_for_input:
            await self._pause()
            return
        end = NodeExecution("end", "end", "End")
        outputs = {OUTPUT: self.message.answer}
        await self.emit(self.workflow_event("node_started", end.started()))
        await self.emit(
            self.workflow_event("node_finished", end.finished(inputs={}, outputs=outputs))
        )
        run.total_steps = 3
        run.finish("succeeded", outputs=outputs)
        await self.emit(self._workflow_finished())

    def blocking_body(self) -> dict[str, Any]:
        run = self.workflow
        assert run is not None
        data: dict[str, Any] = {
            "id": run.id,
            "workflow_id": run.workflow_id,
            "status": run.status,
            "outputs": run.outputs,
            "error": run.error,
            "elapsed_time": run.elapsed_time,
            "total_tokens": run.total_tokens,
            "total_steps": run.total_steps,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
        }
        if self.paused is not None:
            pause = paused_data(run)
            data.update(paused_nodes=pause["paused_nodes"], reasons=pause["reasons"])
        return {"task_id": self.task_id, "workflow_run_id": run.id, "data": data}


class CompletionRun(ChatRun):
    """A run started by ``POST /completion-messages``: ``message`` chunks and ``message_end``."""

    def __init__(
        self,
        ctx: Context,
        *,
        owner: EndUser,
        inputs: dict[str, Any],
        query: str | None,
        files: list[AttachedFile],
        plan: RunPlan,
    ) -> None:
        conversation, message = _hidden_turn(owner, inputs, files)
        if query:
            message.query = query
        super().__init__(
            ctx,
            owner=owner,
            conversation=conversation,
            message=message,
            plan=plan,
            answer_text=ctx.script.answer_for(message.query, files=[f.filename for f in files]),
        )

    def envelope(self, event: str) -> dict[str, Any]:
        return {
            "event": event,
            "task_id": self.task_id,
            "message_id": self.message.id,
            "created_at": self.message.created_at,
        }

    def error_event(self, error: dict[str, Any]) -> dict[str, Any]:
        return {
            "event": "error",
            "message_id": self.message.id,
            "code": error.get("code"),
            "status": error.get("status"),
            "message": error.get("message"),
        }

    def _chunk_event(self, event: str, chunk: str, selector: list[str] | None) -> dict[str, Any]:
        payload = self.envelope("message")
        payload["id"] = self.message.id
        payload["answer"] = chunk
        return payload

    async def play_events(self) -> None:
        await self._play_chat()

    def blocking_body(self) -> dict[str, Any]:
        return {
            "event": "message",
            "task_id": self.task_id,
            "id": self.message.id,
            "message_id": self.message.id,
            "mode": "completion",
            "answer": self.message.answer,
            "metadata": self.metadata(),
            "created_at": self.message.created_at,
        }
