"""Background upkeep of tables on one node: Time to Live expiry and item counts.

Owns: :class:`Maintenance` — a pass every ``interval`` seconds over the ring partitions whose
log this node leads (each partition is swept by exactly one node, its leader, which reads it
from its own replica), deleting expired items of tables with TTL enabled and counting every
table's items and bytes; :func:`table_counts`, the ItemCount/TableSizeBytes DescribeTable
shows; the ``~stats`` system bucket holding the counts.
May import: stdlib, ``orjson``, :mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.handle`,
:mod:`dynamokv.api.layout.items`, :mod:`dynamokv.api.operations.common`.

Expiry goes through the normal write path (the partition's log) as a conditional delete that
re-checks the item is still expired on its latest value, so an update racing the sweep (one
that moves the expiry time, or removes the attribute) is never lost. It is written as a
service delete (``ClusterHandle.expire``), which its stream record shows as
``userIdentity`` ``{"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}``. As in
DynamoDB, an expiry time (epoch seconds, type N) more than five years in the past is ignored,
and items may stay readable for a while after they expire (up to one pass here).

Counts are exact for each partition at the moment its leader scanned it and are kept in
``~stats`` (one item per table: partition -> [items, bytes, when]); DescribeTable sums them.
DynamoDB refreshes these about every six hours; here they are at most one pass old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from dynamokv.api.handle import Abort, Decide
from dynamokv.api.layout.items import committed_value, has_intent, stored_wire
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import TableInfo

log = logging.getLogger("dynamokv.api.maintenance")

STATS_BUCKET = "~stats"
PAGE = 500
PAST_LIMIT_S = 5 * 365 * 24 * 3600  # older expiry times are ignored, as in DynamoDB
DELETES_PER_PARTITION = 5_000  # per pass; the rest waits for the next pass


def expiry_of(wire: dict[str, Any], attribute: str) -> float | None:
    """The expiry time of an item (its TTL attribute, a number of epoch seconds)."""
    value = wire.get(attribute)
    if not isinstance(value, dict) or "N" not in value:
        return None
    try:
        return float(Decimal(value["N"]))
    except (InvalidOperation, ValueError, TypeError):
        return None


def is_expired(wire: dict[str, Any], attribute: str, now: float) -> bool:
    at = expiry_of(wire, attribute)
    return at is not None and now - PAST_LIMIT_S <= at <= now


def _still_expired(attribute: str, now: float) -> Decide:
    def decide(current: bytes | None) -> bytes | None:
        if current is None or has_intent(current):
            raise Abort()  # gone already, or a transaction holds it: leave it to them
        if not is_expired(stored_wire(current), attribute, now):
            raise Abort()  # updated since we looked: no longer expired
        return None

    return decide


class Maintenance:
    def __init__(self, ctx: ApiContext, interval: float) -> None:
        self.ctx = ctx
        self.interval = interval
        self.task: asyncio.Task[None] | None = None
        self.expired = 0  # items deleted by TTL on this node
        self.passes = 0

    def start(self) -> Maintenance:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            self.task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next pass tries again
                log.warning("table maintenance pass failed: %s", exc)

    async def run_pass(self) -> None:
        """One pass over every table, on the partitions this node leads now."""
        handle = self.ctx.handle
        leading = getattr(handle, "leading_partitions", None)
        if leading is None:
            return
        partitions = leading()
        if not partitions:
            return
        for listed in await self.ctx.catalog.all_tables():
            # Through the cache, so the handle learns whether the table has a stream (its
            # TTL deletes are then stream records too).
            info = await self.ctx.catalog.get(listed.name) or listed
            ttl = info.description.get("TimeToLive") or {}
            attribute = ttl.get("AttributeName") if ttl.get("Enabled") else None
            counts: dict[str, list[float]] = {}
            for partition in partitions:
                items, size = await self._sweep(info, partition, attribute)
                counts[str(partition)] = [items, size, round(self.ctx.clock(), 3)]
            await self._save_counts(info, counts)
        self.passes += 1

    async def _sweep(self, info: TableInfo, partition: int, attribute: str | None
                     ) -> tuple[int, int]:
        """Expire what is due in one partition of one table; its items and bytes."""
        handle = self.ctx.handle
        q: int = getattr(handle, "q")  # noqa: B009 - ClusterHandle's ring size
        expire = getattr(handle, "expire", handle.cas)
        items = size = deleted = 0
        after: bytes | None = None
        while True:
            page = await handle.scan(info.bucket, partition, q, after, PAGE)
            now = self.ctx.clock()
            for key, value in page.items:
                committed = committed_value(value)
                if committed is None:
                    continue
                if (attribute is not None and deleted < DELETES_PER_PARTITION
                        and not has_intent(value)
                        and is_expired(stored_wire(committed), attribute, now)):
                    try:
                        await expire(info.bucket, key, _still_expired(attribute, now))
                        deleted += 1
                        self.expired += 1
                        continue
                    except Abort:
                        pass
                items += 1
                size += len(committed)
            if page.last_key is None:
                return items, size
            after = page.last_key
            await asyncio.sleep(0)  # pace: let requests in between pages

    async def _save_counts(self, info: TableInfo, counts: dict[str, list[float]]) -> None:
        def decide(current: bytes | None) -> bytes | None:
            merged = orjson.loads(current) if current is not None else {}
            merged.update(counts)
            return orjson.dumps(merged)

        await self.ctx.handle.cas(STATS_BUCKET, info.table_id.encode(), decide)


async def table_counts(ctx: ApiContext, info: TableInfo) -> dict[str, int]:
    """ItemCount and TableSizeBytes as the last passes counted them (0 before any)."""
    raw = await ctx.handle.read(STATS_BUCKET, info.table_id.encode(), consistent=True)
    if raw is None:
        return {"ItemCount": 0, "TableSizeBytes": 0}
    counts = orjson.loads(raw)
    return {"ItemCount": int(sum(c[0] for c in counts.values())),
            "TableSizeBytes": int(sum(c[1] for c in counts.values()))}
