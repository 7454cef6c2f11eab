"""The log-driven upkeep of global secondary indexes: one node drains the index outbox of the
partitions it leads.

Owns: :class:`OutboxDrain` and :func:`reconcile` (an item's entries made to match the item),
with their pacing constants.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.transactions.intents`, :mod:`dynamokv.api.indexes.layout`,
:mod:`dynamokv.api.indexes.retry`. Marking tables for repair
(:meth:`dynamokv.api.indexes.upkeep.IndexWork.mark_for_repair`) is handed in; the drain is
started by :func:`dynamokv.api.indexes.node.start_drain`.

Upkeep is asynchronous, as DynamoDB's, and built on the partitions' replicated logs
(``docs/replicated-logs.md``). Every write of a table that has global indexes carries the
``INDEXED`` flag (``RequestHandle.note_indexes``, told by the catalog), so every replica of the
item's partition keeps an outbox record of it (``core.replog.outbox``: log index, key, old and
new image) as it applies the entry -- durable before the write is acknowledged, so a crash of
any node loses none. :class:`OutboxDrain`, one per node, polls the records of the partitions the
node leads and brings their items' entries up to date (:func:`reconcile`), a partition's
records in log order, up to ``DRAIN_CONCURRENCY`` items at once; then it asks for the
partition's ``INDEXED_THROUGH`` mark (batched: every ``MARK_RECORDS`` records or ``MARK_DELAY``
seconds), and every replica trims its records as it applies the mark. A new leader starts from
the mark: an old leader's unfinished batch is simply done again.

:func:`reconcile` is state-based, so doing it twice, late, or on two nodes at once (a deposed
leader still finishing its batch) is safe: it reads the item linearizably (resolving a
transaction's intent as reads do), deletes every entry an image of the records names that the
item no longer has, writes the item's live entry, then reads the item again and goes round once
more if it changed meanwhile. The last write to an entry is thus always followed by a check of
the item made after it, by the node that wrote it; a late write can leave a stale entry (which
reads drop: :func:`dynamokv.api.indexes.node.verify`), never lose a live one. Failures are
retried (``ATTEMPTS`` per item, then the batch after a pause growing to ``DRAIN_BACKOFF_MAX``),
counted (``OutboxDrain.stats``, shown by ``dynamokv status`` as ``index_upkeep``), and never
skipped: after ``DRAIN_GIVE_UP`` failed batches in a row the tables concerned are marked for
repair and rebuilt by a backfill run, which DescribeTable shows. A partition whose outbox falls
more than ``core.replog.outbox.BACKLOG_MAX`` entries behind refuses new writes of indexed
tables with a retryable ThrottlingException until it catches up (bounded disk and log, not
unbounded lag).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from dynamokv.api.attributes import Item
from dynamokv.api.indexes.layout import entry_key, index_projection
from dynamokv.api.indexes.retry import backoff, monotonic, retried
from dynamokv.api.layout.items import INTENT_MARK, committed_value, decode_item, encode_item
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import IndexInfo, TableInfo
from dynamokv.api.transactions.intents import resolve

log = logging.getLogger("dynamokv.api")

POLL_MIN = 0.01  # seconds between two polls of an outbox that had records
POLL_MAX = 0.2  # ... growing to this while it has none
POLL_RECORDS = 1_000  # records asked for per poll
DRAIN_CONCURRENCY = 16  # items reconciled at once
MARK_RECORDS = 256  # records indexed before the partition's mark is asked for ...
MARK_DELAY = 0.5  # ... or seconds since the first of them
DRAIN_BACKOFF_MAX = 10.0  # seconds, at most, before a failed batch is tried again
DRAIN_GIVE_UP = 8  # failed batches in a row before their tables' indexes are rebuilt instead
RECONCILE_ROUNDS = 4  # rounds of one item's entries while it keeps changing


class OutboxDrain:
    """The log-driven upkeep of one node: brings the indexes up to date with the outbox
    records of the partitions it leads, a partition's records in log order, and asks for the
    partition's indexed-through mark when a batch is done (see the module docstring)."""

    def __init__(self, ctx: ApiContext, mark_for_repair: Callable[[TableInfo], None]) -> None:
        self.ctx = ctx
        self.mark_for_repair = mark_for_repair  # for records that kept failing
        self.stats: Counter[str] = Counter()
        self.stopped = False
        self.task: asyncio.Task[None] | None = None
        self._after: dict[int, tuple[int, int]] = {}  # partition -> (term, done through)
        self._failures: dict[int, int] = {}  # partition -> failed batches in a row
        self._retry_at: dict[int, float] = {}  # partition -> when its batch is tried again
        self._tables: dict[str, str] = {}  # table bucket -> table name
        self._missing: dict[str, float] = {}  # bucket of no table -> when to look again
        # partition -> (term, done through, records since the last mark, since when)
        self._unmarked: dict[int, tuple[int, int, int, float]] = {}
        self.pending = 0  # records handed out and not yet done

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.ctx.background.add(self.task)  # type: ignore[arg-type]
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self.ctx.background.discard(task)  # type: ignore[arg-type]
        self.stopped = True

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def _run(self) -> None:
        delay = POLL_MIN
        while True:
            try:
                busy = await self.once()
                await self._marks()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the node is down or busy: counted, tried again
                self.stats["poll_failed"] += 1
                log.debug("polling the index outbox failed; retrying: %r", exc)
                busy = False
            delay = POLL_MIN if busy else min(delay * 2, POLL_MAX)
            await asyncio.sleep(0 if busy else delay)

    async def once(self) -> bool:
        """One poll and the batches it brought; whether there was anything to do."""
        handle: Any = self.ctx.handle
        after = tuple((p, term, done) for p, (term, done) in sorted(self._after.items()))
        batch = await handle.outbox_poll(after, POLL_RECORDS)
        now = monotonic()
        parts = [part for part in batch.parts if self._retry_at.get(part.partition, 0) <= now]
        if not parts:
            return False
        self.pending = sum(len(part.records) for part in parts)
        try:
            await asyncio.gather(*(self._part(part) for part in parts))
        finally:
            self.pending = 0
        return True

    async def _part(self, part: Any) -> None:
        """Index one partition's records, then ask for its mark; a failure leaves them in
        the outbox, tried again after a growing pause."""
        try:
            await self._records(part.records)
        except Exception as exc:
            failures = self._failures[part.partition] = self._failures.get(part.partition,
                                                                           0) + 1
            self.stats["batch_failed"] += 1
            pause = min(backoff(failures), DRAIN_BACKOFF_MAX)
            self._retry_at[part.partition] = monotonic() + pause
            log.warning("index upkeep of partition %s failed (%s in a row), retrying in %.1f s:"
                        " %s", part.partition, failures, pause, exc)
            if failures < DRAIN_GIVE_UP:
                return
            await self._give_up(part.records)
        self._failures.pop(part.partition, None)
        self._retry_at.pop(part.partition, None)
        self.stats["records_done"] += len(part.records)
        self._after[part.partition] = (part.term, part.through)
        term, _, count, since = self._unmarked.get(part.partition,
                                                   (part.term, 0, 0, monotonic()))
        if term != part.term:
            count, since = 0, monotonic()
        self._unmarked[part.partition] = (part.term, part.through, count + len(part.records),
                                          since)

    async def _marks(self, *, all_due: bool = False) -> None:
        """Ask for the marks that are due: ``MARK_RECORDS`` records done since the last one,
        or ``MARK_DELAY`` seconds (one log entry per batch, not per write)."""
        now = monotonic()
        for partition, (term, through, count, since) in sorted(self._unmarked.items()):
            if not (all_due or count >= MARK_RECORDS or now - since >= MARK_DELAY):
                continue
            del self._unmarked[partition]
            if await self.ctx.handle.outbox_done(  # type: ignore[attr-defined]
                    partition, term, through):
                self.stats["marks"] += 1
            elif self._after.get(partition, (-1, 0))[0] == term:
                del self._after[partition]  # no longer the leader: its successor redoes them

    async def _give_up(self, records: Iterable[Any]) -> None:
        """Records that kept failing: their tables' indexes are rebuilt by a backfill
        (counted, logged, and shown by DescribeTable), so the outbox can move on."""
        self.stats["given_up"] += 1
        for bucket in {record.bucket for record in records}:
            table = await self._table(bucket)
            if table is not None:
                self.mark_for_repair(table)
        log.error("index upkeep kept failing; the indexes of the tables concerned are rebuilt")

    async def _records(self, records: Iterable[Any]) -> None:
        by_item: dict[tuple[str, bytes], list[bytes | None]] = {}
        for record in records:
            by_item.setdefault((record.bucket, record.key), []).extend((record.old, record.new))
        semaphore = asyncio.Semaphore(DRAIN_CONCURRENCY)

        async def one(bucket: str, key: bytes, images: list[bytes | None]) -> None:
            async with semaphore:
                table = await self._table(bucket)
                if table is not None and table.gsis:
                    await retried(partial(reconcile, self.ctx, table, key, images))
                    self.stats["items_reconciled"] += 1

        await asyncio.gather(*(one(b, k, images) for (b, k), images in by_item.items()))

    async def _table(self, bucket: str) -> TableInfo | None:
        """The table whose bucket ``bucket`` is (None: it was deleted)."""
        name = self._tables.get(bucket)
        if name is None:
            if monotonic() < self._missing.get(bucket, 0.0):
                return None  # looked for lately: a deleted table's records
            for listed in await self.ctx.catalog.all_tables():
                self._tables[listed.bucket] = listed.name
            name = self._tables.get(bucket)
            if name is None:
                self._missing[bucket] = monotonic() + self.ctx.catalog.ttl
                return None
        info = await self.ctx.catalog.get(name)
        if info is None or info.bucket != bucket:
            self._tables.pop(bucket, None)
            return None
        return info

    def status(self) -> dict[str, int]:
        return {**self.stats, "records_in_hand": self.pending,
                "partitions_backing_off": len(self._retry_at)}


