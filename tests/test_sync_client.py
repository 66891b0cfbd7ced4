"""ChatClient: its loop thread's life, blocking calls, errors, threads, and interpreter exit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest

from chatapi import (
    APIConnectionError,
    AsyncChatClient,
    ChatClient,
    ConfigurationError,
    IncompleteStreamError,
    NotFoundError,
)
from chatapi._bridge import SyncResource, bridge, bridge_iter
from chatapi.resources import AsyncResource

from ._sync_server import ThreadedReplayServer
from .conftest import API_KEY, RecordedRequest, Reply, child_env, recording

BLOCKING = "dify-1.12.1/v1_20_chat_blocking_new"
STREAMING = "dify-1.12.1/v1_22_chat_streaming_new"
ANSWER = "Echo: Stream me | name=Bob | memo=hello"
GUARD = 10


def json_reply(name: str = BLOCKING) -> Reply:
    return Reply(recording(name), content_type="application/json")


@pytest.fixture
def server() -> Iterator[ThreadedReplayServer]:
    with ThreadedReplayServer() as srv:
        yield srv


@pytest.fixture
def client(server: ThreadedReplayServer) -> Iterator[ChatClient]:
    with ChatClient(API_KEY, base_url=server.base_url, user="user-1") as c:
        yield c


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("chatapi-loop")]


# -- the loop thread -------------------------------------------------------------------------


def test_loop_thread_starts_on_first_call_and_close_joins_it(
    server: ThreadedReplayServer,
) -> None:
    before = set(threading.enumerate())
    client = ChatClient(API_KEY, base_url=server.base_url, user="user-1")
    assert set(threading.enumerate()) == before  # lazy: nothing runs yet

    server.queue(json_reply(), json_reply())
    client.chat.send("Hello world")
    client.chat.send("Hello again")
    added = set(threading.enumerate()) - before
    assert len(added) == 1  # one loop thread per client, however many calls
    (thread,) = added
    assert thread.daemon and thread.name.startswith("chatapi-loop")

    client.close()
    assert not thread.is_alive()
    assert set(threading.enumerate()) == before
    client.close()  # idempotent


def test_with_block_closes_the_client_and_its_thread(server: ThreadedReplayServer) -> None:
    before = threading.active_count()
    server.queue(json_reply())
    with ChatClient(API_KEY, base_url=server.base_url, user="user-1") as client:
        client.chat.send("Hello world")
        assert threading.active_count() == before + 1
    assert client.closed
    assert threading.active_count() == before


def test_closing_an_unused_client_starts_no_thread() -> None:
    before = set(threading.enumerate())
    client = ChatClient(API_KEY, base_url="http://127.0.0.1:9/v1", user="u")
    client.close()
    assert client.closed
    assert set(threading.enumerate()) == before


def test_a_closed_client_raises_configuration_error(client: ChatClient) -> None:
    client.close()
    with pytest.raises(ConfigurationError, match="closed"):
        client.chat.send("Hi")
    with pytest.raises(ConfigurationError, match="closed"):
        client.chat.stream("Hi")
    assert not loop_threads()


def test_no_thread_is_left_after_many_clients(server: ThreadedReplayServer) -> None:
    before = set(threading.enumerate())
    for _ in range(5):
        server.queue(json_reply())
        with ChatClient(API_KEY, base_url=server.base_url, user="user-1") as client:
            client.chat.send("Hello world")
    assert set(threading.enumerate()) == before


# -- configuration ------------------------------------------------------------------------------


def test_a_session_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="AsyncChatClient"):
        ChatClient(API_KEY, session=object())  # type: ignore[arg-type]


def test_bad_settings_fail_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFY_API_KEY", raising=False)
    before = set(threading.enumerate())
    with pytest.raises(ConfigurationError):
        ChatClient()
    with pytest.raises(ConfigurationError):
        ChatClient(API_KEY, max_retries=-1)
    assert set(threading.enumerate()) == before


def test_settings_read_like_the_async_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFY_API_KEY", API_KEY)
    monkeypatch.setenv("DIFY_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("DIFY_USER", "env-user")
    async_client = AsyncChatClient(timeout=5, max_retries=1)
    with ChatClient(timeout=5, max_retries=1) as client:
        assert client.base_url == async_client.base_url == "http://127.0.0.1:9/v1"
        assert client.user == "env-user"
        assert client.timeout == async_client.timeout
        assert client.max_retries == 1
        assert client.max_event_size == async_client.max_event_size
        assert API_KEY not in repr(client)
        assert API_KEY not in repr(client.chat)


# -- calls ------------------------------------------------------------------------------------


def test_send_returns_the_answer_and_sends_the_request(
    server: ThreadedReplayServer, client: ChatClient
) -> None:
    server.queue(json_reply())
    reply = client.chat.send("Hello world", inputs={"name": "Alice"})
    assert reply.answer == "Echo: Hello world | name=Alice | memo=hello"
    (request,) = server.requests
    assert request.path == "/v1/chat-messages"
    assert request.json()["response_mode"] == "blocking"
    assert request.json()["inputs"] == {"name": "Alice"}
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


def test_errors_are_the_async_exception_types(
    server: ThreadedReplayServer, client: ChatClient
) -> None:
    server.queue(
        Reply(
            b'{"code": "conversation_not_exists", "message": "Conversation Not Exists.", '
            b'"status": 404}',
            status=404,
            content_type="application/json",
        )
    )
    with pytest.raises(NotFoundError) as caught:
        client.chat.send("Hi", conversation_id="missing")
    assert caught.value.code == "conversation_not_exists"
    with pytest.raises(TypeError, match="query must be a string"):
        client.chat.send(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="query must be a string"):
        client.chat.stream(42)  # type: ignore[arg-type]


def test_a_missing_user_raises_before_any_request(server: ThreadedReplayServer) -> None:
    with ChatClient(API_KEY, base_url=server.base_url) as client:
        with pytest.raises(ConfigurationError, match="end-user id") as caught:
            client.chat.send("Hi")
        # The hint names the class in use.
        assert "ChatClient(user=...)" in str(caught.value)
        assert "AsyncChatClient" not in str(caught.value)
        with pytest.raises(ConfigurationError, match="end-user id"):
            client.chat.stream("Hi")
    assert server.requests == []


def test_wrong_arguments_are_reported_against_the_sync_method(
    server: ThreadedReplayServer, client: ChatClient
) -> None:
    unexpected = r"^Chat\.send\(\) got an unexpected keyword argument 'bogus'"
    with pytest.raises(TypeError, match=unexpected):
        client.chat.send("hi", bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^Chat\.send\(\) missing a required argument: 'query'"):
        client.chat.send()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^Workflows\.events\(\) got an unexpected keyword"):
        client.workflows.events("run-1", bogus=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"^Messages\.iter\(\) got an unexpected keyword"):
        client.messages.iter("c-1", bogus=True)  # type: ignore[call-arg]
    assert server.requests == []


async def test_works_inside_a_running_event_loop(server: ThreadedReplayServer) -> None:
    asyncio.get_running_loop()  # this test body runs on an event loop
    server.queue(json_reply(), Reply(recording(STREAMING)))
    with ChatClient(API_KEY, base_url=server.base_url, user="user-1") as client:
        assert client.chat.send("Hello world").answer.startswith("Echo: Hello world")
        with client.chat.stream("Stream me") as stream:
            assert stream.final_message().answer == ANSWER


# -- threads ----------------------------------------------------------------------------------


def routed_reply(request: RecordedRequest) -> Reply:
    """Blocking calls get the JSON answer, streaming calls the event stream."""
    if request.json()["response_mode"] == "streaming":
        return Reply(recording(STREAMING), chunk_size=64)
    return json_reply()


class RoutedReplies(list[Reply]):
    """Stands in for ``ReplayServer.replies``: answers each request by its response mode.

    ``ReplayServer.handle`` records a request and takes its reply with no await in between,
    so the request just recorded is the one being answered.
    """

    def __init__(self, server: ThreadedReplayServer) -> None:
        super().__init__()
        self._server = server

    def __bool__(self) -> bool:
        return True

    def pop(self, index: int = -1) -> Reply:  # type: ignore[override]
        return routed_reply(self._server.requests[-1])


def test_one_client_serves_sixteen_threads_at_once(
    server: ThreadedReplayServer, client: ChatClient
) -> None:
    assert server.server is not None
    server.server.replies = RoutedReplies(server)
    start = threading.Barrier(16)

    def work(index: int) -> list[str]:
        start.wait(GUARD)
        answers = []
        for round_ in range(3):
            if (index + round_) % 2:
                answers.append(client.chat.send(f"blocking {index}").answer)
            else:
                with client.chat.stream(f"streaming {index}") as stream:
                    events = list(stream)
                assert len(events) == 13
                answers.append(stream.final_message().answer)
        return answers

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(16), timeout=GUARD * 3))

    blocking = "Echo: Hello world | name=Alice | memo=hello"
    for index, answers in enumerate(results):
        expected = [blocking if (index + r) % 2 else ANSWER for r in range(3)]
        assert answers == expected
    assert len(server.requests) == 48
    assert len(loop_threads()) == 1


# -- close while busy -----------------------------------------------------------------------


class AsyncProbe(AsyncResource):
    """A resource whose calls wait until cancelled, telling the test where they are."""

    entered = threading.Event()
    unwound = threading.Event()

    async def wait(self, *, interrupt_main: bool = False) -> int:
        self.entered.set()
        if interrupt_main:
            # The caller is now blocked waiting for this call: interrupt it as Ctrl-C would.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        try:
            await anyio.sleep_forever()
        finally:
            self.unwound.set()
        return 0

    async def count(self, limit: int) -> AsyncIterator[int]:
        try:
            for number in range(limit):
                yield number
        finally:
            self.unwound.set()


class Probe(SyncResource[AsyncProbe]):
    wait = bridge(AsyncProbe.wait)
    count = bridge_iter(AsyncProbe.count)


@pytest.fixture
def probe(client: ChatClient) -> Iterator[Probe]:
    AsyncProbe.entered = threading.Event()
    AsyncProbe.unwound = threading.Event()
    yield Probe(AsyncProbe(client._async), client._loop)


def tasks_on_loop(client: ChatClient) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    return client._loop.call(count)


def test_closing_cuts_off_running_calls(client: ChatClient, probe: Probe) -> None:
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            probe.wait()
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert AsyncProbe.entered.wait(GUARD)
    client.close()
    caller.join(GUARD)
    assert AsyncProbe.unwound.is_set()
    (error,) = outcome
    assert isinstance(error, APIConnectionError)
    assert "closed" in str(error)
    assert not loop_threads()


def test_keyboard_interrupt_cancels_the_call_on_the_loop(
    client: ChatClient, probe: Probe
) -> None:
    baseline = tasks_on_loop(client)
    with pytest.raises(KeyboardInterrupt):
        probe.wait(interrupt_main=True)
    assert AsyncProbe.unwound.is_set()  # the call was cancelled and waited for
    assert tasks_on_loop(client) == baseline


def test_bridged_iterators_yield_every_item(probe: Probe) -> None:
    assert list(probe.count(5)) == [0, 1, 2, 3, 4]
    assert AsyncProbe.unwound.is_set()


def test_leaving_a_bridged_iterator_early_closes_the_async_one(
    client: ChatClient, probe: Probe
) -> None:
    baseline = tasks_on_loop(client)
    for number in probe.count(1000):
        if number == 2:
            break
    assert AsyncProbe.unwound.is_set()  # its finally ran, on the loop
    assert tasks_on_loop(client) == baseline


def test_closing_the_client_ends_open_streams(
    server: ThreadedReplayServer, client: ChatClient
) -> None:
    body = recording(STREAMING)
    server.queue(Reply(body[: body.index(b"node_finished")], hold_open=True))
    outcome: list[BaseException] = []
    streaming = client.chat.stream("Stream me")
    reading = threading.Event()

    def read() -> None:
        try:
            for _ in streaming:
                reading.set()
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert reading.wait(GUARD)
    server.wait_holding()
    client.close()
    reader.join(GUARD)
    (error,) = outcome
    assert isinstance(error, IncompleteStreamError)
    assert "ChatClient was closed" in str(error)
    assert error.task_id == "8c4184df-4b00-4fdc-81b5-305d32766b05"
    assert ANSWER.startswith(error.answer)
    server.wait_disconnected()
    assert not loop_threads()


def test_a_stream_not_yet_read_ends_when_the_client_closes(
    server: ThreadedReplayServer, client: ChatClient
) -> None:
    server.queue(Reply(recording(STREAMING)))
    stream = client.chat.stream("Stream me")
    client.close()
    with pytest.raises(IncompleteStreamError, match="ChatClient was closed"):
        next(stream)
    with pytest.raises(ConfigurationError, match="closed"):
        stream.stop()
    stream.close()  # still safe


# -- interpreter exit -------------------------------------------------------------------------

EXIT_SCRIPT = """
import atexit, socket, sys, threading

