"""Deadline bookkeeping for in-flight requests (aioquic's ``get_timer`` pattern).

Owns: ``Deadlines``: a heap of ``(at_ms, key)`` with lazy cancellation.
May import: stdlib only.
"""

from __future__ import annotations

import heapq


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int]] = []  # (at_ms, seq, key)
        self._live: dict[int, int] = {}  # key -> at_ms
        self._seq = 0

    def __len__(self) -> int:
        return len(self._live)

    def set(self, key: int, at_ms: int) -> None:
        self._seq += 1
        self._live[key] = at_ms
        heapq.heappush(self._heap, (at_ms, self._seq, key))

    def at(self, key: int) -> int | None:
        """When ``key`` is due (``None`` if it is not set)."""
        return self._live.get(key)

    def cancel(self, key: int) -> None:
        self._live.pop(key, None)

    def next(self) -> int | None:
        heap = self._heap
        while heap:
            at, _, key = heap[0]
            if self._live.get(key) == at:
                return at
            heapq.heappop(heap)
        return None

    def pop_due(self, now_ms: int) -> list[int]:
        """Keys whose deadline is at or before ``now_ms``, earliest first."""
        due: list[int] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            at, _, key = heapq.heappop(heap)
            if self._live.get(key) == at:
                del self._live[key]
                due.append(key)
        return due
