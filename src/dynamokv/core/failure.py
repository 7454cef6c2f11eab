"""Failure detection from request outcomes: which peers to send to right now.

Owns: ``FailureDetector``.
May import: stdlib only.

The Dynamo paper's detector is purely local: a peer is suspected when it does not answer and is
probed again later (section 4.8.3). The driver reports undeliverable messages and closed
connections (``PeerUnreachable``); any message received from a peer clears the suspicion.
Suspected peers are skipped by coordinators (they count as failed replies at once instead of
stalling a request until its deadline) and probed every ``probe_interval_ms``.
"""

from __future__ import annotations


class FailureDetector:
    def __init__(self, probe_interval_ms: int) -> None:
        self.probe_interval_ms = probe_interval_ms
        self._down_since: dict[str, int] = {}
        self._last_probe: dict[str, int] = {}

    def heard_from(self, node: str) -> bool:
        """``node`` sent us something. Returns True when that ends a suspicion."""
        self._last_probe.pop(node, None)
        return self._down_since.pop(node, None) is not None

    def unreachable(self, node: str, now_ms: int) -> bool:
        """Delivery to ``node`` failed. Returns True when this starts a suspicion."""
        if node in self._down_since:
            return False
        self._down_since[node] = now_ms
        self._last_probe[node] = now_ms
        return True

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
