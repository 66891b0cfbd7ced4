"""``client.messages``: conversation history, feedback and suggested questions."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator

from .._config import Timeout
from .._convert import json_object, structure
from .._raw import AsyncRawResponses, raw
from ..models import Message, Page
from ..pagination import iter_cursor_pages, structure_page
from ._base import (
    AsyncResource,
    check_positive_int,
    check_str,
    path_segment,
    query_params,
)

__all__ = ["AsyncMessages", "AsyncMessagesRaw"]

RATINGS = ("like", "dislike")


class AsyncMessages(AsyncResource):
    """Conversation history, feedback and suggested questions."""

    @property
    def with_raw_response(self) -> AsyncMessagesRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncMessagesRaw(self)

    async def list(
        self,
        conversation_id: str,
        *,
        user: str | None = None,
        first_id: str | None = None,
        limit: int = 20,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Page[Message]:
        """One page of a conversation's history (``GET /messages``).

        Without ``first_id`` the page holds the newest ``limit`` messages; pass the id of a
        page's first (oldest) message as ``first_id`` to get the messages before it. Within
        a page, messages are in chronological order.
        """
        check_str(conversation_id, "conversation_id")
        check_str(first_id, "first_id", optional=True)
        check_positive_int(limit, "limit")
        params = query_params(
            {
                "conversation_id": conversation_id,
                "user": self._optional_user(user),
                "first_id": first_id,
                "limit": limit,
            }
        )
        data = await self._http.request_json(
            "GET",
            "/messages",
            params=params,
            timeout=self._timeout(timeout),
            max_retries=max_retries,
        )
        return structure_page(data, Message, what="the message list")

    async def iter(
        self,
        conversation_id: str,
        *,
        user: str | None = None,
        page_size: int = 100,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[Message]:
        """Every message of a conversation, **newest first**, fetching pages as needed.

        Dify pages backwards in time, so the newest message comes first and the opening
        message last; collect and reverse the result for chronological order.
        """

        async def fetch(first_id: str | None) -> Page[Message]:
            return await self.list(
                conversation_id,
                user=user,
                first_id=first_id,
                limit=page_size,
                timeout=timeout,
                max_retries=max_retries,
            )

        async for message in iter_cursor_pages(
            fetch, cursor=lambda page: page.data[0].id, newest_first=True
        ):
            yield message

    async def feedback(
        self,
        message_id: str,
        rating: str | None,
        *,
        user: str | None = None,
        content: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Rate a message ``"like"`` or ``"dislike"``, or withdraw the rating with ``None``.

        ``content`` is an optional comment. The message must belong to ``user``.
        """
        path = f"/messages/{path_segment(message_id, 'message_id')}/feedbacks"
        if rating is not None and rating not in RATINGS:
            raise ValueError(f"rating must be 'like', 'dislike' or None, got {rating!r}")
        if content is not None and not isinstance(content, str):
            raise TypeError(f"content must be a string, got {type(content).__name__}")
        # ``rating: null`` is meaningful here (it revokes), so it is sent, not left out.
        body: dict[str, str | None] = {"rating": rating, "user": self._user(user)}
        if content is not None:
            body["content"] = content
        await self._http.request_json(
            "POST", path, json=body, timeout=self._timeout(timeout), max_retries=max_retries
        )

    async def suggested(
        self,
        message_id: str,
        *,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> builtins.list[str]:
        """Follow-up questions Dify suggests after the answer ``message_id``."""
        path = f"/messages/{path_segment(message_id, 'message_id')}/suggested"
        params = query_params({"user": self._user(user)})
        data = await self._http.request_json(
            "GET", path, params=params, timeout=self._timeout(timeout), max_retries=max_retries
        )
        what = "the suggested questions"
        return structure(json_object(data, what=what).get("data"), builtins.list[str], what=what)


class AsyncMessagesRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncMessages`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    feedback = raw(AsyncMessages.feedback)
    list = raw(AsyncMessages.list)
    suggested = raw(AsyncMessages.suggested)
