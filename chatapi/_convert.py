"""The one cattrs converter that turns Dify's JSON into chatapi's attrs models.

Its hooks make decoding as lenient as the API requires and no more:
- a field missing from the JSON takes its default (``None`` for optional fields);
- an extra field is ignored; classes with a ``raw`` attribute get the whole JSON object there;
- ``null`` where a list is expected becomes an empty list (Dify sends both);
- JSON text where an object or a list is declared is decoded (Dify 1.12 sends a run's
  ``outputs``, and every version its ``inputs``, as ``json.dumps`` text): one rule for every
  field of those types, so a model never special-cases it; ``raw`` keeps what came;
- anything else that does not fit raises :class:`~chatapi.errors.ResponseDecodeError`,
  never a bare ``KeyError``/``TypeError``, naming the field path and the JSON type found
  (:func:`mismatch`, also used for stream events).
"""

from __future__ import annotations

import contextlib
import linecache
import types
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, make_mapping_structure_fn, override

from .errors import ResponseDecodeError
from .models import PauseReason

__all__ = [
    "SHAPE_ERRORS",
    "converter",
    "decode_json",
    "json_object",
    "mismatch",
    "presets_defaults",
    "shape_error",
    "structure",
    "structure_hook",
]

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    # Some servers send numbers where the schema has decimal strings (prices); keep their text.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {_json_name(value)}")


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise TypeError("expected an integer, got a string of something else") from None
    raise TypeError(f"expected an integer, got {_json_name(value)}")


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise TypeError("expected a number, got a string of something else") from None
    raise TypeError(f"expected a number, got {_json_name(value)}")


def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"expected a boolean, got {_json_name(value)}")


converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(bool, _structure_bool)


# Types whose hook above hands back a value of exactly that type unchanged.
_PASS_THROUGH_TYPES = (str, int, float, bool)


def _is_list_type(tp: Any) -> bool:
    return get_origin(tp) is list


