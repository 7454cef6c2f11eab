"""Background upkeep of tables on one node: Time to Live expiry and item counts.

Owns: :class:`Maintenance` — a pass every ``interval`` seconds over the ring partitions whose
log this node leads (each partition is swept by exactly one node, its leader, which reads it
from its own replica), deleting expired items of tables with TTL enabled and counting every
table's items and bytes, and those of each secondary index; :func:`table_counts` and
:func:`index_counts`, the ItemCount/TableSizeBytes and per-index ItemCount/IndexSizeBytes
DescribeTable shows; the ``~stats`` system bucket holding the counts.
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
``~stats`` (one item per table: partition -> [items, bytes, when, {index: [items, bytes]}]);
DescribeTable sums them. DynamoDB refreshes these about every six hours; here they are at most
one pass old. An index's counts are taken from the base items, as the items the index holds (every
key attribute present, of its defined type, not empty) and the size of their projections, so
entries an index read has not yet found stale are not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import orjson

from dynamokv.api.handle import Abort, Decide
from dynamokv.api.layout.items import committed_value, has_intent, stored_wire
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import IndexInfo, TableInfo

log = logging.getLogger("dynamokv.api.maintenance")

STATS_BUCKET = "~stats"
PAGE = 500
PAST_LIMIT_S = 5 * 365 * 24 * 3600  # older expiry times are ignored, as in DynamoDB
DELETES_PER_PARTITION = 5_000  # per pass; the rest waits for the next pass
PACE_STEP_S = 0.05  # between asks to admission control for the next page of a partition
PACE_WAIT_S = 5.0  # the longest a page waits for it


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


class SweepMetrics(Protocol):
    """Where a node publishes its background figures (``runtime.metrics.NodeMetrics``)."""

    def set_background(self, values: dict[str, float],
                       errors: dict[str, str | None] | None = None) -> None: ...


class Maintenance:
    def __init__(self, ctx: ApiContext, interval: float,
                 metrics: SweepMetrics | None = None) -> None:
        self.ctx = ctx
        self.interval = interval
        self.metrics = metrics
        self.task: asyncio.Task[None] | None = None
        self.expired = 0  # items deleted by TTL on this node
        self.paced = 0  # waits for admission control before a page (large tables, busy node)
        self.passes = 0
        self.failed_passes = 0  # passes that raised (each retried by the next pass)
        self.last_error: str | None = None  # the latest failed pass's error, for status pages

    def start(self) -> Maintenance:
        self.task = asyncio.get_running_loop().create_task(self._run())
        self._publish()  # zeros until the first pass: status shows the sweep runs
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
                self.last_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next pass tries again
                self.failed_passes += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("table maintenance pass failed: %s", exc)
            self._publish()

    def _publish(self) -> None:
        """The sweep's figures as ``dynamokv_background{what=...}`` gauges."""
        if self.metrics is not None:
            self.metrics.set_background({
                "table_sweep_passes": self.passes,
                "table_sweep_failed_passes": self.failed_passes,
                "ttl_expired": self.expired,
            }, {"table_sweep": self.last_error})

    async def run_pass(self) -> None:
        """One pass over every table, on the partitions this node leads now."""
        handle = self.ctx.handle
        leading = getattr(handle, "leading_partitions", None)
        if leading is None:
            return
        partitions = leading()
        if not partitions:
            return
        tables = await self.ctx.catalog.all_tables()
        for listed in tables:
            # Through the cache, so the handle learns whether the table has a stream (its
            # TTL deletes are then stream records too).
            info = await self.ctx.catalog.get(listed.name) or listed
            ttl = info.description.get("TimeToLive") or {}
            attribute = ttl.get("AttributeName") if ttl.get("Enabled") else None
            counts: dict[str, list[Any]] = {}
            for partition in partitions:
                tally = _Tally(info)
                await self._sweep(info, partition, attribute, tally)
                counts[str(partition)] = [tally.items, tally.size, round(self.ctx.clock(), 3),
                                          tally.indexes]
            await self._save_counts(info, counts)
        await self._drop_stale_counts({t.table_id for t in tables}, partitions)
        self.passes += 1

    async def _sweep(self, info: TableInfo, partition: int, attribute: str | None,
                     tally: _Tally) -> None:
        """Expire what is due in one partition of one table; count what stays in ``tally``."""
        handle = self.ctx.handle
        q: int = getattr(handle, "q")  # noqa: B009 - ClusterHandle's ring size
        expire = getattr(handle, "expire", handle.cas)
        deleted = 0
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
                tally.add(committed)
            if page.last_key is None:
                return
            after = page.last_key
            await self._paced()

    async def _paced(self) -> None:
        """Before the next page of a partition (a large table): wait for the node's admission
        control (``admit_background`` of ``runtime.handle.ClusterHandle``), which grants
        background batches only while foreground latency is low, as hint replay and
        anti-entropy do. Bounded: after ``PACE_WAIT_S`` the page goes ahead anyway, so a pass
        always finishes."""
        admit = getattr(self.ctx.handle, "admit_background", None)
        waited = 0.0
        while admit is not None and not admit() and waited < PACE_WAIT_S:
            self.paced += 1
            await asyncio.sleep(PACE_STEP_S)
            waited += PACE_STEP_S
        await asyncio.sleep(0)  # let requests in between pages

    async def _drop_stale_counts(self, live: set[str], partitions: list[int]) -> None:
        """Delete the counts of tables that no longer exist (a deleted table's, or one a pass
        wrote while the table was being deleted), in the partitions this node leads."""
        handle = self.ctx.handle
        q: int = getattr(handle, "q")  # noqa: B009 - ClusterHandle's ring size
        for partition in partitions:
            after: bytes | None = None
            while True:
                page = await handle.scan(STATS_BUCKET, partition, q, after, PAGE)
                for key, _ in page.items:
                    if key.decode(errors="replace") not in live:
                        await handle.write(STATS_BUCKET, key, None)
                if page.last_key is None:
                    break
                after = page.last_key

    async def _save_counts(self, info: TableInfo, counts: dict[str, list[Any]]) -> None:
        def decide(current: bytes | None) -> bytes | None:
            merged = orjson.loads(current) if current is not None else {}
            merged.update(counts)
            return orjson.dumps(merged)

        await self.ctx.handle.cas(STATS_BUCKET, info.table_id.encode(), decide)


