"""Recovery and background work on a real local cluster: hinted handoff, anti-entropy, admission.

Three measurements, each on its own throwaway cluster of 3 node processes on 127.0.0.1
(N=3, R=2, W=2, lmdb, ring size 16 by default), started and stopped by this script:

1. Convergence after a node was down. kill -9 one node, wait until the others see it down,
   write K keys (1 KiB) at W=2, restart it. Measured from the restart: when the hints held for it
   reach 0 on every node, and when every partition's Merkle root is the same on all its
   replicas. With 3 nodes and N=3 there is no spare node to act as a fallback, so each write's
   coordinator keeps the hint itself.
2. Anti-entropy alone. (a) A lost disk: load L keys, stop one node, delete its data directory,
   start it again; time until its trees are built and every root agrees, and how many keys the
   exchanges repaired against L. (b) A small difference in one large partition: d keys (all in
   one partition: the one holding the most keys, then the last one, which the restarted replica
   visits last) written while one replica is down, then the node holding their hints is killed
   too before that replica restarts, so hinted handoff cannot deliver them and only
   anti-entropy can; keys repaired and exchanges against the partition's size, and what the
   exchange compares (computed from the tree's shape).
3. Foreground latency with and without background work: the same steady foreground load
   (gets and blind puts, a fixed number in flight, a fixed duration) on a quiet cluster, while a
   restarted node receives a large hint backlog, while a wiped node is rebuilt by anti-entropy,
   and quiet again; with each node's admission-controller rate and throttled windows sampled
   every second.

Nothing reads the keys being repaired while a repair is measured (a read would repair them).
Progress goes to stderr, tables to stdout, ``--json FILE`` writes every figure.

    python bench/recovery.py --quick
    python bench/recovery.py --json recovery.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import common
import recovery_load as load
from recovery_cluster import (
    NodeProc,
    RecoveryCluster,
    WaitTimeout,
    counter_sum,
    hints_pending,
    roots_agreement,
    snapshot,
    trees_built,
    wait_for,
)
from rich.console import Console
from rich.table import Table

from dynamokv import Client, DynamoKVError
from dynamokv.core.hashing import key_partition
from dynamokv.core.merkle import MerkleTree
from dynamokv.core.ring import Ring

BUCKET = "recovery"  # measurements 1 and 2, and the hint backlog of 3: each key written once
FG_BUCKET = "recovery_fg"  # the foreground load of 3: last-writer-wins, so puts are blind
VALUE_POOL = 64
POLL_S = 0.25  # status polling while waiting for convergence
SAMPLE_S = 1.0  # status sampling during a foreground run (the admission window is 1 s)
REBUILD_RISE = 100  # keys repaired per sample above which a wiped node's rebuild is "active"
N, R, W = 3, 2, 2

FULL = {"keys_down": [5000, 20000], "keys_large": 50000, "diffs": [10, 100],
        "fg_keys": 5000, "fg_seconds": 20.0, "fg_concurrency": [8, 32], "backlog": 20000}
QUICK = {"keys_down": [1000, 3000], "keys_large": 10000, "diffs": [10],
         "fg_keys": 2000, "fg_seconds": 8.0, "fg_concurrency": [8], "backlog": 5000}

Log = Callable[[str], None]


# ---- shared steps --------------------------------------------------------------------------------


def new_cluster(args: argparse.Namespace, log: Log) -> RecoveryCluster:
    log(f"starting 3 nodes (N={N} R={R} W={W}, lmdb, ring size {args.ring_size}, anti-entropy "
        f"interval {'default' if args.aae_interval is None else args.aae_interval})")
    return RecoveryCluster(count=3, ring_size=args.ring_size, n=N, r=R, w=W,
                           aae_interval_s=args.aae_interval, log=log)


def make_values(args: argparse.Namespace) -> list[bytes]:
    rng = random.Random(args.seed)
    return [rng.randbytes(args.value_bytes) for _ in range(VALUE_POOL)]


def write(args: argparse.Namespace, nodes: Sequence[NodeProc], keys: list[bytes],
          values: list[bytes], bucket: str, log: Log) -> dict[str, Any]:
    result = load.run(load.write_keys(
        [n.address for n in nodes], keys, values, bucket=bucket, w=W,
        concurrency=args.load_concurrency, timeout_s=args.timeout, deadline_s=args.load_timeout))
    log(f"  wrote {result['written']}/{len(keys)} keys in {result['seconds']:.1f} s "
        f"({result['puts_per_s']} puts/s), failed {result['failed']}, errors "
        f"{result['errors'] or 0}")
    return result


def live_ids(cluster: RecoveryCluster) -> list[str]:
    return [n.node_id for n in cluster.live()]


def converged(cluster: RecoveryCluster, ring: Ring) -> bool:
    """No hint pending anywhere and every partition's root equal on all its live replicas."""
    statuses = snapshot(cluster)
    if hints_pending(statuses) != 0:
        return False
    agree, checked = roots_agreement(ring, statuses, N, live_ids(cluster))
    return agree == checked


def wait_converged(cluster: RecoveryCluster, ring: Ring, args: argparse.Namespace,
                   what: str) -> float:
    t0 = time.monotonic()
    wait_for(what, lambda: converged(cluster, ring), timeout_s=args.converge_timeout,
             interval_s=0.5)
    return round(time.monotonic() - t0, 2)


