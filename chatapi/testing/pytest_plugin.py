"""The pytest plugin installed with chatapi (entry point ``pytest11``): ``fake_chat_server``.

The fixture is synchronous and runs the server on its own event loop in a thread, so it
works in plain tests and in async tests alike (whatever async plugin runs them)::

    async def test_bot_answers(fake_chat_server):
        fake_chat_server.script.reply("Hi", "Hello, human!")
        async with AsyncChatClient(api_key="app-test", base_url=fake_chat_server.base_url,
                                   user="u-1") as client:
            assert (await client.chat.send("Hi")).answer == "Hello, human!"

Server options come from indirect parametrisation::

    @pytest.mark.parametrize("fake_chat_server", [{"mode": "chat"}], indirect=True)
    def test_chatbot(fake_chat_server): ...
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from chatapi.testing import FakeChatServer

__all__ = ["fake_chat_server"]


@pytest.fixture
def fake_chat_server(request: pytest.FixtureRequest) -> Iterator[FakeChatServer]:
    """A running :class:`~chatapi.testing.FakeChatServer`, fresh for each test."""
    from chatapi.testing import FakeChatServer

    options: dict[str, Any] = getattr(request, "param", None) or {}
    with FakeChatServer.running_in_thread(**options) as server:
        yield server
