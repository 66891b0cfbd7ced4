"""The endpoints around the runs: conversations, history, feedback, files, audio, app
metadata, annotations and end users."""

from __future__ import annotations

import io
import re
import wave
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, hdrs, web

from ._chat import derive_name
from ._context import INTRODUCTION, Context
from ._request import bool_param, int_param, path_uuid, read_json, require_user
from ._state import Annotation, Conversation, EndUser, UploadedFile, Variable
from ._wire import (
    UUID_PATTERN,
    FakeAPIError,
    json_response,
    missing_field,
    new_id,
    parse_uuid,
)

__all__ = ["ResourceEndpoints"]

# A route segment that only matches a UUID, like Werkzeug's ``<uuid:...>`` converter.
_UUID = f":{UUID_PATTERN}"
_MB = 1024 * 1024
_SIZE_LIMITS = (
    ({"jpg", "jpeg", "png", "webp", "gif", "svg"}, 10 * _MB),
    ({"mp4", "mov", "mpeg", "webm"}, 100 * _MB),
    ({"mp3", "m4a", "wav", "amr", "mpga"}, 50 * _MB),
)
_OTHER_FILE_LIMIT = 15 * _MB
_AUDIO_LIMIT = 30 * _MB
_AUDIO_TYPES = {"audio/mp3", "audio/m4a", "audio/wav", "audio/amr", "audio/mpga"}
_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_SORT_ORDERS = ("created_at", "-created_at", "updated_at", "-updated_at")


def _invalid(message: str) -> FakeAPIError:
    return FakeAPIError(400, "invalid_param", message)


