"""Testing helpers: :class:`FakeChatServer`, a fake Dify chat app to run and test code against.

Installing chatapi also registers a pytest plugin whose ``fake_chat_server`` fixture gives
each test a running server (see :mod:`chatapi.testing.pytest_plugin`).
"""

from ._context import ReceivedRequest
from ._load import LoadSettings, StreamCounts
from ._script import Script
from ._server import FakeChatServer

__all__ = ["FakeChatServer", "LoadSettings", "ReceivedRequest", "Script", "StreamCounts"]
