"""The JSON of an operation's answer, with parts that are JSON already sent as they are.

Owns: :class:`RawJson` (bytes that are one JSON value, to be placed in an answer unparsed) and
:func:`dumps` (an answer's bytes).
May import: stdlib, ``orjson``.

A stored item is its DynamoDB JSON (see :mod:`dynamokv.api.layout.items`), so a GetItem without
a projection can answer with the stored bytes themselves. Parsing them only to serialise them
again costs two passes over the item and, for a 400 KB item of 200,000 list elements, builds
as many Python objects on the event loop (hundreds of milliseconds, then their garbage). Only
top-level members of the answer may be raw: that is where items sit in GetItem's answer, and it
keeps the splice a concatenation.
"""

from __future__ import annotations

from typing import Any

import orjson


class RawJson:
    """``data`` is exactly one JSON value, trusted (it was serialised by us)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"RawJson({self.data[:60]!r}{'...' if len(self.data) > 60 else ''})"


def dumps(answer: dict[str, Any]) -> bytes:
    """``answer`` as JSON; top-level :class:`RawJson` members are copied, not re-encoded."""
    raw = [name for name, value in answer.items() if type(value) is RawJson]
    if not raw:
        return orjson.dumps(answer)
    rest = orjson.dumps({name: value for name, value in answer.items()
                         if type(value) is not RawJson})
    parts = [rest[:-1]]  # without its closing brace
    comma = len(rest) > 2
    for name in raw:
        parts.append(b"," if comma else b"")
        parts.append(orjson.dumps(name))
        parts.append(b":")
        parts.append(answer[name].data)
        comma = True
    parts.append(b"}")
    return b"".join(parts)
