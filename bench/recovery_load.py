"""Load for ``recovery.py``: bulk writes, a steady foreground load, and a status sampler.

- ``write_keys``: write each key once, a bounded number in flight, each failed put retried a
  bounded number of times; bounded in time as a whole.
- ``foreground``: a closed loop of gets and blind puts (last-writer-wins bucket) over a fixed key
  set, ``concurrency`` requests in flight, for a fixed duration; latency measured on the client
  with ``time.perf_counter`` around each call, with the time each op ended, so that a run can be
  cut into the part with background work and the part without.
- ``sample_statuses``: every ``interval_s``, every node's status, reduced by a caller's function.

All three run on one asyncio loop (``run``: uvloop when installed), so a foreground run and its
status sampler run side by side. Only 127.0.0.1 addresses are ever given to them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import common

from dynamokv import AsyncClient

T = TypeVar("T")

WRITE_ATTEMPTS = 3
SAMPLES_MAX = 10_000  # status samples per sampler run, whatever the duration


def run(job: Coroutine[Any, Any, T]) -> T:
    """Run ``job`` to completion on a fresh event loop (uvloop if it is installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(job)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(job)


# ---- bulk writes -------------------------------------------------------------------------------


async def write_keys(addresses: list[str], keys: list[bytes], values: list[bytes], *,
                     bucket: str, w: int, concurrency: int, timeout_s: float,
                     deadline_s: float) -> dict[str, Any]:
    """Put every key once (values taken round robin from ``values``); a summary of the run."""
    client = AsyncClient(addresses, routing="server", timeout_s=timeout_s)
    errors: Counter[str] = Counter()
    written = failed = 0
    position = 0
    start = time.perf_counter()
    deadline = start + deadline_s

    async def writer() -> None:
        nonlocal position, written, failed
        while position < len(keys) and time.perf_counter() < deadline:
            index = position
            position += 1
            for attempt in range(WRITE_ATTEMPTS):
                try:
                    await client.put(keys[index], values[index % len(values)], bucket=bucket,
                                     w=w)
                    written += 1
                    break
                except Exception as exc:  # counted, retried a bounded number of times
                    errors[common.error_code(exc)] += 1
                    if attempt == WRITE_ATTEMPTS - 1:
                        failed += 1

    tasks = [asyncio.create_task(writer()) for _ in range(concurrency)]
    try:
        grace = timeout_s * WRITE_ATTEMPTS + 1.0  # the last puts may take their full timeout
        _, pending = await asyncio.wait(tasks, timeout=deadline_s + grace)
    finally:
        for task in tasks:
            task.cancel()
        await client.close()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]  # a bug in this file: surface it
    seconds = time.perf_counter() - start
    return {"keys": len(keys), "written": written, "failed": failed,
            "seconds": round(seconds, 3),
            "puts_per_s": round(written / seconds, 1) if seconds > 0 else None,
            "errors": dict(errors)}


# ---- foreground load ---------------------------------------------------------------------------


@dataclass
class Foreground:
    """What one foreground run saw. Times are seconds since the run started."""

    ends: list[float] = field(default_factory=list)  # when each successful op ended
    latencies: list[float] = field(default_factory=list)  # its latency, seconds
    is_read: list[bool] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    not_found: int = 0  # reads of a loaded key that found nothing
    dropped_at_deadline: int = 0
    seconds: float = 0.0

    def summary(self, start: float = 0.0, end: float = float("inf")) -> dict[str, Any]:
        """Percentiles of the ops that ended in ``[start, end)``, all, reads and writes."""
        chosen = [i for i, t in enumerate(self.ends) if start <= t < end]
        span = min(end, self.seconds) - start
        every = [self.latencies[i] for i in chosen]
        return {
            "from_s": round(start, 3), "to_s": round(min(end, self.seconds), 3),
            "ops": len(every),
            "ops_per_s": round(len(every) / span, 1) if span > 0 else None,
            "all": common.summarize(every),
            "read": common.summarize([self.latencies[i] for i in chosen if self.is_read[i]]),
            "write": common.summarize([self.latencies[i] for i in chosen
                                       if not self.is_read[i]]),
        }


async def foreground(addresses: list[str], keys: list[bytes], values: list[bytes], *,
                     bucket: str, seconds: float, concurrency: int, read_fraction: float,
                     seed: int, timeout_s: float, max_ops: int) -> Foreground:
    """``concurrency`` workers, each: pick a key uniformly, get it or put a value; until the end.

    Ops still in flight at the deadline are cancelled and not counted (``dropped_at_deadline``),
    so a run never outlasts ``seconds`` even if a node stops answering.
    """
    out = Foreground()
    client = AsyncClient(addresses, routing="server", timeout_s=timeout_s)
    issued = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def worker(index: int) -> None:
        nonlocal issued
        rng = random.Random(seed * 1_000_003 + index)
        while issued < max_ops and time.perf_counter() < deadline:
            issued += 1
            key = keys[rng.randrange(len(keys))]
            read = rng.random() < read_fraction
            start = time.perf_counter()
            try:
                if read:
                    result = await client.get(key, bucket=bucket)
                else:
                    await client.put(key, values[rng.randrange(len(values))], bucket=bucket)
            except Exception as exc:  # a result to count, not a reason to stop
                out.errors[("read " if read else "write ") + common.error_code(exc)] += 1
                continue
            end = time.perf_counter()
            if end > deadline:
                out.dropped_at_deadline += 1
            elif read and not result.found:
                out.not_found += 1
            else:
                out.ends.append(end - t0)
                out.latencies.append(end - start)
                out.is_read.append(read)

    tasks = [asyncio.create_task(worker(i)) for i in range(concurrency)]
    try:
        _, pending = await asyncio.wait(tasks, timeout=max(deadline - time.perf_counter(), 0.0))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    out.dropped_at_deadline += sum(task.cancelled() for task in pending)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]  # a bug in this file: surface it
    out.seconds = min(time.perf_counter(), deadline) - t0
    return out


# ---- status sampling ---------------------------------------------------------------------------


async def sample_statuses(addresses: dict[str, str], reduce: Callable[[
        dict[str, dict[str, Any] | None]], dict[str, Any]], *, seconds: float,
        interval_s: float, timeout_s: float = 3.0) -> list[dict[str, Any]]:
    """Every ``interval_s`` for ``seconds``: ``reduce({node id: status or None})`` with ``t``.

    ``t`` is seconds since the sampler started (run it together with ``foreground`` so both
    count from the same moment, give or take a loop iteration).
    """
    clients = {nid: AsyncClient([address], timeout_s=timeout_s)
               for nid, address in addresses.items()}
    samples: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        for tick in range(SAMPLES_MAX):
            target = t0 + tick * interval_s
            if target - t0 > seconds:
                break
            await asyncio.sleep(max(target - time.perf_counter(), 0.0))
            statuses: dict[str, dict[str, Any] | None] = {}
            for nid, client in clients.items():
                try:
                    statuses[nid] = await client.status()
                except Exception:  # busy or restarting: recorded as no answer
                    statuses[nid] = None
            samples.append({"t": round(time.perf_counter() - t0, 3), **reduce(statuses)})
    finally:
        for client in clients.values():
            await client.close()
    return samples
