"""DynamoDB API throughput, latency, CPU per op: dynamokv (1 and 3 nodes) against dynalite.

Every server is started by this script, on free ports of 127.0.0.1, and stays up for the whole
run; each measured run then targets one of them (``--targets``, default all three):

* dynamokv-1: ``python -m dynamokv cluster up --nodes 1 --detach`` (one node process, N=1 R=1
  W=1, lmdb);
* dynamokv-3: ``python -m dynamokv cluster up --detach`` (3 node processes, N=3 R=2 W=2, lmdb),
  every node serving the DynamoDB API over HTTP; the load generator's connections are spread
  round robin over the three nodes' HTTP endpoints (each node coordinates what it receives);
* dynalite: one Node.js process, started with ``../shared/tools/peers.sh start dynalite PORT``
  (in memory; ``--dynalite-flavour dynalite-disk`` for its LevelDB-on-disk mode).

Workloads, over HTTP/1.1 keep-alive, ``--concurrency`` connections with one request in flight
each (closed loop):

    C  100% GetItem          W  100% PutItem (overwrite)      A  50% GetItem / 50% PutItem
    Q  100% Query (one partition key, all its items)

C, W and A are run by ``../shared/tools/loadgen.py`` (YCSB-style, scrambled zipfian keys over
``--records`` preloaded items of ``--value-size`` bytes); loadgen has no Query workload, so Q is
run by this script itself, on loadgen's own cheap HTTP client (its module is imported), against
a second table of ``--query-partitions`` partition keys with ``--query-items`` items each.

Runs are interleaved: per workload every target runs once per round, back to back, and the
order is reversed from one round (and workload) to the next, so that drift in the machine's load
does not favour any. The summary gives, per workload and target, the median over rounds of
ops/s, p50/p99/p99.9 latency and server CPU per operation (CPU seconds of the server processes
over the measured window divided by the operations completed), and the ratios of each dynamokv
target to dynalite, taken within a round, then the median over rounds.

    python bench/dynamodb_vs_dynalite.py --duration 10 --rounds 2 --json results.json
    python bench/dynamodb_vs_dynalite.py --targets dynalite,dynamokv-1 --workloads W,C

Every process started here is stopped by PID at the end, also after an error, Ctrl-C or SIGTERM
(the cluster with ``cluster down`` then SIGKILL, dynalite with ``peers.sh stop PID``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import common
import orjson

from dynamokv import Client

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO.parent / "shared" / "tools"  # ../shared/tools, relative to the repository
DYNAMOKV_TARGETS = {"dynamokv-1": (1, 1, 1, 1), "dynamokv-3": (3, 3, 2, 2)}  # nodes, N, R, W
ALL_TARGETS = ("dynalite", *DYNAMOKV_TARGETS)
BASELINE = "dynalite"
LOADGEN_WORKLOADS = {"C": "100% GetItem", "W": "100% PutItem", "A": "50% GetItem / 50% PutItem"}
ALL_WORKLOADS = {**LOADGEN_WORKLOADS, "Q": "100% Query"}
USER_TABLE = "usertable"
QUERY_TABLE = "querytable"
SETUP_TIMEOUT_S = 60.0
PEERS_TIMEOUT_S = 300.0  # `peers.sh start` installs dynalite with npm on first use
RUN_SLACK_S = 90.0  # a loadgen run may take warmup + duration + this, then it is killed


class SetupError(RuntimeError):
    pass


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the Ctrl-C path: every finally block runs


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- servers -------------------------------------------------------------------------------------


def start_dynalite(peers_sh: Path, flavour: str, port: int) -> int:
    done = subprocess.run(["bash", str(peers_sh), "start", flavour, str(port)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=PEERS_TIMEOUT_S, check=False)
    words = done.stdout.split()
    if done.returncode != 0 or len(words) < 3 or not words[-1].isdigit():
        raise SetupError(f"peers.sh start {flavour} {port} failed: {done.stdout} {done.stderr}")
    return int(words[-1])


def stop_dynalite(peers_sh: Path, pid: int) -> None:
    try:
        subprocess.run(["bash", str(peers_sh), "stop", str(pid)], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, 0)
        os.kill(pid, signal.SIGKILL)  # still there after peers.sh stop: ours, by PID


def ring_complete(addresses: list[str], want: int) -> bool:
    for address in addresses:
        try:
            with Client([address], timeout_s=2.0) as c:
                ring = c.ring()
        except Exception:  # not ready yet: asked again until the deadline
            return False
        if len(ring.members) < want or len(set(ring.owners)) < want:
            return False
    return True


def wait_until(what: str, check: Any, timeout_s: float = SETUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            raise SetupError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


# ---- loadgen -------------------------------------------------------------------------------------


def load_loadgen_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("loadgen", path)
    if spec is None or spec.loader is None:
        raise SetupError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_loadgen(args: argparse.Namespace, urls: list[str], extra: list[str],
                timeout_s: float) -> dict[str, Any]:
    argv = [sys.executable, str(args.loadgen), "--endpoint", ",".join(urls),
            "--table", USER_TABLE, "--records", str(args.records),
            "--value-size", str(args.value_size), "--seed", str(args.seed), "--quiet", *extra]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SetupError(f"loadgen failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def preload(args: argparse.Namespace, urls: list[str]) -> dict[str, Any]:
    """loadgen's preload, tried again while a fresh cluster's partition logs elect leaders."""
    for attempt in range(1, 6):
        try:
            return run_loadgen(args, urls,
                               ["--load-only", "--force-load", "--load-concurrency", "16"],
                               args.load_timeout)
        except SetupError as exc:
            if attempt == 5:
                raise
            log(f"  preload attempt {attempt} failed ({str(exc)[-160:]}); again in 3 s")
            time.sleep(3.0)
    raise AssertionError("unreachable")


def measure_loadgen(args: argparse.Namespace, target: str, urls: list[str], workload: str,
                    pids: list[int]) -> dict[str, Any]:
    extra = ["--workload", workload, "--concurrency", str(args.concurrency),
             "--duration", str(args.duration), "--warmup", str(args.warmup), "--skip-load",
             "--timeout", str(args.timeout), "--server-pid", ",".join(map(str, pids)),
             "--label", f"{target} {workload}"]
    if args.consistent_read:
        extra.append("--consistent-read")
    raw = run_loadgen(args, urls, extra, args.warmup + args.duration + RUN_SLACK_S)
    server = raw.get("server_cpu") or {}
    return {
        "ops_per_s": raw["ops_per_s"], "ops": raw["ops"],
        "read": raw["read"], "write": raw["write"],
        "errors": raw["errors"], "error_types": raw["error_types"],
        "read_misses": raw["read_misses"], "timeouts": raw["timeouts"],
        "server_cpu_pct": round(sum(v["cpu_pct"] for v in server.values()), 1),
        "server_cpu_us_per_op": round(sum(v["cpu_us_per_op"] or 0 for v in server.values()), 1),
        "loadgen_cpu_pct": raw.get("loadgen_cpu_pct"),
        "host_cpu_busy_pct": raw.get("host_cpu_busy_pct"),
        "other_cpu_pct": raw.get("other_cpu_pct"),
        "loadgen": raw,
    }


# ---- the query table and phase (loadgen has no Query workload) -----------------------------------


def pk_of(i: int) -> str:
    return f"part{i:06d}"


async def query_setup(lg: ModuleType, urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Create the query table through the first endpoint and fill it through all of them."""
    signer = lg.Signer("us-east-1", "AKIDBENCH", "bench-secret", False)
    eps = [lg.Endpoint(u) for u in urls]
    conn: list[Any] = [None]
    try:
        st, data = await lg.call(conn, eps[0], signer, "CreateTable", {
            "TableName": QUERY_TABLE,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                     {"AttributeName": "sk", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
            "BillingMode": "PAY_PER_REQUEST"})
        if st != 200 and lg.err_type(data) != "ResourceInUseException":
            raise SetupError(f"CreateTable {QUERY_TABLE}: {st} {data}")
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        while True:
            st, data = await lg.call(conn, eps[0], signer, "DescribeTable",
                                     {"TableName": QUERY_TABLE})
            if st == 200 and data["Table"]["TableStatus"] == "ACTIVE":
                break
            if time.monotonic() > deadline:
                raise SetupError(f"{QUERY_TABLE} not ACTIVE: {st} {data}")
            await asyncio.sleep(0.1)
    finally:
        if conn[0] is not None:
            conn[0].transport.close()

    value = "x" * args.query_value_size
    batches = []
    for p in range(args.query_partitions):
        items = [{"PutRequest": {"Item": {"pk": {"S": pk_of(p)}, "sk": {"N": str(s)},
                                          "v": {"S": value}}}}
                 for s in range(args.query_items)]
        batches += [items[i:i + 25] for i in range(0, len(items), 25)]
    errors: dict[str, int] = {}
    started = time.perf_counter()

    async def loader(ep: Any) -> None:
        c: list[Any] = [None]
        try:
            while batches:
                reqs = batches.pop()
                for attempt in range(20):  # bounded: UnprocessedItems re-sent at most 20 times
                    st, data = await lg.call(c, ep, signer, "BatchWriteItem",
                                             {"RequestItems": {QUERY_TABLE: reqs}})
                    if st != 200:
                        errors[lg.err_type(data)] = errors.get(lg.err_type(data), 0) + 1
                        await asyncio.sleep(0.05 * (attempt + 1))
                        continue
                    reqs = data.get("UnprocessedItems", {}).get(QUERY_TABLE, [])
                    if not reqs:
                        break
                else:
                    raise SetupError(f"BatchWriteItem into {QUERY_TABLE} keeps failing: {errors}")
        finally:
            if c[0] is not None:
                c[0].transport.close()

    await asyncio.wait_for(asyncio.gather(*[loader(eps[i % len(eps)]) for i in range(8)]),
                           timeout=args.load_timeout)
    seconds = time.perf_counter() - started
    items = args.query_partitions * args.query_items
    return {"items": items, "seconds": round(seconds, 2),
            "items_per_s": round(items / seconds, 1), "errors": errors}


async def query_phase(lg: ModuleType, urls: list[str], args: argparse.Namespace,
                      pids: list[int], seed: int) -> dict[str, Any]:
    """``--concurrency`` connections, each one Query in flight, for warmup + duration."""
    loop = asyncio.get_running_loop()
    signer = lg.Signer("us-east-1", "AKIDBENCH", "bench-secret", False)
    eps = [lg.Endpoint(u) for u in urls]
    expected = args.query_items
    extra = ',"ConsistentRead":true' if args.consistent_read else ""
    prefix = ('{"TableName":"' + QUERY_TABLE + '","KeyConditionExpression":"pk = :p",'
              '"ExpressionAttributeValues":{":p":{"S":"').encode()
    suffix = ('"}}' + extra + "}").encode()
    # cheap check of a complete answer without parsing it (parsed only when this fails)
    full_counts = (f'"Count":{expected},'.encode(), f'"Count":{expected}}}'.encode())
    latencies: list[float] = []
    errors: dict[str, int] = {}
    short = [0]  # answers with fewer items than the partition holds
    conns: list[Any] = []
    for i in range(args.concurrency):
        conns.append(await lg.open_conn(loop, eps[i % len(eps)].host, eps[i % len(eps)].port))
    t_meas = time.perf_counter() + args.warmup
    t_end = t_meas + args.duration
    meter: dict[str, Any] = {}

    async def start_meter() -> None:
        await asyncio.sleep(max(0.0, t_meas - time.perf_counter()))
        meter["cpu"] = common.CpuMeter([os.getpid(), *pids])
        meter["host"] = lg.host_cpu()

    async def worker(i: int) -> None:
        rng = random.Random(seed * 7919 + i)
        ep = eps[i % len(eps)]
        conn = conns[i]
        for _ in range(10_000_000):  # bounded; the clock ends it long before
            t0 = time.perf_counter()
            if t0 >= t_end:
                return
            body = b"".join((prefix, pk_of(rng.randrange(args.query_partitions)).encode(),
                             suffix))
            try:
                if conn.closed:
                    conn = await lg.open_conn(loop, ep.host, ep.port)
                status, answer = await asyncio.wait_for(
                    conn.request(lg.build_request(ep.hostport, "Query", body, signer)),
                    timeout=args.timeout)
            except (lg.ConnClosed, OSError, TimeoutError) as exc:
                if t0 >= t_meas:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                with contextlib.suppress(Exception):
                    conn.transport.close()
                await asyncio.sleep(0.05)
                continue
            t1 = time.perf_counter()
            if t0 < t_meas:
                continue
            if status != 200:
                try:
                    name = lg.err_type(orjson.loads(answer))
                except orjson.JSONDecodeError:
                    name = f"HTTP{status}"
                errors[name] = errors.get(name, 0) + 1
                continue
            latencies.append(t1 - t0)
            if (full_counts[0] not in answer and full_counts[1] not in answer
                    and orjson.loads(answer).get("Count") != expected):
                short[0] += 1

    starter = asyncio.ensure_future(start_meter())
    try:
        await asyncio.gather(*[worker(i) for i in range(args.concurrency)])
    finally:
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.transport.close()
    await starter
    busy = meter["cpu"].busy()
    h0, h1 = meter["host"], lg.host_cpu()
    elapsed = time.perf_counter() - meter["cpu"].start
    summary = common.summarize(latencies)
    ops = len(latencies)
    server_cpu = sum(b or 0.0 for b in busy[1:])
    dt = h1[0] - h0[0]
    return {
        "ops_per_s": round(ops / elapsed, 1), "ops": ops,
        "read": {"n": ops, "mean_ms": summary["mean_ms"], "p50_ms": summary["p50_ms"],
                 "p99_ms": summary["p99_ms"], "p999_ms": summary["p999_ms"],
                 "max_ms": summary["max_ms"]},
        "write": {"n": 0},
        "errors": sum(errors.values()), "error_types": errors, "short_answers": short[0],
        "items_per_query": expected,
        "server_cpu_pct": round(100 * server_cpu, 1),
        "server_cpu_us_per_op": round(1e6 * server_cpu * elapsed / ops, 1) if ops else None,
        "loadgen_cpu_pct": round(100 * (busy[0] or 0.0), 1),
        "host_cpu_busy_pct": round(100.0 * (dt - (h1[1] - h0[1])) / dt, 1) if dt else None,
        "other_cpu_pct": (round((os.cpu_count() or 1) * 100.0 * (dt - (h1[1] - h0[1])) / dt
                                - 100 * (busy[0] or 0.0) - 100 * server_cpu, 1)
                          if dt else None),
    }


# ---- the run -------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    lg = load_loadgen_module(args.loadgen)
    try:
        import uvloop
        new_loop: Any = uvloop.new_event_loop
        loop_name = "uvloop"
    except ImportError:
        new_loop, loop_name = None, "asyncio"
    report: dict[str, Any] = {
        "benchmark": "dynamodb_vs_dynalite", "argv": sys.argv[1:],
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "query_client_loop": loop_name,
                    "loadavg_start": common.loadavg()},
        "results": [],
    }
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    urls: dict[str, list[str]] = {}
    pids: dict[str, list[int]] = {}
    report["servers"] = {}
    with contextlib.ExitStack() as stack, asyncio.Runner(loop_factory=new_loop) as runner:
        # -- servers
        for target in targets:
            if target == BASELINE:
                port = common.free_port_block(1, random.Random())
                log(f"starting {args.dynalite_flavour} on 127.0.0.1:{port} with peers.sh")
                dynalite_pid = start_dynalite(args.peers, args.dynalite_flavour, port)
                stack.callback(stop_dynalite, args.peers, dynalite_pid)
                urls[target] = [f"http://127.0.0.1:{port}"]
                pids[target] = [dynalite_pid]
                report["servers"][target] = {"flavour": args.dynalite_flavour}
                continue
            nodes, n, r, w = DYNAMOKV_TARGETS[target]
            log(f"starting a {nodes}-node dynamokv cluster (N={n} R={r} W={w}, lmdb)")
            cluster = stack.enter_context(common.LocalCluster(nodes=nodes, n=n, r=r, w=w,
                                                              engine="lmdb", log=log))
            assert cluster.data_dir is not None
            manifest = json.loads((cluster.data_dir / "cluster" / "cluster.json").read_text())
            urls[target] = [f"http://{node['http_address']}" for node in manifest["nodes"]]
            pids[target] = list(cluster.pids)
            wait_until(f"every node of {target} to join the ring",
                       lambda c=cluster, k=nodes: ring_complete(c.addresses, k))
            report["servers"][target] = {"nodes": nodes, "n": n, "r": r, "w": w,
                                         "engine": "lmdb", "endpoints": len(urls[target])}

        # -- data
        report["load"] = {}
        for target in targets:
            log(f"{target}: preloading {args.records} items of {args.value_size} B, and "
                f"{args.query_partitions} x {args.query_items} query items")
            loaded = preload(args, urls[target])
            query_loaded = (runner.run(query_setup(lg, urls[target], args))
                            if "Q" in workloads else None)
            report["load"][target] = {"usertable": loaded.get("load"), "querytable": query_loaded}

        # -- measured runs, ABBA per workload
        for round_no in range(args.rounds):
            for index, workload in enumerate(workloads):
                order = targets if (round_no + index) % 2 == 0 else targets[::-1]
                for target in order:
                    log(f"round {round_no + 1}/{args.rounds}, workload {workload} "
                        f"({ALL_WORKLOADS[workload]}), {target}: {args.duration:g} s")
                    if workload == "Q":
                        result = runner.run(asyncio.wait_for(
                            query_phase(lg, urls[target], args, pids[target], args.seed + round_no),
                            timeout=args.warmup + args.duration + RUN_SLACK_S))
                    else:
                        result = measure_loadgen(args, target, urls[target], workload,
                                                 pids[target])
                    result.update({"round": round_no + 1, "workload": workload,
                                   "target": target, "loadavg": common.loadavg()})
                    report["results"].append(result)
                    fig = _figures(result)
                    log(f"  {result['ops_per_s']:.0f} ops/s, p50/p99/p99.9 {fig['p50_ms']}/"
                        f"{fig['p99_ms']}/{fig['p999_ms']} ms, errors {result['errors']}, "
                        f"server CPU {result['server_cpu_pct']:.0f}% of a core "
                        f"({result['server_cpu_us_per_op']} us/op)")
    report["machine"]["loadavg_end"] = common.loadavg()
    report["summary"] = summarize(report["results"], workloads, targets)
    return report


