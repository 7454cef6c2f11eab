"""Global secondary indexes: their stored entries, kept up to date in the background and
checked against the base table when read.

Owns: the storage layout of index entries (:func:`entry_key`, :func:`base_key_of`,
:func:`index_projection`), their upkeep after base writes (:class:`OutboxDrain` and
:func:`reconcile`, driven by the partitions' index outbox; :func:`maintain` and the per-node
:class:`IndexWork` queue for handles without one), the check of entries read by a Query or Scan
(:func:`verify`), the backfill of an index created by UpdateTable (:func:`start_backfill`,
:func:`resume_backfills`) and dropping the buckets of deleted indexes (:func:`drop_buckets`).
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.errors`, :mod:`dynamokv.api.handle`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.layout.keycodec`, :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.api.transactions.intents`.

Layout. Each global index has its own bucket (:func:`dynamokv.api.schema.catalog.gsi_bucket`, under
the table bucket prefix, so the ring places an entry by its hash part). An item's entry is keyed
``compose_key(enc(index hash value), enc(index range value) + enc(base hash) + enc(base
range))`` -- the index's partition, then index sort order, ties broken by the base key, which
the entry key therefore carries -- and its value is the item's projection (KEYS_ONLY, INCLUDE
or ALL; the projection always holds the base and index keys). Items without the index's key
attributes (or with other types than the index's) have no entry, as in DynamoDB.

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
item no longer has, writes the item's live entry, then reads the item again and goes round
once more if it changed meanwhile. The last write to an entry is thus always followed by a
check of the item made after it, by the node that wrote it; a late write can leave a stale
entry (which reads drop, below), never lose a live one. Failures are retried (``ATTEMPTS``
per item, then the batch after a pause growing to ``DRAIN_BACKOFF_MAX``), counted
(``OutboxDrain.stats``, shown by ``dynamokv status`` as ``index_upkeep``), and never skipped:
after ``DRAIN_GIVE_UP`` failed batches in a row the tables concerned are marked for repair and
rebuilt by a backfill run, which DescribeTable shows. A partition whose outbox falls more than
``core.replog.outbox.BACKLOG_MAX`` entries behind refuses new writes of indexed tables with a
retryable ThrottlingException until it catches up (bounded disk and log, not unbounded lag).

Handles without an outbox (``LocalHandle``, the reference model) keep the first design: after
a base write succeeds, a job (base key, old item if the operation knew it, new item) goes to
this node's bounded queue and the client is answered; up to ``WORKERS`` tasks drain it, and
when the queue is full the job runs inline. A job writes the new item's entry and *retracts*
the old item's entry when its index key changed (delete, then a linearizable read of the base
item, writing the entry back if the item has that key again). Repairs that reads ask for go
through the same queue on every handle.

Reads verify. Every entry a Query or Scan of a global index returns is checked against the
base item (an eventually consistent read of the base key, held items resolved as other reads
do): the entry is answered only if the base item still has the entry's index key, and its
attributes come from that base item (so they are never older than the base read). A mismatch
is dropped from the answer and retracted in the background. An index read is therefore never
"more stale" than an eventually consistent read of the base table, at the cost of one base
read per returned entry.

Backfill. An index created by UpdateTable is CREATING: it is maintained by writes but not
readable. The node that created it waits until every node's catalog cache knows the index (the
catalog TTL, plus a margin), then scans the base table and writes every item's entry, then marks
the index ACTIVE. It holds a lease in the catalog (renewed while it works); if it dies, the
next DescribeTable or read of the index through any node takes the lease over and starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from dynamokv.api.attributes import MAX_HASH_KEY_SIZE, AttributeValue, B, Item, N, S, value_size
from dynamokv.api.errors import DynamoDBError
from dynamokv.api.handle import compose_key, split_key
from dynamokv.api.layout.items import INTENT_MARK, committed_value, decode_item, encode_item
from dynamokv.api.layout.keycodec import decode_key_prefix, encode_key
from dynamokv.api.operations.common import ApiContext
from dynamokv.api.schema.catalog import IndexInfo, TableInfo, gsi_bucket, index_key_limit
from dynamokv.api.transactions.intents import resolve

log = logging.getLogger("dynamokv.api")

QUEUE_LIMIT = 10_000  # jobs waiting per node before writers do their upkeep inline
WORKERS = 8  # tasks draining the queue
ATTEMPTS = 3  # tries of one job (its writes are idempotent) before it is given up
RETRY_DELAY = 0.05  # seconds before the 2nd try; x4 for each further one
VERIFY_BATCH = 32  # base reads in flight while checking the entries of one page
LEASE = 30.0  # seconds a backfill lease lasts
RENEW = 10.0  # seconds between two renewals of it
BACKFILL_CHUNK = 500  # base items per scan page of a backfill
BACKFILL_CONCURRENCY = 16  # entry writes in flight during a backfill
SETTLE = 0.5  # extra seconds a backfill waits, beyond the catalog TTL, before it scans
BACKFILL_RUNS = 5  # failed backfill runs (cluster-wide, stored with the index) before giving up
BACKFILL_RETRY = 5.0  # seconds between a failed run and the next
DROP_ATTEMPTS = 3  # tries of dropping a bucket
POLL_MIN = 0.01  # seconds between two polls of an outbox that had records
POLL_MAX = 0.2  # ... growing to this while it has none
POLL_RECORDS = 1_000  # records asked for per poll
DRAIN_CONCURRENCY = 16  # items reconciled at once
MARK_RECORDS = 256  # records indexed before the partition's mark is asked for ...
MARK_DELAY = 0.5  # ... or seconds since the first of them
DRAIN_BACKOFF_MAX = 10.0  # seconds, at most, before a failed batch is tried again
DRAIN_GIVE_UP = 8  # failed batches in a row before their tables' indexes are rebuilt instead
RECONCILE_ROUNDS = 4  # rounds of one item's entries while it keeps changing

CREATING, ACTIVE = "CREATING", "ACTIVE"
T = TypeVar("T")


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""The old item of a write that did not read it (a plain put)."""


