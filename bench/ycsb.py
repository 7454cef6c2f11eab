"""YCSB-style benchmark of dynamokv against a real local cluster.

Loads ``--records`` keys, then runs each chosen workload for ``--duration`` seconds with
``--concurrency`` requests in flight, once per routing mode (``server``: any node coordinates;
``partition``: the client sends each request to the key's first replica). Keys are chosen with
a scrambled zipfian distribution, as YCSB's core workloads do:

    A  50% read, 50% update        B  95% read, 5% update
    C  100% read                   W  100% update (not in YCSB's core set)

Updates are blind writes into a last-writer-wins bucket (YCSB overwrites records without reading
them; in Dynamo a put without the context of a read would add a sibling instead), or, with
``--read-modify-write``, a get followed by a put carrying the context the get returned, into an
ordinary (non-lww) bucket.

Latencies are measured on the client with ``time.perf_counter`` around each call, so they include
the load generator's own queueing. By default the benchmark starts its own 3-node cluster
(N=3, R=2, W=2, lmdb) on free ports of 127.0.0.1 and stops it at the end, also on Ctrl-C or an
error; ``--nodes`` targets a running cluster instead.

    python bench/ycsb.py --workload all --routing both --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from dynamokv import AsyncClient, Client, Context, DynamoKVError

# ---- key choice: YCSB's scrambled zipfian --------------------------------------------------------

ZIPFIAN_CONSTANT = 0.99  # YCSB's ZipfianGenerator.ZIPFIAN_CONSTANT
# ScrambledZipfianGenerator draws from a fixed, huge zipfian and hashes the result into the key
# space; zeta(10^10, 0.99) is precomputed there because summing 10^10 terms is not an option.
SCRAMBLED_ITEM_COUNT = 10_000_000_000
SCRAMBLED_ZETAN = 26.46902820178302
FNV_OFFSET_BASIS_64 = 0xCBF29CE484222325
FNV_PRIME_64 = 1099511628211
MASK_64 = (1 << 64) - 1


def zeta(n: int, theta: float) -> float:
    """sum_{i=1..n} 1 / i^theta: the normalising constant of a zipfian over ``n`` items."""
    return math.fsum(1.0 / (i ** theta) for i in range(1, n + 1))


def fnv1_64(value: int) -> int:
    """YCSB's ``Utils.fnvhash64``: FNV-1 over the 8 little-endian bytes of a Java long."""
    h = FNV_OFFSET_BASIS_64
    for _ in range(8):
        h ^= value & 0xFF
        value >>= 8
        h = (h * FNV_PRIME_64) & MASK_64
    # Java returns Math.abs of the signed 64-bit result; mirror it so key choices match YCSB.
    return abs(h - (1 << 64) if h >= 1 << 63 else h)


class Zipfian:
    """Item ``i`` in ``[0, items)`` with probability proportional to 1 / (i+1)^theta.

    Gray et al.'s rejection-free method ("Quickly generating billion-record synthetic
    databases", SIGMOD 1994), the algorithm of YCSB's ``ZipfianGenerator``: item 0 is hottest.
    """

    def __init__(self, items: int, rng: random.Random, theta: float = ZIPFIAN_CONSTANT,
                 zetan: float | None = None) -> None:
        if items < 2:
            raise ValueError("a zipfian needs at least 2 items")
        self.items = items
        self.rng = rng
        self.zetan = zeta(items, theta) if zetan is None else zetan
        self.alpha = 1.0 / (1.0 - theta)
        self.eta = (1.0 - (2.0 / items) ** (1.0 - theta)) / (1.0 - zeta(2, theta) / self.zetan)
        self.second = 1.0 + 0.5 ** theta

    def next(self) -> int:
        u = self.rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return 0
        if uz < self.second:
            return 1
        return min(int(self.items * (self.eta * u - self.eta + 1.0) ** self.alpha), self.items - 1)


class ScrambledZipfian:
    """YCSB's ``ScrambledZipfianGenerator``: zipfian popularity, hot items scattered.

    A plain zipfian makes keys 0, 1, 2... the hottest, so the hot set is a contiguous key
    range; hashing the drawn rank spreads the hot keys over the whole key space (and so over
    the ring's partitions), as happens with real popular items.
    """

    def __init__(self, items: int, rng: random.Random) -> None:
        self.items = items
        self.zipf = Zipfian(SCRAMBLED_ITEM_COUNT, rng, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN)

    def next(self) -> int:
        return fnv1_64(self.zipf.next()) % self.items


