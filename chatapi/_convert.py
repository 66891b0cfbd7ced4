"""The one cattrs converter that turns Dify's JSON into chatapi's attrs models.

Its hooks make decoding as lenient as the API requires and no more:
- a field missing from the JSON takes its default (``None`` for optional fields);
- an extra field is ignored; classes with a ``raw`` attribute get the whole JSON object there;
- ``null`` where a list is expected becomes an empty list (Dify sends both);
- anything else that does not fit raises :class:`~chatapi.errors.ResponseDecodeError`,
  never a bare ``KeyError``/``TypeError``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, override

from .errors import ResponseDecodeError
from .models import PauseReason

__all__ = ["converter", "decode_json", "structure", "structure_hook"]

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    # Some servers send numbers where the schema has decimal strings (prices); keep their text.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected a boolean, got {type(value).__name__}")


converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(bool, _structure_bool)


def _is_list_type(tp: Any) -> bool:
    return get_origin(tp) is list


def _list_hook_factory(tp: Any) -> Callable[[Any, Any], list[Any]]:
    (item_type,) = get_args(tp) or (Any,)
    item_hook = converter.get_structure_hook(item_type)

    def structure_list(value: Any, _: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return [item_hook(item, item_type) for item in value]

    return structure_list


converter.register_structure_hook_factory(_is_list_type, _list_hook_factory)


# Types whose hook above hands back a value of exactly that type unchanged.
_PASS_THROUGH_TYPES = (str, int, float, bool)


def _is_optional_type(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) in (Union, types.UnionType) and len(args) == 2 and type(None) in args


def _optional_hook_factory(tp: Any) -> Callable[[Any, Any], Any]:
    # cattrs' own ``X | None`` hook looks up the hook of ``X`` on every call; stream events
    # have dozens of optional fields, so resolve it once here.
    (inner_type,) = (arg for arg in get_args(tp) if arg is not type(None))
    inner_hook = converter.get_structure_hook(inner_type)

    if inner_type in _PASS_THROUGH_TYPES:

        def structure_optional_primitive(value: Any, _: Any) -> Any:
            if value is None or value.__class__ is inner_type:
                return value
            return inner_hook(value, inner_type)

        return structure_optional_primitive

    def structure_optional(value: Any, _: Any) -> Any:
        if value is None:
            return None
        return inner_hook(value, inner_type)

    return structure_optional


converter.register_structure_hook_factory(_is_optional_type, _optional_hook_factory)


def _not_an_object(value: Any, cls: Any) -> TypeError:
    name = getattr(cls, "__name__", str(cls))
    return TypeError(f"expected an object for {name}, got {type(value).__name__}")


def _attrs_hook_factory(cls: Any) -> Callable[[Any, Any], Any]:
    # Without this check, a list or string where an object belongs would quietly become an
    # empty model (every field has a default).
    structure_fields = make_dict_structure_fn(cls, converter)

    def structure_object(value: Any, _: Any) -> Any:
        if value.__class__ is not dict:
            raise _not_an_object(value, cls)
        return structure_fields(value, cls)

    return structure_object


converter.register_structure_hook_factory(attrs.has, _attrs_hook_factory)


def _has_raw_field(cls: Any) -> bool:
    # ``get_origin`` unwraps generic aliases such as ``Page[Message]``.
    return attrs.has(cls) and "raw" in attrs.fields_dict(get_origin(cls) or cls)


def _raw_hook_factory(cls: Any) -> Callable[[Any, Any], Any]:
    structure_fields = make_dict_structure_fn(cls, converter, raw=override(omit=True))

    def structure_with_raw(value: Any, _: Any) -> Any:
        if value.__class__ is not dict:
            raise _not_an_object(value, cls)
        instance = structure_fields(value, cls)
        # The classes are frozen; ``raw`` is set once, here, right after construction.
        object.__setattr__(instance, "raw", value)
        return instance

    return structure_with_raw


converter.register_structure_hook_factory(_has_raw_field, _raw_hook_factory)


def _structure_dict_any(value: Any, _: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


converter.register_structure_hook_func(lambda tp: tp == dict[str, Any], _structure_dict_any)

_pause_reason_fields = make_dict_structure_fn(PauseReason, converter)


def _structure_pause_reason(value: Any, _: Any) -> PauseReason:
    if not isinstance(value, dict):
        raise _not_an_object(value, PauseReason)
    # Dify writes the discriminator of a pause reason as ``TYPE``.
    if "TYPE" in value and "type" not in value:
        value = {**value, "type": value["TYPE"]}
    return _pause_reason_fields(value, PauseReason)


converter.register_structure_hook(PauseReason, _structure_pause_reason)


def structure_hook(cls: type[T]) -> Callable[[Any, Any], T]:
    """The converter's structure function for ``cls`` (for callers on the hot path)."""
    return converter.get_structure_hook(cls)


def structure(value: Any, cls: type[T], *, what: str | None = None) -> T:
    """Structure decoded JSON into ``cls``; any mismatch becomes ``ResponseDecodeError``."""
    if attrs.has(cls) and not isinstance(value, dict):
        raise ResponseDecodeError(
            f"expected a JSON object for {what or cls.__name__}, got {type(value).__name__}",
            data=orjson.dumps(value).decode(),
        )
    try:
        return converter.structure(value, cls)
    except KeyError as exc:
        raise ResponseDecodeError(
            f"{what or cls.__name__} lacks the required field {exc}", data=orjson.dumps(value)
        ) from exc
    except (cattrs.BaseValidationError, TypeError, ValueError, AttributeError) as exc:
        raise ResponseDecodeError(
            f"unexpected shape of {what or cls.__name__} ({exc})", data=orjson.dumps(value)
        ) from exc


def decode_json(body: bytes, *, what: str) -> Any:
    """Parse a JSON body; a malformed one becomes ``ResponseDecodeError`` with its bytes."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ResponseDecodeError(f"{what} is not valid JSON", data=body) from exc
