"""The Dynamo paper's production lessons (sections 6.1-6.5), measured on real node processes.

Run from the repository root::

    python bench/paper.py --quick            # every experiment, small (about 3 minutes)
    python bench/paper.py                    # the full run recorded in docs/paper.md
    python bench/paper.py --only buffer,nrw --out results/

Each experiment starts its own local cluster (``node start`` processes on 127.0.0.1, stopped by
PID afterwards, also on errors), runs for a bounded time with a progress bar, and writes
``<out>/<name>.json`` (raw samples and summaries) and ``<out>/<name>.png`` (needs matplotlib,
the ``[plots]`` extra; without it only the JSON is written).

Experiments: ``buffer`` (6.1 object buffer vs durable writes, ``--sync fsync``), ``routing``
(6.4 client- vs server-driven coordination), ``divergence`` (6.3 versions per read in a cart
workload), ``balance`` (6.2 load imbalance vs request rate, Q and node count; in-process over
the real ring, claim and key hashing), ``nrw`` ((N,R,W) settings: latency, availability with a
node down, stale reads on loopback), ``staleness`` (PBS: stale reads vs time since the write,
on nodes with ``--inject-replica-delay``; ``paper_staleness.py``), ``admission`` (6.5
foreground latency during hint replay, feedback loop on and off side by side;
``paper_admission.py``), ``admission_aae`` (the same while anti-entropy rebuilds a wiped node;
``paper_admission_aae.py``). Configurations that share a cluster are measured in alternating
slices (``paper_common.interleaved``), so a loaded machine's drift falls on each alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common
from paper_admission import plot_admission, run_admission
from paper_admission_aae import plot_admission_aae, run_admission_aae
from paper_common import (
    FULL,
    QUICK,
    BenchCluster,
    Progress,
    Samples,
    Scale,
    closed_loop,
    interleaved,
    lat_only,
    over_time,
    set_props,
)
from paper_staleness import plot_staleness, run_staleness, stale_trials

from dynamokv import Client
from dynamokv.client.client import AsyncClient
from dynamokv.core.claim import claim
from dynamokv.core.hashing import key_partition
from dynamokv.core.ring import Member

EXPERIMENTS = ("buffer", "routing", "divergence", "balance", "nrw", "staleness", "admission",
               "admission_aae")
__all__ = ["FULL", "QUICK", "BenchCluster", "Progress", "Scale", "closed_loop", "lat_only",
           "main", "over_time", "set_props"]


# ---- 1. object buffer ------------------------------------------------------------------------


def run_buffer(scale: Scale, progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {"sync": "fsync", "nodes": 3, "n": 3, "w": 2,
                           "concurrency": scale.concurrency, "configs": {}}
    with BenchCluster(count=3, ring_size=16, extra_args=("--sync", "fsync")) as cluster:
        set_props(cluster, "buffered", buffer=True)
        set_props(cluster, "durable", buffer=False)
        value = b"x" * 512

        async def measure(bucket: str, seconds: float, tick: Callable[[float], None],
                          offset: float) -> Samples:
            async with AsyncClient(cluster.addresses, routing="partition") as c:
                async def op(n: int) -> None:
                    await c.put(f"k{n % scale.keys}", value, bucket=bucket)
                await op(0)  # ring fetch outside the measurement
                return await closed_loop(op, seconds, scale.concurrency, tick, offset)

        with progress.task("buffer: buffered vs durable", 2 * scale.seconds) as tick:
            got = interleaved(["durable", "buffered"], measure, scale.seconds, scale, tick)
        for bucket, (samples, failures) in got.items():
            out["configs"][bucket] = {"summary": lat_only(samples), "failures": failures,
                                      "over_time": over_time(samples, 1.0)}
    return out


def plot_buffer(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharey=False)
    for ax, pct in zip(axes, ("p50_ms", "p99_ms", "p999_ms"), strict=True):
        for name, cfg in data["configs"].items():
            rows = cfg["over_time"]
            ax.plot([r["t_s"] for r in rows], [r[pct] for r in rows], marker=".",
                    label=name)
        ax.set_title(f"write {pct[:-3]} per second (--sync fsync)")
        ax.set_xlabel("s")
        ax.set_ylabel("ms")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ---- 2. routing ------------------------------------------------------------------------------


def run_routing(scale: Scale, progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {"nodes": 5, "n": 3, "configs": {}, "after_join": {}}
    value = b"v" * 256
    with BenchCluster(count=5, ring_size=64) as cluster:

        async def measure(name: str, seconds: float, tick: Callable[[float], None],
                          offset: float) -> Samples:
            routing, kind = name.split("/")
            async with AsyncClient(cluster.addresses, routing=routing) as c:
                async def op(n: int) -> None:
                    key = f"k{n % scale.keys}"
                    if kind == "put":
                        await c.put(key, value, bucket="route")
                    else:
                        await c.get(key, bucket="route")
                await op(0)
                return await closed_loop(op, seconds, scale.concurrency, tick, offset)

        total = 4 * scale.seconds / 2 + scale.seconds
        with progress.task("routing: partition vs server", total) as tick:
            names = ["partition/put", "server/put", "partition/get", "server/get"]
            got = interleaved(names, measure, scale.seconds / 2, scale, tick)
            for name in names:
                samples, failures = got[name]
                out["configs"][name] = {"summary": lat_only(samples), "failures": failures}
            out["after_join"] = _misrouted_after_join(cluster, scale, tick,
                                                      2 * scale.seconds)
    return out


def _misrouted_after_join(cluster: BenchCluster, scale: Scale, tick: Callable[[float], None],
                          offset: float) -> dict[str, Any]:
    """After a sixth node joins, per second: the share of requests a partition-aware client
    sends first to a node that is no longer a replica of the key. ``live``: the real client,
    which refetches the ring when a reply carries a newer ring version (and every
    ``ring_refresh_s``); ``polling only``: the ring it held before the join, as a client that
    only polls (the paper's every-10-s pull) would route until its next poll."""
    client = Client(cluster.addresses, routing="partition", ring_refresh_s=10.0)
    client.get("warm", bucket="route")
    stale = client.router.ring
    cluster.add()
    joined = time.monotonic()
    per_second: dict[int, list[int]] = {}
    try:
        with Client(cluster.addresses, timeout_s=3.0) as fresh:
            while (elapsed := time.monotonic() - joined) < scale.seconds:
                ring = fresh.ring()
                for _ in range(20):
                    key = f"k{random.randrange(scale.keys)}".encode()
                    first = client.router.for_key("route", key, time.monotonic())[0]
                    client.get(key, bucket="route")  # a real request: replies carry versions
                    owners = set(ring.preference_list(ring.partition_for("route", key), 3))
                    addresses = {m.address for m in ring.members if m.node_id in owners}
                    old = stale.preference_list(stale.partition_for("route", key), 3)[0] \
                        if stale is not None else ""
                    row = per_second.setdefault(int(elapsed), [0, 0, 0])
                    row[0] += 1
                    row[1] += first not in addresses
                    row[2] += old not in owners
                tick(offset + elapsed)
    finally:
        client.close()
    return {"ring_refresh_s": 10.0,
            "per_second": [{"t_s": s, "requests": r, "misrouted": m,
                            "share": round(m / r, 4) if r else 0.0,
                            "share_polling_only": round(p / r, 4) if r else 0.0}
                           for s, (r, m, p) in sorted(per_second.items())]}


def plot_routing(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.6))
    names = list(data["configs"])
    x = range(len(names))
    for off, pct in ((-0.2, "p50_ms"), (0.2, "p999_ms")):
        a.bar([i + off for i in x], [data["configs"][n]["summary"][pct] or 0 for n in names],
              width=0.4, label=pct[:-3])
    a.set_xticks(list(x), names, rotation=15)
    a.set_ylabel("ms")
    a.set_title("5 nodes, N=3: client- vs server-driven")
    a.legend()
    rows = data["after_join"]["per_second"]
    b.plot([r["t_s"] for r in rows], [r["share"] for r in rows], marker="o", label="live")
    b.plot([r["t_s"] for r in rows], [r["share_polling_only"] for r in rows], marker="x",
           label="polling only (pre-join ring)")
    b.legend()
    b.set_title("share misrouted after a join (partition client)")
    b.set_xlabel("s after join")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ---- 3. divergence ---------------------------------------------------------------------------


