"""LocalHandle, the reference NodeHandle: reads, writes, cas, ordered queries, segmented scans."""

from __future__ import annotations

import asyncio

import pytest

from dynamokv.api.handle import Abort, compose_key, split_key
from dynamokv.api.local_handle import LocalHandle


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_read_write_delete() -> None:
    async def body() -> None:
        h = LocalHandle()
        assert await h.read("b", b"k") is None
        await h.write("b", b"k", b"v")
        assert await h.read("b", b"k", consistent=True) == b"v"
        await h.write("b", b"k", None)
        assert await h.read("b", b"k") is None
        assert h.bucket_size("b") == 0

    run(body())


def test_cas_applies_and_aborts() -> None:
    async def body() -> None:
        h = LocalHandle()
        assert await h.cas("b", b"k", lambda old: b"1") == (None, b"1")
        assert await h.cas("b", b"k", lambda old: (old or b"") + b"2") == (b"1", b"12")

        def refuse(old: bytes | None) -> bytes | None:
            raise Abort("no")

        with pytest.raises(Abort):
            await h.cas("b", b"k", refuse)
        assert await h.read("b", b"k") == b"12"
        assert await h.cas("b", b"k", lambda old: None) == (b"12", None)
        assert await h.read("b", b"k") is None

    run(body())


def test_racing_cas_increments_never_lose_updates() -> None:
    async def body() -> None:
        h = LocalHandle(yield_points=True)

        def incr(old: bytes | None) -> bytes:
            return str(int(old or b"0") + 1).encode()

        await asyncio.gather(*(h.cas("b", b"n", incr) for _ in range(50)))
        assert await h.read("b", b"n") == b"50"

    run(body())


def test_query_is_ordered_bounded_and_paged() -> None:
    async def body() -> None:
        h = LocalHandle()
        for hp in (b"a", b"b"):
            for i in range(10):
                await h.write("t", compose_key(hp, bytes([i])), bytes([i]))
        page = await h.query("t", b"a", None, None)
        assert [v for _, v in page.items] == [bytes([i]) for i in range(10)]
        assert page.last_key is None
        page = await h.query("t", b"a", bytes([2]), bytes([5]))
        assert [v for _, v in page.items] == [b"\x02", b"\x03", b"\x04"]
        page = await h.query("t", b"a", None, None, reverse=True, limit=3)
        assert [v for _, v in page.items] == [b"\x09", b"\x08", b"\x07"]
        assert page.last_key is not None and split_key(page.last_key) == (b"a", b"\x07")
        page = await h.query("t", b"a", None, None, limit=10)
        assert page.last_key is None

    run(body())


def test_scan_segments_partition_the_bucket() -> None:
    async def body() -> None:
        h = LocalHandle()
        keys = {compose_key(str(i).encode()) for i in range(200)}
        for key in keys:
            await h.write("t", key, b"x")
        seen: list[bytes] = []
        for segment in range(4):
            after = None
            while True:
                page = await h.scan("t", segment, 4, after, 7)
                seen.extend(k for k, _ in page.items)
                if page.last_key is None:
                    break
                after = page.last_key
        assert sorted(seen) == sorted(keys)
        await h.drop_bucket("t")
        assert (await h.scan("t", 0, 1, None, 10)).items == []

    run(body())
