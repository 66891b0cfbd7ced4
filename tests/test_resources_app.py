"""client.app and client.end_users: app metadata and end-user lookup."""

from __future__ import annotations

import pytest

from chatapi import AsyncChatClient, NotFoundError, PermissionDeniedError
from chatapi.models import AppInfo, AppMeta, AppParameters, EndUser, SiteSettings

from .conftest import ReplayServer
from .resource_helpers import error_example, error_reply, example, json_reply

END_USER = "f1e2d3c4-b5a6-7890-abcd-ef1234567890"


async def test_info_decodes_the_documented_answer(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("app_info")))
    info = await client.app.info()
    assert isinstance(info, AppInfo)
    assert info.name == "My Chatflow App"
    assert info.tags == ["customer-service", "chatbot"]
    assert (info.mode, info.author_name) == ("advanced-chat", "Dify Team")


async def test_parameters_decode_features_form_and_limits(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("app_parameters")))
    params = await client.app.parameters()

    assert isinstance(params, AppParameters)
    assert params.opening_statement == "Hello! How can I help you today?"
    assert params.suggested_questions == ["What can you do?", "Tell me about your features."]
    assert params.suggested_questions_after_answer is not None
    assert params.suggested_questions_after_answer.enabled is True
    assert params.speech_to_text is not None and params.speech_to_text.enabled is False
    tts = params.text_to_speech
    assert tts is not None
    assert (tts.enabled, tts.voice, tts.language, tts.autoPlay) == (
        False,
        "alloy",
        "en-US",
        "disabled",
    )
    assert params.user_input_form == [
        {"text-input": {"label": "City", "variable": "city", "required": True, "default": ""}}
    ]
    assert params.file_upload is not None and params.file_upload["image"]["number_limits"] == 3
    limits = params.system_parameters
    assert limits is not None
    assert (limits.file_size_limit, limits.image_file_size_limit) == (15, 10)
    assert limits.workflow_file_upload_limit == 10


async def test_parameters_keep_settings_beyond_the_switch_in_raw(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(
        json_reply(
            {
                "sensitive_word_avoidance": {"enabled": True, "type": "keywords", "configs": []},
                "a_future_feature": {"enabled": True},
            }
        )
    )
    params = await client.app.parameters()
    moderation = params.sensitive_word_avoidance
    assert moderation is not None and moderation.enabled is True
    assert moderation.raw["type"] == "keywords"
    assert params.raw["a_future_feature"] == {"enabled": True}
    assert params.opening_statement is None and params.user_input_form == []


async def test_meta_decodes_url_and_emoji_icons(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("app_meta")))
    meta = await client.app.meta()
    assert isinstance(meta, AppMeta)
    assert meta.tool_icons["dalle3"] == "https://example.com/icons/dalle3.png"
    assert meta.tool_icons["calculator"] == {"background": "#4A90D9", "content": "🧮"}


async def test_site_decodes_the_webapp_settings(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("app_site")))
    site = await client.app.site()
    assert isinstance(site, SiteSettings)
    assert (site.title, site.icon_type, site.icon) == ("My Chat App", "emoji", "🤖")
    assert site.chat_color_theme_inverted is False and site.use_icon_as_answer_icon is True
    assert site.icon_url is None and site.input_placeholder is None


async def test_site_of_an_app_without_a_site_is_forbidden(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(error_reply(error_example("forbidden")))
    with pytest.raises(PermissionDeniedError) as caught:
        await client.app.site()
    assert caught.value.code == "forbidden"


async def test_end_user_decodes_the_documented_answer(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(json_reply(example("end_user")))
    user = await client.end_users.get(END_USER)

    assert isinstance(user, EndUser)
    assert user.id == END_USER
    assert (user.session_id, user.external_user_id, user.is_anonymous) == (
        "abc-123",
        "abc-123",
        False,
    )
    assert user.created_at == "2024-01-16T12:00:29Z"  # ISO text, as Dify sends it
    assert user.name is None


async def test_unknown_end_user_is_not_found(
    server: ReplayServer, client: AsyncChatClient
) -> None:
    server.queue(error_reply(error_example("end_user_not_found")))
    with pytest.raises(NotFoundError) as caught:
        await client.end_users.get(END_USER)
    assert caught.value.code == "end_user_not_found"


async def test_end_user_id_must_be_given(server: ReplayServer, client: AsyncChatClient) -> None:
    with pytest.raises(ValueError, match="end_user_id"):
        await client.end_users.get(" ")
    assert server.requests == []
