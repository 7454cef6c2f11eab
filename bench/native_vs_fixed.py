"""Native protocol throughput: ``dynamokv.AsyncClient`` (partition-aware) against one real node,
and against a fixed-answer uvloop server in Python speaking the same protocol, in one run.

The fixed-answer server is the ceiling of any Python server of this protocol on this machine:
it frames, decodes every request with the real codec (it needs the request id), and answers
with a canned reply (a 1 KiB value for a get, a one-entry context for a put, a one-member ring
naming itself for a ring request), encoded per request and written once per read from the
socket. It stores nothing.

Load: ``--procs`` client processes, each one asyncio (uvloop) loop with ``--concurrency`` tasks,
one request in flight each, keys uniform over ``--records`` keys, ``--value-bytes`` values.
Runs are interleaved (node, fixed, fixed, node, ...) per workload so drift favours neither.

    python bench/native_vs_fixed.py --help
    python bench/native_vs_fixed.py --duration 10 --procs 2 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

BUCKET = "native"
WORKLOADS = {"put": 0.0, "mixed": 0.5, "get": 1.0}  # share of gets


def _new_loop() -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


# ---- the fixed-answer server ---------------------------------------------------------------

def serve_fixed(port: int, value_bytes: int) -> None:
    from dynamokv.core.messages import (
        GetReply,
        GetRequest,
        PutReply,
        PutRequest,
        RingReply,
        RingRequest,
    )
    from dynamokv.core.ring import Member, Ring
    from dynamokv.core.vclock import VectorClock
    from dynamokv.wire.codec import decode, encode
    from dynamokv.wire.framing import FrameDecoder, frame

    address = f"127.0.0.1:{port}"
    ring = Ring(q=64, owners=("fixed",) * 64, members=(Member("fixed", address),), version=1,
                claimant="fixed")
    clock = VectorClock.empty().increment("fixed", 1)
    value = b"v" * value_bytes

    def answer(msg: Any) -> Any:
        if isinstance(msg, GetRequest):
            return GetReply(msg.req_id, (value,), clock, True, 1)
        if isinstance(msg, PutRequest):
            return PutReply(msg.req_id, clock, 1)
        if isinstance(msg, RingRequest):
            return RingReply(msg.req_id, ring, {"n": 1, "r": 1, "w": 1})
        raise ValueError(f"the fixed-answer server does not answer {type(msg).__name__}")

    class Fixed(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.decoder = FrameDecoder(64 * 1024 * 1024)

        def data_received(self, data: bytes) -> None:
            out = [frame(encode(answer(decode(p)))) for p in self.decoder.feed(data)]
            if out:
                self.transport.write(b"".join(out))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Fixed, "127.0.0.1", port)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    with asyncio.Runner(loop_factory=_new_loop()) as runner:
        runner.run(main())


# ---- one load-generating process ----------------------------------------------------------

async def _worker(address: str, share_get: float, concurrency: int, records: int,
                  value_bytes: int, start_at: float, warmup_s: float, duration_s: float,
                  seed: int) -> dict[str, int]:
    from dynamokv import AsyncClient

    counts = {"ops": 0, "errors": 0}
    value = os.urandom(value_bytes)
    measure_from = start_at + warmup_s
    stop_at = measure_from + duration_s
    async with AsyncClient(address, routing="partition", timeout_s=5.0) as client:
        await client.ring()
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def task(rng: random.Random) -> None:
            while (now := time.time()) < stop_at:
                key = f"k{rng.randrange(records)}"
                try:
                    if rng.random() < share_get:
                        await client.get(key, bucket=BUCKET)
                    else:
                        await client.put(key, value, bucket=BUCKET)
                except Exception:  # counted, not fatal: the figure says how many
                    if now >= measure_from:
                        counts["errors"] += 1
                    continue
                if measure_from <= now and time.time() < stop_at:
                    counts["ops"] += 1

        await asyncio.gather(*(task(random.Random(seed * 1000 + i)) for i in range(concurrency)))
    return counts


def run_worker(args: argparse.Namespace) -> None:
    with asyncio.Runner(loop_factory=_new_loop()) as runner:
        counts = runner.run(_worker(args.target, WORKLOADS[args.workload], args.concurrency,
                                    args.records, args.value_bytes, args.start_at, args.warmup,
                                    args.duration, args.seed))
    print(json.dumps(counts), flush=True)


# ---- the driver ---------------------------------------------------------------------------

def _self(*extra: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), *extra]


def start_fixed(value_bytes: int) -> tuple[subprocess.Popen[str], str]:
    port = common.free_ports(1)[0]
    proc = subprocess.Popen(_self("--serve-fixed", str(port), "--value-bytes", str(value_bytes)),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the fixed-answer server did not start")
    return proc, f"127.0.0.1:{port}"


def load(address: str, records: int, value_bytes: int) -> None:
    from dynamokv import AsyncClient

    async def go() -> None:
        value = os.urandom(value_bytes)
        async with AsyncClient(address, routing="partition") as client:
            for start in range(0, records, 200):
                await asyncio.gather(*(client.put(f"k{i}", value, bucket=BUCKET)
                                       for i in range(start, min(start + 200, records))))

    with asyncio.Runner(loop_factory=_new_loop()) as runner:
        runner.run(go())


def one_run(args: argparse.Namespace, target: str, server_pid: int, workload: str,
            seed: int) -> dict[str, Any]:
    start_at = time.time() + 1.5  # time for every worker to connect and fetch the ring
    procs = [subprocess.Popen(_self("--worker", "--target", target, "--workload", workload,
                                    "--concurrency", str(args.concurrency),
                                    "--records", str(args.records),
                                    "--value-bytes", str(args.value_bytes),
                                    "--start-at", repr(start_at), "--warmup", str(args.warmup),
                                    "--duration", str(args.duration),
                                    "--seed", str(seed * 100 + i)),
                              stdout=subprocess.PIPE, text=True)
             for i in range(args.procs)]
    time.sleep(max(0.0, start_at + args.warmup - time.time()))
    meter = common.CpuMeter([server_pid])
    time.sleep(args.duration)
    cpu = meter.busy()[0]
    ops = errors = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=args.duration + 60)
        counts = json.loads(out.strip().splitlines()[-1])
        ops += counts["ops"]
        errors += counts["errors"]
    rate = ops / args.duration
    return {"ops_s": round(rate), "errors": errors, "server_cpu": cpu,
            "cpu_us_per_op": round(cpu * 1e6 / rate, 1) if cpu is not None and rate else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    p.add_argument("--procs", type=int, default=2, help="client processes")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight per process")
    p.add_argument("--records", type=int, default=10_000)
    p.add_argument("--value-bytes", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=1, help="node/fixed pairs per workload (ABBA)")
    p.add_argument("--workloads", default="put,mixed,get")
    p.add_argument("--engine", default="lmdb", choices=("lmdb", "sqlite", "memory"))
    p.add_argument("--json", type=Path, help="also write the results here")
    # internal: the fixed-answer server and the load-generating processes
    p.add_argument("--serve-fixed", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_fixed:
        return serve_fixed(args.serve_fixed, args.value_bytes)
    if args.worker:
        return run_worker(args)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    results: list[dict[str, Any]] = []
    with common.LocalCluster(nodes=1, n=1, r=1, w=1, engine=args.engine) as cluster:
        node = cluster.addresses[0]
        from dynamokv import Client
        with Client(node) as c:
            c.bucket_props(BUCKET, lww=True)  # blind puts replace, as in YCSB
        print(f"loading {args.records} keys into {node}", file=sys.stderr)
        load(node, args.records, args.value_bytes)
        fixed, fixed_addr = start_fixed(args.value_bytes)
        try:
            targets = {"node": (node, cluster.pids[0]), "fixed": (fixed_addr, fixed.pid)}
            for workload in workloads:
                order = (["node", "fixed", "fixed", "node"] * args.rounds)[: 2 * args.rounds]
                for i, name in enumerate(order):
                    address, pid = targets[name]
                    res = one_run(args, address, pid, workload, seed=i + 1)
                    res.update(server=name, workload=workload)
                    print(json.dumps(res), file=sys.stderr)
                    results.append(res)
        finally:
            fixed.kill()
            fixed.wait()
    report(results, workloads, args)


def report(results: list[dict[str, Any]], workloads: list[str], args: argparse.Namespace) -> None:
    print(f"{args.procs} client processes x {args.concurrency} in flight, {args.records} keys, "
          f"{args.value_bytes} B values, {args.duration:g} s per run; load {common.loadavg()}")
    print("| workload | node ops/s | fixed ops/s | node/fixed | node CPU us/op | fixed CPU us/op |")
    print("|---|---:|---:|---:|---:|---:|")
    summary = {}
    for w in workloads:
        def mean(server: str, field: str, w: str = w) -> float:
            xs = [r[field] for r in results
                  if r["workload"] == w and r["server"] == server and r[field] is not None]
            return sum(xs) / len(xs) if xs else float("nan")
        n_ops, f_ops = mean("node", "ops_s"), mean("fixed", "ops_s")
        summary[w] = n_ops / f_ops if f_ops else float("nan")
        print(f"| {w} | {n_ops:,.0f} | {f_ops:,.0f} | {summary[w]:.2f}x | "
              f"{mean('node', 'cpu_us_per_op'):.0f} | {mean('fixed', 'cpu_us_per_op'):.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"options": vars(args) | {"json": str(args.json)},
                                         "runs": results, "ratios": summary}, indent=2))


if __name__ == "__main__":
    main()
