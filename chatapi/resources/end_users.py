"""``client.end_users``: look up the end users behind the ``user`` strings."""

from __future__ import annotations

from .._config import Timeout
from .._convert import structure
from .._raw import AsyncRawResponses, raw
from ..models import EndUser
from ._base import AsyncResource, path_segment

__all__ = ["AsyncEndUsers", "AsyncEndUsersRaw"]


class AsyncEndUsers(AsyncResource):
    """End users of the app, by the id Dify gave them (for example ``created_by`` of a file)."""

    @property
    def with_raw_response(self) -> AsyncEndUsersRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncEndUsersRaw(self)

    async def get(
        self,
        end_user_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> EndUser:
        """The end user ``end_user_id``; its ``session_id`` is the ``user`` string."""
        path = f"/end-users/{path_segment(end_user_id, 'end_user_id')}"
        data = await self._http.request_json(
            "GET", path, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, EndUser, what="the end user")


class AsyncEndUsersRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncEndUsers`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    get = raw(AsyncEndUsers.get)
