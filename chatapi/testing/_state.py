"""The fake server's memory: end users, conversations, messages, files, annotations, runs.

Records are plain mutable attrs classes; each knows its wire shape (``to_json``). The
:class:`Store` holds them and implements the lookups and the pagination rules of the API.
Everything here runs on the server's event loop only.
"""

from __future__ import annotations

import asyncio
import json
import time
from itertools import count
from typing import Any

import attrs

from ._wire import FakeAPIError, iso_time, new_id, now

__all__ = [
    "DEFAULT_USER",
    "Annotation",
    "Conversation",
    "EndUser",
    "Feedback",
    "HumanInputForm",
    "Message",
    "Store",
    "UploadedFile",
    "Variable",
    "WorkflowRun",
]

# The end user Dify attributes a request to when an optional ``user`` is left out.
DEFAULT_USER = "DEFAULT-USER"
# Dify stores the Service API's linear history with the nil UUID as every parent.
NIL_UUID = "00000000-0000-0000-0000-000000000000"
_sequence = count(1)


def _next() -> int:
    """A strictly increasing number: orders records created within the same second."""
    return next(_sequence)


def conversation_not_found() -> FakeAPIError:
    return FakeAPIError(404, "not_found", "Conversation Not Exists.")


@attrs.define(eq=False)
class EndUser:
    """The server-side identity behind one ``user`` string."""

    session_id: str
    app_id: str
    tenant_id: str
    id: str = attrs.field(factory=new_id)
    created_at: float = attrs.field(factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "app_id": self.app_id,
            "type": "service-api",
            "external_user_id": self.session_id,
            "name": None,
            "is_anonymous": self.session_id == DEFAULT_USER,
            "session_id": self.session_id,
            "created_at": iso_time(self.created_at),
            "updated_at": iso_time(self.created_at),
        }


@attrs.define(eq=False)
class UploadedFile:
    """A file sent to ``POST /files/upload``, kept with its bytes."""

    name: str
    content: bytes
    mime_type: str
    owner: EndUser
    id: str = attrs.field(factory=new_id)
    created_at: int = attrs.field(factory=now)

    @property
    def extension(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""

    def upload_json(self, *, origin: str, tenant_id: str) -> dict[str, Any]:
        """The 201 body of the upload, with the fields of the 1.12.1 recording."""
        return {
            "id": self.id,
            "name": self.name,
            "size": len(self.content),
            "extension": self.extension,
            "mime_type": self.mime_type,
            "created_by": self.owner.id,
            "created_at": self.created_at,
            "preview_url": None,
            "source_url": self.signed_url(origin),
            "original_url": None,
            "user_id": None,
            "tenant_id": tenant_id,
            "conversation_id": None,
            "file_key": None,
        }

    def signed_url(self, origin: str) -> str:
        return (
            f"{origin}/files/{self.id}/file-preview?timestamp={self.created_at}"
            f"&nonce={self.id[:8]}&sign=fake"
        )


@attrs.define(eq=False)
class AttachedFile:
    """A file given with a chat message: an upload (``local_file``) or a URL."""

    type: str
    transfer_method: str
    upload: UploadedFile | None = None
    url: str | None = None
    id: str = attrs.field(factory=new_id)

    @property
    def filename(self) -> str:
        if self.upload is not None:
            return self.upload.name
        return (self.url or "").rstrip("/").rsplit("/", 1)[-1]

    def url_for(self, origin: str) -> str | None:
        return self.upload.signed_url(origin) if self.upload is not None else self.url

    def message_file_json(self, origin: str) -> dict[str, Any]:
        """The item of ``message_files`` in the message history."""
        return {
            "id": self.id,
            "filename": self.filename,
            "type": self.type,
            "url": self.url_for(origin),
            "mime_type": self.upload.mime_type if self.upload is not None else None,
            "size": len(self.upload.content) if self.upload is not None else None,
            "transfer_method": self.transfer_method,
            "belongs_to": "user",
            "upload_file_id": self.upload.id if self.upload is not None else None,
        }

    def message_end_json(self, origin: str) -> dict[str, Any]:
        """The item of ``message_end.files``."""
        upload = self.upload
        return {
            "related_id": upload.id if upload is not None else self.id,
            "extension": f".{upload.extension}" if upload is not None else None,
            "filename": self.filename,
            "size": len(upload.content) if upload is not None else -1,
            "mime_type": upload.mime_type if upload is not None else None,
            "transfer_method": self.transfer_method,
            "type": self.type,
            "url": self.url_for(origin),
            "upload_file_id": upload.id if upload is not None else None,
            "remote_url": self.url,
        }


@attrs.define(eq=False)
class Feedback:
    """A like or dislike on a message."""

    message: Message
    rating: str
    content: str | None
    end_user: EndUser
    app_id: str
    id: str = attrs.field(factory=new_id)
    created_at: float = attrs.field(factory=time.time)
    updated_at: float = attrs.field(factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app_id": self.app_id,
            "conversation_id": self.message.conversation_id,
            "message_id": self.message.id,
            "rating": self.rating,
            "content": self.content,
            "from_source": "user",
            "from_end_user_id": self.end_user.id,
            "from_account_id": None,
            "created_at": iso_time(self.created_at),
            "updated_at": iso_time(self.updated_at),
        }


@attrs.define(eq=False)
class Message:
    """One turn of a conversation: the query and the answer (complete once the run ends)."""

    conversation_id: str
    query: str
    inputs: dict[str, Any]
    files: list[AttachedFile]
    id: str = attrs.field(factory=new_id)
    answer: str = ""
    status: str = "normal"
    error: str | None = None
    feedback: Feedback | None = None
    agent_thoughts: list[dict[str, Any]] = attrs.field(factory=list)
    created_at: int = attrs.field(factory=now)
    seq: int = attrs.field(factory=_next)

    def to_json(self, origin: str) -> dict[str, Any]:
        """The item of ``GET /messages`` (key order of the 1.12.1 recording)."""
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "parent_message_id": NIL_UUID,
            "inputs": self.inputs,
            "query": self.query,
            "answer": self.answer,
            "feedback": {"rating": self.feedback.rating} if self.feedback is not None else None,
            "retriever_resources": [],
            "created_at": self.created_at,
            "agent_thoughts": self.agent_thoughts,
            "message_files": [item.message_file_json(origin) for item in self.files],
            "status": self.status,
            "error": self.error,
            "extra_contents": [],
        }


