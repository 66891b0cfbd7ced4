"""client.conversations: listing, iteration, rename, delete and conversation variables."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatapi import AsyncChatClient, BadRequestError, NotFoundError
from chatapi.models import Conversation, ConversationVariable

from .conftest import ReplayServer, Reply, recording
from .resource_helpers import anonymous_client, example, json_reply

CONVERSATION = "45701982-8118-4bc5-8e9b-64562b4555f2"
VARIABLE = "a1b2c3d4-5678-90ab-cdef-1234567890ab"
NOT_FOUND = {"code": "not_found", "message": "Conversation Not Exists.", "status": 404}


def conversation(id: str) -> dict[str, Any]:
    return {"id": id, "name": f"chat {id}", "status": "normal", "created_at": 1, "updated_at": 2}


def variable(id: str) -> dict[str, Any]:
    return {"id": id, "name": f"var_{id}", "value_type": "string", "value": "x"}


def page(*items: dict[str, Any], has_more: bool, limit: int = 2) -> dict[str, Any]:
    return {"limit": limit, "has_more": has_more, "data": list(items)}


# -- list and iter -----------------------------------------------------------------------------


async def test_list_decodes_a_page_recorded_from_dify_1_12(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(json.loads(recording("dify-1.12.1/v1_40_conversations_list"))))
    result = await client.conversations.list()

    assert (result.limit, result.has_more) == (20, False)
    assert len(result.data) == 10
    assert all(isinstance(item, Conversation) for item in result.data)
    unicode_one = result.data[5]
    assert unicode_one.name == 'héllo 🌍 "quoted"\nnewline'
    assert unicode_one.inputs == {"name": "Zoë 世界"}
    assert unicode_one.introduction == "Hello! I echo what you say."
    assert (unicode_one.created_at, unicode_one.updated_at) == (1795660615, 1795660616)


async def test_list_decodes_the_documented_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("conversations")))
    (item,) = (await client.conversations.list()).data
    assert item.id == CONVERSATION
    assert item.name == "iPhone Specs Chat"
    assert item.inputs == {"city": "San Francisco"}


async def test_list_sends_the_cursor_and_the_order(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(page(has_more=False)))
    await client.conversations.list(last_id="c-9", limit=50, sort_by="created_at")
    assert server.requests[0].query == {
        "user": "user-1",
        "last_id": "c-9",
        "limit": "50",
        "sort_by": "created_at",
    }


async def test_list_leaves_user_out_when_there_is_none(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.queue(json_reply(page(has_more=False)))
    async with anonymous_client(server, monkeypatch) as client:
        await client.conversations.list()
    assert server.requests[0].query == {"limit": "20", "sort_by": "-updated_at"}


async def test_list_refuses_an_unknown_order(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(ValueError, match="sort_by"):
        await client.conversations.list(sort_by="name")
    assert server.requests == []


async def test_iter_follows_the_last_id_of_each_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply(page(conversation("c-1"), conversation("c-2"), has_more=True)),
        json_reply(page(conversation("c-3"), has_more=False)),
    )
    ids = [c.id async for c in client.conversations.iter(page_size=2)]

    assert ids == ["c-1", "c-2", "c-3"]
    assert server.requests[1].query == {
        "user": "user-1",
        "last_id": "c-2",
        "limit": "2",
        "sort_by": "-updated_at",
    }


# -- rename and delete ---------------------------------------------------------------------------


async def test_rename_returns_the_renamed_conversation(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("conversation_renamed")))
    renamed = await client.conversations.rename(CONVERSATION, "iPhone Specs Chat")
    assert isinstance(renamed, Conversation)
    assert (renamed.name, renamed.updated_at) == ("iPhone Specs Chat", 1705411229)


async def test_rename_with_auto_generate_sends_no_name(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("conversation_renamed")))
    await client.conversations.rename(CONVERSATION, auto_generate=True, user="u-2")
    assert server.requests[0].json() == {"auto_generate": True, "user": "u-2"}


@pytest.mark.parametrize("name", [None, "  "])
async def test_rename_needs_a_name_unless_auto_generating(
    name: str | None, server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(ValueError, match="name"):
        await client.conversations.rename(CONVERSATION, name)
    assert server.requests == []


async def test_rename_path_parameter_is_checked(client: AsyncChatClient) -> None:
    with pytest.raises(TypeError, match="conversation_id"):
        await client.conversations.rename(None, "x")  # type: ignore[arg-type]


async def test_delete_succeeds_on_204(server: ReplayServer, client: AsyncChatClient) -> None:
    server.queue(Reply(body=b"", status=204, content_type="application/json"))
    await client.conversations.delete(CONVERSATION)
    assert server.requests[0].method == "DELETE"


async def test_delete_without_a_user_still_sends_a_json_body(
    server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.queue(Reply(body=b"", status=204, content_type="application/json"))
    async with anonymous_client(server, monkeypatch) as client:
        await client.conversations.delete(CONVERSATION)
    request = server.requests[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == {}


async def test_delete_of_an_unknown_conversation_is_not_found(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(NOT_FOUND, status=404))
    with pytest.raises(NotFoundError) as caught:
        await client.conversations.delete(CONVERSATION)
    assert caught.value.code == "not_found"
    assert caught.value.status_code == 404


# -- variables -----------------------------------------------------------------------------------


async def test_variables_decode_the_documented_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("conversation_variables")))
    result = await client.conversations.variables(CONVERSATION)
    (item,) = result.data
    assert isinstance(item, ConversationVariable)
    assert (item.name, item.value_type, item.value) == ("user_preference", "string", "dark_mode")
    assert item.description == "User preference setting"
    assert result.has_more is False


async def test_variables_filter_by_name(server: ReplayServer, client: AsyncChatClient) -> None:
    server.queue(json_reply(page(has_more=False)))
    await client.conversations.variables(
        CONVERSATION, last_id="v-1", limit=10, variable_name="user_preference"
    )
    assert server.requests[0].query == {
        "user": "user-1",
        "last_id": "v-1",
        "limit": "10",
        "variable_name": "user_preference",
    }


async def test_iter_variables_walks_every_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply(page(variable("v-1"), variable("v-2"), has_more=True)),
        json_reply(page(variable("v-3"), has_more=False)),
    )
    names = [v.name async for v in client.conversations.iter_variables(CONVERSATION, page_size=2)]
    assert names == ["var_v-1", "var_v-2", "var_v-3"]
    assert server.requests[1].query["last_id"] == "v-2"


async def test_update_variable_puts_the_value(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("conversation_variable_updated")))
    updated = await client.conversations.update_variable(CONVERSATION, VARIABLE, "new value")

    request = server.requests[0]
    assert request.method == "PUT"  # not PATCH: Dify routes PUT only
    assert updated.value == "new value"
    assert updated.id == VARIABLE


@pytest.mark.parametrize("value", [None, 0, {"a": [1, 2]}, ["x"], False])
async def test_update_variable_sends_any_json_value_as_is(
    value: Any, server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply({"id": VARIABLE, "value": json.dumps(value)}))
    await client.conversations.update_variable(CONVERSATION, VARIABLE, value)
    assert server.requests[0].json() == {"value": value, "user": "user-1"}


async def test_update_variable_type_mismatch_is_a_bad_request(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    mismatch = {
        "status": 400,
        "code": "bad_request",
        "message": "Type mismatch: variable 'x' expects string, but got number type",
    }
    server.queue(json_reply(mismatch, status=400))
    with pytest.raises(BadRequestError) as caught:
        await client.conversations.update_variable(CONVERSATION, VARIABLE, 3)
    assert caught.value.code == "bad_request"
