"""``client.app``: what the app is and how it is configured."""

from __future__ import annotations

from .._config import Timeout
from .._convert import structure
from .._raw import AsyncRawResponses, raw
from ..models import AppInfo, AppMeta, AppParameters, SiteSettings
from ._base import AsyncResource

__all__ = ["AsyncApp", "AsyncAppRaw"]


class AsyncApp(AsyncResource):
    """The app's description, input form and features, tool icons and WebApp settings."""

    @property
    def with_raw_response(self) -> AsyncAppRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncAppRaw(self)

    async def info(
        self, *, timeout: Timeout | float | None = None, max_retries: int | None = None
    ) -> AppInfo:
        """Name, description, tags, mode and author of the app (``GET /info``)."""
        data = await self._http.request_json(
            "GET", "/info", timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, AppInfo, what="the app info")

    async def parameters(
        self, *, timeout: Timeout | float | None = None, max_retries: int | None = None
    ) -> AppParameters:
        """The input form, opening statement, feature switches and upload limits."""
        data = await self._http.request_json(
            "GET", "/parameters", timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, AppParameters, what="the app parameters")

    async def meta(
        self, *, timeout: Timeout | float | None = None, max_retries: int | None = None
    ) -> AppMeta:
        """The icons of the tools the app uses (``GET /meta``)."""
        data = await self._http.request_json(
            "GET", "/meta", timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, AppMeta, what="the app meta")

    async def site(
        self, *, timeout: Timeout | float | None = None, max_retries: int | None = None
    ) -> SiteSettings:
        """The WebApp's title, colours, icon and texts (``GET /site``)."""
        data = await self._http.request_json(
            "GET", "/site", timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, SiteSettings, what="the site settings")


class AsyncAppRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncApp`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    info = raw(AsyncApp.info)
    meta = raw(AsyncApp.meta)
    parameters = raw(AsyncApp.parameters)
    site = raw(AsyncApp.site)
