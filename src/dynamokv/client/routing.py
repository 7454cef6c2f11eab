"""Which node a client sends each request to (the paper's two coordination modes, 4.5).

Owns: ``Router`` — server-driven (any node, round robin with failover) and partition-aware
(client-driven: a replica of the key, from a ring fetched from the cluster and refreshed
periodically and whenever a reply shows a newer ring version). Pure: time comes in as ``now_s``.
May import: ``dynamokv.core.ring``.
"""

from __future__ import annotations

from typing import Any

from dynamokv.core.ring import Ring

ROUTING_MODES = ("server", "partition")
DOWN_BACKOFF_S = 2.0


class Router:
    def __init__(self, nodes: list[str], mode: str, ring_refresh_s: float) -> None:
        if mode not in ROUTING_MODES:
            from dynamokv.errors import ConfigError

            raise ConfigError(f"routing must be one of {', '.join(ROUTING_MODES)}, not {mode!r}")
        self.seeds = list(dict.fromkeys(nodes))
        self.mode = mode
        self.ring_refresh_s = ring_refresh_s
        self.ring: Ring | None = None
        self.defaults: dict[str, Any] = {}
        self.ring_fetched_s = float("-inf")
        self._down_until: dict[str, float] = {}
        self._turn = 0

    # ---- ring ----------------------------------------------------------------------------------
    def set_ring(self, ring: Ring, defaults: dict[str, Any], now_s: float) -> None:
        self.ring = ring
        self.defaults = defaults
        self.ring_fetched_s = now_s

    def needs_ring(self, now_s: float, seen_version: int = 0) -> bool:
        if self.mode != "partition":
            return False
        if self.ring is None or now_s - self.ring_fetched_s >= self.ring_refresh_s:
            return True
        return seen_version > self.ring.version

    # ---- health --------------------------------------------------------------------------------
    def mark_down(self, address: str, now_s: float) -> None:
        self._down_until[address] = now_s + DOWN_BACKOFF_S

    def mark_up(self, address: str) -> None:
        self._down_until.pop(address, None)

    def _healthy_first(self, addresses: list[str], now_s: float) -> list[str]:
        up = [a for a in addresses if self._down_until.get(a, 0.0) <= now_s]
        down = [a for a in addresses if self._down_until.get(a, 0.0) > now_s]
        return up + down

    # ---- choosing ------------------------------------------------------------------------------
    def all_nodes(self) -> list[str]:
        known = list(self.seeds)
        if self.ring is not None:
            known += [m.address for m in self.ring.members if m.address not in known]
        return known

    def any_node(self, now_s: float) -> list[str]:
        """Every known node, starting at the next in round-robin order, healthy ones first."""
        nodes = self.all_nodes()
        self._turn = (self._turn + 1) % max(len(nodes), 1)
        rotated = nodes[self._turn:] + nodes[: self._turn]
        return self._healthy_first(rotated, now_s)

    def for_key(self, bucket: str, key: bytes, now_s: float) -> list[str]:
        """Nodes to try for a request on ``key``, best first."""
        ring = self.ring
        if self.mode != "partition" or ring is None:
            return self.any_node(now_s)
        n = int(self.bucket_n(bucket))
        replicas = ring.preference_list(ring.partition_for(bucket, key), n)
        addresses = [a for a in (ring.address_of(r) for r in replicas) if a]
        rest = [a for a in self.all_nodes() if a not in addresses]
        return self._healthy_first(addresses, now_s) + self._healthy_first(rest, now_s)

    def bucket_n(self, bucket: str) -> int:
        buckets = self.defaults.get("buckets", {})
        props = buckets.get(bucket, {}) if isinstance(buckets, dict) else {}
        return int(props.get("n", self.defaults.get("n", 3)))
