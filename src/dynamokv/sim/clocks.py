"""Simulated clocks: one virtual monotonic time, and a skewed wall clock per node.

Owns: ``SimClocks`` (per-node wall-clock offsets; TigerBeetle's ``TimeSim``).
May import: stdlib only.

The core keeps the two times apart (ARCHITECTURE R2): ``now_ms`` drives deadlines and is the
same virtual time on every node, while ``wall_ms`` only stamps versions (for vclock pruning and
last-writer-wins; table writes are ordered by partition logs, not clocks) and is where real
clusters disagree. Each node gets an offset drawn once when the node is added (``skew``), and
``jump`` moves it later, forward or backward, as NTP stepping a clock or an operator setting
the date does; monotonic time never jumps.
"""

from __future__ import annotations

import random

WALL_EPOCH_MS = 1_700_000_000_000
"""Virtual time 0 on an unskewed wall clock: a plausible date, so timestamps look real."""


class SimClocks:
    def __init__(self, rng: random.Random, skew_ms_max: int) -> None:
        self._rng = rng
        self._skew_ms_max = skew_ms_max
        self._offset_ms: dict[str, int] = {}

    def add_node(self, node_id: str) -> int:
        """Draw ``node_id``'s wall-clock offset (kept across restarts, as a host's clock is)."""
        m = self._skew_ms_max
        offset = self._rng.randint(-m, m) if m else 0
        self._offset_ms[node_id] = offset
        return offset

    def jump(self, node_id: str, delta_ms: int) -> int:
        """Step ``node_id``'s wall clock by ``delta_ms`` (either sign); the new offset."""
        offset = self._offset_ms.get(node_id, 0) + delta_ms
        self._offset_ms[node_id] = offset
        return offset

    def offset_ms(self, node_id: str) -> int:
        return self._offset_ms.get(node_id, 0)

    def wall_ms(self, node_id: str, now_ms: int) -> int:
        return WALL_EPOCH_MS + now_ms + self._offset_ms.get(node_id, 0)
