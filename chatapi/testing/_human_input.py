"""Human Input pauses of the fake Chatflow and workflow apps: the form a paused run waits
for, and what the rest of the run sends once the form is submitted."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._payloads import NodeExecution, envelope, finished_data, usage_json
from ._script import split_tokens
from ._state import HumanInputForm, WorkflowRun
from ._wire import now

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["form_for", "required_data", "resume_paused_run"]


def form_for(run: WorkflowRun, query: str) -> HumanInputForm:
    """The form of the fake Chatflow's review node (the shape of the 1.15.0 recording)."""
    return HumanInputForm(
        run=run,
        content=(
            f"Please review the request: {query}\n\nComment: {{{{#$output.comment#}}}}\n\n"
            "Decision: {{#$output.decision#}}"
        ),
        inputs=[
            {
                "output_variable_name": "comment",
                "type": "paragraph",
                "default": {"type": "constant", "selector": [], "value": "looks good"},
            },
            {
                "output_variable_name": "decision",
                "type": "select",
                "option_source": {"type": "constant", "selector": [], "value": ["yes", "no"]},
            },
        ],
        actions=[
            {"id": "approve", "title": "Approve", "button_style": "primary"},
            {"id": "reject", "title": "Reject", "button_style": "default"},
        ],
    )


def required_data(form: HumanInputForm) -> dict[str, Any]:
    """The ``data`` of ``human_input_required``."""
    return {
        "form_id": form.id,
        "node_id": form.node_id,
        "node_title": form.node_title,
        "form_content": form.content,
        "inputs": form.inputs,
        "actions": form.actions,
        "display_in_ui": True,
        "form_token": form.token,
        "approval_channels": ["console"],
        "resolved_default_values": {},
        "expiration_time": form.expiration_time,
    }


def resume_paused_run(
    ctx: Context, form: HumanInputForm, values: dict[str, Any], action: dict[str, Any]
) -> None:
    """Finish a paused run after its form was submitted, keeping the events of the rest of
    the run for ``GET /workflow/{id}/events``."""
    run = form.run
    message = run.message
    # A workflow app's events carry no conversation, its text comes as text_chunk and no
    # message_end closes it.
    workflow_app = ctx.mode == "workflow"

    def event(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any]
        if workflow_app:
            payload = {"event": name, "task_id": run.task_id}
        else:
            payload = envelope(
                name,
                conversation_id=run.conversation_id,
                message_id=message.id,
                created_at=message.created_at,
                task_id=run.task_id,
            )
        if data is not None:
            payload["workflow_run_id"] = run.id
            payload["data"] = data
        return payload

    rendered = form.content.replace("{{#$output.comment#}}", str(values.get("comment", "")))
    rendered = rendered.replace("{{#$output.decision#}}", str(values.get("decision", "")))
    events = [
        event(
            "workflow_started",
            {
                "id": run.id,
                "workflow_id": run.workflow_id,
                "inputs": run.inputs,
                "created_at": now(),
                "reason": "resumption",
            },
        )
    ]
    review = NodeExecution(form.node_id, "human-input", form.node_title)
    events.append(event("node_started", review.started()))
    events.append(
        event(
            "human_input_form_filled",
            {
                "node_id": form.node_id,
                "node_title": form.node_title,
                "rendered_content": rendered,
                "action_id": action["id"],
                "action_text": action["title"],
                "submitted_data": values,
            },
        )
    )
    review_outputs = {
        **values,
        "__action_id": action["id"],
        "__rendered_content": rendered,
        "__action_value": action["title"],
    }
    events.append(
        event(
            "node_finished",
            review.finished(
                inputs={k: {"value_type": "string", "value": v} for k, v in values.items()},
                outputs=review_outputs,
            ),
        )
    )
    answer = NodeExecution("answer", "answer", "Answer")
    events.append(event("node_started", answer.started()))
    details = " ".join(f"{key}={value}" for key, value in values.items())
    text = f"\n{action['title']}: {details}".rstrip()
    for chunk in ctx.script.chunks(text):
        message.answer += chunk
        if workflow_app:
            selector = ["answer", "text"]
            events.append(event("text_chunk", {"text": chunk, "from_variable_selector": selector}))
            continue
        chunk_event = event("message")
        chunk_event.update(id=message.id, answer=chunk, from_variable_selector=["answer", "answer"])
        events.append(chunk_event)
    outputs = (
        {"result": message.answer} if workflow_app else {"answer": message.answer, "files": []}
    )
    events.append(event("node_finished", answer.finished(inputs={}, outputs=outputs)))
    usage = usage_json(
        len(split_tokens(message.query)),
        len(split_tokens(message.answer)),
        latency=time.monotonic() - run.started,
        time_to_first_token=None,
        time_to_generate=None,
    )
    end = event("message_end")
    end.update(
        id=message.id,
        metadata={
            "annotation_reply": None,
            "retriever_resources": [],
            "usage": usage,
            "reasoning": {},
        },
        files=[],
    )
    if not workflow_app:
        events.append(end)
    run.total_steps = 5
    run.total_tokens = usage["total_tokens"]
    run.finish("succeeded", outputs=outputs)
    events.append(event("workflow_finished", finished_data(run)))
    form.submitted = True
    run.resumed_events = events
