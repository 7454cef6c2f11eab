"""Shared pieces of ``paper.py``'s experiments: scales, the node cluster, bucket props, progress
bars and the closed-loop load generator with its summaries.

Owns nothing but these helpers; every experiment module imports them from here.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import common
from recovery_cluster import RecoveryCluster

from dynamokv import Client


@dataclass
class Scale:
    """How long and how hard each experiment runs (``--quick`` shrinks everything)."""

    seconds: float  # measured seconds per configuration
    concurrency: int
    keys: int
    quick: bool = False


QUICK = Scale(seconds=3.0, concurrency=8, keys=200, quick=True)
FULL = Scale(seconds=25.0, concurrency=16, keys=2_000)


# ---- clusters and progress -------------------------------------------------------------------


@dataclass
class BenchCluster(RecoveryCluster):
    """``RecoveryCluster`` with extra ``node start`` flags (``--sync fsync`` and the like)."""

    extra_args: tuple[str, ...] = ()
    log: Callable[[str], None] = field(default=lambda text: None)

    def __enter__(self) -> BenchCluster:
        self.start()
        return self

    def _argv(self, node_id: str, address: str, seeds: Any) -> list[str]:
        return [*super()._argv(node_id, address, seeds), *self.extra_args]

    def add(self) -> Any:
        """Start one more node joining through n1; returns its ``NodeProc``."""
        from recovery_cluster import NodeProc

        assert self.root is not None
        node_id = f"n{len(self.nodes) + 1}"
        address = f"{common.HOST}:{common.free_port_block(1, random.Random())}"
        node = NodeProc(node_id, address, self.root / node_id, self.root / f"{node_id}.log",
                        self._argv(node_id, address, [self.nodes[0].address]))
        self.nodes.append(node)
        node.start()
        self.wait_answers(node)
        return node


def set_props(cluster: BenchCluster, bucket: str, **props: Any) -> None:
    """Set bucket props and wait until gossip took them to every live node."""
    with Client(cluster.addresses, timeout_s=5.0) as c:
        c.bucket_props(bucket, **props)
    deadline = time.monotonic() + 30
    for node in cluster.live():
        while time.monotonic() < deadline:
            with Client([node.address], timeout_s=3.0) as c:
                got = c.bucket_props(bucket)
            if all(got.get(k) == v for k, v in props.items()):
                break
            time.sleep(0.2)


class Progress:
    """One rich progress bar per experiment, advanced by elapsed seconds."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    @contextmanager
    def task(self, name: str, total_s: float) -> Iterator[Callable[[float], None]]:
        if not self.enabled:
            yield lambda _s: None
            return
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        with Bar(TextColumn("{task.description:<34}"), BarColumn(), TimeRemainingColumn(),
                 transient=False) as bar:
            task = bar.add_task(name, total=total_s)
            yield lambda s: bar.update(task, completed=min(s, total_s))
            bar.update(task, completed=total_s)


# ---- load generation -------------------------------------------------------------------------


async def closed_loop(op: Callable[[int], Any], seconds: float, concurrency: int,
                      tick: Callable[[float], None], offset_s: float = 0.0
                      ) -> tuple[list[tuple[float, float]], int]:
    """Run ``op(i)`` from ``concurrency`` workers for ``seconds``; (start offset, latency)
    samples of the successes, and the failure count."""
    samples: list[tuple[float, float]] = []
    failures = 0
    t0 = time.monotonic()
    counter = iter(range(1 << 62))

    async def worker() -> None:
        nonlocal failures
        while (now := time.monotonic()) - t0 < seconds:
            try:
                await op(next(counter))
                samples.append((now - t0, time.monotonic() - now))
            except Exception:
                failures += 1
            tick(offset_s + time.monotonic() - t0)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, failures


def over_time(samples: list[tuple[float, float]], window_s: float) -> list[dict[str, Any]]:
    """Percentiles per window of start time."""
    buckets: dict[int, list[float]] = {}
    for at, lat in samples:
        buckets.setdefault(int(at / window_s), []).append(lat)
    return [{"t_s": round(i * window_s, 2), **common.summarize(v)}
            for i, v in sorted(buckets.items())]


def lat_only(samples: list[tuple[float, float]]) -> dict[str, Any]:
    return common.summarize([lat for _, lat in samples])


Samples = tuple[list[tuple[float, float]], int]  # (start offset, latency) samples, failures
Measure = Callable[[str, float, Callable[[float], None], float], Coroutine[Any, Any, Samples]]


def interleaved(names: Sequence[str], measure: Measure, seconds: float, scale: Scale,
                tick: Callable[[float], None], offset_s: float = 0.0) -> dict[str, Samples]:
    """Measure every configuration in ``names`` for ``seconds`` in all, in alternating slices
    (A B, B A, A B, ...; ``measure(name, slice_s, tick, offset)`` measures one slice), so a
    change in the rest of the machine's load falls on every configuration alike. Sample
    offsets are shifted so that each configuration's slices follow one another."""
    slices = 2 if scale.quick else 4
    per = seconds / slices
    got: dict[str, Samples] = {name: ([], 0) for name in names}
    done = offset_s
    for s in range(slices):
        for name in (names if s % 2 == 0 else list(reversed(names))):
            samples, failures = asyncio.run(measure(name, per, tick, done))
            kept, failed = got[name]
            kept.extend((at + s * per, lat) for at, lat in samples)
            got[name] = (kept, failed + failures)
            done += per
    return got
