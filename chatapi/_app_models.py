"""Results of workflow apps (``workflows.run``), kept apart from :mod:`chatapi.models` to
keep that module short; import them from :mod:`chatapi.models` or :mod:`chatapi`.

Completion apps answer in the shape of a chat answer, so ``completions.send`` returns the
same :class:`~chatapi.models.ChatCompletion` (``mode == "completion"``, no conversation).
"""

from __future__ import annotations

from typing import Any

import attrs

from ._serialize import Serializable
from .models import PauseReason

__all__ = ["WorkflowRunData", "WorkflowRunResult"]


@attrs.frozen(kw_only=True)
class WorkflowRunData(Serializable):
    """The outcome of one workflow run: status, outputs or error, cost and timing.

    ``status`` is ``succeeded``, ``failed``, ``stopped``, ``partial-succeeded`` or, for a
    run waiting at a Human Input node, ``paused``; then ``paused_nodes`` and ``reasons``
    (the forms to submit, with their ``form_token``) say how to resume it. ``created_by`` and
    ``files`` come only from a streamed run's ``workflow_finished``.
    """

    id: str | None = None
    workflow_id: str | None = None
    status: str | None = None
    outputs: dict[str, Any] | None = None
    error: str | None = None
    elapsed_time: float | None = None
    total_tokens: int | None = None
    total_steps: int | None = None
    created_at: int | None = None
    finished_at: int | None = None
    exceptions_count: int | None = None
    created_by: dict[str, Any] | None = None
    files: list[dict[str, Any]] = attrs.field(factory=list)
    paused_nodes: list[str] = attrs.field(factory=list)
    reasons: list[PauseReason] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class WorkflowRunResult(Serializable):
    """What ``workflows.run`` returns and ``stream.final_run()`` builds from a stream.

    ``task_id`` stops the run while it is going on; ``workflow_run_id`` finds it later
    (``workflows.get_run``, ``workflows.events``). The shortcuts read ``data``.
    """

    task_id: str | None = None
    workflow_run_id: str | None = None
    data: WorkflowRunData = attrs.field(factory=WorkflowRunData)
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def status(self) -> str | None:
        """Shortcut for ``data.status``."""
        return self.data.status

    @property
    def outputs(self) -> dict[str, Any]:
        """The workflow's output variables (empty while paused or after a failure)."""
        return self.data.outputs or {}

    @property
    def error(self) -> str | None:
        """Why the run failed, if it did."""
        return self.data.error

    @property
    def paused(self) -> bool:
        """True when the run is waiting for a Human Input form to be submitted."""
        return self.data.status == "paused"