# ------------------------------------------------------------------------------ layout


def index_projection(table: TableInfo, index: IndexInfo, item: Mapping[str, AttributeValue]
                     ) -> Item:
    """What an index holds of ``item``: everything (ALL), or the base and index keys plus the
    INCLUDE list."""
    if index.projection_type == "ALL":
        return dict(item)
    keep = set(table.key_names) | set(index.key_names)
    if index.projection_type == "INCLUDE":
        keep.update(index.non_key_attributes)
    return {name: value for name, value in item.items() if name in keep}


def _key_part(table: TableInfo, name: str, item: Mapping[str, AttributeValue],
              limit: int = MAX_HASH_KEY_SIZE) -> bytes | None:
    """The encoding of one key attribute, or ``None`` when DynamoDB would not index the item
    by it: missing, of another type than defined, empty, or over the size limit (an item
    written before the index existed may have any of these)."""
    value = item.get(name)
    if not isinstance(value, (S, N, B)) or value.type_name != table.types.get(name):
        return None
    if isinstance(value, (S, B)) and (not value.value or value_size(value) > limit):
        return None
    return encode_key(value)


def _parts(table: TableInfo, index: IndexInfo | None, names: Iterable[str],
           item: Mapping[str, AttributeValue]) -> bytes | None:
    """The concatenated encodings of ``names`` (``index``'s key attributes, size-checked; or,
    with ``index`` None, the base key, valid already)."""
    out = b""
    for name in names:
        limit = index_key_limit(index, name) if index is not None else MAX_HASH_KEY_SIZE
        part = _key_part(table, name, item, limit)
        if part is None:
            return None
        out += part
    return out


def entry_key(table: TableInfo, index: IndexInfo, item: Mapping[str, AttributeValue]
              ) -> bytes | None:
    """The key of ``item``'s entry in ``index`` (``None``: the item is not in the index). Also
    the position of an ExclusiveStartKey (index keys plus base keys) in the index.

    The hash part is the partition-key attributes' encodings in schema order, the sort part
    the sort-key attributes' then the base key's: encodings are self-delimiting, so the
    concatenations sort attribute by attribute and split again."""
    hash_part = _parts(table, index, index.partition_names, item)
    if hash_part is None:
        return None
    sort_part = _parts(table, index, index.sort_names, item)
    base_part = _parts(table, None, table.key_names, item)
    if sort_part is None or base_part is None:
        return None
    return compose_key(hash_part, sort_part + base_part)


def base_key_of(index: IndexInfo, key: bytes) -> bytes:
    """The storage key of the base item an entry key refers to."""
    _, sort_part = split_key(key)
    position = 0
    for _ in index.sort_names:
        _, position = decode_key_prefix(sort_part, position)
    _, middle = decode_key_prefix(sort_part, position)
    return compose_key(sort_part[position:middle], sort_part[middle:])