def _json_name(value: Any) -> str:
    """The JSON type of a decoded value, as an error message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _from_json_text(value: Any, expected: type[Any], name: str) -> Any:
    """``value`` decoded if it is JSON text of the ``expected`` JSON type, else TypeError."""
    if isinstance(value, str):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise TypeError(f"expected {name}, got a string (not JSON text)") from None
        if isinstance(decoded, expected):
            return decoded
        raise TypeError(f"expected {name}, got a string of JSON {_json_name(decoded)}")
    raise TypeError(f"expected {name}, got {_json_name(value)}")


def _list_hook_factory(tp: Any) -> Callable[[Any, Any], list[Any]]:
    (item_type,) = get_args(tp) or (Any,)
    item_hook = converter.get_structure_hook(item_type)

    if item_type in _PASS_THROUGH_TYPES:
        # Lists of strings (variable selectors, ids) are common in events: items of the right
        # type are taken as they are, without a hook call each.
        def structure_primitive_list(value: Any, _: Any) -> list[Any]:
            if value is None:
                return []
            if not isinstance(value, list):
                value = _from_json_text(value, list, "an array")
            return [
                item if item.__class__ is item_type else item_hook(item, item_type)
                for item in value
            ]

        return structure_primitive_list

    def structure_list(value: Any, _: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            value = _from_json_text(value, list, "an array")
        return [item_hook(item, item_type) for item in value]

    return structure_list


converter.register_structure_hook_factory(_is_list_type, _list_hook_factory)


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


def _object_of(value: Any, cls: Any) -> dict[str, Any]:
    """The JSON object for ``cls``: ``value`` decoded if it is JSON text of one, else
    TypeError (without this check a list or string would quietly become an empty model)."""
    name = getattr(cls, "__name__", str(cls))
    decoded: dict[str, Any] = _from_json_text(value, dict, f"an object ({name})")
    return decoded


def _raw_field(cls: Any) -> str | None:
    """The field that receives the whole JSON object: ``raw``, or ``_raw`` behind a property
    (stream events, whose ``raw`` can also be parsed late from kept bytes)."""
    if not attrs.has(cls):
        return None
    # ``get_origin`` unwraps generic aliases such as ``Page[Message]``.
    names = attrs.fields_dict(get_origin(cls) or cls)
    return next((name for name in ("raw", "_raw") if name in names), None)


# The hook of an attrs class is generated here rather than by cattrs when the class allows it.
# cattrs' function collects keyword arguments in a dict and calls ``__init__``, which in a
# frozen class assigns every field through ``object.__setattr__``: on a stream of small events
# that was most of the decoding time. The generated function reads each field from the JSON
# object, checks it inline when it is an optional primitive (the common case) or hands it to
# the converter's hook of its type, and writes it straight to its slot. A class whose
# ``__init__`` does more than assign (validators, converters, ``__attrs_post_init__``,
# factories taking ``self``, fields left out of ``__init__``) or that is not slotted keeps
# cattrs' function. Both give the same results and raise the same errors.

_MISSING = object()
_NOTHING: Any = attrs.NOTHING
# attrs' stubs declare ``Factory`` as a function; isinstance needs the class.
_FACTORY: type[Any] = type(attrs.Factory(list))
# Hook results equal the value itself when its class is exactly this one.
_EXACT_CLASS: dict[Any, type[Any]] = {
    **{tp: tp for tp in _PASS_THROUGH_TYPES},
    dict[str, Any]: dict,
}


def _slot_setters(cls: type[Any], names: list[str]) -> list[Callable[[Any, Any], None]] | None:
    setters = []
    for name in names:
        owner = next((klass for klass in cls.__mro__ if name in klass.__dict__), None)
        descriptor = owner.__dict__[name] if owner is not None else None
        if not isinstance(descriptor, types.MemberDescriptorType):
            return None
        setters.append(descriptor.__set__)
    return setters


# ``__attrs_pre_init__`` functions that only store default values early: ``__init__`` then
# sets every field anyway, and so does the generated function (which does not call them).
_PRESETTING: set[Callable[[Any], None]] = set()

_PreInit = TypeVar("_PreInit", bound=Callable[[Any], None])


def presets_defaults(pre_init: _PreInit) -> _PreInit:
    """Mark an ``__attrs_pre_init__`` that only gives fields their defaults (see above)."""
    _PRESETTING.add(pre_init)
    return pre_init


def _plain_init(cls: type[Any], fields: tuple[attrs.Attribute[Any], ...]) -> bool:
    """Whether ``__init__`` of ``cls`` only stores its arguments (or defaults) in the fields."""
    pre_init = getattr(cls, "__attrs_pre_init__", None)
    if pre_init is not None and pre_init not in _PRESETTING:
        return False
    if hasattr(cls, "__attrs_post_init__"):
        return False
    for field in fields:
        default = field.default
        if (
            not field.init
            or field.validator is not None
            or field.converter is not None
            or (isinstance(default, _FACTORY) and default.takes_self)
        ):
            return False
    return True


def _slotted_hook(cls: Any, *, raw_field: str | None) -> Callable[[Any, Any], Any] | None:
    """Generate the structure function of ``cls``, or None if it does not qualify."""
    if not isinstance(cls, type) or getattr(cls, "__parameters__", None):
        return None  # generic: ``Page[Message]`` (an alias) or ``Page`` itself
    fields = attrs.fields(cls)
    if not _plain_init(cls, fields):
        return None
    setters = _slot_setters(cls, [field.name for field in fields])
    if setters is None:
        return None
    hints = get_type_hints(cls)
    namespace: dict[str, Any] = {
        "cls": cls,
        "new": object.__new__,
        "object_of": _object_of,
        "MISSING": _MISSING,
    }
    lines = [
        "def structure(o, _):",
        "    if o.__class__ is not dict:",
        "        o = object_of(o, cls)",
        "    get = o.get",
        "    inst = new(cls)",
    ]
    # Fields with defaults first, as in cattrs' functions: when a payload has several
    # faults, the same one is reported.
    order = sorted(zip(fields, setters, strict=True), key=lambda pair: pair[0].default is _NOTHING)
    for index, (field, setter) in enumerate(order):
        namespace[f"set{index}"] = setter
        if field.name == raw_field:
            lines.append(f"    set{index}(inst, o)")
            continue
        lines.extend(_field_lines(index, field, hints[field.name], namespace))
        lines.append(f"    set{index}(inst, v)")
    lines.append("    return inst")
    source = "\n".join(lines) + "\n"
    filename = f"<chatapi structure {cls.__module__}.{cls.__qualname__}>"
    # Registered in linecache so that tracebacks through the function show its source.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    function: Callable[[Any, Any], Any] = namespace["structure"]
    return function


def _field_lines(
    index: int,
    field: attrs.Attribute[Any],
    tp: Any,
    namespace: dict[str, Any],
) -> list[str]:
    """The statements that leave the value of one field in ``v``."""
    key = repr(field.name)
    default = field.default
    inner = next(arg for arg in get_args(tp) if arg is not type(None)) if (
        _is_optional_type(tp)
    ) else None
    if default is None and (inner is not None or tp is Any):
        # Missing, null and absent-by-default are all None here; only a value needs its hook.
        lines = [f"    v = get({key})"]
        if tp is Any:
            return lines
        namespace[f"hook{index}"] = converter.get_structure_hook(inner)
        namespace[f"type{index}"] = inner
        exact = _EXACT_CLASS.get(inner)
        item = get_args(inner)[0] if get_origin(inner) is list else None
        if exact is not None:
            namespace[f"exact{index}"] = exact
            lines.append(f"    if v is not None and v.__class__ is not exact{index}:")
            lines.append(f"        v = hook{index}(v, type{index})")
        elif item in _PASS_THROUGH_TYPES:
            # A list of strings (a variable selector): copied as the list hook would, which
            # only runs when an item needs converting or the value is no list.
            namespace[f"item{index}"] = item
            lines += [
                "    if v is not None:",
                "        if v.__class__ is list:",
                "            for item in v:",
                f"                if item.__class__ is not item{index}:",
                f"                    v = hook{index}(v, type{index})",
                "                    break",
                "            else:",
                "                v = v[:]",
                "        else:",
                f"            v = hook{index}(v, type{index})",
            ]
        else:
            lines.append("    if v is not None:")
            lines.append(f"        v = hook{index}(v, type{index})")
        return lines
    namespace[f"hook{index}"] = converter.get_structure_hook(tp)
    namespace[f"type{index}"] = tp
    lines = [f"    v = get({key}, MISSING)", "    if v is MISSING:"]
    if default is _NOTHING:
        lines.append(f"        raise KeyError({key})")
    elif isinstance(default, _FACTORY):
        namespace[f"factory{index}"] = default.factory
        lines.append(f"        v = factory{index}()")
    else:
        namespace[f"default{index}"] = default
        lines.append(f"        v = default{index}")
    exact = _EXACT_CLASS.get(tp)
    if exact is not None:
        namespace[f"exact{index}"] = exact
        lines.append(f"    elif v.__class__ is not exact{index}:")
    else:
        lines.append("    else:")
    lines.append(f"        v = hook{index}(v, type{index})")
    return lines


def _attrs_hook_factory(cls: Any) -> Callable[[Any, Any], Any]:
    raw_field = _raw_field(cls)
    generated = _slotted_hook(cls, raw_field=raw_field)
    if generated is not None:
        return generated
    overrides = {raw_field: override(omit=True)} if raw_field is not None else {}
    structure_fields = make_dict_structure_fn(cls, converter, **overrides)  # type: ignore[arg-type]

    def structure_object(value: Any, _: Any) -> Any:
        if value.__class__ is not dict:
            value = _object_of(value, cls)
        instance = structure_fields(value, cls)
        if raw_field is not None:
            # The classes are frozen; ``raw`` is set once, here, right after construction.
            object.__setattr__(instance, raw_field, value)
        return instance

    return structure_object


converter.register_structure_hook_factory(attrs.has, _attrs_hook_factory)


def _dict_hook_factory(tp: Any) -> Callable[[Any, Any], dict[Any, Any]]:
    # Typed mappings (``dict[str, str]``) get cattrs' hook, after the JSON-text rule.
    structure_mapping = make_mapping_structure_fn(tp, converter)

    def structure_dict(value: Any, _: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            value = _from_json_text(value, dict, "an object")
        structured: dict[Any, Any] = structure_mapping(value, tp)
        return structured

    return structure_dict


def _is_dict_type(tp: Any) -> bool:
    return get_origin(tp) is dict


converter.register_structure_hook_factory(_is_dict_type, _dict_hook_factory)


def _structure_dict_any(value: Any, _: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        decoded: dict[str, Any] = _from_json_text(value, dict, "an object")
        return decoded
    return value


converter.register_structure_hook_func(lambda tp: tp == dict[str, Any], _structure_dict_any)

_pause_reason_fields = make_dict_structure_fn(PauseReason, converter)


def _structure_pause_reason(value: Any, _: Any) -> PauseReason:
    if not isinstance(value, dict):
        value = _object_of(value, PauseReason)
    # Dify writes the discriminator of a pause reason as ``TYPE``.
    if "TYPE" in value and "type" not in value:
        value = {**value, "type": value["TYPE"]}
    return _pause_reason_fields(value, PauseReason)


converter.register_structure_hook(PauseReason, _structure_pause_reason)


def structure_hook(cls: type[T]) -> Callable[[Any, Any], T]:
    """The converter's structure function for ``cls`` (for callers on the hot path)."""
    return converter.get_structure_hook(cls)


