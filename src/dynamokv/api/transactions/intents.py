"""Transaction records and intents: what every operation needs to meet a transaction.

Owns: the transaction records of the system bucket ``~txn`` (:class:`Record`: state, creation
time, items, request digest; created, decided, finished and deleted by ``cas``), the decision of
a transaction's fate (:func:`decide_fate`: the first ``cas`` that turns a PENDING record into
COMMITTED or ABORTED wins, for ever), resolving an intent found in an item (:func:`txn_state`,
:func:`apply_outcome`, :func:`resolve` for reads, :func:`write_cas` for writes), finishing an
abandoned transaction (:func:`finish`) and the background sweep of old records (:func:`sweep`).
May import: stdlib, ``orjson``, :mod:`dynamokv.api.errors`, :mod:`dynamokv.api.handle`,
:mod:`dynamokv.api.layout.items`, :mod:`dynamokv.api.operations.common`.

Records. A transaction's record is named ``x/<id>`` or, when the request carries a
ClientRequestToken, ``k/<token>`` (so the record is also the token's idempotency entry, and a
retry through any node finds it). Its state goes PENDING -> COMMITTED | ABORTED, each change a
``cas`` that first checks the record still belongs to the same transaction id; nothing ever
changes a decided state. Only the coordinator commits; anyone may abort a PENDING record older
than ``PENDING_TIMEOUT`` (the coordinator is presumed dead). A record whose items are all
settled is deleted (``x/``) or marked done and kept for the token's 10 minutes (``k/``); a
record that is missing, or that now belongs to another transaction id, therefore means "this
transaction is over and none of its intents remain".

Resolving an intent. The record decides: COMMITTED -> roll the item forward (``cas``: only if
the intent is still this transaction's), ABORTED or over -> roll it back, PENDING and young ->
the transaction is live: a read returns the committed value, a write fails with
TransactionConflictException, another transaction cancels with TransactionConflict. Safety
never depends on clocks: the timeout only decides when someone *tries* to abort, and the abort
is a ``cas`` that loses to a commit that got there first.
"""

from __future__ import annotations

import base64
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import orjson

from dynamokv.api.errors import TransactionConflictException
from dynamokv.api.handle import Abort, Decide
from dynamokv.api.layout.items import INTENT_MARK, decode_intent
from dynamokv.api.operations.common import ApiContext

log = logging.getLogger("dynamokv.api")

TXN_BUCKET = "~txn"
PENDING, COMMITTED, ABORTED = "PENDING", "COMMITTED", "ABORTED"
GONE = "GONE"  # no record (or another transaction's): over, no intent of it remains
PENDING_TIMEOUT = 2.0  # seconds before a PENDING transaction is presumed abandoned
ATTEMPTS = 5  # intents resolved in a row by one operation before it gives up
SWEEP_INTERVAL = 60.0  # seconds between two sweeps of ``~txn`` by one node
SWEEP_GRACE = 60.0  # an unfinished record this old is finished by the sweeper
SWEEP_SEGMENTS = 4  # each sweep visits one random segment of ``~txn``
CONFLICT_MESSAGE = "Transaction is ongoing for the item"


# ------------------------------------------------------------------------------ records


@dataclass
class Record:
    txn: str
    state: str
    created: float
    items: list[tuple[str, bytes]] = field(default_factory=list)  # (bucket, key)
    digest: str | None = None  # the request's fingerprint (token records)
    done: bool = False  # every item settled

    def encode(self) -> bytes:
        return orjson.dumps({
            "t": self.txn, "s": self.state, "c": self.created, "h": self.digest,
            "d": self.done,
            "i": [[bucket, base64.b64encode(key).decode("ascii")] for bucket, key in self.items],
        })

    @staticmethod
    def decode(raw: bytes) -> Record:
        data = orjson.loads(raw)
        return Record(
            data["t"], data["s"], data["c"],
            [(bucket, base64.b64decode(key)) for bucket, key in data["i"]],
            data.get("h"), bool(data.get("d")),
        )


def record_key(name: str) -> bytes:
    return name.encode("utf-8")


def token_record(token: str) -> str:
    return "k/" + token


def plain_record(txn: str) -> str:
    return "x/" + txn


class _Mismatch(Abort):
    """The record is missing or belongs to another transaction id."""


class _Decided(Abort):
    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


async def read_record(ctx: ApiContext, name: str) -> Record | None:
    raw = await ctx.handle.read(TXN_BUCKET, record_key(name), consistent=True)
    return None if raw is None else Record.decode(raw)


