"""client.messages and client.feedbacks: history pages, iteration order, feedback, suggestions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatapi import (
    AsyncChatClient,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    Page,
    ResponseDecodeError,
)
from chatapi.models import Feedback, Message

from .conftest import ReplayServer, recording
from .resource_helpers import anonymous_client, error_example, example, json_reply

CONVERSATION = "45701982-8118-4bc5-8e9b-64562b4555f2"


def message(id: str, created_at: int) -> dict[str, Any]:
    return {
        "id": id,
        "conversation_id": CONVERSATION,
        "query": f"question {id}",
        "answer": f"answer {id}",
        "created_at": created_at,
    }


def history_page(*messages: dict[str, Any], has_more: bool, limit: int = 2) -> dict[str, Any]:
    return {"limit": limit, "has_more": has_more, "data": list(messages)}


# -- messages.list ---------------------------------------------------------------------------


async def test_list_decodes_the_documented_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("messages")))
    page = await client.messages.list(CONVERSATION)

    assert isinstance(page, Page)
    assert (page.limit, page.has_more, page.page, page.total) == (20, False, None, None)
    (item,) = page.data
    assert isinstance(item, Message)
    assert item.id == "9da23599-e713-473b-982c-4328d4f5c78a"
    assert item.inputs == {"city": "San Francisco"}
    assert item.answer == "iPhone 13 Pro Max specs are listed here:..."
    assert item.feedback is not None and item.feedback.rating == "like"
    assert item.parent_message_id is None
    assert item.message_files == [] and item.agent_thoughts == []
    assert item.created_at == 1705407629
    assert item.total_tokens is None  # only Dify 1.16 sends token counts here


async def test_list_decodes_a_page_recorded_from_dify_1_12(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    body = recording("dify-1.12.1/v1_44_messages_list")
    server.queue(json_reply(json.loads(body)))
    page = await client.messages.list("e84229d8-349b-4124-9412-1c0eeeb25b2a")

    assert [m.query for m in page.data] == ["Hello world", "Second turn"]
    assert [m.created_at for m in page.data] == [1795660611, 1795660613]
    assert page.data[1].inputs == {"name": None}
    assert page.data[0].status == "normal" and page.data[0].error is None
    assert page.raw == json.loads(body)


async def test_list_decodes_files_agent_thoughts_and_human_input_contents(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    rich = {
        **message("m-1", 1705407629),
        "message_files": [
            {
                "id": "f-1",
                "filename": "chart.png",
                "type": "image",
                "url": "https://files.example/chart.png",
                "mime_type": "image/png",
                "size": 2048,
                "transfer_method": "tool_file",
                "belongs_to": "assistant",
                "upload_file_id": None,
            }
        ],
        "agent_thoughts": [
            {
                "id": "t-1",
                "chain_id": None,
                "message_id": "m-1",
                "position": 1,
                "thought": "I should look it up",
                "tool": "search",
                "tool_labels": {"search": {"en_US": "Search"}},
                "tool_input": '{"search": {"q": "dify"}}',
                "observation": "found",
                "files": ["f-1"],
                "created_at": 1705407630,
            }
        ],
        "extra_contents": [
            {
                "type": "human_input",
                "workflow_run_id": "run-1",
                "submitted": True,
                "form_definition": None,
                "form_submission_data": {
                    "node_id": "review",
                    "node_title": "Review",
                    "rendered_content": "Approve?",
                    "action_id": "approve",
                    "action_text": "Approve",
                },
            }
        ],
        "message_tokens": 12,
        "total_price": "0.0001",
        "brand_new_field": [1, 2],
    }
    server.queue(json_reply(history_page(rich, has_more=False)))
    (item,) = (await client.messages.list(CONVERSATION)).data

    (file,) = item.message_files
    assert (file.filename, file.size, file.belongs_to) == ("chart.png", 2048, "assistant")
    (thought,) = item.agent_thoughts
    assert thought.tool == "search" and thought.files == ["f-1"] and thought.position == 1
    (extra,) = item.extra_contents
    assert extra.submitted is True and extra.form_definition is None
    assert extra.form_submission_data is not None
    assert extra.form_submission_data.action_id == "approve"
    assert item.message_tokens == 12 and item.total_price == "0.0001"
    assert item.raw["brand_new_field"] == [1, 2]


async def test_list_sends_the_cursor_and_the_limit(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(history_page(has_more=False)))
    await client.messages.list(CONVERSATION, user="someone", first_id="m-9", limit=5)
    assert server.requests[0].query == {
        "conversation_id": CONVERSATION,
        "user": "someone",
        "first_id": "m-9",
        "limit": "5",
    }


async def test_list_leaves_user_out_when_there_is_none(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.queue(json_reply(history_page(has_more=False)))
    async with anonymous_client(server, monkeypatch) as client:
        await client.messages.list(CONVERSATION)
    assert server.requests[0].query == {"conversation_id": CONVERSATION, "limit": "20"}


async def test_list_of_an_unknown_conversation_is_not_found(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply({"code": "not_found", "message": "Conversation Not Exists.", "status": 404},
                   status=404)
    )
    with pytest.raises(NotFoundError) as caught:
        await client.messages.list(CONVERSATION)
    assert caught.value.code == "not_found"
    assert "Conversation Not Exists." in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"conversation_id": 42}, TypeError),
        ({"conversation_id": ""}, ValueError),
        ({"conversation_id": CONVERSATION, "limit": 0}, ValueError),
        ({"conversation_id": CONVERSATION, "limit": True}, TypeError),
        ({"conversation_id": CONVERSATION, "first_id": ""}, ValueError),
    ],
)
async def test_list_refuses_bad_arguments_before_sending(
    kwargs: dict[str, Any], error: type[Exception], server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(error):
        await client.messages.list(**kwargs)
    assert server.requests == []


async def test_list_rejects_a_body_that_is_not_a_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply({"limit": 20, "has_more": "yes", "data": []}))
    with pytest.raises(ResponseDecodeError):
        await client.messages.list(CONVERSATION)


async def test_a_page_item_that_does_not_fit_is_named_by_its_path(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    broken = {**message("m-2", 2), "created_at": "yesterday"}
    server.queue(json_reply(history_page(message("m-1", 1), broken, has_more=False)))
    with pytest.raises(ResponseDecodeError, match=r"data\[1\]\.created_at: expected an integer"):
        await client.messages.list(CONVERSATION)


async def test_message_inputs_sent_as_json_text_are_decoded(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    sent = {**message("m-1", 1), "inputs": '{"city": "Paris"}'}
    server.queue(json_reply(history_page(sent, has_more=False)))
    page = await client.messages.list(CONVERSATION)
    assert page.data[0].inputs == {"city": "Paris"}
    assert page.data[0].raw["inputs"] == '{"city": "Paris"}'


# -- messages.iter ---------------------------------------------------------------------------


async def test_iter_yields_the_whole_history_newest_first(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply(history_page(message("m-3", 3), message("m-4", 4), has_more=True)),
        json_reply(history_page(message("m-1", 1), message("m-2", 2), has_more=False)),
    )
    ids = [m.id async for m in client.messages.iter(CONVERSATION, page_size=2)]

    assert ids == ["m-4", "m-3", "m-2", "m-1"]
    first, second = server.requests
    assert "first_id" not in first.query
    # The next (older) page starts before the oldest message of the previous one.
    assert second.query == {
        "conversation_id": CONVERSATION,
        "user": "user-1",
        "first_id": "m-3",
        "limit": "2",
    }


async def test_iter_fetches_a_page_only_when_it_is_needed(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply(history_page(message("m-3", 3), message("m-4", 4), has_more=True)),
        json_reply(history_page(message("m-1", 1), message("m-2", 2), has_more=False)),
    )
    messages = client.messages.iter(CONVERSATION, page_size=2)
    assert server.requests == []
    assert (await messages.__anext__()).id == "m-4"
    assert (await messages.__anext__()).id == "m-3"
    assert len(server.requests) == 1
    assert (await messages.__anext__()).id == "m-2"
    assert len(server.requests) == 2
    assert [m.id async for m in messages] == ["m-1"]


async def test_iter_stops_when_the_server_repeats_a_cursor(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    same = json_reply(history_page(message("m-3", 3), message("m-4", 4), has_more=True))
    server.queue(same, same, same)
    seen = []
    with pytest.raises(ResponseDecodeError, match="twice"):
        async for item in client.messages.iter(CONVERSATION, page_size=2):
            seen.append(item.id)
    assert seen == ["m-4", "m-3", "m-4", "m-3"]
    assert len(server.requests) == 2


async def test_iter_ends_on_an_empty_page_even_if_has_more_says_otherwise(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(history_page(has_more=True)))
    assert [m async for m in client.messages.iter(CONVERSATION)] == []
    assert len(server.requests) == 1


# -- messages.feedback -----------------------------------------------------------------------


async def test_feedback_with_none_revokes_the_rating(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply({"result": "success"}))
    await client.messages.feedback("m-1", None)
    assert server.requests[0].json() == {"rating": None, "user": "user-1"}


async def test_feedback_refuses_an_unknown_rating(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(ValueError, match="rating"):
        await client.messages.feedback("m-1", "love")
    assert server.requests == []


async def test_feedback_needs_a_user(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with anonymous_client(server, monkeypatch) as client:
        with pytest.raises(ConfigurationError, match="end-user"):
            await client.messages.feedback("m-1", "like")
    assert server.requests == []


async def test_feedback_on_an_unknown_message_is_not_found(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(error_example("not_found"), status=404))
    with pytest.raises(NotFoundError) as caught:
        await client.messages.feedback("m-1", "dislike", content="wrong")
    assert caught.value.code == "not_found"


# -- messages.suggested ------------------------------------------------------------------------


async def test_suggested_returns_the_questions(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("suggested_questions")))
    questions = await client.messages.suggested("m-1")
    assert questions == [
        "What colors does the iPhone 13 Pro Max come in?",
        "How does the battery compare to iPhone 12?",
        "What is the price range?",
    ]


async def test_suggested_when_the_feature_is_off_is_a_bad_request(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(error_example("bad_request"), status=400))
    with pytest.raises(BadRequestError) as caught:
        await client.messages.suggested("m-1")
    assert caught.value.code == "bad_request"


async def test_suggested_rejects_a_body_without_a_list(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(["not", "an", "object"]))
    with pytest.raises(ResponseDecodeError):
        await client.messages.suggested("m-1")


# -- feedbacks -------------------------------------------------------------------------------


def feedback(id: str) -> dict[str, Any]:
    return {"id": id, "rating": "like", "created_at": "2025-01-16T14:30:29Z"}


async def test_feedbacks_list_decodes_the_documented_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("app_feedbacks")))
    page = await client.feedbacks.list()

    assert [f.rating for f in page.data] == ["like", "dislike"]
    first = page.data[0]
    assert isinstance(first, Feedback)
    assert first.from_source == "user" and first.from_account_id is None
    assert first.created_at == "2025-01-16T14:30:29Z"  # ISO text, as Dify sends it
    # Dify sends neither has_more nor total for feedbacks: a short page is the last one.
    assert (page.page, page.limit, page.total, page.has_more) == (1, 20, None, False)


async def test_feedbacks_list_calls_a_full_page_not_the_last(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply({"data": [feedback("a"), feedback("b")]}))
    page = await client.feedbacks.list(page=3, limit=2)
    assert page.has_more is True
    assert (page.page, page.limit) == (3, 2)
    assert server.requests[0].query == {"page": "3", "limit": "2"}


async def test_feedbacks_iter_walks_the_pages_until_a_short_one(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply({"data": [feedback("a"), feedback("b")]}),
        json_reply({"data": [feedback("c")]}),
    )
    ids = [f.id async for f in client.feedbacks.iter(page_size=2)]
    assert ids == ["a", "b", "c"]
    assert [r.query["page"] for r in server.requests] == ["1", "2"]


async def test_feedbacks_iter_ends_on_an_empty_page_after_a_full_one(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply({"data": [feedback("a")]}), json_reply({"data": []}))
    assert [f.id async for f in client.feedbacks.iter(page_size=1)] == ["a"]
    assert len(server.requests) == 2
