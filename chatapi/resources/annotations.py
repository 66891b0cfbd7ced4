"""``client.annotations``: curated answers that reply instead of the model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from .._config import Timeout
from .._convert import structure
from .._raw import AsyncRawResponses, raw
from ..models import Annotation, AnnotationReplyJob, Page
from ..pagination import iter_numbered_pages, structure_page
from ._base import AsyncResource, check_positive_int, check_str, path_segment, query_params

__all__ = ["AsyncAnnotations", "AsyncAnnotationsRaw"]

REPLY_ACTIONS = ("enable", "disable")
# Dify serves at most 100 annotations per page but computes has_more against the limit
# asked for, so a larger limit would silently end the listing after one page.
MAX_PAGE_SIZE = 100


def _check_action(action: str) -> str:
    if action not in REPLY_ACTIONS:
        raise ValueError(f"action must be 'enable' or 'disable', got {action!r}")
    return action


class AsyncAnnotations(AsyncResource):
    """Question/answer pairs that answer matching queries, and the switch that uses them."""

    @property
    def with_raw_response(self) -> AsyncAnnotationsRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncAnnotationsRaw(self)

    async def list(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        keyword: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Page[Annotation]:
        """One page of annotations, optionally only those matching ``keyword``."""
        check_positive_int(page, "page")
        check_positive_int(limit, "limit", maximum=MAX_PAGE_SIZE)
        check_str(keyword, "keyword", optional=True)
        params = query_params({"page": page, "limit": limit, "keyword": keyword})
        data = await self._http.request_json(
            "GET",
            "/apps/annotations",
            params=params,
            timeout=self._timeout(timeout),
            max_retries=max_retries,
        )
        return structure_page(data, Annotation, what="the annotation list", limit=limit, page=page)

    async def iter(
        self,
        *,
        keyword: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[Annotation]:
        """Every annotation (matching ``keyword``), in Dify's order, fetching pages as
        needed."""

        async def fetch(page: int) -> Page[Annotation]:
            return await self.list(
                page=page,
                limit=page_size,
                keyword=keyword,
                timeout=timeout,
                max_retries=max_retries,
            )

        async for annotation in iter_numbered_pages(fetch, key=lambda item: item.id):
            yield annotation

    async def create(
        self,
        question: str,
        answer: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Annotation:
        """Add an annotation: ``answer`` replies to queries like ``question``."""
        check_str(question, "question")
        check_str(answer, "answer")
        data = await self._http.request_json(
            "POST",
            "/apps/annotations",
            json={"question": question, "answer": answer},
            timeout=self._timeout(timeout),
            max_retries=max_retries,
        )
        return structure(data, Annotation, what="the created annotation")

    async def update(
        self,
        annotation_id: str,
        question: str,
        answer: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> Annotation:
        """Replace the question and answer of an annotation."""
        path = f"/apps/annotations/{path_segment(annotation_id, 'annotation_id')}"
        check_str(question, "question")
        check_str(answer, "answer")
        data = await self._http.request_json(
            "PUT",
            path,
            json={"question": question, "answer": answer},
            timeout=self._timeout(timeout),
            max_retries=max_retries,
        )
        return structure(data, Annotation, what="the updated annotation")

    async def delete(
        self,
        annotation_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Delete an annotation."""
        path = f"/apps/annotations/{path_segment(annotation_id, 'annotation_id')}"
        await self._http.request_json(
            "DELETE", path, timeout=self._timeout(timeout), max_retries=max_retries
        )

    async def configure_reply(
        self,
        action: str,
        *,
        embedding_provider_name: str | None = None,
        embedding_model_name: str | None = None,
        score_threshold: float | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> AnnotationReplyJob:
        """Turn annotation reply on (``"enable"``) or off (``"disable"``).

        Dify runs this as a background job; follow it with :meth:`reply_status`. It needs
        the embedding model and the match threshold for both actions.
        """
        path = f"/apps/annotation-reply/{_check_action(action)}"
        check_str(embedding_provider_name, "embedding_provider_name", optional=True)
        check_str(embedding_model_name, "embedding_model_name", optional=True)
        if score_threshold is not None and (
            isinstance(score_threshold, bool) or not isinstance(score_threshold, (int, float))
        ):
            raise TypeError(
                f"score_threshold must be a number, got {type(score_threshold).__name__}"
            )
        settings: dict[str, Any] = {
            "embedding_provider_name": embedding_provider_name,
            "embedding_model_name": embedding_model_name,
            "score_threshold": score_threshold,
        }
        missing = [name for name, value in settings.items() if value is None]
        if missing:
            raise ValueError(
                f"annotation reply ({action}) needs {', '.join(missing)}: Dify requires "
                "embedding_provider_name, embedding_model_name and score_threshold"
            )
        data = await self._http.request_json(
            "POST", path, json=settings, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, AnnotationReplyJob, what="the annotation reply job")

    async def reply_status(
        self,
        action: str,
        job_id: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> AnnotationReplyJob:
        """The state of an annotation reply job started by :meth:`configure_reply`."""
        path = (
            f"/apps/annotation-reply/{_check_action(action)}"
            f"/status/{path_segment(job_id, 'job_id')}"
        )
        data = await self._http.request_json(
            "GET", path, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, AnnotationReplyJob, what="the annotation reply job")


class AsyncAnnotationsRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncAnnotations`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    configure_reply = raw(AsyncAnnotations.configure_reply)
    create = raw(AsyncAnnotations.create)
    delete = raw(AsyncAnnotations.delete)
    list = raw(AsyncAnnotations.list)
    reply_status = raw(AsyncAnnotations.reply_status)
    update = raw(AsyncAnnotations.update)