def json_object(value: Any, *, what: str) -> dict[str, Any]:
    """Check that decoded JSON is an object before its fields are read."""
    if not isinstance(value, dict):
        raise ResponseDecodeError(
            f"expected a JSON object for {what}, got {_json_name(value)}",
            data=orjson.dumps(value),
        )
    return value


# What the hooks raise on JSON of the wrong shape.
SHAPE_ERRORS = (cattrs.BaseValidationError, KeyError, TypeError, ValueError, AttributeError)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _fits(value: Any, tp: Any) -> BaseException | None:
    try:
        converter.structure(value, tp)
    except SHAPE_ERRORS as exc:
        return exc
    return None


def mismatch(value: Any, tp: Any, path: str = "") -> tuple[str, str] | None:
    """Where decoded JSON ``value`` does not fit type ``tp``: the field path (``data.outputs``,
    ``data[2].id``; empty for ``value`` itself) and what was wrong there, or None if it fits.

    Only called once structuring has failed, so it may take its time: it structures each
    field again to find the innermost one that fails.
    """
    error = _fits(value, tp)
    if error is None:
        return None
    if _is_optional_type(tp):
        tp = next(arg for arg in get_args(tp) if arg is not type(None))
    if isinstance(value, str) and (attrs.has(tp) or _is_list_type(tp)):
        # JSON text in place of an object or array: look inside what it holds.
        with contextlib.suppress(orjson.JSONDecodeError):
            value = orjson.loads(value)
    cls = get_origin(tp) or tp
    if attrs.has(cls) and isinstance(value, dict):
        hints = get_type_hints(cls)
        for field in attrs.fields(cls):
            if field.name == _raw_field(cls):
                continue
            if field.name not in value:
                if field.default is _NOTHING:
                    return _join(path, field.name), "required field missing"
                continue
            found = mismatch(value[field.name], hints[field.name], _join(path, field.name))
            if found is not None:
                return found
    elif _is_list_type(tp) and isinstance(value, list):
        (item_type,) = get_args(tp) or (Any,)
        for index, item in enumerate(value):
            found = mismatch(item, item_type, _join(path, index))
            if found is not None:
                return found
    if isinstance(error, KeyError):
        return _join(path, str(error.args[0])), "required field missing"
    reason = str(error)
    if "got" not in reason:  # not one of the hooks' "expected ..., got ..." messages
        reason = f"{reason} (found JSON {_json_name(value)})"
    return path, reason


