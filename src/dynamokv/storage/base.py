"""The storage engine interface every engine implements.

Owns: ``StorageEngine`` (a Protocol over ordered bytes → bytes maps) and ``EngineInfo``.
May import: stdlib, ``dynamokv.errors``.

Keys and values are bytes; keys sort bytewise (memcmp order), which is what makes a range scan of
one partition, or of one DynamoDB partition key, a contiguous read. Every method raises
``dynamokv.errors.StorageError`` (never an engine-specific exception) on failure, with a message
that says what to do (e.g. "disk full: free space under DIR").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class EngineInfo:
    name: str  # "memory" | "lmdb" | "sqlite"
    durable: bool  # survives a process kill (kill -9)
    sync_mode: str  # what a successful write guarantees, in words, e.g. "fsync per batch"


class StorageEngine(Protocol):
    info: EngineInfo

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None:
        """Remove ``key``; no error when absent."""
        ...

    def write_batch(self, ops: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Apply puts (value bytes) and deletes (value ``None``) atomically, in order."""
        ...

    def scan(
        self,
        start: bytes = b"",
        end: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs with ``start <= key < end`` (``end=None``: no upper bound) in key order,
        descending when ``reverse``; at most ``limit`` pairs. The iterator sees a consistent
        snapshot or at least never fails because of concurrent writes."""
        ...

    def is_empty(self) -> bool: ...

    def sync(self) -> None:
        """Force everything written so far to stable storage."""
        ...

    def close(self) -> None:
        """Release files and handles; idempotent."""
        ...
