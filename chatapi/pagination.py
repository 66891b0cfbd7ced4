"""Pages of Dify's list endpoints, and walking through all of them.

Dify paginates in two styles. Cursor style (messages, conversations, conversation variables)
passes the id of an item of the previous page (``first_id`` / ``last_id``); page style
(app feedbacks, annotations, workflow logs) passes a page number. Both answer with
``has_more``. The walkers below fetch one page at a time, only when the caller wants the
next item, and stop when ``has_more`` is false or a page comes back empty. A server that
hands out the same cursor or the same page twice would make them loop forever: they raise
:class:`~chatapi.errors.ResponseDecodeError` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson

from ._convert import json_object, structure
from .errors import ResponseDecodeError
from .models import Page

__all__ = ["Page", "iter_cursor_pages", "iter_numbered_pages", "structure_page"]

T = TypeVar("T")


def structure_page(
    value: Any,
    item_type: type[T],
    *,
    what: str,
    limit: int | None = None,
    page: int | None = None,
) -> Page[T]:
    """Build a :class:`Page` from a list response; ``limit``/``page`` fill in what Dify
    leaves out of the body."""
    value = json_object(value, what=what)
    data = structure(
        value.get("data"), list[item_type], what=what, path="data"  # type: ignore[valid-type]
    )
    has_more = value.get("has_more")
    if not isinstance(has_more, bool):
        if has_more is not None:
            raise ResponseDecodeError(
                f"unexpected shape of {what} (has_more is not a boolean)",
                data=orjson.dumps(value),
            )
        # Only app feedbacks come without has_more: a full page may have a successor.
        has_more = limit is not None and len(data) >= limit
    return Page(
        data=data,
        has_more=has_more,
        limit=_optional_int(value, "limit", what) if "limit" in value else limit,
        page=_optional_int(value, "page", what) if "page" in value else page,
        total=_optional_int(value, "total", what),
        raw=value,
    )


def _optional_int(value: dict[str, Any], key: str, what: str) -> int | None:
    number = value.get(key)
    if number is None or (isinstance(number, int) and not isinstance(number, bool)):
        return number
    raise ResponseDecodeError(
        f"unexpected shape of {what} ({key} is not an integer)", data=orjson.dumps(value)
    )


async def iter_cursor_pages(
    fetch: Callable[[str | None], Awaitable[Page[T]]],
    *,
    cursor: Callable[[Page[T]], str],
    newest_first: bool = False,
) -> AsyncIterator[T]:
    """Yield every item of a cursor-paginated list.

    ``fetch(None)`` gets the first page, ``fetch(cursor(page))`` the one after ``page``.
    With ``newest_first`` each page (chronological on the wire) is yielded in reverse.
    """
    used: set[str] = set()
    next_cursor: str | None = None
    while True:
        page = await fetch(next_cursor)
        for item in reversed(page.data) if newest_first else page.data:
            yield item
        if not page.has_more or not page.data:
            return
        next_cursor = cursor(page)
        if next_cursor in used:
            raise ResponseDecodeError(
                f"the server returned the cursor {next_cursor!r} twice; stopping instead of "
                "looping over the same pages"
            )
        used.add(next_cursor)


async def iter_numbered_pages(
    fetch: Callable[[int], Awaitable[Page[T]]],
    *,
    key: Callable[[T], str],
) -> AsyncIterator[T]:
    """Yield every item of a page-numbered list, from page 1 on.

    ``key`` gives an item's id; a page whose ids repeat the previous page's is an error.
    """
    number = 1
    previous: list[str] | None = None
    while True:
        page = await fetch(number)
        ids = [key(item) for item in page.data]
        if ids and ids == previous:
            raise ResponseDecodeError(
                f"the server returned the same items for pages {number - 1} and {number}; "
                "stopping instead of looping over the same page"
            )
        for item in page.data:
            yield item
        if not page.has_more or not page.data:
            return
        previous = ids
        number += 1
