"""``ChatClient`` and ``ChatStream``: the async API, bridged for code that does not use asyncio.

Each ``ChatClient`` owns one event loop, run in a daemon thread (see :mod:`chatapi._bridge`)
and started on the first call. Its :class:`AsyncChatClient` lives on that loop and only runs
there; every sync method hands the matching async method to the loop and waits for it. So:

- the sync API is the async API: same resources, methods, parameters, defaults, docstrings
  and exceptions; values instead of awaitables, :class:`ChatStream` instead of
  :class:`AsyncChatStream`, iterators instead of async iterators;
- one client may be shared by many threads at once;
- it also works when called from inside a running event loop (it blocks that loop while it
  waits, so async code should prefer :class:`AsyncChatClient`);
- ``close()`` (or leaving ``with``) ends the loop thread. Calls still running are cut off
  with :class:`APIConnectionError`, open streams with :class:`IncompleteStreamError` (which
  carries the partial answer and the ids); later calls raise :class:`ConfigurationError`.
  A client never closed is closed at interpreter exit.

Each sync resource class below names the async methods it bridges, one line per method; the
parameters are never repeated (``ParamSpec`` carries them to the type checker), and a test
checks that no async method is left without its sync twin.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from types import TracebackType
from typing import Any, Concatenate, ParamSpec

import aiohttp

from ._app_streams import AsyncWorkflowStream
from ._bridge import LoopThread, SyncMethod, SyncResource, bridge, bridge_iter
from ._config import Timeout
from ._feed import CUT_OFF, END, EventFeed
from ._http import DEFAULT_MAX_RESPONSE_SIZE
from ._raw import SyncRawResponses, sync_raw
from ._timings import StreamTimings
from .client import AsyncChatClient
from .errors import ChatAPIError, ConfigurationError, IncompleteStreamError
from .events import StreamEvent
from .models import ChatCompletion, WorkflowRunResult
from .resources import (
    AsyncAnnotations,
    AsyncApp,
    AsyncAudio,
    AsyncChat,
    AsyncCompletions,
    AsyncConversations,
    AsyncEndUsers,
    AsyncFeedbacks,
    AsyncFiles,
    AsyncHumanInput,
    AsyncMessages,
    AsyncWorkflows,
)
from .sse import DEFAULT_MAX_EVENT_SIZE
from .streaming import AsyncChatStream, StreamView, text_delta
from .web import SSEEncoder, Transform, iter_sse, stop_within_limit

__all__ = [
    "Annotations",
    "App",
    "Audio",
    "Chat",
    "ChatClient",
    "ChatStream",
    "Completions",
    "Conversations",
    "EndUsers",
    "Feedbacks",
    "Files",
    "HumanInput",
    "Messages",
    "WorkflowStream",
    "Workflows",
]

P = ParamSpec("P")
log = logging.getLogger("chatapi")


class ChatStream:
    """The events of one streaming run, for sync code: the twin of :class:`AsyncChatStream`.

    Use it as a context manager so that the connection is released however the block ends
    (normal end, ``break``, an exception, ``KeyboardInterrupt``)::

        with client.chat.stream("Hi") as stream:
            for text in stream.text_stream:
                print(text, end="")
        reply = stream.final_message()

    A reader on the client's loop pushes the events into a bounded buffer that this stream
    drains (see :mod:`chatapi._feed`), so iterating costs about what ``async for`` costs,
    however many events one network read brings. ``task_id``, ``conversation_id``,
    ``message_id``, ``workflow_run_id`` and ``current_answer`` advance event by event exactly
    as on the async stream: they show the state right after the last event taken. Without a
    ``with`` block, leaving a ``for`` loop early closes the stream (nothing else would);
    inside one, the stream stays open until the block ends.
    """

    def __init__(self, stream: AsyncChatStream, loop: LoopThread) -> None:
        self._stream = stream
        self._loop = loop
        self._feed = EventFeed(stream)
        # This stream's state lags the async one's: answers replaced meanwhile are kept.
        stream._replaced_answers = []
        self._view: StreamView = stream._view()
        # current_answer as of the last event taken, and its (round, size) in the view.
        self._answer_text = ""
        self._answer_key = (0, 0)
        self._over = False
        self._closing = False
        self._cut_off = False
        self._entered = False
        loop.attach(self)

    # -- state (as of the last event taken) --------------------------------------------------

    @property
    def task_id(self) -> str | None:
        """The run's task id (for ``stop``), known from the first event on."""
        return self._view[2]

    @property
    def conversation_id(self) -> str | None:
        """The conversation the run belongs to, known from the first event on."""
        return self._view[3]

    @property
    def message_id(self) -> str | None:
        """The id of the answer message, known from the first event on."""
        return self._view[4]

    @property
    def workflow_run_id(self) -> str | None:
        """The Chatflow run id, known from the first workflow event on."""
        return self._view[5]

    @property
    def current_answer(self) -> str:
        """The answer streamed so far (deltas joined, ``message_replace`` applied).

        Cheap to read after every event: only the deltas since the last read are joined.
        """
        answer_round, size = self._view[0], self._view[1]
        known_round, known_size = self._answer_key
        if answer_round != known_round or size != known_size:
            start = known_size if answer_round == known_round and size > known_size else 0
            tail = self._stream._answer_as_of(answer_round, start, size)
            text = self._answer_text if start else ""
            # As in AsyncChatStream: without the attribute's reference CPython can extend the
            # string in place.
            self._answer_text = ""
            text += tail
            self._answer_text = text
            self._answer_key = (answer_round, size)
        return self._answer_text

    @property
    def stopped(self) -> bool:
        """True when the run was stopped: by :meth:`stop`, by ``chat.stop(task_id)`` of the
        same client while this stream read it, or elsewhere (its ``workflow_finished`` says
        ``stopped``)."""
        return self._stream.stopped

    @property
    def response(self) -> aiohttp.ClientResponse | None:
        """The underlying HTTP response once the stream is open (for headers)."""
        return self._stream.response

    @property
    def timings(self) -> StreamTimings:
        """When the request went out, the first byte, event and delta arrived, each delta's
        arrival, and how the stream ended (recorded on the loop thread as data arrives)."""
        return self._stream.timings

    @property
    def closed(self) -> bool:
        # Once the events are all taken, or after close() / stop(): the reader on the loop
        # reads ahead and may have released the connection before.
        return self._over or self._closing or (self._stream.closed and not self._feed.started)

    # -- context manager and iteration ----------------------------------------------------

    def __enter__(self) -> ChatStream:
        self._entered = True
        self._loop.call(self._stream.__aenter__, cut_off=self._cut_off_error)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self._events()

    def __next__(self) -> StreamEvent:
        event = self._next_event()
        if event is None:
            raise StopIteration
        return event

    def _events(self) -> Iterator[StreamEvent]:
        # A generator, so that a loop left early (break, an exception in its body) closes
        # the stream as soon as the generator is dropped: unless a ``with`` block owns the
        # stream, which closes it on leaving and may go on reading until then.
        finished = False
        try:
            while (event := self._next_event()) is not None:
                yield event
            finished = True
        finally:
            if not finished and not self._entered:
                self.close()

    def _next_event(self) -> StreamEvent | None:
        """The next event, waiting for the reader on the loop; None at the end."""
        if self._over or self._cut_off:
            self._raise_if_failed()
            return None
        feed = self._feed
        try:
            item = feed.items.popleft()  # the common case: the reader is ahead
        except IndexError:
            if not feed.started and not self._start():
                return None
            item = feed.take()
        else:
            if feed.reader_waits:
                feed.taken()
        if item.__class__ is tuple:
            event, self._view = item
            return event  # type: ignore[no-any-return]
        self._over = True
        if item is CUT_OFF:
            self._cut_off = True
        elif item is not END:
            raise item
        self._raise_if_failed()
        return None

    def _start(self) -> bool:
        """Start the reader on the loop; False if the stream was closed before it began."""
        if self._cut_off:
            raise self._cut_off_error()
        if self._stream.closed:
            self._over = True
            return False
        try:
            self._loop.call(self._feed.start, cut_off=self._cut_off_error)
        except ConfigurationError:
            if self._loop.closed:
                raise self._cut_off_error() from None
            raise
        return True

    def _raise_if_failed(self) -> None:
        if self._cut_off:
            raise self._cut_off_error()
        failure = self._stream._failure
        if failure is not None:
            raise failure

    @property
    def text_stream(self) -> Iterator[str]:
        """The answer as it arrives: text deltas only; other events are consumed silently.

        ``message_replace`` is not a delta: ``current_answer`` and ``final_message()``
        reflect it, the deltas already yielded cannot.
        """
        return self._text_deltas()

    def _text_deltas(self) -> Iterator[str]:
        for event in self:
            text = text_delta(event, agent_mode=self._view[6])
            if text:
                yield text

    def final_message(self) -> ChatCompletion:
        """Read the rest of the stream and return the whole answer, as ``chat.send`` would."""
        for _ in self:
            pass
        return self._stream._completion()

    def until_done(self) -> None:
        """Read the rest of the stream, discarding the events."""
        for _ in self:
            pass

    def to_sse(
        self,
        *,
        events: Collection[str] | None = None,
        transform: Transform | None = None,
        pings: bool = True,
    ) -> Iterator[bytes]:
        """The stream as the body of a ``text/event-stream`` response, for a browser.

        Gives each event as Dify sent it (``data: {json}``) and Dify's keep-alives
        (``event: ping``, unless ``pings`` is false). ``events`` keeps only the named event
        types; ``transform`` maps each event to what is sent instead (a ``ServerSentEvent``,
        an event or model, a mapping sent as JSON, a text) or to ``None`` to skip it. A
        failure is sent as Dify's ``error`` event and ends the body. The stream is opened
        (if it is not yet) on the first iteration and closed at the end. If the consumer goes
        away first (the async iterator cancelled, closed or dropped; the sync iterable closed
        by a WSGI server), the run is stopped on the server. See :mod:`chatapi.web`.
        """
        encoder = SSEEncoder(events=events, transform=transform, pings=pings)
        self._stream._include_pings = self._stream._include_pings or pings
        return iter_sse(self, encoder)

    def stop(self) -> None:
        """Ask the server to stop the run (same ``user``), then close the connection.

        The stream ends cleanly: ``stopped`` is true, ``final_message()`` returns the partial
        answer. Before the first event the task id is unknown: the connection is only closed.
        A stream whose run was over already is left as it was.
        """
        self._closing = True
        self._feed.clear()
        self._loop.call(self._stop_on_loop, cut_off=self._cut_off_error)

    async def _stop_on_loop(self) -> None:
        try:
            await self._stream.stop()
        finally:
            await self._feed.stop()

    def _stop_quietly(self) -> None:
        """Stop the run for a consumer that went away: bounded, and never raising.

        Before the task id is known (the consumer left after the first keep-alive) the
        stream is read on here until it is.
        """
        try:
            while self._stream.task_id is None and self._next_event() is not None:
                pass
            self._closing = True
            self._feed.clear()
            self._loop.call(self._stop_quietly_on_loop)
        except ChatAPIError as exc:  # the run failed, or the client was closed meanwhile
            log.debug("could not stop the run of %r: %s", self._stream, exc)

    async def _stop_quietly_on_loop(self) -> None:
        try:
            await stop_within_limit(self._stream, read_on=False)
        finally:
            await self._feed.stop()

    def close(self) -> None:
        """Release the connection; idempotent. Events not yet read are dropped."""
        self._closing = True
        self._feed.clear()
        if self._loop.in_loop_thread():
            # A generator of this stream collected on the loop thread: release in place.
            self._stream._release()
            self._feed.cut_off()
            return
        if self._stream.closed and not self._feed.started:
            return
        self._loop.cleanup(self._close_on_loop)

    async def _close_on_loop(self) -> None:
        await self._stream.aclose()
        await self._feed.stop()

    def __del__(self) -> None:
        # Dropped without close() after its reader started (``next()`` then forgotten): the
        # reader on the loop holds the async stream, so release it there; the reader then
        # ends on its own.
        loop = self._feed.loop
        if self._over or self._closing or loop is None:
            return
        try:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._stream._release)
        except Exception:  # a finalizer must not raise (the loop closed, interpreter exit)
            pass

    def _loop_closed(self) -> None:
        """On the loop, as its client closes: end the stream; reading on raises."""
        if not self._stream.closed and not self._over:
            self._cut_off = True
            self._feed.clear()
            self._feed.cut_off()  # wakes a consumer waiting for the next event
        self._stream._release()

    def _cut_off_error(self) -> IncompleteStreamError:
        return IncompleteStreamError(
            f"{self._stream._description} was cut off: its ChatClient was closed",
            **self._stream._state(),
        )

    def __repr__(self) -> str:
        return repr(self._stream).replace("<AsyncChatStream", "<ChatStream", 1)


