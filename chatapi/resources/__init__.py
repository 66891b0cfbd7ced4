"""The resource namespaces of the client, one module per API resource."""

from ._base import AsyncResource
from .annotations import AsyncAnnotations
from .app import AsyncApp
from .audio import AsyncAudio
from .chat import AsyncChat
from .completions import AsyncCompletions
from .conversations import AsyncConversations
from .end_users import AsyncEndUsers
from .feedbacks import AsyncFeedbacks
from .files import AsyncFiles
from .human_input import AsyncHumanInput
from .messages import AsyncMessages
from .workflows import AsyncWorkflows

__all__ = [
    "AsyncAnnotations",
    "AsyncApp",
    "AsyncAudio",
    "AsyncChat",
    "AsyncCompletions",
    "AsyncConversations",
    "AsyncEndUsers",
    "AsyncFeedbacks",
    "AsyncFiles",
    "AsyncHumanInput",
    "AsyncMessages",
    "AsyncResource",
    "AsyncWorkflows",
]
