"""Byte bounds for batches of objects: how many leading rows fit in a message of N bytes.

Owns: ``object_wire_bytes`` (an upper bound of what a ``KeyObject`` takes on the wire) and
``fit_by_bytes`` (the leading rows that fit a byte budget).
May import: ``dynamokv.core.versioned``.

Hint batches, handoff batches and range/scan replies were bounded by item count only, and one
count does not fit every item size: 1,000 items of 5 KB (5 MB) overflow a 4 MiB frame, 100
hints of 400 KB (40 MB) a 16 MiB send queue. Each batch is now cut at a byte budget as well,
well under the frame limit. An item larger than the budget still goes, alone in its batch, so
a large item slows a stream down but never blocks it.

The estimate is an upper bound of the msgpack encoding (every length and integer counted at
its widest form) so the core, which must not import the codec, never undercounts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from dynamokv.core.versioned import VersionedObject

T = TypeVar("T")

_HEAD = 5  # a msgpack array, str or bin header at its widest
_INT = 9  # a msgpack integer at its widest


def object_wire_bytes(bucket: str, key: bytes, obj: VersionedObject | None) -> int:
    """An upper bound of the encoded size of ``KeyObject(bucket, key, obj)``."""
    size = 3 * _HEAD + len(bucket.encode()) + len(key)
    if obj is None:
        return size + 1
    for s in obj.siblings:
        size += 2 * _HEAD + 3 * _INT + len(s.dot.actor.encode())
        size += _HEAD + (len(s.value) if s.value is not None else 0)
        for actor, _counter, _ts in s.context.entries:
            size += 2 * _HEAD + 2 * _INT + len(actor.encode())
    return size


def fit_by_bytes(rows: Sequence[T], bytes_max: int, size_of: Callable[[T], int]) -> int:
    """How many leading ``rows`` fit in ``bytes_max`` bytes; at least 1 when there are rows.

    The first row always counts, however large: a batch holding one oversized item is how that
    item travels (or is refused with an error by the receiver) instead of never moving.
    """
    total = 0
    for i, row in enumerate(rows):
        total += size_of(row)
        if total > bytes_max and i > 0:
            return i
    return len(rows)
