"""One node's index upkeep state and its in-memory upkeep queue.

Owns: :class:`IndexWork` -- the bounded job queue and its workers, the retraction of stale
entries, marking a table's indexes for repair, and the node's backfill bookkeeping (its lease
owner name, the backfills it runs, its counters) -- the jobs it runs,
``UNKNOWN`` and :func:`durable`.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.transactions.intents`, :mod:`dynamokv.api.indexes.layout`,
:mod:`dynamokv.api.indexes.retry`. What happens after a table is marked for repair (its
backfill, :mod:`dynamokv.api.indexes.backfill`) is handed in as ``resume``.

Handles without an outbox (``LocalHandle``, the reference model) keep the first design: after
a base write succeeds, a job (base key, old item if the operation knew it, new item) goes to
this node's bounded queue and the client is answered; up to ``WORKERS`` tasks drain it, and
when the queue is full the job runs inline. A job writes the new item's entry and *retracts*
the old item's entry when its index key changed (delete, then a linearizable read of the base
item, writing the entry back if the item has that key again). Repairs that reads ask for go
through the same queue on every handle.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from dynamokv.api.attributes import Item
from dynamokv.api.indexes.layout import ACTIVE, entry_key, index_projection
from dynamokv.api.indexes.retry import ATTEMPTS, backoff, retried
from dynamokv.api.layout.items import INTENT_MARK, decode_item, encode_item
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import IndexInfo, TableInfo
from dynamokv.api.transactions.intents import resolve

log = logging.getLogger("dynamokv.api")

QUEUE_LIMIT = 10_000  # jobs waiting per node before writers do their upkeep inline
WORKERS = 8  # tasks draining the queue


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The old item of a write that did not read it (a plain put)."""


@dataclass(slots=True)
class Change:
    """A base write whose index entries are due."""

    table: TableInfo
    key: bytes  # the base item's storage key
    old: Any  # Item | None | UNKNOWN
    new: Item | None


@dataclass(slots=True)
class _Repair:
    """An entry a read found stale."""

    table: TableInfo
    index: IndexInfo
    entry: bytes
    base: bytes