# ------------------------------------------------------------------------------ upkeep


@dataclass(slots=True)
class _Change:
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

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.pending: deque[_Change | _Repair] = deque()
        self.limit = QUEUE_LIMIT
        self.workers = 0
        self.inline = 0  # jobs running inline right now
        self.repairing: set[tuple[str, bytes]] = set()  # queued repairs (deduplicated)
        self.backfills: set[str] = set()  # index buckets this node is backfilling
        self.marking: set[str] = set()  # tables whose indexes are being marked for repair
        self.owner = ctx.ids().hex  # this node's name in backfill leases
        self.stats: Counter[str] = Counter()

    # ---- the queue ---------------------------------------------------------------------------

    def submit(self, job: _Change | _Repair) -> bool:
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

    async def run(self, job: _Change | _Repair) -> None:
        """Do one job, retrying failures; never raises (the base write succeeded already)."""
        for attempt in range(ATTEMPTS):
            try:
                if isinstance(job, _Change):
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
                    if isinstance(job, _Change):  # a failed retraction leaves a stale entry,
                        self.mark_for_repair(job.table)  # which reads drop: nothing is lost
                    break
                await asyncio.sleep(RETRY_DELAY * 4**attempt)
        if isinstance(job, _Repair):
            self.repairing.discard((job.index.bucket or "", job.entry))

    async def _apply(self, job: _Change) -> None:
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
            info = await _retried(partial(self.ctx.catalog.update, name, mark))
            self.stats["repairs_marked"] += 1
            resume_backfills(self.ctx, info)
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


def work(ctx: ApiContext) -> IndexWork:
    """The node's :class:`IndexWork` (made on first use, which also starts draining the
    node's index outbox when its handle has one)."""
    found = ctx.index_work
    if found is None:
        found = ctx.index_work = IndexWork(ctx)
        start_drain(ctx)
    assert isinstance(found, IndexWork)
    return found


def durable(ctx: ApiContext, table: TableInfo) -> bool:
    """Whether the writes of ``table`` are indexed from the log (its handle flags them
    ``INDEXED``), rather than by this node's in-memory queue."""
    indexed = getattr(ctx.handle, "indexed", None)
    return indexed is not None and table.bucket in indexed


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
    job = _Change(table, key, old, new)
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


# ------------------------------------------------------------------------------ outbox drain


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
    drain = OutboxDrain(ctx)
    setattr(handle, "index_drain", drain)  # noqa: B010 - any NodeHandle with an outbox
    drain.start()
    return drain


