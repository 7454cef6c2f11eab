"""The ring: Q equal partitions, each owned by one node, and the members' states.

Owns: ``Ring`` (immutable), ``Member``, ``MemberStatus``, ``reconcile``.
May import: ``dynamokv.core.ids``, ``dynamokv.core.hashing``.

The paper's strategy 3: the hash space is cut into ``q`` equal partitions (a power of two) and
each node claims about ``q / S`` of them (see ``core.claim`` for how). The preference list of a
partition is the owners met walking clockwise from it, skipping nodes already met, so its first
``n`` entries are ``n`` distinct physical nodes whenever the claim keeps any ``n`` consecutive
partitions on distinct owners.

Only the ring's claimant changes ownership, and each change bumps ``version``; every node adopts
the highest version it hears of through gossip (``reconcile``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from dynamokv.core.hashing import is_power_of_two, key_partition


class MemberStatus(enum.Enum):
    JOINING = "joining"
    VALID = "valid"
    LEAVING = "leaving"
    EXITING = "exiting"


@dataclass(frozen=True, slots=True)
class Member:
    """One node of the cluster: its id, the address it listens on, and its lifecycle state."""

    node_id: str
    address: str  # "host:port" of the node's binary protocol listener
    status: MemberStatus = MemberStatus.VALID
    http_address: str = ""  # "host:port" of the DynamoDB-compatible API, if served
    metrics_address: str = ""  # "host:port" of the Prometheus endpoint, if served


@dataclass(frozen=True, slots=True)
class Ring:
    """Who owns which partition, at which ring version."""

    q: int
    owners: tuple[str, ...]
    members: tuple[Member, ...]  # sorted by node_id
    version: int
    claimant: str
    # The owners before the last ownership change (empty for a first ring). Paxos asks a
    # majority of the preference lists under both, so two proposers whose rings differ by one
    # change still meet (joint consensus across a range movement, which Cassandra's LWTs lacked).
    previous_owners: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not is_power_of_two(self.q):
            raise ValueError(f"ring size q={self.q} must be a power of two")
        if len(self.owners) != self.q:
            raise ValueError(f"ring has {len(self.owners)} owners for q={self.q}")
        if self.previous_owners and len(self.previous_owners) != self.q:
            raise ValueError(f"ring has {len(self.previous_owners)} previous owners for q={self.q}")

    def partition_for(self, bucket: str, key: bytes) -> int:
        return key_partition(bucket, key, self.q)

    def preference_list(self, partition: int, n: int) -> tuple[str, ...]:
        """The first ``n`` distinct owners walking clockwise from ``partition``."""
        seen: list[str] = []
        q = self.q
        for i in range(q):
            owner = self.owners[(partition + i) % q]
            if owner not in seen:
                seen.append(owner)
                if len(seen) == n:
                    break
        return tuple(seen)

    def previous_preference_list(self, partition: int, n: int) -> tuple[str, ...]:
        """``preference_list`` under the owners before the last change (``()`` if none)."""
        if not self.previous_owners or self.previous_owners == self.owners:
            return ()
        seen: list[str] = []
        q = self.q
        for i in range(q):
            owner = self.previous_owners[(partition + i) % q]
            if owner not in seen:
                seen.append(owner)
                if len(seen) == n:
                    break
        return tuple(seen)

    def successors(self, partition: int) -> tuple[str, ...]:
        """Every distinct node in ring order from ``partition``: primaries, then fallbacks."""
        return self.preference_list(partition, len(self.members) or 1)

    def member(self, node_id: str) -> Member | None:
        for m in self.members:
            if m.node_id == node_id:
                return m
        return None

    def address_of(self, node_id: str) -> str | None:
        m = self.member(node_id)
        return m.address if m else None

    def node_ids(self) -> tuple[str, ...]:
        return tuple(m.node_id for m in self.members)

    def partitions_of(self, node_id: str) -> list[int]:
        return [i for i, o in enumerate(self.owners) if o == node_id]

    def with_member(self, member: Member) -> Ring:
        """This ring with ``member`` added or updated (ownership untouched, version unchanged)."""
        others = [m for m in self.members if m.node_id != member.node_id]
        others.append(member)
        others.sort(key=lambda m: m.node_id)
        return replace(self, members=tuple(others))


def reconcile(mine: Ring | None, theirs: Ring) -> Ring:
    """The ring to keep after hearing ``theirs``: the higher version; ties broken by content.

    Deterministic and symmetric, so two nodes that exchange rings agree afterwards.
    """
    if mine is None:
        return theirs
    if theirs.version != mine.version:
        return theirs if theirs.version > mine.version else mine
    if theirs == mine:
        return mine
    return max(mine, theirs, key=_ring_order_key)


def _ring_order_key(
    ring: Ring,
) -> tuple[str, tuple[str, ...], tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    return (
        ring.claimant,
        ring.owners,
        tuple((m.node_id, m.address, m.status.value) for m in ring.members),
        ring.previous_owners,
    )