def _open_stream(loop: LoopThread, make: Callable[[], AsyncChatStream]) -> ChatStream:
    return ChatStream(loop.call(make), loop)


def _wrap_stream(loop: LoopThread, stream: AsyncChatStream) -> ChatStream:
    return ChatStream(stream, loop)


def bridge_stream(
    fn: Callable[Concatenate[Any, P], AsyncChatStream],
) -> SyncMethod[P, ChatStream]:
    """The sync twin of a resource method returning an :class:`AsyncChatStream`."""
    if getattr(fn, "__annotations__", {}).get("return") not in ("AsyncChatStream", AsyncChatStream):
        raise TypeError(f"bridge_stream() takes a method returning AsyncChatStream, not {fn!r}")
    return SyncMethod(fn, _open_stream, "ChatStream", adapt_result=_wrap_stream)


class WorkflowStream(ChatStream):
    """The events of one workflow app run, for sync code: the twin of
    :class:`AsyncWorkflowStream` (``text_stream`` over ``text_chunk``, ``final_run()``)."""

    def __init__(self, stream: AsyncWorkflowStream, loop: LoopThread) -> None:
        super().__init__(stream, loop)
        self._workflow_stream = stream

    def __enter__(self) -> WorkflowStream:
        super().__enter__()
        return self

    @property
    def outputs(self) -> dict[str, Any]:
        """The run's output variables once ``workflow_finished`` has arrived, else empty."""
        return self._workflow_stream.outputs

    def final_run(self) -> WorkflowRunResult:
        """Read the rest of the stream and return the run's result, as ``workflows.run``
        would."""
        for _ in self:
            pass
        return self._workflow_stream._run_result()

    def __repr__(self) -> str:
        return repr(self._stream).replace("<AsyncWorkflowStream", "<WorkflowStream", 1)


