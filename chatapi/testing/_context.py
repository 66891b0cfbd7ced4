"""What every request handler of the fake server shares: settings, memory, script, live runs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import attrs

from ._load import LoadState
from ._script import Script
from ._state import Store
from ._wire import FakeAPIError, new_id

if TYPE_CHECKING:
    from ._run import ChatRun

__all__ = ["APP_MODES", "CHAT_MODES", "Context", "ReceivedRequest"]

CHAT_MODES = ("advanced-chat", "chat", "agent-chat")
APP_MODES = (*CHAT_MODES, "workflow", "completion")
WRONG_ROUTE = "Please check if your app mode matches the right API route."
SERVER_VERSION = "1.15.0"
INTRODUCTION = "Hello! I echo what you say."


@attrs.frozen
class ReceivedRequest:
    """A request the fake server received: method, path below ``/v1``, query and JSON body."""

    method: str
    path: str
    query: dict[str, str]
    json: Any = None


@attrs.define(eq=False)
class Context:
    """Settings and state of one running fake server."""

    mode: str
    ping_interval: float
    script: Script
    app_name: str
    app_id: str = attrs.field(factory=new_id)
    tenant_id: str = attrs.field(factory=new_id)
    workflow_id: str = attrs.field(factory=new_id)
    store: Store = attrs.field(init=False)
    origin: str = ""
    closing: bool = False
    runs: dict[str, ChatRun] = attrs.field(factory=dict)
    wakers: set[asyncio.Event] = attrs.field(factory=set)
    requests: list[ReceivedRequest] = attrs.field(factory=list)
    load: LoadState = attrs.field(factory=lambda: LoadState(None))

    def __attrs_post_init__(self) -> None:
        self.store = Store(
            app_id=self.app_id, tenant_id=self.tenant_id, workflow_id=self.workflow_id
        )

    @property
    def is_workflow(self) -> bool:
        """Whether the app runs a workflow (Chatflow and workflow apps)."""
        return self.mode in ("advanced-chat", "workflow")

    def require_workflow_app(self) -> None:
        """The check of the endpoints of workflow runs (Chatflow and workflow apps)."""
        if not self.is_workflow:
            raise FakeAPIError(400, "not_workflow_app", WRONG_ROUTE)

    def require_mode(self, mode: str) -> None:
        """The app-mode checks of Dify's run endpoints, with the code each one answers."""
        if mode == "chat" and self.mode not in CHAT_MODES:
            raise FakeAPIError(400, "not_chat_app", WRONG_ROUTE)
        if mode == "workflow" and self.mode != "workflow":
            raise FakeAPIError(400, "not_workflow_app", WRONG_ROUTE)
        if mode == "completion" and self.mode != "completion":
            raise FakeAPIError(
                400, "app_unavailable", "App unavailable, please check your app configurations."
            )

    def waker(self) -> asyncio.Event:
        """An event set when the server stops, for handlers that wait."""
        event = asyncio.Event()
        if self.closing:
            event.set()
        self.wakers.add(event)
        return event

    def close(self) -> None:
        """Wake every waiting handler so that the server can stop at once."""
        self.closing = True
        for event in self.wakers:
            event.set()
