"""JSON bytes straight into attrs classes with msgspec: the stream events' fast path.

The converter path (:mod:`chatapi._convert`) parses a payload into dicts with orjson and then
builds the attrs instance field by field in Python; for a small stream event that second step
costs about twice the parse. msgspec's decoder reads the bytes directly into the attrs class
(nested classes included) in C, for less than orjson alone takes to build the dict.

msgspec is stricter than the converter: it refuses a number where a string belongs, ``null``
for a list, ``1.0`` for an integer, numeric strings, invalid UTF-8. Those are exactly the
payloads where the converter's leniency matters, so the rule is simple: the fast path answers
only when msgspec accepts the payload as it is, and then both paths give the same object;
anything msgspec refuses goes to the converter, which applies its leniency or raises its
:class:`~chatapi.errors.ResponseDecodeError`. A class is decoded with msgspec only when every
class it contains would be built by the converter's plain generated function (no validators,
converters, post-init hooks or custom hooks such as the ``TYPE`` alias of a pause reason),
which is what makes "accepted by msgspec" mean "the same result as the converter's".

``raw`` (the whole JSON object of an event) is not built on this path: the event keeps the
bytes it came from, and its ``raw`` property parses them the first time it is read.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin, get_type_hints

import attrs
import msgspec

from ._convert import structure_hook

__all__ = ["fast_decoder"]

# Types msgspec and the converter read alike when the JSON value already has the right type.
_SCALARS: tuple[Any, ...] = (str, int, float, bool, Any, dict[str, Any])


def _generated_by_converter(cls: type[Any]) -> bool:
    hook = structure_hook(cls)
    code = getattr(hook, "__code__", None)
    return code is not None and code.co_filename.startswith("<chatapi structure")


def _compatible(tp: Any, *, top: bool = False) -> bool:
    """Whether msgspec decodes ``tp`` as the converter does whenever msgspec accepts it."""
    if tp in _SCALARS:
        return True
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        return len(args) == 2 and type(None) in args and all(
            _compatible(arg) for arg in args if arg is not type(None)
        )
    if origin is list:
        return _compatible(get_args(tp)[0])
    if origin is dict:
        key, value = get_args(tp)
        return key is str and _compatible(value)
    if isinstance(tp, type) and attrs.has(tp):
        if not _generated_by_converter(tp):
            return False
        hints = get_type_hints(tp)
        for field in attrs.fields(tp):
            if field.name == "_raw":
                # The converter puts the whole object there; msgspec would not. Events (the
                # top level) get their bytes kept instead.
                if not top:
                    return False
                continue
            if field.alias != field.name:
                return False
            if not _compatible(hints[field.name]):
                return False
        return True
    return False


def fast_decoder(cls: type[Any]) -> Callable[[bytes], Any] | None:
    """msgspec's ``decode`` for ``cls``, or None if ``cls`` must go through the converter."""
    if not _compatible(cls, top=True):
        return None
    return msgspec.json.Decoder(cls).decode