def run_divergence(scale: Scale, progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {"configs": {}}
    carts = scale.keys
    with BenchCluster(count=4, ring_size=32) as cluster:
        total = 2 * scale.seconds
        with progress.task("divergence: cart workload", total) as tick:
            for i, failures_on in enumerate((False, True)):
                hist = asyncio.run(_cart_run(cluster, scale, carts, failures_on, tick,
                                             i * scale.seconds))
                out["configs"]["node failures" if failures_on else "no failures"] = hist
    return out


BOT_CARTS = 5


async def _cart_run(cluster: BenchCluster, scale: Scale, carts: int, failures_on: bool,
                    tick: Callable[[float], None], offset: float) -> dict[str, Any]:
    counts = {"1": 0, "2": 0, "3": 0, "4+": 0}
    errors = 0
    t0 = time.monotonic()

    async def shopper(c: AsyncClient, rng: random.Random) -> None:
        nonlocal errors
        while time.monotonic() - t0 < scale.seconds:
            key = f"cart{rng.randrange(carts)}"
            try:
                got = await c.get(key, bucket="carts")
                n = len(got.values)
                if n:
                    counts[str(n) if n < 4 else "4+"] += 1
                await c.put(key, b"item", got.context, bucket="carts")
            except Exception:
                errors += 1
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            tick(offset + time.monotonic() - t0)

    async def bot(c: AsyncClient, rng: random.Random) -> None:
        nonlocal errors
        while time.monotonic() - t0 < scale.seconds:  # read-modify-write with no pause
            key = f"cart{rng.randrange(BOT_CARTS)}"  # bots hammer a few carts
            try:
                got = await c.get(key, bucket="carts")
                await c.put(key, b"bot", got.context, bucket="carts")
            except Exception:
                errors += 1

    async def failer() -> None:
        if not failures_on:
            return
        await asyncio.sleep(scale.seconds * 0.3)
        victim = cluster.nodes[-1]
        victim.kill9()
        await asyncio.sleep(scale.seconds * 0.3)
        victim.start()

    async with AsyncClient(cluster.addresses, routing="server") as c:
        shoppers = [shopper(c, random.Random(i)) for i in range(2 * scale.concurrency)]
        bots = [bot(c, random.Random(1000 + i)) for i in range(2)]
        await asyncio.gather(*shoppers, *bots, failer())
    if failures_on:
        cluster.wait_answers(cluster.nodes[-1])
    reads = sum(counts.values())
    return {"reads": reads, "errors": errors, "versions": counts,
            "share": {k: round(v / reads, 5) if reads else 0.0 for k, v in counts.items()}}


def plot_divergence(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    labels = ["1", "2", "3", "4+"]
    for off, (name, cfg) in zip((-0.2, 0.2), data["configs"].items(), strict=True):
        ax.bar([i + off for i in range(4)], [cfg["share"][k] for k in labels], width=0.4,
               label=name)
    ax.set_yscale("log")
    ax.set_xticks(range(4), labels)
    ax.set_xlabel("versions returned by a read")
    ax.set_ylabel("share of reads")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ---- 4. load balance (in-process: real ring, claim and key hashing) -------------------------


ZIPF_KEYS = 100_000
ZIPF_S = 0.8


def _imbalance(q: int, nodes: int, rate: int, windows: int, rng: random.Random
               ) -> float:
    """Share of (node, window) pairs whose request count is >15% off the window's mean.

    Each window draws ``rate`` requests over ``ZIPF_KEYS`` keys with Zipf(``ZIPF_S``)
    popularity; a request goes to one of its key's N=3 replicas at random (any replica may
    coordinate), placed by the real ring (``claim``) and key hashing (``key_partition``).
    """
    members = [Member(f"n{i}", f"h{i}:1") for i in range(nodes)]
    ring = claim(None, members, q=q, target_n=3, claimant="n0")
    cum = _zipf_cumulative()
    owners: dict[int, tuple[str, ...]] = {}
    out_of_balance = 0
    for _ in range(windows):
        load = dict.fromkeys(ring.node_ids(), 0)
        for key_id in rng.choices(range(ZIPF_KEYS), cum_weights=cum, k=rate):
            replicas = owners.get(key_id)
            if replicas is None:
                key = f"key{key_id}".encode()
                replicas = owners[key_id] = tuple(ring.preference_list(
                    key_partition("b", key, q), min(3, nodes)))
            load[rng.choice(replicas)] += 1
        mean = rate / nodes
        out_of_balance += sum(1 for v in load.values() if abs(v - mean) > 0.15 * mean)
    return out_of_balance / (windows * nodes)


_CUM: list[float] = []


def _zipf_cumulative() -> list[float]:
    if not _CUM:
        total = 0.0
        for i in range(ZIPF_KEYS):
            total += 1.0 / (i + 1) ** ZIPF_S
            _CUM.append(total)
    return _CUM


def run_balance(scale: Scale, progress: Progress) -> dict[str, Any]:
    rng = random.Random(7)
    windows = 10 if scale.quick else 30
    rates = [100, 300, 1_000, 3_000, 10_000] + ([] if scale.quick else [30_000])
    qs = [8, 16, 32, 64, 128, 256] + ([] if scale.quick else [512, 1024])
    node_counts = [3, 5, 8, 12] + ([] if scale.quick else [16, 24])
    total = len(rates) + len(qs) + len(node_counts)
    high = 10_000 if scale.quick else 30_000  # per window: little noise, systematic part left
    out: dict[str, Any] = {"method": "in-process", "windows": windows, "keys": ZIPF_KEYS,
                           "zipf_s": ZIPF_S, "high_rate": high}
    with progress.task("balance: imbalance vs rate, Q, nodes", total) as tick:
        done = 0
        out["vs_rate"] = []
        for rate in rates:
            out["vs_rate"].append({"rate": rate, "out_of_balance": _imbalance(64, 8, rate,
                                                                              windows, rng)})
            done += 1
            tick(done)
        out["vs_q"] = []
        for q in qs:
            out["vs_q"].append({"q": q, "out_of_balance": _imbalance(q, 12, high, windows,
                                                                     rng)})
            done += 1
            tick(done)
        out["vs_nodes"] = []
        for n in node_counts:
            out["vs_nodes"].append({"nodes": n, "out_of_balance": _imbalance(
                64, n, high, windows, rng)})
            done += 1
            tick(done)
    return out


def plot_balance(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, x, label) in zip(axes, (("vs_rate", "rate", "requests per window (Q=64, 8 "
                                            "nodes)"),
                                           ("vs_q", "q", "ring size Q (12 nodes, high rate)"),
                                           ("vs_nodes", "nodes", "nodes (Q=64, high rate)")),
                                   strict=True):
        rows = data[key]
        ax.plot([r[x] for r in rows], [r["out_of_balance"] for r in rows], marker="o")
        ax.set_xscale("log" if key != "vs_nodes" else "linear")
        ax.set_xlabel(label)
        ax.set_ylabel("fraction out of balance (>15%)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ---- 5. (N, R, W) ----------------------------------------------------------------------------

NRW = ((3, 2, 2), (3, 1, 3), (3, 1, 1), (3, 3, 1))


def run_nrw(scale: Scale, progress: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {"configs": {}}
    value = b"v" * 256
    per = scale.seconds / 2
    with BenchCluster(count=3, ring_size=16) as cluster:
        for n, r, w in NRW:
            set_props(cluster, f"nrw{r}{w}", n=n, r=r, w=w)
        total = len(NRW) * (2 * per + 1) + 1
        with progress.task("nrw: latency, availability", total) as tick:
            async def measure(name: str, seconds: float, tick: Callable[[float], None],
                              offset: float) -> Samples:
                bucket, kind = name.split("/")
                async with AsyncClient(cluster.addresses, routing="partition") as c:
                    async def op(i: int) -> None:
                        if kind == "put":
                            await c.put(f"k{i % scale.keys}", value, bucket=bucket)
                        else:
                            await c.get(f"k{i % scale.keys}", bucket=bucket)
                    await op(0)
                    return await closed_loop(op, seconds, scale.concurrency, tick, offset)

            names = [f"nrw{r}{w}/{kind}" for _, r, w in NRW for kind in ("put", "get")]
            got = interleaved(names, measure, per, scale, tick)
            for n, r, w in NRW:
                out["configs"][f"({n},{r},{w})"] = {
                    kind: {"summary": lat_only(got[f"nrw{r}{w}/{kind}"][0]),
                           "failures": got[f"nrw{r}{w}/{kind}"][1]} for kind in ("put", "get")}
            offset = len(names) * per
            # The loopback baseline of the staleness experiment: no injected delay.
            out["stale_loopback_311"] = asyncio.run(stale_trials(
                cluster.nodes[0].address, cluster.nodes[1].address, "nrw11", (0,),
                20 if scale.quick else 150))
            offset += 1
            tick(offset)
            cluster.nodes[-1].kill9()
            time.sleep(3.0)  # let the others suspect it
            for n, r, w in NRW:
                out["configs"][f"({n},{r},{w})"]["one_down"] = asyncio.run(
                    _availability(cluster, f"nrw{r}{w}", 50 if scale.quick else 200))
                offset += 1
                tick(offset)
    return out


async def _availability(cluster: BenchCluster, bucket: str, ops: int) -> dict[str, Any]:
    live = [n.address for n in cluster.nodes if n.alive]
    ok = {"put": 0, "get": 0}
    async with AsyncClient(live, routing="server", timeout_s=2.0) as c:
        for i in range(ops):
            try:
                await c.put(f"avail{i}", b"x", bucket=bucket)
                ok["put"] += 1
            except Exception:
                pass
            try:
                await c.get(f"avail{i}", bucket=bucket)
                ok["get"] += 1
            except Exception:
                pass
    return {"ops": ops, "put_success": ok["put"] / ops, "get_success": ok["get"] / ops}


def plot_nrw(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = list(data["configs"])
    x = range(len(names))
    cfgs = data["configs"]
    for off, kind, pct in ((-0.3, "put", "p50_ms"), (-0.1, "put", "p99_ms"),
                           (0.1, "get", "p50_ms"), (0.3, "get", "p99_ms")):
        axes[0].bar([i + off for i in x], [cfgs[n][kind]["summary"][pct] or 0 for n in names],
                    width=0.2, label=f"{'write' if kind == 'put' else 'read'} {pct[:-3]}")
    axes[0].set_xticks(list(x), names)
    axes[0].set_ylabel("ms")
    axes[0].set_ylim(0, axes[0].get_ylim()[1] * 1.3)
    axes[0].legend(fontsize=8, ncol=2)
    axes[1].bar([i - 0.2 for i in x], [cfgs[n]["one_down"]["put_success"] for n in names],
                width=0.4, label="writes")
    axes[1].bar([i + 0.2 for i in x], [cfgs[n]["one_down"]["get_success"] for n in names],
                width=0.4, label="reads")
    axes[1].set_xticks(list(x), names)
    axes[1].set_title("success with 1 of 3 nodes down")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


# ---- driver ----------------------------------------------------------------------------------

RUNS: dict[str, tuple[Callable[[Scale, Progress], dict[str, Any]], Callable[..., None]]] = {
    "buffer": (run_buffer, plot_buffer),
    "routing": (run_routing, plot_routing),
    "divergence": (run_divergence, plot_divergence),
    "balance": (run_balance, plot_balance),
    "nrw": (run_nrw, plot_nrw),
    "staleness": (run_staleness, plot_staleness),
    "admission": (run_admission, plot_admission),
    "admission_aae": (run_admission_aae, plot_admission_aae),
}


def load_pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or None (plots are the ``[plots]`` extra)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/paper.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small settings, about 3 minutes")
    p.add_argument("--only", default="all", help=f"comma list of {', '.join(EXPERIMENTS)}")
    p.add_argument("--out", type=Path, default=Path("bench-results/paper"),
                   help="directory for the JSON and PNG files")
    p.add_argument("--seconds", type=float, help="measured seconds per configuration")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def selected(spec: str) -> list[str]:
    if spec == "all":
        return list(EXPERIMENTS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown or not names:
        raise SystemExit(f"--only: unknown experiment(s) {unknown}; known: "
                         f"{', '.join(EXPERIMENTS)}")
    return names


def _stop_on_sigterm() -> None:
    """SIGTERM (and SIGINT, which background jobs ignore) end the run through the normal
    exception path, so every cluster context stops its nodes."""
    import signal

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:
        _stop_on_sigterm()
    scale = QUICK if args.quick else FULL
    if args.seconds:
        scale = Scale(args.seconds, scale.concurrency, scale.keys, scale.quick)
    names = selected(args.only)
    args.out.mkdir(parents=True, exist_ok=True)
    plt = load_pyplot()
    if plt is None:
        print("matplotlib is missing (pip install 'dynamokv[plots]'): writing JSON only",
              file=sys.stderr)
    progress = Progress(not args.no_progress)
    started = time.monotonic()
    for name in names:
        run, plot = RUNS[name]
        t0 = time.monotonic()
        data = run(scale, progress)
        data["experiment"] = name
        data["quick"] = scale.quick
        data["seconds_per_config"] = scale.seconds
        data["wall_s"] = round(time.monotonic() - t0, 1)
        data["loadavg"] = common.loadavg()
        (args.out / f"{name}.json").write_text(json.dumps(data, indent=1))
        if plt is not None:
            plot(data, plt, args.out / f"{name}.png")
            plt.close("all")
        print(f"{name}: {data['wall_s']} s -> {args.out / name}.json", file=sys.stderr)
    print(f"done in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
