"""Single-item operations: PutItem, GetItem, UpdateItem, DeleteItem.

Owns: the request validation, condition evaluation, update application, ReturnValues and
consumed capacity of the four item operations, and the choice of path through the handle.
May import: stdlib, :mod:`dynamokv.api.attributes`, :mod:`dynamokv.api.schema.catalog`,
:mod:`dynamokv.api.errors`, :mod:`dynamokv.api.expressions`, :mod:`dynamokv.api.handle`,
:mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.transactions.intents`,
:mod:`dynamokv.api.operations.item_collections`, :mod:`dynamokv.api.large_reads`,
:mod:`dynamokv.api.large_writes`.

Paths through the handle. A PutItem or DeleteItem with no condition and no ReturnValues is a
plain ``write`` (last writer wins). Anything that must look at the current item -- a
condition, ALL_OLD, every UpdateItem -- is one ``cas``: the decision (condition, update, size
check) runs on the value the cluster agreed on, so it is linearizable and two racing
conditional writes never both succeed. Decisions are pure and may run more than once.

Transactions. An item a TransactWriteItems holds carries an intent
(:mod:`dynamokv.api.layout.items`);
seeing one costs a one-byte check. A ``cas`` decision that meets one raises ``IntentFound``:
the intent is settled by its transaction's record (rolled forward or back) and the write tried
again, or, if that transaction is live, the write fails with TransactionConflictException, as
DynamoDB's does. A GetItem that reads an intent returns the committed value as of the
transaction's state (:func:`dynamokv.api.transactions.intents.resolve`). Plain writes
are refused by the partition's leader when the item holds an intent (``refuse_prefix``); they
then settle it like a conditional write, or fail with TransactionConflictException while its
transaction is live.

Global secondary indexes. Every successful write hands the old item (if the path read it; a
plain write did not) and the new one to :func:`dynamokv.api.indexes.node.maintain`, which updates
the index entries in the background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dynamokv.api import large_reads, large_writes
from dynamokv.api.attributes import Item, check_item_size, item_from_wire, item_size, item_to_wire
from dynamokv.api.errors import ConditionalCheckFailedException, DynamoDBError, ValidationException
from dynamokv.api.expressions import UpdateExpression, apply_update, evaluate, project
from dynamokv.api.handle import WriteRefused
from dynamokv.api.indexes.node import maintain
from dynamokv.api.indexes.upkeep import UNKNOWN
from dynamokv.api.layout.items import INTENT_MARK, decode_item, encode_item
from dynamokv.api.operations import item_collections
from dynamokv.api.operations.common import (
    ApiContext,
    CheckFailed,
    Params,
    Prepared,
    Refused,
    capacity_mode,
    prepare_expressions,
    read_units,
)
from dynamokv.api.operations.consumed import read_consumed, write_consumed
from dynamokv.api.response_json import RawJson
from dynamokv.api.schema.catalog import TableInfo
from dynamokv.api.transactions.intents import IntentFound, resolve, write_cas

# In the order DynamoDB lists them in its "enum value set" messages.
RETURN_VALUES = ("ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW")
RETURN_ON_FAILURE = ("ALL_OLD", "NONE")
_INVALID = "One or more parameter values were invalid: "
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"


def return_values(params: Params, allowed: tuple[str, ...]) -> str:
    value = params.enum("ReturnValues", RETURN_VALUES, "NONE")
    if value not in allowed:
        raise ValidationException("Return values set to invalid value")
    return value


def on_failure(params: Params) -> bool:
    choice = params.enum("ReturnValuesOnConditionCheckFailure", RETURN_ON_FAILURE, "NONE")
    return choice == "ALL_OLD"


async def condition_failed(failed: CheckFailed, return_old: bool
                           ) -> ConditionalCheckFailedException:
    """The error of a false condition, with the item as it was when ``return_old``."""
    old = failed.old
    if not return_old or old is None:
        return ConditionalCheckFailedException()
    if failed.raw is not None and len(failed.raw) > large_reads.LARGE_VALUE:
        return ConditionalCheckFailedException(item=await large_reads.in_worker(item_to_wire, old))
    return ConditionalCheckFailedException(item=item_to_wire(old))


def check_update_keys(table: TableInfo, update: UpdateExpression | None) -> None:
    if update is None:
        return
    for path in update.paths:
        if path.head in table.key_names:
            raise ValidationException(
                _INVALID + f"Cannot update attribute {path.head}. This attribute is part of the key"
            )


# ------------------------------------------------------------------------------ decisions
# Each maker returns a ``decide`` function for handle.cas and a box that the last call fills
# with (old item, new item) -- the values the write actually applied to.


def _checked(prepared: Prepared, current: bytes | None) -> Item | None:
    """The current item, once it passed the write's condition; raises IntentFound on a
    transaction's intent, CheckFailed when the condition is false."""
    if current is not None and current[:1] == INTENT_MARK:
        raise IntentFound(current)
    old = decode_item(current) if current is not None else None
    if prepared.condition is not None and not evaluate(prepared.condition, old or {}):
        raise CheckFailed(old, current)
    return old