def _open_workflow_stream(
    loop: LoopThread, make: Callable[[], AsyncWorkflowStream]
) -> WorkflowStream:
    return WorkflowStream(loop.call(make), loop)


def _wrap_workflow_stream(loop: LoopThread, stream: AsyncWorkflowStream) -> WorkflowStream:
    return WorkflowStream(stream, loop)


def bridge_workflow_stream(
    fn: Callable[Concatenate[Any, P], AsyncWorkflowStream],
) -> SyncMethod[P, WorkflowStream]:
    """The sync twin of a resource method returning an :class:`AsyncWorkflowStream`."""
    if getattr(fn, "__annotations__", {}).get("return") not in (
        "AsyncWorkflowStream",
        AsyncWorkflowStream,
    ):
        raise TypeError(
            f"bridge_workflow_stream() takes a method returning AsyncWorkflowStream, not {fn!r}"
        )
    return SyncMethod(
        fn, _open_workflow_stream, "WorkflowStream", adapt_result=_wrap_workflow_stream
    )


# -- the resources: one line per async method (docstrings come from the async classes) --


class Chat(SyncResource[AsyncChat]):
    send = bridge(AsyncChat.send)
    stream = bridge_stream(AsyncChat.stream)
    stop = bridge(AsyncChat.stop)

    @property
    def with_raw_response(self) -> ChatRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return ChatRaw(self)


