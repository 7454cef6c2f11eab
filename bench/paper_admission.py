"""Admission control (paper 6.5): foreground latency while hint replay competes with it, with
the feedback loop on and off, side by side in one run.

Owns: ``run_admission`` / ``plot_admission`` (experiment ``admission`` of ``paper.py``).

Two 4-node clusters run at once, one with admission control (the default) and one with
``node start --no-admission-control``; rounds alternate between them (on, off, off, on, ...) so
both see the same load from the rest of the machine. A round: kill one node, write a backlog of
large values (its hints pile up on the other nodes), then run a light foreground (reads and
writes of small values from a few clients) and restart the node after ``PRE_S``. The hints then
replay to it while the foreground runs; every ``POLL_S`` the round records how many are still
pending. Afterwards it waits (bounded) until every hint is delivered, so the next round starts
clean, and records how long the replay took.

The controller throttles background work when a node's foreground p99 over the last second is
above 50 ms; the receiving node also answers hint batches with "busy" then. On a loaded machine
that is most of the time, so "on" replays at the minimum rate: the point is what that buys the
foreground, and what it costs in replay time.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import common
from paper_admission_common import admission_rounds, latency_panel
from paper_common import BenchCluster, Progress, Scale, closed_loop, over_time
from recovery_cluster import hints_pending, snapshot

from dynamokv.client.client import AsyncClient

VALUE_BYTES = 16 * 1024  # backlog values: hint batches are byte-bounded (1 MiB), so ~60 a batch
FG_CONCURRENCY = 4  # a light foreground: its latency shows interference, not its own queueing
PRE_S = 3.0  # foreground before the restart (the baseline of each round)
POLL_S = 0.5
DRAIN_TIMEOUT_S = 120.0


def _plan(scale: Scale) -> dict[str, Any]:
    if scale.quick:
        return {"rounds": 1, "backlog": 600, "measure_s": max(7.0, scale.seconds)}
    return {"rounds": 2, "backlog": 4_000, "measure_s": max(8.0, scale.seconds * 0.8)}


def run_admission(scale: Scale, progress: Progress) -> dict[str, Any]:
    return admission_rounds(_plan(scale), {"value_bytes": VALUE_BYTES,
                                           "fg_concurrency": FG_CONCURRENCY}, PRE_S,
                            "admission: fg during hint replay", progress, _round, _pool)


def _round(cluster: BenchCluster, plan: dict[str, Any], index: int, tick: Any
           ) -> dict[str, Any]:
    victim = cluster.nodes[-1]
    victim.kill9()
    cluster.wait_seen_down(victim)
    t0 = time.monotonic()
    asyncio.run(_backlog(cluster, plan["backlog"], index))
    backlog_s = time.monotonic() - t0
    throttled = _throttled_windows(snapshot(cluster))
    samples, failures, pending = asyncio.run(_measure(cluster, victim, plan["measure_s"],
                                                      tick))
    drained_at = _drain(cluster, victim, pending)
    started_at = next((at for at, left in pending if left < pending[0][1]), None) \
        if pending else None
    return {"backlog_writes": plan["backlog"], "backlog_s": round(backlog_s, 1),
            "hints_at_restart": pending[0][1] if pending else None,
            "samples": [[round(a - PRE_S, 3), round(b, 5)] for a, b in samples],
            "failures": failures, "pending": pending, "replay_started_s": started_at,
            "replay_s": drained_at,
            "throttled_windows": _throttled_windows(snapshot(cluster)) - throttled}


def _throttled_windows(statuses: dict[str, dict[str, Any] | None]) -> int:
    """Seconds (summed over nodes) in which a node's controller saw a slow foreground."""
    return sum(int(s["admission"]["throttled_windows"]) for s in statuses.values()
               if s is not None)


async def _backlog(cluster: BenchCluster, count: int, index: int) -> None:
    blob = random.Random(index).randbytes(VALUE_BYTES)
    async with AsyncClient([n.address for n in cluster.live()], routing="server") as c:
        sem = asyncio.Semaphore(24)

        async def one(i: int) -> None:
            async with sem:
                try:
                    await c.put(f"bulk{index}-{i}", blob, bucket="bulk")
                except Exception:
                    pass  # a lost backlog write only makes the backlog smaller
        await asyncio.gather(*(one(i) for i in range(count)))