class IndexWork:
    """One node's index upkeep: the bounded job queue, its workers, the backfills it runs."""

    def __init__(self, ctx: ApiContext, resume: Callable[[IndexWork, TableInfo], None]
                 ) -> None:
        self.ctx = ctx
        self.resume = resume  # takes over the backfills a table marked for repair needs
        self.pending: deque[Change | _Repair] = deque()
        self.limit = QUEUE_LIMIT
        self.workers = 0
        self.inline = 0  # jobs running inline right now
        self.repairing: set[tuple[str, bytes]] = set()  # queued repairs (deduplicated)
        self.backfills: set[str] = set()  # index buckets this node is backfilling
        self.marking: set[str] = set()  # tables whose indexes are being marked for repair
        self.owner = ctx.ids().hex  # this node's name in backfill leases
        self.stats: Counter[str] = Counter()

    # ---- the queue ---------------------------------------------------------------------------

    def submit(self, job: Change | _Repair) -> bool:
        """Queue ``job``; False if the queue is full."""
        if len(self.pending) >= self.limit:
            return False
        self.pending.append(job)
        self.stats["queued"] += 1
        if self.workers < WORKERS:
            self.workers += 1
            self.ctx.spawn(self._drain(), "index upkeep")
        return True

    async def _drain(self) -> None:
        try:
            while self.pending:
                await self.run(self.pending.popleft())
        finally:
            self.workers -= 1

    @property
    def busy(self) -> bool:
        return bool(self.pending or self.workers or self.inline)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until no upkeep is queued or running (tests; bounded by ``timeout``)."""
        async with asyncio.timeout(timeout):
            while self.busy:
                await asyncio.sleep(0.002)

    async def run(self, job: Change | _Repair) -> None:
        """Do one job, retrying failures; never raises (the base write succeeded already)."""
        for attempt in range(ATTEMPTS):
            try:
                if isinstance(job, Change):
                    await self._apply(job)
                else:
                    await self.retract(job.table, job.index, job.entry, job.base)
                self.stats["done"] += 1
                break
            except Exception:
                if attempt == ATTEMPTS - 1:
                    self.stats["failed"] += 1
                    log.error("index upkeep of table %s gave up; its indexes are rebuilt",
                              job.table.name, exc_info=True)
                    if isinstance(job, Change):  # a failed retraction leaves a stale entry,
                        self.mark_for_repair(job.table)  # which reads drop: nothing is lost
                    break
                await asyncio.sleep(backoff(attempt))
        if isinstance(job, _Repair):
            self.repairing.discard((job.index.bucket or "", job.entry))

    async def _apply(self, job: Change) -> None:
        table, handle = job.table, self.ctx.handle
        old = job.old if isinstance(job.old, dict) else None
        for index in table.gsis:
            assert index.bucket is not None
            new_key = entry_key(table, index, job.new) if job.new is not None else None
            old_key = entry_key(table, index, old) if old is not None else None
            if new_key is not None:
                assert job.new is not None
                projected = index_projection(table, index, job.new)
                if old_key != new_key or index_projection(table, index, old or {}) != projected:
                    await handle.write(index.bucket, new_key, encode_item(projected))
            if old_key is not None and old_key != new_key:
                await self.retract(table, index, old_key, job.key)

    async def retract(self, table: TableInfo, index: IndexInfo, entry: bytes, base: bytes
                      ) -> None:
        """Delete an entry, then write it back if the base item has its index key after all
        (a linearizable read after the delete: a racing write's entry is never lost)."""
        assert index.bucket is not None
        handle = self.ctx.handle
        await handle.write(index.bucket, entry, None)
        raw = await handle.read(table.bucket, base, consistent=True)
        if raw is not None and raw[:1] == INTENT_MARK:
            raw = await resolve(self.ctx, table.bucket, base, raw, consistent=True)
        item = decode_item(raw) if raw is not None else None
        if item and entry_key(table, index, item) == entry:
            self.stats["restored"] += 1
            await handle.write(index.bucket, entry, encode_item(index_projection(table, index,
                                                                                 item)))

    def mark_for_repair(self, table: TableInfo) -> None:
        """An entry write was given up: the table's global indexes may miss entries. Mark
        them (DescribeTable shows them UPDATING) and rebuild them by a backfill run."""
        if table.name in self.marking:
            return
        self.marking.add(table.name)
        self.ctx.spawn(self._mark(table.name), f"repair of the indexes of table {table.name}")

    async def _mark(self, name: str) -> None:
        def mark(description: dict[str, Any]) -> dict[str, Any]:
            for index in description.get("GlobalSecondaryIndexes") or ():
                if index.get("IndexStatus") == ACTIVE:  # a generation: a run that began
                    index["RepairNeeded"] = int(index.get("RepairNeeded", 0)) + 1  # before
                    # this does not clear it
            return description

        try:
            info = await retried(partial(self.ctx.catalog.update, name, mark))
            self.stats["repairs_marked"] += 1
            self.resume(self, info)
        finally:
            self.marking.discard(name)

    def repair(self, table: TableInfo, index: IndexInfo, entry: bytes, base: bytes) -> None:
        """Retract a stale entry in the background (skipped if the queue is full: the next read
        that meets it asks again)."""
        token = (index.bucket or "", entry)
        if token in self.repairing:
            return
        if self.submit(_Repair(table, index, entry, base)):
            self.repairing.add(token)


def durable(ctx: ApiContext, table: TableInfo) -> bool:
    """Whether the writes of ``table`` are indexed from the log (its handle flags them
    ``INDEXED``), rather than by this node's in-memory queue."""
    indexed = getattr(ctx.handle, "indexed", None)
    return indexed is not None and table.bucket in indexed
