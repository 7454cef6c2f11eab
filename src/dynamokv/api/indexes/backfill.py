"""The backfill of a global secondary index created by UpdateTable (or marked for repair):
every base item's entry written, then the index made ACTIVE, under a lease in the catalog.

Owns: :func:`start_backfill`, :func:`resume_backfills`, :func:`lease_fields`, the lease and
its runs, and their constants.
May import: stdlib, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.transactions.intents`, :mod:`dynamokv.api.indexes.layout`,
:mod:`dynamokv.api.indexes.retry`, :mod:`dynamokv.api.indexes.upkeep` (the node's
:class:`IndexWork`, which callers hand in: ``node.work(ctx)``).

Backfill. An index created by UpdateTable is CREATING: it is maintained by writes but not
readable. The node that created it waits until every node's catalog cache knows the index (the
catalog TTL, plus a margin), then scans the base table and writes every item's entry, then marks
the index ACTIVE. It holds a lease in the catalog (renewed while it works); if it dies, the
next DescribeTable or read of the index through any node takes the lease over and starts again.

"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from dynamokv.api.errors import DynamoDBError
from dynamokv.api.indexes.layout import ACTIVE, CREATING, entry_key, index_projection
from dynamokv.api.indexes.retry import retried
from dynamokv.api.indexes.upkeep import IndexWork
from dynamokv.api.layout.items import INTENT_MARK, decode_item, encode_item
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import TableInfo, gsi_bucket
from dynamokv.api.transactions.intents import resolve

log = logging.getLogger("dynamokv.api")

LEASE = 30.0  # seconds a backfill lease lasts
RENEW = 10.0  # seconds between two renewals of it
BACKFILL_CHUNK = 500  # base items per scan page of a backfill
BACKFILL_CONCURRENCY = 16  # entry writes in flight during a backfill
SETTLE = 0.5  # extra seconds a backfill waits, beyond the catalog TTL, before it scans
BACKFILL_RUNS = 5  # failed backfill runs (cluster-wide, stored with the index) before giving up
BACKFILL_RETRY = 5.0  # seconds between a failed run and the next


class _LeaseLost(DynamoDBError):
    """The index is gone, ACTIVE already, or another node holds its backfill lease."""

    error_type = "ValidationException"


def _stored_index(description: dict[str, Any], bucket: str) -> dict[str, Any]:
    for index in description.get("GlobalSecondaryIndexes") or ():
        if gsi_bucket(description["TableId"], index) == bucket:
            assert isinstance(index, dict)
            return index
    raise _LeaseLost("index gone")


async def _edit(ctx: ApiContext, table: str, bucket: str,
                change: Callable[[dict[str, Any]], None]) -> bool:
    """Apply ``change`` to the stored index (a catalog compare-and-set); False if it refused."""

    def edit(description: dict[str, Any]) -> dict[str, Any]:
        index = _stored_index(description, bucket)
        change(index)
        return description

    try:
        await ctx.catalog.update(table, edit)
    except DynamoDBError:
        return False
    return True


def _building(index: Mapping[str, Any]) -> bool:
    """Whether a stored index is being built: CREATING, or marked for repair (rebuilt in
    place while it stays readable)."""
    return index.get("IndexStatus", CREATING) == CREATING or bool(index.get("RepairNeeded"))


def lease_fields(ctx: ApiContext, owner: str) -> dict[str, Any]:
    """The lease members of a stored index whose backfill this node (``owner``, its
    :attr:`IndexWork.owner`) starts now."""
    # The backfill first waits out the catalog TTL without renewing: the lease outlasts that.
    length = max(LEASE, 3 * ctx.catalog.ttl + RENEW)
    return {"BackfillLease": round(ctx.clock() + length, 3), "BackfillOwner": owner}


def resume_backfills(ctx: ApiContext, upkeep: IndexWork, info: TableInfo) -> None:
    """Take over the backfill of every CREATING index of ``info`` (or one marked for repair)
    whose lease has run out (its node died, or the index predates stored indexes)."""
    now = ctx.clock()
    for index in info.gsis:
        if not (index.status == CREATING or index.repair) or index.bucket in upkeep.backfills:
            continue
        if (index.lease is not None and index.lease > now) or index.failures >= BACKFILL_RUNS:
            continue
        assert index.bucket is not None
        upkeep.backfills.add(index.bucket)  # claimed below; released if the claim fails
        ctx.spawn(_claim(ctx, upkeep, info.name, index.name, index.bucket),
                  f"backfill of index {index.name}")


async def _claim(ctx: ApiContext, upkeep: IndexWork, table: str, name: str, bucket: str
                 ) -> None:
    try:
        await _backfill_runs(ctx, upkeep, table, name, bucket, claimed=False)
    finally:
        upkeep.backfills.discard(bucket)


def _claimer(ctx: ApiContext, owner: str, seen: list[int]
             ) -> Callable[[dict[str, Any]], None]:
    """A catalog edit taking a CREATING index's backfill lease: refused while another node's
    lease runs, and once the index's failed runs reached ``BACKFILL_RUNS``. Appends to ``seen``
    the repair generation it found."""

    def claim(index: dict[str, Any]) -> None:
        seen[:] = [int(index.get("RepairNeeded", 0))]
        lease = index.get("BackfillLease")
        if not _building(index) or (
            lease is not None and lease > ctx.clock() and index.get("BackfillOwner") != owner
        ) or index.get("BackfillFailures", 0) >= BACKFILL_RUNS:
            raise _LeaseLost("not ours")
        index.setdefault("IndexStatus", CREATING)
        index.update(lease_fields(ctx, owner))

    return claim


async def _backfill_runs(ctx: ApiContext, upkeep: IndexWork, table: str, name: str, bucket: str,
                         *, claimed: bool) -> None:
    """Backfill runs until one finishes, the lease is lost, or ``BACKFILL_RUNS`` failed (each
    failure is counted in the stored index, with its error, which DescribeTable shows)."""
    while True:
        seen = [0]  # the repair generation this run covers (0: a new index)
        if not claimed and not await _edit(ctx, table, bucket,
                                           _claimer(ctx, upkeep.owner, seen)):
            return
        claimed = False
        try:
            if await _backfill_run(ctx, upkeep, table, name, bucket, seen[0]):
                return
            continue  # another repair was asked for while this one ran: run again
        except Exception as exc:
            upkeep.stats["backfill_failed"] += 1
            failures = await _record_failure(ctx, upkeep, table, bucket, exc)
            log.warning("backfill of index %s of table %s failed (run %s of %s): %s", name,
                        table, failures, BACKFILL_RUNS, exc, exc_info=True)
            if failures is None or failures >= BACKFILL_RUNS:
                return
        await asyncio.sleep(BACKFILL_RETRY)


async def _record_failure(ctx: ApiContext, upkeep: IndexWork, table: str, bucket: str,
                          exc: Exception) -> int | None:
    """Count a failed run in the stored index (None: the index is no longer ours)."""
    counted: list[int] = []

    def failed(index: dict[str, Any]) -> None:
        if not _building(index) or index.get("BackfillOwner") != upkeep.owner:
            raise _LeaseLost("not ours")
        counted.append(index.get("BackfillFailures", 0) + 1)
        index["BackfillFailures"] = counted[0]
        index["BackfillError"] = f"{type(exc).__name__}: {exc}"[:500]

    if not await _edit(ctx, table, bucket, failed):
        return None
    return counted[0]


def start_backfill(ctx: ApiContext, upkeep: IndexWork, table: str, name: str, bucket: str
                   ) -> None:
    """Backfill an index whose lease this node has just taken (UpdateTable's Create)."""
    if bucket in upkeep.backfills:
        return
    upkeep.backfills.add(bucket)
    ctx.spawn(_backfill(ctx, upkeep, table, name, bucket), f"backfill of index {name}")


async def _backfill(ctx: ApiContext, upkeep: IndexWork, table_name: str, name: str,
                    bucket: str) -> None:
    try:
        await _backfill_runs(ctx, upkeep, table_name, name, bucket, claimed=True)
    finally:
        upkeep.backfills.discard(bucket)


async def _backfill_run(ctx: ApiContext, upkeep: IndexWork, table_name: str, name: str,
                        bucket: str, generation: int = 0) -> bool:
    """One run: write every base item's entry, then mark the index ACTIVE. False when a
    repair was asked for after the run began (upkeep given up meanwhile): run again."""
    owner = upkeep.owner
    again: list[bool] = []

    def ours(index: dict[str, Any]) -> None:
        if not _building(index) or index.get("BackfillOwner") != owner:
            raise _LeaseLost("not ours")

    def renew(index: dict[str, Any]) -> None:
        ours(index)
        index.update(lease_fields(ctx, owner))

    def done(index: dict[str, Any]) -> None:
        ours(index)
        if int(index.get("RepairNeeded", 0)) != generation:
            again.append(True)
            for member in ("BackfillLease", "BackfillOwner"):
                index.pop(member, None)
            return
        index["IndexStatus"] = ACTIVE
        for member in ("BackfillLease", "BackfillOwner", "BackfillFailures", "BackfillError",
                       "RepairNeeded"):
            index.pop(member, None)

    # Until every node's cached description lists the index, writes through other nodes do not
    # maintain it; what they wrote before is what the scan below finds.
    renewed = ctx.clock()
    await asyncio.sleep(ctx.catalog.ttl + SETTLE)
    info = await ctx.catalog.get(table_name)
    index = info.indexes.get(name) if info is not None else None
    if info is None or index is None or index.bucket != bucket:
        return True  # the index (or its table) is gone
    handle = ctx.handle
    semaphore = asyncio.Semaphore(BACKFILL_CONCURRENCY)

    async def put(key: bytes, raw: bytes) -> None:
        async with semaphore:
            if raw[:1] == INTENT_MARK:
                value = await resolve(ctx, info.bucket, key, raw, consistent=False)
                if value is None:
                    return
                raw = value
            item = decode_item(raw)
            entry = entry_key(info, index, item)
            if entry is not None:  # None: not indexed (no key, wrong type, empty, oversized)
                await retried(partial(handle.write, bucket, entry,
                                       encode_item(index_projection(info, index, item))))

    after: bytes | None = None
    while True:
        if ctx.clock() - renewed >= RENEW:
            if not await _edit(ctx, table_name, bucket, renew):
                return True  # the lease is lost: its new holder goes on
            renewed = ctx.clock()
        page = await retried(partial(handle.scan, info.bucket, 0, 1, after, BACKFILL_CHUNK))
        await asyncio.gather(*(put(key, raw) for key, raw in page.items))
        upkeep.stats["backfilled"] += len(page.items)
        if page.last_key is None or not page.items:
            break
        after = page.last_key
    if await _edit(ctx, table_name, bucket, done) and not again:
        log.info("index %s of table %s is ACTIVE", name, table_name)
    return not again
