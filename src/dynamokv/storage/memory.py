"""The in-memory storage engine: a sorted map, for tests, the simulator and throwaway nodes.

Owns: ``MemoryEngine``.
May import: stdlib, ``sortedcontainers``, ``dynamokv.storage``, ``dynamokv.errors``.

Not durable: everything is lost when the process exits. Keys are kept in a ``SortedDict`` so a
range scan is a bisection plus a walk, in either direction.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator

from sortedcontainers import SortedDict  # type: ignore[import-untyped]

from dynamokv.errors import StorageError
from dynamokv.storage._scan import check_scan_args, chunked_scan
from dynamokv.storage.base import EngineInfo


class MemoryEngine:
    """A ``StorageEngine`` over a sorted in-memory map. Thread-safe; not durable."""

    info = EngineInfo(
        name="memory",
        durable=False,
        sync_mode="none: data lives in process memory and is lost when the process exits",
    )

    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()
        # The simulator is single-threaded, but a node may hand the engine to a worker thread;
        # a SortedDict mutated during a bisection can answer wrongly, so every access is locked.
        self._lock = threading.Lock()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("memory engine is closed: open a new one")

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            self._check_open()
            value: bytes | None = self._data.get(key)
            return value

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            self._check_open()
            self._data[key] = value

    def delete(self, key: bytes) -> None:
        with self._lock:
            self._check_open()
            self._data.pop(key, None)

    def write_batch(self, ops: Iterable[tuple[bytes, bytes | None]]) -> None:
        # Materialise first: if the caller's iterable fails half-way, nothing has been applied.
        batch = list(ops)
        with self._lock:
            self._check_open()
            for key, value in batch:
                if value is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = value

    def scan(
        self,
        start: bytes = b"",
        end: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            self._check_open()
        if not check_scan_args(start, end, limit):
            return iter(())
        return chunked_scan(self._fetch, start, end, reverse, limit)

    def _fetch(
        self, start: bytes, end: bytes | None, reverse: bool, n: int
    ) -> list[tuple[bytes, bytes]]:
        with self._lock:
            self._check_open()
            keys = self._data.irange(start, end, inclusive=(True, False), reverse=reverse)
            return [(k, self._data[k]) for k in itertools.islice(keys, n)]

    def is_empty(self) -> bool:
        with self._lock:
            self._check_open()
            return len(self._data) == 0

    def sync(self) -> None:
        with self._lock:
            self._check_open()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._data = SortedDict()

    def __len__(self) -> int:
        return len(self._data)
