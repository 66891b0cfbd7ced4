"""ChatClient offers exactly the surface of AsyncChatClient, derived by the typed bridge.

These tests read the async classes as they are at test time: an async method added without
its one-line sync twin in chatapi/sync.py fails here.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatapi import (
    AsyncChatClient,
    AsyncChatStream,
    AsyncWorkflowStream,
    ChatClient,
    ChatStream,
    WorkflowStream,
)
from chatapi._bridge import SyncMethod, SyncResource, bridge, bridge_iter
from chatapi.resources import AsyncChat, AsyncResource
from chatapi.sync import bridge_stream

from .conftest import API_KEY

BASE_URL = "http://127.0.0.1:9/v1"


def resources(client: object, kind: type) -> dict[str, Any]:
    return {
        name: value
        for name, value in vars(client).items()
        if not name.startswith("_") and isinstance(value, kind)
    }


def public_methods(cls: type) -> dict[str, Any]:
    """The public methods a resource class defines (its own and inherited, not the base's)."""
    return {
        name: getattr(cls, name)
        for name in dir(cls)
        if not name.startswith("_")
        and inspect.isfunction(getattr(cls, name))
        and not hasattr(AsyncResource, name)
    }


@pytest.fixture(scope="module")
def clients() -> Any:
    async_client = AsyncChatClient(API_KEY, base_url=BASE_URL, user="u")
    with ChatClient(API_KEY, base_url=BASE_URL, user="u") as sync_client:
        yield async_client, sync_client


ASYNC_RESOURCES = sorted(
    resources(AsyncChatClient(API_KEY, base_url=BASE_URL), AsyncResource).items()
)


def test_sync_client_has_the_async_clients_resources(clients: Any) -> None:
    async_client, sync_client = clients
    async_resources = resources(async_client, AsyncResource)
    sync_resources = resources(sync_client, SyncResource)
    assert async_resources  # the walk found something to compare
    assert sync_resources.keys() == async_resources.keys()
    for name, resource in sync_resources.items():
        assert type(resource)._async_class is type(async_resources[name])
        assert type(resource).__doc__ == type(async_resources[name]).__doc__


@pytest.mark.parametrize(("name", "async_resource"), ASYNC_RESOURCES)
def test_every_async_method_has_a_sync_twin(
    clients: Any, name: str, async_resource: AsyncResource
) -> None:
    _, sync_client = clients
    sync_class = type(getattr(sync_client, name))
    async_methods = public_methods(type(async_resource))
    sync_methods = {
        attr: value for attr, value in vars(sync_class).items() if isinstance(value, SyncMethod)
    }
    assert sync_methods.keys() == async_methods.keys(), (
        f"add the missing bridge lines to {sync_class.__qualname__} in chatapi/sync.py"
    )
    for method, fn in async_methods.items():
        assert sync_methods[method].fn is fn
    public = {attr for attr in dir(getattr(sync_client, name)) if not attr.startswith("_")}
    assert public == {attr for attr in dir(async_resource) if not attr.startswith("_")}


@pytest.mark.parametrize(("name", "async_resource"), ASYNC_RESOURCES)
def test_sync_methods_have_the_async_parameters_and_docstrings(
    clients: Any, name: str, async_resource: AsyncResource
) -> None:
    async_client, sync_client = clients
    for method in public_methods(type(async_resource)):
        async_method = getattr(getattr(async_client, name), method)
        sync_method = getattr(getattr(sync_client, name), method)
        async_signature = inspect.signature(async_method)
        sync_signature = inspect.signature(sync_method)
        assert sync_signature.parameters == async_signature.parameters, method
        assert sync_method.__doc__ == async_method.__doc__, method
        assert sync_method.__name__ == method


# The stream classes resource methods return, and their sync twins.
STREAM_TWINS = {"AsyncChatStream": "ChatStream", "AsyncWorkflowStream": "WorkflowStream"}


@pytest.mark.parametrize(("name", "async_resource"), ASYNC_RESOURCES)
def test_sync_methods_return_values_streams_and_iterators(
    clients: Any, name: str, async_resource: AsyncResource
) -> None:
    _, sync_client = clients
    for method, fn in public_methods(type(async_resource)).items():
        returns = inspect.signature(fn).return_annotation
        sync_returns = inspect.signature(getattr(getattr(sync_client, name), method))
        if inspect.iscoroutinefunction(fn):
            assert sync_returns.return_annotation == returns
        elif inspect.isasyncgenfunction(fn):
            assert returns.startswith("AsyncIterator[")
            assert sync_returns.return_annotation == returns.removeprefix("Async")
        else:
            assert returns in STREAM_TWINS, f"{name}.{method} follows no bridge convention"
            assert sync_returns.return_annotation == STREAM_TWINS[returns]


def test_constructors_take_the_same_parameters() -> None:
    def shape(cls: type) -> list[tuple[str, Any, Any]]:
        parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
        return [(p.name, p.kind, p.default) for p in parameters]

    assert shape(ChatClient) == shape(AsyncChatClient)


def test_clients_have_the_same_public_attributes() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    async_names = public(AsyncChatClient) - {"aclose"} | {"close"}
    assert public(ChatClient) == async_names
    for name in async_names - {"close"}:
        assert inspect.getdoc(getattr(ChatClient, name)) == inspect.getdoc(
            getattr(AsyncChatClient, name)
        ), name
    assert ChatClient.__annotations__.keys() == AsyncChatClient.__annotations__.keys()


def test_chat_stream_mirrors_async_chat_stream() -> None:
    stream_attributes = {"task_id", "conversation_id", "message_id", "workflow_run_id"}

    def public(cls: type) -> set[str]:
        return {name for name in dir(cls) if not name.startswith("_")}

    assert public(ChatStream) == public(AsyncChatStream) - {"aclose"} | {"close"} | (
        stream_attributes
    )
    for name in public(AsyncChatStream) - {"aclose"}:
        assert inspect.getdoc(getattr(ChatStream, name)) == inspect.getdoc(
            getattr(AsyncChatStream, name)
        ), name
    assert inspect.getdoc(ChatStream.close) == inspect.getdoc(AsyncChatStream.aclose)


def test_workflow_stream_adds_what_the_async_workflow_stream_adds() -> None:
    def added(cls: type, base: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")} - set(dir(base))

    assert added(WorkflowStream, ChatStream) == added(AsyncWorkflowStream, AsyncChatStream)
    assert added(WorkflowStream, ChatStream) == {"final_run", "outputs"}
    for name in added(WorkflowStream, ChatStream):
        assert inspect.getdoc(getattr(WorkflowStream, name)) == inspect.getdoc(
            getattr(AsyncWorkflowStream, name)
        ), name


class AsyncToy(AsyncResource):
    async def value(self) -> int:
        return 1

    def plain(self) -> int:
        return 1

    async def items(self) -> AsyncIterator[int]:
        yield 1


def test_bridge_refuses_a_method_of_another_kind() -> None:
    with pytest.raises(TypeError, match="async def"):
        bridge(AsyncToy.plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="async generator"):
        bridge_iter(AsyncToy.value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="AsyncChatStream"):
        bridge_stream(AsyncToy.value)  # type: ignore[arg-type]


def test_a_sync_method_must_bridge_the_async_method_of_its_name() -> None:
    with pytest.raises(TypeError, match=r"must bridge AsyncChat.send"):

        class Chat(SyncResource[AsyncChat]):
            send = bridge(AsyncChat.stop)

    with pytest.raises(TypeError, match=r"must bridge AsyncChat.sent"):

        class Misnamed(SyncResource[AsyncChat]):
            sent = bridge(AsyncChat.send)

    with pytest.raises(TypeError, match=r"must bridge AsyncChat.value"):

        class Foreign(SyncResource[AsyncChat]):
            value = bridge(AsyncToy.value)


def test_a_sync_resource_must_name_its_async_class() -> None:
    with pytest.raises(TypeError, match=r"SyncResource\[AsyncSomething\]"):

        class Untyped(SyncResource):  # type: ignore[type-arg]
            pass