# ---- workloads and results -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    read_fraction: float
    description: str


WORKLOADS = {
    "A": Workload("A", 0.50, "50% read / 50% update"),
    "B": Workload("B", 0.95, "95% read / 5% update"),
    "C": Workload("C", 1.00, "100% read"),
    "W": Workload("W", 0.00, "100% update"),
}
ROUTINGS = ("server", "partition")
VALUE_POOL = 64  # distinct random values: generating 1 KiB per op would load the client CPU
LOAD_ATTEMPTS = 3
SETUP_TIMEOUT_S = 30.0
MAX_DURATION_S = 3600.0


@dataclass
class Stats:
    """What one measured (workload, routing) run saw."""

    reads: list[float] = field(default_factory=list)  # seconds, successful reads only
    writes: list[float] = field(default_factory=list)  # seconds, successful updates only
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (op, code) -> count
    error_samples: dict[str, str] = field(default_factory=dict)  # code -> first message
    sibling_reads: int = 0  # reads that returned more than one value
    late: int = 0  # ops that finished after the deadline: not counted
    issued: int = 0

    def error(self, op: str, exc: BaseException) -> None:
        code = common.error_code(exc)
        self.errors[(op, code)] += 1
        self.error_samples.setdefault(code, str(exc)[:200])


@dataclass
class Bench:
    """Everything a worker needs: the client, keys, values and the options."""

    client: AsyncClient
    bucket: str
    keys: list[bytes]
    values: list[bytes]
    read_modify_write: bool

    async def read(self, key: bytes, stats: Stats, deadline: float) -> None:
        start = time.perf_counter()
        try:
            result = await self.client.get(key, bucket=self.bucket)
        except Exception as exc:  # any failure is a result to count, not a reason to stop
            stats.error("read", exc)
            return
        end = time.perf_counter()
        if end > deadline:
            stats.late += 1
        elif not result.found:
            # Every key was loaded first, so a miss means a lost or unreadable write.
            stats.errors[("read", "NotFound")] += 1
        else:
            stats.sibling_reads += len(result.values) > 1
            stats.reads.append(end - start)

    async def write(self, key: bytes, value: bytes, stats: Stats, deadline: float) -> None:
        start = time.perf_counter()
        try:
            await self.update(key, value, stats)
        except Exception as exc:  # any failure is a result to count, not a reason to stop
            stats.error("write", exc)
            return
        end = time.perf_counter()
        if end > deadline:
            stats.late += 1
        else:
            stats.writes.append(end - start)

    async def update(self, key: bytes, value: bytes, stats: Stats | None = None) -> None:
        if not self.read_modify_write:
            await self.client.put(key, value, bucket=self.bucket)
            return
        # The put carries the read's context, so it supersedes every version the read saw
        # (siblings included) instead of adding one more.
        context: Context | None = None
        read = await self.client.get(key, bucket=self.bucket)
        if read.found:
            context = read.context
            if stats is not None:
                stats.sibling_reads += len(read.values) > 1
        await self.client.put(key, value, context=context, bucket=self.bucket)


async def drive(bench: Bench, workload: Workload, *, seconds: float, concurrency: int,
                max_ops: int, seed: int) -> tuple[Stats, float]:
    """Run ``workload`` for at most ``seconds``; return its stats and the measured seconds.

    Workers stop starting ops at the deadline; ops still in flight then are cancelled and not
    counted, so a run never outlasts ``seconds`` even if a node stops answering.
    """
    stats = Stats()
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(index: int) -> None:
        # One seeded generator per worker: a run's op sequence per worker is reproducible.
        rng = random.Random(seed * 1_000_003 + index)
        keys = ScrambledZipfian(len(bench.keys), rng)
        while stats.issued < max_ops and time.perf_counter() < deadline:
            stats.issued += 1
            key = bench.keys[keys.next()]
            if rng.random() < workload.read_fraction:
                await bench.read(key, stats, deadline)
            else:
                value = bench.values[rng.randrange(len(bench.values))]
                await bench.write(key, value, stats, deadline)

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    try:
        _, pending = await asyncio.wait(tasks, timeout=max(deadline - time.perf_counter(), 0.0))
    finally:
        for task in tasks:
            task.cancel()  # a no-op for finished workers; also runs when we are cancelled
    await asyncio.gather(*pending, return_exceptions=True)
    # Only those that really ended cancelled: Python 3.11's wait_for returns a reply that
    # arrived together with the cancellation, and such an op was already counted as late.
    stats.late += sum(task.cancelled() for task in pending)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]  # a bug in this file: surface it
    return stats, min(time.perf_counter(), deadline) - start


