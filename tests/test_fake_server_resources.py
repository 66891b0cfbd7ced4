"""FakeChatServer: every non-chat endpoint end to end through the SDK's client methods
(history, conversations, variables, feedback, files, audio, app, annotations, end users,
workflow runs)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from chatapi import (
    AsyncChatClient,
    BadRequestError,
    InputFile,
    NotFoundError,
    StreamError,
    UnsupportedMediaTypeError,
)
from chatapi.testing import FakeChatServer

from .conftest import STREAMS

USER = "user-1"
MISSING = "0b8ebf40-0a43-4a5d-92a6-2e8b7a4ecb11"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def fake() -> AsyncIterator[FakeChatServer]:
    async with FakeChatServer() as server:
        yield server


@pytest.fixture
async def api(fake: FakeChatServer) -> AsyncIterator[AsyncChatClient]:
    async with AsyncChatClient(
        api_key="app-test", base_url=fake.base_url, user=USER, max_retries=0
    ) as client:
        yield client


async def new_conversation(api: AsyncChatClient, *queries: str, user: str = USER) -> str:
    conversation_id: str | None = None
    for query in queries:
        reply = await api.chat.send(query, conversation_id=conversation_id, user=user)
        conversation_id = reply.conversation_id
    assert conversation_id is not None
    return conversation_id


# -- messages --------------------------------------------------------------------------


async def test_history_pages_go_back_in_time(api: AsyncChatClient) -> None:
    conversation_id = await new_conversation(api, "m1", "m2", "m3", "m4", "m5")

    newest = await api.messages.list(conversation_id, limit=2)
    older = await api.messages.list(conversation_id, first_id=newest.data[0].id, limit=2)
    oldest = await api.messages.list(conversation_id, first_id=older.data[0].id, limit=2)

    assert [m.query for m in newest.data] == ["m4", "m5"]
    assert [m.query for m in older.data] == ["m2", "m3"]
    assert [m.query for m in oldest.data] == ["m1"]
    assert (newest.has_more, older.has_more, oldest.has_more) == (True, True, False)
    assert newest.data[0].answer == "Echo: m4"
    assert newest.data[0].status == "normal"
    everything = [m.query async for m in api.messages.iter(conversation_id, page_size=2)]
    assert everything == ["m5", "m4", "m3", "m2", "m1"]


async def test_history_errors(api: AsyncChatClient) -> None:
    conversation_id = await new_conversation(api, "only")
    with pytest.raises(NotFoundError) as caught:
        await api.messages.list(conversation_id, first_id=MISSING)
    assert caught.value.message == "First Message Not Exists."
    with pytest.raises(NotFoundError) as caught:
        await api.messages.list(MISSING)
    assert caught.value.message == "Conversation Not Exists."
    with pytest.raises(NotFoundError):
        await api.messages.list(conversation_id, user="user-2")


async def test_history_items_have_the_recorded_fields(api: AsyncChatClient) -> None:
    recorded = json.loads((STREAMS / "dify-1.12.1/v1_44_messages_list/body.txt").read_bytes())
    conversation_id = await new_conversation(api, "fields")
    page = await api.messages.list(conversation_id)
    assert set(page.raw) == set(recorded)
    # Dify 1.15 adds extra_contents to what 1.12.1 sent.
    assert set(page.data[0].raw) == set(recorded["data"][0]) | {"extra_contents"}


async def test_feedback_like_dislike_and_revoke(api: AsyncChatClient) -> None:
    reply = await api.chat.send("rate me")
    message_id = reply.message_id
    assert message_id is not None

    await api.messages.feedback(message_id, "like", content="nice")
    listed = await api.feedbacks.list()
    assert [(f.rating, f.content, f.message_id) for f in listed.data] == [
        ("like", "nice", message_id)
    ]
    await api.messages.feedback(message_id, "dislike")
    history = await api.messages.list(reply.conversation_id)  # type: ignore[arg-type]
    assert history.data[0].feedback is not None
    assert history.data[0].feedback.rating == "dislike"

    assert [f.rating async for f in api.feedbacks.iter()] == ["dislike"]

    await api.messages.feedback(message_id, None)
    assert (await api.feedbacks.list()).data == []
    with pytest.raises(BadRequestError) as caught:
        await api.messages.feedback(message_id, None)
    assert caught.value.code == "invalid_param"
    with pytest.raises(NotFoundError):
        await api.messages.feedback(message_id, "like", user="user-2")


async def test_suggested_questions(api: AsyncChatClient) -> None:
    reply = await api.chat.send("the weather")
    questions = await api.messages.suggested(reply.message_id)  # type: ignore[arg-type]
    assert len(questions) == 3 and all(isinstance(q, str) and q for q in questions)
    with pytest.raises(NotFoundError) as caught:
        await api.messages.suggested(MISSING)
    assert caught.value.message == "Message Not Exists."


# -- conversations ---------------------------------------------------------------------


async def test_conversation_list_pages_and_orders(api: AsyncChatClient) -> None:
    first = await new_conversation(api, "first")
    second = await new_conversation(api, "second")
    third = await new_conversation(api, "third")
    await api.chat.send("again", conversation_id=first)
    await new_conversation(api, "someone else's", user="user-2")

    by_update = await api.conversations.list(limit=2)
    rest = await api.conversations.list(last_id=by_update.data[-1].id, limit=2)
    assert [c.id for c in by_update.data] == [first, third]
    assert by_update.has_more is True
    assert ([c.id for c in rest.data], rest.has_more) == ([second], False)
    oldest_first = await api.conversations.list(sort_by="created_at")
    assert [c.id for c in oldest_first.data] == [first, second, third]
    assert [c.name for c in oldest_first.data] == ["first", "second", "third"]
    assert oldest_first.data[0].introduction
    assert [c.id async for c in api.conversations.iter(page_size=1)] == [first, third, second]
    with pytest.raises(NotFoundError) as caught:
        await api.conversations.list(last_id=MISSING)
    assert caught.value.message == "Last Conversation Not Exists."


async def test_conversation_names(api: AsyncChatClient) -> None:
    named = await new_conversation(api, "What is the capital of France?")
    unnamed = (await api.chat.send("hello", auto_generate_name=False)).conversation_id
    assert unnamed is not None

    renamed = await api.conversations.rename(named, "Geography")
    generated = await api.conversations.rename(unnamed, auto_generate=True)

    assert renamed.name == "Geography"
    assert generated.name == "hello"
    names = {c.id: c.name for c in (await api.conversations.list()).data}
    assert names == {named: "Geography", unnamed: "hello"}
    with pytest.raises(NotFoundError):
        await api.conversations.rename(MISSING, "x")


async def test_deleted_conversation_is_gone(api: AsyncChatClient) -> None:
    keep = await new_conversation(api, "keep")
    drop = await new_conversation(api, "drop")
    await api.conversations.delete(drop)
    assert [c.id for c in (await api.conversations.list()).data] == [keep]
    with pytest.raises(NotFoundError):
        await api.messages.list(drop)
    with pytest.raises(NotFoundError):
        await api.conversations.delete(drop)


async def test_delete_answers_204(fake: FakeChatServer, api: AsyncChatClient) -> None:
    conversation_id = await new_conversation(api, "x")
    async with (
        aiohttp.ClientSession() as session,
        session.delete(
            f"{fake.base_url}/conversations/{conversation_id}",
            json={"user": USER},
            headers={"Authorization": "Bearer k"},
        ) as response,
    ):
        assert response.status == 204
        assert await response.read() == b""


async def test_conversation_variables(api: AsyncChatClient) -> None:
    conversation_id = await new_conversation(api, "one", "two")
    page = await api.conversations.variables(conversation_id)
    variables = {v.name: v for v in page.data}
    assert {name: (v.value_type, v.value) for name, v in variables.items()} == {
        "memo": ("string", "hello"),
        "turns": ("number", "2"),
        "tags": ("array[string]", "[]"),
    }
    only = await api.conversations.variables(conversation_id, variable_name="memo")
    assert [v.name for v in only.data] == ["memo"]
    first = await api.conversations.variables(conversation_id, limit=1)
    after = await api.conversations.variables(conversation_id, last_id=first.data[0].id)
    assert first.has_more and [v.name for v in after.data] == ["turns", "tags"]
    every = [v.name async for v in api.conversations.iter_variables(conversation_id, page_size=1)]
    assert every == ["memo", "turns", "tags"]

    updated = await api.conversations.update_variable(
        conversation_id, variables["tags"].id, ["a", "b"]
    )
    assert updated.value == '["a", "b"]'
    with pytest.raises(BadRequestError) as caught:
        await api.conversations.update_variable(conversation_id, variables["memo"].id, 42)
    assert caught.value.code == "bad_request"
    assert caught.value.message == (
        "Type mismatch: variable 'memo' expects string, but got number type"
    )
    with pytest.raises(NotFoundError) as missing:
        await api.conversations.update_variable(conversation_id, MISSING, "x")
    assert missing.value.message == "Conversation Variable Not Exists."


# -- files and audio -------------------------------------------------------------------


async def test_upload_attach_and_preview(
    fake: FakeChatServer, api: AsyncChatClient, tmp_path: Path
) -> None:
    recorded = json.loads((STREAMS / "dify-1.12.1/v1_30_files_upload_png/body.txt").read_bytes())
    path = tmp_path / "red.png"
    path.write_bytes(PNG)

    uploaded = await api.files.upload(path)
    assert set(uploaded.raw) == set(recorded)
    assert (uploaded.name, uploaded.extension, uploaded.mime_type) == (
        "red.png",
        "png",
        "image/png",
    )
    assert uploaded.size == len(PNG)
    # Dify serves only files that a message refers to.
    with pytest.raises(NotFoundError) as caught:
        await api.files.preview(uploaded.id)
    assert caught.value.code == "file_not_found"

    reply = await api.chat.send("look", files=[InputFile.local(uploaded.id)])
    assert reply.answer == "Echo: look [files: red.png]"
    history = await api.messages.list(reply.conversation_id)  # type: ignore[arg-type]
    assert history.data[0].message_files[0].upload_file_id == uploaded.id
    preview = await api.files.preview(uploaded.id)
    download = await api.files.preview(uploaded.id, as_attachment=True)
    assert (preview.content, preview.content_type) == (PNG, "image/png")
    assert (preview.filename, download.filename) == (None, "red.png")
    assert (await api.end_users.get(uploaded.created_by)).session_id == USER  # type: ignore[arg-type]


async def test_upload_is_a_201_with_the_recorded_fields(fake: FakeChatServer) -> None:
    form = aiohttp.FormData()
    form.add_field("file", b"hello", filename="notes.txt", content_type="text/plain")
    form.add_field("user", USER)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{fake.base_url}/files/upload", data=form, headers={"Authorization": "Bearer k"}
        ) as response,
    ):
        body = await response.json()
    assert response.status == 201
    assert list(body)[:5] == ["id", "name", "size", "extension", "mime_type"]


async def test_upload_errors(api: AsyncChatClient) -> None:
    with pytest.raises(BadRequestError) as caught:
        await api.chat.send("x", files=[InputFile.local(MISSING)])
    assert caught.value.code == "invalid_param"
    uploaded = await api.files.upload(b"data", filename="a.txt")
    with pytest.raises(BadRequestError):
        await api.chat.send("x", files=[InputFile.local(uploaded.id)], user="user-2")


async def test_remote_files_are_attached_in_chat_mode() -> None:
    async with (
        FakeChatServer(mode="chat") as server,
        AsyncChatClient(api_key="k", base_url=server.base_url, user=USER) as client,
        client.chat.stream(
            "see", files=[InputFile.remote("https://example.com/cat.png")]
        ) as stream,
    ):
        reply = await stream.final_message()
    assert reply.answer == "Echo: see [files: cat.png]"
    assert reply.files is not None
    assert [(f.filename, f.transfer_method) for f in reply.files] == [("cat.png", "remote_url")]


async def test_audio(fake: FakeChatServer, api: AsyncChatClient) -> None:
    fake.script.transcript = "hello from the recording"
    assert await api.audio.to_text(b"RIFF0000WAVE", filename="voice.wav") == (
        "hello from the recording"
    )
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        await api.audio.to_text(b"...", filename="voice.ogg", content_type="audio/ogg")
    assert caught.value.code == "unsupported_audio_type"

    reply = await api.chat.send("speak")
    by_text = await api.audio.to_speech(text="Hello there")
    by_message = await api.audio.to_speech(message_id=reply.message_id)
    assert by_text[:4] == b"RIFF" and by_text[8:12] == b"WAVE"
    assert by_message[:4] == b"RIFF"


# -- app, annotations, end users, workflow runs -------------------------------------------


async def test_app_metadata(api: AsyncChatClient) -> None:
    info = await api.app.info()
    parameters = await api.app.parameters()
    meta = await api.app.meta()
    site = await api.app.site()
    assert (info.name, info.mode) == ("Fake Chat App", "advanced-chat")
    assert parameters.opening_statement
    assert parameters.speech_to_text is not None and parameters.speech_to_text.enabled
    assert parameters.system_parameters is not None
    assert parameters.system_parameters.image_file_size_limit == 10
    assert meta.tool_icons == {}
    assert site.title == "Fake Chat App" and site.default_language == "en-US"


async def test_annotations(api: AsyncChatClient) -> None:
    created = await api.annotations.create("What is Dify?", "An LLM app platform.")
    other = await api.annotations.create("Who are you?", "A fake server.")
    updated = await api.annotations.update(created.id, "What is Dify?", "An open platform.")
    assert updated.answer == "An open platform."

    listed = await api.annotations.list()
    found = await api.annotations.list(keyword="fake")
    assert [a.id for a in listed.data] == [other.id, created.id]
    assert listed.total == 2
    assert [a.id for a in found.data] == [other.id]
    assert {a.id async for a in api.annotations.iter(page_size=1)} == {created.id, other.id}

    await api.annotations.delete(other.id)
    assert [a.id for a in (await api.annotations.list()).data] == [created.id]
    with pytest.raises(NotFoundError):
        await api.annotations.delete(other.id)

    job = await api.annotations.configure_reply(
        "enable",
        embedding_provider_name="openai",
        embedding_model_name="text-embedding-3-small",
        score_threshold=0.9,
    )
    assert job.job_status == "waiting"
    status = await api.annotations.reply_status("enable", job.job_id)
    assert (status.job_id, status.job_status) == (job.job_id, "completed")
    assert (await api.app.parameters()).annotation_reply.enabled is True  # type: ignore[union-attr]
    with pytest.raises(BadRequestError) as caught:
        await api.annotations.reply_status("enable", MISSING)
    assert caught.value.message == "The job does not exist."


async def test_end_users(api: AsyncChatClient) -> None:
    async with api.chat.stream("who am I") as stream:
        events = [event async for event in stream]
    created_by = events[-1].raw["data"]["created_by"]
    end_user = await api.end_users.get(created_by["id"])
    assert (end_user.session_id, end_user.type, end_user.is_anonymous) == (
        USER,
        "service-api",
        False,
    )
    assert end_user.created_at is not None and end_user.created_at.endswith("Z")
    with pytest.raises(NotFoundError) as caught:
        await api.end_users.get(MISSING)
    assert caught.value.code == "end_user_not_found"


async def test_workflow_runs_and_logs(fake: FakeChatServer, api: AsyncChatClient) -> None:
    async with api.chat.stream("logged") as stream:
        await stream.until_done()
    fake.script.error_event(after=2)
    async with api.chat.stream("fails", user="user-2") as failing:
        with pytest.raises(StreamError):
            await failing.until_done()

    run = await api.workflows.get_run(stream.workflow_run_id)  # type: ignore[arg-type]
    assert (run.status, run.outputs) == ("succeeded", {"answer": "Echo: logged", "files": []})
    assert run.inputs == {}
    # Dify writes workflow logs for workflow-mode apps only: a Chatflow app's are empty.
    logs = await api.workflows.logs()
    assert (logs.data, logs.total, logs.has_more) == ([], 0, False)
    assert [log async for log in api.workflows.iter_logs(status="succeeded")] == []
    with pytest.raises(NotFoundError) as caught:
        await api.workflows.get_run(MISSING)
    assert caught.value.message == "Workflow run not found."
