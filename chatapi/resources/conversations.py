"""``client.conversations``: list, rename and delete conversations; conversation variables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._config import Timeout
from .._convert import structure
from .._raw import AsyncRawResponses, raw
from ..models import Conversation, ConversationVariable, Page
from ..pagination import iter_cursor_pages, structure_page
from ._base import AsyncResource, check_positive_int, check_str, path_segment, query_params

__all__ = ["AsyncConversations", "AsyncConversationsRaw"]

SORT_ORDERS = ("created_at", "-created_at", "updated_at", "-updated_at")


def _check_sort_by(sort_by: str) -> None:
    if sort_by not in SORT_ORDERS:
        raise ValueError(f"sort_by must be one of {', '.join(SORT_ORDERS)}; got {sort_by!r}")


class AsyncConversations(AsyncResource):
    """The end user's conversations and their variables."""

    @property
    def with_raw_response(self) -> AsyncConversationsRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncConversationsRaw(self)

    async def list(
        self,
        *,
        user: str | None = None,
        last_id: str | None = None,
        limit: int = 20,
        sort_by: str = "-updated_at",
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Page[Conversation]:
        """One page of the user's conversations, in ``sort_by`` order (``-`` = descending).

        Pass the id of the last conversation of a page as ``last_id`` for the next page.
        """
        check_str(last_id, "last_id", optional=True)
        check_positive_int(limit, "limit")
        _check_sort_by(sort_by)
        params = query_params(
            {
                "user": self._optional_user(user),
                "last_id": last_id,
                "limit": limit,
                "sort_by": sort_by,
            }
        )
        data = await self._http.request_json(
            "GET",
            "/conversations",
            params=params,
            timeout=self._timeout(timeout),
            max_retries=max_retries,
        )
        return structure_page(data, Conversation, what="the conversation list")

    async def iter(
        self,
        *,
        user: str | None = None,
        sort_by: str = "-updated_at",
        page_size: int = 100,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[Conversation]:
        """Every conversation of the user, in ``sort_by`` order (default: most recently
        updated first), fetching pages as needed."""

        async def fetch(last_id: str | None) -> Page[Conversation]:
            return await self.list(
                user=user,
                last_id=last_id,
                limit=page_size,
                sort_by=sort_by,
                timeout=timeout,
                max_retries=max_retries,
            )

        async for conversation in iter_cursor_pages(fetch, cursor=lambda page: page.data[-1].id):
            yield conversation

    async def rename(
        self,
        conversation_id: str,
        name: str | None = None,
        *,
        auto_generate: bool = False,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Conversation:
        """Rename a conversation, or let Dify name it from its content (``auto_generate``).

        ``name`` is required unless ``auto_generate`` is true (then Dify ignores it).
        """
        path = f"/conversations/{path_segment(conversation_id, 'conversation_id')}/name"
        if not isinstance(auto_generate, bool):
            raise TypeError(f"auto_generate must be a boolean, got {type(auto_generate).__name__}")
        if name is None and not auto_generate:
            raise ValueError("name is required unless auto_generate=True")
        check_str(name, "name", optional=True)
        body: dict[str, Any] = {"auto_generate": auto_generate}
        if name is not None:
            body["name"] = name
        user_id = self._optional_user(user)
        if user_id is not None:
            body["user"] = user_id
        data = await self._http.request_json(
            "POST", path, json=body, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, Conversation, what="the renamed conversation")

    async def delete(
        self,
        conversation_id: str,
        *,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Delete a conversation of the user."""
        path = f"/conversations/{path_segment(conversation_id, 'conversation_id')}"
        user_id = self._optional_user(user)
        # Dify wants a JSON body here even without a user.
        body = {"user": user_id} if user_id is not None else {}
        await self._http.request_json(
            "DELETE", path, json=body, timeout=self._timeout(timeout), max_retries=max_retries
        )

    async def variables(
        self,
        conversation_id: str,
        *,
        user: str | None = None,
        last_id: str | None = None,
        limit: int = 20,
        variable_name: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Page[ConversationVariable]:
        """One page of a Chatflow conversation's variables, optionally only ``variable_name``.

        Pass the id of the last variable of a page as ``last_id`` for the next page.
        """
        path = f"/conversations/{path_segment(conversation_id, 'conversation_id')}/variables"
        check_str(last_id, "last_id", optional=True)
        check_positive_int(limit, "limit")
        check_str(variable_name, "variable_name", optional=True)
        params = query_params(
            {
                "user": self._optional_user(user),
                "last_id": last_id,
                "limit": limit,
                "variable_name": variable_name,
            }
        )
        data = await self._http.request_json(
            "GET", path, params=params, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure_page(data, ConversationVariable, what="the conversation variables")

    async def iter_variables(
        self,
        conversation_id: str,
        *,
        user: str | None = None,
        variable_name: str | None = None,
        page_size: int = 100,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[ConversationVariable]:
        """Every variable of a conversation, in Dify's order, fetching pages as needed."""

        async def fetch(last_id: str | None) -> Page[ConversationVariable]:
            return await self.variables(
                conversation_id,
                user=user,
                last_id=last_id,
                limit=page_size,
                variable_name=variable_name,
                timeout=timeout,
                max_retries=max_retries,
            )

        async for variable in iter_cursor_pages(fetch, cursor=lambda page: page.data[-1].id):
            yield variable

    async def update_variable(
        self,
        conversation_id: str,
        variable_id: str,
        value: Any,
        *,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> ConversationVariable:
        """Set a conversation variable to ``value`` (any JSON value of the variable's type).

        Sent as ``PUT``, which is what Dify routes; ``None`` is sent as JSON ``null``.
        """
        path = (
            f"/conversations/{path_segment(conversation_id, 'conversation_id')}"
            f"/variables/{path_segment(variable_id, 'variable_id')}"
        )
        body: dict[str, Any] = {"value": value}
        user_id = self._optional_user(user)
        if user_id is not None:
            body["user"] = user_id
        data = await self._http.request_json(
            "PUT", path, json=body, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, ConversationVariable, what="the updated variable")


class AsyncConversationsRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncConversations`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    delete = raw(AsyncConversations.delete)
    list = raw(AsyncConversations.list)
    rename = raw(AsyncConversations.rename)
    update_variable = raw(AsyncConversations.update_variable)
    variables = raw(AsyncConversations.variables)
