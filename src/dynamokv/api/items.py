"""How items are stored: the bytes a ``NodeHandle`` keeps for one DynamoDB item.

Owns: :func:`encode_item` / :func:`decode_item` (typed item <-> stored bytes) and
:func:`stored_wire` (stored bytes -> DynamoDB JSON without building typed values).
May import: stdlib, ``orjson``, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.numbers`.

The stored form is the item's DynamoDB JSON (``{"name": {"S": "x"}, ...}``) serialised by
orjson: compact, fast to produce and parse, and already the shape responses need, so a GetItem
without a projection can send the stored value almost as is. Stored values were validated when
written, so :func:`decode_item` rebuilds typed values without the wire checks (numbers are only
normalised, which keeps ``Decimal`` hashing and sizes canonical).
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import orjson

from dynamokv.api.attributes import (
    BOOL,
    BS,
    NS,
    NULL,
    SS,
    AttributeValue,
    B,
    Item,
    L,
    M,
    N,
    S,
    item_to_wire,
)
from dynamokv.api.numbers import check_number

_NULL = NULL()
_TRUE = BOOL(True)
_FALSE = BOOL(False)


def encode_item(item: Item) -> bytes:
    """The stored bytes of a (validated) item."""
    return orjson.dumps(item_to_wire(item))


def stored_wire(data: bytes) -> dict[str, Any]:
    """The DynamoDB JSON of a stored item."""
    wire: dict[str, Any] = orjson.loads(data)
    return wire


def decode_item(data: bytes) -> Item:
    """The typed item of stored bytes (trusted: written by :func:`encode_item`)."""
    return {name: _value(raw) for name, raw in orjson.loads(data).items()}


def _value(raw: dict[str, Any]) -> AttributeValue:
    # One key per wire value; dict iteration is the cheapest way to get it.
    for kind, inner in raw.items():
        if kind == "S":
            return S(inner)
        if kind == "N":
            return N(check_number(Decimal(inner)))
        if kind == "M":
            return M({k: _value(v) for k, v in inner.items()})
        if kind == "L":
            return L(tuple(_value(v) for v in inner))
        if kind == "BOOL":
            return _TRUE if inner else _FALSE
        if kind == "NULL":
            return _NULL
        if kind == "B":
            return B(base64.b64decode(inner))
        if kind == "SS":
            return SS(frozenset(inner))
        if kind == "NS":
            return NS(frozenset(check_number(Decimal(v)) for v in inner))
        if kind == "BS":
            return BS(frozenset(base64.b64decode(v) for v in inner))
    raise ValueError(f"corrupt stored attribute value: {raw!r}")