def put_decision(prepared: Prepared, data: bytes | None) -> tuple[Any, list[Item | None]]:
    """The ``cas`` decision of a conditional put (``data``) or delete (``None``): check the
    condition on the current item, remember it in the box, write ``data``."""
    box: list[Item | None] = [None]

    def decide(current: bytes | None) -> bytes | None:
        old = _checked(prepared, current)
        box[0] = old
        return data

    return decide, box


async def plain_write(ctx: ApiContext, bucket: str, key: bytes, data: bytes | None) -> None:
    """An unconditional put or delete: one log write, unless the item holds a transaction's
    intent; then the intent is settled first, or the write fails with
    TransactionConflictException while that transaction is live (as DynamoDB's does)."""
    try:
        await ctx.handle.write(bucket, key, data, refuse_prefix=INTENT_MARK)
    except WriteRefused:
        await write_cas(ctx, bucket, key, put_decision(Prepared(), data)[0])


def update_decision(
    table: TableInfo, prepared: Prepared, key: Item
) -> tuple[Any, list[Item | None]]:
    box: list[Item | None] = [None, None]
    update = prepared.update

    def decide(current: bytes | None) -> bytes | None:
        old = _checked(prepared, current)
        box[0], box[1] = old, None
        if old is None and update is not None and not (update.set_actions or update.add_actions):
            # Only REMOVE / DELETE actions on a missing item: nothing to create.
            raise _NoItem()
        base = old if old is not None else dict(key)
        try:
            new = apply_update(update, base) if update is not None else dict(base)
            check_item_size(new, UPDATE_TOO_LARGE)
            table.validate_index_keys(new)
        except DynamoDBError as exc:
            raise Refused(prepared.update_error(exc)) from None
        box[1] = new
        return encode_item(new)

    return decide, box


class _NoItem(CheckFailed):
    """An update that would create an item holding only its key from REMOVE/DELETE actions."""

    def __init__(self) -> None:
        super().__init__(None)


# ------------------------------------------------------------------------------ operations


@dataclass(frozen=True, slots=True)
class _WriteAsk:
    """What a PutItem, DeleteItem or UpdateItem asks for besides the write itself."""

    returns: str  # ReturnValues
    return_old: bool  # ReturnValuesOnConditionCheckFailure=ALL_OLD
    prepared: Prepared
    mode: str  # ReturnConsumedCapacity
    collection: bool  # ReturnItemCollectionMetrics=SIZE


def _write_ask(params: Params, table: TableInfo, allowed: tuple[str, ...], *,
               update: bool = False) -> _WriteAsk:
    """The write's parameters, checked in the order DynamoDB reports their errors."""
    returns = return_values(params, allowed)
    return_old = on_failure(params)
    prepared = prepare_expressions(params, condition=True, update=update)
    if update:
        check_update_keys(table, prepared.update)
    return _WriteAsk(returns, return_old, prepared, capacity_mode(params),
                     item_collections.wanted(params))


def _blind(ask: _WriteAsk) -> bool:
    """Whether a put or delete may be written without reading the item it replaces: no
    condition, no old item to return, and no consumed capacity to report (which DynamoDB
    measures on the larger of the old and new item, and on the index entries the old one had)."""
    return ask.prepared.condition is None and ask.returns == "NONE" and ask.mode == "NONE"


async def _answer(ctx: ApiContext, table: TableInfo, ask: _WriteAsk, out: dict[str, Any],
                  key: Item, size: int, old: Item | None, new: Item | None) -> dict[str, Any]:
    """``out`` with the write's ConsumedCapacity and ItemCollectionMetrics, when asked for."""
    consumed = write_consumed(table, ask.mode, size, old, new)
    if consumed is not None:
        out["ConsumedCapacity"] = consumed
    if ask.collection:
        found = await item_collections.metrics(ctx, table, key)
        if found is not None:
            out["ItemCollectionMetrics"] = found
    return out


async def _conditional_write(ctx: ApiContext, table: TableInfo, key: bytes, ask: _WriteAsk,
                             data: bytes | None, new: Item | None) -> Item | None:
    """A put (``data``, the item ``new``) or delete (``None``) through ``cas``, checked against
    the condition, its indexes then brought up to date; the item it replaced."""
    decide, box = put_decision(ask.prepared, data)
    try:
        await large_writes.write_cas(ctx, table.bucket, key, decide, large_request=False,
                                     keep=box)
    except CheckFailed as failed:
        raise await condition_failed(failed, ask.return_old) from None
    old = box[0]
    await maintain(ctx, table, key, old, new)
    return old


