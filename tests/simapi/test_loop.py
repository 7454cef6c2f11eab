"""VirtualLoop: asyncio on the simulator's clock -- sleeps, timeouts and timers cost no real
time, simulator events wake waiting tasks at their virtual instant, deadlocks are reported."""

from __future__ import annotations

import asyncio
import time

import pytest

from dynamokv.sim.options import SimOptions
from dynamokv.sim.world import Simulator
from dynamokv.simapi.loop import Stalled, VirtualLoop


def make(seed: int = 1) -> tuple[Simulator, VirtualLoop]:
    sim = Simulator(seed, SimOptions(seed=seed))
    return sim, VirtualLoop(sim)


def test_sleep_and_timeouts_run_on_virtual_time() -> None:
    sim, loop = make()
    started = time.monotonic()

    async def main() -> list[float]:
        seen = [loop.time()]
        await asyncio.sleep(3600)  # an hour of virtual time
        seen.append(loop.time())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2.5):
                await asyncio.sleep(10)
        seen.append(loop.time())
        await asyncio.sleep(0.0004)  # below the simulator's millisecond: still progresses
        seen.append(loop.time())
        return seen

    assert loop.run(main()) == [0.0, 3600.0, 3602.5, 3602.501]
    assert sim.now_ms == 3_602_501
    assert time.monotonic() - started < 30  # generous: an hour of virtual time took seconds
    loop.shutdown()


def test_simulator_events_wake_tasks_at_their_virtual_instant() -> None:
    sim, loop = make()
    order: list[tuple[str, int]] = []

    async def main() -> None:
        fut = loop.create_future()
        sim.call_at(250, "resolve", lambda: fut.set_result("hello"))

        async def ticker() -> None:
            for _ in range(3):
                await asyncio.sleep(0.1)
                order.append(("tick", sim.now_ms))

        task = loop.create_task(ticker())
        order.append((await fut, sim.now_ms))
        await task

    loop.run(main())
    assert order == [("tick", 100), ("tick", 200), ("hello", 250), ("tick", 300)]
    loop.shutdown()


def test_call_later_runs_in_time_order_the_same_every_time() -> None:
    """Timers due at one instant run in asyncio's own heap order (not FIFO, as in any asyncio
    loop): a pure function of the calls, so every run of a seed agrees."""

    def run_once() -> list[str]:
        _, loop = make()
        calls: list[str] = []

        async def main() -> None:
            loop.call_later(0.02, calls.append, "b")
            loop.call_later(0.01, calls.append, "a")
            loop.call_later(0.02, calls.append, "c")
            loop.call_soon(calls.append, "now")
            await asyncio.sleep(0.05)

        loop.run(main())
        loop.shutdown()
        return calls

    first = run_once()
    assert first[:2] == ["now", "a"] and sorted(first[2:]) == ["b", "c"]
    assert run_once() == first


def test_a_task_waiting_on_nothing_is_reported_as_stalled() -> None:
    sim = Simulator(1, SimOptions(seed=1))
    sim.bootstrap()  # a running cluster: the heap never empties (gossip, anti-entropy)
    loop = VirtualLoop(sim, idle_limit_ms=5_000)
    before = sim.now_ms

    async def main() -> None:
        await loop.create_future()  # nobody will ever resolve it

    with pytest.raises(Stalled, match="no task could progress"):
        loop.run(main())
    assert sim.now_ms == before + 5_000
    loop.shutdown()


def test_shutdown_cancels_background_tasks() -> None:
    _, loop = make()
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(10**6)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        loop.create_task(forever())
        await asyncio.sleep(0)

    loop.run(main())
    loop.shutdown()
    assert cancelled == [True] and loop.is_closed()