async def create_record(ctx: ApiContext, name: str, record: Record) -> None:
    data = record.encode()

    def decide(current: bytes | None) -> bytes | None:
        if current is not None:
            raise _Mismatch("record exists")
        return data

    await ctx.handle.cas(TXN_BUCKET, record_key(name), decide)


def _record_of(current: bytes | None, txn: str) -> Record:
    """The stored record, if it is ``txn``'s; else raises _Mismatch."""
    if current is None:
        raise _Mismatch()
    record = Record.decode(current)
    if record.txn != txn:
        raise _Mismatch()
    return record


async def decide_fate(ctx: ApiContext, name: str, txn: str, state: str) -> str:
    """Try to move ``txn``'s record from PENDING to ``state``; the state it ends in (GONE if
    the record is missing or another transaction's)."""

    def decide(current: bytes | None) -> bytes | None:
        record = _record_of(current, txn)
        if record.state != PENDING:
            raise _Decided(record.state)
        return replace(record, state=state).encode()

    try:
        await ctx.handle.cas(TXN_BUCKET, record_key(name), decide)
    except _Mismatch:
        return GONE
    except _Decided as decided:
        return decided.state
    return state


async def close_record(ctx: ApiContext, name: str, txn: str, *, keep: bool) -> None:
    """Every item of ``txn`` is settled: keep its record marked done (a token's outcome) or
    delete it."""

    def decide(current: bytes | None) -> bytes | None:
        record = _record_of(current, txn)
        return replace(record, done=True).encode() if keep else None

    try:
        await ctx.handle.cas(TXN_BUCKET, record_key(name), decide)
    except _Mismatch:
        pass


# ------------------------------------------------------------------------------ intents


class IntentFound(Abort):
    """Raised by a write's ``cas`` decision that met another transaction's intent."""

    def __init__(self, current: bytes) -> None:
        super().__init__("transaction intent")
        self.current = current


class _NotOurs(Abort):
    def __init__(self, current: bytes | None) -> None:
        super().__init__("intent gone")
        self.current = current


def _settle_decision(txn: str, forward: bool) -> Decide:
    def decide(current: bytes | None) -> bytes | None:
        if current is None or current[:1] != INTENT_MARK:
            raise _NotOurs(current)
        intent = decode_intent(current)
        if intent.txn != txn:
            raise _NotOurs(current)
        return intent.after if forward else intent.committed

    return decide


async def apply_outcome(
    ctx: ApiContext, bucket: str, key: bytes, txn: str, forward: bool
) -> bytes | None:
    """Replace ``txn``'s intent in an item by its outcome (the new value if ``forward``, else the
    committed one); a no-op if the item no longer holds that intent. The item's value after."""
    try:
        _, new = await ctx.handle.cas(bucket, key, _settle_decision(txn, forward))
    except _NotOurs as gone:
        return gone.current
    return new


async def txn_state(ctx: ApiContext, name: str, txn: str, *, exact: bool = True) -> str:
    """The state of transaction ``txn`` (record ``name``), aborting it first if it has been
    PENDING for longer than PENDING_TIMEOUT.

    A decided state never changes, so a fast (eventually consistent) read of the record that
    shows one is the answer; so is a young PENDING unless ``exact`` (a conflict answered
    because of a transaction that has just committed is still a correct answer, a read
    returning its old value would not be). Anything else is read linearizably: this keeps
    contenders' Paxos rounds off the record while its coordinator commits it."""
    raw = await ctx.handle.read(TXN_BUCKET, record_key(name), consistent=False)
    if raw is not None:
        seen = Record.decode(raw)
        if seen.txn == txn and (
            seen.state != PENDING
            or (not exact and ctx.clock() - seen.created < PENDING_TIMEOUT)
        ):
            return seen.state
    record = await read_record(ctx, name)
    if record is None or record.txn != txn:
        return GONE
    if record.state == PENDING and ctx.clock() - record.created >= PENDING_TIMEOUT:
        return await decide_fate(ctx, name, txn, ABORTED)
    return record.state


async def resolve(
    ctx: ApiContext, bucket: str, key: bytes, raw: bytes | None, *, consistent: bool = True
) -> bytes | None:
    """The committed value of an item read as ``raw``, which may carry an intent.

    Consistent: the value as of the intent's transaction state (a COMMITTED transaction is
    rolled forward, an ABORTED or abandoned one rolled back). Eventually consistent: the
    committed value of a young intent, without looking at its record (an old one is resolved
    as above, so an abandoned transaction does not stay invisible to such reads)."""
    for _ in range(ATTEMPTS):
        if raw is None or raw[:1] != INTENT_MARK:
            return raw
        intent = decode_intent(raw)
        if not consistent and ctx.clock() - intent.created < PENDING_TIMEOUT:
            return intent.committed
        state = await txn_state(ctx, intent.record, intent.txn)
        if state == PENDING:
            return intent.committed
        raw = await apply_outcome(ctx, bucket, key, intent.txn, state == COMMITTED)
    if raw is None or raw[:1] != INTENT_MARK:
        return raw
    raise TransactionConflictException(CONFLICT_MESSAGE)  # transactions keep arriving


