"""Transactions: TransactWriteItems and TransactGetItems over per-item ``cas``.

Owns: request validation (100 items, 4 MB, one operation per item), the coordinator of a
TransactWriteItems (record, prepare, commit, apply), ClientRequestToken idempotency,
CancellationReasons, and the snapshot read of TransactGetItems.
May import: stdlib, ``orjson``, :mod:`dynamokv.errors`, :mod:`dynamokv.api.attributes`,
:mod:`dynamokv.api.schema.catalog`, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.expressions`,
:mod:`dynamokv.api.handle`, :mod:`dynamokv.api.indexes`, :mod:`dynamokv.api.layout.items`,
:mod:`dynamokv.api.operations.common`, :mod:`dynamokv.api.operations.items`,
:mod:`dynamokv.api.operations.batch`, :mod:`dynamokv.api.transactions.intents`,
:mod:`dynamokv.api.operations.item_collections`.

TransactWriteItems is a two-phase commit whose only shared state is per-key ``cas`` (records
and intents: :mod:`dynamokv.api.transactions.intents`; the stored form of an intent:
:mod:`dynamokv.api.layout.items`):

0. a record ``PENDING`` (id, creation time, the items) is created in ``~txn`` -- with a
   ClientRequestToken the record is named after the token and claiming it is the idempotency
   check;
1. prepare, one item at a time in (table, key) order: a ``cas`` evaluates the item's condition
   and update on its committed value and stores an intent (committed value + transaction id +
   what the transaction leaves). A failed condition, or an item held by a live transaction,
   cancels: the record is ABORTED, the intents written so far are rolled back. An intent of a
   decided or abandoned transaction is settled first;
2. commit: one ``cas`` turns the record from PENDING into COMMITTED -- the transaction's single
   point of decision (if someone aborted it meanwhile, it is rolled back and cancelled);
3. apply: every item's intent is replaced by its new value (each a ``cas`` that only acts on
   this transaction's intent), then the record is deleted (or, for a token, marked done and
   kept 10 minutes). Anyone who meets an intent of a COMMITTED transaction finishes this step,
   so a coordinator dying after step 2 leaves a transaction that is committed all the same.

TransactGetItems settles the intents it meets, then reads all items twice (linearizably); it
answers when both reads are equal and free of intents, which makes the answer a snapshot in
which every transaction is wholly applied or not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson

from dynamokv.api.attributes import Item, check_item_size, item_from_wire, item_size, item_to_wire
from dynamokv.api.errors import (
    DynamoDBError,
    IdempotentParameterMismatchException,
    TransactionCanceledException,
    TransactionInProgressException,
    ValidationException,
)
from dynamokv.api.expressions import apply_update, evaluate, project
from dynamokv.api.handle import Abort, Decide
from dynamokv.api.indexes.node import maintain_many
from dynamokv.api.layout.items import (
    DELETE,
    INTENT_MARK,
    KEEP,
    WRITE,
    Intent,
    committed_value,
    decode_intent,
    decode_item,
    encode_intent,
    encode_item,
)
from dynamokv.api.operations import item_collections
from dynamokv.api.operations.batch import bounded_gather
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
)
from dynamokv.api.operations.items import UPDATE_TOO_LARGE, check_update_keys, on_failure
from dynamokv.api.schema.catalog import KEY_MISMATCH, TableInfo
from dynamokv.api.transactions.intents import (
    ABORTED,
    ATTEMPTS,
    COMMITTED,
    CONFLICT_MESSAGE,
    PENDING,
    PENDING_TIMEOUT,
    TXN_BUCKET,
    Record,
    apply_outcome,
    close_record,
    create_record,
    decide_fate,
    finish,
    maybe_sweep,
    plain_record,
    record_key,
    stage,
    token_record,
    txn_state,
)

log = logging.getLogger("dynamokv.api")

MAX_ITEMS = 100
MAX_BYTES = 4 * 1024 * 1024
KINDS = ("ConditionCheck", "Put", "Delete", "Update")
SAME_ITEM = "Transaction request cannot include multiple operations on one item"
# What the 4 MB refusal says is pinned by its public tests only as "...size cannot exceed...".
TOO_LARGE = "Transaction payload size cannot exceed 4 MB"
GET_ATTEMPTS = 4


def _conflict() -> dict[str, Any]:
    return {"Code": "TransactionConflict", "Message": CONFLICT_MESSAGE}


@dataclass
class _Op:
    index: int  # position in the request
    kind: str
    table: TableInfo
    key: bytes
    prepared: Prepared
    key_item: Item | None = None
    data: bytes | None = None  # Put's item
    return_old: bool = False
    # Decided by the prepare decision (deterministic in the committed value it saw):
    effect: str = KEEP
    new_raw: bytes | None = None
    old_raw: bytes | None = None  # the committed value the decision saw (index upkeep)
    size: int = 0
    attempted: bool = False  # a prepare cas was sent (our intent may be there)
    held: bool = False  # our intent is there
    invalid: dict[str, Any] | None = None  # a key of the wrong type: the cancellation reason


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


async def _prepare_op(ctx: ApiContext, element: Any, position: int) -> tuple[_Op, int]:
    """One request item, validated; and its share of the 4 MB limit."""
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
    values = p.mapping("ExpressionAttributeValues")
    extra = len(orjson.dumps(values)) if values else 0
    wire = p.req_mapping("Item" if kind == "Put" else "Key")
    mismatch = _key_type_mismatch(table, wire, kind == "Put")
    if mismatch is not None:
        # DynamoDB cancels the transaction with this item's reason (ValidationError).
        op = _Op(position - 1, kind, table, b"\x00invalid%d" % position, Prepared(),
                 invalid={"Code": "ValidationError", "Message": mismatch})
        return op, 0
    if kind == "Put":
        item = item_from_wire(wire)
        table.validate_item(item)
        size = check_item_size(item)
        prepared = prepare_expressions(p, condition=True, legacy_params=False)
        op = _Op(position - 1, kind, table, table.storage_key(item), prepared,
                 data=encode_item(item), return_old=return_old, size=size)
        return op, size + extra
    key_item, key = table.key_from_wire(wire)
    prepared = prepare_expressions(
        p, condition=True, update=kind == "Update", legacy_params=False
    )
    if kind == "ConditionCheck" and prepared.condition is None:
        raise p.missing("ConditionExpression")
    if kind == "Update":
        if prepared.update is None:
            raise p.missing("UpdateExpression")
        check_update_keys(table, prepared.update)
    op = _Op(position - 1, kind, table, key, prepared, key_item=key_item, return_old=return_old)
    return op, item_size(key_item) + extra


def _key_type_mismatch(table: TableInfo, wire: Any, whole_item: bool) -> str | None:
    """The message for a request item whose key attributes are all there but one has another
    type than the table's (None: no such mismatch; other key errors are raised as usual)."""
    if not isinstance(wire, dict) or any(name not in wire for name in table.key_names):
        return None
    for name in table.key_names:
        value = wire[name]
        actual = next(iter(value), None) if isinstance(value, dict) and len(value) == 1 else None
        if actual is not None and actual != table.types[name]:
            if whole_item:
                return (f"One or more parameter values were invalid: Type mismatch for key "
                        f"{name} expected: {table.types[name]} actual: {actual}")
            return KEY_MISMATCH
    return None


