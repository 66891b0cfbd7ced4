"""Issue 10, points 6-12: bounded waits and bodies, hostile HTTP, cookies, settings, fork."""

from __future__ import annotations

import pytest

from chatapi import AsyncChatClient, ChatClient, ConfigurationError

from .conftest import API_KEY, ReplayServer, Reply

# -- settings (point 12) --------------------------------------------------------------------

SECRET = "s3cret-value"


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"base_url": f"http://alice:{SECRET}@dify.example/v1"}, "credentials"),
        ({"base_url": f"https://{SECRET}@dify.example/v1"}, "credentials"),
        ({"base_url": "https://dify.example/v1?tenant=a"}, "query"),
        ({"base_url": "https://dify.example/v1?"}, "query"),
        ({"base_url": "https://dify.example/v1#top"}, "fragment"),
        ({"default_headers": {f"X-A\r\nAuthorization: Bearer {SECRET}": "v"}}, "'X-A'"),
        ({"default_headers": {"X-Trace": f"a\r\nAuthorization: Bearer {SECRET}"}}, "line break"),
        ({"default_headers": {"X-Trace": f"a\n{SECRET}"}}, "line break"),
        ({"default_headers": {"X-Trace": f"{SECRET}\0"}}, "NUL"),
        ({"default_headers": {b"X-Bytes": SECRET}}, "names must be strings"),
        ({"default_headers": {"X-Number": 7}}, "must be a string, got int"),
        ({"default_headers": {"": SECRET}}, "empty header name"),
        ({"default_headers": {"X Space": SECRET}}, "not a valid HTTP header name"),
        ({"default_headers": [("X-Trace", SECRET)]}, "must be a mapping"),
    ],
)
@pytest.mark.parametrize("client_class", [AsyncChatClient, ChatClient])
def test_bad_settings_fail_at_construction_without_showing_secrets(
    client_class: type[AsyncChatClient] | type[ChatClient], settings: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        client_class(api_key=API_KEY, **settings)  # type: ignore[arg-type]
    message = str(info.value)
    assert says in message
    assert SECRET not in message and API_KEY not in message
    assert SECRET not in repr(info.value)


def test_good_settings_still_pass() -> None:
    client = AsyncChatClient(
        api_key=API_KEY,
        base_url="https://dify.example:8443/v1/",
        default_headers={"X-Trace-Id": "abc-1", "Accept-Language": "fr, en;q=0.8"},
    )
    assert client.base_url == "https://dify.example:8443/v1"


# -- cookies (point 11) ---------------------------------------------------------------------


async def test_cookies_set_by_the_server_are_never_sent_back(server: ReplayServer) -> None:
    # aiohttp's default jar ignores cookies from IP addresses: go through a host name.
    base_url = server.base_url.replace("127.0.0.1", "localhost")
    server.queue(
        Reply(
            body=b"{}",
            content_type="application/json",
            headers={"Set-Cookie": "session=alice-only; Path=/"},
        )
    )
    async with AsyncChatClient(api_key=API_KEY, base_url=base_url) as client:
        await client._http.request_json("GET", "/info")
        await client._http.request_json("GET", "/parameters")
    first, second = server.requests
    assert "Set-Cookie" not in first.headers  # sanity: the reply above was the first one
    assert "Cookie" not in second.headers
    assert second.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_no_cookie_jar_on_the_session_the_client_creates(server: ReplayServer) -> None:
    server.queue(
        Reply(body=b"{}", content_type="application/json", headers={"Set-Cookie": "a=b"})
    )
    base_url = server.base_url.replace("127.0.0.1", "localhost")
    async with AsyncChatClient(api_key=API_KEY, base_url=base_url) as client:
        await client._http.request_json("GET", "/info")
        session = client._http._session
        assert session is not None
        assert len(session.cookie_jar) == 0
