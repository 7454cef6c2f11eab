"""Administrative requests of a node: cluster membership verbs, bucket properties, the ring
and the node's status report.

Owns: the functions of ``NodeCore`` that answer ClusterRequest, BucketPropsRequest,
RingRequest and StatusRequest.
May import: ``dynamokv.core.*``, ``dynamokv.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dynamokv.core import operator_actions
from dynamokv.core.coordinator import error_reply
from dynamokv.core.effects import Effect, Reply
from dynamokv.core.messages import (
    BucketPropsReply,
    BucketPropsRequest,
    ClusterReply,
    ClusterRequest,
    Message,
    RingReply,
)
from dynamokv.core.ring import Member, Ring
from dynamokv.errors import DynamoKVError, InvalidRequest, UnavailableError

if TYPE_CHECKING:
    from dynamokv.core.node import NodeCore


def on_cluster(node: NodeCore, client: int, msg: ClusterRequest, now_ms: int = 0
               ) -> list[Effect]:
    ring = node.ring
    try:
        local = operator_actions.LOCAL_ACTIONS.get(msg.action)
        if local is not None:  # about this node itself: any node answers
            result, effects = local(node, msg, now_ms)
            return [Reply(client, ClusterReply(msg.req_id, result)), *effects]
        if ring is None:
            raise UnavailableError(f"node {node.node_id} has not joined a cluster yet")
        if ring.claimant != node.node_id:
            raise UnavailableError(
                f"{node.node_id} is not the claimant; ask {ring.claimant}",
                {"claimant": ring.claimant, "address": ring.address_of(ring.claimant)})
        return cluster_action(node, client, msg, ring)
    except DynamoKVError as exc:
        return [Reply(client, error_reply(msg.req_id, exc))]

def cluster_action(node: NodeCore, client: int, msg: ClusterRequest, ring: Ring) -> list[Effect]:
    n = node.settings.quorum.n
    effects: list[Effect] = []
    if msg.action == "join":
        if not msg.node or not msg.address:
            raise InvalidRequest("join needs the node id and its address")
        node.staging.stage_join(ring, Member(msg.node, msg.address))
    elif msg.action == "leave":
        node.staging.stage_leave(ring, msg.node)
    elif msg.action == "clear":
        node.staging.clear()
    elif msg.action == "commit":
        new = node.staging.commit(ring, n)
        effects.extend(node.adopt_own(new, "committed staged changes", node.node_id))
    elif msg.action == "drain":
        effects.extend(operator_actions.drain(node, ring, msg.node, n))
    elif msg.action != "plan":
        raise InvalidRequest(f"unknown cluster action {msg.action!r}; use join, leave, "
                             "plan, commit or clear")
    result = node.staging.plan(node.ring or ring, n)
    result["action"] = msg.action
    result["ring_version_now"] = (node.ring or ring).version
    return [Reply(client, ClusterReply(msg.req_id, result)), *effects]

def on_bucket_props(node: NodeCore, client: int, msg: BucketPropsRequest) -> list[Effect]:
    if not msg.props:
        return [Reply(client, BucketPropsReply(msg.req_id, msg.bucket,
                                               node.bucket_props(msg.bucket).as_dict()))]
    try:
        props = node.bucket_props(msg.bucket).with_updates(msg.props)
    except DynamoKVError as exc:
        return [Reply(client, error_reply(msg.req_id, exc))]
    node.buckets[msg.bucket] = props
    node.buckets_version += 1
    effects: list[Effect] = [Reply(client, BucketPropsReply(msg.req_id, msg.bucket,
                                                            props.as_dict()))]
    if node.ring is not None:
        effects.append(node.persist_effect())
        effects.extend(node.broadcast())
    return effects

def ring_reply(node: NodeCore, req_id: int) -> Message:
    if node.ring is None:
        exc = DynamoKVError(f"node {node.node_id} has not joined a cluster yet")
        return error_reply(req_id, exc)
    defaults: dict[str, Any] = dict(node.settings.default_bucket_props().as_dict())
    defaults["buckets"] = {n: p.as_dict() for n, p in sorted(node.buckets.items())}
    return RingReply(req_id, node.ring, defaults)

def status(node: NodeCore, now_ms: int) -> dict[str, Any]:
    ring = node.ring
    down = node.detector.down()
    members = []
    if ring is not None:
        for m in ring.members:
            members.append({
                "node": m.node_id, "address": m.address, "http": m.http_address,
                "metrics": m.metrics_address, "status": m.status.value,
                "up": m.node_id == node.node_id or m.node_id not in down,
                "down_for_ms": now_ms - down[m.node_id] if m.node_id in down else 0,
                "phi": round(node.detector.phi(m.node_id, now_ms), 2),
                "heard": m.node_id == node.node_id or node.detector.has_heard(m.node_id),
                "partitions": len(ring.partitions_of(m.node_id)),
            })
    return {
        "node": node.node_id,
        "actor": node.actor,
        "ring_version": ring.version if ring else 0,
        "claimant": ring.claimant if ring else None,
        "q": ring.q if ring else node.settings.q,
        "joined": ring is not None and ring.member(node.node_id) is not None,
        "left": node.left,
        "members": members,
        "in_flight": len(node.coordinator.ops),
        "defaults": node.settings.default_bucket_props().as_dict(),
        "buckets": {n: p.as_dict() for n, p in sorted(node.buckets.items())},
        "hints": {"pending": node.hints.pending(), "replayed": node.hints.replayed,
                  "in_flight": node.hints.in_flight(),
                  "backlog_max": node.settings.hints.backlog_max},
        "handoff": node.handoff.status(),
        "table_logs": node.logs.status(now_ms),
        # Undecodable stored records moved aside since the node started (docs/anti-entropy.md).
        "quarantined": sum(node.store.quarantined().values()),
        "streams": node.streams.status(),
        "index_outbox": node.outbox.status(),
        "anti_entropy": node.aae.status(),
        "merkle_roots": node.aae.roots(),
        "admission": node.admission.status(),
        "staged": [{"node": n, "action": c.action}
                   for n, c in sorted(node.staging.changes.items())],
    }
