"""Every app operation of Dify's Service API, its SDK call, and the exact request it sends.

The table maps each documented ``METHOD /route`` to the client call that performs it; the
tests check that the client has them all and that each sends what Dify expects. It covers
the Chatflow App API (31 operations, 26 of them for chatbot and agent apps) and the run
endpoints of workflow and completion apps: every operation of ``openapi_service.json``
outside its knowledge-base tags.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

from chatapi import AsyncChatClient

from .conftest import API_KEY, STREAMS, ReplayServer, Reply, recording
from .resource_helpers import example, json_reply, multipart_parts

# Method and route of every operation in the Chatflow OpenAPI document, extracted from it.
SPEC_OPERATIONS = Path(__file__).parent / "fixtures" / "chatflow_spec_operations.json"
# The same for the non-knowledge operations of the merged Service API document.
SERVICE_SPEC_OPERATIONS = Path(__file__).parent / "fixtures" / "service_spec_operations.json"

CONVERSATION = "45701982-8118-4bc5-8e9b-64562b4555f2"
MESSAGE = "9da23599-e713-473b-982c-4328d4f5c78a"
FILE = "a1b2c3d4-5678-90ab-cdef-1234567890ab"
VARIABLE = "b2c3d4e5-6789-01bc-def0-234567890abc"
ANNOTATION = "c3d4e5f6-7890-12cd-ef01-34567890abcd"
JOB = "d4e5f6a7-8901-23de-f012-4567890abcde"
END_USER = "f1e2d3c4-b5a6-7890-abcd-ef1234567890"
RUN = "2fdd6723-f66b-4cb2-a473-8dea8b107dcc"
TASK = "e7887914-c8cd-48c4-a8bb-6a5a991caa6d"
FORM_TOKEN = "form-token-123"
WORKFLOW = "7c3e33d4-2a8b-4e5f-9b1a-d3c6e8f12345"

NO_BODY = object()
SUCCESS = json_reply({"result": "success"})
NO_CONTENT = Reply(body=b"", status=204, content_type="application/json")

Call = Callable[[AsyncChatClient], Awaitable[object]]


@attrs.frozen
class Operation:
    """One API operation: the documented route, the SDK call and the request it makes."""

    method: str
    route: str
    sdk: str
    call: Call
    path: str
    query: dict[str, str] = attrs.field(factory=dict)
    json: Any = NO_BODY
    form: dict[str, tuple[str | None, str | None, bytes]] | None = None
    reply: Reply = SUCCESS
    chatflow_only: bool = False
    # The app mode an operation belongs to when it is not one of the chat family's.
    app: str | None = None


async def _read_events(client: AsyncChatClient) -> None:
    async with client.workflows.events(RUN) as stream:
        await stream.until_done()


async def _run_stream(client: AsyncChatClient) -> None:
    async with client.workflows.stream({"query": "Translate this"}) as stream:
        await stream.final_run()


async def _completion_stream(client: AsyncChatClient) -> None:
    async with client.completions.stream({"city": "San Francisco"}) as stream:
        await stream.final_message()


OPERATIONS = [
    Operation(
        "POST", "/chat-messages", "chat.send",
        lambda c: c.chat.send("Hello world", inputs={"name": "Alice"}),
        "/chat-messages",
        json={
            "query": "Hello world",
            "inputs": {"name": "Alice"},
            "response_mode": "blocking",
            "user": "user-1",
        },
        reply=Reply(
            body=recording("dify-1.12.1/v1_20_chat_blocking_new"),
            content_type="application/json",
        ),
    ),
    Operation(
        "POST", "/chat-messages/{task_id}/stop", "chat.stop",
        lambda c: c.chat.stop(TASK),
        f"/chat-messages/{TASK}/stop",
        json={"user": "user-1"},
    ),
    Operation(
        "GET", "/messages/{message_id}/suggested", "messages.suggested",
        lambda c: c.messages.suggested(MESSAGE),
        f"/messages/{MESSAGE}/suggested",
        query={"user": "user-1"},
        reply=json_reply(example("suggested_questions")),
    ),
    Operation(
        "POST", "/files/upload", "files.upload",
        lambda c: c.files.upload(b"\x89PNG\r\n\x1a\n", filename="red4x4.png"),
        "/files/upload",
        form={"file": ("red4x4.png", "image/png", b"\x89PNG\r\n\x1a\n"),
              "user": (None, None, b"user-1")},
        reply=json_reply(example("file_upload"), status=201),
    ),
    Operation(
        "GET", "/files/{file_id}/preview", "files.preview",
        lambda c: c.files.preview(FILE),
        f"/files/{FILE}/preview",
        query={"as_attachment": "false", "user": "user-1"},
        reply=Reply(body=b"\x89PNG\r\n\x1a\n", content_type="image/png"),
    ),
    Operation(
        "GET", "/end-users/{end_user_id}", "end_users.get",
        lambda c: c.end_users.get(END_USER),
        f"/end-users/{END_USER}",
        reply=json_reply(example("end_user")),
    ),
    Operation(
        "POST", "/messages/{message_id}/feedbacks", "messages.feedback",
        lambda c: c.messages.feedback(MESSAGE, "like", content="Very helpful"),
        f"/messages/{MESSAGE}/feedbacks",
        json={"rating": "like", "user": "user-1", "content": "Very helpful"},
    ),
    Operation(
        "GET", "/app/feedbacks", "feedbacks.list",
        lambda c: c.feedbacks.list(),
        "/app/feedbacks",
        query={"page": "1", "limit": "20"},
        reply=json_reply(example("app_feedbacks")),
    ),
    Operation(
        "GET", "/conversations", "conversations.list",
        lambda c: c.conversations.list(),
        "/conversations",
        query={"user": "user-1", "limit": "20", "sort_by": "-updated_at"},
        reply=json_reply(example("conversations")),
    ),
    Operation(
        "GET", "/messages", "messages.list",
        lambda c: c.messages.list(CONVERSATION),
        "/messages",
        query={"conversation_id": CONVERSATION, "user": "user-1", "limit": "20"},
        reply=json_reply(example("messages")),
    ),
    Operation(
        "GET", "/conversations/{conversation_id}/variables", "conversations.variables",
        lambda c: c.conversations.variables(CONVERSATION),
        f"/conversations/{CONVERSATION}/variables",
        query={"user": "user-1", "limit": "20"},
        reply=json_reply(example("conversation_variables")),
    ),
    Operation(
        "POST", "/conversations/{conversation_id}/name", "conversations.rename",
        lambda c: c.conversations.rename(CONVERSATION, "iPhone Specs Chat"),
        f"/conversations/{CONVERSATION}/name",
        json={"auto_generate": False, "name": "iPhone Specs Chat", "user": "user-1"},
        reply=json_reply(example("conversation_renamed")),
    ),
    Operation(
        "PUT", "/conversations/{conversation_id}/variables/{variable_id}",
        "conversations.update_variable",
        lambda c: c.conversations.update_variable(CONVERSATION, VARIABLE, "new value"),
        f"/conversations/{CONVERSATION}/variables/{VARIABLE}",
        json={"value": "new value", "user": "user-1"},
        reply=json_reply(example("conversation_variable_updated")),
    ),
    Operation(
        "DELETE", "/conversations/{conversation_id}", "conversations.delete",
        lambda c: c.conversations.delete(CONVERSATION),
        f"/conversations/{CONVERSATION}",
        json={"user": "user-1"},
        reply=NO_CONTENT,
    ),
    Operation(
        "POST", "/audio-to-text", "audio.to_text",
        lambda c: c.audio.to_text(b"RIFF....WAVE", filename="question.wav"),
        "/audio-to-text",
        form={"file": ("question.wav", "audio/wav", b"RIFF....WAVE"),
              "user": (None, None, b"user-1")},
        reply=json_reply(example("audio_to_text")),
    ),
    Operation(
        "POST", "/text-to-audio", "audio.to_speech",
        lambda c: c.audio.to_speech(text="Hello, welcome to our service.", voice="alloy"),
        "/text-to-audio",
        json={"text": "Hello, welcome to our service.", "voice": "alloy", "user": "user-1"},
        reply=Reply(body=b"ID3\x04fake-mp3", content_type="audio/mpeg"),
    ),
    Operation("GET", "/info", "app.info", lambda c: c.app.info(), "/info",
              reply=json_reply(example("app_info"))),
    Operation("GET", "/parameters", "app.parameters", lambda c: c.app.parameters(),
              "/parameters", reply=json_reply(example("app_parameters"))),
    Operation("GET", "/meta", "app.meta", lambda c: c.app.meta(), "/meta",
              reply=json_reply(example("app_meta"))),
    Operation("GET", "/site", "app.site", lambda c: c.app.site(), "/site",
              reply=json_reply(example("app_site"))),
    Operation(
        "POST", "/apps/annotations", "annotations.create",
        lambda c: c.annotations.create("What is Dify?", "An LLM app platform."),
        "/apps/annotations",
        json={"question": "What is Dify?", "answer": "An LLM app platform."},
        reply=json_reply(example("annotation_created"), status=201),
    ),
    Operation(
        "GET", "/apps/annotations", "annotations.list",
        lambda c: c.annotations.list(),
        "/apps/annotations",
        query={"page": "1", "limit": "20"},
        reply=json_reply(example("annotations")),
    ),
    Operation(
        "PUT", "/apps/annotations/{annotation_id}", "annotations.update",
        lambda c: c.annotations.update(ANNOTATION, "What is Dify?", "A platform."),
        f"/apps/annotations/{ANNOTATION}",
        json={"question": "What is Dify?", "answer": "A platform."},
        reply=json_reply(example("annotation_updated")),
    ),
    Operation(
        "DELETE", "/apps/annotations/{annotation_id}", "annotations.delete",
        lambda c: c.annotations.delete(ANNOTATION),
        f"/apps/annotations/{ANNOTATION}",
        reply=NO_CONTENT,
    ),
    Operation(
        "POST", "/apps/annotation-reply/{action}", "annotations.configure_reply",
        lambda c: c.annotations.configure_reply(
            "enable",
            embedding_provider_name="openai",
            embedding_model_name="text-embedding-3-small",
            score_threshold=0.9,
        ),
        "/apps/annotation-reply/enable",
        json={
            "embedding_provider_name": "openai",
            "embedding_model_name": "text-embedding-3-small",
            "score_threshold": 0.9,
        },
        reply=json_reply(example("annotation_reply_job")),
    ),
    Operation(
        "GET", "/apps/annotation-reply/{action}/status/{job_id}", "annotations.reply_status",
        lambda c: c.annotations.reply_status("enable", JOB),
        f"/apps/annotation-reply/enable/status/{JOB}",
        reply=json_reply(example("annotation_reply_status")),
    ),
    Operation(
        "GET", "/workflows/run/{workflow_run_id}", "workflows.get_run",
        lambda c: c.workflows.get_run(RUN),
        f"/workflows/run/{RUN}",
        reply=json_reply(example("workflow_run")),
        chatflow_only=True,
    ),
    Operation(
        "GET", "/workflows/logs", "workflows.logs",
        lambda c: c.workflows.logs(),
        "/workflows/logs",
        query={"page": "1", "limit": "20"},
        reply=json_reply(example("workflow_logs")),
        chatflow_only=True,
    ),
    Operation(
        "GET", "/form/human_input/{form_token}", "human_input.get",
        lambda c: c.human_input.get(FORM_TOKEN),
        f"/form/human_input/{FORM_TOKEN}",
        reply=json_reply(example("human_input_form")),
        chatflow_only=True,
    ),
    Operation(
        "POST", "/form/human_input/{form_token}", "human_input.submit",
        lambda c: c.human_input.submit(
            FORM_TOKEN, inputs={"feedback": "Looks good"}, action="approve"
        ),
        f"/form/human_input/{FORM_TOKEN}",
        json={"inputs": {"feedback": "Looks good"}, "action": "approve", "user": "user-1"},
        reply=json_reply(example("human_input_submitted")),
        chatflow_only=True,
    ),
    Operation(
        "GET", "/workflow/{workflow_run_id}/events", "workflows.events",
        _read_events,
        f"/workflow/{RUN}/events",
        query={"user": "user-1", "include_state_snapshot": "false", "continue_on_pause": "false"},
        reply=Reply(body=recording("dify-1.15.0/v1_78_hitl_events_resumed_stream")),
        chatflow_only=True,
    ),
]

APP_OPERATIONS = [
    Operation(
        "POST", "/workflows/run", "workflows.run",
        lambda c: c.workflows.run({"query": "Translate this to French: Hello world"}),
        "/workflows/run",
        json={
            "inputs": {"query": "Translate this to French: Hello world"},
            "response_mode": "blocking",
            "user": "user-1",
        },
        reply=json_reply(example("workflow_run_result")),
        app="workflow",
    ),
    Operation(
        "POST", "/workflows/{workflow_id}/run", "workflows.run",
        lambda c: c.workflows.run({"query": "Summarize this article"}, workflow_id=WORKFLOW),
        f"/workflows/{WORKFLOW}/run",
        json={
            "inputs": {"query": "Summarize this article"},
            "response_mode": "blocking",
            "user": "user-1",
        },
        reply=json_reply(example("workflow_run_result")),
        app="workflow",
    ),
    Operation(
        "POST", "/workflows/tasks/{task_id}/stop", "workflows.stop",
        lambda c: c.workflows.stop(TASK),
        f"/workflows/tasks/{TASK}/stop",
        json={"user": "user-1"},
        app="workflow",
    ),
    Operation(
        "POST", "/completion-messages", "completions.send",
        lambda c: c.completions.send({"city": "New York"}, query="Summarize the following"),
        "/completion-messages",
        json={
            "inputs": {"city": "New York"},
            "response_mode": "blocking",
            "user": "user-1",
            "query": "Summarize the following",
        },
        reply=json_reply(example("completion_message")),
        app="completion",
    ),
    Operation(
        "POST", "/completion-messages/{task_id}/stop", "completions.stop",
        lambda c: c.completions.stop(TASK),
        f"/completion-messages/{TASK}/stop",
        json={"user": "user-1"},
        app="completion",
    ),
]

# The streaming twins of the run operations: same route, ``response_mode: streaming``.
STREAMING_OPERATIONS = [
    Operation(
        "POST", "/workflows/run", "workflows.stream",
        _run_stream,
        "/workflows/run",
        json={
            "inputs": {"query": "Translate this"},
            "response_mode": "streaming",
            "user": "user-1",
        },
        reply=Reply(body=(STREAMS / "spec_workflow_streaming.txt").read_bytes()),
        app="workflow",
    ),
    Operation(
        "POST", "/completion-messages", "completions.stream",
        _completion_stream,
        "/completion-messages",
        json={
            "inputs": {"city": "San Francisco"},
            "response_mode": "streaming",
            "user": "user-1",
        },
        reply=Reply(body=(STREAMS / "spec_completion_streaming.txt").read_bytes()),
        app="completion",
    ),
]

ALL_OPERATIONS = OPERATIONS + APP_OPERATIONS


def resolve(client: AsyncChatClient, sdk: str) -> Any:
    namespace, method = sdk.split(".")
    return getattr(getattr(client, namespace), method)


def test_the_table_lists_all_31_operations_26_of_them_for_chat_apps() -> None:
    routes = {(op.method, op.route) for op in OPERATIONS}
    assert len(routes) == len(OPERATIONS) == 31
    assert sum(not op.chatflow_only for op in OPERATIONS) == 26
    assert all(op.app is None for op in OPERATIONS)


def test_the_table_matches_the_chatflow_spec() -> None:
    spec = json.loads(SPEC_OPERATIONS.read_text("utf-8"))
    documented = {(method, route) for method, route in spec["operations"]}
    assert documented == {(op.method, op.route) for op in OPERATIONS}


def test_the_table_covers_every_non_knowledge_operation_of_the_service_spec() -> None:
    spec = json.loads(SERVICE_SPEC_OPERATIONS.read_text("utf-8"))
    documented = {(method, route) for method, route in spec["operations"]}
    assert len(documented) == 36
    assert documented == {(op.method, op.route) for op in ALL_OPERATIONS}
    assert {op.app for op in APP_OPERATIONS} == {"workflow", "completion"}


def test_the_client_exposes_every_operation() -> None:
    client = AsyncChatClient(api_key=API_KEY, base_url="http://127.0.0.1:9/v1")
    for op in ALL_OPERATIONS:
        method = resolve(client, op.sdk)
        if op.sdk == "workflows.events":
            # A stream is returned at once and opened by ``async with``.
            assert not inspect.iscoroutinefunction(method), op.sdk
        else:
            assert inspect.iscoroutinefunction(method), op.sdk
    # The streaming twins of the run operations, and the auto-paging iterators.
    for op in [*STREAMING_OPERATIONS, attrs.evolve(OPERATIONS[0], sdk="chat.stream")]:
        assert not inspect.iscoroutinefunction(resolve(client, op.sdk)), op.sdk
    for sdk in (
        "messages.iter",
        "conversations.iter",
        "conversations.iter_variables",
        "feedbacks.iter",
        "annotations.iter",
        "workflows.iter_logs",
    ):
        assert inspect.isasyncgenfunction(resolve(client, sdk)), sdk


SENT = ALL_OPERATIONS + STREAMING_OPERATIONS


@pytest.mark.parametrize("op", SENT, ids=[f"{op.method} {op.route} {op.sdk}" for op in SENT])
async def test_operation_sends_exactly_what_dify_expects(
    op: Operation, server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(op.reply)
    await op.call(client)

    (request,) = server.requests
    assert request.method == op.method
    assert request.path == "/v1" + op.path
    assert request.query == op.query
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    if op.form is not None:
        parts = multipart_parts(request)
        assert set(parts) == set(op.form)
        for name, (filename, content_type, content) in op.form.items():
            part = parts[name]
            assert part.content == content
            if filename is not None:
                assert part.disposition == f'form-data; name="file"; filename="{filename}"'
                assert part.headers["Content-Type"] == content_type
    elif op.json is NO_BODY:
        assert request.body == b""
    else:
        assert request.headers["Content-Type"] == "application/json"
        assert request.json() == op.json

