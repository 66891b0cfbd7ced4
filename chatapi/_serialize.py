"""``to_dict()`` and ``to_json()`` for every event and model: one implementation, a mixin.

The dict holds the typed fields under their names (Dify's wire names), nested models as
dicts, and leaves out ``raw``: the decoded JSON as the server sent it is already there, and
repeating it at every level would double the size. ``raw`` is the place to look for fields
this version of chatapi does not know.

The unstructuring goes through the one cattrs converter of :mod:`chatapi._convert`, which is
imported on first use: ``_convert`` imports the models, which import this module.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import attrs
import orjson

__all__ = ["Serializable"]


class Serializable:
    """Base of chatapi's attrs classes: ``to_dict()`` and ``to_json()``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON-compatible values, nested models included, without ``raw``.

        Giving the dict back to the type (through Dify's decoding rules) yields an equal object.
        """
        result: dict[str, Any] = _converter().unstructure(self)
        if "event" in result:
            # attrs puts a field a subclass redefines last; the event name reads best first.
            return {"event": result.pop("event"), **result}
        return result

    def to_json(self, *, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text; ``indent`` pretty-prints it."""
        data = self.to_dict()
        if indent is None:
            return orjson.dumps(data).decode()
        return json.dumps(data, indent=indent, ensure_ascii=False)


# The attribute holding the JSON as received: ``raw``, or ``_raw`` behind a ``raw`` property.
_RAW_NAMES = ("raw", "_raw")


def _has_raw(cls: Any) -> bool:
    return attrs.has(cls) and any(name in attrs.fields_dict(cls) for name in _RAW_NAMES)


@functools.cache
def _converter() -> Any:
    from cattrs.gen import make_dict_unstructure_fn, override

    from ._convert import converter

    def without_raw(cls: Any) -> Any:
        fields = attrs.fields_dict(cls)
        omitted: dict[str, Any] = {
            name: override(omit=True) for name in _RAW_NAMES if name in fields
        }
        return make_dict_unstructure_fn(cls, converter, **omitted)

    converter.register_unstructure_hook_factory(_has_raw, without_raw)
    return converter
