"""Probabilistically bounded staleness (PBS), measured: the chance that a read misses the latest
acknowledged write, as a function of the time since its acknowledgement, for several (N, R, W).

Owns: ``run_staleness`` / ``plot_staleness`` (experiment ``staleness`` of ``paper.py``),
``stale_trials`` (one curve on any cluster) and ``model_stale`` (the same question answered by
Monte Carlo from the injected distribution, to check the measurement against).

On one machine every replica applies a write within a millisecond, so nothing is ever stale
(``nrw`` measures that baseline). Here the nodes run with ``node start --inject-replica-delay``
(benchmarks and tests only): each replica write from a peer is applied after a delay drawn from
an exponential distribution, as over a slower network. The coordinator's own copy is applied at
once, as on a real node.

A trial: a client writes a fresh key through node 1 (which coordinates: with 3 nodes and N=3
every node is a replica) and waits for the acknowledgement; after ``t`` ms another client reads
the key through node 2. The read is stale if it does not return the written value. Trials run
``TRIAL_WORKERS`` at a time, each on its own keys.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paper_common import BenchCluster, Progress, Scale, set_props

from dynamokv.client.client import AsyncClient

DELAY_SPEC = "exp:10"  # mean 10 ms per replica write
DELAY_MEAN_MS = 10.0
PBS_NRW = ((3, 1, 1), (3, 1, 2), (3, 2, 1), (3, 2, 2), (3, 1, 3))
T_MS = (0, 1, 2, 5, 10, 20, 40, 80)
TRIAL_WORKERS = 6


async def stale_trials(writer_address: str, reader_address: str, bucket: str,
                       t_ms: tuple[int, ...], trials: int,
                       tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """``trials`` write-then-read trials per ``t`` in ``t_ms``: the share of stale reads, and
    the latencies of the writes and reads."""
    counts = {t: [0, 0] for t in t_ms}  # t -> [done, stale]
    put_ms: list[float] = []
    get_ms: list[float] = []
    failures = 0
    jobs = [(t, i) for i in range(trials) for t in t_ms]
    random.Random(5).shuffle(jobs)  # every t sees the same mix of machine load
    run_id = time.monotonic_ns()

    async def worker(writer: AsyncClient, reader: AsyncClient) -> None:
        nonlocal failures
        while jobs:
            t, i = jobs.pop()
            key = f"pbs{run_id}-{t}-{i}"
            token = f"{i}-{time.monotonic_ns()}".encode()
            try:
                started = time.monotonic()
                await writer.put(key, token, bucket=bucket)
                acked = time.monotonic()
                if t:
                    await asyncio.sleep(t / 1000)
                read_at = time.monotonic()
                seen = await reader.get(key, bucket=bucket)
                get_ms.append((time.monotonic() - read_at) * 1000)
            except Exception:
                failures += 1
                continue
            put_ms.append((acked - started) * 1000)
            counts[t][0] += 1
            counts[t][1] += token not in seen.values
            tick()

    async with AsyncClient([writer_address], routing="server") as writer, \
            AsyncClient([reader_address], routing="server") as reader:
        await asyncio.gather(*(worker(writer, reader) for _ in range(TRIAL_WORKERS)))
    return {"curve": [{"t_ms": t, "trials": d, "stale": s, "p_stale": round(s / d, 4) if d
                       else None} for t, (d, s) in sorted(counts.items())],
            "put_ms": _pcts(put_ms), "get_ms": _pcts(get_ms), "failures": failures}


def _pcts(values: list[float]) -> dict[str, float | None]:
    v = sorted(values)
    if not v:
        return {"p50": None, "p99": None}
    return {"p50": round(v[len(v) // 2], 2), "p99": round(v[min(len(v) - 1,
                                                                 int(0.99 * len(v)))], 2)}


def model_stale(r: int, w: int, t_ms: float, mean_ms: float, rng: random.Random,
                draws: int = 20_000) -> float:
    """P(stale) for the trial above, if only the injected delays mattered: node 1 (the writer's
    coordinator) applies at 0, nodes 2 and 3 after Exp(mean) each; the write is acknowledged
    when W copies are applied; node 2 coordinates the read, its own copy answers first and the
    other R-1 answers come from a random order of nodes 1 and 3."""
    stale = 0
    for _ in range(draws):
        applied = {1: 0.0, 2: rng.expovariate(1 / mean_ms), 3: rng.expovariate(1 / mean_ms)}
        ack = sorted(applied.values())[w - 1]
        read = ack + t_ms
        others = [1, 3]
        rng.shuffle(others)
        asked = [2, *others][:r]
        stale += all(applied[n] > read for n in asked)
    return stale / draws


def run_staleness(scale: Scale, progress: Progress) -> dict[str, Any]:
    trials = 8 if scale.quick else 60
    t_ms = T_MS[::2] if scale.quick else T_MS
    out: dict[str, Any] = {"delay": DELAY_SPEC, "nodes": 3, "trials_per_point": trials,
                           "configs": {}}
    rng = random.Random(11)
    with BenchCluster(count=3, ring_size=16,
                      extra_args=("--inject-replica-delay", DELAY_SPEC)) as cluster:
        for n, r, w in PBS_NRW:
            set_props(cluster, f"pbs{r}{w}", n=n, r=r, w=w)
        total = len(PBS_NRW) * trials * len(t_ms)
        with progress.task("staleness: PBS with replica delay", total) as tick:
            done = 0

            def step() -> None:
                nonlocal done
                done += 1
                tick(done)

            for n, r, w in PBS_NRW:
                cfg = asyncio.run(stale_trials(cluster.nodes[0].address,
                                               cluster.nodes[1].address, f"pbs{r}{w}", t_ms,
                                               trials, step))
                for row in cfg["curve"]:
                    row["model"] = round(model_stale(r, w, row["t_ms"], DELAY_MEAN_MS, rng), 4)
                out["configs"][f"({n},{r},{w})"] = cfg
    return out


def plot_staleness(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.8))
    for i, (name, cfg) in enumerate(data["configs"].items()):
        rows = [row for row in cfg["curve"] if row["p_stale"] is not None]
        xs = [max(row["t_ms"], 0.5) for row in rows]
        color = f"C{i}"
        a.plot(xs, [row["p_stale"] for row in rows], marker="o", color=color, label=name)
        a.plot(xs, [row["model"] for row in rows], linestyle="--", color=color, alpha=0.6)
    a.set_xscale("log")
    a.set_xlabel("ms from the write's acknowledgement to the read (0 plotted at 0.5)")
    a.set_ylabel("P(read misses the write)")
    a.set_title(f"measured (solid) vs model (dashed); replica delay {data['delay']}")
    a.legend()
    names = list(data["configs"])
    x = range(len(names))
    for off, kind, label in ((-0.2, "put_ms", "write p50"), (0.2, "get_ms", "read p50")):
        b.bar([j + off for j in x], [data["configs"][n][kind]["p50"] or 0 for n in names],
              width=0.4, label=label)
    b.set_xticks(list(x), names)
    b.set_ylabel("ms")
    b.set_title("what consistency costs: latency under the same delay")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
