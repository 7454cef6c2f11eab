"""Item collection metrics: what ``ReturnItemCollectionMetrics=SIZE`` answers.

Owns: validating the parameter, and measuring an item collection -- the items of one partition
key of a table that has local secondary indexes, plus what they project into those indexes --
as DynamoDB's ``ItemCollectionMetrics`` (``ItemCollectionKey`` and ``SizeEstimateRangeGB``, a
lower and an upper bound in whole gigabytes). As in DynamoDB, a table without local secondary
indexes has no item collections and answers no metrics.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.handle`, :mod:`dynamokv.api.layout.items`, :mod:`dynamokv.api.layout.keycodec`,
:mod:`dynamokv.api.operations.common`.

The collection is read (one range read of its partition, consistent, in pages) after the write
it reports on, so the size includes that write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dynamokv.api.attributes import AttributeValue, item_size, to_wire
from dynamokv.api.handle import split_key
from dynamokv.api.layout.items import committed_value, decode_item
from dynamokv.api.layout.keycodec import encode_key
from dynamokv.api.operations.common import ApiContext, Params
from dynamokv.api.schema.catalog import IndexInfo, TableInfo

GB = 1024 ** 3
PAGE = 1000


def wanted(params: Params) -> bool:
    """Whether the request asks for item collection metrics (the enum checked)."""
    return params.enum("ReturnItemCollectionMetrics", ("SIZE", "NONE"), "NONE") == "SIZE"


def _local_indexes(table: TableInfo) -> list[IndexInfo]:
    return [index for index in table.indexes.values() if not index.is_global]


def _projected(table: TableInfo, index: IndexInfo, item: Mapping[str, AttributeValue],
               whole: int) -> int:
    """The size of an item's entry in a local index (0 when it lacks the index's sort key)."""
    if index.range_key is None or index.range_key not in item:
        return 0
    if index.projection_type == "ALL":
        return whole
    names = set(table.key_names) | set(index.key_names)
    if index.projection_type == "INCLUDE":
        names |= set(index.non_key_attributes)
    return item_size({name: value for name, value in item.items() if name in names})


async def _collection_bytes(ctx: ApiContext, table: TableInfo, hash_value: AttributeValue,
                            indexes: list[IndexInfo]) -> int:
    hash_part = encode_key(hash_value)  # type: ignore[arg-type]  # a key value (S, N or B)
    total = 0
    start: bytes | None = None
    while True:
        page = await ctx.handle.query(table.bucket, hash_part, start, None, limit=PAGE,
                                      consistent=True)
        for _, raw in page.items:
            stored = committed_value(raw)
            if stored is None:
                continue
            item = decode_item(stored)
            whole = item_size(item)
            total += whole + sum(_projected(table, index, item, whole) for index in indexes)
        if page.last_key is None or not page.items:
            return total
        _, last = split_key(page.last_key)
        start = last + b"\x00"


async def metrics(ctx: ApiContext, table: TableInfo,
                  key: Mapping[str, AttributeValue]) -> dict[str, Any] | None:
    """The ItemCollectionMetrics of the collection ``key`` (an item or its key) belongs to, or
    None for a table without local secondary indexes."""
    indexes = _local_indexes(table)
    if not indexes:
        return None
    hash_value = key[table.hash_key]
    size = await _collection_bytes(ctx, table, hash_value, indexes)
    low = size // GB
    return {"ItemCollectionKey": {table.hash_key: to_wire(hash_value)},
            "SizeEstimateRangeGB": [float(low), float(low + 1)]}


async def per_table(ctx: ApiContext, written: Iterable[tuple[TableInfo, Mapping[str, Any]]]
                    ) -> dict[str, list[dict[str, Any]]]:
    """BatchWriteItem's and TransactWriteItems' ItemCollectionMetrics: for each table with
    local secondary indexes, one entry per item collection the request wrote to."""
    out: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, bytes]] = set()
    for table, key in written:
        hash_value = key[table.hash_key]
        marker = (table.name, encode_key(hash_value))
        if marker in seen:
            continue
        seen.add(marker)
        found = await metrics(ctx, table, key)
        if found is not None:
            out.setdefault(table.name, []).append(found)
    return out