# Conversation variables every fake conversation starts with: (name, type, value, description).
DEFAULT_VARIABLES: tuple[tuple[str, str, Any, str], ...] = (
    ("memo", "string", "hello", "A note kept across turns"),
    ("turns", "number", 0, "How many messages the conversation has"),
    ("tags", "array[string]", [], "Labels of the conversation"),
)


@attrs.define(eq=False)
class Variable:
    """A conversation variable of a Chatflow."""

    name: str
    value_type: str
    value: Any
    description: str
    id: str = attrs.field(factory=new_id)
    created_at: int = attrs.field(factory=now)
    updated_at: int = attrs.field(factory=now)

    def to_json(self) -> dict[str, Any]:
        # Dify returns the value as text: complex values as their JSON.
        value = self.value if isinstance(self.value, str) else json.dumps(self.value)
        return {
            "id": self.id,
            "name": self.name,
            "value_type": self.value_type,
            "value": value,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@attrs.define(eq=False)
class Conversation:
    """A conversation of one end user: its messages and variables."""

    owner: EndUser
    name: str
    inputs: dict[str, Any]
    introduction: str
    id: str = attrs.field(factory=new_id)
    messages: list[Message] = attrs.field(factory=list)
    variables: list[Variable] = attrs.field(factory=list)
    created_at: int = attrs.field(factory=now)
    updated_at: int = attrs.field(factory=now)
    created_seq: int = attrs.field(factory=_next)
    updated_seq: int = attrs.field(factory=_next)

    def __attrs_post_init__(self) -> None:
        self.variables = [
            Variable(name=name, value_type=kind, value=value, description=text)
            for name, kind, value, text in DEFAULT_VARIABLES
        ]

    def touch(self) -> None:
        self.updated_at = now()
        self.updated_seq = _next()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "inputs": self.inputs,
            "status": "normal",
            "introduction": self.introduction,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@attrs.define(eq=False)
class Annotation:
    """A curated question/answer pair of the app."""

    question: str
    answer: str
    id: str = attrs.field(factory=new_id)
    hit_count: int = 0
    created_at: int = attrs.field(factory=now)
    seq: int = attrs.field(factory=_next)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "hit_count": self.hit_count,
            "created_at": self.created_at,
        }


