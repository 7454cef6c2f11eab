"""A single-process, single-copy ``NodeHandle``: the reference model of the cluster.

Owns: ``LocalHandle``, a correct in-memory implementation of :class:`dynamokv.api.handle.
NodeHandle` (one sorted map per bucket; ``cas`` under an ``asyncio.Lock``), used by the API
layer's unit tests and by anyone embedding the DynamoDB API without a cluster.
May import: stdlib, :mod:`dynamokv.api.handle`, :mod:`dynamokv.core.hashing`,
:mod:`dynamokv.errors`.

It refuses what a node refuses (a bucket name over ``MAX_BUCKET_BYTES``, a key over
``MAX_KEY_BYTES``, with the node's error types), so API tests on it meet the same limits.

Everything is linearizable here (there is one copy), so ``consistent`` is accepted and ignored.
Scan segments are contiguous slices of the ring (by each key's ring position), the same split a
cluster uses, so Segment/TotalSegments behave alike; within a segment items come in storage-key
order, which is what ``after`` refers to.
"""

from __future__ import annotations

import asyncio
import bisect

from dynamokv.api.handle import (
    MAX_BUCKET_BYTES,
    MAX_KEY_BYTES,
    Decide,
    Page,
    WriteRefused,
    compose_key,
)
from dynamokv.core.hashing import RING_SIZE, key_position
from dynamokv.errors import InvalidRequest, KeyTooLarge


def _check(bucket: str, key: bytes | None = None) -> None:
    """The node's checks of a bucket name and key (``core.coordinator``)."""
    if not bucket or len(bucket.encode()) > MAX_BUCKET_BYTES:
        raise InvalidRequest(f"bucket name must be 1 to {MAX_BUCKET_BYTES} bytes",
                             {"bucket_bytes": len(bucket.encode())})
    if key is not None and len(key) > MAX_KEY_BYTES:
        raise KeyTooLarge(f"key is {len(key)} bytes; the limit is {MAX_KEY_BYTES}",
                          {"key_bytes": len(key), "limit": MAX_KEY_BYTES})


class _Bucket:
    """A sorted map: a dict for lookups plus a sorted key list for ranges."""

    __slots__ = ("data", "keys")

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.keys: list[bytes] = []

    def put(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            if self.data.pop(key, None) is not None:
                del self.keys[bisect.bisect_left(self.keys, key)]
            return
        if key not in self.data:
            bisect.insort(self.keys, key)
        self.data[key] = value


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class LocalHandle:
    """An in-memory ``NodeHandle``. ``yield_points`` adds a scheduling point inside every
    operation so tests can interleave concurrent requests the way a real network would."""

    def __init__(self, *, yield_points: bool = False) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._lock = asyncio.Lock()
        self._yield = yield_points
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def _pause(self) -> None:
        if self._yield:
            await asyncio.sleep(0)

    def _bucket(self, bucket: str) -> _Bucket:
        found = self._buckets.get(bucket)
        if found is None:
            found = self._buckets[bucket] = _Bucket()
        return found

    async def read(self, bucket: str, key: bytes, *, consistent: bool = False) -> bytes | None:
        self._count("read")
        _check(bucket, key)
        await self._pause()
        found = self._buckets.get(bucket)
        return None if found is None else found.data.get(key)

    async def write(self, bucket: str, key: bytes, value: bytes | None, *,
                    refuse_prefix: bytes = b"") -> None:
        self._count("write")
        _check(bucket, key)
        await self._pause()
        target = self._bucket(bucket)
        current = target.data.get(key)
        if refuse_prefix and current is not None and current.startswith(refuse_prefix):
            raise WriteRefused(current)
        target.put(key, value)

    async def cas(
        self, bucket: str, key: bytes, decide: Decide
    ) -> tuple[bytes | None, bytes | None]:
        self._count("cas")
        _check(bucket, key)
        async with self._lock:
            await self._pause()
            target = self._bucket(bucket)
            old = target.data.get(key)
            new = decide(old)  # Abort propagates: nothing changes
            target.put(key, new)
            return old, new

    async def query(
        self,
        bucket: str,
        hash_part: bytes,
        start: bytes | None,
        end: bytes | None,
        *,
        reverse: bool = False,
        limit: int = 1000,
        consistent: bool = False,
    ) -> Page:
        self._count("query")
        _check(bucket)
        await self._pause()
        found = self._buckets.get(bucket)
        if found is None or limit <= 0:
            return Page([], None)
        prefix = compose_key(hash_part)
        low = compose_key(hash_part, start or b"")
        high = compose_key(hash_part, end) if end is not None else _prefix_end(prefix)
        keys = found.keys
        lo = bisect.bisect_left(keys, low)
        hi = len(keys) if high is None else bisect.bisect_left(keys, high)
        selected = keys[lo:hi]
        if reverse:
            selected.reverse()
        chunk = selected[:limit]
        items = [(k, found.data[k]) for k in chunk]
        more = len(selected) > limit
        return Page(items, chunk[-1] if more else None)

    async def scan(
        self, bucket: str, segment: int, total_segments: int, after: bytes | None, limit: int,
        *, consistent: bool = False,
    ) -> Page:
        self._count("scan")
        _check(bucket)
        await self._pause()
        found = self._buckets.get(bucket)
        if found is None or limit <= 0:
            return Page([], None)
        keys = found.keys
        index = 0 if after is None else bisect.bisect_right(keys, after)
        items: list[tuple[bytes, bytes]] = []
        while index < len(keys):
            key = keys[index]
            index += 1
            if key_position(bucket, key) * total_segments // RING_SIZE != segment:
                continue
            if len(items) == limit:
                # One more item of this segment exists: the caller must come back.
                return Page(items, items[-1][0])
            items.append((key, found.data[key]))
        return Page(items, None)

    def segment_of(self, bucket: str, key: bytes, total_segments: int) -> int:
        """The scan segment ``key`` falls in (the split :meth:`scan` uses)."""
        return key_position(bucket, key) * total_segments // RING_SIZE

    async def drop_bucket(self, bucket: str) -> None:
        self._count("drop_bucket")
        await self._pause()
        self._buckets.pop(bucket, None)

    def bucket_size(self, bucket: str) -> int:
        """Items stored in ``bucket`` (a test helper)."""
        found = self._buckets.get(bucket)
        return 0 if found is None else len(found.data)
