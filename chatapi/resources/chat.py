"""``client.chat``: send a message and get the answer, whole or as a stream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._config import Timeout
from .._convert import structure
from ..errors import APIStatusError
from ..models import ChatCompletion, InputFile
from ..streaming import AsyncChatStream
from ._base import AsyncResource, path_segment

__all__ = ["AsyncChat", "stop_task"]

FileArgument = InputFile | Mapping[str, Any]


def _file_payload(item: FileArgument) -> dict[str, Any]:
    if isinstance(item, InputFile):
        return {k: v for k, v in attrs.asdict(item).items() if v is not None}
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(
        f"each file must be an InputFile or a mapping, got {type(item).__name__}"
    )


class AsyncChat(AsyncResource):
    """Chat messages: ``POST /chat-messages`` in blocking and streaming mode, and stop."""

    def _body(
        self,
        query: str,
        *,
        mode: str,
        inputs: Mapping[str, Any] | None,
        user: str | None,
        conversation_id: str | None,
        files: Sequence[FileArgument] | None,
        auto_generate_name: bool | None,
        workflow_id: str | None,
    ) -> dict[str, Any]:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if inputs is not None and not isinstance(inputs, Mapping):
            raise TypeError(f"inputs must be a mapping, got {type(inputs).__name__}")
        if conversation_id is not None and not isinstance(conversation_id, str):
            raise TypeError(
                f"conversation_id must be a string, got {type(conversation_id).__name__}"
            )
        if files is not None and (
            isinstance(files, (str, bytes)) or not isinstance(files, Sequence)
        ):
            raise TypeError(f"files must be a sequence, got {type(files).__name__}")
        body: dict[str, Any] = {
            "query": query,
            "inputs": dict(inputs) if inputs is not None else {},
            "response_mode": mode,
            "user": self._user(user),
        }
        if conversation_id is not None:
            body["conversation_id"] = conversation_id
        if files is not None:
            body["files"] = [_file_payload(item) for item in files]
        if auto_generate_name is not None:
            body["auto_generate_name"] = bool(auto_generate_name)
        if workflow_id is not None:
            body["workflow_id"] = workflow_id
        return body

    async def send(
        self,
        query: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        user: str | None = None,
        conversation_id: str | None = None,
        files: Sequence[FileArgument] | None = None,
        auto_generate_name: bool | None = None,
        workflow_id: str | None = None,
        timeout: Timeout | float | None = None,
    ) -> ChatCompletion:
        """Send ``query`` and wait for the whole answer (blocking mode).

        A Chatflow run that stops at a Human Input node comes back with
        ``event == "workflow_paused"`` and the pause details in ``data``.
        Agent apps only answer in streaming mode: use :meth:`stream` for them.
        """
        body = self._body(
            query,
            mode="blocking",
            inputs=inputs,
            user=user,
            conversation_id=conversation_id,
            files=files,
            auto_generate_name=auto_generate_name,
            workflow_id=workflow_id,
        )
        data = await self._http.request_json(
            "POST", "/chat-messages", json=body, timeout=self._timeout(timeout)
        )
        return structure(data, ChatCompletion, what="the chat answer")

    def stream(
        self,
        query: str,
        *,
        inputs: Mapping[str, Any] | None = None,
        user: str | None = None,
        conversation_id: str | None = None,
        files: Sequence[FileArgument] | None = None,
        auto_generate_name: bool | None = None,
        workflow_id: str | None = None,
        include_pings: bool = False,
        timeout: Timeout | float | None = None,
    ) -> AsyncChatStream:
        """Send ``query`` in streaming mode; use the result with ``async with``.

        The request goes out when the stream is entered (or first iterated). Pings are
        consumed unless ``include_pings`` is true.
        """
        body = self._body(
            query,
            mode="streaming",
            inputs=inputs,
            user=user,
            conversation_id=conversation_id,
            files=files,
            auto_generate_name=auto_generate_name,
            workflow_id=workflow_id,
        )
        limits = self._timeout(timeout)
        http = self._http
        user_id = body["user"]

        async def stop_run(task_id: str) -> None:
            await self.stop(task_id, user=user_id)

        return AsyncChatStream(
            lambda: http.open("POST", "/chat-messages", json=body, timeout=limits, stream=True),
            timeout=limits,
            stopper=stop_run,
            include_pings=include_pings,
            max_event_size=self._client.max_event_size,
            description="POST /chat-messages",
            registry=self._client._streams,
        )

    async def stop(
        self, task_id: str, *, user: str | None = None, timeout: Timeout | float | None = None
    ) -> None:
        """Stop a streaming run by its ``task_id``; ``user`` must be the run's user.

        A stream of this client reading that run ends cleanly, with ``stream.stopped`` set
        and its partial answer. Dify answers success even for an unknown or finished task.
        """
        path = f"/chat-messages/{path_segment(task_id, 'task_id')}/stop"
        await stop_task(self, path, task_id, user=user, timeout=timeout)


async def stop_task(
    resource: AsyncResource,
    path: str,
    task_id: str,
    *,
    user: str | None,
    timeout: Timeout | float | None,
) -> None:
    """Send a stop route of a run (chat, workflow or completion); the client's streams
    reading that task are marked as stopped by it, so that they end cleanly."""
    body = {"user": resource._user(user)}
    limits = resource._timeout(timeout)
    marked = resource._client._streams.stopping(task_id)
    try:
        await resource._http.request_json("POST", path, json=body, timeout=limits)
    except APIStatusError:
        # Refused: the run goes on, and a failure of it is a failure again.
        for stream in marked:
            stream._stop_requested = False
        raise
