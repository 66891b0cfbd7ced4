"""The JSON payloads of Dify's chat events that more than one part of the fake server builds:
the common envelope, usage, node executions, and the data of finished and paused runs."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from ._state import WorkflowRun
from ._wire import new_id, now

__all__ = ["NodeExecution", "envelope", "finished_data", "paused_data", "usage_json"]

_UNIT_PRICE = Decimal("0.002")
_PRICE_UNIT = Decimal("0.001")
_PRICE_QUANTUM = Decimal("0.0000001")


def envelope(
    event: str, *, conversation_id: str, message_id: str, created_at: int, task_id: str
) -> dict[str, Any]:
    """The fields every chat event starts with, in Dify's order."""
    return {
        "event": event,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "created_at": created_at,
        "task_id": task_id,
    }


def _price(tokens: int) -> str:
    amount = (tokens * _UNIT_PRICE * _PRICE_UNIT).quantize(_PRICE_QUANTUM)
    return format(amount, "f")


def usage_json(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    latency: float,
    time_to_first_token: float | None,
    time_to_generate: float | None,
) -> dict[str, Any]:
    """``metadata.usage`` with every field a 1.15 server sends (prices as decimal text)."""
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_unit_price": str(_UNIT_PRICE),
        "prompt_price_unit": str(_PRICE_UNIT),
        "prompt_price": _price(prompt_tokens),
        "completion_tokens": completion_tokens,
        "completion_unit_price": str(_UNIT_PRICE),
        "completion_price_unit": str(_PRICE_UNIT),
        "completion_price": _price(completion_tokens),
        "total_tokens": prompt_tokens + completion_tokens,
        "total_price": _price(prompt_tokens + completion_tokens),
        "currency": "USD",
        "latency": round(latency, 3),
        "time_to_first_token": time_to_first_token,
        "time_to_generate": time_to_generate,
    }


class NodeExecution:
    """One execution of a workflow node, producing its started and finished payloads."""

    def __init__(self, node_id: str, node_type: str, title: str) -> None:
        self.id = new_id()
        self.node_id = node_id
        self.node_type = node_type
        self.title = title
        self.created_at = now()
        self._started = time.monotonic()

    def _head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "node_id": self.node_id,
            "node_type": self.node_type,
            "title": self.title,
            "index": 1,
            "predecessor_node_id": None,
        }

    def started(self) -> dict[str, Any]:
        return {
            **self._head(),
            "inputs": None,
            "inputs_truncated": False,
            "created_at": self.created_at,
            "extras": {},
            "iteration_id": None,
            "loop_id": None,
            "agent_strategy": None,
        }

    def finished(
        self,
        *,
        inputs: dict[str, Any],
        outputs: dict[str, Any],
        process_data: dict[str, Any] | None = None,
        status: str = "succeeded",
        execution_metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            **self._head(),
            "inputs": inputs,
            "inputs_truncated": False,
            "process_data": process_data or {},
            "process_data_truncated": False,
            "outputs": outputs,
            "outputs_truncated": False,
            "status": status,
            "error": None,
            "elapsed_time": round(time.monotonic() - self._started, 6),
            "execution_metadata": execution_metadata,
            "created_at": self.created_at,
            "finished_at": now(),
            "files": [],
            "iteration_id": None,
            "loop_id": None,
        }


def finished_data(run: WorkflowRun) -> dict[str, Any]:
    """The ``data`` of ``workflow_finished`` for a run that has ended."""
    return {
        "id": run.id,
        "workflow_id": run.workflow_id,
        "status": run.status,
        "outputs": run.outputs,
        "error": run.error,
        "elapsed_time": run.elapsed_time,
        "total_tokens": run.total_tokens,
        "total_steps": run.total_steps,
        "created_by": {"id": run.owner.id, "user": run.owner.session_id},
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "exceptions_count": 0,
        "files": [],
    }


def paused_data(run: WorkflowRun) -> dict[str, Any]:
    """The ``data`` of ``workflow_paused``."""
    assert run.form is not None
    return {
        "workflow_run_id": run.id,
        "paused_nodes": [run.form.node_id],
        "outputs": {},
        "reasons": [run.form.reason_json()],
        "status": "paused",
        "created_at": run.created_at,
        "elapsed_time": run.elapsed_time,
        "total_tokens": run.total_tokens,
        "total_steps": run.total_steps,
    }
