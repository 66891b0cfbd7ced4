"""client.workflows and client.human_input: run detail, logs, the resume stream, forms."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aioresponses import aioresponses

from chatapi import (
    APIStatusError,
    AsyncChatClient,
    AsyncChatStream,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    ResponseDecodeError,
)
from chatapi.events import HumanInputFormFilledEvent, WorkflowFinishedEvent
from chatapi.models import HumanInputForm, WorkflowLog, WorkflowRun

from .conftest import API_KEY, ReplayServer, Reply, recording, requires_aioresponses, sse
from .resource_helpers import anonymous_client, error_example, error_reply, example, json_reply

RUN = "2fdd6723-f66b-4cb2-a473-8dea8b107dcc"
TASK = "e7887914-c8cd-48c4-a8bb-6a5a991caa6d"
RESUMED = "dify-1.15.0/v1_78_hitl_events_resumed_stream"


def log_entry(id: str) -> dict[str, Any]:
    return {"id": id, "workflow_run": {"id": f"run-{id}", "status": "succeeded"}}


def logs_page(*items: dict[str, Any], number: int, has_more: bool) -> dict[str, Any]:
    return {"page": number, "limit": 2, "total": 3, "has_more": has_more, "data": list(items)}


# -- runs and logs ---------------------------------------------------------------------------


async def test_get_run_decodes_the_documented_answer(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("workflow_run")))
    run = await client.workflows.get_run("fb47b2e6-5e43-4f90-be01-d5c5a088d156")

    assert isinstance(run, WorkflowRun)
    assert run.status == "succeeded"
    assert run.inputs == {"query": "Translate this to French"}  # sent as JSON text
    assert run.raw["inputs"] == '{"query": "Translate this to French"}'
    assert run.outputs == {"result": "Traduisez ceci en francais"}
    assert (run.total_steps, run.total_tokens, run.elapsed_time) == (3, 150, 1.23)
    assert (run.created_at, run.finished_at) == (1705407629, 1705407630)


async def test_get_run_accepts_outputs_as_json_text_as_dify_1_12_sends_them(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # Dify 1.12.1 answers with both columns as json.dumps text; 1.15.0 sends outputs as an
    # object (the test above).
    body = {
        **example("workflow_run"),
        "inputs": '{"sys.query": "hi"}',
        "outputs": '{"answer": "1\\n2"}',
    }
    server.queue(json_reply(body))
    run = await client.workflows.get_run(RUN)

    assert run.inputs == {"sys.query": "hi"}
    assert run.outputs == {"answer": "1\n2"}
    assert run.raw["outputs"] == '{"answer": "1\\n2"}'  # what came


@pytest.mark.parametrize(
    ("outputs", "found"),
    [
        (["not", "an", "object"], "got array"),
        ('["json", "text", "of", "an", "array"]', "got a string of JSON array"),
        ("plain text", "got a string (not JSON text)"),
    ],
)
async def test_get_run_with_outputs_that_are_no_object_names_the_field(
    server: ReplayServer, client: AsyncChatClient, outputs: Any, found: str
) -> None:
    server.queue(json_reply({**example("workflow_run"), "outputs": outputs}))
    expected = re.escape(f"outputs: expected an object, {found}")
    with pytest.raises(ResponseDecodeError, match=expected) as caught:
        await client.workflows.get_run(RUN)
    assert caught.value.path == "outputs"


async def test_get_run_of_an_unknown_run_is_not_found(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply({"status": 404, "code": "not_found", "message": "Workflow run not found."},
                   status=404)
    )
    with pytest.raises(NotFoundError):
        await client.workflows.get_run(RUN)


async def test_get_run_in_a_chat_app_is_a_bad_request(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(error_reply(error_example("not_workflow_app")))
    with pytest.raises(BadRequestError) as caught:
        await client.workflows.get_run(RUN)
    assert caught.value.code == "not_workflow_app"


async def test_logs_decode_the_documented_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("workflow_logs")))
    page = await client.workflows.logs()

    assert (page.page, page.limit, page.total, page.has_more) == (1, 20, 1, False)
    (entry,) = page.data
    assert isinstance(entry, WorkflowLog)
    assert entry.workflow_run is not None
    assert entry.workflow_run.version == "2025-01-16 12:00:00.000000"
    assert entry.workflow_run.exceptions_count == 0
    assert entry.created_by_end_user is not None
    assert entry.created_by_end_user.session_id == "user_chatflow_123"
    assert (entry.created_from, entry.created_by_role) == ("service-api", "end_user")
    assert entry.created_by_account is None


async def test_logs_send_every_filter_under_dify_names(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(logs_page(number=3, has_more=False)))
    after = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    await client.workflows.logs(
        keyword="refund",
        status="failed",
        page=3,
        limit=10,
        created_at_before="2025-02-01T00:00:00Z",
        created_at_after=after,
        created_by_end_user_session_id="user-7",
        created_by_account="ops@example.com",
    )
    assert server.requests[0].query == {
        "keyword": "refund",
        "status": "failed",
        "page": "3",
        "limit": "10",
        "created_at__before": "2025-02-01T00:00:00Z",
        # The "+" survives the query string (it is not turned into a space).
        "created_at__after": "2025-01-02T03:04:05+02:00",
        "created_by_end_user_session_id": "user-7",
        "created_by_account": "ops@example.com",
    }


async def test_logs_refuse_a_date_of_the_wrong_type(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(TypeError, match="created_at_before"):
        await client.workflows.logs(created_at_before=1705407629)  # type: ignore[arg-type]
    assert server.requests == []


async def test_iter_logs_walks_the_pages_with_the_filters(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply(logs_page(log_entry("a"), log_entry("b"), number=1, has_more=True)),
        json_reply(logs_page(log_entry("c"), number=2, has_more=False)),
    )
    ids = [e.id async for e in client.workflows.iter_logs(status="succeeded", page_size=2)]
    assert ids == ["a", "b", "c"]
    assert [r.query for r in server.requests] == [
        {"status": "succeeded", "page": "1", "limit": "2"},
        {"status": "succeeded", "page": "2", "limit": "2"},
    ]


# -- workflows.events --------------------------------------------------------------------------


async def test_events_replays_the_resumed_run_recorded_from_dify_1_15(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(body=recording(RESUMED), chunk_size=97))
    stream = client.workflows.events(RUN)
    assert isinstance(stream, AsyncChatStream)
    assert server.requests == []  # nothing is sent before the stream is entered

    async with stream:
        events = [event async for event in stream]
        reply = await stream.final_message()

    assert any(isinstance(e, HumanInputFormFilledEvent) for e in events)
    assert isinstance(events[-1], WorkflowFinishedEvent)
    assert stream.workflow_run_id == RUN and stream.task_id == TASK
    assert reply.answer.startswith("Request from Bob: please approve\n")
    assert reply.paused is False


async def test_events_sends_the_flags_as_true_false(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(Reply(body=recording(RESUMED)))
    async with client.workflows.events(
        RUN, user="u-5", include_state_snapshot=True, continue_on_pause=True
    ) as stream:
        await stream.until_done()
    assert server.requests[0].query == {
        "user": "u-5",
        "include_state_snapshot": "true",
        "continue_on_pause": "true",
    }


async def test_events_ends_on_the_closing_event_when_the_server_keeps_the_socket_open(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # With continue_on_pause Dify only closes after minutes of silence.
    server.queue(Reply(body=recording(RESUMED), hold_open=True))
    async with client.workflows.events(RUN, continue_on_pause=True) as stream:
        reply = await stream.final_message()
    # The whole answer of the run, from its workflow_finished outputs.
    assert reply.answer.endswith("Approved: comment=ship it decision=yes action=approve")
    assert stream.closed


async def test_events_needs_the_user_of_the_run(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with anonymous_client(server, monkeypatch) as client:
        with pytest.raises(ConfigurationError):
            client.workflows.events(RUN)
    assert server.requests == []


async def test_events_stop_stops_the_run_as_the_same_user(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    started = {
        "event": "workflow_started",
        "task_id": TASK,
        "workflow_run_id": RUN,
        "data": {"id": RUN},
    }
    server.queue(Reply(body=sse(started), hold_open=True), json_reply({"result": "success"}))
    async with client.workflows.events(RUN, user="u-5") as stream:
        async for _ in stream:
            await stream.stop()
    stop = server.requests[1]
    assert (stop.method, stop.path) == ("POST", f"/v1/chat-messages/{TASK}/stop")
    assert stop.json() == {"user": "u-5"}


async def test_events_of_a_run_of_another_user_is_not_found(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply({"status": 404, "code": "not_found", "message": "Workflow run not found"},
                   status=404)
    )
    with pytest.raises(NotFoundError):
        async with client.workflows.events(RUN) as stream:
            await stream.until_done()


# -- human_input ---------------------------------------------------------------------------------


async def test_get_form_decodes_inputs_defaults_and_actions(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("human_input_form")))
    form = await client.human_input.get("token-1")

    assert isinstance(form, HumanInputForm)
    assert form.form_content is not None and form.form_content.startswith("Please review")
    assert [(i.type, i.output_variable_name) for i in form.inputs] == [
        ("paragraph", "feedback"),
        ("select", "priority"),
        ("file", "attachment"),
        ("file-list", "attachments"),
    ]
    assert form.inputs[1].option_source == {
        "type": "constant",
        "selector": [],
        "value": ["low", "medium", "high"],
    }
    assert form.inputs[3].number_limits == 5
    assert [(a.id, a.button_style) for a in form.user_actions] == [
        ("approve", "primary"),
        ("reject", "default"),
    ]
    assert form.resolved_default_values == {"feedback": ""}
    assert form.expiration_time == 1745510400


async def test_submit_sends_values_action_and_user(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("human_input_submitted")))
    await client.human_input.submit(
        "token-1", inputs={"feedback": "ok", "priority": "high"}, action="approve", user="u-5"
    )
    assert server.requests[0].json() == {
        "inputs": {"feedback": "ok", "priority": "high"},
        "action": "approve",
        "user": "u-5",
    }


@pytest.mark.parametrize("code", ["human_input_form_submitted", "human_input_form_expired"])
async def test_submit_of_a_closed_form_fails_with_412(
    code: str, server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(error_reply(error_example(code)))
    with pytest.raises(APIStatusError) as caught:
        await client.human_input.submit("token-1", inputs={}, action="approve")
    assert (caught.value.status_code, caught.value.code) == (412, code)


async def test_submit_checks_its_arguments(
    server: ReplayServer, client: AsyncChatClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TypeError, match="inputs"):
        await client.human_input.submit("t", inputs=["x"], action="a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="action"):
        await client.human_input.submit("t", inputs={}, action="")
    async with anonymous_client(server, monkeypatch) as anonymous:
        with pytest.raises(ConfigurationError):
            await anonymous.human_input.submit("t", inputs={}, action="a")
    assert server.requests == []


@pytest.mark.parametrize(
    ("call", "raw_path"),
    [
        (
            lambda c: c.human_input.get("a/b c?d#e%"),
            "/v1/form/human_input/a%2Fb%20c%3Fd%23e%25",
        ),
        (lambda c: c.workflows.get_run("../x"), "/v1/workflows/run/..%2Fx"),
        (lambda c: c.chat.stop("t/1"), "/v1/chat-messages/t%2F1/stop"),
    ],
)
@requires_aioresponses
async def test_path_parameters_are_url_quoted(call: Any, raw_path: str) -> None:
    with aioresponses() as mocked:
        mocked.get(re.compile(r".*"), payload={"id": "x"})
        mocked.post(re.compile(r".*"), payload={"result": "success"})
        async with AsyncChatClient(api_key=API_KEY, base_url="http://dify.test/v1", user="u") as c:
            await call(c)
    ((_, url),) = mocked.requests.keys()
    assert url.raw_path == raw_path
