"""Query, of tables and of their secondary indexes, and the page Query and Scan share.

Owns: turning a KeyConditionExpression into sort-key bounds for ``handle.query``, paging
(Limit counts items *evaluated*, before the FilterExpression, as DynamoDB; a page also stops
after 1 MB of items read; ExclusiveStartKey / LastEvaluatedKey), Select, projections, and
index reads; the Scan operation is :mod:`dynamokv.api.operations.scan`.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.errors`, :mod:`dynamokv.api.expressions`, :mod:`dynamokv.api.handle`,
:mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.layout.items`, :mod:`dynamokv.api.layout.keycodec`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.transactions.intents`,
:mod:`dynamokv.api.large_reads`.

Global secondary indexes have their own buckets (:mod:`dynamokv.api.indexes`): a Query is a
range read of the index's partition, a Scan scans the index bucket, and every entry read is
checked against its base item (an eventually consistent read) before it is answered -- entries
left stale by the asynchronous upkeep are dropped. Reads of a global index are eventually
consistent only (ConsistentRead is refused, as DynamoDB does); an index still CREATING (being
backfilled) cannot be read. A local secondary index shares its table's partitions: a Query
reads the partition key's items (one range read, consistent if asked), keeps those with the
index's sort key and orders them by it; a Scan of it scans the table.

Items held by a transaction (stored with an intent, :mod:`dynamokv.api.layout.items`) are read as
their committed value as of the transaction's state (:func:`dynamokv.api.transactions.intents.
resolve`): a consistent Query settles them by the transaction's record; an eventually consistent
read takes the committed value of a young intent as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from dynamokv.api import large_reads
from dynamokv.api.attributes import (
    AttributeValue,
    B,
    Item,
    KeyValue,
    N,
    S,
    from_wire,
    item_size,
    item_to_wire,
)
from dynamokv.api.errors import ResourceNotFoundException, ValidationException
from dynamokv.api.expressions import (
    Condition,
    ExpressionAttributes,
    KeyCondition,
    Path,
    RangeCondition,
    evaluate,
    legacy,
    parse_key_condition,
    project,
    range_matches,
)
from dynamokv.api.expressions.condition_parser import parse_condition_tree
from dynamokv.api.expressions.nodes import (
    And,
    Between,
    Comparison,
    FunctionCondition,
    FunctionOperand,
    In,
    Not,
    Operand,
    Or,
    PathOperand,
)
from dynamokv.api.handle import split_key
from dynamokv.api.indexes.backfill import resume_backfills
from dynamokv.api.indexes.layout import CREATING, entry_key, index_projection
from dynamokv.api.indexes.node import VERIFY_BATCH, verify, work
from dynamokv.api.layout.items import INTENT_MARK
from dynamokv.api.layout.keycodec import encode_key
from dynamokv.api.operations.common import (
    ApiContext,
    Params,
    Prepared,
    capacity_mode,
    prepare_expressions,
    read_units,
)
from dynamokv.api.operations.consumed import read_consumed
from dynamokv.api.schema.catalog import IndexInfo, TableInfo
from dynamokv.api.transactions.intents import resolve

PAGE_BYTES = 1024 * 1024
CHUNK = 1000
# In the order DynamoDB lists them when it refuses another value.
SELECTS = ("SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES")
START_INVALID = "The provided starting key is invalid: "


# ------------------------------------------------------------------------------ helpers


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string above every string that starts with ``prefix``."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def sort_bounds(
    condition: RangeCondition | None, *, suffixed: bool = False
) -> tuple[bytes | None, bytes | None]:
    """``[start, end)`` of encoded sort parts covering ``condition``.

    Encodings are self-delimiting (none is a prefix of another), so ``e + 00`` is the first
    byte string after ``e`` and every other key: the bounds are exact, not approximations.
    ``suffixed``: sort parts continue after the encoded value (a global index's entries carry
    the base key there), so "after ``e``" is the first string not starting with ``e``.
    """
    if condition is None:
        return None, None
    op, values = condition.op, condition.values
    first = encode_key(values[0])

    def past(encoded: bytes) -> bytes | None:
        return prefix_end(encoded) if suffixed else encoded + b"\x00"

    if op == "=":
        return first, past(first)
    if op == "<":
        return None, first
    if op == "<=":
        return None, past(first)
    if op == ">":
        return past(first), None
    if op == ">=":
        return first, None
    if op == "BETWEEN":
        return first, past(encode_key(values[1]))
    # BEGINS_WITH: an S/B encoding is tag + escaped bytes + 00 00; escaping is prefix-preserving,
    # so the encodings of values with this prefix are exactly those starting with it, unterminated.
    prefix = first[:-2]
    return prefix, prefix_end(prefix)


def condition_paths(condition: Condition) -> list[Path]:
    """Every document path a condition refers to."""
    out: list[Path] = []

    def operand(o: Operand) -> None:
        if isinstance(o, PathOperand):
            out.append(o.path)
        elif isinstance(o, FunctionOperand):
            for arg in o.args:
                operand(arg)

    def walk(c: Condition) -> None:
        if isinstance(c, (And, Or)):
            walk(c.left)
            walk(c.right)
        elif isinstance(c, Not):
            walk(c.operand)
        elif isinstance(c, Comparison):
            operand(c.left)
            operand(c.right)
        elif isinstance(c, Between):
            operand(c.operand)
            operand(c.low)
            operand(c.high)
        elif isinstance(c, In):
            operand(c.operand)
            for candidate in c.candidates:
                operand(candidate)
        elif isinstance(c, FunctionCondition):
            for arg in c.args:
                operand(arg)

    walk(condition)
    return out


def in_index(index: IndexInfo, item: Item, types: dict[str, str]) -> bool:
    for name in index.key_names:
        value = item.get(name)
        if value is None or value.type_name != types.get(name, value.type_name):
            return False
    return True


def _key_value(value: AttributeValue | None) -> KeyValue | None:
    return value if isinstance(value, (S, N, B)) else None


def start_key_of(
    table: TableInfo, index: IndexInfo | None, raw: dict[str, Any] | None
) -> tuple[Item, bytes] | None:
    """Validate ExclusiveStartKey: the table's key (plus the index's key for index reads)."""
    if raw is None:
        return None
    names = list(table.key_names)
    if index is not None:
        names += [n for n in index.key_names if n not in names]
    table_part = {name: raw[name] for name in table.key_names if name in raw}
    try:
        key, storage = table.key_from_wire(table_part)
    except ValidationException as exc:
        raise ValidationException(START_INVALID + exc.message) from None
    if set(raw) != set(names):
        raise ValidationException(
            START_INVALID + "The provided key element does not match the schema"
        )
    if index is not None:
        for name in names:
            if name not in key:
                value = from_wire(raw[name])
                if value.type_name != table.types.get(name):
                    raise ValidationException(
                        START_INVALID + "The provided key element does not match the schema"
                    )
                key[name] = value
    return key, storage


class Page:
    """The evaluation loop shared by Query and Scan."""

    def __init__(
        self,
        table: TableInfo,
        index: IndexInfo | None,
        prepared: Prepared,
        select: str,
        limit: int | None,
    ) -> None:
        self.table = table
        self.index = index
        self.prepared = prepared
        self.select = select
        self.limit = limit
        self.items: list[dict[str, Any]] = []
        self.count = 0
        self.scanned = 0
        self.size = 0
        self.last: Item | None = None

    async def run(self, source: AsyncIterator[Item]) -> bool:
        """Consume ``source``; True when the page stopped early (a LastEvaluatedKey is due)."""
        index = self.index
        # A global index holds only its projection; a local one answers ALL_ATTRIBUTES, filters
        # and projection expressions from the table's item (DynamoDB fetches it).
        projected = index is not None and (
            index.is_global or self.select == "ALL_PROJECTED_ATTRIBUTES"
        )
        async for item in source:
            self.scanned += 1
            self.last = item
            if isinstance(item, large_reads.LargeItem):
                size, answer = await large_reads.in_worker(self._visit, item, projected)
            else:
                size, answer = self._visit(item, projected)
            self.size += size
            if answer is not None:
                self.count += 1
                if self.select != "COUNT":
                    self.items.append(answer)
            if (self.limit is not None and self.scanned >= self.limit) or self.size >= PAGE_BYTES:
                return True
        return False

    def _visit(self, item: Item, projected: bool) -> tuple[int, dict[str, Any] | None]:
        """The size ``item`` counts for, and its answer (``{}`` under Select COUNT), or None
        when the filter drops it. Pure: a large item's visit runs in the worker thread."""
        index = self.index
        visible = item
        if projected:
            assert index is not None
            visible = index_projection(self.table, index, item)
        size = item_size(visible if index is not None and index.is_global else item)
        if self.prepared.filter is not None and not evaluate(self.prepared.filter, visible):
            return size, None
        if self.select == "COUNT":
            return size, {}
        if self.prepared.projection is not None:
            visible = project(visible, self.prepared.projection)
        return size, item_to_wire(visible)

    def response(self, stopped: bool, mode: str, consistent: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.select != "COUNT":
            out["Items"] = self.items
        out["Count"] = self.count
        out["ScannedCount"] = self.scanned
        if stopped and self.last is not None:
            out["LastEvaluatedKey"] = self.table.wire_key_of(self.last, self.index)
        consumed = read_consumed(self.table, self.index, mode, read_units(self.size, consistent))
        if consumed is not None:
            out["ConsumedCapacity"] = consumed
        return out


def select_of(params: Params, prepared: Prepared, index: IndexInfo | None) -> str:
    default = (
        "SPECIFIC_ATTRIBUTES"
        if prepared.projection is not None
        else ("ALL_PROJECTED_ATTRIBUTES" if index is not None else "ALL_ATTRIBUTES")
    )
    select = params.enum("Select", SELECTS, default)
    if select == "SPECIFIC_ATTRIBUTES" and prepared.projection is None:
        raise ValidationException(
            "One or more parameter values were invalid: Select type SPECIFIC_ATTRIBUTES requires "
            "AttributesToGet or ProjectionExpression"
        )
    if select != "SPECIFIC_ATTRIBUTES" and prepared.projection is not None:
        what = "only the COUNT" if select == "COUNT" else select
        raise ValidationException(
            f"Cannot specify the {prepared.projection_member} when choosing to get {what}"
        )
    if select == "ALL_PROJECTED_ATTRIBUTES" and index is None:
        raise ValidationException(
            "One or more parameter values were invalid: Select type ALL_PROJECTED_ATTRIBUTES is "
            "not supported for a table; it requires an IndexName"
        )
    if (
        select == "ALL_ATTRIBUTES"
        and index is not None
        and index.is_global
        and index.projection_type != "ALL"
    ):
        raise ValidationException(
            "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not "
            f"supported for global secondary index {index.name} because its projection type is "
            "not ALL"
        )
    return select


def index_of(ctx: ApiContext, params: Params, table: TableInfo) -> IndexInfo | None:
    name = params.string("IndexName")
    if name is None:
        return None
    index = table.indexes.get(name)
    if index is None:
        raise ValidationException(
            f"The table does not have the specified index: {name}"
        )
    if index.status == CREATING:
        resume_backfills(ctx, work(ctx), table)  # in case the node backfilling it is gone
        raise ValidationException(f"Cannot read from backfilling global secondary index: {name}")
    return index


def check_scalar_keys(prepared: Prepared, key_names: set[str] | tuple[str, ...]) -> None:
    """A filter may not look inside a key attribute (they are scalars), as DynamoDB refuses."""
    if prepared.filter is None:
        return
    for path in condition_paths(prepared.filter):
        if path.is_nested and path.head in key_names:
            raise ValidationException(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' are "
                f"not allowed: Key: {path.head}"
            )


def _check_filter(prepared: Prepared, key_names: set[str]) -> None:
    if prepared.filter is None:
        return
    check_scalar_keys(prepared, key_names)
    for path in condition_paths(prepared.filter):
        if path.head in key_names:
            raise ValidationException(
                f"{prepared.filter_member} can only contain non-primary key attributes: Primary "
                f"key attribute: {path.head}"
            )


def consistent_read(params: Params, index: IndexInfo | None) -> bool:
    consistent = params.boolean("ConsistentRead")
    if consistent and index is not None and index.is_global:
        raise ValidationException("Consistent reads are not supported on global secondary indexes")
    return consistent


async def committed(
    ctx: ApiContext, table: TableInfo, key: bytes, raw: bytes, consistent: bool
) -> Item | None:
    """The committed item of a stored value (``None``: none), resolving a transaction's
    intent when the value carries one; plain values decode without a round trip."""
    if raw[:1] != INTENT_MARK:
        return await large_reads.decoded(raw)
    value = await resolve(ctx, table.bucket, key, raw, consistent=consistent)
    return None if value is None else await large_reads.decoded(value)


def entry_position(table: TableInfo, index: IndexInfo, start_key: tuple[Item, bytes]) -> bytes:
    """The index entry key an ExclusiveStartKey of a global index names."""
    position = entry_key(table, index, start_key[0])
    if position is None:
        raise ValidationException(
            START_INVALID + "The provided key element does not match the schema"
        )
    return position


async def verified(
    ctx: ApiContext, table: TableInfo, index: IndexInfo, entries: list[tuple[bytes, bytes]]
) -> AsyncIterator[Item]:
    """The base items of ``entries`` that still match them, in order (checked a batch at a
    time, so a consumer that stops early leaves the rest unread)."""
    for i in range(0, len(entries), VERIFY_BATCH):
        for item in await verify(ctx, table, index, entries[i : i + VERIFY_BATCH]):
            if item is not None:
                yield item


def fetch_size(want: int | None) -> int:
    return CHUNK if want is None else max(1, min(CHUNK, want))


# ------------------------------------------------------------------------------ Query


async def query(ctx: ApiContext, params: Params) -> dict[str, Any]:
    limit = params.integer("Limit", minimum=1)  # checked before the table, as DynamoDB does
    mode = capacity_mode(params)
    text = params.string("KeyConditionExpression")
    if text is None and not params.has("KeyConditions"):
        raise ValidationException(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in "
            "the request."
        )
    try:
        table = await ctx.table(params)
    except ResourceNotFoundException:
        _check_without_table(params, text)
        raise
    index = index_of(ctx, params, table)
    hash_key = index.hash_key if index is not None else table.hash_key
    range_key = index.range_key if index is not None else table.range_key
    hash_keys = index.partition_names if index is not None else ()
    range_keys = index.sort_names if index is not None else ()
    found: list[KeyCondition] = []

    def key_condition(attrs: ExpressionAttributes) -> None:
        if text is not None:
            found.append(
                parse_key_condition(
                    text, hash_key=hash_key, range_key=range_key, key_types=table.types,
                    attributes=attrs, hash_keys=hash_keys, range_keys=range_keys,
                )
            )

    prepared = prepare_expressions(
        params, projection=True, filter=True, extra=key_condition if text is not None else None,
        legacy_filter="QueryFilter", key_condition=True,
    )
    if text is not None:
        condition = found[0]
    else:
        condition = legacy.key_conditions(
            params.raw("KeyConditions"), hash_key, range_key, table.types,
            hash_keys=hash_keys, range_keys=range_keys,
        )
    key_names = set(index.key_names) if index is not None else set(table.key_names)
    _check_filter(prepared, key_names)
    select = select_of(params, prepared, index)
    forward = True if params.raw("ScanIndexForward") is None else params.boolean("ScanIndexForward")
    consistent = consistent_read(params, index)
    start_key = start_key_of(table, index, params.mapping("ExclusiveStartKey"))
    if start_key is not None:
        partition = index.partition_names if index is not None else (hash_key,)
        start_hash = tuple(start_key[0].get(name) for name in partition)
        if start_hash != condition.partition_values:
            raise ValidationException(
                "The provided starting key is outside query boundaries based on provided "
                "conditions"
            )
        sort_part = start_key[0].get(condition.range_key) if condition.range_key else None
        if not condition.sort_prefix and not range_matches(condition.range_condition, sort_part):
            raise ValidationException(
                "The provided starting key does not match the range key predicate"
            )
    page = Page(table, index, prepared, select, limit)
    source: AsyncIterator[Item]
    if index is None:
        source = _query_table(ctx, table, condition, forward, consistent, start_key)
    elif index.is_global:
        source = _query_gsi(ctx, table, index, condition, forward, start_key, limit)
    else:
        source = _query_lsi(ctx, table, index, condition, forward, start_key, consistent)
    stopped = await page.run(source)
    return page.response(stopped, mode, consistent)


def _check_without_table(params: Params, text: str | None) -> None:
    """The checks of a Query that need no key schema, for a request naming a missing table:
    DynamoDB makes them before it looks the table up, so their error wins."""

    def key_condition(attrs: ExpressionAttributes) -> None:
        if text is not None:
            parse_condition_tree(text, "KeyConditionExpression", attrs)

    prepared = prepare_expressions(
        params, projection=True, filter=True, extra=key_condition if text is not None else None,
        legacy_filter="QueryFilter", key_condition=True,
    )
    if not params.has("IndexName"):
        select_of(params, prepared, None)
    if text is None:
        raw = params.raw("KeyConditions")
        legacy.filter_condition(raw, None, "KeyConditions")
        if isinstance(raw, dict) and not 1 <= len(raw) <= 2:
            raise ValidationException("Conditions can be of length 1 or 2 only")
    check_start_values(params)


def check_start_values(params: Params) -> None:
    """Each ExclusiveStartKey value must be a valid attribute value (whatever the schema)."""
    for value in (params.mapping("ExclusiveStartKey") or {}).values():
        try:
            from_wire(value)
        except ValidationException as exc:
            raise ValidationException(START_INVALID + exc.message) from None


async def _committed_items(ctx: ApiContext, table: TableInfo,
                           rows: list[tuple[bytes, bytes]], consistent: bool
                           ) -> AsyncIterator[Item]:
    """The committed items of a page of ``(key, stored value)`` rows (see ``committed``)."""
    for key, raw in rows:
        found = await committed(ctx, table, key, raw, consistent)
        if found is not None:
            yield found


def _past(start: bytes | None, end: bytes | None, after: bytes, forward: bool, *,
          resuming: bool = True) -> tuple[bytes | None, bytes | None]:
    """The sort-key range ``[start, end)`` left to read after the sort part ``after`` (an
    ExclusiveStartKey's when ``resuming``, which narrows the range only; else the last key a
    page returned), in the read's direction."""
    if forward:
        resume = after + b"\x00"
        return (resume if not resuming or start is None or resume > start else start), end
    return start, (after if not resuming or end is None or after < end else end)


async def _query_table(
    ctx: ApiContext,
    table: TableInfo,
    condition: KeyCondition,
    forward: bool,
    consistent: bool,
    start_key: tuple[Item, bytes] | None,
) -> AsyncIterator[Item]:
    hash_part = encode_key(condition.hash_value)
    start, end = sort_bounds(condition.range_condition)
    if start_key is not None:
        if table.range_key is None:
            return  # a table without sort key has one item per partition key: all done
        _, after = split_key(start_key[1])
        start, end = _past(start, end, after, forward)
    while start is None or end is None or start < end:
        page = await ctx.handle.query(
            table.bucket, hash_part, start, end, reverse=not forward, limit=CHUNK,
            consistent=consistent,
        )
        async for item in _committed_items(ctx, table, page.items, consistent):
            if table.range_key is not None and not range_matches(
                condition.range_condition, item.get(table.range_key)
            ):
                continue
            yield item
        if page.last_key is None or not page.items:
            return
        start, end = _past(start, end, split_key(page.last_key)[1], forward, resuming=False)


def _index_order(table: TableInfo, index: IndexInfo, item: Item) -> tuple[bytes, bytes]:
    range_value = _key_value(item.get(index.range_key)) if index.range_key else None
    return (encode_key(range_value) if range_value is not None else b"", table.storage_key(item))


async def _query_lsi(
    ctx: ApiContext,
    table: TableInfo,
    index: IndexInfo,
    condition: KeyCondition,
    forward: bool,
    start_key: tuple[Item, bytes] | None,
    consistent: bool,
) -> AsyncIterator[Item]:
    """A local index: read the partition (its items are stored in table sort order), keep the
    items with the index's sort key in range, order them by it."""
    hash_part = encode_key(condition.hash_value)
    matches: list[tuple[tuple[bytes, bytes], Item]] = []
    start: bytes | None = None
    while True:
        page = await ctx.handle.query(
            table.bucket, hash_part, start, None, limit=CHUNK, consistent=consistent
        )
        async for item in _committed_items(ctx, table, page.items, consistent):
            if not in_index(index, item, table.types) or not range_matches(
                condition.range_condition, item.get(index.range_key or "")
            ):
                continue
            matches.append((_index_order(table, index, item), item))
        if page.last_key is None or not page.items:
            break
        _, last = split_key(page.last_key)
        start = last + b"\x00"
    matches.sort(key=lambda pair: pair[0], reverse=not forward)
    position = _index_order(table, index, start_key[0]) if start_key is not None else None
    for order, item in matches:
        if position is not None and (order <= position if forward else order >= position):
            continue
        yield item


async def _query_gsi(
    ctx: ApiContext,
    table: TableInfo,
    index: IndexInfo,
    condition: KeyCondition,
    forward: bool,
    start_key: tuple[Item, bytes] | None,
    want: int | None,
) -> AsyncIterator[Item]:
    """A global index: a range read of the index partition, each entry checked against its
    base item."""
    assert index.bucket is not None
    hash_part = b"".join(encode_key(value) for value in condition.partition_values)
    start, end = sort_bounds(condition.range_condition, suffixed=True)
    if condition.sort_prefix:
        # Equality on the leading sort-key attributes: the range lies within their prefix.
        prefix = b"".join(encode_key(value) for value in condition.sort_prefix)
        start = prefix + (start or b"")
        end = prefix + end if end is not None else prefix_end(prefix)
    if start_key is not None:
        _, after = split_key(entry_position(table, index, start_key))
        start, end = _past(start, end, after, forward)
    fetch = fetch_size(want)
    while start is None or end is None or start < end:
        page = await ctx.handle.query(
            index.bucket, hash_part, start, end, reverse=not forward, limit=fetch
        )
        async for item in verified(ctx, table, index, page.items):
            yield item
        if page.last_key is None or not page.items:
            return
        start, end = _past(start, end, split_key(page.last_key)[1], forward, resuming=False)


# ------------------------------------------------------------------------------ Scan
