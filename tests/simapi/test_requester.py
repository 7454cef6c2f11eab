"""SimRequester under RequestHandle: the API's NodeHandle over a simulated node's local requests
-- quorum reads and writes, Paxos cas, ranges and scans -- and what a client sees when the node
is down, dies mid-request, or stops answering."""

from __future__ import annotations

import asyncio

import pytest

from dynamokv.api.handle import Abort, compose_key, table_bucket
from dynamokv.api.request_handle import RequestHandle
from dynamokv.errors import RequestTimeout, UnavailableError
from dynamokv.sim.options import SimOptions
from dynamokv.sim.world import Simulator
from dynamokv.simapi.loop import VirtualLoop
from dynamokv.simapi.requester import REF_BASE, ConnectionLost, SimRequester

BUCKET = table_bucket("t1")


def cluster(seed: int = 3) -> tuple[Simulator, VirtualLoop]:
    sim = Simulator(seed, SimOptions(seed=seed))
    assert sim.bootstrap()
    return sim, VirtualLoop(sim)


def test_reads_writes_cas_ranges_and_scans_through_a_simulated_node() -> None:
    sim, loop = cluster()
    h1 = RequestHandle(SimRequester(sim, "n1"))
    h2 = RequestHandle(SimRequester(sim, "n2"))

    async def main() -> None:
        assert h1.q == sim.settings.q
        key = compose_key(b"p", b"1")
        await h1.write(BUCKET, key, b"one")
        assert await h2.read(BUCKET, key, consistent=True) == b"one"
        assert await h2.cas(BUCKET, key, lambda old: (old or b"") + b"+") == (b"one", b"one+")

        def refuse(old: bytes | None) -> bytes | None:
            raise Abort("no")

        with pytest.raises(Abort):
            await h1.cas(BUCKET, key, refuse)
        await h1.write(BUCKET, compose_key(b"p", b"2"), b"two")
        page = await h2.query(BUCKET, b"p", None, None, consistent=True)
        assert [v for _, v in page.items] == [b"one+", b"two"]
        scanned = []
        for segment in range(2):
            page = await h1.scan(BUCKET, segment, 2, None, 100)
            scanned.extend(v for _, v in page.items)
        assert sorted(scanned) == [b"one+", b"two"]

    start = sim.now_ms
    loop.run(main())
    assert sim.now_ms > start  # every call took virtual time: replicas answered over the net
    loop.shutdown()


def test_a_down_node_refuses_and_a_crash_mid_request_loses_the_connection() -> None:
    sim, loop = cluster()
    handle = RequestHandle(SimRequester(sim, "n2"))
    key = compose_key(b"p", b"1")

    async def main() -> None:
        sim.call_at(sim.now_ms + 1, "crash n2", lambda: sim.crash("n2"))
        with pytest.raises(ConnectionLost, match="connection to n2 lost"):
            await handle.cas(BUCKET, key, lambda old: b"x")
        with pytest.raises(UnavailableError, match="n2 refused the connection") as info:
            await handle.write(BUCKET, key, b"y")
        assert type(info.value) is UnavailableError  # refused: certainly not applied
        sim.restart("n2")
        await asyncio.sleep(1)
        await handle.write(BUCKET, key, b"z")
        assert await handle.read(BUCKET, key, consistent=True) == b"z"

    loop.run(main())
    loop.shutdown()


def test_a_paused_node_times_out_in_virtual_time() -> None:
    sim, loop = cluster()
    handle = RequestHandle(SimRequester(sim, "n3", timeout_ms=700))

    async def main() -> None:
        sim.pause("n3", sim.now_ms + 60_000)
        start = sim.now_ms
        with pytest.raises(RequestTimeout, match="within 700 ms"):
            await handle.read(BUCKET, b"k")
        assert sim.now_ms - start == 700

    loop.run(main())
    loop.shutdown()


def test_references_are_unique_per_simulator_and_clear_of_the_workload() -> None:
    sim, loop = cluster()
    seen: list[int] = []
    original = sim.local_send

    def spy(node_id: str, client: int, request: object) -> None:
        seen.append(client)
        original(node_id, client, request)

    sim.local_send = spy  # type: ignore[method-assign]
    a = RequestHandle(SimRequester(sim, "n1"))
    b = RequestHandle(SimRequester(sim, "n2"))

    async def main() -> None:
        await asyncio.gather(a.read(BUCKET, b"k"), b.read(BUCKET, b"k"), a.read(BUCKET, b"j"))

    loop.run(main())
    assert len(set(seen)) == 3 and min(seen) >= REF_BASE
    loop.shutdown()
    with pytest.raises(ValueError, match="no node 'n9'"):
        SimRequester(sim, "n9")
