"""The one cattrs converter that turns Dify's JSON into chatapi's attrs models.

Its hooks make decoding as lenient as the API requires and no more:
- a field missing from the JSON takes its default (``None`` for optional fields);
- an extra field is ignored; classes with a ``raw`` attribute get the whole JSON object there;
- ``null`` where a list is expected becomes an empty list (Dify sends both);
- anything else that does not fit raises :class:`~chatapi.errors.ResponseDecodeError`,
  never a bare ``KeyError``/``TypeError``.
"""

from __future__ import annotations

import linecache
import types
from collections.abc import Callable
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_structure_fn, override

from .errors import ResponseDecodeError
from .models import PauseReason

__all__ = ["converter", "decode_json", "json_object", "structure", "structure_hook"]

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


# Types whose hook above hands back a value of exactly that type unchanged.
_PASS_THROUGH_TYPES = (str, int, float, bool)


def _is_list_type(tp: Any) -> bool:
    return get_origin(tp) is list


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
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return [
                item if item.__class__ is item_type else item_hook(item, item_type)
                for item in value
            ]

        return structure_primitive_list

    def structure_list(value: Any, _: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
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


def _not_an_object(value: Any, cls: Any) -> TypeError:
    name = getattr(cls, "__name__", str(cls))
    return TypeError(f"expected an object for {name}, got {type(value).__name__}")


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


def _plain_init(cls: type[Any], fields: tuple[attrs.Attribute[Any], ...]) -> bool:
    """Whether ``__init__`` of ``cls`` only stores its arguments (or defaults) in the fields."""
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
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
        "not_an_object": _not_an_object,
        "MISSING": _MISSING,
    }
    lines = [
        "def structure(o, _):",
        "    if o.__class__ is not dict:",
        "        raise not_an_object(o, cls)",
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
        # Without this check, a list or string where an object belongs would quietly become
        # an empty model (every field has a default).
        if value.__class__ is not dict:
            raise _not_an_object(value, cls)
        instance = structure_fields(value, cls)
        if raw_field is not None:
            # The classes are frozen; ``raw`` is set once, here, right after construction.
            object.__setattr__(instance, raw_field, value)
        return instance

    return structure_object


converter.register_structure_hook_factory(attrs.has, _attrs_hook_factory)


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


def json_object(value: Any, *, what: str) -> dict[str, Any]:
    """Check that decoded JSON is an object before its fields are read."""
    if not isinstance(value, dict):
        raise ResponseDecodeError(
            f"expected a JSON object for {what}, got {type(value).__name__}",
            data=orjson.dumps(value),
        )
    return value


def structure(value: Any, cls: type[T], *, what: str | None = None) -> T:
    """Structure decoded JSON into ``cls``; any mismatch becomes ``ResponseDecodeError``."""
    if attrs.has(cls):
        json_object(value, what=what or cls.__name__)
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