server_sockets = []
readers = []

def check_threads():
    # Registered before chatapi is imported, so it runs after chatapi's own exit hook.
    names = [t.name for t in threading.enumerate() if t.name.startswith("chatapi-loop")]
    print("loop threads at exit:", names, flush=True)
    for reader in readers:
        reader.join(10)
    print("reader:", failures, flush=True)
    for sock in server_sockets:
        sock.close()

atexit.register(check_threads)

from chatapi import ChatClient

# A server that accepts connections and never answers: the stream waits for its headers.
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
port = listener.getsockname()[1]

client = ChatClient("app-key", base_url=f"http://127.0.0.1:{port}/v1", user="u")
stream = client.chat.stream("Hi")
failures = []

def read():
    try:
        for _ in stream:
            pass
    except Exception as exc:
        failures.append(type(exc).__name__)

readers.append(threading.Thread(target=read, daemon=True))
readers[0].start()
conn, _ = listener.accept()  # the request is on its way: the stream is waiting
server_sockets += [conn, listener]
print("exiting without close", flush=True)
"""


def test_interpreter_exit_closes_an_unclosed_client_without_hanging(tmp_path: Path) -> None:
    script = tmp_path / "exit_script.py"
    script.write_text(textwrap.dedent(EXIT_SCRIPT))
    env = child_env(PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "exiting without close" in done.stdout
    assert "reader: ['IncompleteStreamError']" in done.stdout  # cut off, not left hanging
    assert "loop threads at exit: []" in done.stdout
    assert done.stderr == ""


def test_the_exit_hook_forgets_closed_clients(server: ThreadedReplayServer) -> None:
    from chatapi import _bridge

    server.queue(json_reply())
    with ChatClient(API_KEY, base_url=server.base_url, user="user-1") as client:
        client.chat.send("Hello world")
        assert client._loop in set(_bridge._running)
    assert client._loop not in set(_bridge._running)



def test_reading_a_failed_sync_stream_again_raises_again(
    server: ThreadedReplayServer, client: ChatClient
) -> None:
    server.queue(Reply(b'data: {"event":"message","task_id":"t","answer":"partial"}\n\n'))
    stream = client.chat.stream("q")
    with pytest.raises(IncompleteStreamError) as first:
        stream.final_message()
    with pytest.raises(IncompleteStreamError) as second:
        stream.final_message()
    assert second.value is first.value
    assert first.value.answer == "partial"


DROPPED_CLIENT_SCRIPT = """
import gc
from chatapi import ChatClient
from chatapi.testing import FakeChatServer

with FakeChatServer.running_in_thread() as server:
    client = ChatClient("app-key", base_url=server.base_url, user="u")
    print(client.chat.send("Hi").answer, flush=True)
    del client  # dropped without close(): its session must still be closed at exit
    gc.collect()
"""


def test_a_client_dropped_without_close_is_closed_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "dropped.py"
    script.write_text(DROPPED_CLIENT_SCRIPT)
    env = child_env(PYTHONPATH=os.pathsep.join(sys.path))
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Echo: Hi"
    assert "Unclosed" not in done.stderr
    assert done.stderr == ""
