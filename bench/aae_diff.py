"""What one anti-entropy exchange costs against what it finds: a few differing keys among many.

Two replicas of the same data, each an LMDB engine under ``TreeStore`` (the node's store
wrapper), with their trees built. Replica B then gets ``--diff`` keys changed (random keys,
new values, written through B's store as a node writes). The real exchange code
(``core.exchange.AntiEntropy``) then runs over every partition, A asking and B answering,
in-process: every message (level and key requests and replies, the pushes and pulls of the
repair) is encoded with the wire codec and its bytes counted, and the exchange's CPU time on both
sides is measured (and its wall time, which adds nothing but this process being descheduled:
there is no network in between). It is set against a *full scan*: what an exchange without
trees costs, one side reading every stored object, digesting it and sending the
``(bucket, key, digest)`` listing of all of them (bytes of that listing; CPU time of the read,
digest and encoding, one side only, so the comparison flatters the scan).

    python bench/aae_diff.py --items 100000 --q 64 --diff 1
    python bench/aae_diff.py --items 1000000 --q 1 --diff 1     # all in one partition

After the exchange the bench checks that every root of A equals B's (the repair converged).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dynamokv.core.effects import Send
from dynamokv.core.exchange import AaeSettings, AntiEntropy
from dynamokv.core.messages import (
    AaeKeysReply,
    AaeKeysRequest,
    AaeLevelRequest,
    KeyDigest,
    Message,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaWrite,
)
from dynamokv.core.trees import TreeStore
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject, object_digest, sync
from dynamokv.storage.lmdb_engine import LmdbEngine
from dynamokv.storage.node_store import NodeStore
from dynamokv.wire.codec import encode

BUCKET = "aae"
BATCH = 1_000


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _obj(value: bytes, actor: str, counter: int) -> VersionedObject:
    clock = VectorClock.from_entries([(actor, counter, 0)])
    return VersionedObject((Sibling(value, Dot(actor, counter), clock, 0),))


def key_of(i: int) -> bytes:
    return b"k%09d" % i


def fill(path: Path, items: int, q: int, value_bytes: int) -> float:
    engine = LmdbEngine(path, map_size_bytes=64 * 1024**3)
    store = NodeStore(engine, q)
    value = random.Random(1).randbytes(value_bytes)
    t0 = time.monotonic()
    try:
        for start in range(0, items, BATCH):
            store.put_objects([(BUCKET, key_of(i), _obj(value, "fill", i + 1))
                               for i in range(start, min(items, start + BATCH))])
        engine.sync()
    finally:
        engine.close()
    return time.monotonic() - t0


class Replica:
    def __init__(self, path: Path, q: int, name: str) -> None:
        self.engine = LmdbEngine(path, map_size_bytes=64 * 1024**3)
        self.trees = TreeStore(NodeStore(self.engine, q), q)
        self.aae = AntiEntropy(name, self.trees, AaeSettings())
        self.q = q

    def build(self) -> float:
        t0 = time.monotonic()
        for p in range(self.q):
            self.trees.build(p)
        return time.monotonic() - t0

    def merge(self, bucket: str, key: bytes, obj: VersionedObject) -> None:
        local = self.trees.get(bucket, key)
        merged = sync(local, obj)
        if merged != local:
            self.trees.put(bucket, key, merged)


def _bytes(msg: Message) -> int:
    return len(encode(msg))


def exchange(a: Replica, b: Replica, partition: int) -> dict[str, int]:
    """One exchange of ``partition``, A asking B; bytes each way and messages."""
    sent = {"a_to_b": 0, "b_to_a": 0, "messages": 0, "repaired": 0}
    pending: list[Message] = [a.aae.start(partition, "b", 0)]
    while pending:
        msg = pending.pop(0)
        sent["a_to_b"] += _bytes(msg)
        sent["messages"] += 1
        effects: list[Any] = []
        if isinstance(msg, AaeLevelRequest):
            level_reply = b.aae.on_level_request(msg)
            sent["b_to_a"] += _bytes(level_reply)
            effects = a.aae.on_level_reply("b", level_reply, 0)
        elif isinstance(msg, AaeKeysRequest):
            keys_reply = b.aae.on_keys_request(msg)
            sent["b_to_a"] += _bytes(keys_reply)
            effects = a.aae.on_keys_reply("b", keys_reply, 0, a.trees.get,
                                          lambda bucket, key, node: True)
        elif isinstance(msg, ReplicaWrite):
            b.merge(msg.bucket, msg.key, msg.obj)
            sent["repaired"] += 1
        elif isinstance(msg, ReplicaRead):
            read_reply = ReplicaReadReply(msg.req_id, b.trees.get(msg.bucket, msg.key))
            sent["b_to_a"] += _bytes(read_reply)
            key = a.aae.take_pull(read_reply.req_id)
            if key is not None and read_reply.obj is not None:
                a.merge(key[0], key[1], read_reply.obj)
        pending.extend(e.msg for e in effects if isinstance(e, Send))
    return sent


def full_scan(a: Replica) -> tuple[int, float, float]:
    """Bytes of every ``(bucket, key, digest)`` of A, and the CPU and wall time to read, digest
    and encode them (one partition at a time)."""
    total = 0
    t0, c0 = time.monotonic(), time.process_time()
    for p in range(a.q):
        listing = tuple(KeyDigest(bk, k, object_digest(o))
                        for bk, k, o in a.trees.fold_partition(p))
        total += _bytes(AaeKeysReply(0, listing))
    return total, time.process_time() - c0, time.monotonic() - t0


def run(items: int, q: int, diff: int, value_bytes: int, root: Path) -> dict[str, Any]:
    fill_s = fill(root / "a", items, q, value_bytes)
    _log(f"filled {items:,} items in {fill_s:.1f} s; copying to the second replica")
    shutil.copytree(root / "a", root / "b")
    a, b = Replica(root / "a", q, "a"), Replica(root / "b", q, "b")
    try:
        build_a, build_b = a.build(), b.build()
        _log(f"trees built in {build_a:.1f} s and {build_b:.1f} s")
        rng = random.Random(3)
        for n, i in enumerate(rng.sample(range(items), diff)):
            b.trees.put(BUCKET, key_of(i), _obj(b"changed", "b", n + 1))
        t0, w0 = time.process_time(), time.monotonic()
        totals = {"a_to_b": 0, "b_to_a": 0, "messages": 0, "repaired": 0}
        for p in range(q):
            for name, value in exchange(a, b, p).items():
                totals[name] += value
        exchange_s, exchange_wall = time.process_time() - t0, time.monotonic() - w0
        converged = all(a.trees.trees[p].tree.root() == b.trees.trees[p].tree.root()
                        for p in range(q))
        _log(f"exchange: {totals} in {exchange_s * 1000:.1f} ms CPU; converged {converged}")
        scan_bytes, scan_s, scan_wall = full_scan(a)
        _log(f"full scan: {scan_bytes:,} B in {scan_s:.1f} s CPU")
    finally:
        a.engine.close()
        b.engine.close()
    exchange_bytes = totals["a_to_b"] + totals["b_to_a"]
    return {"items": items, "q": q, "diff": diff, "value_bytes": value_bytes,
            "fill_s": round(fill_s, 1), "build_s": [round(build_a, 1), round(build_b, 1)],
            "exchange": totals, "exchange_bytes": exchange_bytes,
            "exchange_cpu_ms": round(exchange_s * 1000, 1),
            "exchange_wall_ms": round(exchange_wall * 1000, 1),
            "full_scan_bytes": scan_bytes, "full_scan_cpu_s": round(scan_s, 2),
            "full_scan_wall_s": round(scan_wall, 2),
            "bytes_ratio_pct": round(100 * exchange_bytes / scan_bytes, 4),
            "cpu_ratio_pct": round(100 * exchange_s / scan_s, 4),
            "converged": converged}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--q", type=int, default=64, help="partitions (1: all keys in one)")
    parser.add_argument("--diff", type=int, default=1, help="keys changed on one replica")
    parser.add_argument("--value-bytes", type=int, default=1024)
    parser.add_argument("--dir", type=Path, help="where the two replicas go (default: a "
                        "temporary directory, removed afterwards)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="dynamokv-aae-", dir=args.dir))
    try:
        result = run(args.items, args.q, args.diff, args.value_bytes, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if result["converged"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
