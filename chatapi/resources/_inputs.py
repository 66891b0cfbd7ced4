"""Request bodies of the app runs that take ``inputs`` (workflow and completion apps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..models import InputFile
from .chat import FileArgument, _file_payload

__all__ = ["app_request_body"]


def _input_value(value: Any) -> Any:
    # File variables take file objects (a list of them for file-list variables).
    if isinstance(value, InputFile):
        return _file_payload(value)
    if isinstance(value, (list, tuple)) and any(isinstance(item, InputFile) for item in value):
        return [_file_payload(item) if isinstance(item, InputFile) else item for item in value]
    return value


def app_request_body(
    inputs: Mapping[str, Any] | None,
    *,
    mode: str,
    user: str,
    files: Sequence[FileArgument] | None,
) -> dict[str, Any]:
    """The JSON body shared by ``/workflows/run`` and ``/completion-messages``."""
    if inputs is not None and not isinstance(inputs, Mapping):
        raise TypeError(f"inputs must be a mapping, got {type(inputs).__name__}")
    if files is not None and (isinstance(files, (str, bytes)) or not isinstance(files, Sequence)):
        raise TypeError(f"files must be a sequence, got {type(files).__name__}")
    body: dict[str, Any] = {
        "inputs": {
            str(name): _input_value(value) for name, value in (inputs or {}).items()
        },
        "response_mode": mode,
        "user": user,
    }
    if files is not None:
        body["files"] = [_file_payload(item) for item in files]
    return body