@attrs.define(eq=False)
class HumanInputForm:
    """The form a paused run waits for; submitted once through its token."""

    run: WorkflowRun
    content: str
    inputs: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    node_id: str = "review"
    node_title: str = "Review"
    id: str = attrs.field(factory=new_id)
    token: str = attrs.field(factory=lambda: new_id().replace("-", "")[:22])
    expiration_time: int = attrs.field(factory=lambda: now() + 36 * 3600)
    submitted: bool = False

    def to_json(self) -> dict[str, Any]:
        """The answer of ``GET /form/human_input/{token}``."""
        return {
            "form_content": self.content,
            "inputs": self.inputs,
            "resolved_default_values": {},
            "user_actions": self.actions,
            "expiration_time": self.expiration_time,
        }

    def reason_json(self) -> dict[str, Any]:
        """The pause reason of ``workflow_paused`` (key order of the 1.15.0 recording)."""
        return {
            "TYPE": "human_input_required",
            "form_id": self.id,
            "form_content": self.content,
            "inputs": self.inputs,
            "actions": self.actions,
            "node_id": self.node_id,
            "node_title": self.node_title,
            "resolved_default_values": {},
            "form_token": self.token,
            "approval_channels": ["console"],
            "expiration_time": self.expiration_time,
        }


@attrs.define(eq=False)
class WorkflowRun:
    """A Chatflow run: status and outcome, plus what a resumption stream needs."""

    workflow_id: str
    owner: EndUser
    inputs: dict[str, Any]
    task_id: str
    conversation_id: str
    message: Message
    id: str = attrs.field(factory=new_id)
    status: str = "running"
    outputs: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    total_steps: int = 0
    total_tokens: int = 0
    created_at: int = attrs.field(factory=now)
    started: float = attrs.field(factory=time.monotonic)
    finished_at: int | None = None
    elapsed_time: float = 0.0
    # Node events already sent, replayed by ``include_state_snapshot``.
    node_events: list[dict[str, Any]] = attrs.field(factory=list)
    form: HumanInputForm | None = None
    # Events of the resumed part of a paused run, built when its form is submitted.
    resumed_events: list[dict[str, Any]] | None = None
    # Set when the run ends, for the event streams that wait for it.
    ended: asyncio.Event = attrs.field(factory=asyncio.Event)
    seq: int = attrs.field(factory=_next)

    def finish(self, status: str, *, outputs: dict[str, Any], error: str | None = None) -> None:
        self.status = status
        self.outputs = outputs
        self.error = error
        self.finished_at = now()
        self.elapsed_time = round(time.monotonic() - self.started, 6)
        self.ended.set()

    def detail_json(self) -> dict[str, Any]:
        """The answer of ``GET /workflows/run/{id}`` (``inputs`` is JSON text there)."""
        return {
            "id": self.id,
            "workflow_id": self.workflow_id,
            "status": self.status,
            "inputs": json.dumps(self.inputs),
            "outputs": self.outputs,
            "error": self.error,
            "total_steps": self.total_steps,
            "total_tokens": self.total_tokens,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "elapsed_time": self.elapsed_time,
        }

    def log_json(self) -> dict[str, Any]:
        """The item of ``GET /workflows/logs``."""
        return {
            "id": self.message.id,
            "workflow_run": {
                "id": self.id,
                "version": "2026-01-01 00:00:00.000000",
                "status": self.status,
                "error": self.error,
                "elapsed_time": self.elapsed_time,
                "total_tokens": self.total_tokens,
                "total_steps": self.total_steps,
                "created_at": self.created_at,
                "finished_at": self.finished_at,
                "exceptions_count": 0,
                "triggered_from": "app-run",
            },
            "created_from": "service-api",
            "created_by_role": "end_user",
            "created_by_account": None,
            "created_by_end_user": {
                "id": self.owner.id,
                "type": "service-api",
                "is_anonymous": self.owner.session_id == DEFAULT_USER,
                "session_id": self.owner.session_id,
            },
            "created_at": self.created_at,
            "details": None,
        }


def _page_after(items: list[Any], last: Any, limit: int) -> tuple[list[Any], bool]:
    """The ``limit`` items following ``last`` (from the start when None) and has_more."""
    start = items.index(last) + 1 if last is not None else 0
    page = items[start : start + limit]
    return page, start + limit < len(items)


_CONVERSATION_ORDER = {
    "created_at": (lambda c: c.created_seq, False),
    "-created_at": (lambda c: c.created_seq, True),
    "updated_at": (lambda c: c.updated_seq, False),
    "-updated_at": (lambda c: c.updated_seq, True),
}