async def clear_intent(ctx: ApiContext, bucket: str, key: bytes, raw: bytes) -> None:
    """Settle the intent a write met, or raise TransactionConflictException if its transaction
    is live (DynamoDB's answer to a write on an item a transaction holds)."""
    intent = decode_intent(raw)
    state = await txn_state(ctx, intent.record, intent.txn, exact=False)
    if state == PENDING:
        raise TransactionConflictException(CONFLICT_MESSAGE)
    await apply_outcome(ctx, bucket, key, intent.txn, state == COMMITTED)


async def write_cas(
    ctx: ApiContext, bucket: str, key: bytes, decide: Decide
) -> tuple[bytes | None, bytes | None]:
    """``handle.cas`` for a single-item write whose ``decide`` raises :class:`IntentFound` on
    an intent: settle the intent (or fail with TransactionConflictException) and try again."""
    for _ in range(ATTEMPTS):
        try:
            return await ctx.handle.cas(bucket, key, decide)
        except IntentFound as found:
            await clear_intent(ctx, bucket, key, found.current)
    raise TransactionConflictException(CONFLICT_MESSAGE)


# ------------------------------------------------------------------------------ finishing


async def finish(ctx: ApiContext, name: str, record: Record) -> str:
    """Bring a transaction to its end on behalf of a coordinator that is gone: abort it if still
    PENDING, settle every item, then close the record. The final state (or GONE)."""
    state = record.state
    if state == PENDING:
        state = await decide_fate(ctx, name, record.txn, ABORTED)
    if state == GONE:
        return GONE
    forward = state == COMMITTED
    for bucket, key in record.items:
        await apply_outcome(ctx, bucket, key, record.txn, forward)
    # A committed token record is the token's outcome: keep it; any other record goes.
    await close_record(ctx, name, record.txn, keep=forward and name.startswith("k/"))
    return state


_last_sweep: dict[int, float] = {}


def maybe_sweep(ctx: ApiContext) -> None:
    """Start a background sweep of ``~txn`` if this node has not run one for SWEEP_INTERVAL."""
    now = ctx.clock()
    key = id(ctx)
    last = _last_sweep.get(key)
    if last is None:
        _last_sweep[key] = now
        weakref.finalize(ctx, _last_sweep.pop, key, None)
        return
    if now - last < SWEEP_INTERVAL:
        return
    _last_sweep[key] = now

    async def run() -> None:
        await sweep(ctx, ctx.rng.randrange(SWEEP_SEGMENTS), SWEEP_SEGMENTS)

    ctx.spawn(run(), "transaction record sweep")


async def sweep(ctx: ApiContext, segment: int = 0, total: int = 1) -> int:
    """Finish records left unfinished for SWEEP_GRACE and delete token records older than the
    token lifetime; the number of records finished or deleted."""
    handled = 0
    after: bytes | None = None
    while True:
        page = await ctx.handle.scan(TXN_BUCKET, segment, total, after, 500)
        for key, raw in page.items:
            try:
                if await _sweep_one(ctx, key.decode("utf-8"), Record.decode(raw)):
                    handled += 1
            except Exception:  # one bad record must not stop the sweep
                log.exception("sweeping transaction record %r failed", key)
        if page.last_key is None:
            return handled
        after = page.last_key


async def _sweep_one(ctx: ApiContext, name: str, record: Record) -> bool:
    age = ctx.clock() - record.created
    if not record.done:
        if age < SWEEP_GRACE:
            return False
        await finish(ctx, name, record)
        if not name.startswith("k/") or age < ctx.token_ttl:
            return True
    elif age < ctx.token_ttl:
        return False
    await close_record(ctx, name, record.txn, keep=False)
    return True


# ------------------------------------------------------------------------------ test hooks

# Called with a stage name ("created", "prepared", "committed") by the coordinator; tests set
# it to raise and so simulate a coordinator that dies at that point.
stage_hook: Callable[[str], None] | None = None


def stage(name: str) -> None:
    if stage_hook is not None:
        stage_hook(name)
