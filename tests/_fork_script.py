"""Run by tests/test_transport_edges.py in a subprocess: clients used before os.fork() and
then in the child. Prints one JSON line of results; never leaves the child running."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import aiohttp

from chatapi import AsyncChatClient, ChatClient
from chatapi.testing import FakeChatServer

CHILD_LIMIT = 60  # seconds: a child that hangs is killed by its own alarm


def in_child(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a forked child and return what it returned (or its error, as text)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        signal.alarm(CHILD_LIMIT)
        try:
            result: Any = {"ok": work()}
        except BaseException as exc:  # everything goes back to the parent
            result = {"error": f"{type(exc).__name__}: {exc}"}
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()  # EOF when the child exits (or its alarm kills it)
    _, status = os.waitpid(pid, 0)
    if not data:
        return {"error": f"the child ended without an answer (wait status {status})"}
    return json.loads(data)


def sync_client(base_url: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with ChatClient(api_key="app-k", base_url=base_url, user="u") as client:
        results["parent_before"] = client.chat.send("one").answer

        def child() -> list[str]:
            answer = client.chat.send("two").answer
            with client.chat.stream("three") as stream:
                streamed = "".join(stream.text_stream)
            client.close()
            return [answer, streamed]

        results["child"] = in_child(child)
        results["parent_after"] = client.chat.send("four").answer
        # multiprocessing's fork start method, as Celery prefork and Pool users get it.
        context = multiprocessing.get_context("fork")
        with context.Pool(1) as pool:
            pooled = pool.apply_async(_send_with_global, ("five",))
            results["pool"] = pooled.get(timeout=CHILD_LIMIT)
    return results


_GLOBAL: ChatClient | None = None


def _send_with_global(query: str) -> str:
    assert _GLOBAL is not None
    return _GLOBAL.chat.send(query).answer


def async_client(base_url: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    client = AsyncChatClient(api_key="app-k", base_url=base_url, user="u")

    async def send(query: str) -> str:
        return (await client.chat.send(query)).answer

    loop = asyncio.new_event_loop()
    results["parent_before"] = loop.run_until_complete(send("one"))

    def child() -> str:
        async def main() -> str:
            try:
                return await send("two")
            finally:
                await client.aclose()

        return asyncio.run(main())

    results["child"] = in_child(child)
    results["parent_after"] = loop.run_until_complete(send("three"))
    loop.run_until_complete(client.aclose())

    async def with_own_session() -> str:
        async with aiohttp.ClientSession() as session:
            own = AsyncChatClient(api_key="app-k", base_url=base_url, user="u", session=session)
            answer = (await own.chat.send("four")).answer

            def child() -> str:
                return asyncio.run(own.chat.send("five")).answer

            results["child_own_session"] = in_child(child)
            return answer

    results["own_session_parent"] = loop.run_until_complete(with_own_session())
    loop.close()
    return results


def main() -> None:
    global _GLOBAL
    with FakeChatServer.running_in_thread() as server:
        if sys.argv[1] == "sync":
            _GLOBAL = ChatClient(api_key="app-k", base_url=server.base_url, user="u")
            _GLOBAL.chat.send("warm up")
            results = sync_client(server.base_url)
            _GLOBAL.close()
        else:
            results = async_client(server.base_url)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
