"""Timings of the replication groups and the leader's lease.

Owns: ``Timings`` (heartbeat, election timeouts, the clock-drift bound) and ``lease_expiry``.
May import: stdlib only.

The lease argument (all times monotonic, each node its own clock): a follower that accepts an
append from the leader at its time ``f`` grants no vote to anyone else before ``f +
election_min_ms`` (leader stickiness, and a restarted node waits ``election_min_ms`` before its
first vote). The leader sent that append at ``s <= f``. So no other leader can exist before
``s + election_min_ms`` of real time, measured by any one clock running at most
``drift_max`` slower or faster than real time. The leader therefore holds a lease until
``s + election_min_ms * (1 - 2 * drift_max) - margin_ms`` on its own clock, counting ``s`` of the
newest append a majority (itself included) acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timings:
    heartbeat_ms: int = 100
    election_min_ms: int = 1_000
    election_max_ms: int = 2_000
    drift_max: float = 0.01  # clocks' rate error bound (1%; NTP-disciplined clocks: ~0.01%)
    margin_ms: int = 20
    entries_per_append_max: int = 256
    bytes_per_append_max: int = 1 << 20
    log_entries_kept: int = 1_000  # compaction keeps this tail for lagging followers
    log_entries_max: int = 4_000  # compact once the log is this long

    @property
    def lease_ms(self) -> int:
        return max(0, int(self.election_min_ms * (1 - 2 * self.drift_max)) - self.margin_ms)


def lease_expiry(sent_ms: list[int], voters: int, timings: Timings) -> int:
    """Lease end from the send times of the newest append each voter acknowledged (the leader
    counts itself as acknowledging now): the majority-th newest, plus the lease."""
    need = voters // 2 + 1
    if len(sent_ms) < need:
        return 0
    return sorted(sent_ms, reverse=True)[need - 1] + timings.lease_ms