class ChatRaw(SyncRawResponses):
    send = sync_raw(Chat.send)
    stop = sync_raw(Chat.stop)
    stream = sync_raw(Chat.stream)


class Messages(SyncResource[AsyncMessages]):
    list = bridge(AsyncMessages.list)
    iter = bridge_iter(AsyncMessages.iter)
    feedback = bridge(AsyncMessages.feedback)
    suggested = bridge(AsyncMessages.suggested)

    @property
    def with_raw_response(self) -> MessagesRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return MessagesRaw(self)


class MessagesRaw(SyncRawResponses):
    feedback = sync_raw(Messages.feedback)
    list = sync_raw(Messages.list)
    suggested = sync_raw(Messages.suggested)


class Conversations(SyncResource[AsyncConversations]):
    list = bridge(AsyncConversations.list)
    iter = bridge_iter(AsyncConversations.iter)
    rename = bridge(AsyncConversations.rename)
    delete = bridge(AsyncConversations.delete)
    variables = bridge(AsyncConversations.variables)
    iter_variables = bridge_iter(AsyncConversations.iter_variables)
    update_variable = bridge(AsyncConversations.update_variable)

    @property
    def with_raw_response(self) -> ConversationsRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return ConversationsRaw(self)


class ConversationsRaw(SyncRawResponses):
    delete = sync_raw(Conversations.delete)
    list = sync_raw(Conversations.list)
    rename = sync_raw(Conversations.rename)
    update_variable = sync_raw(Conversations.update_variable)
    variables = sync_raw(Conversations.variables)


