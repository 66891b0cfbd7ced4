"""A FastAPI app re-streaming chat answers, run by uvicorn in its own process by the tests.

Settings come from the environment (``DIFY_API_KEY``, ``DIFY_BASE_URL``, ``DIFY_USER``).
``GET /state`` reports what the app still holds, for the leak checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from chatapi import AsyncChatClient, AsyncChatStream, web

client = AsyncChatClient()
streams: weakref.WeakSet[AsyncChatStream] = weakref.WeakSet()


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with client:
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/chat")
async def chat(question: dict[str, str]) -> StreamingResponse:
    stream = client.chat.stream(question["query"])
    streams.add(stream)
    return StreamingResponse(stream.to_sse(), headers=web.SSE_HEADERS)


@app.get("/state")
async def state() -> dict[str, Any]:
    return {
        "open_streams": sum(not stream.closed for stream in streams),
        "pending_stops": len(web._detached_stops),
        "tasks": len(asyncio.all_tasks()),
    }
