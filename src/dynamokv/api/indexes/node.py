"""One node's index upkeep wired together, and the two calls the item operations make: the
upkeep after a base write and the check of the entries a read returns.

Owns: :func:`work` (the node's :class:`~dynamokv.api.indexes.upkeep.IndexWork`, made on first
use), :func:`start_drain`, :func:`maintain`, :func:`maintain_many`, :func:`verify` and
``VERIFY_BATCH``.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.transactions.intents`, and every other module of
:mod:`dynamokv.api.indexes` (this is the one that hands them to one another).

Reads verify. Every entry a Query or Scan of a global index returns is checked against the
base item (an eventually consistent read of the base key, held items resolved as other reads
do): the entry is answered only if the base item still has the entry's index key, and its
attributes come from that base item (so they are never older than the base read). A mismatch
is dropped from the answer and retracted in the background. An index read is therefore never
"more stale" than an eventually consistent read of the base table, at the cost of one base
read per returned entry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from typing import Any

from dynamokv.api.attributes import Item
from dynamokv.api.indexes.backfill import resume_backfills
from dynamokv.api.indexes.drain import OutboxDrain
from dynamokv.api.indexes.layout import base_key_of, entry_key
from dynamokv.api.indexes.upkeep import Change, IndexWork, durable
from dynamokv.api.layout.items import INTENT_MARK, decode_item
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import IndexInfo, TableInfo
from dynamokv.api.transactions.intents import resolve

VERIFY_BATCH = 32  # base reads in flight while checking the entries of one page


def work(ctx: ApiContext) -> IndexWork:
    """The node's :class:`IndexWork` (made on first use, which also starts draining the
    node's index outbox when its handle has one)."""
    found = ctx.index_work
    if found is None:
        found = ctx.index_work = IndexWork(ctx, partial(resume_backfills, ctx))
        start_drain(ctx)
    assert isinstance(found, IndexWork)
    return found


def start_drain(ctx: ApiContext) -> OutboxDrain | None:
    """Start draining the index outbox of the partitions this node leads, once per handle
    (a handle without an outbox, such as ``LocalHandle``, needs none)."""
    handle = ctx.handle
    if getattr(handle, "outbox_poll", None) is None:
        return None
    found = getattr(handle, "index_drain", None)
    if isinstance(found, OutboxDrain) and not found.stopped:
        return found
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None  # started on first use inside the loop
    drain = OutboxDrain(ctx, lambda table: work(ctx).mark_for_repair(table))
    setattr(handle, "index_drain", drain)  # noqa: B010 - any NodeHandle with an outbox
    drain.start()
    return drain


async def maintain(ctx: ApiContext, table: TableInfo, key: bytes, old: Any, new: Item | None
                   ) -> None:
    """Bring ``table``'s global indexes up to date with a successful write of the item at
    ``key`` from ``old`` (``UNKNOWN`` if the write did not read it) to ``new`` (``None``:
    deleted). Nothing to do when the write went through a partition log with the ``INDEXED``
    flag (the outbox drain does it); otherwise queued, inline if the queue is full."""
    if not table.gsis or (new is None and not isinstance(old, dict)):
        return
    if durable(ctx, table):
        work(ctx)  # make sure this node drains its outbox
        return
    job = Change(table, key, old, new)
    upkeep = work(ctx)
    if not upkeep.submit(job):
        upkeep.stats["inline"] += 1
        upkeep.inline += 1
        try:
            await upkeep.run(job)
        finally:
            upkeep.inline -= 1


async def maintain_many(ctx: ApiContext, changes: Iterable[tuple[TableInfo, bytes, Any,
                                                                    Item | None]]) -> None:
    for table, key, old, new in changes:
        await maintain(ctx, table, key, old, new)


async def _base_item(ctx: ApiContext, table: TableInfo, key: bytes) -> Item | None:
    raw = await ctx.handle.read(table.bucket, key, consistent=False)
    if raw is not None and raw[:1] == INTENT_MARK:
        raw = await resolve(ctx, table.bucket, key, raw, consistent=False)
    return decode_item(raw) if raw is not None else None


async def verify(ctx: ApiContext, table: TableInfo, index: IndexInfo,
                 entries: list[tuple[bytes, bytes]]) -> list[Item | None]:
    """The base item of every entry that still matches it (else ``None``; the entry is then
    retracted in the background), read concurrently."""
    bases = [base_key_of(index, key) for key, _ in entries]
    items = await asyncio.gather(*(_base_item(ctx, table, base) for base in bases))
    out: list[Item | None] = []
    for (key, _), base, item in zip(entries, bases, items, strict=True):
        if item and entry_key(table, index, item) == key:
            out.append(item)
            continue
        out.append(None)
        upkeep = work(ctx)
        upkeep.stats["stale"] += 1
        upkeep.repair(table, index, key, base)
    return out