class Files(SyncResource[AsyncFiles]):
    upload = bridge(AsyncFiles.upload)
    preview = bridge(AsyncFiles.preview)

    @property
    def with_raw_response(self) -> FilesRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return FilesRaw(self)


class FilesRaw(SyncRawResponses):
    preview = sync_raw(Files.preview)
    upload = sync_raw(Files.upload)


class Audio(SyncResource[AsyncAudio]):
    to_text = bridge(AsyncAudio.to_text)
    to_speech = bridge(AsyncAudio.to_speech)

    @property
    def with_raw_response(self) -> AudioRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AudioRaw(self)


class AudioRaw(SyncRawResponses):
    to_speech = sync_raw(Audio.to_speech)
    to_text = sync_raw(Audio.to_text)


class App(SyncResource[AsyncApp]):
    info = bridge(AsyncApp.info)
    parameters = bridge(AsyncApp.parameters)
    meta = bridge(AsyncApp.meta)
    site = bridge(AsyncApp.site)

    @property
    def with_raw_response(self) -> AppRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AppRaw(self)


class AppRaw(SyncRawResponses):
    info = sync_raw(App.info)
    meta = sync_raw(App.meta)
    parameters = sync_raw(App.parameters)
    site = sync_raw(App.site)


class EndUsers(SyncResource[AsyncEndUsers]):
    get = bridge(AsyncEndUsers.get)

    @property
    def with_raw_response(self) -> EndUsersRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return EndUsersRaw(self)


class EndUsersRaw(SyncRawResponses):
    get = sync_raw(EndUsers.get)


class Annotations(SyncResource[AsyncAnnotations]):
    list = bridge(AsyncAnnotations.list)
    iter = bridge_iter(AsyncAnnotations.iter)
    create = bridge(AsyncAnnotations.create)
    update = bridge(AsyncAnnotations.update)
    delete = bridge(AsyncAnnotations.delete)
    configure_reply = bridge(AsyncAnnotations.configure_reply)
    reply_status = bridge(AsyncAnnotations.reply_status)

    @property
    def with_raw_response(self) -> AnnotationsRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AnnotationsRaw(self)


class AnnotationsRaw(SyncRawResponses):
    configure_reply = sync_raw(Annotations.configure_reply)
    create = sync_raw(Annotations.create)
    delete = sync_raw(Annotations.delete)
    list = sync_raw(Annotations.list)
    reply_status = sync_raw(Annotations.reply_status)
    update = sync_raw(Annotations.update)


class Feedbacks(SyncResource[AsyncFeedbacks]):
    list = bridge(AsyncFeedbacks.list)
    iter = bridge_iter(AsyncFeedbacks.iter)

    @property
    def with_raw_response(self) -> FeedbacksRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return FeedbacksRaw(self)


class FeedbacksRaw(SyncRawResponses):
    list = sync_raw(Feedbacks.list)


class Workflows(SyncResource[AsyncWorkflows]):
    run = bridge(AsyncWorkflows.run)
    stream = bridge_workflow_stream(AsyncWorkflows.stream)
    stop = bridge(AsyncWorkflows.stop)
    get_run = bridge(AsyncWorkflows.get_run)
    logs = bridge(AsyncWorkflows.logs)
    iter_logs = bridge_iter(AsyncWorkflows.iter_logs)
    events = bridge_stream(AsyncWorkflows.events)

    @property
    def with_raw_response(self) -> WorkflowsRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return WorkflowsRaw(self)


class WorkflowsRaw(SyncRawResponses):
    events = sync_raw(Workflows.events)
    get_run = sync_raw(Workflows.get_run)
    logs = sync_raw(Workflows.logs)
    run = sync_raw(Workflows.run)
    stop = sync_raw(Workflows.stop)
    stream = sync_raw(Workflows.stream)


class HumanInput(SyncResource[AsyncHumanInput]):
    get = bridge(AsyncHumanInput.get)
    submit = bridge(AsyncHumanInput.submit)

    @property
    def with_raw_response(self) -> HumanInputRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return HumanInputRaw(self)


class HumanInputRaw(SyncRawResponses):
    get = sync_raw(HumanInput.get)
    submit = sync_raw(HumanInput.submit)


class Completions(SyncResource[AsyncCompletions]):
    send = bridge(AsyncCompletions.send)
    stream = bridge_stream(AsyncCompletions.stream)
    stop = bridge(AsyncCompletions.stop)

    @property
    def with_raw_response(self) -> CompletionsRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return CompletionsRaw(self)


