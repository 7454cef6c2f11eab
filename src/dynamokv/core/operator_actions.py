"""Operator requests answered by any node about itself: where a key lives, its hints, forcing
an anti-entropy exchange; and ``drain`` (stage and commit one node's leave) at the claimant.

Owns: ``LOCAL_ACTIONS`` (ClusterRequest actions any node answers: ``where``, ``hints``,
``hints-clear``, ``aae``) and ``drain``.
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

They ride on ``ClusterRequest`` (action, node, address) so no message changes: ``where`` takes
the bucket in ``node`` and the key, hex-encoded, in ``address``; ``hints-clear`` the target in
``node`` (empty: every target); ``aae`` the partition in ``node`` and an optional peer in
``address``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dynamokv.core.apl import active_preference_list
from dynamokv.core.effects import Effect, Send
from dynamokv.core.messages import ClusterRequest
from dynamokv.core.versioned import VersionedObject
from dynamokv.errors import InvalidRequest, UnavailableError

if TYPE_CHECKING:
    from dynamokv.core.node import NodeCore

HINTS_CLEARED_MAX = 10_000  # per request, so one request never stalls the node for long

Action = Callable[["NodeCore", ClusterRequest, int], "tuple[dict[str, Any], list[Effect]]"]


def where(node: NodeCore, msg: ClusterRequest, now_ms: int) -> tuple[dict[str, Any], list[Effect]]:
    """The key's partition, primaries and current serving list, and this node's copies of it."""
    ring = _ring(node)
    bucket = msg.node or "default"
    try:
        key = bytes.fromhex(msg.address)
    except ValueError:
        raise InvalidRequest("where: the key must be hex-encoded") from None
    n = node.bucket_props(bucket).n
    partition = ring.partition_for(bucket, key)
    up = node.up_nodes()
    primaries = ring.preference_list(partition, n)
    serving = active_preference_list(ring, partition, n, up)
    local = _copy(node.store.get(bucket, key))
    hinted = {target: _copy(node.store.get_hint(target, bucket, key))
              for target in sorted(node.hints.pending())}
    return {
        "node": node.node_id, "bucket": bucket, "key_hex": msg.address, "partition": partition,
        "n": n, "ring_version": ring.version,
        "primaries": [{"node": p, "address": ring.address_of(p) or "", "up": p in up}
                      for p in primaries],
        "serving": [{"node": r.node, "kind": r.kind.value, "for": r.for_node} for r in serving],
        "local": local,
        "hinted_here": {t: c for t, c in hinted.items() if c is not None},
    }, []


def _copy(obj: VersionedObject | None) -> dict[str, Any] | None:
    """What a replica holds of a key: sibling count, tombstones, the clock's size."""
    if obj is None:
        return None
    return {
        "siblings": len(obj.siblings),
        "tombstones": sum(1 for s in obj.siblings if s.value is None),
        "clock_entries": len(obj.context().entries),
        "newest_ms": max((s.timestamp_ms for s in obj.siblings), default=0),
    }


def hints(node: NodeCore, msg: ClusterRequest, now_ms: int) -> tuple[dict[str, Any], list[Effect]]:
    return {"node": node.node_id, "pending": node.hints.pending(),
            "replayed": node.hints.replayed, "in_flight": node.hints.in_flight(),
            "backlog_max": node.settings.hints.backlog_max}, []


def hints_clear(node: NodeCore, msg: ClusterRequest, now_ms: int
                ) -> tuple[dict[str, Any], list[Effect]]:
    """Delete hints held for ``msg.node`` (all targets if empty), at most HINTS_CLEARED_MAX.

    The writes they carry then reach their primary only through anti-entropy or read repair.
    """
    targets = [msg.node] if msg.node else sorted(node.hints.pending())
    cleared: dict[str, int] = {}
    budget = HINTS_CLEARED_MAX
    for target in targets:
        if budget <= 0:
            break
        batch = node.store.scan_hints(target, budget)
        for bucket, key, _ in batch:
            node.store.delete_hint(target, bucket, key)
        cleared[target] = len(batch)
        budget -= len(batch)
    remaining = {t: c for t, c in node.hints.pending().items() if t in targets and c}
    return {"node": node.node_id, "cleared": cleared, "remaining": remaining}, []


def aae(node: NodeCore, msg: ClusterRequest, now_ms: int) -> tuple[dict[str, Any], list[Effect]]:
    """Start an anti-entropy exchange of one partition with one peer now, admission aside."""
    ring = _ring(node)
    try:
        partition = int(msg.node)
    except ValueError:
        raise InvalidRequest(f"aae: partition {msg.node!r} is not a number") from None
    if not 0 <= partition < ring.q:
        raise InvalidRequest(f"aae: partition {partition} is not in 0..{ring.q - 1}")
    exchange = node.aae
    peers = [p for p in ring.preference_list(partition, node._max_n()) if p != node.node_id]
    if node.node_id not in ring.preference_list(partition, node._max_n()):
        raise InvalidRequest(f"aae: {node.node_id} is not a replica of partition {partition}; "
                             f"ask one of {', '.join(peers)}")
    peer = msg.address or next((p for p in peers if p in node.up_nodes()), "")
    if peer not in peers:
        raise InvalidRequest(f"aae: {peer or 'no peer'} is not an up replica of partition "
                             f"{partition}; replicas: {', '.join(peers)}")
    if exchange.current is not None:
        raise UnavailableError("an anti-entropy exchange is running; try again in a moment",
                               {"partition": exchange.current.partition,
                                "peer": exchange.current.peer})
    if partition not in exchange.store.trees:
        exchange.store.build(partition)
    started = exchange.start(partition, peer, now_ms)
    return {"node": node.node_id, "partition": partition, "peer": peer, "started_ms": now_ms}, [
        Send(peer, started)]


def aae_result(node: NodeCore, msg: ClusterRequest, now_ms: int
               ) -> tuple[dict[str, Any], list[Effect]]:
    """The last exchange of partition ``msg.node`` with ``msg.address``, and whether one runs."""
    exchange = node.aae
    try:
        key = (int(msg.node), msg.address)
    except ValueError:
        raise InvalidRequest(f"aae-result: partition {msg.node!r} is not a number") from None
    record = exchange.records.get(key)
    current = exchange.current
    return {"node": node.node_id, "partition": key[0], "peer": key[1],
            "running": current is not None and (current.partition, current.peer) == key,
            "last": None if record is None else {"at_ms": record.at_ms, "outcome": record.outcome,
                                                 "keys_repaired": record.keys_repaired},
            "now_ms": now_ms}, []


LOCAL_ACTIONS: dict[str, Action] = {
    "where": where, "hints": hints, "hints-clear": hints_clear, "aae": aae,
    "aae-result": aae_result,
}


def drain(node: NodeCore, ring: Any, node_id: str, n: int) -> list[Effect]:
    """Claimant: stage ``node_id``'s leave and commit it at once (nothing else may be staged,
    or this commit would apply it too). The node hands its data off, then leaves the ring."""
    others = sorted(k for k in node.staging.changes if k != node_id)
    if others:
        raise InvalidRequest(f"drain: changes for {', '.join(others)} are staged; commit or "
                             "clear them first (`dynamokv cluster plan`)")
    node.staging.stage_leave(ring, node_id)
    new = node.staging.commit(ring, n)
    return node.adopt_own(new, "draining", node_id)


def _ring(node: NodeCore) -> Any:
    if node.ring is None:
        raise UnavailableError(f"node {node.node_id} has not joined a cluster yet")
    return node.ring


__all__ = ["LOCAL_ACTIONS", "drain"]
