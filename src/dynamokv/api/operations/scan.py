"""Scan, of a table and of its secondary indexes, in parallel segments or whole.

Owns: the Scan operation: Segment/TotalSegments (a segment is a split of the ring, the
``handle.scan`` of one range of partitions), an ExclusiveStartKey checked against its segment,
and the sources of a page: a table's (or local index's) items, or a global index's entries
checked against their base items. Paging, Select, filters and projections are the page's, shared
with Query (:mod:`dynamokv.api.operations.query`).
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.errors`, :mod:`dynamokv.api.operations.common`,
:mod:`dynamokv.api.operations.query`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dynamokv.api.attributes import Item
from dynamokv.api.errors import ResourceNotFoundException, ValidationException
from dynamokv.api.operations.common import (
    ApiContext,
    Params,
    capacity_mode,
    prepare_expressions,
)
from dynamokv.api.operations.query import (
    CHUNK,
    Page,
    check_scalar_keys,
    check_start_values,
    committed,
    consistent_read,
    entry_position,
    fetch_size,
    in_index,
    index_of,
    select_of,
    start_key_of,
    verified,
)
from dynamokv.api.schema.catalog import IndexInfo, TableInfo


async def scan(ctx: ApiContext, params: Params) -> dict[str, Any]:
    # The parameters and expressions come first: DynamoDB checks them before the table.
    limit = params.integer("Limit", minimum=1)
    mode = capacity_mode(params)
    segment, total = _segments(params)
    prepared = prepare_expressions(
        params, projection=True, filter=True, legacy_filter="ScanFilter"
    )
    try:
        table = await ctx.table(params)
    except ResourceNotFoundException:
        if not params.has("IndexName"):
            select_of(params, prepared, None)
        check_start_values(params)
        raise
    index = index_of(ctx, params, table)
    check_scalar_keys(prepared, table.key_names)
    select = select_of(params, prepared, index)
    consistent = consistent_read(params, index)
    start_key = start_key_of(table, index, params.mapping("ExclusiveStartKey"))
    if start_key is not None and total is not None:
        _check_segment(ctx, table, index, start_key, segment or 0, total)
    page = Page(table, index, prepared, select, limit)
    source: AsyncIterator[Item]
    if index is not None and index.is_global:
        after = entry_position(table, index, start_key) if start_key is not None else None
        source = _scan_gsi(ctx, table, index, segment or 0, total or 1, after, limit)
    else:
        source = _scan_table(
            ctx, table, index, segment or 0, total or 1, start_key[1] if start_key else None,
            consistent,
        )
    stopped = await page.run(source)
    return page.response(stopped, mode, consistent)


def _segments(params: Params) -> tuple[int | None, int | None]:
    """Segment and TotalSegments of a parallel Scan, checked together."""
    segment = params.integer("Segment", minimum=0, maximum=999999)
    total = params.integer("TotalSegments", minimum=1, maximum=1000000)
    if segment is not None and total is None:
        raise ValidationException(
            "The TotalSegments parameter is required but was not present in the request when "
            "Segment parameter is present"
        )
    if total is not None and segment is None:
        raise ValidationException(
            "The Segment parameter is required but was not present in the request when "
            "parameter TotalSegments is present"
        )
    if segment is not None and total is not None and segment >= total:
        raise ValidationException(
            "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
            f"Segment: {segment} is not less than TotalSegments: {total}"
        )
    return segment, total


def _check_segment(ctx: ApiContext, table: TableInfo, index: IndexInfo | None,
                   start_key: tuple[Item, bytes], segment: int, total: int) -> None:
    """A parallel Scan's ExclusiveStartKey must lie in its segment (a split of the ring)."""
    if index is not None and index.is_global:
        assert index.bucket is not None
        bucket, key = index.bucket, entry_position(table, index, start_key)
    else:
        bucket, key = table.bucket, start_key[1]
    if ctx.handle.segment_of(bucket, key, total) != segment:
        # The words dynalite's tests recorded from DynamoDB.
        raise ValidationException(
            "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use "
            f"ExclusiveStartKey with correct Segment. TotalSegments: {total} Segment: {segment}"
        )


async def _scan_table(
    ctx: ApiContext,
    table: TableInfo,
    index: IndexInfo | None,
    segment: int,
    total: int,
    after: bytes | None,
    consistent: bool = False,
) -> AsyncIterator[Item]:
    while True:
        page = await ctx.handle.scan(table.bucket, segment, total, after, CHUNK,
                                     consistent=consistent)
        for key, raw in page.items:
            found = await committed(ctx, table, key, raw, consistent)
            if found is None:
                continue
            item = found
            if index is None or in_index(index, item, table.types):
                yield item
        if page.last_key is None or not page.items:
            return
        after = page.last_key


async def _scan_gsi(
    ctx: ApiContext,
    table: TableInfo,
    index: IndexInfo,
    segment: int,
    total: int,
    after: bytes | None,
    want: int | None,
) -> AsyncIterator[Item]:
    """A scan of a global index's bucket, each entry checked against its base item."""
    assert index.bucket is not None
    fetch = fetch_size(want)
    while True:
        page = await ctx.handle.scan(index.bucket, segment, total, after, fetch)
        async for item in verified(ctx, table, index, page.items):
            yield item
        if page.last_key is None or not page.items:
            return
        after = page.last_key
