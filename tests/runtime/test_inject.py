"""The injected replica delay (benchmarks and tests only): its distributions, the precise error
for a bad one, that only replica writes wait, and that a real cluster then serves a stale read
with R=1 after a W=1 write, until the delayed write lands."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from tests.inprocess import start_inprocess_cluster

from dynamokv.client.client import AsyncClient
from dynamokv.core.messages import Message, Ping, ReplicaWrite
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.errors import ConfigError
from dynamokv.runtime.config import NodeConfig
from dynamokv.runtime.inject import DelaySpec, delayed_delivery


@pytest.mark.parametrize(("text", "low", "high"), [
    ("fixed:5", 5.0, 5.0), ("uniform:2:4", 2.0, 4.0), ("exp:10", 0.0, 60_000.0),
    ("pareto:2:1.5", 2.0, 60_000.0), ("exp:0", 0.0, 0.0)])
def test_samples_stay_in_the_distribution_range(text: str, low: float, high: float) -> None:
    spec = DelaySpec.parse(text)
    rng = random.Random(7)
    draws = [spec.sample(rng) for _ in range(2_000)]
    assert all(low <= d <= high for d in draws)
    assert str(spec) == text


def test_exponential_mean_is_near_the_parameter() -> None:
    spec = DelaySpec.parse("exp:10")
    rng = random.Random(3)
    mean = sum(spec.sample(rng) for _ in range(20_000)) / 20_000
    assert 9.0 < mean < 11.0


@pytest.mark.parametrize(("text", "words"), [
    ("normal:5", "unknown distribution 'normal'"), ("exp", "exp takes 1 number"),
    ("uniform:5", "uniform takes 2 number"), ("exp:ten", "'ten' is not a number"),
    ("uniform:9:3", "LO must not exceed HI"), ("fixed:-1", "between 0 and 60000"),
    ("pareto:0:1", "MIN and ALPHA must be more than 0")])
def test_bad_specs_get_a_precise_error(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        DelaySpec.parse(text)


def test_node_config_validates_the_spec(tmp_path: Path) -> None:
    config = NodeConfig(node_id="n1", listen="127.0.0.1:7001", data_dir=tmp_path,
                        inject_replica_delay="exp:-3")
    with pytest.raises(ConfigError, match="replica delay"):
        config.validate()


def _write() -> ReplicaWrite:
    obj = VersionedObject((Sibling(b"v", Dot("a", 1), VectorClock(), 0),))
    return ReplicaWrite(1, "b", b"k", obj)


def test_only_replica_writes_wait() -> None:
    async def main() -> list[tuple[str, type]]:
        got: list[tuple[str, type]] = []

        def deliver(src: str, msg: Message) -> None:
            got.append((src, type(msg)))

        on_peer = delayed_delivery(deliver, DelaySpec.parse("fixed:50"), random.Random(1))
        on_peer("n2", _write())
        on_peer("n2", Ping(1))
        assert got == [("n2", Ping)]  # the write waits, the ping does not
        for _ in range(200):
            if len(got) == 2:
                break
            await asyncio.sleep(0.02)
        return got

    assert asyncio.run(main()) == [("n2", Ping), ("n2", ReplicaWrite)]


def test_a_cluster_with_delayed_replicas_serves_a_stale_read_then_the_write(
        tmp_path: Path) -> None:
    async def main() -> tuple[bool, bool]:
        nodes = await start_inprocess_cluster(tmp_path, 3, inject_replica_delay="fixed:1500")
        try:
            n1, n2 = (n.config.listen for n in nodes[:2])
            async with AsyncClient([n1]) as writer, AsyncClient([n2]) as reader:
                await writer.put("k", b"new", w=1)  # n1's own copy: acknowledged at once
                stale = not (await reader.get("k", r=1)).found  # n2's copy: not yet
                fresh = False
                for _ in range(300):
                    if b"new" in (await reader.get("k", r=1)).values:
                        fresh = True
                        break
                    await asyncio.sleep(0.1)
                return stale, fresh
        finally:
            for n in nodes:
                await n.stop()

    assert asyncio.run(main()) == (True, True)