def settle(cluster: RecoveryCluster, ring: Ring, args: argparse.Namespace, what: str,
           log: Log) -> dict[str, Any]:
    """``wait_converged``, but a timeout is a result (with a diagnosis), not an error."""
    try:
        return {"seconds": wait_converged(cluster, ring, args, what), "diagnosis": None}
    except WaitTimeout:
        diagnosis = diagnose(cluster, ring)
        log(f"  [yellow]not converged after {args.converge_timeout:.0f} s ({what}): "
            f"{json.dumps(diagnosis)[:1500]}[/]")
        return {"seconds": None, "diagnosis": diagnosis}


def diagnose(cluster: RecoveryCluster, ring: Ring) -> dict[str, Any]:
    """What keeps the cluster from converging: hints, disagreeing partitions, exchanges."""
    statuses = snapshot(cluster)
    out: dict[str, Any] = {"nodes": {}, "disagreeing": {}}
    for nid, s in statuses.items():
        if s is None:
            out["nodes"][nid] = None
            continue
        out["nodes"][nid] = {
            "hints": s["hints"], "admission": s["admission"],
            "anti_entropy": s["anti_entropy"], "handoff": s["handoff"],
            "ring_version": s["ring_version"], "actor": s["actor"],
            "down": [m["node"] for m in s["members"] if not m["up"]],
        }
    for partition in range(ring.q):
        roots = {}
        for replica in ring.preference_list(partition, N):
            s = statuses.get(replica)
            tree_roots = {} if s is None else s["merkle_roots"]
            roots[replica] = tree_roots.get(partition, tree_roots.get(str(partition)))
        if len(set(roots.values())) != 1 or None in roots.values():
            out["disagreeing"][partition] = {k: (v or "")[:12] for k, v in roots.items()}
    return out


def set_lww(cluster: RecoveryCluster, bucket: str) -> None:
    with Client(cluster.addresses, timeout_s=5.0) as c:
        c.bucket_props(bucket, lww=True)

    def everywhere() -> bool:
        for node in cluster.live():
            with Client([node.address], timeout_s=2.0) as c:
                if c.bucket_props(bucket).get("lww") is not True:
                    return False
        return True

    wait_for(f"bucket {bucket!r} lww=true on every node", everywhere, timeout_s=30.0)


def counters(statuses: dict[str, dict[str, Any] | None]) -> dict[str, int]:
    return {"replayed": counter_sum(statuses, "hints", "replayed"),
            "keys_repaired": counter_sum(statuses, "anti_entropy", "keys_repaired"),
            "exchanges": counter_sum(statuses, "anti_entropy", "exchanges")}


def per_node(statuses: dict[str, dict[str, Any] | None], section: str, name: str
             ) -> dict[str, int | None]:
    return {nid: None if s is None else int(s[section][name]) for nid, s in statuses.items()}


