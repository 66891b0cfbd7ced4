"""Endpoints that run the app: chat messages, stop, and the Chatflow run endpoints
(run detail and logs, Human Input forms, the events of a run)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ._context import INTRODUCTION, Context
from ._human_input import resume_paused_run
from ._payloads import envelope, finished_data, paused_data
from ._request import (
    bool_param,
    date_param,
    int_param,
    read_json,
    require_user,
)
from ._run import ChatRun
from ._state import AttachedFile, Conversation, EndUser, Message, WorkflowRun
from ._stream import EventStream, StreamEnded, open_event_stream
from ._wire import FakeAPIError, encode_event, json_response, missing_field, parse_uuid

__all__ = ["ChatEndpoints", "derive_name"]

FILE_TYPES = ("image", "document", "audio", "video", "custom")
TRANSFER_METHODS = ("remote_url", "local_file")


def derive_name(query: str) -> str:
    """The name Dify's auto-naming would give, approximated: the start of the first query."""
    line = query.strip().splitlines()[0] if query.strip() else "New conversation"
    return line if len(line) <= 40 else line[:40].rstrip() + "..."


def _invalid(message: str) -> FakeAPIError:
    return FakeAPIError(400, "invalid_param", message)


class ChatEndpoints:
    """The handlers that start, stop, pause and resume runs."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_post(f"{prefix}/chat-messages", self.send)
        router.add_post(f"{prefix}/chat-messages/{{task_id}}/stop", self.stop)
        router.add_get(f"{prefix}/workflows/run/{{run_id}}", self.run_detail)
        router.add_get(f"{prefix}/workflows/logs", self.run_logs)
        router.add_get(f"{prefix}/form/human_input/{{token}}", self.get_form)
        router.add_post(f"{prefix}/form/human_input/{{token}}", self.submit_form)
        router.add_get(f"{prefix}/workflow/{{run_id}}/events", self.run_events)

    # -- POST /chat-messages ------------------------------------------------------------

    async def send(self, request: web.Request) -> web.StreamResponse:
        ctx = self.ctx
        ctx.require_mode("chat")
        body = await read_json(request)
        user = require_user(body.get("user"))
        for field in ("query", "inputs"):
            if field not in body:
                raise missing_field("ChatRequestPayload", field, body)
        query = body["query"]
        inputs = body["inputs"]
        if not isinstance(query, str):
            raise _invalid("query: Input should be a valid string")
        if not isinstance(inputs, dict):
            raise _invalid("inputs: Input should be a valid dictionary")
        mode = body.get("response_mode") or "blocking"
        if mode not in ("blocking", "streaming"):
            raise _invalid("response_mode: Input should be 'blocking' or 'streaming'")
        if mode == "blocking" and ctx.mode == "agent-chat":
            raise _invalid("Agent Chat App does not support blocking mode")
        auto_name = body.get("auto_generate_name", True)
        if not isinstance(auto_name, bool):
            raise _invalid("auto_generate_name: Input should be a valid boolean")
        self.check_workflow_id(body.get("workflow_id"))
        owner = ctx.store.end_user(user)
        conversation = self._conversation(body.get("conversation_id"), owner)
        files = self.attachments(body.get("files"), owner)
        if ctx.load.draw_rate_limited():
            raise FakeAPIError(
                429, "too_many_requests", "Too many requests. Please try again later."
            )
        plan = ctx.script.take_run_plan(streaming=mode == "streaming")
        if mode == "streaming" and plan.error_after is None:
            plan.error_after = ctx.load.draw_error_after(ctx.load.settings.events_per_answer or 8)
        answer = ctx.script.answer_for(query, files=[f.filename for f in files])
        if conversation is None:
            conversation = Conversation(
                owner=owner,
                name=derive_name(query) if auto_name else "New conversation",
                inputs=dict(inputs),
                introduction=INTRODUCTION,
            )
            ctx.store.conversations[conversation.id] = conversation
        message = Message(
            conversation_id=conversation.id, query=query, inputs=dict(inputs), files=files
        )
        ctx.store.add_message(conversation, message)
        for variable in conversation.variables:
            if variable.name == "turns":
                variable.value = len(conversation.messages)
        run = ChatRun(
            ctx,
            owner=owner,
            conversation=conversation,
            message=message,
            plan=plan,
            answer_text=answer,
        )
        return await self.serve_run(request, run, streaming=mode == "streaming")

    async def serve_run(
        self, request: web.Request, run: ChatRun, *, streaming: bool
    ) -> web.StreamResponse:
        """Play ``run`` as the answer to ``request``: one JSON body, or an event stream."""
        ctx = self.ctx
        ctx.runs[run.task_id] = run
        try:
            if not streaming:
                await run.play()
                return json_response(run.blocking_body(), charset=True)
            response = await open_event_stream(request)
            ctx.load.started += 1
            run.stream = EventStream(
                request,
                response,
                ping_interval=ctx.ping_interval,
                drop_after_bytes=run.plan.drop_after_bytes,
            )
            await run.play()
            await run.stream.finish()
            return response
        finally:
            ctx.runs.pop(run.task_id, None)
            run.close()
            if ctx.load.enabled:
                ctx.load.forget(ctx.store, run.conversation, run.message, run.workflow)

    def check_workflow_id(self, workflow_id: Any) -> None:
        """Dify's checks of a ``workflow_id`` naming the published version to run."""
        if workflow_id is None or not self.ctx.is_workflow:
            return
        if not isinstance(workflow_id, str) or parse_uuid(workflow_id) is None:
            raise FakeAPIError(400, "bad_request", f"Invalid workflow_id format: '{workflow_id}'. ")
        if parse_uuid(workflow_id) != self.ctx.workflow_id:
            raise FakeAPIError(404, "not_found", f"Workflow not found with id: {workflow_id}")

    def _conversation(self, value: Any, owner: EndUser) -> Conversation | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        conversation_id = parse_uuid(value.strip()) if isinstance(value, str) else None
        if conversation_id is None:
            raise _invalid(
                "1 validation error for ChatRequestPayload\nconversation_id\n  Value error, "
                "conversation_id must be a valid UUID [type=value_error]"
            )
        return self.ctx.store.conversation(conversation_id, owner)

    def attachments(self, value: Any, owner: EndUser) -> list[AttachedFile]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _invalid("files: Input should be a valid list")
        attached = []
        for item in value:
            if not isinstance(item, dict):
                raise _invalid("files: Input should be a valid dictionary")
            kind = item.get("type")
            method = item.get("transfer_method")
            if kind not in FILE_TYPES:
                raise _invalid(f"Invalid file type: {kind}")
            if method not in TRANSFER_METHODS:
                raise _invalid(f"Invalid transfer method: {method}")
            if method == "remote_url":
                url = item.get("url")
                if not isinstance(url, str) or not url:
                    raise _invalid("Invalid file url")
                attached.append(AttachedFile(type=kind, transfer_method=method, url=url))
                continue
            upload_id = item.get("upload_file_id")
            upload = self.ctx.store.files.get(upload_id) if isinstance(upload_id, str) else None
            if upload is None or upload.owner is not owner:
                raise _invalid("Invalid upload file")
            attached.append(AttachedFile(type=kind, transfer_method=method, upload=upload))
        return attached

    # -- POST /chat-messages/{task_id}/stop -----------------------------------------------

    async def stop(self, request: web.Request) -> web.Response:
        self.ctx.require_mode("chat")
        body = await read_json(request)
        user = require_user(body.get("user"))
        run = self.ctx.runs.get(request.match_info["task_id"])
        # Like Dify: an unknown task or another user's task is ignored without an error.
        if run is not None and run.owner.session_id == user:
            run.request_stop()
        return json_response({"result": "success"})

    # -- workflow runs ------------------------------------------------------------------

    def _run(self, run_id: str) -> WorkflowRun:
        run = self.ctx.store.runs.get(run_id)
        if run is None:
            raise FakeAPIError(404, "not_found", "Workflow run not found.")
        return run

    async def run_detail(self, request: web.Request) -> web.Response:
        self.ctx.require_workflow_app()
        return json_response(self._run(request.match_info["run_id"]).detail_json())

    async def run_logs(self, request: web.Request) -> web.Response:
        self.ctx.require_workflow_app()
        page = int_param(request, "page", default=1, low=1, high=99999)
        limit = int_param(request, "limit", default=20, low=1, high=100)
        status = request.query.get("status") or None
        if status is not None and status not in ("succeeded", "failed", "stopped"):
            raise _invalid("status: Input should be 'succeeded', 'failed' or 'stopped'")
        keyword = (request.query.get("keyword") or "").lower()
        before = date_param(request, "created_at__before")
        after = date_param(request, "created_at__after")
        session = request.query.get("created_by_end_user_session_id") or None
        account = request.query.get("created_by_account") or None
        # Dify writes workflow logs for workflow-mode apps only: a Chatflow app's list is
        # always empty, however many runs it has.
        logged = self.ctx.store.runs.values() if self.ctx.mode != "advanced-chat" else ()
        runs = sorted(logged, key=lambda r: r.seq, reverse=True)
        selected = [
            run
            for run in runs
            if (status is None or run.status == status)
            and (session is None or run.owner.session_id == session)
            # Runs of the fake app are all started by end users, never by an account.
            and account is None
            and (before is None or run.created_at <= before)
            and (after is None or run.created_at >= after)
            and (not keyword or keyword in _searchable(run))
        ]
        start = (page - 1) * limit
        return json_response(
            {
                "page": page,
                "limit": limit,
                "total": len(selected),
                "has_more": start + limit < len(selected),
                "data": [run.log_json() for run in selected[start : start + limit]],
            }
        )

    async def run_events(self, request: web.Request) -> web.StreamResponse:
        ctx = self.ctx
        ctx.require_workflow_app()
        user = require_user(request.query.get("user"))
        run = ctx.store.runs.get(request.match_info["run_id"])
        if run is None or run.owner.session_id != user:
            raise FakeAPIError(404, "not_found", "Workflow run not found")
        snapshot = bool_param(request, "include_state_snapshot")
        continue_on_pause = bool_param(request, "continue_on_pause")
        response = await open_event_stream(request)
        stream = EventStream(request, response, ping_interval=ctx.ping_interval)
        # Server shutdown must also end the wait for the run.
        ctx.wakers.add(run.ended)
        try:
            await stream.ping()
            if snapshot:
                for payload in run.node_events:
                    await stream.write(encode_event(payload))
            if run.status == "running" or (run.status == "paused" and continue_on_pause):
                await stream.idle(float("inf"), run.ended)
            await self._write_run_outcome(stream, run)
            await stream.finish()
        except StreamEnded:
            pass
        finally:
            ctx.wakers.discard(run.ended)
        return response

    async def _write_run_outcome(self, stream: EventStream, run: WorkflowRun) -> None:
        if run.resumed_events is not None:
            for payload in run.resumed_events:
                await stream.write(encode_event(payload))
        elif run.status == "paused":
            event: dict[str, Any]
            if self.ctx.mode == "workflow":
                event = {"event": "workflow_paused", "task_id": run.task_id}
            else:
                event = envelope(
                    "workflow_paused",
                    conversation_id=run.conversation_id,
                    message_id=run.message.id,
                    created_at=run.message.created_at,
                    task_id=run.task_id,
                )
            event.update(workflow_run_id=run.id, data=paused_data(run))
            await stream.write(encode_event(event))
        elif run.status != "running":
            # A finished run comes back as one event, spaced JSON and no conversation
            # fields, as in Dify 1.15.
            event = {
                "event": "workflow_finished",
                "task_id": run.task_id,
                "workflow_run_id": run.id,
                "data": finished_data(run),
            }
            await stream.write(b"data: " + json.dumps(event).encode() + b"\n\n")

    # -- Human Input forms --------------------------------------------------------------

    def _form(self, token: str) -> Any:
        self.ctx.require_workflow_app()
        form = self.ctx.store.forms.get(token)
        if form is None:
            raise FakeAPIError(404, "not_found", "Form not found")
        if form.submitted:
            raise FakeAPIError(
                412,
                "human_input_form_submitted",
                f"This form has already been submitted by another user, form_id={form.id}",
            )
        return form

    async def get_form(self, request: web.Request) -> web.Response:
        return json_response(self._form(request.match_info["token"]).to_json())

    async def submit_form(self, request: web.Request) -> web.Response:
        form = self._form(request.match_info["token"])
        body = await read_json(request)
        require_user(body.get("user"))
        values = body.get("inputs")
        action_id = body.get("action")
        if not isinstance(values, dict):
            raise _invalid("inputs: Input should be a valid dictionary")
        action = next((a for a in form.actions if a["id"] == action_id), None)
        if action is None:
            raise FakeAPIError(400, "invalid_form_data", f"Invalid action: {action_id}")
        filled: dict[str, Any] = {}
        missing = []
        for spec in form.inputs:
            name = spec["output_variable_name"]
            if name in values:
                filled[name] = values[name]
            elif "default" in spec:
                filled[name] = spec["default"]["value"]
            else:
                missing.append(name)
        if missing:
            raise FakeAPIError(
                400, "invalid_form_data", f"Missing required inputs: {', '.join(missing)}"
            )
        resume_paused_run(self.ctx, form, filled, action)
        return json_response({})


def _searchable(run: WorkflowRun) -> str:
    return " ".join((run.message.query, json.dumps(run.inputs), json.dumps(run.outputs))).lower()