# ---- summary -------------------------------------------------------------------------------------


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _lat(result: dict[str, Any], op: str, key: str) -> float | None:
    part = result.get(op) or {}
    return part.get(key) if part.get("n") else None


def _figures(result: dict[str, Any]) -> dict[str, float | None]:
    op = "write" if result["workload"] == "W" else "read"
    return {"ops_per_s": result["ops_per_s"], "p50_ms": _lat(result, op, "p50_ms"),
            "p99_ms": _lat(result, op, "p99_ms"), "p999_ms": _lat(result, op, "p999_ms"),
            "server_cpu_us_per_op": result["server_cpu_us_per_op"]}


def summarize(results: list[dict[str, Any]], workloads: list[str],
              targets: list[str]) -> list[dict[str, Any]]:
    """Per workload: each target's median over rounds, and each dynamokv target's ratios to
    dynalite.

    A ratio is taken within each round (the runs of a round are back to back, so they saw
    about the same background load) and the median over rounds is reported. Latency is that of
    the workload's operation (writes for W, reads otherwise).
    """
    rows = []
    for workload in workloads:
        row: dict[str, Any] = {"workload": workload, "targets": {}, "ratio": {},
                               "ratio_per_round": {}}
        mine = [r for r in results if r["workload"] == workload]
        for target in targets:
            runs = [_figures(r) for r in mine if r["target"] == target]
            each: dict[str, Any] = ({key: _median([f[key] for f in runs]) for key in runs[0]}
                                    if runs else {})
            each["ops_per_s_runs"] = [f["ops_per_s"] for f in runs]
            each["errors"] = sum(r["errors"] for r in mine if r["target"] == target)
            row["targets"][target] = each
        if BASELINE not in targets:
            rows.append(row)
            continue
        for target in targets:
            if target == BASELINE:
                continue
            per_round: dict[str, list[float | None]] = {}
            for round_no in sorted({r["round"] for r in mine}):
                pair = {r["target"]: _figures(r) for r in mine if r["round"] == round_no}
                if target not in pair or BASELINE not in pair:
                    continue
                for key, a in pair[target].items():
                    b = pair[BASELINE][key]
                    per_round.setdefault(key, []).append(round(a / b, 3) if a and b else None)
            row["ratio_per_round"][target] = per_round
            row["ratio"][target] = {
                key: (round(v, 2) if (v := _median(values)) is not None else None)
                for key, values in per_round.items()}
        rows.append(row)
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "\u2013"  # en dash, as in the other tables of docs/benchmarks.md
    if isinstance(value, float):
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    out = ["| workload | target | round | ops/s | read p50 ms | read p99 ms | read p99.9 ms "
           "| write p50 ms | write p99 ms | write p99.9 ms | server CPU % | server us/op "
           "| errors |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in report["results"]:
        out.append(f"| {r['workload']} | {r['target']} | {r['round']} | {_fmt(r['ops_per_s'])} "
                   f"| {_fmt(_lat(r, 'read', 'p50_ms'))} | {_fmt(_lat(r, 'read', 'p99_ms'))} "
                   f"| {_fmt(_lat(r, 'read', 'p999_ms'))} "
                   f"| {_fmt(_lat(r, 'write', 'p50_ms'))} | {_fmt(_lat(r, 'write', 'p99_ms'))} "
                   f"| {_fmt(_lat(r, 'write', 'p999_ms'))} "
                   f"| {_fmt(r['server_cpu_pct'])} | {_fmt(r['server_cpu_us_per_op'])} "
                   f"| {r['errors']} |")
    out += ["", "Medians over rounds of the workload's own operation (writes for W, reads "
            "otherwise); ratios to dynalite taken per round, then the median (per-round ratios "
            "in brackets; ops/s above 1: faster; latency and CPU above 1: slower, costlier).", "",
            "| workload | target | ops/s | p50 ms | p99 ms | p99.9 ms | server us/op "
            "| ops/s ratio | p50 ratio | p99 ratio | p99.9 ratio | CPU/op ratio |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for row in report["summary"]:
        for target, each in row["targets"].items():
            ratio = row["ratio"].get(target, {})
            rounds = row["ratio_per_round"].get(target, {})

            def cell(key: str, ratio: dict[str, Any] = ratio,
                     rounds: dict[str, Any] = rounds) -> str:
                if key not in ratio:
                    return "\u2013"
                runs = ", ".join(_fmt(v) for v in rounds.get(key, []))
                return f"{_fmt(ratio.get(key))} ({runs})"

            out.append(f"| {row['workload']} | {target} | {_fmt(each.get('ops_per_s'))} "
                       f"| {_fmt(each.get('p50_ms'))} | {_fmt(each.get('p99_ms'))} "
                       f"| {_fmt(each.get('p999_ms'))} "
                       f"| {_fmt(each.get('server_cpu_us_per_op'))} | {cell('ops_per_s')} "
                       f"| {cell('p50_ms')} | {cell('p99_ms')} | {cell('p999_ms')} "
                       f"| {cell('server_cpu_us_per_op')} |")
    return "\n".join(out)


# ---- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Ratios are dynamokv:dynalite (ops/s above 1: dynamokv "
                                       "faster; latency and CPU above 1: dynamokv slower).")
    p.add_argument("--workloads", default="C,W,A",
                   help="comma-separated, of C, W, A (loadgen) and Q (Query) (default C,W,A)")
    p.add_argument("--targets", default=",".join(ALL_TARGETS),
                   help=f"comma-separated, of {', '.join(ALL_TARGETS)} (default all)")
    p.add_argument("--rounds", type=int, default=2,
                   help="times each target runs each workload, alternating (default 2)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per run first")
    p.add_argument("--concurrency", type=int, default=32,
                   help="connections, one request in flight each (default 32)")
    p.add_argument("--records", type=int, default=10000, help="items for C/W/A (default 10000)")
    p.add_argument("--value-size", type=int, default=1024, help="bytes per item (default 1024)")
    p.add_argument("--query-partitions", type=int, default=200,
                   help="partition keys of the Query table (default 200)")
    p.add_argument("--query-items", type=int, default=20,
                   help="items per partition key, all returned by each Query (default 20)")
    p.add_argument("--query-value-size", type=int, default=100,
                   help="bytes per Query-table item (default 100)")
    p.add_argument("--consistent-read", action="store_true",
                   help="GetItem and Query with ConsistentRead (on dynamokv: through Paxos)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, s")
    p.add_argument("--load-timeout", type=float, default=300.0,
                   help="bound on each preload, s (default 300)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dynalite-flavour", choices=["dynalite", "dynalite-disk"],
                   default="dynalite", help="in memory (default) or LevelDB on disk")
    p.add_argument("--peers", type=Path, default=TOOLS / "peers.sh",
                   help="peers.sh (default ../shared/tools/peers.sh, next to the repository)")
    p.add_argument("--loadgen", type=Path, default=TOOLS / "loadgen.py",
                   help="loadgen.py (default ../shared/tools/loadgen.py)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every result here")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    bad = [w for w in args.workloads.upper().split(",") if w.strip() not in ALL_WORKLOADS]
    if bad:
        parser.error(f"unknown workloads {bad}; choose from {', '.join(ALL_WORKLOADS)}")
    bad = [t for t in args.targets.split(",") if t.strip() not in ALL_TARGETS]
    if bad:
        parser.error(f"unknown targets {bad}; choose from {', '.join(ALL_TARGETS)}")
    if args.rounds < 1 or args.concurrency < 1 or args.duration <= 0:
        parser.error("--rounds, --concurrency and --duration must be positive")
    for path in (args.peers, args.loadgen):
        if not path.is_file():
            parser.error(f"not found: {path}")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        report = run(args)
    except KeyboardInterrupt:
        log("interrupted; every server this run started has been stopped")
        return 130
    except (common.ClusterStartError, SetupError, subprocess.TimeoutExpired,
            TimeoutError) as exc:
        log(f"error: {exc}")
        return 1
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