async def _measure(cluster: BenchCluster, victim: Any, measure_s: float, tick: Any
                   ) -> tuple[list[tuple[float, float]], int, list[list[float]]]:
    """Foreground for ``PRE_S + measure_s``; the victim restarts at ``PRE_S``. Returns the
    samples (start offset, latency), the failures, and (s since restart, hints pending)."""
    pending: list[list[float]] = []
    others = [n for n in cluster.nodes if n is not victim]

    async def restart_and_poll() -> None:
        await asyncio.sleep(PRE_S)
        restarted = time.monotonic()
        victim.start()
        async with AsyncClient([n.address for n in others], timeout_s=2.0) as c:
            while (elapsed := time.monotonic() - restarted) < measure_s:
                total = 0
                try:
                    for node in others:
                        hints = (await c.status(node.address))["hints"]
                        total += sum(int(v) for v in hints["pending"].values())
                        total += int(hints["in_flight"])
                    pending.append([round(elapsed, 2), total])
                except Exception:
                    pass  # a busy node: this poll is skipped
                await asyncio.sleep(POLL_S)

    async with AsyncClient(cluster.addresses, routing="partition", timeout_s=5.0) as c:
        async def op(i: int) -> None:
            key = f"fg{i % 500}"
            if i % 2:
                await c.put(key, b"f" * 200, bucket="fg")
            else:
                await c.get(key, bucket="fg")
        await op(1)
        fg = closed_loop(op, PRE_S + measure_s, FG_CONCURRENCY, tick)
        (samples, failures), _ = await asyncio.gather(fg, restart_and_poll())
    return samples, failures, pending


def _drain(cluster: BenchCluster, victim: Any, pending: list[list[float]]) -> float | None:
    """Seconds from the restart until no hint was pending: from the polls when it happened
    during the measurement, else by waiting for it (bounded); None if it never did."""
    cluster.wait_answers(victim)
    for at, left in pending:
        if left == 0:
            return at
    waited_from = time.monotonic()
    last = pending[-1][0] if pending else 0.0
    deadline = waited_from + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if hints_pending(snapshot(cluster)) == 0:
            return round(last + time.monotonic() - waited_from, 1)
        time.sleep(POLL_S)
    return None


def _pool(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One mode's rounds together: foreground before the restart, in the whole window after
    it, and while hints were still pending; replay times."""
    before: list[float] = []
    after: list[float] = []
    during: list[float] = []
    timeline: list[tuple[float, float]] = []
    replaying_s = 0.0
    for r in rounds:
        start = r["replay_started_s"] if r["replay_started_s"] is not None else 0.0
        end = r["replay_s"] if r["replay_s"] is not None else float("inf")
        last = max((at for at, _ in r["samples"]), default=0.0)
        replaying_s += max(0.0, min(end, last) - (start - POLL_S))
        for at, lat in r["samples"]:
            (before if at < 0 else after).append(lat)
            if start - POLL_S <= at < end:  # the first poll that saw fewer hints, minus one
                during.append(lat)
            timeline.append((at, lat))
    return {"before_restart": common.summarize(before),
            "after_restart": common.summarize(after),
            "while_replaying": common.summarize(during),
            "while_replaying_ops_per_s": round(len(during) / replaying_s, 1) if replaying_s
            else None,
            "replay_s": [r["replay_s"] for r in rounds],
            "replay_started_s": [r["replay_started_s"] for r in rounds],
            "throttled_windows": [r["throttled_windows"] for r in rounds],
            "failures": sum(r["failures"] for r in rounds),
            "over_time": over_time([(a + PRE_S, b) for a, b in timeline], 1.0)}


def plot_admission(data: dict[str, Any], plt: Any, path: Path) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 3.8))
    latency_panel(a, data, "s after the node restarted (hints replaying to it)")
    for r in data["rounds_run"]:
        color = "C0" if r["mode"] == "feedback on" else "C1"
        b.plot([p[0] for p in r["pending"]], [p[1] for p in r["pending"]], color=color,
               label=f"{r['mode']} (round {r['round']})")
    b.set_xlabel("s after the restart")
    b.set_ylabel("hints pending (all nodes)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
