"""How items are stored: the bytes a ``NodeHandle`` keeps for one DynamoDB item.

Owns: :func:`encode_item` / :func:`decode_item` (typed item <-> stored bytes),
:func:`stored_wire` (stored bytes -> DynamoDB JSON without building typed values) and the
stored form of an item that a transaction has prepared (:class:`Intent`, :func:`encode_intent`,
:func:`decode_intent`, :func:`committed_value`).
May import: stdlib, ``orjson``, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.numbers`.

The stored form is the item's DynamoDB JSON (``{"name": {"S": "x"}, ...}``) serialised by
orjson: compact, fast to produce and parse, and already the shape responses need, so a GetItem
without a projection can send the stored value almost as is. Stored values were validated when
written, so :func:`decode_item` rebuilds typed values without the wire checks (numbers are only
normalised, which keeps ``Decimal`` hashing and sizes canonical).

Transaction intents. While a TransactWriteItems holds an item (between its prepare and its
commit or rollback, see :mod:`dynamokv.api.transactions.coordinator`), the stored bytes are an
*intent*: the committed value plus the transaction's id, the key of its record in ``~txn``, its
creation time and what it will leave if it commits. An intent starts with the byte ``00`` (a
plain item starts with ``{``), so telling the two apart is one byte comparison
(``data[:1] == INTENT_MARK``) and the path of items no transaction touches stays as it was.
:func:`decode_item` and :func:`stored_wire` of an intent give its committed value (``{}`` when
the item does not exist yet: callers that care resolve intents first, see
:mod:`dynamokv.api.transactions.intents`).

Layout of an intent: ``00``, a version byte, a 4-byte header length, the header (orjson:
``t`` transaction id, ``r`` record name, ``c`` creation time, ``k`` kind), a 4-byte length of
the committed value (``ffffffff``: none) and the committed value, then the new value (kind
``P`` only). Kinds: ``P`` write the new value, ``D`` delete, ``C`` leave the committed value
(a ConditionCheck, or an update that changes nothing).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
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
    PreparedItem,
    S,
    item_to_wire,
)
from dynamokv.api.numbers import check_number

_NULL = NULL()
_TRUE = BOOL(True)
_FALSE = BOOL(False)


def encode_item(item: Item) -> bytes:
    """The stored bytes of a (validated) item."""
    if type(item) is PreparedItem and item.encoded is not None:
        return item.encoded  # encoded ahead of time, off the event loop (api/bodies.py)
    return orjson.dumps(item_to_wire(item))


def stored_wire(data: bytes) -> dict[str, Any]:
    """The DynamoDB JSON of a stored item (of its committed value if it carries an intent)."""
    if data[:1] == INTENT_MARK:
        committed = committed_value(data)
        return {} if committed is None else stored_wire(committed)
    wire: dict[str, Any] = orjson.loads(data)
    return wire


def decode_item(data: bytes) -> Item:
    """The typed item of stored bytes (trusted: written by :func:`encode_item`); of its
    committed value if it carries an intent."""
    if data[:1] == INTENT_MARK:
        committed = committed_value(data)
        return {} if committed is None else decode_item(committed)
    return {name: _value(raw) for name, raw in orjson.loads(data).items()}


# ------------------------------------------------------------------------------ intents

INTENT_MARK = b"\x00"
_VERSION = b"\x01"
_NONE = b"\xff\xff\xff\xff"
WRITE, DELETE, KEEP = "P", "D", "C"


@dataclass(frozen=True, slots=True)
class Intent:
    """An item held by a transaction: its committed value and what the transaction leaves."""

    txn: str  # the transaction's id
    record: str  # name of the transaction's record in the ``~txn`` bucket
    created: float  # when the transaction started (wall clock, seconds)
    kind: str  # WRITE, DELETE or KEEP
    committed: bytes | None  # the item as committed (None: no item)
    new: bytes | None = None  # the item the transaction writes (WRITE only)

    @property
    def after(self) -> bytes | None:
        """The item once the transaction has committed (None: no item)."""
        if self.kind == WRITE:
            return self.new
        if self.kind == DELETE:
            return None
        return self.committed


def has_intent(data: bytes | None) -> bool:
    return data is not None and data[:1] == INTENT_MARK


def encode_intent(intent: Intent) -> bytes:
    header = orjson.dumps(
        {"t": intent.txn, "r": intent.record, "c": intent.created, "k": intent.kind}
    )
    parts = [INTENT_MARK, _VERSION, len(header).to_bytes(4, "big"), header]
    if intent.committed is None:
        parts.append(_NONE)
    else:
        parts += [len(intent.committed).to_bytes(4, "big"), intent.committed]
    if intent.kind == WRITE:
        assert intent.new is not None
        parts.append(intent.new)
    return b"".join(parts)


def _committed_span(data: bytes) -> tuple[int, int, int]:
    """(end of header, start of committed, end of committed; -1 when there is none)."""
    header_end = 6 + int.from_bytes(data[2:6], "big")
    size = data[header_end : header_end + 4]
    if size == _NONE:
        return header_end, header_end + 4, -1
    start = header_end + 4
    return header_end, start, start + int.from_bytes(size, "big")


def decode_intent(data: bytes) -> Intent:
    if data[:1] != INTENT_MARK or data[1:2] != _VERSION:
        raise ValueError("not a stored transaction intent")
    header_end, start, end = _committed_span(data)
    header = orjson.loads(data[6:header_end])
    committed = None if end < 0 else data[start:end]
    kind = header["k"]
    new = data[(start if end < 0 else end):] if kind == WRITE else None
    return Intent(header["t"], header["r"], header["c"], kind, committed, new)


def committed_value(data: bytes) -> bytes | None:
    """The committed value of stored bytes, intent or not (None: no item)."""
    if data[:1] != INTENT_MARK:
        return data
    _, start, end = _committed_span(data)
    return None if end < 0 else data[start:end]


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