class CompletionsRaw(SyncRawResponses):
    send = sync_raw(Completions.send)
    stop = sync_raw(Completions.stop)
    stream = sync_raw(Completions.stream)


class ChatClient:
    """Client of one Dify chat app (Chatflow, chatbot or agent) for sync code.

    The same API as :class:`AsyncChatClient`, without ``await``; see the module docstring
    for how it runs. Settings left out come from the environment: ``DIFY_API_KEY``,
    ``DIFY_BASE_URL`` (default ``https://api.dify.ai/v1``) and ``DIFY_USER``. ``session``
    exists for symmetry only: an aiohttp session belongs to one event loop and this client
    runs its own, so passing one raises :class:`ConfigurationError`.

    Use it as a context manager, or call :meth:`close` when done. Thread-safe. In a child
    made by ``os.fork()`` its first call starts a new loop thread and new connections.
    """

    chat: Chat
    messages: Messages
    conversations: Conversations
    files: Files
    audio: Audio
    app: App
    end_users: EndUsers
    annotations: Annotations
    feedbacks: Feedbacks
    workflows: Workflows
    human_input: HumanInput
    completions: Completions

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int = 2,
        session: None = None,
        default_headers: Mapping[str, str] | None = None,
        connector_limit: int = 100,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        if session is not None:
            raise ConfigurationError(
                "ChatClient does not take a session: it runs its own event loop, and an "
                "aiohttp session only works on the loop that created it (use AsyncChatClient "
                "to share a session)"
            )
        # Built here so that bad settings fail at construction; it binds to the loop thread
        # on its first request and is used on that thread only.
        self._async = AsyncChatClient(
            api_key,
            base_url=base_url,
            user=user,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            connector_limit=connector_limit,
            max_event_size=max_event_size,
            max_response_size=max_response_size,
        )
        self._async._public_name = "ChatClient"
        self._loop = LoopThread(name="chatapi-loop", on_close=self._async.aclose)
        self._derived = False
        client, loop = self._async, self._loop
        self.chat = Chat(client.chat, loop)
        self.messages = Messages(client.messages, loop)
        self.conversations = Conversations(client.conversations, loop)
        self.files = Files(client.files, loop)
        self.audio = Audio(client.audio, loop)
        self.app = App(client.app, loop)
        self.end_users = EndUsers(client.end_users, loop)
        self.annotations = Annotations(client.annotations, loop)
        self.feedbacks = Feedbacks(client.feedbacks, loop)
        self.workflows = Workflows(client.workflows, loop)
        self.human_input = HumanInput(client.human_input, loop)
        self.completions = Completions(client.completions, loop)

    @property
    def base_url(self) -> str:
        """The API root every path is appended to, without a trailing slash."""
        return self._async.base_url

    @property
    def user(self) -> str | None:
        """The default end-user id, used when a call gives none."""
        return self._async.user

    @property
    def timeout(self) -> Timeout:
        """The default time limits of every call."""
        return self._async.timeout

    @property
    def max_event_size(self) -> int:
        """The largest stream event accepted, in bytes (larger ones raise SSEDecodeError)."""
        return self._async.max_event_size

    @property
    def max_response_size(self) -> int:
        """The largest non-streaming response body accepted, in bytes (larger ones raise
        ResponseTooLargeError)."""
        return self._async.max_response_size

    @property
    def max_retries(self) -> int:
        return self._async.max_retries

    @property
    def closed(self) -> bool:
        return self._loop.closed or self._async.closed

    def with_options(
        self,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> ChatClient:
        """A client with other defaults that shares this one's connections (no new pool).

        Options left out keep this client's values; ``default_headers`` are added to (and
        override) this client's. Closing the new client only makes it unusable; the
        connections close with this client.
        """
        derived = copy.copy(self)
        derived._async = self._async.with_options(
            timeout=timeout, max_retries=max_retries, default_headers=default_headers
        )
        derived._derived = True
        for name, value in vars(self).items():
            if isinstance(value, SyncResource):
                setattr(derived, name, type(value)(getattr(derived._async, name), self._loop))
        return derived

    def close(self) -> None:
        """Close the connections and stop the loop thread; idempotent and thread-safe.

        Calls still running are cut off (:class:`APIConnectionError`), open streams end with
        :class:`IncompleteStreamError`, and later calls raise :class:`ConfigurationError`.
        A client made by :meth:`with_options` only closes itself.
        """
        if self._derived:
            self._async._http.close_view()
            return
        self._loop.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ChatClient base_url={self.base_url!r} user={self.user!r}>"