# ---- phases --------------------------------------------------------------------------------------


async def load(addresses: list[str], args: argparse.Namespace, keys: list[bytes],
               values: list[bytes], console: Console) -> dict[str, Any]:
    """Write every key once, ``--load-concurrency`` at a time, with a progress bar."""
    client = AsyncClient(addresses, routing="server", timeout_s=args.timeout)
    bench = Bench(client, args.bucket, keys, values, args.read_modify_write)
    errors: Counter[str] = Counter()
    failed = written = 0
    position = 0
    start = time.perf_counter()
    deadline = start + args.load_timeout
    columns = (TextColumn("[bold]load"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("load", total=len(keys))

        async def loader(index: int) -> None:
            nonlocal position, failed, written
            rng = random.Random(args.seed * 7919 + index)
            while position < len(keys) and time.perf_counter() < deadline:
                key = keys[position]
                position += 1
                for attempt in range(LOAD_ATTEMPTS):
                    try:
                        await bench.update(key, values[rng.randrange(len(values))])
                        written += 1
                        break
                    except Exception as exc:  # retried a bounded number of times, then counted
                        errors[common.error_code(exc)] += 1
                        if attempt == LOAD_ATTEMPTS - 1:
                            failed += 1
                progress.advance(bar)

        tasks = [asyncio.create_task(loader(i)) for i in range(args.load_concurrency)]
        # Loaders check the deadline before each key; allow the last requests their timeout.
        grace = args.timeout * LOAD_ATTEMPTS + 1.0
        try:
            _, pending = await asyncio.wait(tasks, timeout=args.load_timeout + grace)
        finally:
            for task in tasks:
                task.cancel()  # a no-op for finished loaders; also runs when we are cancelled
            await client.close()
        await asyncio.gather(*pending, return_exceptions=True)
    elapsed = time.perf_counter() - start
    if written + failed < len(keys):
        console.print(f"[yellow]load stopped after {args.load_timeout:.0f} s with "
                      f"{written}/{len(keys)} keys written[/]")
    return {
        "records": len(keys), "written": written, "failed": failed,
        "seconds": round(elapsed, 3), "ops_per_s": round(written / elapsed, 1),
        "errors": dict(errors),
    }


async def measure(addresses: list[str], args: argparse.Namespace, workload: Workload,
                  routing: str, keys: list[bytes], values: list[bytes],
                  node_pids: list[int]) -> dict[str, Any]:
    """One (workload, routing) run: a short unmeasured warm-up, then the measured run."""
    client = AsyncClient(addresses, routing=routing, timeout_s=args.timeout)
    try:
        if routing == "partition":
            await client.ring()  # so the first measured requests do not wait for the ring
        bench = Bench(client, args.bucket, keys, values, args.read_modify_write)
        if args.warmup > 0:
            await drive(bench, workload, seconds=args.warmup, concurrency=args.concurrency,
                        max_ops=args.max_ops, seed=args.seed + 1)
        load_before = common.loadavg()
        cpu = common.CpuMeter([os.getpid(), *node_pids])
        stats, elapsed = await drive(bench, workload, seconds=args.duration,
                                     concurrency=args.concurrency, max_ops=args.max_ops,
                                     seed=args.seed)
        busy = cpu.busy()
    finally:
        await client.close()
    ok = len(stats.reads) + len(stats.writes)
    errors: dict[str, dict[str, int]] = {}
    for (op, code), count in sorted(stats.errors.items()):
        errors.setdefault(op, {})[code] = count
    return {
        "workload": workload.name,
        "mix": workload.description,
        "routing": routing,
        "seconds": round(elapsed, 3),
        "ops": ok,
        "ops_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "read": common.summarize(stats.reads),
        "write": common.summarize(stats.writes),
        "errors": errors,
        "error_count": sum(stats.errors.values()),
        "error_samples": stats.error_samples,
        "sibling_reads": stats.sibling_reads,
        "abandoned_at_deadline": stats.late,
        # Share of one core each process used during the run: who saturates the machine.
        "cpu_client": busy[0],
        "cpu_nodes": busy[1:],
        "loadavg_before": load_before,
        "loadavg_after": common.loadavg(),
    }


# ---- cluster setup -------------------------------------------------------------------------------


class SetupError(RuntimeError):
    """The cluster did not get ready for the benchmark (ring, bucket props) in time."""


def wait_until(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            raise SetupError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def ring_complete(addresses: list[str], want: int) -> bool:
    """Whether every node's ring lists ``want`` members and each of them owns partitions."""
    for address in addresses:
        try:
            with Client([address], timeout_s=2.0) as c:
                ring = c.ring()
        except Exception:  # not ready yet: asked again until the deadline
            return False
        if len(ring.members) < want or len(set(ring.owners)) < want:
            return False
    return True


def prepare_bucket(addresses: list[str], bucket: str,
                   lww: bool) -> tuple[list[str], dict[str, Any]]:
    """Set the bucket's lww mode and wait until every node has it (props travel by gossip)."""
    with Client(addresses, timeout_s=5.0) as c:
        props = c.bucket_props(bucket, lww=lww)
        members = [m.address for m in c.ring().members]

    def everywhere() -> bool:
        for address in members:
            try:
                with Client([address], timeout_s=2.0) as c:
                    if c.bucket_props(bucket).get("lww") is not lww:
                        return False
            except Exception:  # a node that does not answer yet: asked again
                return False
        return True

    wait_until(f"bucket {bucket!r} lww={lww} to reach every node", everywhere, SETUP_TIMEOUT_S)
    return members, props


# ---- reporting -----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cpu_text(result: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "?" if x is None else f"{x:.0%}"

    nodes = "/".join(pct(x) for x in result["cpu_nodes"])
    return f"client {pct(result['cpu_client'])}" + (f", nodes {nodes}" if nodes else "")


def _errors_text(result: dict[str, Any]) -> str:
    parts = [f"{op} {code} x{n}" for op, codes in result["errors"].items()
             for code, n in codes.items()]
    return ", ".join(parts) or "0"


def results_table(results: list[dict[str, Any]]) -> Table:
    mixes = dict.fromkeys(f"{r['workload']} = {r['mix']}" for r in results)
    table = Table(title="YCSB results (latency in ms, client-side)", caption="; ".join(mixes))
    for name in ("workload", "routing", "ops/s", "read p50", "read p99", "read p99.9",
                 "write p50", "write p99", "write p99.9", "errors"):
        table.add_column(name, justify="left" if name in ("workload", "routing") else "right")
    for r in results:
        table.add_row(
            r["workload"], r["routing"], f"{r['ops_per_s']:.0f}",
            _ms(r["read"]["p50_ms"]), _ms(r["read"]["p99_ms"]), _ms(r["read"]["p999_ms"]),
            _ms(r["write"]["p50_ms"]), _ms(r["write"]["p99_ms"]), _ms(r["write"]["p999_ms"]),
            _errors_text(r),
        )
    return table


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """server / partition for each workload run with both routings."""
    by_key = {(r["workload"], r["routing"]): r for r in results}
    out = []
    for workload in dict.fromkeys(r["workload"] for r in results):
        s, p = by_key.get((workload, "server")), by_key.get((workload, "partition"))
        if s is None or p is None:
            continue

        def ratio(a: float | None, b: float | None) -> float | None:
            return round(a / b, 3) if a is not None and b else None

        out.append({
            "workload": workload,
            "ops_per_s": ratio(s["ops_per_s"], p["ops_per_s"]),
            "read_p50": ratio(s["read"]["p50_ms"], p["read"]["p50_ms"]),
            "read_p99": ratio(s["read"]["p99_ms"], p["read"]["p99_ms"]),
            "write_p50": ratio(s["write"]["p50_ms"], p["write"]["p50_ms"]),
            "write_p99": ratio(s["write"]["p99_ms"], p["write"]["p99_ms"]),
        })
    return out


def ratios_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="server : partition (server value / partition value)")
    for name in ("workload", "ops/s", "read p50", "read p99", "write p50", "write p99"):
        table.add_column(name, justify="left" if name == "workload" else "right")
    for row in rows:
        cells = [row[k] for k in ("ops_per_s", "read_p50", "read_p99", "write_p50", "write_p99")]
        table.add_row(row["workload"], *("-" if c is None else f"{c:.2f}" for c in cells))
    return table


# ---- command line --------------------------------------------------------------------------------


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
        epilog="Example: python bench/ycsb.py --workload all --routing both --duration 10",
    )
    p.add_argument("--workload", type=str.upper, default="A", choices=[*WORKLOADS, "ALL"],
                   help="A (50/50 read/update), B (95/5), C (read only), W (update only), or "
                        "all (default: A)")
    p.add_argument("--routing", default="server", choices=[*ROUTINGS, "both"],
                   help="server: any node coordinates; partition: the key's replica; both "
                        "(default: server)")
    p.add_argument("--duration", type=_bounded(float, 0.1, MAX_DURATION_S), default=10.0,
                   metavar="S", help="measured seconds per (workload, routing); a hard upper "
                                     "bound (default: 10)")
    p.add_argument("--warmup", type=_bounded(float, 0.0, 60.0), default=1.0, metavar="S",
                   help="unmeasured seconds before each run (default: 1)")
    p.add_argument("--concurrency", type=_bounded(int, 1, 4096), default=64,
                   help="requests in flight during a run (default: 64)")
    p.add_argument("--records", type=_bounded(int, 2, 10_000_000), default=10_000,
                   help="keys loaded before the runs (default: 10000)")
    p.add_argument("--value-bytes", type=_bounded(int, 1, 1 << 20), default=1024,
                   help="value size in bytes (default: 1024)")
    p.add_argument("--load-concurrency", type=_bounded(int, 1, 1024), default=32,
                   help="requests in flight while loading (default: 32)")
    p.add_argument("--load-timeout", type=_bounded(float, 1.0, 24 * 3600.0), default=600.0,
                   metavar="S", help="give up loading after this many seconds (default: 600)")
    p.add_argument("--skip-load", action="store_true",
                   help="do not load: the keys are already there (only with --nodes)")
    p.add_argument("--max-ops", type=_bounded(int, 1, 10**9), default=50_000_000,
                   help="cap on ops per run, on top of --duration (default: 50000000)")
    p.add_argument("--read-modify-write", action="store_true",
                   help="update = get + put with the read's context, in a non-lww bucket "
                        "(default: blind puts into a last-writer-wins bucket)")
    p.add_argument("--bucket", help="bucket to use (default: ycsb, or ycsb_rmw with "
                                    "--read-modify-write); its lww prop is set to match")
    p.add_argument("--nodes", metavar="HOST:PORT,...",
                   help="benchmark this running cluster instead of starting one")
    p.add_argument("--cluster-size", type=_bounded(int, 3, 15), default=3, metavar="NODES",
                   help="nodes of the cluster we start (default: 3; N stays 3)")
    p.add_argument("--engine", choices=("lmdb", "sqlite", "memory"), default="lmdb",
                   help="storage engine of the cluster we start (default: lmdb)")
    p.add_argument("--timeout", type=_bounded(float, 0.05, 600.0), default=5.0, metavar="S",
                   help="client timeout per request (default: 5)")
    p.add_argument("--seed", type=int, default=42, help="seed of keys, mix and values "
                                                        "(default: 42)")
    p.add_argument("--no-uvloop", action="store_true",
                   help="run the load generator on asyncio's own loop instead of uvloop")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    return p


def _loop_factory(args: argparse.Namespace) -> tuple[Callable[[], asyncio.AbstractEventLoop]
                                                     | None, str]:
    if args.no_uvloop:
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def _raise_interrupt(signum: int, frame: object) -> None:
    # SIGTERM outside the event loop takes the Ctrl-C path, so the cluster we started is
    # stopped on the way out (inside the loop, see _stoppable).
    raise KeyboardInterrupt


async def _stoppable(job: Coroutine[Any, Any, Any]) -> Any:
    """Run ``job`` so that SIGTERM cancels it cleanly instead of interrupting the event loop
    at a random callback (asyncio.Runner already does this for Ctrl-C)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await job
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _raise_interrupt)  # removal reset it to the default


def run(args: argparse.Namespace, console: Console, status: Console) -> dict[str, Any]:
    workloads = list(WORKLOADS) if args.workload == "ALL" else [args.workload]
    routings = list(ROUTINGS) if args.routing == "both" else [args.routing]
    rng = random.Random(args.seed)
    keys = [f"user{i}".encode() for i in range(args.records)]
    values = [rng.randbytes(args.value_bytes) for _ in range(VALUE_POOL)]
    loop_factory, loop_name = _loop_factory(args)
    report: dict[str, Any] = {
        "benchmark": "ycsb",
        "argv": sys.argv[1:],
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "client_loop": loop_name},
    }
    with contextlib.ExitStack() as stack:
        if args.nodes:
            addresses = [a.strip() for a in args.nodes.split(",") if a.strip()]
            node_pids: list[int] = []  # not ours: their CPU use is not measured
            report["cluster"] = {"started_by_benchmark": False}
        else:
            size = args.cluster_size
            status.print(f"starting a {size}-node cluster (N=3 R=2 W=2, {args.engine}) "
                         "on 127.0.0.1")
            cluster = stack.enter_context(common.LocalCluster(
                nodes=size, n=3, r=2, w=2, engine=args.engine,
                log=lambda text: status.print(text, markup=False)))
            addresses = cluster.addresses
            node_pids = cluster.pids
            wait_until("every node to join the ring", lambda: ring_complete(addresses, size),
                       SETUP_TIMEOUT_S)
            report["cluster"] = {"started_by_benchmark": True, "nodes": size,
                                 "engine": args.engine}
        members, props = prepare_bucket(addresses, args.bucket, lww=not args.read_modify_write)
        report["cluster"].update({"members": len(members), "bucket": args.bucket,
                                  "bucket_props": props})
        status.print(f"cluster: {', '.join(members)}; bucket {args.bucket!r}: {props}",
                     markup=False)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            if not args.skip_load:
                report["load"] = runner.run(_stoppable(load(addresses, args, keys, values, status)))
                status.print(f"loaded {report['load']['written']} keys in "
                             f"{report['load']['seconds']:.1f} s "
                             f"({report['load']['ops_per_s']:.0f} puts/s), "
                             f"errors: {report['load']['errors'] or 0}", markup=False)
            results: list[dict[str, Any]] = []
            report["results"] = results
            # Routings run back to back within each workload so that both see about the same
            # background load, and in ABBA order (server first, then partition first, ...):
            # load on a shared machine drifts, and a fixed order would favour the first.
            for index, name in enumerate(workloads):
                for routing in routings if index % 2 == 0 else routings[::-1]:
                    status.print(f"workload {name} ({WORKLOADS[name].description}), routing "
                                 f"{routing}: {args.duration:g} s", markup=False)
                    job: Coroutine[Any, Any, dict[str, Any]] = measure(
                        addresses, args, WORKLOADS[name], routing, keys, values, node_pids)
                    result = runner.run(_stoppable(job))
                    results.append(result)
                    status.print(f"  {result['ops_per_s']:.0f} ops/s, errors: "
                                 f"{_errors_text(result)}, reads with siblings: "
                                 f"{result['sibling_reads']}, CPU (share of a core): "
                                 f"{_cpu_text(result)}", markup=False)
        report["ratios_server_to_partition"] = ratios(results)
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.skip_load and not args.nodes:
        build_parser().error("--skip-load needs --nodes: a cluster we start is empty")
    if args.bucket is None:
        args.bucket = "ycsb_rmw" if args.read_modify_write else "ycsb"
    # Piped output (a log file, tee) would otherwise be cut to 80 columns and wrap the tables.
    console = Console(width=None if sys.stdout.isatty() else 140)
    status = Console(stderr=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        report = run(args, console, status)
    except (KeyboardInterrupt, asyncio.CancelledError):
        status.print("interrupted; the cluster (if we started one) has been stopped")
        return 130
    except (common.ClusterStartError, SetupError, DynamoKVError) as exc:
        status.print(f"error: {exc}", markup=False)
        return 1
    console.print(results_table(report["results"]))
    if report["ratios_server_to_partition"]:
        console.print(ratios_table(report["ratios_server_to_partition"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        status.print(f"results written to {args.json}", markup=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