def _fingerprint(body: dict[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k not in ("ClientRequestToken",
                                                        "ReturnConsumedCapacity")}
    return hashlib.sha256(orjson.dumps(rest, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _evaluate(op: _Op, committed: bytes | None) -> dict[str, Any] | None:
    """Decide one operation on the committed value; None if fine (``op.effect``/``new_raw``
    set), else its cancellation reason. Pure in ``committed``: may run more than once."""
    old = decode_item(committed) if committed is not None else None
    op.effect, op.new_raw = KEEP, None
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
        op.effect, op.new_raw = WRITE, op.data
        return None
    if op.kind == "Delete":
        op.effect = DELETE if old is not None else KEEP
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
    op.effect, op.new_raw = WRITE, encode_item(new)
    return None


def _cancel(ops: list[_Op], reasons: dict[int, dict[str, Any]]) -> TransactionCanceledException:
    return TransactionCanceledException(
        [reasons.get(i, {"Code": "None"}) for i in range(len(ops))]
    )


# ------------------------------------------------------------------------------ writes


async def transact_write_items(ctx: ApiContext, params: Params) -> dict[str, Any]:
    raw_items = _items(params, "TransactItems")
    token = params.string("ClientRequestToken")
    if token is not None and not 1 <= len(token) <= 36:
        raise one_error(
            f"Value '{token}' at 'clientRequestToken' failed to satisfy constraint: Member must "
            "have length less than or equal to 36"
        )
    mode = capacity_mode(params)
    collection = item_collections.wanted(params)
    ops: list[_Op] = []
    total = 0
    for i, element in enumerate(raw_items, 1):
        op, size = await _prepare_op(ctx, element, i)
        ops.append(op)
        total += size
    targets = [(op.table.bucket, op.key) for op in ops]
    if len(set(targets)) != len(targets):
        raise ValidationException(SAME_ITEM)
    # DynamoDB stops validating at the first invalid item: only it gets a ValidationError.
    invalid = next(({op.index: op.invalid} for op in ops if op.invalid is not None), None)
    if invalid:
        raise _cancel(ops, invalid)
    if total > MAX_BYTES:
        raise ValidationException(TOO_LARGE)
    maybe_sweep(ctx)
    digest = _fingerprint(params.body) if token is not None else None
    await _Transaction(ctx, ops, token, digest).run()
    out = _with_capacity({}, ops, mode)
    if collection:
        metrics = await item_collections.per_table(ctx, _written(ops))
        if metrics:
            out["ItemCollectionMetrics"] = metrics
    return out


def _written(ops: list[_Op]) -> list[tuple[TableInfo, Item]]:
    """The tables and keys (or items) of the operations that write."""
    out: list[tuple[TableInfo, Item]] = []
    for op in ops:
        if op.kind == "ConditionCheck":
            continue
        if op.key_item is not None:
            out.append((op.table, op.key_item))
        elif op.data is not None:
            out.append((op.table, decode_item(op.data)))
    return out


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


class _Foreign(Abort):
    """The item holds another transaction's intent."""

    def __init__(self, current: bytes) -> None:
        super().__init__("held by another transaction")
        self.current = current


class _Refused(Abort):
    def __init__(self, reason: dict[str, Any]) -> None:
        super().__init__(reason.get("Code", "refused"))
        self.reason = reason


class _Existing(Abort):
    def __init__(self, record: Record) -> None:
        super().__init__("token in use")
        self.record = record


class _Transaction:
    """The coordinator of one TransactWriteItems."""

    def __init__(
        self, ctx: ApiContext, ops: list[_Op], token: str | None, digest: str | None
    ) -> None:
        self.ctx = ctx
        self.ops = ops
        self.token = token
        self.txn = ctx.ids().hex
        self.name = token_record(token) if token is not None else plain_record(self.txn)
        self.created = ctx.clock()
        self.record = Record(self.txn, PENDING, self.created,
                             [(op.table.bucket, op.key) for op in ops], digest)

    async def run(self) -> None:
        ctx = self.ctx
        if self.token is not None:
            if await self._claim_token():
                return  # an earlier request with this token committed: same outcome
        else:
            await create_record(ctx, self.name, self.record)
        stage("created")
        try:
            reasons = await self._prepare()
        except Exception:
            await self._abandon()
            raise
        if reasons:
            await self._abandon()
            raise _cancel(self.ops, reasons)
        stage("prepared")
        try:
            state = await decide_fate(ctx, self.name, self.txn, COMMITTED)
        except Exception as error:
            # The commit may or may not have landed: settle it ourselves if we can.
            try:
                state = await decide_fate(ctx, self.name, self.txn, ABORTED)
            except Exception:
                raise error from None
            if state != COMMITTED:
                await self._abandon(decided=True)
                raise error from None
        if state != COMMITTED:
            # Someone found us PENDING for too long and aborted us.
            await self._abandon(decided=True)
            raise _cancel(self.ops, {op.index: _conflict() for op in self.ops})
        stage("committed")
        await self._apply()
        await self._maintain_indexes()

    # ---- step 0: the record, or the token's record -------------------------------------------

    async def _claim_token(self) -> bool:
        """Create the token's record; True if an earlier request with this token (and the same
        parameters) committed, so this one is answered with its success."""
        ctx, name = self.ctx, self.name
        assert self.token is not None
        data = self.record.encode()
        ttl = ctx.token_ttl

        def decide(current: bytes | None) -> bytes | None:
            if current is None:
                return data
            old = Record.decode(current)
            if old.done and ctx.clock() - old.created >= ttl:
                return data  # the token's 10 minutes are over: a new request
            raise _Existing(old)

        for _ in range(ATTEMPTS):
            try:
                await ctx.handle.cas(TXN_BUCKET, record_key(name), decide)
                return False
            except _Existing as existing:
                old = existing.record
            age = ctx.clock() - old.created
            if age < ttl:
                if old.state != ABORTED and old.digest != self.record.digest:
                    raise IdempotentParameterMismatchException(
                        f"Request token {self.token} was used in a different request"
                    )
                if old.state == COMMITTED:
                    if not old.done:
                        await finish(ctx, name, old)
                    return True
                if old.state == PENDING and age < PENDING_TIMEOUT:
                    raise TransactionInProgressException(
                        "Transaction from previous request is still in progress"
                    )
            # Aborted, abandoned or expired: finish it (which frees or closes the record).
            await finish(ctx, name, old)
        raise TransactionInProgressException(
            "Transaction from previous request is still in progress"
        )

    # ---- step 1: prepare ----------------------------------------------------------------------

    def _decision(self, op: _Op) -> Decide:
        txn, name, created = self.txn, self.name, self.created

        def decide(current: bytes | None) -> bytes | None:
            committed = current
            if current is not None and current[:1] == INTENT_MARK:
                intent = decode_intent(current)
                if intent.txn != txn:
                    raise _Foreign(current)
                committed = intent.committed  # ours already (a retried round)
            reason = _evaluate(op, committed)
            if reason is not None:
                raise _Refused(reason)
            op.old_raw = committed
            new = op.new_raw if op.effect == WRITE else None
            return encode_intent(Intent(txn, name, created, op.effect, committed, new))

        return decide

    async def _prepare(self) -> dict[int, dict[str, Any]]:
        """Hold every item, in (table, key) order; the cancellation reasons if that failed."""
        order = sorted(self.ops, key=lambda op: (op.table.bucket, op.key))
        for position, op in enumerate(order):
            reason = await self._prepare_one(op)
            if reason is not None:
                reasons = {op.index: reason}
                if reason["Code"] != "TransactionConflict":
                    reasons.update(await self._check_rest(order[position + 1:]))
                return reasons
        return {}

    async def _prepare_one(self, op: _Op) -> dict[str, Any] | None:
        ctx = self.ctx
        decide = self._decision(op)
        for _ in range(ATTEMPTS):
            op.attempted = True
            try:
                await ctx.handle.cas(op.table.bucket, op.key, decide)
            except _Refused as refused:
                return refused.reason
            except _Foreign as foreign:
                intent = decode_intent(foreign.current)
                state = await txn_state(ctx, intent.record, intent.txn, exact=False)
                if state == PENDING:
                    return _conflict()
                await apply_outcome(ctx, op.table.bucket, op.key, intent.txn,
                                    state == COMMITTED)
                continue
            op.held = True
            return None
        return _conflict()

    async def _check_rest(self, rest: list[_Op]) -> dict[int, dict[str, Any]]:
        """Conditions of the items not reached, so the cancellation names every failure
        (best effort: read, not held)."""
        if not rest:
            return {}
        ctx = self.ctx
        reads = await asyncio.gather(
            *(ctx.handle.read(op.table.bucket, op.key, consistent=True) for op in rest),
            return_exceptions=True,
        )
        reasons: dict[int, dict[str, Any]] = {}
        for op, raw in zip(rest, reads, strict=True):
            if isinstance(raw, BaseException):
                continue
            reason = _evaluate(op, committed_value(raw) if raw is not None else None)
            if reason is not None:
                reasons[op.index] = reason
        return reasons

    async def _abandon(self, *, decided: bool = False) -> None:
        """Abort (unless already decided), roll back what we hold, drop the record. Best
        effort: whatever fails here is finished by others once the record is old."""
        ctx = self.ctx
        try:
            state = ABORTED if decided else await decide_fate(
                ctx, self.name, self.txn, ABORTED)
            if state == COMMITTED:  # cannot happen: only this coordinator commits
                return
            held = [op for op in self.ops if op.attempted]
            results = await bounded_gather([self._settler(op, False) for op in held])
            if any(isinstance(r, BaseException) for r in results):
                return
            await close_record(ctx, self.name, self.txn, keep=False)
        except Exception:
            log.warning("rolling back transaction %s failed; it is left to others",
                        self.txn, exc_info=True)

    def _settler(self, op: _Op, forward: bool) -> Any:
        def call() -> Any:
            return apply_outcome(self.ctx, op.table.bucket, op.key, self.txn, forward)

        return call

    # ---- step 3: apply ------------------------------------------------------------------------

    async def _maintain_indexes(self) -> None:
        """Queue the global index upkeep of every item the transaction changed (even one whose
        apply failed: its entry is checked against the base item when read)."""
        await maintain_many(self.ctx, (
            (op.table, op.key,
             decode_item(op.old_raw) if op.old_raw is not None else None,
             decode_item(op.new_raw) if op.effect == WRITE and op.new_raw is not None else None)
            for op in self.ops
            if op.effect in (WRITE, DELETE) and op.table.gsis
        ))

    async def _apply(self) -> None:
        """Replace every intent by its value (committed already: failures are left to the
        next reader or writer, and to the sweep), then close the record."""
        results = await bounded_gather([self._settler(op, True) for op in self.ops])
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning("transaction %s committed; %d of its items are left to be applied "
                        "by their next reader or writer: %r", self.txn, len(failed), failed[0])
            return
        self.ctx.spawn(
            close_record(self.ctx, self.name, self.txn, keep=self.token is not None),
            "closing a transaction record",
        )


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
        gets.append(_Get(table, key, prepare_expressions(p, projection=True, legacy_params=False)))
    targets = [(g.table.bucket, g.key) for g in gets]
    if len(set(targets)) != len(targets):
        raise ValidationException(SAME_ITEM)
    values = await _snapshot(ctx, gets)
    responses: list[dict[str, Any]] = []
    units: dict[str, float] = {}
    for get, raw in zip(gets, values, strict=True):
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


async def _snapshot(ctx: ApiContext, gets: list[_Get]) -> list[bytes | None]:
    """The items' committed values at one instant: two linearizable reads of every item that
    agree and hold no intent (intents met are settled first; a live one cancels)."""

    async def collect() -> list[bytes | None]:
        return list(await asyncio.gather(
            *(ctx.handle.read(g.table.bucket, g.key, consistent=True) for g in gets)
        ))

    async def settle(get: _Get, raw: bytes) -> bool:
        """Settle one intent; True if its transaction is live."""
        intent = decode_intent(raw)
        state = await txn_state(ctx, intent.record, intent.txn, exact=False)
        if state == PENDING:
            return True
        await apply_outcome(ctx, get.table.bucket, get.key, intent.txn, state == COMMITTED)
        return False

    suspects: set[int] = set()
    for attempt in range(GET_ATTEMPTS):
        first = await collect()
        held = [i for i, raw in enumerate(first) if raw is not None and raw[:1] == INTENT_MARK]
        if not held:
            second = await collect()
            if second == first:
                return first
            suspects = {i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b}
            continue
        suspects = set(held)
        live = await asyncio.gather(*(settle(gets[i], first[i] or b"") for i in held))
        if any(live) and attempt < GET_ATTEMPTS - 1:
            await asyncio.sleep(0.005 * (attempt + 1))  # a live transaction: give it a moment
    raise TransactionCanceledException(
        [_conflict() if i in suspects else {"Code": "None"} for i in range(len(gets))]
    )
