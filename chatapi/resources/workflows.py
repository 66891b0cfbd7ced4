"""``client.workflows``: run a workflow app, and the runs of workflow and Chatflow apps:
their detail, the logs, and re-attaching to a run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from .._app_streams import AsyncWorkflowStream
from .._config import Timeout
from .._convert import structure
from ..errors import BadRequestError
from ..models import Page, WorkflowLog, WorkflowRun, WorkflowRunResult
from ..pagination import iter_numbered_pages, structure_page
from ..streaming import AsyncChatStream
from ._base import AsyncResource, check_positive_int, check_str, path_segment, query_params
from ._inputs import app_request_body
from .chat import FileArgument, stop_task

__all__ = ["AsyncWorkflows"]


def _check_date(value: str | datetime | None, name: str) -> None:
    if value is not None and not isinstance(value, (str, datetime)):
        raise TypeError(f"{name} must be a datetime or ISO 8601 text, got {type(value).__name__}")


def _check_flag(value: bool, name: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a boolean, got {type(value).__name__}")


class AsyncWorkflows(AsyncResource):
    """Workflow runs: start, stop and follow them (workflow apps); their detail, logs and
    events (workflow and Chatflow apps)."""

    def _run_request(
        self,
        inputs: Mapping[str, Any] | None,
        *,
        mode: str,
        user: str | None,
        files: Sequence[FileArgument] | None,
        workflow_id: str | None,
    ) -> tuple[str, dict[str, Any]]:
        path = (
            "/workflows/run"
            if workflow_id is None
            else f"/workflows/{path_segment(workflow_id, 'workflow_id')}/run"
        )
        return path, app_request_body(inputs, mode=mode, user=self._user(user), files=files)

    async def run(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        user: str | None = None,
        files: Sequence[FileArgument] | None = None,
        timeout: Timeout | float | None = None,
    ) -> WorkflowRunResult:
        """Run the workflow app with ``inputs`` and wait for its result (blocking mode).

        ``workflow_id`` runs that published version instead of the latest. File variables
        take :class:`InputFile` values (or lists of them). A failed run comes back with
        ``status == "failed"`` and its ``error``; a run waiting at a Human Input node with
        ``paused`` true and the forms in ``data.reasons``. Long runs are better streamed:
        proxies may cut a blocking request (Dify Cloud after 100 s).
        """
        path, body = self._run_request(
            inputs, mode="blocking", user=user, files=files, workflow_id=workflow_id
        )
        data = await self._http.request_json(
            "POST", path, json=body, timeout=self._timeout(timeout)
        )
        return structure(data, WorkflowRunResult, what="the workflow run result")

    def stream(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        user: str | None = None,
        files: Sequence[FileArgument] | None = None,
        include_pings: bool = False,
        timeout: Timeout | float | None = None,
    ) -> AsyncWorkflowStream:
        """Run the workflow app in streaming mode; use the result with ``async with``.

        The request goes out when the stream is entered (or first iterated). The stream
        ends on ``workflow_finished`` (a failed run raises :class:`StreamError`) or
        ``workflow_paused`` (follow the run with :meth:`events` once the form is submitted);
        ``stream.stop()`` stops the run.
        """
        path, body = self._run_request(
            inputs, mode="streaming", user=user, files=files, workflow_id=workflow_id
        )
        limits = self._timeout(timeout)
        http = self._http
        user_id = body["user"]

        async def stop_run(task_id: str) -> None:
            await self.stop(task_id, user=user_id)

        return AsyncWorkflowStream(
            lambda: http.open("POST", path, json=body, timeout=limits, stream=True),
            timeout=limits,
            stopper=stop_run,
            include_pings=include_pings,
            max_event_size=self._client.max_event_size,
            description=f"POST {path}",
            registry=self._client._streams,
        )

    async def stop(
        self, task_id: str, *, user: str | None = None, timeout: Timeout | float | None = None
    ) -> None:
        """Stop a streaming workflow run by its ``task_id`` (workflow apps).

        A stream of this client reading that run ends cleanly, with ``stream.stopped`` set.
        Dify answers success even for an unknown or finished task.
        """
        path = f"/workflows/tasks/{path_segment(task_id, 'task_id')}/stop"
        await stop_task(self, path, task_id, user=user, timeout=timeout)

    async def get_run(
        self, workflow_run_id: str, *, timeout: Timeout | float | None = None
    ) -> WorkflowRun:
        """The status, inputs, outputs and cost of one run."""
        path = f"/workflows/run/{path_segment(workflow_run_id, 'workflow_run_id')}"
        data = await self._http.request_json("GET", path, timeout=self._timeout(timeout))
        return structure(data, WorkflowRun, what="the workflow run")

    async def logs(
        self,
        *,
        keyword: str | None = None,
        status: str | None = None,
        page: int = 1,
        limit: int = 20,
        created_at_before: str | datetime | None = None,
        created_at_after: str | datetime | None = None,
        created_by_end_user_session_id: str | None = None,
        created_by_account: str | None = None,
        timeout: Timeout | float | None = None,
    ) -> Page[WorkflowLog]:
        """One page of the workflow logs, newest first, filtered by the arguments given.

        Always empty for Chatflow apps: Dify writes these rows for workflow-mode apps only.

        ``status`` is ``succeeded``, ``failed`` or ``stopped``; the dates (datetimes or
        ISO 8601 text) go out as Dify's ``created_at__before`` / ``created_at__after``;
        ``created_by_end_user_session_id`` is a ``user`` string.
        """
        check_str(keyword, "keyword", optional=True)
        check_str(status, "status", optional=True)
        check_positive_int(page, "page")
        check_positive_int(limit, "limit")
        _check_date(created_at_before, "created_at_before")
        _check_date(created_at_after, "created_at_after")
        check_str(created_by_end_user_session_id, "created_by_end_user_session_id", optional=True)
        check_str(created_by_account, "created_by_account", optional=True)
        params = query_params(
            {
                "keyword": keyword,
                "status": status,
                "page": page,
                "limit": limit,
                "created_at__before": created_at_before,
                "created_at__after": created_at_after,
                "created_by_end_user_session_id": created_by_end_user_session_id,
                "created_by_account": created_by_account,
            }
        )
        data = await self._http.request_json(
            "GET", "/workflows/logs", params=params, timeout=self._timeout(timeout)
        )
        return structure_page(data, WorkflowLog, what="the workflow logs", limit=limit, page=page)

    async def iter_logs(
        self,
        *,
        keyword: str | None = None,
        status: str | None = None,
        created_at_before: str | datetime | None = None,
        created_at_after: str | datetime | None = None,
        created_by_end_user_session_id: str | None = None,
        created_by_account: str | None = None,
        page_size: int = 100,
        timeout: Timeout | float | None = None,
    ) -> AsyncIterator[WorkflowLog]:
        """Every log entry matching the filters, newest first, fetching pages as needed.

        Always empty for Chatflow apps: Dify writes these rows for workflow-mode apps only.
        """

        async def fetch(page: int) -> Page[WorkflowLog]:
            return await self.logs(
                keyword=keyword,
                status=status,
                page=page,
                limit=page_size,
                created_at_before=created_at_before,
                created_at_after=created_at_after,
                created_by_end_user_session_id=created_by_end_user_session_id,
                created_by_account=created_by_account,
                timeout=timeout,
            )

        async for log in iter_numbered_pages(fetch, key=lambda item: item.id):
            yield log

    def events(
        self,
        workflow_run_id: str,
        *,
        user: str | None = None,
        include_state_snapshot: bool = False,
        continue_on_pause: bool = False,
        include_pings: bool = False,
        timeout: Timeout | float | None = None,
    ) -> AsyncChatStream:
        """Re-attach to a run's event stream: after a dropped connection, or to follow a
        run resumed by ``human_input.submit``. Use the result with ``async with``.

        ``user`` must be the user who started the run. ``include_state_snapshot`` replays
        the events of the nodes that already ran. A finished run sends its final
        ``workflow_finished`` only. The stream ends on the run's closing event:
        ``workflow_finished``, or ``workflow_paused`` at the next Human Input node. With
        ``continue_on_pause`` it follows the run across pauses instead (the server keeps the
        connection open) and ends on ``workflow_finished``; set ``Timeout(stream_idle=None)``
        or a long limit when a person may take a while to fill in the form.
        ``stream.stop()`` stops the run (of a Chatflow or a workflow app).
        """
        path = f"/workflow/{path_segment(workflow_run_id, 'workflow_run_id')}/events"
        _check_flag(include_state_snapshot, "include_state_snapshot")
        _check_flag(continue_on_pause, "continue_on_pause")
        user_id = self._user(user)
        params = query_params(
            {
                "user": user_id,
                "include_state_snapshot": include_state_snapshot,
                "continue_on_pause": continue_on_pause,
            }
        )
        limits = self._timeout(timeout)
        http = self._http
        chat = self._client.chat

        async def stop_run(task_id: str) -> None:
            try:
                await chat.stop(task_id, user=user_id)
            except BadRequestError as error:
                # The run belongs to a workflow app, whose runs stop through their own route.
                if error.code != "not_chat_app":
                    raise
                await self.stop(task_id, user=user_id)

        return AsyncChatStream(
            lambda: http.open("GET", path, params=params, timeout=limits, stream=True),
            timeout=limits,
            stopper=stop_run,
            include_pings=include_pings,
            max_event_size=self._client.max_event_size,
            end_on_pause=not continue_on_pause,
            description=f"GET {path}",
            registry=self._client._streams,
        )
