"""The narrow handle through which the DynamoDB API reaches the cluster.

Owns: ``NodeHandle`` (the protocol the API layer needs from a node), ``ItemKey`` helpers for
building the storage key of an item, and ``Abort`` (raised by a ``cas`` decision to change
nothing).
May import: stdlib, ``dynamokv.core.hashing``, ``dynamokv.core.settings`` (the limits a node
enforces on bucket names and keys: ``MAX_BUCKET_BYTES``, ``MAX_KEY_BYTES``).

Implementations: ``dynamokv.api.request_handle.RequestHandle`` over a node's local requests
(item writes, ``cas`` and consistent reads through the partitions' replicated logs) --
bound to a real node as ``dynamokv.runtime.handle.ClusterHandle``, to a simulated one by
``dynamokv.simapi.requester.SimRequester`` -- and ``dynamokv.api.local_handle`` (one process,
one copy: the reference model the API's unit tests run against).

Storage keys of items. A table's items live in bucket ``table_bucket(table_id)``; an item's key
is ``compose_key(hash_part, sort_part)`` where both parts are the order-preserving encodings of
the key attributes (``dynamokv.api.layout.keycodec``). Buckets of tables place keys on the ring by
the hash part alone (``dynamokv.core.hashing``), so every item of one partition key lives on the
same replicas, stored contiguously in sort-key order: a Query is a range read on one replica set.

Values are opaque bytes to the handle (the API serialises items itself). Every write of a table
partition is ordered by that partition's replicated log (``docs/replicated-logs.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dynamokv.core.hashing import TABLE_BUCKET_PREFIX, compose_key, split_key
from dynamokv.core.settings import Limits

# What a node accepts. The API keeps every bucket name and storage key it makes within them
# (an index bucket's name is shortened; user key attributes are size-checked first), so a
# write the API has accepted is never refused by the node underneath.
MAX_BUCKET_BYTES = Limits().bucket_name_bytes_max
MAX_KEY_BYTES = Limits().key_bytes_max

__all__ = [
    "MAX_BUCKET_BYTES",
    "MAX_KEY_BYTES",
    "TABLE_BUCKET_PREFIX",
    "Abort",
    "NodeHandle",
    "Page",
    "WriteRefused",
    "compose_key",
    "split_key",
    "table_bucket",
]


def table_bucket(table_id: str) -> str:
    """The bucket holding a table's items (``table_id`` is unique per table incarnation, so a
    table deleted and created again never sees its predecessor's items)."""
    return TABLE_BUCKET_PREFIX + table_id


class WriteRefused(Exception):
    """A ``write`` with ``refuse_prefix`` found the item's value starting with it (an item a
    transaction holds): nothing was written. ``current`` is that value."""

    def __init__(self, current: bytes | None) -> None:
        super().__init__("the item holds a refused value")
        self.current = current


class Abort(Exception):
    """Raised inside a ``cas`` decision to leave the item unchanged; ``cas`` re-raises it.

    Subclass it (or pass a payload) for ConditionalCheckFailed and the like.
    """


@dataclass(frozen=True, slots=True)
class Page:
    items: list[tuple[bytes, bytes]]  # (storage key, value), in key order (reversed if asked)
    last_key: bytes | None  # where the next page starts (exclusive); None when exhausted


Decide = Callable[[bytes | None], bytes | None]


class NodeHandle(Protocol):
    async def read(self, bucket: str, key: bytes, *, consistent: bool = False) -> bytes | None:
        """The item's value, or ``None``. ``consistent``: linearizable (sees every write
        acknowledged before the read began); otherwise the fast eventually consistent path."""
        ...

    async def write(self, bucket: str, key: bytes, value: bytes | None, *,
                    refuse_prefix: bytes = b"") -> None:
        """Unconditional put (``None`` deletes), sequenced by the partition's log and
        acknowledged once a majority has it. With ``refuse_prefix``, raise ``WriteRefused`` (and
        write nothing) if the latest value starts with it."""
        ...

    async def cas(
        self, bucket: str, key: bytes, decide: Decide
    ) -> tuple[bytes | None, bytes | None]:
        """Linearizable read-modify-write of one item: ``decide(current)`` returns the new
        value (``None`` deletes) or raises ``Abort`` to change nothing (re-raised here).
        Returns ``(old, new)``. Two racing ``cas`` calls on one key never both apply on the
        same old value (the partition's leader sequences them in its log)."""
        ...

    async def query(
        self,
        bucket: str,
        hash_part: bytes,
        start: bytes | None,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int = 1000,
        consistent: bool = False,
    ) -> Page:
        """Items of one partition key with ``start <= sort_part < end`` (``None``: unbounded;
        both are sort parts, not whole keys), at most ``limit``, in sort order."""
        ...

    async def scan(
        self, bucket: str, segment: int, total_segments: int, after: bytes | None, limit: int,
        *, consistent: bool = False,
    ) -> Page:
        """Items of ``segment`` of ``total_segments`` (a split of the ring's partitions),
        after storage key ``after``, at most ``limit``; ``consistent``: every write
        acknowledged before the scan reached a partition is in it (its leader answers)."""
        ...

    async def drop_bucket(self, bucket: str) -> None:
        """Delete every item of ``bucket`` (DeleteTable), in the background if large."""
        ...

    def segment_of(self, bucket: str, key: bytes, total_segments: int) -> int:
        """Which of ``total_segments`` scan segments ``key`` falls in (a parallel Scan's
        ExclusiveStartKey is checked against it)."""
        ...
