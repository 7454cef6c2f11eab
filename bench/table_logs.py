"""DynamoDB tables on partition logs: the costs and failover a user of the table API sees.

One 3-node cluster (N=3, LMDB), the DynamoDB API over HTTP keep-alive, 1 KiB items, in one run:

* throughput and latency, runs interleaved round by round so drift in the machine's load
  favours none: plain PutItem (loadgen W), eventually consistent GetItem (loadgen C),
  ConsistentRead GetItem (loadgen C --consistent-read), and conditional PutItem (this script:
  ``ConditionExpression: attribute_not_exists(pk) OR v <> :x``, which always passes, so every
  request pays the condition's full path). The issue's bars: ConsistentRead >= 0.6x eventual
  GetItem, conditional >= 0.7x plain PutItem;
* failover: writes to 64 keys (spread over every partition) in a loop while the node leading
  the most partitions is killed with SIGKILL; per key, the gap between its last acknowledged
  write before the kill and its first one after (the longest is when every partition the dead
  node led had a new leader serving writes);
* write p99 while a fourth node joins (its groups take replicas, snapshots, transfers), in
  1-second windows before, during and after the join.

    python bench/table_logs.py --duration 10 --rounds 2 --json results.json

Every process started here is stopped by PID at the end, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

HERE = Path(__file__).resolve().parent
LOADGEN = HERE.parent.parent / "shared" / "tools" / "loadgen.py"
TABLE = "usertable"


def log(text: str) -> None:
    print(f"[table-logs] {text}", file=sys.stderr, flush=True)


def load_loadgen(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("loadgen", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadgen"] = module
    spec.loader.exec_module(module)
    return module


def loadgen(args: argparse.Namespace, urls: list[str], extra: list[str]) -> dict[str, Any]:
    argv = [sys.executable, str(args.loadgen), "--endpoint", ",".join(urls), "--table", TABLE,
            "--records", str(args.records), "--value-size", str(args.value_size),
            "--seed", "7", "--quiet", *extra]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=args.duration + args.warmup + 300, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    return dict(json.loads(lines[-1]))


def measure(args: argparse.Namespace, urls: list[str], workload: str, consistent: bool
            ) -> dict[str, Any]:
    extra = ["--workload", workload, "--concurrency", str(args.concurrency),
             "--duration", str(args.duration), "--warmup", str(args.warmup), "--skip-load",
             "--timeout", "10"]
    if consistent:
        extra.append("--consistent-read")
    raw = loadgen(args, urls, extra)
    op = "write" if workload == "W" else "read"
    return {"ops_per_s": raw["ops_per_s"], "errors": raw["errors"],
            "p50_ms": raw[op].get("p50_ms"), "p99_ms": raw[op].get("p99_ms")}


async def conditional_puts(lg: ModuleType, urls: list[str], args: argparse.Namespace
                           ) -> dict[str, Any]:
    """``--concurrency`` connections, each one conditional PutItem in flight."""
    loop = asyncio.get_running_loop()
    signer = lg.Signer("us-east-1", "AKIDBENCH", "bench-secret", False)
    eps = [lg.Endpoint(u) for u in urls]
    value = "x" * args.value_size
    latencies: list[float] = []
    errors = [0]
    t_meas = time.perf_counter() + args.warmup
    t_end = t_meas + args.duration

    async def worker(i: int) -> None:
        ep = eps[i % len(eps)]
        conn = await lg.open_conn(loop, ep.host, ep.port)
        n = i
        while (t0 := time.perf_counter()) < t_end:
            n += args.concurrency
            key = f"user{(n * 2654435761) % args.records}"
            body = json.dumps({
                "TableName": TABLE, "Item": {"pk": {"S": key}, "v": {"S": value}},
                "ConditionExpression": "attribute_not_exists(pk) OR v <> :x",
                "ExpressionAttributeValues": {":x": {"S": "never"}}}).encode()
            try:
                if conn.closed:
                    conn = await lg.open_conn(loop, ep.host, ep.port)
                status, _ = await asyncio.wait_for(
                    conn.request(lg.build_request(ep.hostport, "PutItem", body, signer)), 10)
            except (lg.ConnClosed, OSError, TimeoutError):
                errors[0] += 1
                await asyncio.sleep(0.05)
                continue
            if t0 >= t_meas:
                if status == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[0] += 1

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    latencies.sort()
    stats = common.summarize(latencies)
    return {"ops_per_s": round(len(latencies) / args.duration, 1), "errors": errors[0],
            "p50_ms": stats.get("p50_ms"), "p99_ms": stats.get("p99_ms")}


def leaders_per_node(cluster: common.LocalCluster) -> dict[str, int]:
    from dynamokv import Client

    out: dict[str, int] = {}
    for node in manifest(cluster)["nodes"]:
        with contextlib.suppress(Exception), Client(node["address"]) as client:
            out[node["id"]] = int(client.status()["table_logs"]["leading"])
    return out


def manifest(cluster: common.LocalCluster) -> dict[str, Any]:
    assert cluster.data_dir is not None
    return dict(json.loads((cluster.data_dir / "cluster" / "cluster.json").read_text()))


async def write_loop(lg: ModuleType, url: str, keys: list[str], stop: asyncio.Event,
                     acked: dict[str, list[float]]) -> None:
    """Write every key in turn, one request in flight per key, recording acknowledgement times."""
    loop = asyncio.get_running_loop()
    signer = lg.Signer("us-east-1", "AKIDBENCH", "bench-secret", False)
    ep = lg.Endpoint(url)

    async def one(key: str) -> None:
        conn = await lg.open_conn(loop, ep.host, ep.port)
        n = 0
        while not stop.is_set():
            n += 1
            body = json.dumps({"TableName": TABLE, "Item": {"pk": {"S": key},
                                                            "v": {"N": str(n)}}}).encode()
            t0 = time.perf_counter()
            try:
                if conn.closed:
                    conn = await lg.open_conn(loop, ep.host, ep.port)
                status, _ = await asyncio.wait_for(
                    conn.request(lg.build_request(ep.hostport, "PutItem", body, signer)), 5)
            except (lg.ConnClosed, OSError, TimeoutError):
                await asyncio.sleep(0.05)
                continue
            if status == 200:
                done = time.perf_counter()
                acked.setdefault(key, []).append(done)
                acked.setdefault("_lat", []).append(done - t0)
                acked.setdefault("_at", []).append(done)
            else:
                await asyncio.sleep(0.02)

    await asyncio.gather(*(one(k) for k in keys))


async def failover(lg: ModuleType, cluster: common.LocalCluster, http: list[str]
                   ) -> dict[str, Any]:
    leaders = leaders_per_node(cluster)
    victim = max(leaders, key=lambda n: leaders[n])
    nodes = {n["id"]: n for n in manifest(cluster)["nodes"]}
    survivor = next(n for n in nodes if n != victim)
    keys = [f"failover{i}" for i in range(64)]
    acked: dict[str, list[float]] = {}
    stop = asyncio.Event()
    task = asyncio.create_task(write_loop(lg, f"http://{nodes[survivor]['http_address']}",
                                          keys, stop, acked))
    await asyncio.sleep(3)
    killed_at = time.perf_counter()
    os.kill(int(nodes[victim]["pid"]), signal.SIGKILL)
    log(f"killed {victim} (it led {leaders[victim]} partitions)")
    await asyncio.sleep(15)
    stop.set()
    await task
    gaps = []
    for key in keys:
        times = acked.get(key, [])
        before = [t for t in times if t <= killed_at]
        after = [t for t in times if t > killed_at]
        if before and after:
            gaps.append(after[0] - before[-1])
        else:
            gaps.append(float("inf"))
    gaps.sort()
    return {"victim": victim, "partitions_led": leaders[victim],
            "gap_p50_s": round(gaps[len(gaps) // 2], 3), "gap_max_s": round(gaps[-1], 3),
            "keys_never_resumed": sum(1 for g in gaps if g == float("inf"))}


JOINED: list[subprocess.Popen[bytes]] = []  # nodes join_p99 started, stopped at the end


def table_logs_status(address: str) -> dict[str, Any] | None:
    from dynamokv import Client

    try:
        with Client(address) as client:
            return dict(client.status()["table_logs"])
    except Exception:
        return None


def start_fourth_node(cluster: common.LocalCluster) -> tuple[subprocess.Popen[bytes], str]:
    import random

    assert cluster.data_dir is not None
    base = common.free_port_block(2, random.Random())
    address = f"127.0.0.1:{base}"
    data = cluster.data_dir / "cluster" / "n4"
    data.mkdir(parents=True, exist_ok=True)
    n, r, w = cluster.quorum
    argv = [sys.executable, "-m", "dynamokv", "node", "start", "--id", "n4", "--listen",
            address, "--data-dir", str(data), "--seeds", cluster.addresses[0],
            "--http", f"127.0.0.1:{base + 1}", "--engine", cluster.engine,
            "--n", str(n), "--r", str(r), "--w", str(w)]
    with open(data / "node.log", "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return proc, address


def _p99_ms(values: list[float]) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(common.percentile(values, 99) * 1000, 1)


async def join_p99(lg: ModuleType, cluster: common.LocalCluster, http: list[str],
                   settle_max_s: float = 120.0) -> dict[str, Any]:
    """Write p99 in the 5 s before a fourth node joins, while its groups settle (replicas,
    snapshots, leadership transfers), and in the 5 s after."""
    keys = [f"join{i}" for i in range(64)]
    acked: dict[str, list[float]] = {}
    stop = asyncio.Event()
    task = asyncio.create_task(write_loop(lg, http[0], keys, stop, acked))
    await asyncio.sleep(5)
    joined_at = time.perf_counter()
    proc, address = start_fourth_node(cluster)
    log(f"n4 joining at {address}")
    settled_at = None
    calm = 0
    try:
        while time.perf_counter() - joined_at < settle_max_s:
            await asyncio.sleep(1)
            mine = await asyncio.to_thread(table_logs_status, address)
            others = [await asyncio.to_thread(table_logs_status, a) for a in cluster.addresses]
            sending = sum(int(o["snapshots_sending"]) for o in others if o) + (
                int(mine["snapshots_sending"]) if mine else 0)
            calm = calm + 1 if mine and int(mine["leading"]) > 0 and sending == 0 else 0
            if calm >= 3:
                settled_at = time.perf_counter() - 3
                break
        await asyncio.sleep(5)
    finally:
        stop.set()
        await task
        # n4 stays up: it now holds replicas, and the failover run kills one node only. The
        # cluster's stop sweeps it with the others (its data dir is inside the cluster's).
        JOINED.append(proc)
    end = settled_at if settled_at is not None else time.perf_counter()
    pairs = list(zip(acked.get("_at", []), acked.get("_lat", []), strict=True))
    before = [lat for at, lat in pairs if at < joined_at]
    during = [lat for at, lat in pairs if joined_at <= at < end]
    after = [lat for at, lat in pairs if at >= end]
    return {"settled_s": None if settled_at is None else round(settled_at - joined_at, 1),
            "before": {"writes": len(before), "p99_ms": _p99_ms(before)},
            "during": {"writes": len(during), "p99_ms": _p99_ms(during)},
            "after": {"writes": len(after), "p99_ms": _p99_ms(after)}}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--loadgen", type=Path, default=LOADGEN)
    p.add_argument("--json", type=Path, help="write the raw results here")
    p.add_argument("--skip-failover", action="store_true")
    p.add_argument("--skip-join", action="store_true")
    p.add_argument("--only-faults", action="store_true",
                   help="skip the throughput rounds: measure the join and the failover only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    lg = load_loadgen(args.loadgen)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "loadavg_start": common.loadavg(), "rounds": []}
    with common.LocalCluster(nodes=3, log=log) as cluster:
        http = [f"http://{n['http_address']}" for n in manifest(cluster)["nodes"]]
        log(f"cluster up: {http}; loading {args.records} items")
        loadgen(args, http, ["--load-only", "--force-load"])
        for r in range(0 if args.only_faults else args.rounds):
            row: dict[str, Any] = {}
            order = [("W", False), ("C", False), ("C", True), ("WC", False)]
            if r % 2:
                order.reverse()
            for workload, consistent in order:
                name = {"W": "put", "C": "get_consistent" if consistent else "get",
                        "WC": "put_conditional"}[workload]
                log(f"round {r + 1}: {name}")
                if workload == "WC":
                    row[name] = asyncio.run(conditional_puts(lg, http, args))
                else:
                    row[name] = measure(args, http, workload, consistent)
            report["rounds"].append(row)
            log(json.dumps(row))
        if report["rounds"]:
            names = ("put", "get", "get_consistent", "put_conditional")
            mean = {n: sum(row[n]["ops_per_s"] for row in report["rounds"]) / args.rounds
                    for n in names}
            report["mean_ops_per_s"] = mean
            report["ratios"] = {
                "consistent_get:get": round(mean["get_consistent"] / mean["get"], 2),
                "conditional_put:put": round(mean["put_conditional"] / mean["put"], 2),
            }
        if not args.skip_join:
            report["join"] = asyncio.run(join_p99(lg, cluster, http))
            log(json.dumps(report["join"]))
        if not args.skip_failover:
            report["failover"] = asyncio.run(failover(lg, cluster, http))
    for proc in JOINED:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    report["loadavg_end"] = common.loadavg()
    print(json.dumps({k: report[k] for k in report if k != "args"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
