"""``client.human_input``: read and submit the form a paused Chatflow run waits on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._config import Timeout
from .._convert import structure
from .._raw import AsyncRawResponses, raw
from ..models import HumanInputForm
from ._base import AsyncResource, check_str, path_segment

__all__ = ["AsyncHumanInput", "AsyncHumanInputRaw"]


class AsyncHumanInput(AsyncResource):
    """Human Input forms, addressed by the ``form_token`` of the run's pause reason.

    The pause/resume flow: a run pauses (``workflow_paused``, or ``chat.send`` returning
    ``paused``); read the form with :meth:`get`, send it with :meth:`submit`, then follow
    the resumed run with ``workflows.events(workflow_run_id)``.
    """

    @property
    def with_raw_response(self) -> AsyncHumanInputRaw:
        """The same methods, each returning a :class:`~chatapi.RawResponse`."""
        return AsyncHumanInputRaw(self)

    async def get(
        self,
        form_token: str,
        *,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> HumanInputForm:
        """The form's text, fields, default values and action buttons."""
        path = f"/form/human_input/{path_segment(form_token, 'form_token')}"
        data = await self._http.request_json(
            "GET", path, timeout=self._timeout(timeout), max_retries=max_retries
        )
        return structure(data, HumanInputForm, what="the Human Input form")

    async def submit(
        self,
        form_token: str,
        *,
        inputs: Mapping[str, Any],
        action: str,
        user: str | None = None,
        timeout: Timeout | float | None = None,
        max_retries: int | None = None,
    ) -> None:
        """Submit the form: values by ``output_variable_name`` and the chosen action's id.

        The run resumes on the server; its events come from ``workflows.events``.
        """
        path = f"/form/human_input/{path_segment(form_token, 'form_token')}"
        if not isinstance(inputs, Mapping):
            raise TypeError(f"inputs must be a mapping, got {type(inputs).__name__}")
        check_str(action, "action")
        body = {"inputs": dict(inputs), "action": action, "user": self._user(user)}
        await self._http.request_json(
            "POST", path, json=body, timeout=self._timeout(timeout), max_retries=max_retries
        )


class AsyncHumanInputRaw(AsyncRawResponses):
    """``with_raw_response`` of :class:`AsyncHumanInput`: its methods, each returning a
    :class:`~chatapi.RawResponse`."""

    get = raw(AsyncHumanInput.get)
    submit = raw(AsyncHumanInput.submit)
