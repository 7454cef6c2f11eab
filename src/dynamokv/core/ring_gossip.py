"""How a node joins, leaves and gossips the ring: the membership side of ``NodeCore``.

Owns: asking a seed to join, the claimant's answer to joins and completed leaves, installing a
ring the claimant made (``adopt_own``), reconciling gossiped rings and bucket tables, the gossip
rounds and broadcasts, the ring's persistence effect, and refusing peers of another cluster.
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

Functions of the node's state (``core``), as :mod:`dynamokv.core.admin`; ``NodeCore`` dispatches
the messages and timers to them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from dynamokv.core.claim import claim
from dynamokv.core.effects import Effect, Log, PersistRing, Send, SendTo
from dynamokv.core.membership import remove_member
from dynamokv.core.messages import GossipRing, Hello, JoinRequest, LeaveComplete
from dynamokv.core.ring import Member, MemberStatus, Ring, reconcile
from dynamokv.errors import DynamoKVError, InvalidRequest

if TYPE_CHECKING:
    from dynamokv.core.node import NodeCore


def ask_to_join(core: NodeCore) -> list[Effect]:
    me = core.me
    join = JoinRequest(me.node_id, me.address, me.http_address, me.metrics_address,
                       staged=not core.settings.auto_join,
                       cluster=core.settings.cluster_name)
    if core.ring is not None and core.ring.claimant != core.node_id:
        return [Send(core.ring.claimant, join)]
    if not core.seeds:
        return []
    seed = core.seeds[core._seed_turn % len(core.seeds)]
    core._seed_turn += 1
    return [SendTo(seed, join)]


def on_join(core: NodeCore, msg: JoinRequest) -> list[Effect]:
    ring = core.ring
    if ring is None:
        return []  # we are joining ourselves; the joiner retries through another seed
    if ring.claimant != core.node_id:
        return [Send(ring.claimant, msg)]
    member = Member(msg.node_id, msg.address, MemberStatus.VALID, msg.http_address,
                    msg.metrics_address)
    known = ring.member(msg.node_id)
    if known == member:
        return [Send(msg.node_id, gossip_message(core))]
    if known is not None and known.status is MemberStatus.VALID:
        # A member restarted on new addresses: update them, ownership unchanged.
        moved = replace(ring.with_member(member), version=ring.version + 1)
        return adopt_own(core, moved, "member moved", msg.node_id)
    if msg.staged:
        core.staging.stage_join(ring, member)
        return [Log("info", "join staged; run `dynamokv cluster plan` then `commit`",
                    {"node": msg.node_id})]
    members = [m for m in ring.members if m.node_id != msg.node_id] + [member]
    new = claim(ring, members, q=ring.q, target_n=core.settings.quorum.n,
                claimant=core.node_id)
    return adopt_own(core, new, "member joined", msg.node_id)


def adopt_own(core: NodeCore, new: Ring, what: str, node: str) -> list[Effect]:
    """Install a ring this node (the claimant) made, persist it and tell everyone."""
    old = core.ring
    core.ring = new
    core.handoff.ring_changed()
    effects: list[Effect] = [persist_effect(core),
                             Log("info", what, {"node": node, "ring_version": new.version})]
    effects.extend(broadcast(core, old))
    return effects


def on_leave_complete(core: NodeCore, msg: LeaveComplete) -> list[Effect]:
    ring = core.ring
    if ring is None or ring.claimant != core.node_id:
        return []
    member = ring.member(msg.node_id)
    if member is None or member.status is not MemberStatus.LEAVING:
        return []
    try:
        new = remove_member(ring, msg.node_id)
    except InvalidRequest:
        return []
    return adopt_own(core, new, "member left", msg.node_id)


def maybe_leave_complete(core: NodeCore, ring: Ring) -> list[Effect]:
    me = ring.member(core.node_id)
    if me is None or me.status is not MemberStatus.LEAVING:
        return []
    if core.handoff.busy() or core.store.nonempty_partitions() or core.hints.pending():
        return []
    if core.logs.holds_groups():
        return []  # the partition logs still count on us: they move us out first
    return [Send(ring.claimant, LeaveComplete(core.node_id))]


def on_gossip(core: NodeCore, src: str, msg: GossipRing) -> list[Effect]:
    effects: list[Effect] = []
    changed = False
    theirs = msg.ring
    new = reconcile(core.ring, theirs)
    if new != core.ring:
        was_member = core.ring is not None and core.ring.member(core.node_id) is not None
        core.ring = new
        changed = True
        core.handoff.ring_changed()
        effects.append(Log("info", "adopted ring", {"version": new.version, "from": src}))
        if was_member and new.member(core.node_id) is None:
            core.left = True
            effects.append(Log("info", "this node has left the cluster; it is safe to stop",
                               {"node": core.node_id}))
        elif new.member(core.node_id) is not None:
            core.left = False  # joined (again)
    if msg.buckets_version > core.buckets_version:
        default = core.settings.default_bucket_props()
        try:
            core.buckets = {n: default.with_updates(p) for n, p in msg.buckets.items()}
            core.buckets_version = msg.buckets_version
            changed = True
        except DynamoKVError as exc:
            effects.append(Log("error", "ignored invalid bucket table", {"error": str(exc)}))
    if changed:
        effects.append(persist_effect(core))
    if (core.ring is not None and (theirs.version < core.ring.version
                                   or msg.buckets_version < core.buckets_version)):
        effects.append(Send(src, gossip_message(core)))  # they are behind: catch them up
    return effects


def gossip_round(core: NodeCore, now_ms: int) -> list[Effect]:
    ring = core.ring
    if ring is None:
        return []
    others = [m.node_id for m in ring.members if m.node_id != core.node_id]
    if not others:
        return []
    targets = {core.rng.choice(others)}
    targets.update(core.detector.due_probes(now_ms))
    msg = gossip_message(core)
    return [Send(node, msg) for node in sorted(targets) if node in others]


def broadcast(core: NodeCore, old: Ring | None = None) -> list[Effect]:
    if core.ring is None:
        return []
    msg = gossip_message(core)
    nodes = set(core.ring.node_ids())
    if old is not None:
        nodes.update(old.node_ids())  # a removed member must hear that it was removed
    return [Send(n, msg) for n in sorted(nodes) if n != core.node_id]


def gossip_message(core: NodeCore) -> GossipRing:
    assert core.ring is not None
    buckets = {name: props.as_dict() for name, props in sorted(core.buckets.items())}
    return GossipRing(core.ring, buckets, core.buckets_version, core.settings.cluster_name)


def persist_effect(core: NodeCore) -> PersistRing:
    assert core.ring is not None
    buckets = {name: props.as_dict() for name, props in sorted(core.buckets.items())}
    return PersistRing(core.ring, buckets, core.buckets_version)


def foreign_cluster(core: NodeCore, src: str, msg: Hello | JoinRequest | GossipRing) -> Log:
    """A peer of another cluster (a node pointed at the wrong seed): never let it in, never
    merge its ring; the message is dropped and the operator told what to fix."""
    return Log("error", f"refused {type(msg).__name__} from {src}: it belongs to cluster "
               f"{msg.cluster!r}, this node to {core.settings.cluster_name!r}; check the "
               "seeds and cluster_name of both", {"node": src, "cluster": msg.cluster})
