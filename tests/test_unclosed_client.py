"""An ``AsyncChatClient`` never closed: its connections are closed for it, with one clear
``ResourceWarning`` (shown only where resource warnings are) instead of aiohttp's reports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = """
import asyncio, gc, sys
from chatapi import AsyncChatClient, ChatClient
from chatapi.testing import FakeChatServer

async def main():
    global kept
    async with FakeChatServer() as server:
        client = AsyncChatClient(api_key="app-x", base_url=server.base_url, user="u")
        assert (await client.chat.send("hi")).answer == "Echo: hi"
        {action}
        print("main done", flush=True)

asyncio.run(main())
"""
ACTIONS = {
    "left open at exit": "kept = client",
    "dropped in the loop": "del client; gc.collect(); print('collected', file=sys.stderr)",
    "closed": "await client.aclose()",
}


def run(action: str, *warning_options: str) -> tuple[str, str]:
    code = textwrap.dedent(SCRIPT).replace("{action}", ACTIONS[action])
    done = subprocess.run(
        [sys.executable, *warning_options, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "main done" in done.stdout
    return done.stdout, done.stderr


@pytest.mark.parametrize("action", ["left open at exit", "dropped in the loop"])
def test_an_unclosed_client_says_nothing_alarming(action: str) -> None:
    _, stderr = run(action)
    assert stderr.replace("collected\n", "") == ""


@pytest.mark.parametrize("action", ["left open at exit", "dropped in the loop"])
def test_with_resource_warnings_on_there_is_one_clear_warning(action: str) -> None:
    _, stderr = run(action, "-W", "always::ResourceWarning")
    assert stderr.count("ResourceWarning") == 1, stderr
    assert "AsyncChatClient of http://127.0.0.1:" in stderr
    assert "was never closed; chatapi closed its connections" in stderr
    assert "Unclosed" not in stderr and "app-x" not in stderr


def test_a_client_dropped_in_the_loop_is_closed_when_collected() -> None:
    _, stderr = run("dropped in the loop", "-W", "always::ResourceWarning")
    assert stderr.index("was never closed") < stderr.index("collected")


def test_a_closed_client_gives_no_warning() -> None:
    _, stderr = run("closed", "-W", "always::ResourceWarning")
    assert stderr == ""