def rate(count: float, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def r2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ---- 1. convergence after a node was down ------------------------------------------------------


def measure_down(args: argparse.Namespace, keys_count: int, values: list[bytes],
                 log: Log) -> dict[str, Any]:
    """kill -9 n3, write ``keys_count`` keys at W=2, restart n3; time hints and roots."""
    log(f"[1] node down while {keys_count} keys are written")
    with new_cluster(args, log) as cluster:
        ring = cluster.ring()
        victim = cluster.node("n3")
        others = [cluster.node("n1"), cluster.node("n2")]
        t_kill = time.monotonic()
        victim.kill9()
        detect_s = cluster.wait_seen_down(victim)
        log(f"  n3 killed; n1 and n2 saw it down after {detect_s:.2f} s")
        keys = [f"down{keys_count}-{i:07d}".encode() for i in range(keys_count)]
        written = write(args, others, keys, values, BUCKET, log)
        before = snapshot(cluster)
        held = {nid: int(s["hints"]["pending"].get("n3", 0)) if s else None
                for nid, s in before.items()}
        base = counters(before)
        down_s = time.monotonic() - t_kill
        log(f"  hints held for n3: {held}; restarting n3 after {down_s:.1f} s down")
        t0 = time.monotonic()
        victim.start()
        timeline: list[dict[str, Any]] = []
        marks: dict[str, float | None] = {"answers": None, "first_replay": None,
                                          "hints_drained": None, "roots_agree": None,
                                          "trees_built": None}
        last: dict[str, Any] = {}
        deadline = t0 + args.converge_timeout
        for _ in range(int(args.converge_timeout / POLL_S) + 1):
            statuses = snapshot(cluster)
            t = time.monotonic() - t0
            pending = hints_pending(statuses)
            agree, checked = roots_agreement(ring, statuses, N)
            now = counters(statuses)
            replayed = now["replayed"] - base["replayed"]
            up = statuses.get("n3") is not None
            if up and marks["answers"] is None:
                marks["answers"] = t
            if replayed > 0 and marks["first_replay"] is None:
                marks["first_replay"] = t
            if up and pending == 0 and marks["hints_drained"] is None:
                marks["hints_drained"] = t
            if trees_built(statuses, "n3") == ring.q and marks["trees_built"] is None:
                marks["trees_built"] = t
            if up and agree == checked and marks["roots_agree"] is None:
                marks["roots_agree"] = t
            last = {"t": round(t, 2), "hints_pending": pending, "replayed": replayed,
                    "keys_repaired": now["keys_repaired"] - base["keys_repaired"],
                    "exchanges": now["exchanges"] - base["exchanges"],
                    "partitions_agreeing": agree, "partitions": checked}
            timeline.append(last)
            if marks["hints_drained"] is not None and marks["roots_agree"] is not None:
                break
            if time.monotonic() >= deadline:
                log(f"  [yellow]not converged after {args.converge_timeout:.0f} s[/]")
                break
            time.sleep(POLL_S)
        total_held = sum(v or 0 for v in held.values())
        drained, first = marks["hints_drained"], marks["first_replay"]
        result = {
            "keys": keys_count, "write": written, "detect_down_s": round(detect_s, 2),
            "down_s": round(down_s, 2), "hints_held": held, "hints_held_total": total_held,
            **{f"{k}_s": r2(v) for k, v in marks.items()},
            "replayed": last.get("replayed"),
            "replay_rate_from_restart": rate(last.get("replayed", 0), drained),
            "replay_rate_active": rate(last.get("replayed", 0),
                                       None if drained is None or first is None
                                       else max(drained - first, POLL_S)),
            "aae_keys_repaired": last.get("keys_repaired"),
            "aae_exchanges": last.get("exchanges"),
            "timeline": timeline,
        }
        log(f"  hints drained {_s(drained)}, roots agree {_s(marks['roots_agree'])} after the "
            f"restart; {result['replayed']} hints replayed, AAE repaired "
            f"{result['aae_keys_repaired']} keys")
        return result


# ---- 2. anti-entropy alone -------------------------------------------------------------------


def measure_anti_entropy(args: argparse.Namespace, values: list[bytes], log: Log
                         ) -> dict[str, Any]:
    log(f"[2] anti-entropy: {args.keys_large} keys, then a wiped node and small differences")
    with new_cluster(args, log) as cluster:
        ring = cluster.ring()
        keys = [f"big-{i:07d}".encode() for i in range(args.keys_large)]
        loaded = write(args, cluster.nodes, keys, values, BUCKET, log)
        settle_s = wait_converged(cluster, ring, args, "the loaded cluster to converge")
        sizes = Counter(key_partition(BUCKET, k, ring.q) for k in keys)
        result: dict[str, Any] = {"keys": args.keys_large, "load": loaded,
                                  "settle_s": settle_s,
                                  "partition_keys": {"min": min(sizes.values()),
                                                     "max": max(sizes.values()),
                                                     "mean": round(len(keys) / ring.q, 1)}}
        result["wipe"] = measure_wipe(cluster, ring, args, log)
        # The restarted replica visits its partitions in order 0..q-1, one exchange per
        # interval: the partition holding the most keys, and the last one (found last, unless
        # the peer's own rotation gets there first).
        largest = sizes.most_common(1)[0][0]
        result["small"] = [
            measure_small_diff(cluster, ring, args, d, partition, keys, sizes, values, log)
            for partition in dict.fromkeys((largest, ring.q - 1)) for d in args.diffs]
        return result


def measure_wipe(cluster: RecoveryCluster, ring: Ring, args: argparse.Namespace,
                 log: Log) -> dict[str, Any]:
    """Stop n2, delete its data, start it; until every root agrees. No hints are involved."""
    victim = cluster.node("n2")
    before = snapshot(cluster)
    base = counters(before)
    victim.stop()
    victim.wipe()
    t0 = time.monotonic()
    victim.start()
    log("  n2 stopped, its data directory deleted, started again")
    marks: dict[str, float | None] = {"answers": None, "joined": None, "trees_built": None,
                                      "roots_agree": None}
    timeline: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    deadline = t0 + args.converge_timeout
    for _ in range(int(args.converge_timeout / POLL_S) + 1):
        statuses = snapshot(cluster)
        t = time.monotonic() - t0
        mine = statuses.get("n2")
        if mine is not None and marks["answers"] is None:
            marks["answers"] = t
        if mine is not None and mine["joined"] and marks["joined"] is None:
            marks["joined"] = t
        if trees_built(statuses, "n2") == ring.q and marks["trees_built"] is None:
            marks["trees_built"] = t
        agree, checked = roots_agreement(ring, statuses, N)
        if mine is not None and agree == checked and marks["roots_agree"] is None:
            marks["roots_agree"] = t
        now = counters(statuses)
        # n2's own counters restarted from 0 with the process; n1's and n3's are deltas.
        last = {"t": round(t, 2), "partitions_agreeing": agree, "partitions": checked,
                "keys_repaired": now["keys_repaired"] - base["keys_repaired"]
                + _own(before, "n2", "keys_repaired"),
                "exchanges": now["exchanges"] - base["exchanges"]
                + _own(before, "n2", "exchanges"),
                "keys_repaired_by": per_node(statuses, "anti_entropy", "keys_repaired")}
        timeline.append(last)
        if marks["roots_agree"] is not None:
            break
        if time.monotonic() >= deadline:
            log(f"  [yellow]wiped node not rebuilt after {args.converge_timeout:.0f} s[/]")
            break
        time.sleep(POLL_S)
    agree_s = marks["roots_agree"]
    repaired = int(last.get("keys_repaired", 0))
    result = {
        **{f"{k}_s": r2(v) for k, v in marks.items()},
        "keys_repaired": repaired,
        "keys_repaired_per_key": round(repaired / args.keys_large, 3),
        "exchanges": last.get("exchanges"),
        "keys_per_s": rate(repaired, agree_s),
        "keys_repaired_by": {nid: (v or 0) - (_own(before, nid, "keys_repaired")
                                              if nid != "n2" else 0)
                             for nid, v in last.get("keys_repaired_by", {}).items()},
        "timeline": timeline,
    }
    log(f"  wiped n2 rebuilt: roots agree {_s(agree_s)} after the restart, "
        f"{repaired} keys repaired, {result['exchanges']} exchanges")
    return result


def _own(statuses: dict[str, dict[str, Any] | None], node_id: str, name: str) -> int:
    status = statuses.get(node_id)
    return 0 if status is None else int(status["anti_entropy"][name])


def keys_in_partition(partition: int, count: int, prefix: str, q: int) -> list[bytes]:
    """``count`` new keys of ``BUCKET`` that all fall into ``partition``."""
    found: list[bytes] = []
    for i in range(count * q * 50):  # about count * q candidates are needed; bounded anyway
        key = f"{prefix}-{i:07d}".encode()
        if key_partition(BUCKET, key, q) == partition:
            found.append(key)
            if len(found) == count:
                return found
    raise RuntimeError(f"found only {len(found)} keys in partition {partition}")


def exchange_shape(partition_keys: list[bytes], diff_keys: list[bytes]) -> dict[str, int]:
    """What one exchange of the partition compares when ``diff_keys`` differ (from the shape).

    The exchange asks for the root, then for the 32 children of a differing node, then for the
    keys (with digests) of each differing leaf: this counts those hashes and key digests for
    the default tree (1024 leaves, fan-out 32), as ``core/exchange.py`` walks it.
    """
    tree = MerkleTree()
    width = tree.width
    segments = {tree.segment_of(BUCKET, k) for k in diff_keys}
    inner = {s // width for s in segments}
    in_segments = sum(1 for k in [*partition_keys, *diff_keys]
                      if tree.segment_of(BUCKET, k) in segments)
    return {"leaves_differing": len(segments), "inner_differing": len(inner),
            "hashes_compared": 1 + width + width * len(inner),
            "key_digests_in_differing_leaves": in_segments,
            "tree_leaves": tree.segments}


def measure_small_diff(cluster: RecoveryCluster, ring: Ring, args: argparse.Namespace,
                       diff: int, partition: int, keys: list[bytes], sizes: Counter[int],
                       values: list[bytes], log: Log) -> dict[str, Any]:
    """n3 misses ``diff`` keys of ``partition``; n1, which holds their hints, is down."""
    size = sizes[partition]
    partition_keys = [k for k in keys if key_partition(BUCKET, k, ring.q) == partition]
    diff_keys = keys_in_partition(partition, diff, f"diff{diff}p{partition}", ring.q)
    holder, peer, victim = cluster.node("n1"), cluster.node("n2"), cluster.node("n3")
    log(f"  small difference: {diff} keys in partition {partition} ({size} keys)")
    victim.kill9()
    cluster.wait_seen_down(victim)
    errors: Counter[str] = Counter()
    with Client([holder.address], timeout_s=args.timeout) as c:  # n1 coordinates every put
        for i, key in enumerate(diff_keys):
            try:
                c.put(key, values[i % len(values)], bucket=BUCKET, w=W)
            except DynamoKVError as exc:
                errors[common.error_code(exc)] += 1
    held = {nid: int(s["hints"]["pending"].get("n3", 0)) if s else None
            for nid, s in snapshot(cluster).items()}
    peer_before = snapshot(cluster, [peer])["n2"]
    if peer_before is None:
        raise RuntimeError("n2 did not answer before the small-difference run")
    holder.kill9()
    log(f"  wrote them through n1 with n3 down (hints held: {held}); killed n1 too, "
        "restarting n3")
    t0 = time.monotonic()
    victim.start()
    pair = [peer, victim]
    marks: dict[str, float | None] = {"answers": None, "trees_built": None, "roots_agree": None}
    last: dict[str, Any] = {}
    timeline: list[dict[str, Any]] = []
    deadline = t0 + args.converge_timeout
    for _ in range(int(args.converge_timeout / POLL_S) + 1):
        statuses = snapshot(cluster, pair)
        t = time.monotonic() - t0
        up = statuses.get("n3") is not None
        if up and marks["answers"] is None:
            marks["answers"] = t
        if trees_built(statuses, "n3") == ring.q and marks["trees_built"] is None:
            marks["trees_built"] = t
        agree, checked = roots_agreement(ring, statuses, N, ["n2", "n3"])
        if up and agree == checked and marks["roots_agree"] is None:
            marks["roots_agree"] = t
        n2, n3 = statuses.get("n2"), statuses.get("n3")
        last = {
            "t": round(t, 2), "partitions_agreeing": agree, "partitions": checked,
            "keys_repaired_n2": None if n2 is None else n2["anti_entropy"]["keys_repaired"]
            - peer_before["anti_entropy"]["keys_repaired"],
            "keys_repaired_n3": None if n3 is None else n3["anti_entropy"]["keys_repaired"],
            "exchanges_n2": None if n2 is None else n2["anti_entropy"]["exchanges"]
            - peer_before["anti_entropy"]["exchanges"],
            "exchanges_n3": None if n3 is None else n3["anti_entropy"]["exchanges"],
            "last_exchange_n3": None if n3 is None else n3["anti_entropy"]["last_exchange"],
        }
        timeline.append(last)
        if marks["roots_agree"] is not None:
            break
        if time.monotonic() >= deadline:
            log(f"  [yellow]n2 and n3 not in sync after {args.converge_timeout:.0f} s[/]")
            break
        time.sleep(POLL_S)
    repaired = (last.get("keys_repaired_n2") or 0) + (last.get("keys_repaired_n3") or 0)
    exchanges = (last.get("exchanges_n2") or 0) + (last.get("exchanges_n3") or 0)
    result = {
        "diff_keys": diff, "partition": partition, "partition_keys": size,
        "write_errors": dict(errors), "hints_held": held,
        **{f"{k}_s": r2(v) for k, v in marks.items()},
        "keys_repaired": repaired, "exchanges": exchanges,
        "keys_repaired_by": {"n2": last.get("keys_repaired_n2"),
                             "n3": last.get("keys_repaired_n3")},
        "repaired_per_partition_key": round(repaired / size, 4),
        "repaired_per_loaded_key": round(repaired / len(keys), 5),
        "shape": exchange_shape(partition_keys, diff_keys),
        "timeline": timeline,
    }
    log(f"  {diff} differing keys: roots agree {_s(marks['roots_agree'])} after n3's restart, "
        f"{repaired} keys repaired in {exchanges} exchanges")
    # Put the cluster back together for the next run: n1 returns and replays its (now
    # redundant) hints to n3.
    holder.start()
    cluster.wait_answers(holder)
    cleanup = settle(cluster, ring, args, "n1 back and every replica equal", log)
    result["cleanup_s"], result["cleanup_not_converged"] = cleanup["seconds"], cleanup["diagnosis"]
    return result


# ---- 3. foreground latency with and without background work ----------------------------------


def measure_foreground(args: argparse.Namespace, concurrency: int, values: list[bytes],
                       log: Log) -> dict[str, Any]:
    log(f"[3] foreground load: {args.fg_keys} keys, {concurrency} in flight, "
        f"{args.fg_seconds:g} s per run")
    with new_cluster(args, log) as cluster:
        ring = cluster.ring()
        set_lww(cluster, FG_BUCKET)
        fg_keys = [f"fg-{i:07d}".encode() for i in range(args.fg_keys)]
        loaded = write(args, cluster.nodes, fg_keys, values, FG_BUCKET, log)
        wait_converged(cluster, ring, args, "the loaded cluster to converge")
        runs = []
        for index, scenario in enumerate(("quiet", "hint backlog", "wiped node", "quiet again")):
            runs.append(foreground_run(cluster, ring, args, scenario, index, concurrency,
                                       fg_keys, values, log))
        result = {"concurrency": concurrency, "fg_keys": args.fg_keys, "load": loaded,
                  "runs": runs}
        result["ratios_to_quiet"] = ratios(result)
        return result


def foreground_run(cluster: RecoveryCluster, ring: Ring, args: argparse.Namespace,
                   scenario: str, index: int, concurrency: int, fg_keys: list[bytes],
                   values: list[bytes], log: Log) -> dict[str, Any]:
    victim = cluster.node("n3")
    setup: dict[str, Any] = {}
    t_restart: float | None = None
    if scenario == "hint backlog":
        victim.kill9()
        cluster.wait_seen_down(victim)
        backlog = [f"backlog-{i:07d}".encode() for i in range(args.backlog)]
        log(f"  n3 killed; writing a backlog of {args.backlog} keys")
        setup["write"] = write(args, cluster.live(), backlog, values, BUCKET, log)
        held = snapshot(cluster)
        setup["hints_held"] = {nid: int(s["hints"]["pending"].get("n3", 0)) if s else None
                               for nid, s in held.items()}
        t_restart = time.monotonic()
        victim.start()
    elif scenario == "wiped node":
        victim.stop()
        victim.wipe()
        t_restart = time.monotonic()
        victim.start()
        log("  n3 stopped, its data directory deleted, started again")
    if t_restart is not None:
        cluster.wait_answers(victim)
        setup["answers_s"] = round(time.monotonic() - t_restart, 2)
    before = snapshot(cluster)
    base = counters(before)

    def reduce(statuses: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
        agree, checked = roots_agreement(ring, statuses, N)
        now = counters(statuses)
        return {
            "admission": {nid: None if s is None else s["admission"]
                          for nid, s in statuses.items()},
            "hints_pending": hints_pending(statuses),
            "replayed": now["replayed"], "keys_repaired": now["keys_repaired"],
            "partitions_agreeing": agree, "partitions": checked,
        }

    async def window() -> tuple[load.Foreground, list[dict[str, Any]]]:
        fg_job = load.foreground(
            cluster.addresses, fg_keys, values, bucket=FG_BUCKET, seconds=args.fg_seconds,
            concurrency=concurrency, read_fraction=0.5, seed=args.seed + index,
            timeout_s=args.timeout, max_ops=10_000_000)
        sampler = load.sample_statuses(
            {n.node_id: n.address for n in cluster.nodes}, reduce, seconds=args.fg_seconds,
            interval_s=SAMPLE_S)
        fg, samples = await asyncio.gather(fg_job, sampler)
        return fg, samples

    log(f"  {scenario}: {args.fg_seconds:g} s of foreground load")
    load_before = common.loadavg()
    cpu = common.CpuMeter(cluster.pids())
    t_window = time.monotonic()
    fg, samples = load.run(window())
    busy = cpu.busy()
    # Background work is "active" until the first sample showing it done.
    active_until: float | None = None
    if scenario == "hint backlog":
        active_until = next((s["t"] for s in samples if s["hints_pending"] == 0), None)
    elif scenario == "wiped node" and samples:
        # Roots cannot serve here: under foreground writes replicas differ for a moment all
        # the time, and the nodes are asked one after the other. The rebuild counts as active
        # while anti-entropy repairs more than REBUILD_RISE keys per sample.
        rises = [s["t"] for prev, s in itertools.pairwise(samples)
                 if s["keys_repaired"] - prev["keys_repaired"] > REBUILD_RISE]
        later = [s["t"] for s in samples if rises and s["t"] > rises[-1]]
        active_until = samples[0]["t"] if not rises else (later[0] if later else None)
    after: dict[str, Any] = {}
    if t_restart is not None:
        done = settle(cluster, ring, args, f"convergence after the {scenario} run", log)
        after["converged_after_restart_s"] = (None if done["seconds"] is None
                                              else round(time.monotonic() - t_restart, 2))
        after["not_converged"] = done["diagnosis"]
        # Converged (hints and roots) well after the run ended: it was active throughout.
        window_end = t_window - t_restart + fg.seconds
        if done["seconds"] is None or after["converged_after_restart_s"] > window_end + 2.0:
            active_until = None
    admission = admission_summary(samples)
    last = samples[-1] if samples else {}
    result = {
        "scenario": scenario, "setup": setup, "seconds": round(fg.seconds, 2),
        "background_active_s": (None if scenario.startswith("quiet")
                                else active_until if active_until is not None
                                else round(fg.seconds, 2)),
        "background_done_in_window": active_until is not None,
        "whole": fg.summary(),
        # Only when the background work ended within the run; otherwise it is the whole run.
        "while_active": (fg.summary(0.0, active_until)
                         if active_until is not None and not scenario.startswith("quiet")
                         else None),
        "errors": dict(fg.errors), "not_found": fg.not_found,
        "dropped_at_deadline": fg.dropped_at_deadline,
        "hints_replayed_in_window": (last.get("replayed", base["replayed"]) - base["replayed"]
                                     if samples else None),
        "keys_repaired_in_window": (last.get("keys_repaired", base["keys_repaired"])
                                    - base["keys_repaired"] if samples else None),
        "admission": admission,
        "cpu_nodes": busy, "loadavg_before": load_before, "loadavg_after": common.loadavg(),
        **after, "samples": samples,
    }
    whole = result["whole"]["all"]
    log(f"  {scenario}: {result['whole']['ops_per_s']} ops/s, p50 {whole['p50_ms']} ms, "
        f"p99 {whole['p99_ms']} ms, errors {dict(fg.errors) or 0}; admission "
        f"{_admission_text(admission)}")
    return result


def admission_summary(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per node over a run: the rate's range, the highest p99 it saw, windows throttled."""
    out: dict[str, dict[str, Any]] = {}
    nodes = dict.fromkeys(n for s in samples for n in s["admission"])
    for node in nodes:
        seen = [s["admission"][node] for s in samples if s["admission"].get(node)]
        if not seen:
            out[node] = {"samples": 0}
            continue
        rates = [float(a["rate_per_s"]) for a in seen]
        out[node] = {
            "samples": len(seen),
            "rate_min": min(rates), "rate_max": max(rates),
            "rate_mean": round(sum(rates) / len(rates), 1),
            "foreground_p99_ms_max": max(float(a["foreground_p99_ms"]) for a in seen),
            "throttled_windows": int(seen[-1]["throttled_windows"])
            - int(seen[0]["throttled_windows"]),
        }
    return out


def _admission_text(admission: dict[str, dict[str, Any]]) -> str:
    parts = []
    for node, a in admission.items():
        if not a.get("samples"):
            parts.append(f"{node} -")
            continue
        parts.append(f"{node} rate {a['rate_min']:g}..{a['rate_max']:g}/s, "
                     f"throttled {a['throttled_windows']}")
    return "; ".join(parts)


# ---- reporting -------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table_down(results: list[dict[str, Any]]) -> Table:
    t = Table(title="1. Convergence after a node was down (kill -9, K puts at W=2, restart); "
                    "times from the restart")
    for col in ("K keys", "down s", "puts/s", "hints held", "answers s", "hints drained s",
                "trees built s", "roots agree s", "replay hints/s (from restart)",
                "replay hints/s (active)", "AAE keys repaired"):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(str(r["keys"]), _f(r["down_s"]), _f(r["write"]["puts_per_s"], 0),
                  str(r["hints_held_total"]), _f(r["answers_s"]), _f(r["hints_drained_s"]),
                  _f(r["trees_built_s"]), _f(r["roots_agree_s"]),
                  _f(r["replay_rate_from_restart"], 0), _f(r["replay_rate_active"], 0),
                  str(r["aae_keys_repaired"]))
    return t


def table_wipe(result: dict[str, Any]) -> Table:
    w = result["wipe"]
    t = Table(title="2a. Wiped node rebuilt by anti-entropy alone; times from its restart")
    for col in ("keys", "keys/partition", "answers s", "joined s", "trees built s",
                "roots agree s", "keys repaired", "repaired / keys", "exchanges", "keys/s"):
        t.add_column(col, justify="right")
    pk = result["partition_keys"]
    t.add_row(str(result["keys"]), f"{pk['min']}..{pk['max']}", _f(w["answers_s"]),
              _f(w["joined_s"]), _f(w["trees_built_s"]), _f(w["roots_agree_s"]),
              str(w["keys_repaired"]), _f(w["keys_repaired_per_key"], 2), str(w["exchanges"]),
              _f(w["keys_per_s"], 0))
    return t


def table_small(result: dict[str, Any]) -> Table:
    t = Table(title="2b. Small difference in one partition, repaired by anti-entropy alone "
                    "(n2 <-> n3, hint holder n1 down); times from n3's restart")
    for col in ("differing keys", "partition", "partition keys", "trees built s",
                "roots agree s", "keys repaired", "exchanges", "repaired / partition keys",
                "hashes compared*", "key digests in differing leaves*"):
        t.add_column(col, justify="right")
    for r in result["small"]:
        shape = r["shape"]
        t.add_row(str(r["diff_keys"]), str(r["partition"]), str(r["partition_keys"]),
                  _f(r["trees_built_s"]), _f(r["roots_agree_s"]), str(r["keys_repaired"]),
                  str(r["exchanges"]),
                  f"{r['repaired_per_partition_key']:.2%}", str(shape["hashes_compared"]),
                  f"{shape['key_digests_in_differing_leaves']} "
                  f"({shape['key_digests_in_differing_leaves'] / r['partition_keys']:.1%})")
    t.caption = ("* computed from the tree's shape (1024 leaves, fan-out 32) for one exchange "
                 "of that partition, not measured on the wire")
    return t


def table_foreground(result: dict[str, Any]) -> Table:
    t = Table(title=f"3. Foreground gets/puts (50/50), {result['concurrency']} in flight, with "
                    "and without background work (client-side latency, ms)")
    for col in ("run", "part (s)", "background active s", "converged after restart s", "ops/s",
                "p50", "p99", "p99.9", "max", "errors", "hints replayed",
                "keys repaired (AAE)"):
        t.add_column(col, justify="left" if col in ("run", "part (s)") else "right")
    for r in result["runs"]:
        parts = [("whole", r["whole"])]
        if r["while_active"] is not None:
            parts.append(("while active", r["while_active"]))
        active = r["background_active_s"]
        for name, part in parts:
            a = part["all"]
            first = name == "whole"
            t.add_row(
                r["scenario"], f"{name} {part['from_s']:.0f}-{part['to_s']:.0f}",
                ("-" if active is None else
                 f"{active:.1f}" + ("" if r["background_done_in_window"] else "+"))
                if first else "",
                _f(r.get("converged_after_restart_s")) if first else "",
                _f(part["ops_per_s"], 0), _f(a["p50_ms"]), _f(a["p99_ms"]), _f(a["p999_ms"]),
                _f(a["max_ms"]),
                str(sum(r["errors"].values()) + r["not_found"]) if first else "",
                str(r["hints_replayed_in_window"]) if first else "",
                str(r["keys_repaired_in_window"]) if first else "")
    t.caption = ("background active: hint backlog until no hint is pending; wiped node while "
                 f"anti-entropy repairs > {REBUILD_RISE} keys per 1 s sample; + = still active "
                 "when the run ended")
    return t


def table_admission(result: dict[str, Any]) -> Table:
    t = Table(title=f"3. Admission controller per node, {result['concurrency']} in flight "
                    "(sampled every second)")
    for col in ("run", "node", "rate min/s", "rate mean/s", "rate max/s",
                "server p99 max ms", "throttled windows", "CPU (share of a core)"):
        t.add_column(col, justify="left" if col in ("run", "node") else "right")
    for r in result["runs"]:
        for i, (node, a) in enumerate(r["admission"].items()):
            cpu = r["cpu_nodes"][i] if i < len(r["cpu_nodes"]) else None
            if not a.get("samples"):
                t.add_row(r["scenario"], node, "-", "-", "-", "-", "-", _f(cpu, 2))
                continue
            t.add_row(r["scenario"], node, _f(a["rate_min"], 0), _f(a["rate_mean"], 0),
                      _f(a["rate_max"], 0), _f(a["foreground_p99_ms_max"]),
                      str(a["throttled_windows"]), _f(cpu, 2))
    return t


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each background run's figures over the mean of the two quiet runs."""
    quiet = [r for r in result["runs"] if r["scenario"].startswith("quiet")]
    if not quiet:
        return []

    def mean(path: tuple[str, ...]) -> float | None:
        values = [_get(r["whole"], path) for r in quiet]
        present = [v for v in values if v is not None]
        return sum(present) / len(present) if present else None

    base = {name: mean(path) for name, path in RATIO_FIELDS.items()}
    out = []
    for r in result["runs"]:
        if r["scenario"].startswith("quiet"):
            continue
        for part in ("whole", "while_active"):
            figures = r[part]
            if figures is None:
                continue
            row: dict[str, Any] = {"scenario": r["scenario"], "part": part}
            for name, path in RATIO_FIELDS.items():
                value, b = _get(figures, path), base[name]
                row[name] = round(value / b, 2) if value is not None and b else None
            out.append(row)
    return out


RATIO_FIELDS = {"ops_per_s": ("ops_per_s",), "p50": ("all", "p50_ms"),
                "p99": ("all", "p99_ms"), "p999": ("all", "p999_ms")}


def _get(figures: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = figures
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) else None


def table_ratios(result: dict[str, Any]) -> Table:
    rows = result["ratios_to_quiet"]
    t = Table(title=f"3. Background run / mean of the two quiet runs, {result['concurrency']} "
                    "in flight")
    for col in ("run", "part", "ops/s", "p50", "p99", "p99.9"):
        t.add_column(col, justify="left" if col in ("run", "part") else "right")
    for row in rows:
        t.add_row(row["scenario"], "whole" if row["part"] == "whole" else "while active",
                  *(_f(row[k], 2) for k in RATIO_FIELDS))
    return t


# ---- command line ------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or any(not 1 <= v <= 1_000_000 for v in values):
        raise argparse.ArgumentTypeError("each value must be between 1 and 1000000")
    return values


def _bounded(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Example: python bench/recovery.py --quick")
    p.add_argument("--quick", action="store_true",
                   help="a smaller run (defaults: K=1000,3000; 10000 keys; 10 differing keys; "
                        "2000 foreground keys, 8 in flight, 8 s runs, backlog 5000)")
    p.add_argument("--only", choices=("1", "2", "3", "all"), default="all",
                   help="which measurement to run (default: all)")
    p.add_argument("--keys-down", type=_int_list, metavar="K,...",
                   help="keys written while a node is down, one run each (default: 5000,20000)")
    p.add_argument("--keys-large", type=_bounded(int, 100, 10_000_000),
                   help="keys loaded before the anti-entropy runs (default: 50000)")
    p.add_argument("--diffs", type=_int_list, metavar="D,...",
                   help="differing keys of the small-difference runs (default: 10,100)")
    p.add_argument("--fg-keys", type=_bounded(int, 10, 10_000_000),
                   help="keys of the foreground load (default: 5000)")
    p.add_argument("--fg-seconds", type=_bounded(float, 1.0, 3600.0),
                   help="duration of each foreground run (default: 20)")
    p.add_argument("--fg-concurrency", type=_int_list, metavar="C,...",
                   help="foreground requests in flight; a fresh cluster and the four runs for "
                        "each (default: 8,32; --quick: 8)")
    p.add_argument("--backlog", type=_bounded(int, 1, 10_000_000),
                   help="keys written while n3 is down before the hint-backlog run "
                        "(default: 20000)")
    p.add_argument("--value-bytes", type=_bounded(int, 1, 1 << 20), default=1024,
                   help="value size in bytes (default: 1024)")
    p.add_argument("--ring-size", type=int, choices=(16, 32), default=16,
                   help="partitions on the ring (default: 16)")
    p.add_argument("--aae-interval", type=_bounded(float, 0.05, 60.0), metavar="S",
                   help="the nodes' --aae-interval (default: the node's own, 2 s)")
    p.add_argument("--load-concurrency", type=_bounded(int, 1, 1024), default=32,
                   help="puts in flight while writing keys (default: 32)")
    p.add_argument("--load-timeout", type=_bounded(float, 1.0, 24 * 3600.0), default=900.0,
                   metavar="S", help="give up writing keys after this long (default: 900)")
    p.add_argument("--converge-timeout", type=_bounded(float, 1.0, 3600.0), default=300.0,
                   metavar="S", help="give up waiting for convergence after this long "
                                     "(default: 300)")
    p.add_argument("--timeout", type=_bounded(float, 0.05, 600.0), default=5.0, metavar="S",
                   help="client timeout per request (default: 5)")
    p.add_argument("--seed", type=int, default=42, help="seed of values and key choice")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every figure here")
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the Ctrl-C path: every node is stopped on the way


def run(args: argparse.Namespace, console: Console, log: Log, report: dict[str, Any]) -> None:
    """Run the chosen measurements, filling ``report`` as each one ends."""
    values = make_values(args)
    report.update({
        "benchmark": "recovery", "argv": sys.argv[1:],
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_start": common.loadavg()},
        "cluster": {"nodes": 3, "n": N, "r": R, "w": W, "engine": "lmdb",
                    "ring_size": args.ring_size, "aae_interval": args.aae_interval},
    })
    t0 = time.monotonic()
    if args.only in ("1", "all"):
        report["down"] = [measure_down(args, k, values, log) for k in args.keys_down]
        console.print(table_down(report["down"]))
    if args.only in ("2", "all"):
        report["anti_entropy"] = measure_anti_entropy(args, values, log)
        console.print(table_wipe(report["anti_entropy"]))
        console.print(table_small(report["anti_entropy"]))
    if args.only in ("3", "all"):
        report["foreground"] = []
        for concurrency in args.fg_concurrency:
            fg = measure_foreground(args, concurrency, values, log)
            report["foreground"].append(fg)
            console.print(table_foreground(fg))
            console.print(table_admission(fg))
            console.print(table_ratios(fg))
    report["machine"]["loadavg_end"] = common.loadavg()
    report["seconds"] = round(time.monotonic() - t0, 1)


def main(argv: list[str] | None = None) -> int:
    args = resolve(build_parser().parse_args(argv))
    console = Console(width=None if sys.stdout.isatty() else 160)
    status = Console(stderr=True)
    t0 = time.monotonic()

    def log(text: str) -> None:
        status.print(f"[dim]{time.monotonic() - t0:7.1f}s[/] {text}", highlight=False)

    signal.signal(signal.SIGTERM, _raise_interrupt)
    report: dict[str, Any] = {}
    code = 0
    try:
        run(args, console, log, report)
    except KeyboardInterrupt:
        log("interrupted; every node this script started has been stopped")
        report["error"] = "interrupted"
        code = 130
    except (WaitTimeout, DynamoKVError, RuntimeError) as exc:
        log(f"error: {exc}")
        report["error"] = str(exc)
        code = 1
    if args.json:
        # Also after an error: the measurements that finished are kept.
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"results written to {args.json}")
    return code


if __name__ == "__main__":
    sys.exit(main())
