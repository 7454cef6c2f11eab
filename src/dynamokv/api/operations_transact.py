"""Transactions: TransactWriteItems and TransactGetItems over per-item ``cas``.

Owns: request validation (100 items, one operation per item), ClientRequestToken idempotency,
the two-phase execution below, CancellationReasons, and the snapshot read of TransactGetItems.
May import: stdlib, ``orjson``, :mod:`dynamokv.errors`, :mod:`dynamokv.api.attributes`,
:mod:`dynamokv.api.catalog`, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.expressions`,
:mod:`dynamokv.api.handle`, :mod:`dynamokv.api.items`, :mod:`dynamokv.api.operations_common`,
:mod:`dynamokv.api.operations_items`, :mod:`dynamokv.api.operations_batch`.

TransactWriteItems without a transaction protocol in the handle (see docs/dynamodb-api.md,
"Transactions", for what this does and does not guarantee):

1. lock every target item against other transactions *of this node* (a conflict cancels with
   TransactionConflict, as DynamoDB does);
2. read every item linearizably and evaluate every condition and update; if any fails,
   cancel with per-item CancellationReasons and write nothing;
3. apply every write with a ``cas`` that only succeeds if the item is still byte-for-byte what
   step 2 read; if any write meets a changed item, undo the writes already applied (each undo
   is itself a ``cas`` that only restores an item still holding our write) and cancel.

TransactGetItems reads all items twice and answers only when both reads agree (a "double
collect"), retrying a few times, so it never returns a mix of before and after a write that
completed between its reads.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from dynamokv.api.attributes import Item, check_item_size, item_from_wire, item_size, item_to_wire
from dynamokv.api.catalog import TableInfo
from dynamokv.api.errors import (
    DynamoDBError,
    IdempotentParameterMismatchException,
    TransactionCanceledException,
    TransactionInProgressException,
    ValidationException,
)
from dynamokv.api.expressions import apply_update, evaluate, project
from dynamokv.api.handle import Abort
from dynamokv.api.items import decode_item, encode_item
from dynamokv.api.operations_batch import bounded_gather
from dynamokv.api.operations_common import (
    ApiContext,
    Params,
    Prepared,
    TokenEntry,
    capacity,
    capacity_mode,
    one_error,
    prepare_expressions,
    read_units,
    write_units,
)
from dynamokv.api.operations_items import UPDATE_TOO_LARGE, check_update_keys, on_failure

MAX_ITEMS = 100
KINDS = ("ConditionCheck", "Put", "Delete", "Update")
SAME_ITEM = "Transaction request cannot include multiple operations on one item"
GET_ATTEMPTS = 4


@dataclass
class _Op:
    kind: str
    table: TableInfo
    key: bytes
    prepared: Prepared
    key_item: Item | None = None
    data: bytes | None = None  # Put's item
    return_old: bool = False
    # Filled by the read phase:
    old_raw: bytes | None = None
    new_raw: bytes | None = None
    writes: bool = False
    size: int = 0


def _items(params: Params, name: str) -> list[Any]:
    raw = params.sequence(name, required=True)
    assert raw is not None
    if not 1 <= len(raw) <= MAX_ITEMS:
        bound = f"less than or equal to {MAX_ITEMS}" if raw else "greater than or equal to 1"
        raise one_error(
            f"Value at '{params.label(name)}' failed to satisfy constraint: Member must have "
            f"length {bound}"
        )
    return raw


async def _prepare_op(ctx: ApiContext, element: Any, position: int) -> _Op:
    outer = Params(element, f"transactItems.{position}.member.")
    present = [kind for kind in KINDS if outer.has(kind)]
    if len(present) != 1:
        raise ValidationException(
            "TransactItems can only contain one of Check, Put, Update or Delete"
        )
    kind = present[0]
    p = outer.nested(kind)
    assert p is not None
    table = await ctx.table(p)
    return_old = on_failure(p)
    if kind == "Put":
        item = item_from_wire(p.req_mapping("Item"))
        table.validate_item(item)
        size = check_item_size(item)
        prepared = prepare_expressions(p, condition=True)
        op = _Op(kind, table, table.storage_key(item), prepared, data=encode_item(item),
                 return_old=return_old, size=size)
        return op
    key_item, key = table.key_from_wire(p.req_mapping("Key"))
    prepared = prepare_expressions(p, condition=True, update=kind == "Update")
    if kind == "ConditionCheck" and prepared.condition is None:
        raise p.missing("ConditionExpression")
    if kind == "Update":
        if prepared.update is None:
            raise p.missing("UpdateExpression")
        check_update_keys(table, prepared.update)
    return _Op(kind, table, key, prepared, key_item=key_item, return_old=return_old)


def _fingerprint(body: dict[str, Any]) -> bytes:
    rest = {k: v for k, v in body.items() if k not in ("ClientRequestToken",
                                                        "ReturnConsumedCapacity")}
    return hashlib.sha256(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)).digest()


def _expire_tokens(ctx: ApiContext) -> None:
    now = ctx.clock()
    stale = [t for t, e in ctx.tokens.items() if now - e.created > ctx.token_ttl]
    for token in stale:
        del ctx.tokens[token]


def _evaluate(op: _Op) -> dict[str, Any] | None:
    """Decide one operation on the value read; None if fine, else its cancellation reason."""
    old = decode_item(op.old_raw) if op.old_raw is not None else None
    condition = op.prepared.condition
    if condition is not None and not evaluate(condition, old or {}):
        reason: dict[str, Any] = {
            "Code": "ConditionalCheckFailed",
            "Message": "The conditional request failed",
        }
        if op.return_old and old is not None:
            reason["Item"] = item_to_wire(old)
        return reason
    if op.kind == "ConditionCheck":
        op.size = item_size(old) if old else 0
        return None
    if op.kind == "Put":
        op.new_raw, op.writes = op.data, True
        return None
    if op.kind == "Delete":
        op.new_raw, op.writes = None, old is not None
        op.size = item_size(old) if old else 0
        return None
    update = op.prepared.update
    assert update is not None and op.key_item is not None
    if old is None and not (update.set_actions or update.add_actions):
        return None  # nothing to create
    try:
        new = apply_update(update, old if old is not None else dict(op.key_item))
        op.size = check_item_size(new, UPDATE_TOO_LARGE)
        op.table.validate_index_keys(new)
    except DynamoDBError as exc:
        return {"Code": "ValidationError", "Message": exc.message}
    op.new_raw, op.writes = encode_item(new), True
    return None


class _Changed(Abort):
    pass


def _swap(expected: bytes | None, new: bytes | None) -> Callable[[bytes | None], bytes | None]:
    def decide(current: bytes | None) -> bytes | None:
        if current != expected:
            raise _Changed()
        return new

    return decide


def _cas(ctx: ApiContext, op: _Op, expected: bytes | None,
         new: bytes | None) -> Callable[[], Awaitable[tuple[bytes | None, bytes | None]]]:
    def call() -> Awaitable[tuple[bytes | None, bytes | None]]:
        return ctx.handle.cas(op.table.bucket, op.key, _swap(expected, new))

    return call


def _cancel(ops: list[_Op], reasons: dict[int, dict[str, Any]]) -> TransactionCanceledException:
    return TransactionCanceledException(
        [reasons.get(i, {"Code": "None"}) for i in range(len(ops))]
    )


async def transact_write_items(ctx: ApiContext, params: Params) -> dict[str, Any]:
    raw_items = _items(params, "TransactItems")
    token = params.string("ClientRequestToken")
    if token is not None and not 1 <= len(token) <= 36:
        raise one_error(
            f"Value '{token}' at 'clientRequestToken' failed to satisfy constraint: Member must "
            "have length less than or equal to 36"
        )
    mode = capacity_mode(params)
    params.enum("ReturnItemCollectionMetrics", ("SIZE", "NONE"), "NONE")
    ops = [await _prepare_op(ctx, element, i) for i, element in enumerate(raw_items, 1)]
    targets = [(op.table.bucket, op.key) for op in ops]
    if len(set(targets)) != len(targets):
        raise ValidationException(SAME_ITEM)

    entry: TokenEntry | None = None
    if token is not None:
        _expire_tokens(ctx)
        fingerprint = _fingerprint(params.body)
        known = ctx.tokens.get(token)
        if known is not None:
            if known.fingerprint != fingerprint:
                raise IdempotentParameterMismatchException(
                    "Request token " + token + " was used in a different request"
                )
            if known.response is None:
                raise TransactionInProgressException(
                    "Another transaction with the same client request token is in progress"
                )
            return _with_capacity(dict(known.response), ops, mode)
        entry = ctx.tokens[token] = TokenEntry(fingerprint, ctx.clock())
    try:
        response = await _run_write(ctx, ops)
    except BaseException:
        if token is not None:
            ctx.tokens.pop(token, None)
        raise
    if entry is not None:
        entry.response = response
        entry.done.set()
    return _with_capacity(dict(response), ops, mode)


def _with_capacity(response: dict[str, Any], ops: list[_Op], mode: str) -> dict[str, Any]:
    if mode == "NONE":
        return response
    units: dict[str, float] = {}
    for op in ops:
        # Transactional requests cost two units per unit of work, as in DynamoDB.
        cost = 2 * (write_units(op.size) if op.kind != "ConditionCheck"
                    else read_units(op.size, True))
        units[op.table.name] = units.get(op.table.name, 0.0) + cost
    response["ConsumedCapacity"] = [
        capacity(name, value, mode, read=False) for name, value in units.items()
    ]
    return response


async def _run_write(ctx: ApiContext, ops: list[_Op]) -> dict[str, Any]:
    targets = [(op.table.bucket, op.key) for op in ops]
    busy = {i: {"Code": "TransactionConflict",
                "Message": "Transaction is ongoing for the item"}
            for i, target in enumerate(targets) if target in ctx.locked}
    if busy:
        raise _cancel(ops, busy)
    ctx.locked.update(targets)
    try:
        return await _locked_write(ctx, ops)
    finally:
        ctx.locked.difference_update(targets)


async def _locked_write(ctx: ApiContext, ops: list[_Op]) -> dict[str, Any]:
    # Phase 1: read everything linearizably, then decide everything.
    reads = await asyncio.gather(
        *(ctx.handle.read(op.table.bucket, op.key, consistent=True) for op in ops)
    )
    for op, raw in zip(ops, reads, strict=True):
        op.old_raw = raw
    reasons: dict[int, dict[str, Any]] = {}
    for i, op in enumerate(ops):
        reason = _evaluate(op)
        if reason is not None:
            reasons[i] = reason
    if reasons:
        raise _cancel(ops, reasons)

    # Phase 2: apply, each write conditional on the item being unchanged since phase 1.
    writing = [op for op in ops if op.writes]
    results = await bounded_gather([_cas(ctx, op, op.old_raw, op.new_raw) for op in writing])
    failed = [i for i, r in enumerate(results) if isinstance(r, BaseException)]
    if not failed:
        return {}
    applied = [op for op, r in zip(writing, results, strict=True)
               if not isinstance(r, BaseException)]
    # Undo what was applied; an item someone overwrote since is left as they wrote it.
    await bounded_gather([_cas(ctx, op, op.new_raw, op.old_raw) for op in applied])
    errors = [r for r in results if isinstance(r, BaseException)]
    other = next((e for e in errors if not isinstance(e, _Changed)), None)
    if other is not None:
        raise other
    conflicted = {id(writing[i]) for i in failed}
    reasons = {
        i: {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
        for i, op in enumerate(ops) if id(op) in conflicted
    }
    raise _cancel(ops, reasons)


# ------------------------------------------------------------------------------ reads


@dataclass
class _Get:
    table: TableInfo
    key: bytes
    prepared: Prepared


async def transact_get_items(ctx: ApiContext, params: Params) -> dict[str, Any]:
    raw_items = _items(params, "TransactItems")
    mode = capacity_mode(params)
    gets: list[_Get] = []
    for i, element in enumerate(raw_items, 1):
        outer = Params(element, f"transactItems.{i}.member.")
        p = outer.nested("Get", required=True)
        assert p is not None
        table = await ctx.table(p)
        _, key = table.key_from_wire(p.req_mapping("Key"))
        gets.append(_Get(table, key, prepare_expressions(p, projection=True)))
    targets = [(g.table.bucket, g.key) for g in gets]
    if len(set(targets)) != len(targets):
        raise ValidationException(SAME_ITEM)

    async def collect() -> list[bytes | None]:
        return list(await asyncio.gather(
            *(ctx.handle.read(g.table.bucket, g.key, consistent=True) for g in gets)
        ))

    first = await collect()
    for _ in range(GET_ATTEMPTS):
        second = await collect()
        if second == first:
            break
        first = second
    else:
        changed = {i: {"Code": "TransactionConflict",
                       "Message": "Transaction is ongoing for the item"}
                   for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b}
        raise TransactionCanceledException(
            [changed.get(i, {"Code": "None"}) for i in range(len(gets))]
        )
    responses: list[dict[str, Any]] = []
    units: dict[str, float] = {}
    for get, raw in zip(gets, first, strict=True):
        size = 0
        if raw is None:
            responses.append({})
        else:
            item = decode_item(raw)
            size = item_size(item)
            if get.prepared.projection is not None:
                item = project(item, get.prepared.projection)
            responses.append({"Item": item_to_wire(item)})
        units[get.table.name] = units.get(get.table.name, 0.0) + 2 * read_units(size, True)
    out: dict[str, Any] = {"Responses": responses}
    if mode != "NONE":
        out["ConsumedCapacity"] = [
            capacity(name, value, mode, read=True) for name, value in units.items()
        ]
    return out