class OutboxDrain:
    """The log-driven upkeep of one node: brings the indexes up to date with the outbox
    records of the partitions it leads, a partition's records in log order, and asks for the
    partition's indexed-through mark when a batch is done (see the module docstring)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
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
        now = _monotonic()
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
            pause = min(RETRY_DELAY * 4**failures, DRAIN_BACKOFF_MAX)
            self._retry_at[part.partition] = _monotonic() + pause
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
                                                   (part.term, 0, 0, _monotonic()))
        if term != part.term:
            count, since = 0, _monotonic()
        self._unmarked[part.partition] = (part.term, part.through, count + len(part.records),
                                          since)

    async def _marks(self, *, all_due: bool = False) -> None:
        """Ask for the marks that are due: ``MARK_RECORDS`` records done since the last one,
        or ``MARK_DELAY`` seconds (one log entry per batch, not per write)."""
        now = _monotonic()
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
                work(self.ctx).mark_for_repair(table)
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
                    await _retried(partial(reconcile, self.ctx, table, key, images))
                    self.stats["items_reconciled"] += 1

        await asyncio.gather(*(one(b, k, images) for (b, k), images in by_item.items()))

    async def _table(self, bucket: str) -> TableInfo | None:
        """The table whose bucket ``bucket`` is (None: it was deleted)."""
        name = self._tables.get(bucket)
        if name is None:
            if _monotonic() < self._missing.get(bucket, 0.0):
                return None  # looked for lately: a deleted table's records
            for listed in await self.ctx.catalog.all_tables():
                self._tables[listed.bucket] = listed.name
            name = self._tables.get(bucket)
            if name is None:
                self._missing[bucket] = _monotonic() + self.ctx.catalog.ttl
                return None
        info = await self.ctx.catalog.get(name)
        if info is None or info.bucket != bucket:
            self._tables.pop(bucket, None)
            return None
        return info

    def status(self) -> dict[str, int]:
        return {**self.stats, "records_in_hand": self.pending,
                "partitions_backing_off": len(self._retry_at)}


def _monotonic() -> float:
    """The loop's clock: pauses and retries must not follow the wall clock's jumps (virtual
    time under the simulator)."""
    return asyncio.get_running_loop().time()


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


# ------------------------------------------------------------------------------ reads


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


# ------------------------------------------------------------------------------ backfill


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


def lease_fields(ctx: ApiContext) -> dict[str, Any]:
    """The lease members of a stored index whose backfill this node starts now."""
    # The backfill first waits out the catalog TTL without renewing: the lease outlasts that.
    length = max(LEASE, 3 * ctx.catalog.ttl + RENEW)
    return {"BackfillLease": round(ctx.clock() + length, 3), "BackfillOwner": work(ctx).owner}


def resume_backfills(ctx: ApiContext, info: TableInfo) -> None:
    """Take over the backfill of every CREATING index of ``info`` (or one marked for repair)
    whose lease has run out (its node died, or the index predates stored indexes)."""
    upkeep = work(ctx)
    now = ctx.clock()
    for index in info.gsis:
        if not (index.status == CREATING or index.repair) or index.bucket in upkeep.backfills:
            continue
        if (index.lease is not None and index.lease > now) or index.failures >= BACKFILL_RUNS:
            continue
        assert index.bucket is not None
        upkeep.backfills.add(index.bucket)  # claimed below; released if the claim fails
        ctx.spawn(_claim(ctx, info.name, index.name, index.bucket),
                  f"backfill of index {index.name}")


async def _claim(ctx: ApiContext, table: str, name: str, bucket: str) -> None:
    upkeep = work(ctx)

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
        index.update(lease_fields(ctx))

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


def start_backfill(ctx: ApiContext, table: str, name: str, bucket: str) -> None:
    """Backfill an index whose lease this node has just taken (UpdateTable's Create)."""
    upkeep = work(ctx)
    if bucket in upkeep.backfills:
        return
    upkeep.backfills.add(bucket)
    ctx.spawn(_backfill(ctx, table, name, bucket), f"backfill of index {name}")


async def _backfill(ctx: ApiContext, table_name: str, name: str, bucket: str) -> None:
    upkeep = work(ctx)
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
        index.update(lease_fields(ctx))

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
                await _retried(partial(handle.write, bucket, entry,
                                       encode_item(index_projection(info, index, item))))

    after: bytes | None = None
    while True:
        if ctx.clock() - renewed >= RENEW:
            if not await _edit(ctx, table_name, bucket, renew):
                return True  # the lease is lost: its new holder goes on
            renewed = ctx.clock()
        page = await _retried(partial(handle.scan, info.bucket, 0, 1, after, BACKFILL_CHUNK))
        await asyncio.gather(*(put(key, raw) for key, raw in page.items))
        upkeep.stats["backfilled"] += len(page.items)
        if page.last_key is None or not page.items:
            break
        after = page.last_key
    if await _edit(ctx, table_name, bucket, done) and not again:
        log.info("index %s of table %s is ACTIVE", name, table_name)
    return not again


# ------------------------------------------------------------------------------ dropping


def drop_buckets(ctx: ApiContext, buckets: Iterable[str], what: str) -> None:
    """Delete the entries of dropped indexes (or tables), in the background (retried; a drop
    that still fails is logged by ``spawn``)."""
    for bucket in buckets:
        ctx.spawn(_retried(partial(ctx.handle.drop_bucket, bucket), DROP_ATTEMPTS), what)


async def _retried(step: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    """``step()``, tried up to ``attempts`` times with growing pauses; the last failure
    propagates."""
    for attempt in range(attempts - 1):
        try:
            return await step()
        except Exception:
            await asyncio.sleep(RETRY_DELAY * 4**attempt)
    return await step()


def stored_gsi_buckets(description: Mapping[str, Any]) -> list[str]:
    return [gsi_bucket(description["TableId"], index)
            for index in description.get("GlobalSecondaryIndexes") or ()]


__all__ = [
    "ACTIVE",
    "CREATING",
    "UNKNOWN",
    "IndexWork",
    "OutboxDrain",
    "base_key_of",
    "drop_buckets",
    "entry_key",
    "index_projection",
    "lease_fields",
    "maintain",
    "maintain_many",
    "reconcile",
    "resume_backfills",
    "start_backfill",
    "start_drain",
    "stored_gsi_buckets",
    "verify",
    "work",
]