def shape_error(
    value: Any, tp: Any, *, head: str, data: bytes | str | None = None, path: str = ""
) -> ResponseDecodeError:
    """The ResponseDecodeError for ``value`` that failed to structure as ``tp``.

    The message is ``head``, then the field path and what was found there, then ``data``
    (default: ``value`` re-encoded).
    """
    found = mismatch(value, tp, path) or (path, "does not fit")
    where, reason = found
    return ResponseDecodeError(
        f"{head}: {where or 'the value'}: {reason}",
        data=orjson.dumps(value) if data is None else data,
        path=where or None,
    )


def structure(value: Any, cls: type[T], *, what: str | None = None, path: str = "") -> T:
    """Structure decoded JSON into ``cls``; any mismatch becomes ``ResponseDecodeError``
    naming the field (``path`` prefixes it, for values taken out of a larger body)."""
    if attrs.has(cls):
        json_object(value, what=what or cls.__name__)
    try:
        return converter.structure(value, cls)
    except SHAPE_ERRORS as exc:
        head = f"unexpected shape of {what or cls.__name__}"
        raise shape_error(value, cls, head=head, path=path) from exc


def decode_json(body: bytes, *, what: str) -> Any:
    """Parse a JSON body; a malformed one becomes ``ResponseDecodeError`` with its bytes."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ResponseDecodeError(f"{what} is not valid JSON", data=body) from exc