def _committed_item(raw: bytes | None) -> Item | None:
    value = committed_value(raw) if raw is not None else None
    return decode_item(value) if value is not None else None


def _entry_of(table: TableInfo, index: IndexInfo, item: Item | None
              ) -> tuple[bytes | None, Item | None]:
    key = entry_key(table, index, item) if item else None
    return key, (index_projection(table, index, item) if key is not None and item else None)


async def reconcile(ctx: ApiContext, table: TableInfo, key: bytes,
                    images: list[bytes | None]) -> None:
    """Make the index entries of the item at ``key`` match the item as it is now, given the
    images its outbox records name (every entry an image names that the item no longer has
    is deleted). State-based, so doing it twice, late, or on two nodes at once is safe: after
    its writes it reads the item again, and goes round once more if it changed meanwhile
    (a deposed leader's late write is followed by its own check, so the last write to an
    entry is always checked against the item after it)."""
    items = [_committed_item(raw) for raw in images]
    # Every index, even one the images agree on: an image may be inexact (an entry replayed
    # over a newer state after a restart or a snapshot), so the live entry is always written.
    changed = list(table.gsis)
    names = {index.name: {entry for entry, _ in (_entry_of(table, index, item)
                                                 for item in items) if entry is not None}
             for index in changed}
    handle = ctx.handle
    for _ in range(RECONCILE_ROUNDS):
        raw = await handle.read(table.bucket, key, consistent=True)
        value = raw
        if raw is not None and raw[:1] == INTENT_MARK:
            value = await resolve(ctx, table.bucket, key, raw, consistent=True)
        item = decode_item(value) if value is not None else None
        for index in changed:
            assert index.bucket is not None
            live, projected = _entry_of(table, index, item)
            for stale in sorted(names[index.name] - {live}):
                await handle.write(index.bucket, stale, None)
            if live is not None and projected is not None:
                await handle.write(index.bucket, live, encode_item(projected))
                names[index.name].add(live)
        if await handle.read(table.bucket, key, consistent=True) == raw:
            return
    raise RuntimeError("the item kept changing while its index entries were written")