class _Tally:
    """The items and bytes of one partition of a table, and of each of its indexes."""

    def __init__(self, info: TableInfo) -> None:
        self.items = 0
        self.size = 0
        self.indexes: dict[str, list[int]] = {name: [0, 0] for name in info.indexes}
        # Per index, worked out once: its key attributes with their defined types, and the
        # attributes its projection keeps (None: ALL).
        self._shapes = [(index.name, _key_types(info, index), _projection(info, index))
                        for index in info.indexes.values()]

    def add(self, stored: bytes) -> None:
        self.items += 1
        self.size += len(stored)
        if not self._shapes:
            return
        wire = stored_wire(stored)
        for name, keys, kept in self._shapes:
            if _in_index(keys, wire):
                counted = self.indexes[name]
                counted[0] += 1
                counted[1] += len(stored) if kept is None else len(orjson.dumps(
                    {attr: wire[attr] for attr in kept if attr in wire}))


def _key_types(info: TableInfo, index: IndexInfo) -> tuple[tuple[str, str | None], ...]:
    return tuple((name, info.types.get(name)) for name in index.key_names)


def _projection(info: TableInfo, index: IndexInfo) -> tuple[str, ...] | None:
    """The attributes an index's entries keep (None: the whole item)."""
    if index.projection_type == "ALL":
        return None
    names = dict.fromkeys(info.key_names + index.key_names)
    if index.projection_type == "INCLUDE":
        names.update(dict.fromkeys(index.non_key_attributes))
    return tuple(names)


def _in_index(keys: tuple[tuple[str, str | None], ...], wire: dict[str, Any]) -> bool:
    """Whether an item belongs in an index: every key attribute there, of its defined type,
    and not an empty string or binary (what the index's upkeep and backfill hold)."""
    for name, expected in keys:
        value = wire.get(name)
        if not isinstance(value, dict) or len(value) != 1:
            return False
        ((kind, inner),) = value.items()
        if (expected is not None and kind != expected) or inner in ("", None):
            return False
    return True


async def _stats(ctx: ApiContext, info: TableInfo) -> list[list[Any]]:
    raw = await ctx.handle.read(STATS_BUCKET, info.table_id.encode(), consistent=True)
    return [] if raw is None else list(orjson.loads(raw).values())


async def table_counts(ctx: ApiContext, info: TableInfo) -> dict[str, int]:
    """ItemCount and TableSizeBytes as the last passes counted them (0 before any)."""
    counts = await _stats(ctx, info)
    return {"ItemCount": int(sum(c[0] for c in counts)),
            "TableSizeBytes": int(sum(c[1] for c in counts))}


async def index_counts(ctx: ApiContext, info: TableInfo) -> dict[str, tuple[int, int]]:
    """Each index's (ItemCount, IndexSizeBytes) as the last passes counted them; an index not
    counted yet (none before the first pass, or one created since) is absent."""
    out: dict[str, list[int]] = {}
    for partition in await _stats(ctx, info):
        for name, (items, size) in (partition[3] if len(partition) > 3 else {}).items():
            total = out.setdefault(name, [0, 0])
            total[0] += items
            total[1] += size
    return {name: (items, size) for name, (items, size) in out.items()}
