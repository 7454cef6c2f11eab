"""Membership changes, staged and committed by the claimant (riak-admin cluster plan/commit).

Owns: ``Staging`` (the claimant's staged joins and leaves, the plan they would produce, and the
commit that turns them into the next ring) and ``remove_member`` (dropping a node once it has
handed everything off).
May import: ``dynamokv.core.{ring,claim}``, ``dynamokv.errors``.

Lifecycle of a member: *joining* members are staged, then become ``VALID`` owners at commit; a
staged *leave* makes the member ``LEAVING`` at commit (it owns no partition in the new ring but
keeps serving while its data is handed off); once it reports that it holds nothing
(``LeaveComplete``), the claimant removes it from the ring. A committed ring bumps the version,
so every node adopts it through gossip.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dynamokv.core.claim import balance, claim, moves
from dynamokv.core.ring import Member, MemberStatus, Ring
from dynamokv.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class StagedChange:
    action: str  # "join" | "leave"
    member: Member


class Staging:
    def __init__(self) -> None:
        self.changes: dict[str, StagedChange] = {}

    def stage_join(self, ring: Ring, member: Member) -> None:
        known = ring.member(member.node_id)
        if known is not None and known.status is MemberStatus.VALID:
            raise InvalidRequest(f"{member.node_id} is already a member")
        self.changes[member.node_id] = StagedChange("join", member)

    def stage_leave(self, ring: Ring, node_id: str) -> None:
        member = ring.member(node_id)
        if member is None:
            raise InvalidRequest(f"{node_id} is not a member; members: "
                                 f"{', '.join(ring.node_ids())}")
        staying = [m for m in ring.members
                   if m.status is MemberStatus.VALID and m.node_id != node_id
                   and self.changes.get(m.node_id, StagedChange("", m)).action != "leave"]
        if not staying:
            raise InvalidRequest("cannot leave: it would leave the cluster with no member")
        self.changes[node_id] = StagedChange("leave", member)

    def clear(self) -> None:
        self.changes.clear()

    def _drop_stale(self, ring: Ring) -> None:
        """Forget staged leaves of nodes that are no longer members."""
        for node_id in [n for n, c in self.changes.items()
                        if c.action == "leave" and ring.member(n) is None]:
            del self.changes[node_id]

    def next_ring(self, ring: Ring, target_n: int) -> Ring:
        """The ring a commit of the staged changes would produce."""
        self._drop_stale(ring)
        members = {m.node_id: m for m in ring.members}
        for node_id, change in self.changes.items():
            if change.action == "join":
                members[node_id] = replace(change.member, status=MemberStatus.VALID)
            else:
                members[node_id] = replace(members[node_id], status=MemberStatus.LEAVING)
        claimant = ring.claimant
        if members[claimant].status is not MemberStatus.VALID:
            claimant = min(n for n, m in members.items() if m.status is MemberStatus.VALID)
        ordered = [members[n] for n in sorted(members)]
        return claim(ring, ordered, q=ring.q, target_n=target_n, claimant=claimant)

    def plan(self, ring: Ring, target_n: int) -> dict[str, Any]:
        """What a commit would do: the changes, the partitions that move, the new balance."""
        self._drop_stale(ring)
        staged = [{"node": n, "action": c.action, "address": c.member.address}
                  for n, c in sorted(self.changes.items())]
        if not self.changes:
            return {"staged": [], "transfers": [], "ring_version": ring.version}
        new = self.next_ring(ring, target_n)
        report = balance(new, target_n)
        moved = moves(ring, new)
        return {
            "staged": staged,
            "ring_version": ring.version,
            "next_ring_version": new.version,
            "claimant": new.claimant,
            "transfers": [{"partition": p, "from": a, "to": b} for p, a, b in moved],
            "partitions_moving": len(moved),
            "balance": {
                "per_node": dict(report.counts),
                "imbalance": round(report.imbalance, 4),
                "violations": list(report.violations),
            },
        }

    def commit(self, ring: Ring, target_n: int) -> Ring:
        self._drop_stale(ring)
        if not self.changes:
            raise InvalidRequest("nothing is staged; stage a join or a leave first")
        new = self.next_ring(ring, target_n)
        self.changes.clear()
        return new


def remove_member(ring: Ring, node_id: str) -> Ring:
    """The ring without ``node_id`` (which must own nothing), one version later."""
    if node_id in ring.owners:
        raise InvalidRequest(f"{node_id} still owns partitions; it cannot be removed yet")
    members = tuple(m for m in ring.members if m.node_id != node_id)
    return replace(ring, members=members, version=ring.version + 1)