def _uuid_query(request: web.Request, name: str) -> str | None:
    """An optional UUID query parameter (an empty value counts as absent)."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    value = parse_uuid(raw)
    if value is None:
        raise _invalid(f"{name}: Input should be a valid UUID")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _fits(value_type: str, value: Any) -> bool:
    """Whether ``value`` may be stored in a conversation variable of ``value_type``."""
    if value_type.startswith("array["):
        item_type = value_type[len("array[") : -1]
        return isinstance(value, list) and (
            item_type == "any" or all(_fits(item_type, item) for item in value)
        )
    expected = {"secret": "string", "file": "object"}.get(value_type, value_type)
    return _json_type(value) == expected


def _wav(text: str) -> bytes:
    """A short silent WAV clip (8 kHz, 8-bit mono) whose length grows with ``text``."""
    frames = min(max(len(text), 1) * 80, 16000)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(1)
        clip.setframerate(8000)
        clip.writeframes(b"\x80" * frames)
    return buffer.getvalue()


async def _file_parts(request: web.Request, limit: int) -> tuple[dict[str, str], list[Any]]:
    """The form fields and the file parts (name, filename, content type, bytes) of a
    multipart body; a file larger than ``limit`` is cut to ``limit + 1`` bytes."""
    fields: dict[str, str] = {}
    files: list[Any] = []
    if not request.content_type.startswith("multipart/"):
        return fields, files
    reader = await request.multipart()
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.filename is None:
            fields[part.name or ""] = await part.text()
            continue
        content = bytearray()
        while len(content) <= limit:
            chunk = await part.read_chunk()
            if not chunk:
                break
            content.extend(chunk)
        files.append((part.name, part.filename, part.headers.get(hdrs.CONTENT_TYPE), content))
    return fields, files


class ResourceEndpoints:
    """The handlers of everything but the runs themselves."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.reply_enabled = False

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        conversation = f"{prefix}/conversations/{{conversation_id{_UUID}}}"
        message = f"{prefix}/messages/{{message_id{_UUID}}}"
        annotation = f"{prefix}/apps/annotations/{{annotation_id{_UUID}}}"
        router.add_get(f"{prefix}/conversations", self.list_conversations)
        router.add_post(f"{conversation}/name", self.rename_conversation)
        router.add_delete(conversation, self.delete_conversation)
        router.add_get(f"{conversation}/variables", self.list_variables)
        router.add_put(f"{conversation}/variables/{{variable_id{_UUID}}}", self.update_variable)
        router.add_get(f"{prefix}/messages", self.list_messages)
        router.add_post(f"{message}/feedbacks", self.feedback)
        router.add_get(f"{message}/suggested", self.suggested)
        router.add_get(f"{prefix}/app/feedbacks", self.app_feedbacks)
        router.add_post(f"{prefix}/files/upload", self.upload)
        router.add_get(f"{prefix}/files/{{file_id{_UUID}}}/preview", self.preview)
        router.add_post(f"{prefix}/audio-to-text", self.audio_to_text)
        router.add_post(f"{prefix}/text-to-audio", self.text_to_audio)
        router.add_get(f"{prefix}/info", self.info)
        router.add_get(f"{prefix}/parameters", self.parameters)
        router.add_get(f"{prefix}/meta", self.meta)
        router.add_get(f"{prefix}/site", self.site)
        router.add_post(f"{prefix}/apps/annotations", self.create_annotation)
        router.add_get(f"{prefix}/apps/annotations", self.list_annotations)
        router.add_put(annotation, self.update_annotation)
        router.add_delete(annotation, self.delete_annotation)
        router.add_post(f"{prefix}/apps/annotation-reply/{{action}}", self.configure_reply)
        router.add_get(
            f"{prefix}/apps/annotation-reply/{{action}}/status/{{job_id{_UUID}}}",
            self.reply_status,
        )
        router.add_get(f"{prefix}/end-users/{{end_user_id{_UUID}}}", self.end_user)

    # -- helpers ------------------------------------------------------------------------

    def _owner(self, user: Any) -> EndUser:
        """The end user of an optional ``user`` (the shared default one when absent)."""
        if user is not None and not isinstance(user, str):
            raise _invalid("user: Input should be a valid string")
        return self.ctx.store.end_user(user or None)

    def _conversation(self, request: web.Request, owner: EndUser) -> Conversation:
        return self.ctx.store.conversation(path_uuid(request, "conversation_id"), owner)

    # -- conversations ------------------------------------------------------------------

    async def list_conversations(self, request: web.Request) -> web.Response:
        owner = self._owner(request.query.get("user"))
        limit = int_param(request, "limit", default=20, low=1, high=100)
        sort_by = request.query.get("sort_by") or "-updated_at"
        if sort_by not in _SORT_ORDERS:
            raise _invalid(
                "sort_by: Input should be 'created_at', '-created_at', 'updated_at' or "
                "'-updated_at'"
            )
        last_id = _uuid_query(request, "last_id")
        page, has_more = self.ctx.store.list_conversations(
            owner, last_id=last_id, limit=limit, sort_by=sort_by
        )
        return json_response(
            {"limit": limit, "has_more": has_more, "data": [c.to_json() for c in page]}
        )

    async def rename_conversation(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        conversation = self._conversation(request, self._owner(body.get("user")))
        if body.get("auto_generate") is True:
            if not conversation.messages:
                raise _invalid("Conversation has no messages to generate a name from.")
            conversation.name = derive_name(conversation.messages[0].query)
        else:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                raise _invalid("name is required when auto_generate is false")
            conversation.name = name.strip()
        conversation.touch()
        return json_response(conversation.to_json())

    async def delete_conversation(self, request: web.Request) -> web.Response:
        body = await read_json(request, optional=True)
        conversation = self._conversation(request, self._owner(body.get("user")))
        self.ctx.store.delete_conversation(conversation)
        return web.Response(status=204)

    async def list_variables(self, request: web.Request) -> web.Response:
        conversation = self._conversation(request, self._owner(request.query.get("user")))
        limit = int_param(request, "limit", default=20, low=1, high=100)
        name = request.query.get("variable_name")
        if name is not None and not _VARIABLE_NAME.fullmatch(name):
            raise _invalid(
                "variable_name: String should match pattern '^[a-zA-Z0-9_.-]+$' and have "
                "1 to 255 characters"
            )
        page, has_more = self.ctx.store.list_variables(
            conversation, last_id=_uuid_query(request, "last_id"), limit=limit, name=name
        )
        return json_response(
            {"limit": limit, "has_more": has_more, "data": [v.to_json() for v in page]}
        )

    async def update_variable(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        conversation = self._conversation(request, self._owner(body.get("user")))
        if "value" not in body:
            raise missing_field("ConversationVariableUpdatePayload", "value", body)
        variable_id = path_uuid(request, "variable_id")
        variable: Variable | None = next(
            (v for v in conversation.variables if v.id == variable_id), None
        )
        if variable is None:
            raise FakeAPIError(404, "not_found", "Conversation Variable Not Exists.")
        value = body["value"]
        if not _fits(variable.value_type, value):
            raise FakeAPIError(
                400,
                "bad_request",
                f"Type mismatch: variable '{variable.name}' expects {variable.value_type}, "
                f"but got {_json_type(value)} type",
            )
        variable.value = value
        variable.updated_at = conversation.updated_at
        return json_response(variable.to_json())

    # -- messages and feedback ----------------------------------------------------------

    async def list_messages(self, request: web.Request) -> web.Response:
        owner = self._owner(request.query.get("user"))
        if "conversation_id" not in request.query:
            raise missing_field("MessageListQuery", "conversation_id", dict(request.query))
        limit = int_param(request, "limit", default=20, low=1, high=100)
        conversation_id = _uuid_query(request, "conversation_id")
        if conversation_id is None:
            return json_response({"limit": limit, "has_more": False, "data": []})
        conversation = self.ctx.store.conversation(conversation_id, owner)
        page, has_more = self.ctx.store.list_messages(
            conversation, first_id=_uuid_query(request, "first_id"), limit=limit
        )
        origin = self.ctx.origin
        return json_response(
            {"limit": limit, "has_more": has_more, "data": [m.to_json(origin) for m in page]}
        )

    async def feedback(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        owner = self.ctx.store.end_user(require_user(body.get("user")))
        rating = body.get("rating")
        if rating not in ("like", "dislike", None):
            raise _invalid("rating: Input should be 'like' or 'dislike'")
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise _invalid("content: Input should be a valid string")
        message = self.ctx.store.owned_message(path_uuid(request, "message_id"), owner)
        self.ctx.store.set_feedback(message, rating, content, owner)
        return json_response({"result": "success"})

    async def suggested(self, request: web.Request) -> web.Response:
        owner = self.ctx.store.end_user(require_user(request.query.get("user")))
        message = self.ctx.store.owned_message(path_uuid(request, "message_id"), owner)
        topic = derive_name(message.query)
        questions = [
            f"Can you tell me more about {topic}?",
            "What should I ask next?",
            "Can you give me an example?",
        ]
        return json_response({"result": "success", "data": questions})

    async def app_feedbacks(self, request: web.Request) -> web.Response:
        page = int_param(request, "page", default=1, low=1, high=2**31)
        limit = int_param(request, "limit", default=20, low=1, high=101)
        newest = sorted(self.ctx.store.feedbacks, key=lambda f: f.updated_at, reverse=True)
        start = (page - 1) * limit
        return json_response({"data": [f.to_json() for f in newest[start : start + limit]]})

    # -- files --------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        fields, files = await _file_parts(request, 100 * _MB)
        named = [f for f in files if f[0] == "file"]
        if not named:
            raise FakeAPIError(400, "no_file_uploaded", "Please upload your file.")
        if len(files) > 1:
            raise FakeAPIError(400, "too_many_files", "Only one file is allowed.")
        _, filename, content_type, content = named[0]
        if not content_type:
            raise FakeAPIError(415, "unsupported_file_type", "File type not allowed.")
        if not filename:
            raise FakeAPIError(
                400, "filename_not_exists_error", "The specified filename does not exist."
            )
        if "/" in filename or "\\" in filename:
            raise _invalid("Filename contains invalid characters")
        upload = UploadedFile(
            name=filename,
            content=bytes(content),
            mime_type=content_type.split(";")[0].strip(),
            owner=self._owner(fields.get("user")),
        )
        limit = next(
            (size for extensions, size in _SIZE_LIMITS if upload.extension in extensions),
            _OTHER_FILE_LIMIT,
        )
        if len(upload.content) > limit:
            raise FakeAPIError(413, "file_too_large", "File size exceeded.")
        self.ctx.store.files[upload.id] = upload
        return json_response(
            upload.upload_json(origin=self.ctx.origin, tenant_id=self.ctx.tenant_id), status=201
        )

    async def preview(self, request: web.Request) -> web.Response:
        store = self.ctx.store
        upload = store.files.get(path_uuid(request, "file_id"))
        if upload is None:
            raise FakeAPIError(404, "file_not_found", "The requested file was not found.")
        # Dify serves only files that a message of the app refers to.
        if not any(f.upload is upload for m in store.messages.values() for f in m.files):
            raise FakeAPIError(404, "file_not_found", "File not found in message context")
        return file_response(upload, as_attachment=bool_param(request, "as_attachment"))

    # -- audio --------------------------------------------------------------------------

    async def audio_to_text(self, request: web.Request) -> web.Response:
        _, files = await _file_parts(request, _AUDIO_LIMIT)
        audio = next((f for f in files if f[0] == "file"), None)
        if audio is None:
            raise FakeAPIError(400, "no_audio_uploaded", "Please upload your audio.")
        _, _, content_type, content = audio
        if len(content) > _AUDIO_LIMIT:
            raise FakeAPIError(413, "audio_too_large", "Audio size larger than 30 mb")
        if (content_type or "").split(";")[0].strip().lower() not in _AUDIO_TYPES:
            raise FakeAPIError(415, "unsupported_audio_type", "Audio type not allowed.")
        return json_response({"text": self.ctx.script.transcript})

    async def text_to_audio(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        message_id = body.get("message_id")
        text = body.get("text")
        if message_id:
            found = parse_uuid(message_id) if isinstance(message_id, str) else None
            if found is None:
                raise _invalid("message_id: Input should be a valid UUID")
            message = self.ctx.store.messages.get(found)
            if message is None:
                raise FakeAPIError(404, "not_found", "Message Not Exists.")
            text = message.answer
        if not isinstance(text, str) or not text.strip():
            raise _invalid("Text is required")
        return web.Response(body=_wav(text), content_type="audio/wav")

    # -- app metadata -------------------------------------------------------------------

    async def info(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "name": self.ctx.app_name,
                "description": "A fake Dify app served by chatapi.testing.",
                "tags": [],
                "mode": self.ctx.mode,
                "author_name": "chatapi",
            }
        )

    async def parameters(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "opening_statement": INTRODUCTION,
                "suggested_questions": ["What can you do?"],
                "suggested_questions_after_answer": {"enabled": True},
                "speech_to_text": {"enabled": True},
                "text_to_speech": {
                    "enabled": True,
                    "voice": "alloy",
                    "language": "en-US",
                    "autoPlay": "disabled",
                },
                "retriever_resource": {"enabled": False},
                "annotation_reply": {"enabled": self.reply_enabled},
                "more_like_this": {"enabled": False},
                "sensitive_word_avoidance": {"enabled": False},
                "user_input_form": [
                    {
                        "text-input": {
                            "label": "Name",
                            "variable": "name",
                            "required": False,
                            "default": "",
                            "max_length": 48,
                        }
                    }
                ],
                "file_upload": {
                    "image": {
                        "enabled": True,
                        "number_limits": 3,
                        "detail": "high",
                        "transfer_methods": ["remote_url", "local_file"],
                    }
                },
                "system_parameters": {
                    "file_size_limit": 15,
                    "image_file_size_limit": 10,
                    "audio_file_size_limit": 50,
                    "video_file_size_limit": 100,
                    "workflow_file_upload_limit": 10,
                },
            }
        )

    async def meta(self, request: web.Request) -> web.Response:
        return json_response({"tool_icons": {}})

    async def site(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "title": self.ctx.app_name,
                "chat_color_theme": None,
                "chat_color_theme_inverted": False,
                "icon_type": "emoji",
                "icon": "\N{ROBOT FACE}",
                "icon_background": "#FFEAD5",
                "icon_url": None,
                "description": "A fake Dify app served by chatapi.testing.",
                "copyright": None,
                "privacy_policy": None,
                "input_placeholder": None,
                "custom_disclaimer": "",
                "default_language": "en-US",
                "show_workflow_steps": True,
                "use_icon_as_answer_icon": False,
            }
        )

    # -- annotations --------------------------------------------------------------------

    async def _annotation_body(self, request: web.Request) -> tuple[str, str]:
        body = await read_json(request)
        for field in ("question", "answer"):
            if not isinstance(body.get(field), str):
                raise missing_field("AnnotationCreatePayload", field, body)
        return body["question"], body["answer"]

    async def create_annotation(self, request: web.Request) -> web.Response:
        question, answer = await self._annotation_body(request)
        annotation = Annotation(question=question, answer=answer)
        self.ctx.store.annotations[annotation.id] = annotation
        return json_response(annotation.to_json(), status=201)

    async def list_annotations(self, request: web.Request) -> web.Response:
        page = int_param(request, "page", default=1, low=1, high=2**31)
        limit = int_param(request, "limit", default=20, low=1, high=2**31)
        items = self.ctx.store.list_annotations(keyword=request.query.get("keyword"))
        size = min(limit, 100)
        data = items[(page - 1) * size : page * size]
        return json_response(
            {
                "data": [a.to_json() for a in data],
                # Dify's own rule: a full page says there may be more.
                "has_more": len(data) == limit,
                "limit": limit,
                "total": len(items),
                "page": page,
            }
        )

    async def update_annotation(self, request: web.Request) -> web.Response:
        annotation = self.ctx.store.annotation(path_uuid(request, "annotation_id"))
        annotation.question, annotation.answer = await self._annotation_body(request)
        return json_response(annotation.to_json())

    async def delete_annotation(self, request: web.Request) -> web.Response:
        annotation = self.ctx.store.annotation(path_uuid(request, "annotation_id"))
        del self.ctx.store.annotations[annotation.id]
        return web.Response(status=204)

    async def configure_reply(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in ("enable", "disable"):
            # Dify does not validate the action: anything else fails inside the handler.
            raise FakeAPIError(500, "unknown", "Internal Server Error")
        body = await read_json(request)
        for field in ("embedding_provider_name", "embedding_model_name", "score_threshold"):
            if field not in body:
                raise missing_field("AnnotationReplyActionPayload", field, body)
        score = body["score_threshold"]
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise _invalid("score_threshold: Input should be a valid number")
        job_id = new_id()
        self.ctx.store.annotation_jobs[job_id] = action
        return json_response({"job_id": job_id, "job_status": "waiting"})

    async def reply_status(self, request: web.Request) -> web.Response:
        job_id = path_uuid(request, "job_id")
        action = self.ctx.store.annotation_jobs.get(job_id)
        if action is None:
            raise _invalid("The job does not exist.")
        # Jobs of the fake server are done by the time anyone asks.
        self.reply_enabled = action == "enable"
        return json_response({"job_id": job_id, "job_status": "completed", "error_msg": ""})

    # -- end users ----------------------------------------------------------------------

    async def end_user(self, request: web.Request) -> web.Response:
        found = self.ctx.store.end_users_by_id.get(path_uuid(request, "end_user_id"))
        if found is None:
            raise FakeAPIError(404, "end_user_not_found", "End user not found.")
        return json_response(found.to_json())


def file_response(upload: UploadedFile, *, as_attachment: bool) -> web.Response:
    """The bytes of an uploaded file with its type (and a download name if asked)."""
    headers = {}
    if as_attachment:
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(upload.name)}"
    return web.Response(body=upload.content, content_type=upload.mime_type, headers=headers)
