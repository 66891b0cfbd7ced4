"""``client.feedbacks``: the likes and dislikes given to the app's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._config import Timeout
from .._raw import AsyncRawResponses, raw
from ..models import Feedback, Page
from ..pagination import iter_numbered_pages, structure_page
from ._base import AsyncResource, check_positive_int, query_params

__all__ = ["AsyncFeedbacks", "AsyncFeedbacksRaw"]


class AsyncFeedbacks(AsyncResource):
    """All feedback on the app's messages, from every end user and from admins."""

    @property
    def with_raw_response(self) -> AsyncFeedbacksRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncFeedbacksRaw(self)

    async def list(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Page[Feedback]:
        """One page of feedback, newest first (``GET /app/feedbacks``).

        Dify sends neither ``has_more`` nor ``total`` here: ``has_more`` is true when the
        page is full (so the last page may be followed by an empty one).
        """
        check_positive_int(page, "page")
        check_positive_int(limit, "limit")
        params = query_params({"page": page, "limit": limit})
        data = await self._http.request_json(
            "GET",
            "/app/feedbacks",
            params=params,
            timeout=self._timeout(timeout),
            max_retries=max_retries,
        )
        return structure_page(data, Feedback, what="the feedback list", limit=limit, page=page)

    async def iter(
        self,
        *,
        page_size: int = 100,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[Feedback]:
        """Every feedback of the app, newest first, fetching pages as needed."""

        async def fetch(page: int) -> Page[Feedback]:
            return await self.list(
                page=page, limit=page_size, timeout=timeout, max_retries=max_retries
            )

        async for feedback in iter_numbered_pages(fetch, key=lambda item: item.id):
            yield feedback


class AsyncFeedbacksRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncFeedbacks`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    list = raw(AsyncFeedbacks.list)
