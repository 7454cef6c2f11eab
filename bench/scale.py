"""How a node's cost grows with the data it holds: start-up time and memory per million items.

One node process (N=1, LMDB, ring size 64 by default, so it owns every partition) on a data
directory holding ``--items`` objects of ``--value-bytes`` (1 KiB) in one Dynamo bucket. The
items are written straight into the engine (``NodeStore.put_objects``, batches of 1,000) while
the node is stopped, the fastest way to load a million; the node then starts on them, which is
what a restart after a crash or an upgrade looks like. Measured from the start:

- ``answers_s``: until the node answers a status request (it serves requests from then on);
- ``trees_s``: until every partition's anti-entropy tree is built (``trees_built == q``);
- the slowest native-client ``get`` while the trees were being built (does a request wait?);
- the node's memory once every tree is built: ``VmRSS`` and its parts ``RssAnon`` (the heap:
  trees, key digests, the interpreter) and ``RssFile`` (LMDB's memory-mapped pages, which the
  kernel may drop at will), less the same figures of the node started empty.

Subcommands, so that one fill serves several runs (e.g. the code before and after a change,
chosen by ``PYTHONPATH``, which the node processes inherit)::

    python bench/scale.py fill --dir /tmp/scale --items 1000000
    python bench/scale.py start --dir /tmp/scale [--json out.json]
    python bench/scale.py all --items 100000          # fill a temporary directory, start, remove
    python bench/scale.py idle --nodes 3 5 7          # CPU of idle clusters, per node

The node is stopped by PID (SIGTERM, then SIGKILL) when a run ends or fails.
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

import common
from recovery_cluster import NodeProc, wait_for

from dynamokv import Client
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.storage.lmdb_engine import LmdbEngine
from dynamokv.storage.node_store import NodeStore

BUCKET = "scale"
BATCH = 1_000


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _node(data: Path, q: int, address: str) -> NodeProc:
    argv = [sys.executable, "-m", "dynamokv", "node", "start", "--id", "n1", "--listen", address,
            "--data-dir", str(data / "node"), "--engine", "lmdb", "--ring-size", str(q),
            "--n", "1", "--r", "1", "--w", "1"]
    return NodeProc("n1", address, data / "node", data / "node.log", argv)


def _address() -> str:
    return f"{common.HOST}:{common.free_port_block(1, random.Random())}"


def _status(node: NodeProc, timeout_s: float = 5.0) -> dict[str, Any]:
    with Client([node.address], timeout_s=timeout_s) as c:
        return c.status()


def _memory_kib(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[name] = int(rest.split()[0])
    return out


def key_of(i: int) -> bytes:
    return b"k%09d" % i


def fill(data: Path, items: int, q: int, value_bytes: int) -> dict[str, Any]:
    """Start the node once (it claims its ring), stop it, then write ``items`` objects."""
    node = _node(data, q, _address())
    node.start()
    try:
        wait_for("the node to answer", lambda: _status(node, 1.0), timeout_s=60, interval_s=0.2)
    finally:
        node.stop()
    engine = LmdbEngine(data / "node" / "lmdb", map_size_bytes=64 * 1024**3)
    store = NodeStore(engine, q)
    rng = random.Random(1)
    value = rng.randbytes(value_bytes)
    t0 = time.monotonic()
    try:
        for start in range(0, items, BATCH):
            batch = []
            for i in range(start, min(items, start + BATCH)):
                clock = VectorClock.from_entries([("bench", i + 1, 0)])
                sib = Sibling(value, Dot("bench", i + 1), clock, 0)
                batch.append((BUCKET, key_of(i), VersionedObject((sib,))))
            store.put_objects(batch)
            if start % 100_000 == 0 and start:
                _log(f"filled {start:,} items")
        engine.sync()
    finally:
        engine.close()
    took = time.monotonic() - t0
    (data / "scale.json").write_text(json.dumps({"items": items, "q": q,
                                                 "value_bytes": value_bytes}))
    _log(f"filled {items:,} items of {value_bytes} B in {took:.1f} s")
    return {"items": items, "fill_s": round(took, 1)}


def _probe_gets(node: NodeProc, items: int, until: float, lat: list[float]) -> None:
    """Native-client gets of random keys, one at a time, until ``until`` (monotonic)."""
    rng = random.Random(2)
    with Client([node.address], timeout_s=30.0) as c:
        while time.monotonic() < until:
            t = time.monotonic()
            c.get(key_of(rng.randrange(max(items, 1))), bucket=BUCKET)
            lat.append(time.monotonic() - t)
            time.sleep(0.02)


def measure_start(data: Path, timeout_s: float) -> dict[str, Any]:
    meta = json.loads((data / "scale.json").read_text())
    q, items = int(meta["q"]), int(meta["items"])
    node = _node(data, q, _address())
    t0 = time.monotonic()
    node.start()
    try:
        wait_for("the node to answer", lambda: _status(node, 1.0), timeout_s=timeout_s,
                 interval_s=0.05)
        answers = time.monotonic() - t0
        _log(f"answers after {answers:.2f} s; building trees")
        lat: list[float] = []
        built = -1
        deadline = t0 + timeout_s
        while time.monotonic() < deadline:
            _probe_gets(node, items, time.monotonic() + 1.0, lat)
            built = int(_status(node, 30.0)["anti_entropy"]["trees_built"])
            if built >= q:
                break
        trees = time.monotonic() - t0
        _log(f"{built}/{q} trees after {trees:.1f} s")
        assert node.pid is not None
        mem = _memory_kib(node.pid)
        cpu = common._cpu_seconds(node.pid)
    finally:
        node.stop()
    lat.sort()
    return {"items": items, "q": q, "answers_s": round(answers, 2),
            "trees_built": built, "trees_s": round(trees, 1),
            "node_cpu_s": None if cpu is None else round(cpu, 1),
            "gets": len(lat), "get_p50_ms": round(1000 * common.percentile(lat, 50), 1),
            "get_p99_ms": round(1000 * common.percentile(lat, 99), 1),
            "get_max_ms": round(1000 * lat[-1], 1),
            "memory_kib": mem, "loadavg": common.loadavg()}


def idle_cost(counts: list[int], warmup_s: float, seconds: float) -> dict[str, Any]:
    """Per node, the CPU an idle cluster of each size spends (heartbeats to every peer, gossip,
    the anti-entropy rotation over in-sync pairs): the per-node cost that grows with the
    number of nodes rather than with requests."""
    out: dict[str, Any] = {}
    for count in counts:
        with common.LocalCluster(nodes=count, n=3, r=2, w=2) as cluster:
            time.sleep(warmup_s)  # the first trees are built, the first exchanges run
            meter = common.CpuMeter(cluster.pids)
            time.sleep(seconds)
            busy = [b for b in meter.busy() if b is not None]
            rss = [_memory_kib(pid)["RssAnon"] for pid in cluster.pids]
        out[str(count)] = {"cpu_per_node_pct": round(100 * sum(busy) / len(busy), 2),
                           "rss_anon_kib_per_node": round(sum(rss) / len(rss))}
        _log(f"{count} idle nodes: {out[str(count)]}")
    out["loadavg"] = common.loadavg()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("fill", "start", "all"):
        p = sub.add_parser(name)
        if name != "all":
            p.add_argument("--dir", type=Path, required=True)
        if name != "start":
            p.add_argument("--items", type=int, default=100_000)
            p.add_argument("--q", type=int, default=64)
            p.add_argument("--value-bytes", type=int, default=1024)
        p.add_argument("--timeout", type=float, default=1800.0)
        p.add_argument("--json", type=Path)
    idle = sub.add_parser("idle")
    idle.add_argument("--nodes", type=int, nargs="+", default=[3, 5, 7])
    idle.add_argument("--warmup", type=float, default=15.0)
    idle.add_argument("--seconds", type=float, default=20.0)
    idle.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    if args.command == "idle":
        result = idle_cost(args.nodes, args.warmup, args.seconds)
    elif args.command == "fill":
        args.dir.mkdir(parents=True, exist_ok=True)
        result = fill(args.dir, args.items, args.q, args.value_bytes)
    elif args.command == "start":
        result = measure_start(args.dir, args.timeout)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="dynamokv-scale-"))
        try:
            empty = tmp / "empty"
            empty.mkdir()
            fill(empty, 0, args.q, args.value_bytes)
            result["empty"] = measure_start(empty, args.timeout)
            full = tmp / "full"
            full.mkdir()
            result["fill"] = fill(full, args.items, args.q, args.value_bytes)
            result["full"] = measure_start(full, args.timeout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
