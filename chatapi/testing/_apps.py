"""Endpoints that run workflow and completion apps, and stop their runs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._app_runs import CompletionRun, WorkflowAppRun
from ._chat import ChatEndpoints
from ._request import read_json, require_user
from ._wire import FakeAPIError, json_response, missing_field

__all__ = ["AppEndpoints"]


def _invalid(message: str) -> FakeAPIError:
    return FakeAPIError(400, "invalid_param", message)


class AppEndpoints(ChatEndpoints):
    """``/workflows/run``, ``/workflows/{workflow_id}/run``, ``/completion-messages`` and the
    stop endpoints of both; a run is served like a chat run (blocking or streaming)."""

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_post(f"{prefix}/workflows/run", self.run_workflow)
        router.add_post(f"{prefix}/workflows/{{workflow_id}}/run", self.run_workflow)
        router.add_post(f"{prefix}/workflows/tasks/{{task_id}}/stop", self.stop_workflow)
        router.add_post(f"{prefix}/completion-messages", self.complete)
        router.add_post(f"{prefix}/completion-messages/{{task_id}}/stop", self.stop_completion)

    async def _run_body(self, request: web.Request, model: str) -> tuple[dict[str, Any], bool]:
        body = await read_json(request)
        if "inputs" not in body:
            raise missing_field(model, "inputs", body)
        if not isinstance(body["inputs"], dict):
            raise _invalid("inputs: Input should be a valid dictionary")
        mode = body.get("response_mode") or "blocking"
        if mode not in ("blocking", "streaming"):
            raise _invalid("response_mode: Input should be 'blocking' or 'streaming'")
        return body, mode == "streaming"

    async def run_workflow(self, request: web.Request) -> web.StreamResponse:
        ctx = self.ctx
        ctx.require_mode("workflow")
        self.check_workflow_id(request.match_info.get("workflow_id"))
        body, streaming = await self._run_body(request, "WorkflowRunPayload")
        owner = ctx.store.end_user(require_user(body.get("user")))
        run = WorkflowAppRun(
            ctx,
            owner=owner,
            inputs=body["inputs"],
            files=self.attachments(body.get("files"), owner),
            plan=ctx.script.take_run_plan(streaming=streaming),
        )
        return await self.serve_run(request, run, streaming=streaming)

    async def complete(self, request: web.Request) -> web.StreamResponse:
        ctx = self.ctx
        ctx.require_mode("completion")
        body, streaming = await self._run_body(request, "CompletionRequestPayload")
        query = body.get("query")
        if query is not None and not isinstance(query, str):
            raise _invalid("query: Input should be a valid string")
        owner = ctx.store.end_user(require_user(body.get("user")))
        run = CompletionRun(
            ctx,
            owner=owner,
            inputs=body["inputs"],
            query=query,
            files=self.attachments(body.get("files"), owner),
            plan=ctx.script.take_run_plan(streaming=streaming),
        )
        return await self.serve_run(request, run, streaming=streaming)

    async def stop_workflow(self, request: web.Request) -> web.Response:
        self.ctx.require_mode("workflow")
        body = await read_json(request)
        require_user(body.get("user"))
        # Dify stops a workflow task whoever asks (the user is only recorded).
        run = self.ctx.runs.get(request.match_info["task_id"])
        if run is not None:
            run.request_stop()
        return json_response({"result": "success"})

    async def stop_completion(self, request: web.Request) -> web.Response:
        self.ctx.require_mode("completion")
        body = await read_json(request)
        user = require_user(body.get("user"))
        run = self.ctx.runs.get(request.match_info["task_id"])
        if run is not None and run.owner.session_id == user:
            run.request_stop()
        return json_response({"result": "success"})
