"""Batch operations: BatchGetItem and BatchWriteItem.

Owns: request limits (100 keys / 25 writes, no duplicate keys), running the reads and writes
concurrently through the handle, UnprocessedKeys / UnprocessedItems, and their capacity.
May import: stdlib, ``orjson``, :mod:`dynamokv.errors`, :mod:`dynamokv.api.attributes`,
:mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.expressions`,
:mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.operations.item_collections`,
:mod:`dynamokv.api.operations.consumed`.

A batch is not atomic (nor is it in DynamoDB): each request is an independent read or
unconditional write. A request the cluster could not serve right now (no quorum, overload,
timeout) is returned as unprocessed so the SDK retries it, rather than failing the whole batch;
if nothing at all could be processed the error itself is returned, as DynamoDB throttles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dynamokv.api.attributes import (
    Item,
    check_item_size,
    item_from_wire,
    item_size,
    item_to_wire,
)
from dynamokv.api.errors import ValidationException
from dynamokv.api.expressions import project
from dynamokv.api.indexes.node import maintain_many
from dynamokv.api.indexes.upkeep import UNKNOWN
from dynamokv.api.layout.items import INTENT_MARK, decode_item, encode_item
from dynamokv.api.operations import item_collections
from dynamokv.api.operations.common import (
    ApiContext,
    Params,
    Prepared,
    capacity,
    capacity_mode,
    one_error,
    prepare_expressions,
    read_units,
    write_units,
    wrong_type,
)
from dynamokv.api.operations.consumed import consumed, index_write_units
from dynamokv.api.operations.items import plain_write
from dynamokv.api.schema.catalog import TableInfo
from dynamokv.api.transactions.intents import resolve
from dynamokv.errors import UnavailableError

MAX_GET_KEYS = 100
MAX_WRITES = 25
RESPONSE_BYTES = 16 * 1024 * 1024
CONCURRENCY = 32
DUPLICATES = "Provided list of item keys contains duplicates"

T = TypeVar("T")


async def bounded_gather(calls: list[Callable[[], Awaitable[T]]]) -> list[T | BaseException]:
    """Run ``calls`` with at most CONCURRENCY in flight; exceptions are returned, not raised."""
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await call()

    results = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
    return list(results)


def _request_items(params: Params) -> dict[str, Any]:
    items = params.req_mapping("RequestItems")
    if not items:
        raise one_error(
            "Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length "
            "greater than or equal to 1"
        )
    return items


def _raise_first_fatal(results: list[Any]) -> None:
    """Errors other than 'cluster unavailable' fail the whole batch."""
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, UnavailableError):
            raise result


# ------------------------------------------------------------------------------ BatchGetItem


@dataclass
class _GetTable:
    table: TableInfo
    spec: dict[str, Any]
    keys: list[tuple[dict[str, Any], bytes]]
    prepared: Prepared
    consistent: bool


async def batch_get_item(ctx: ApiContext, params: Params) -> dict[str, Any]:
    request_items = _request_items(params)
    mode = capacity_mode(params)
    tables: list[_GetTable] = []
    total = 0
    for name, raw_spec in request_items.items():
        spec = Params(raw_spec, f"requestItems.{name}.member.")
        raw_keys = spec.sequence("Keys", required=True)
        assert raw_keys is not None
        total += len(raw_keys)
        if total > MAX_GET_KEYS:
            raise ValidationException("Too many items requested for the BatchGetItem call")
        if not raw_keys:
            raise one_error(
                f"Value '[]' at '{spec.label('Keys')}' failed to satisfy constraint: Member must "
                "have length greater than or equal to 1"
            )
        table = await ctx.catalog.require(Params({"TableName": name}).table_name())
        prepared = prepare_expressions(spec, projection=True)
        keys = []
        seen: set[bytes] = set()
        for raw_key in raw_keys:
            _, storage = table.key_from_wire(raw_key)
            if storage in seen:
                raise ValidationException(DUPLICATES)
            seen.add(storage)
            keys.append((raw_key, storage))
        tables.append(_GetTable(table, raw_spec, keys, prepared, spec.boolean("ConsistentRead")))

    calls: list[Callable[[], Awaitable[bytes | None]]] = []
    owners: list[tuple[_GetTable, dict[str, Any]]] = []
    for entry in tables:
        for raw_key, storage in entry.keys:
            calls.append(_reader(ctx, entry, storage))
            owners.append((entry, raw_key))
    results = await bounded_gather(calls)
    _raise_first_fatal(results)
    if results and all(isinstance(r, BaseException) for r in results):
        raise results[0]  # type: ignore[misc]

    responses: dict[str, list[dict[str, Any]]] = {entry.table.name: [] for entry in tables}
    unprocessed: dict[str, dict[str, Any]] = {}
    units: dict[str, float] = {}
    sent = 0
    for (entry, raw_key), result in zip(owners, results, strict=True):
        name = entry.table.name
        if isinstance(result, BaseException) or sent > RESPONSE_BYTES:
            pending = unprocessed.setdefault(
                name, {k: v for k, v in entry.spec.items() if k != "Keys"} | {"Keys": []}
            )
            pending["Keys"].append(raw_key)
            continue
        size = 0
        if result is not None:
            item = decode_item(result)
            size = item_size(item)
        # Each key is its own read: rounded up to 4 KB (a missing item costs the minimum).
        units[name] = units.get(name, 0.0) + read_units(size, entry.consistent)
        if result is None:
            continue
        sent += size
        if entry.prepared.projection is not None:
            item = project(item, entry.prepared.projection)
        responses[name].append(item_to_wire(item))
    out: dict[str, Any] = {"Responses": responses, "UnprocessedKeys": unprocessed}
    if mode != "NONE":
        out["ConsumedCapacity"] = [
            capacity(
                entry.table.name,
                units.get(entry.table.name, 0.0),
                mode,
                read=True,
            )
            for entry in tables
        ]
    return out


def _reader(
    ctx: ApiContext, entry: _GetTable, storage: bytes
) -> Callable[[], Awaitable[bytes | None]]:
    async def call() -> bytes | None:
        raw = await ctx.handle.read(entry.table.bucket, storage, consistent=entry.consistent)
        if raw is not None and raw[:1] == INTENT_MARK:
            # A transaction holds the item: answer its committed value as GetItem does.
            raw = await resolve(ctx, entry.table.bucket, storage, raw,
                                consistent=entry.consistent)
        return raw

    return call


# ------------------------------------------------------------------------------ BatchWriteItem


@dataclass
class _Write:
    table: TableInfo
    request: dict[str, Any]  # the WriteRequest as sent, for UnprocessedItems
    key: bytes
    data: bytes | None  # None deletes
    size: int
    item: Item | None = None  # a put's item (for index upkeep)
    keyed: Item | None = None  # the item, or the key of a delete (for item collections)


async def batch_write_item(ctx: ApiContext, params: Params) -> dict[str, Any]:
    request_items = _request_items(params)
    mode = capacity_mode(params)
    collection = item_collections.wanted(params)
    writes: list[_Write] = []
    for name, raw_requests in request_items.items():
        if not isinstance(raw_requests, list):
            raise wrong_type(raw_requests, "list")
        if not 1 <= len(raw_requests) <= MAX_WRITES:
            raise one_error(
                f"Value at 'requestItems.{name}.member' failed to satisfy constraint: Member must "
                f"have length {'less' if raw_requests else 'greater'} than or equal to "
                f"{MAX_WRITES if raw_requests else 1}"
            )
        table = await ctx.catalog.require(Params({"TableName": name}).table_name())
        seen: set[bytes] = set()
        for raw in raw_requests:
            request = Params(raw, f"requestItems.{name}.member.")
            put = request.nested("PutRequest")
            delete = request.nested("DeleteRequest")
            if (put is None) == (delete is None):
                raise ValidationException(
                    "Supplied WriteRequest must contain exactly one of PutRequest and "
                    "DeleteRequest"
                )
            if put is not None:
                item = item_from_wire(put.req_mapping("Item"))
                table.validate_item(item)
                size = check_item_size(item)
                write = _Write(table, raw, table.storage_key(item), encode_item(item), size,
                               item, item)
            else:
                assert delete is not None
                key_item, key = table.key_from_wire(delete.req_mapping("Key"))
                write = _Write(table, raw, key, None, 0, None, key_item)
            if write.key in seen:
                raise ValidationException(DUPLICATES)
            seen.add(write.key)
            writes.append(write)
        if len(writes) > MAX_WRITES:
            raise ValidationException("Too many items requested for the BatchWriteItem call")

    results = await bounded_gather([_writer(ctx, w) for w in writes])
    _raise_first_fatal(results)
    if results and all(isinstance(r, BaseException) for r in results):
        raise results[0]  # type: ignore[misc]
    unprocessed: dict[str, list[dict[str, Any]]] = {}
    units: dict[str, _Units] = {}
    for write, result in zip(writes, results, strict=True):
        if isinstance(result, BaseException):
            unprocessed.setdefault(write.table.name, []).append(write.request)
        elif mode != "NONE":
            units.setdefault(write.table.name, _Units()).add(write)
    # Blind writes: the old items are unknown, so a delete leaves its index entries to be found
    # stale by the next read of the index (see dynamokv.api.indexes).
    await maintain_many(ctx, (
        (write.table, write.key, UNKNOWN, write.item)
        for write, result in zip(writes, results, strict=True)
        if not isinstance(result, BaseException) and write.item is not None
    ))
    out: dict[str, Any] = {"UnprocessedItems": unprocessed}
    if mode != "NONE":
        out["ConsumedCapacity"] = [
            consumed(name, mode, read=False, table_units=u.table, gsi=u.gsi, lsi=u.lsi)
            for name, u in units.items()
        ]
    if collection:
        written = [(w.table, w.keyed) for w, result in zip(writes, results, strict=True)
                   if not isinstance(result, BaseException) and w.keyed is not None]
        metrics = await item_collections.per_table(ctx, written)
        if metrics:
            out["ItemCollectionMetrics"] = metrics
    return out


@dataclass
class _Units:
    """The write units of one table's requests in a BatchWriteItem: the table's, and each
    index's. The writes are blind (the items they replace or delete are not read), so an index
    counts the entries the puts write, not the old entries they displace."""

    table: float = 0.0
    gsi: dict[str, float] = field(default_factory=dict)
    lsi: dict[str, float] = field(default_factory=dict)

    def add(self, write: _Write) -> None:
        self.table += write_units(write.size)
        gsi, lsi = index_write_units(write.table, None, write.item)
        for mine, theirs in ((self.gsi, gsi), (self.lsi, lsi)):
            for name, value in theirs.items():
                mine[name] = mine.get(name, 0.0) + value


def _writer(ctx: ApiContext, write: _Write) -> Callable[[], Awaitable[None]]:
    def call() -> Awaitable[None]:
        return plain_write(ctx, write.table.bucket, write.key, write.data)

    return call
