"""``AsyncChatClient``: configuration, the transport, and the resource namespaces."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

import aiohttp

from ._config import Timeout, resolve_settings
from ._http import DEFAULT_MAX_RESPONSE_SIZE, HTTPClient
from .errors import ConfigurationError
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
from .streaming import StreamRegistry

__all__ = ["AsyncChatClient"]


class AsyncChatClient:
    """Async client of one Dify chat app (Chatflow, chatbot or agent).

    Settings left out come from the environment: ``DIFY_API_KEY``, ``DIFY_BASE_URL``
    (default ``https://api.dify.ai/v1``) and ``DIFY_USER`` (the end-user id used when a call
    gives none). ``timeout`` is a :class:`Timeout` or a number (the total limit of a call).
    ``max_retries`` bounds the retries of failed calls that are safe to repeat (0: none). A
    ``session`` you pass is used as is and never closed by the client. ``connector_limit``
    caps the connections of the session the client creates (0: no cap),
    ``max_event_size`` the size of one stream event, and ``max_response_size`` the size of
    a non-streaming response body (128 MiB by default; error bodies are read up to 64 KiB).

    Use it as an async context manager, or call :meth:`aclose` when done. A client is bound
    to the event loop it first runs on; in a child made by ``os.fork()`` it starts over on
    the child's loop with a new session (a ``session`` you passed cannot follow: the first
    call there raises :class:`ConfigurationError`). It keeps no cookies.
    """

    chat: AsyncChat
    messages: AsyncMessages
    conversations: AsyncConversations
    files: AsyncFiles
    audio: AsyncAudio
    app: AsyncApp
    end_users: AsyncEndUsers
    annotations: AsyncAnnotations
    feedbacks: AsyncFeedbacks
    workflows: AsyncWorkflows
    human_input: AsyncHumanInput
    completions: AsyncCompletions

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int = 2,
        session: aiohttp.ClientSession | None = None,
        default_headers: Mapping[str, str] | None = None,
        connector_limit: int = 100,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        settings = resolve_settings(api_key, base_url, user)
        if isinstance(max_event_size, bool) or not isinstance(max_event_size, int) or (
            max_event_size <= 0
        ):
            raise ConfigurationError(
                f"max_event_size must be a positive number of bytes, got {max_event_size!r}"
            )
        self._max_event_size = max_event_size
        self._user = settings.user
        # Open streams by task id, so that chat.stop() of this client marks the one it stops.
        self._streams = StreamRegistry()
        # The class name that error messages and hints show (ChatClient wraps this one).
        self._public_name = "AsyncChatClient"
        self._http = HTTPClient(
            settings,
            timeout=Timeout.coerce(timeout),
            max_retries=max_retries,
            session=session,
            default_headers=default_headers,
            connector_limit=connector_limit,
            max_response_size=max_response_size,
        )
        self.chat = AsyncChat(self)
        self.messages = AsyncMessages(self)
        self.conversations = AsyncConversations(self)
        self.files = AsyncFiles(self)
        self.audio = AsyncAudio(self)
        self.app = AsyncApp(self)
        self.end_users = AsyncEndUsers(self)
        self.annotations = AsyncAnnotations(self)
        self.feedbacks = AsyncFeedbacks(self)
        self.workflows = AsyncWorkflows(self)
        self.human_input = AsyncHumanInput(self)
        self.completions = AsyncCompletions(self)

    @property
    def base_url(self) -> str:
        """The API root every path is appended to, without a trailing slash."""
        return self._http.base_url

    @property
    def user(self) -> str | None:
        """The default end-user id, used when a call gives none."""
        return self._user

    @property
    def timeout(self) -> Timeout:
        """The default time limits of every call."""
        return self._http.timeout

    @property
    def max_event_size(self) -> int:
        """The largest stream event accepted, in bytes (larger ones raise SSEDecodeError)."""
        return self._max_event_size

    @property
    def max_response_size(self) -> int:
        """The largest non-streaming response body accepted, in bytes (larger ones raise
        ResponseTooLargeError)."""
        return self._http.max_response_size

    @property
    def max_retries(self) -> int:
        return self._http.max_retries

    @property
    def closed(self) -> bool:
        return self._http.closed

    async def aclose(self) -> None:
        """Close the connections this client opened; idempotent."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncChatClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncChatClient base_url={self.base_url!r} user={self._user!r}>"