async def put_item(ctx: ApiContext, params: Params) -> dict[str, Any]:
    table = await ctx.table(params)
    item = item_from_wire(params.req_mapping("Item"))
    table.validate_item(item)
    size = check_item_size(item)
    ask = _write_ask(params, table, ("NONE", "ALL_OLD"))
    key = table.storage_key(item)
    data = encode_item(item)
    out: dict[str, Any] = {}
    old: Item | None = None
    if _blind(ask):
        await plain_write(ctx, table.bucket, key, data)
        await maintain(ctx, table, key, UNKNOWN, item)
    else:
        old = await _conditional_write(ctx, table, key, ask, data, item)
        if old is not None:
            # DynamoDB charges the larger of the item replaced and the new one.
            size = max(size, item_size(old))
            if ask.returns == "ALL_OLD":
                out["Attributes"] = item_to_wire(old)
    return await _answer(ctx, table, ask, out, item, size, old, item)


async def get_item(ctx: ApiContext, params: Params) -> dict[str, Any]:
    # The projection is checked before the table is looked up and the key matched, as DynamoDB.
    prepared = prepare_expressions(params, projection=True)
    table = await ctx.table(params)
    _, key = table.key_from_wire(params.req_mapping("Key"))
    consistent = params.boolean("ConsistentRead")
    mode = capacity_mode(params)
    raw = await ctx.handle.read(table.bucket, key, consistent=consistent)
    if raw is not None and raw[:1] == INTENT_MARK:
        raw = await resolve(ctx, table.bucket, key, raw, consistent=consistent)
    out: dict[str, Any] = {}
    size = 0
    if raw is not None:
        out["Item"], size = await large_reads.get_answer(raw, prepared.projection, mode != "NONE")
    consumed = read_consumed(table, None, mode, read_units(size, consistent))
    if consumed is not None:
        out["ConsumedCapacity"] = consumed
    return out


async def delete_item(ctx: ApiContext, params: Params) -> dict[str, Any]:
    table = await ctx.table(params)
    key_item, key = table.key_from_wire(params.req_mapping("Key"))
    ask = _write_ask(params, table, ("NONE", "ALL_OLD"))
    out: dict[str, Any] = {}
    size = 0
    old: Item | None = None
    if _blind(ask):
        await plain_write(ctx, table.bucket, key, None)
    else:
        old = await _conditional_write(ctx, table, key, ask, None, None)
        if old is not None:
            size = item_size(old)
            if ask.returns == "ALL_OLD":
                out["Attributes"] = item_to_wire(old)
    return await _answer(ctx, table, ask, out, key_item, size, old, None)


async def _update_attributes(returns: str, prepared: Prepared, old: Item | None, new: Item | None,
                       stored: tuple[bytes | None, bytes | None]) -> Any:
    """UpdateItem's ``Attributes``, or None. ALL_OLD and ALL_NEW are the stored bytes of the
    item before and after (``stored``), sent as they are."""
    if returns in ("ALL_OLD", "ALL_NEW"):
        item, raw = (old, stored[0]) if returns == "ALL_OLD" else (new, stored[1])
        if not item:
            return None
        return RawJson(raw) if raw is not None and raw[:1] != INTENT_MARK else item_to_wire(item)
    if returns in ("UPDATED_OLD", "UPDATED_NEW") and prepared.update is not None:
        source = old if returns == "UPDATED_OLD" else new
        if source is not None:
            if any(raw is not None and len(raw) > large_reads.LARGE_VALUE for raw in stored):
                return await large_reads.in_worker(_updated, source, prepared.update.paths)
            return _updated(source, prepared.update.paths)
    return None


def _updated(source: Item, paths: Any) -> dict[str, Any] | None:
    """The wire form of the attributes of ``source`` an update named, or None if none."""
    attributes = project(source, paths)
    return item_to_wire(attributes) if attributes else None


async def update_item(ctx: ApiContext, params: Params) -> dict[str, Any]:
    table = await ctx.table(params)
    key_item, key = table.key_from_wire(params.req_mapping("Key"))
    ask = _write_ask(params, table, RETURN_VALUES, update=True)
    decide, box = update_decision(table, ask.prepared, key_item)
    old: Item | None
    new: Item | None
    stored: tuple[bytes | None, bytes | None] = (None, None)
    try:
        stored = await large_writes.write_cas(ctx, table.bucket, key, decide,
                                              large_request=params.large, keep=box)
        old, new = box[0], box[1]
        await maintain(ctx, table, key, old, new)
    except _NoItem:
        old, new = None, None
    except CheckFailed as failed:
        raise await condition_failed(failed, ask.return_old) from None
    except Refused as refused:
        raise refused.error from None
    out: dict[str, Any] = {}
    attributes = await _update_attributes(ask.returns, ask.prepared, old, new, stored)
    if attributes is not None:
        out["Attributes"] = attributes
    size = await large_writes.item_sizes(old, new, stored)
    return await _answer(ctx, table, ask, out, key_item, size, old, new)
