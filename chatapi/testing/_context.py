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

__all__ = ["CHAT_MODES", "Context", "ReceivedRequest"]

CHAT_MODES = ("advanced-chat", "chat", "agent-chat")
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
        return self.mode == "advanced-chat"

    def require_workflow_app(self) -> None:
        """The check of the Chatflow-only endpoints."""
        if not self.is_workflow:
            raise FakeAPIError(
                400,
                "not_workflow_app",
                "Please check if your app mode matches the right API route.",
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
