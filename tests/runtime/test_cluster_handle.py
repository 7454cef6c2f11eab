"""The DynamoDB API's handle over a real in-process node cluster on 127.0.0.1: quorum writes
and reads of table items, range reads, scans, and Paxos compare-and-set across nodes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.inprocess import start_inprocess_cluster

from dynamokv.api.handle import Abort, compose_key
from dynamokv.runtime.server import RunningNode

BUCKET = "~t/tbl-1"


async def _cluster(root: Path, count: int = 3) -> list[RunningNode]:
    return await start_inprocess_cluster(root, count)




def test_handle_end_to_end(tmp_path: Path) -> None:
    async def main() -> None:
        nodes = await _cluster(tmp_path)
        try:
            h1, h2, h3 = (n.handle for n in nodes)
            assert h1 and h2 and h3
            for i in range(10):
                await h1.write(BUCKET, compose_key(b"pk", b"%02d" % i), b"v%d" % i)
            assert await h2.read(BUCKET, compose_key(b"pk", b"03")) == b"v3"
            assert await h3.read(BUCKET, compose_key(b"pk", b"03"), consistent=True) == b"v3"
            page = await h3.query(BUCKET, b"pk", b"02", None, limit=3)
            assert [v for _, v in page.items] == [b"v2", b"v3", b"v4"]
            assert page.last_key == compose_key(b"pk", b"04")
            seen = []
            for segment in range(2):
                after = None
                for _ in range(100):
                    p = await h2.scan(BUCKET, segment, 2, after, 4)
                    seen += [v for _, v in p.items]
                    if p.last_key is None:
                        break
                    after = p.last_key
            assert sorted(seen) == sorted(b"v%d" % i for i in range(10))

            class Taken(Abort):
                pass

            def claim(tag: bytes):  # type: ignore[no-untyped-def]
                def decide(old: bytes | None) -> bytes:
                    if old is not None:
                        raise Taken(old)
                    return tag
                return decide

            results = await asyncio.gather(
                *(h.cas(BUCKET, b"lock", claim(t)) for h, t in ((h1, b"a"), (h2, b"b"),
                                                                  (h3, b"c"))),
                return_exceptions=True)
            winners = [r for r in results if isinstance(r, tuple)]
            assert len(winners) == 1, results
            assert all(isinstance(r, Taken) for r in results if not isinstance(r, tuple))

            async def incr(h):  # type: ignore[no-untyped-def]
                return await h.cas(BUCKET, b"ctr", lambda old: str(int(old or b"0") + 1).encode())

            await asyncio.gather(*(incr(h) for h in (h1, h2, h3) for _ in range(5)))
            assert await h1.read(BUCKET, b"ctr", consistent=True) == b"15"
            await h2.write(BUCKET, compose_key(b"pk", b"03"), None)
            assert await h1.read(BUCKET, compose_key(b"pk", b"03")) is None
            await h1.drop_bucket(BUCKET)
            assert (await h3.query(BUCKET, b"pk", None, None)).items == []
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())


def test_dynamodb_api_requests_reach_the_latency_metrics(tmp_path: Path) -> None:
    async def main() -> None:
        nodes = await _cluster(tmp_path)
        try:
            node = nodes[0]
            h = node.handle
            assert h is not None
            await h.write(BUCKET, compose_key(b"m", b"1"), b"v")
            assert await h.read(BUCKET, compose_key(b"m", b"1")) == b"v"
            await h.query(BUCKET, b"m", None, None, limit=10)
            latency = node.runner.metrics.snapshot()["latency_ms"]
            assert latency["put"]["samples"] >= 1 and latency["get"]["samples"] >= 1
            assert latency["range"]["samples"] >= 1
            registry = node.runner.metrics.registry
            assert (registry.get_sample_value("dynamokv_request_seconds_count",
                                              {"op": "range", "outcome": "ok"}) or 0) >= 1
        finally:
            for n in nodes:
                await n.stop()

    asyncio.run(main())
