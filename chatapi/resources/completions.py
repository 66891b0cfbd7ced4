"""``client.completions``: completion (text generator) apps, whole or streamed, and stop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._app_streams import AsyncCompletionStream
from .._config import Timeout
from .._convert import structure
from ..models import ChatCompletion
from ..streaming import AsyncChatStream
from ._base import AsyncResource, path_segment
from ._inputs import app_request_body
from .chat import FileArgument, stop_task

__all__ = ["AsyncCompletions"]


class AsyncCompletions(AsyncResource):
    """Completion apps: ``POST /completion-messages`` in blocking and streaming mode, and stop."""

    def _body(
        self,
        inputs: Mapping[str, Any] | None,
        *,
        mode: str,
        query: str | None,
        user: str | None,
        files: Sequence[FileArgument] | None,
    ) -> dict[str, Any]:
        if query is not None and not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        body = app_request_body(inputs, mode=mode, user=self._user(user), files=files)
        if query is not None:
            body["query"] = query
        return body

    async def send(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        query: str | None = None,
        user: str | None = None,
        files: Sequence[FileArgument] | None = None,
        timeout: Timeout | float | None = None,
    ) -> ChatCompletion:
        """Generate a text from ``inputs`` and wait for all of it (blocking mode).

        The answer is a :class:`ChatCompletion` with ``mode == "completion"`` and no
        conversation. ``query`` is the legacy text field of older apps, which now take
        their text in ``inputs``.
        """
        body = self._body(inputs, mode="blocking", query=query, user=user, files=files)
        data = await self._http.request_json(
            "POST", "/completion-messages", json=body, timeout=self._timeout(timeout)
        )
        return structure(data, ChatCompletion, what="the completion")

    def stream(
        self,
        inputs: Mapping[str, Any] | None = None,
        *,
        query: str | None = None,
        user: str | None = None,
        files: Sequence[FileArgument] | None = None,
        include_pings: bool = False,
        timeout: Timeout | float | None = None,
    ) -> AsyncChatStream:
        """Generate a text from ``inputs`` in streaming mode; use the result with
        ``async with``. The stream ends on ``message_end``; ``final_message()`` returns
        what :meth:`send` would."""
        body = self._body(inputs, mode="streaming", query=query, user=user, files=files)
        limits = self._timeout(timeout)
        http = self._http
        user_id = body["user"]

        async def stop_run(task_id: str) -> None:
            await self.stop(task_id, user=user_id)

        return AsyncCompletionStream(
            lambda: http.open(
                "POST", "/completion-messages", json=body, timeout=limits, stream=True
            ),
            timeout=limits,
            stopper=stop_run,
            include_pings=include_pings,
            max_event_size=self._client.max_event_size,
            description="POST /completion-messages",
            registry=self._client._streams,
        )

    async def stop(
        self, task_id: str, *, user: str | None = None, timeout: Timeout | float | None = None
    ) -> None:
        """Stop a streaming completion by its ``task_id``; ``user`` must be the one that
        started it (Dify ignores a stop from another user and still answers success). A
        stream of this client reading it ends cleanly, with ``stream.stopped`` set."""
        path = f"/completion-messages/{path_segment(task_id, 'task_id')}/stop"
        await stop_task(self, path, task_id, user=user, timeout=timeout)
