"""Paged lists: ask for the next page only when the previous one is used up; only a null cursor ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


async def pages(page: Callable[[str | None], Awaitable[dict[str, Any]]]) -> AsyncIterator[dict[str, Any]]:
    """Yields every item of a paged list (a page may be short, even empty, with more to come)."""
    cursor: str | None = None
    while True:
        reply = await page(cursor)
        for item in reply["items"]:
            yield item
        cursor = reply.get("nextCursor")
        if cursor is None:
            return
