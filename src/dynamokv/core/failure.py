"""Failure detection: which peers to send to right now.

Owns: ``FailureDetector`` — a phi-accrual detector over heartbeat arrivals (Hayashibara et al.,
as Cassandra's, with its exponential approximation) plus a fast path for hard failures.
May import: stdlib only.

Two signals, both local (the Dynamo paper, 4.8.3: no global view is needed):

- *Hard failures*: the driver reports a refused, reset or closed connection
  (``PeerUnreachable``). The peer is suspected at once: a ``kill -9`` closes its sockets, and
  there is no point waiting for a statistic to notice.
- *Silence*: every message from a peer is a heartbeat (nodes ping each other every
  ``heartbeat_interval_ms``). ``phi`` grows with the time since the last one, relative to the
  mean interval seen so far; above ``phi_threshold`` the peer is suspected. This catches paused
  processes and one-way partitions that keep connections open.

Any message from a suspected peer clears the suspicion. Suspected peers are skipped by
coordinators (they count as failed replies at once) and probed every ``probe_interval_ms``.
"""

from __future__ import annotations

import math
from collections import deque

_LOG10_E = math.log10(math.e)
INTERVALS_KEPT = 100


class _History:
    __slots__ = ("intervals", "last_ms", "total")

    def __init__(self, now_ms: int) -> None:
        self.last_ms = now_ms
        self.intervals: deque[int] = deque(maxlen=INTERVALS_KEPT)
        self.total = 0

    def add(self, now_ms: int) -> None:
        interval = now_ms - self.last_ms
        self.last_ms = now_ms
        if interval <= 0:
            return
        if len(self.intervals) == self.intervals.maxlen:
            self.total -= self.intervals[0]
        self.intervals.append(interval)
        self.total += interval

    def mean_ms(self, floor_ms: int) -> float:
        if not self.intervals:
            return float(floor_ms)
        return max(self.total / len(self.intervals), float(floor_ms))


class FailureDetector:
    def __init__(self, probe_interval_ms: int, *, phi_threshold: float = 8.0,
                 heartbeat_interval_ms: int = 500) -> None:
        self.probe_interval_ms = probe_interval_ms
        self.phi_threshold = phi_threshold
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._history: dict[str, _History] = {}
        self._down_since: dict[str, int] = {}
        self._last_probe: dict[str, int] = {}

    # ---- inputs ------------------------------------------------------------------------------
    def heard_from(self, node: str, now_ms: int | None = None) -> bool:
        """``node`` sent us something. Returns True when that ends a suspicion."""
        if now_ms is not None:
            history = self._history.get(node)
            if history is None:
                self._history[node] = _History(now_ms)
            else:
                history.add(now_ms)
        self._last_probe.pop(node, None)
        return self._down_since.pop(node, None) is not None

    def unreachable(self, node: str, now_ms: int) -> bool:
        """Delivery to ``node`` failed. Returns True when this starts a suspicion."""
        if node in self._down_since:
            return False
        self._down_since[node] = now_ms
        self._last_probe[node] = now_ms
        return True

    def check(self, nodes: list[str], now_ms: int) -> list[str]:
        """Suspect every node in ``nodes`` whose phi passed the threshold; those newly suspected."""
        newly = []
        for node in nodes:
            if node not in self._history:
                # Never heard from it yet: its silence counts from now, so a peer that went
                # quiet before we started is suspected like any other.
                self._history[node] = _History(now_ms)
                continue
            if node not in self._down_since and self.phi(node, now_ms) > self.phi_threshold:
                self._down_since[node] = now_ms
                self._last_probe[node] = now_ms
                newly.append(node)
        return newly

    # ---- queries -----------------------------------------------------------------------------
    def phi(self, node: str, now_ms: int) -> float:
        """Suspicion level: how unlikely the current silence is (0 when never heard of)."""
        history = self._history.get(node)
        if history is None:
            return 0.0
        mean = history.mean_ms(self.heartbeat_interval_ms)
        return max(now_ms - history.last_ms, 0) / mean * _LOG10_E

    def is_up(self, node: str) -> bool:
        return node not in self._down_since

    def down(self) -> dict[str, int]:
        """Suspected nodes and since when (monotonic ms)."""
        return dict(self._down_since)

    def due_probes(self, now_ms: int) -> list[str]:
        """Suspected peers whose probe is due; marks them probed."""
        due = [
            n
            for n in sorted(self._down_since)
            if now_ms - self._last_probe.get(n, 0) >= self.probe_interval_ms
        ]
        for n in due:
            self._last_probe[n] = now_ms
        return due

    def forget(self, node: str) -> None:
        self._down_since.pop(node, None)
        self._last_probe.pop(node, None)
        self._history.pop(node, None)
