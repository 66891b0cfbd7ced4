"""The type checker sees the sync methods with the async parameters and sync return types."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"

USAGE = """
    from chatapi import AsyncChatClient, ChatClient

    client = ChatClient()
    aclient = AsyncChatClient()
    reveal_type(client.chat.send)
    reveal_type(aclient.chat.send)
    reveal_type(client.chat.stream)
    reveal_type(aclient.chat.stream)
    reveal_type(client.messages.iter)
    reveal_type(aclient.messages.iter)
    with client.chat.stream("Hi") as stream:
        for event in stream:
            reveal_type(event)
        for text in stream.text_stream:
            reveal_type(text)
        reveal_type(stream.final_message())
    client.chat.send(42)
    client.chat.send("Hi", no_such_option=True)
"""


def test_mypy_sees_the_async_signatures_with_sync_return_types(tmp_path: Path) -> None:
    source = tmp_path / "usage.py"
    source.write_text(textwrap.dedent(USAGE))
    out, err, _ = mypy_api.run(["--strict", "--config-file", str(PYPROJECT), str(source)])
    # Only this file's lines; mypy versions differ in spelling builtins ("builtins.str").
    lines = [
        line.split(": ", 2)[-1].replace("builtins.", "")
        for line in out.splitlines()
        if "usage.py" in line
    ]
    assert len(lines) == 11, out + err
    send, async_send, stream, async_stream, iterate, async_iterate, *rest = lines
    assert send == re.sub(r"typing\.Coroutine\[Any, Any, (.*)\]\"$", r'\1"', async_send)
    assert send.endswith('-> chatapi.models.ChatCompletion"')
    assert stream == async_stream.replace(
        "-> chatapi.streaming.AsyncChatStream", "-> chatapi.sync.ChatStream"
    )
    assert stream.endswith('-> chatapi.sync.ChatStream"') and "include_pings: bool" in stream
    assert iterate == async_iterate.replace("typing.AsyncIterator[", "typing.Iterator[")
    assert iterate.endswith('-> typing.Iterator[chatapi.models.Message]"')
    assert rest == [
        'Revealed type is "chatapi.events.StreamEvent"',
        'Revealed type is "str"',
        'Revealed type is "chatapi.models.ChatCompletion"',
        'Argument 1 has incompatible type "int"; expected "str"  [arg-type]',
        'Unexpected keyword argument "no_such_option"  [call-arg]',
    ]
