"""client.annotations: listing pages, CRUD, and the annotation-reply job."""

from __future__ import annotations

from typing import Any

import pytest

from chatapi import AsyncChatClient, BadRequestError, NotFoundError, ResponseDecodeError
from chatapi.models import Annotation, AnnotationReplyJob

from .conftest import ReplayServer, Reply
from .resource_helpers import example, json_reply

ANNOTATION = "a1b2c3d4-5678-90ab-cdef-1234567890ab"
REPLY_SETTINGS: dict[str, Any] = {
    "embedding_provider_name": "openai",
    "embedding_model_name": "text-embedding-3-small",
    "score_threshold": 0.9,
}


def annotation(id: str) -> dict[str, Any]:
    return {"id": id, "question": f"q {id}", "answer": f"a {id}", "hit_count": 0}


def page(*items: dict[str, Any], number: int, has_more: bool, limit: int = 2) -> dict[str, Any]:
    return {"data": list(items), "has_more": has_more, "limit": limit, "total": 3, "page": number}


async def test_list_decodes_the_documented_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("annotations")))
    result = await client.annotations.list()

    assert (result.page, result.limit, result.total, result.has_more) == (1, 20, 1, False)
    (item,) = result.data
    assert isinstance(item, Annotation)
    assert (item.question, item.hit_count, item.created_at) == ("What is Dify?", 5, 1705407629)


async def test_list_sends_page_limit_and_keyword(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(page(number=2, has_more=False)))
    await client.annotations.list(page=2, limit=50, keyword="refund policy")
    assert server.requests[0].query == {"page": "2", "limit": "50", "keyword": "refund policy"}


async def test_list_refuses_more_than_100_per_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    # Dify would serve 100 and report has_more=false: the rest would be lost silently.
    with pytest.raises(ValueError, match="from 1 to 100"):
        await client.annotations.list(limit=101)
    assert server.requests == []


async def test_iter_walks_the_numbered_pages(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply(page(annotation("a"), annotation("b"), number=1, has_more=True)),
        json_reply(page(annotation("c"), number=2, has_more=False)),
    )
    ids = [a.id async for a in client.annotations.iter(keyword="x", page_size=2)]
    assert ids == ["a", "b", "c"]
    assert [r.query for r in server.requests] == [
        {"page": "1", "limit": "2", "keyword": "x"},
        {"page": "2", "limit": "2", "keyword": "x"},
    ]


async def test_iter_refuses_a_server_that_repeats_a_page(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    same = json_reply(page(annotation("a"), annotation("b"), number=1, has_more=True))
    server.queue(same, same)
    seen = []
    with pytest.raises(ResponseDecodeError, match="same items"):
        async for item in client.annotations.iter(page_size=2):
            seen.append(item.id)
    assert seen == ["a", "b"]


async def test_create_returns_the_new_annotation(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("annotation_created"), status=201))
    created = await client.annotations.create(
        "What is Dify?", "Dify is an open-source LLM application development platform."
    )
    assert created.id == ANNOTATION and created.hit_count == 0


async def test_update_returns_the_changed_annotation(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("annotation_updated")))
    updated = await client.annotations.update(ANNOTATION, "What is Dify?", "A platform.")
    assert updated.answer is not None and updated.answer.endswith("AI-powered apps.")


async def test_update_of_an_unknown_annotation_is_not_found(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    missing = {"status": 404, "code": "not_found", "message": "Annotation not found."}
    server.queue(json_reply(missing, status=404))
    with pytest.raises(NotFoundError):
        await client.annotations.update(ANNOTATION, "q", "a")


async def test_delete_succeeds_on_204(server: ReplayServer, client: AsyncChatClient) -> None:
    server.queue(Reply(body=b"", status=204, content_type="application/json"))
    await client.annotations.delete(ANNOTATION)
    assert server.requests[0].method == "DELETE"


@pytest.mark.parametrize("field", ["question", "answer"])
async def test_create_needs_question_and_answer(
    field: str, server: ReplayServer, client: AsyncChatClient
) -> None:
    texts = {"question": "q", "answer": "a", field: ""}
    with pytest.raises(ValueError, match=field):
        await client.annotations.create(texts["question"], texts["answer"])
    assert server.requests == []


async def test_configure_reply_starts_a_job(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("annotation_reply_job")))
    job = await client.annotations.configure_reply("disable", **REPLY_SETTINGS)
    assert isinstance(job, AnnotationReplyJob)
    assert (job.job_id, job.job_status) == (ANNOTATION, "waiting")
    assert server.requests[0].path == "/v1/apps/annotation-reply/disable"
    assert server.requests[0].json() == REPLY_SETTINGS


@pytest.mark.parametrize("action", ["on", "Enable", ""])
async def test_configure_reply_only_enables_or_disables(
    action: str, server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(ValueError, match="enable"):
        await client.annotations.configure_reply(action, **REPLY_SETTINGS)
    with pytest.raises(ValueError, match="enable"):
        await client.annotations.reply_status(action, "job-1")
    assert server.requests == []


async def test_configure_reply_needs_the_embedding_settings(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    with pytest.raises(ValueError, match="score_threshold"):
        await client.annotations.configure_reply(
            "enable", embedding_provider_name="openai", embedding_model_name="small"
        )
    with pytest.raises(TypeError, match="score_threshold"):
        await client.annotations.configure_reply(
            "enable", **{**REPLY_SETTINGS, "score_threshold": "high"}
        )
    assert server.requests == []


async def test_reply_status_decodes_the_job(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("annotation_reply_status")))
    job = await client.annotations.reply_status("enable", ANNOTATION)
    assert (job.job_status, job.error_msg) == ("completed", "")


async def test_reply_status_of_an_unknown_job_is_a_bad_request(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    missing = {"status": 400, "code": "invalid_param", "message": "The job does not exist."}
    server.queue(json_reply(missing, status=400))
    with pytest.raises(BadRequestError) as caught:
        await client.annotations.reply_status("enable", ANNOTATION)
    assert caught.value.code == "invalid_param"