class Store:
    """Everything the fake app remembers; lost when the server stops."""

    def __init__(self, *, app_id: str, tenant_id: str, workflow_id: str) -> None:
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.workflow_id = workflow_id
        self.end_users: dict[str, EndUser] = {}
        self.end_users_by_id: dict[str, EndUser] = {}
        self.conversations: dict[str, Conversation] = {}
        self.messages: dict[str, Message] = {}
        self.files: dict[str, UploadedFile] = {}
        self.feedbacks: list[Feedback] = []
        self.annotations: dict[str, Annotation] = {}
        self.annotation_jobs: dict[str, str] = {}
        self.runs: dict[str, WorkflowRun] = {}
        self.forms: dict[str, HumanInputForm] = {}

    # -- end users ----------------------------------------------------------------------

    def end_user(self, user: str | None) -> EndUser:
        """The end user for a ``user`` string, created on first sight."""
        session_id = user if user else DEFAULT_USER
        found = self.end_users.get(session_id)
        if found is None:
            found = EndUser(session_id=session_id, app_id=self.app_id, tenant_id=self.tenant_id)
            self.end_users[session_id] = found
            self.end_users_by_id[found.id] = found
        return found

    # -- conversations and messages -----------------------------------------------------

    def conversation(self, conversation_id: str, owner: EndUser) -> Conversation:
        """A conversation of ``owner``; another user's conversation does not exist for them."""
        found = self.conversations.get(conversation_id)
        if found is None or found.owner is not owner:
            raise conversation_not_found()
        return found

    def add_message(self, conversation: Conversation, message: Message) -> None:
        conversation.messages.append(message)
        conversation.touch()
        self.messages[message.id] = message

    def owned_message(self, message_id: str, owner: EndUser) -> Message:
        message = self.messages.get(message_id)
        if message is None:
            raise FakeAPIError(404, "not_found", "Message Not Exists.")
        conversation = self.conversations.get(message.conversation_id)
        if conversation is None or conversation.owner is not owner:
            raise FakeAPIError(404, "not_found", "Message Not Exists.")
        return message

    def list_conversations(
        self, owner: EndUser, *, last_id: str | None, limit: int, sort_by: str
    ) -> tuple[list[Conversation], bool]:
        key, reverse = _CONVERSATION_ORDER[sort_by]
        mine = sorted(
            (c for c in self.conversations.values() if c.owner is owner), key=key, reverse=reverse
        )
        last = None
        if last_id:
            last = self.conversations.get(last_id)
            if last is None or last.owner is not owner:
                raise FakeAPIError(404, "not_found", "Last Conversation Not Exists.")
        return _page_after(mine, last, limit)

    def list_messages(
        self, conversation: Conversation, *, first_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        """A page of history going back in time, each page in chronological order."""
        newest_first = sorted(conversation.messages, key=lambda m: m.seq, reverse=True)
        first = None
        if first_id:
            first = next((m for m in newest_first if m.id == first_id), None)
            if first is None:
                raise FakeAPIError(404, "not_found", "First Message Not Exists.")
        page, has_more = _page_after(newest_first, first, limit)
        page.reverse()
        return page, has_more

    def delete_conversation(self, conversation: Conversation) -> None:
        del self.conversations[conversation.id]
        for message in conversation.messages:
            self.messages.pop(message.id, None)
        self.feedbacks = [f for f in self.feedbacks if f.message.conversation_id != conversation.id]

    def list_variables(
        self,
        conversation: Conversation,
        *,
        last_id: str | None,
        limit: int,
        name: str | None,
    ) -> tuple[list[Variable], bool]:
        variables = [v for v in conversation.variables if name is None or v.name == name]
        last = None
        if last_id:
            last = next((v for v in variables if v.id == last_id), None)
            if last is None:
                raise FakeAPIError(400, "invalid_param", "")
        return _page_after(variables, last, limit)

    # -- feedback ---------------------------------------------------------------------

    def set_feedback(
        self, message: Message, rating: str | None, content: str | None, end_user: EndUser
    ) -> None:
        if rating is None:
            if message.feedback is None:
                raise FakeAPIError(400, "invalid_param", "rating: feedback does not exist")
            self.feedbacks.remove(message.feedback)
            message.feedback = None
            return
        if message.feedback is not None:
            message.feedback.rating = rating
            message.feedback.content = content
            message.feedback.updated_at = time.time()
            return
        feedback = Feedback(
            message=message,
            rating=rating,
            content=content,
            end_user=end_user,
            app_id=self.app_id,
        )
        message.feedback = feedback
        self.feedbacks.append(feedback)

    # -- annotations --------------------------------------------------------------------

    def annotation(self, annotation_id: str) -> Annotation:
        found = self.annotations.get(annotation_id)
        if found is None:
            raise FakeAPIError(404, "not_found", "Annotation not found.")
        return found

    def list_annotations(self, *, keyword: str | None) -> list[Annotation]:
        items = sorted(self.annotations.values(), key=lambda a: a.seq, reverse=True)
        if keyword:
            needle = keyword.lower()
            items = [a for a in items if needle in a.question.lower() or needle in a.answer.lower()]
        return items
