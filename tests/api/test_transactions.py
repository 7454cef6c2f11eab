"""TransactWriteItems / TransactGetItems over LocalHandle: all-or-nothing, isolation under
concurrency, recovery from a coordinator that dies at each step, conflicts with single-item
operations, ClientRequestToken idempotency across API instances, limits, the sweep."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.layout.items import (
    DELETE,
    KEEP,
    WRITE,
    Intent,
    committed_value,
    decode_intent,
    decode_item,
    encode_intent,
    has_intent,
    stored_wire,
)
from dynamokv.api.local_handle import LocalHandle
from dynamokv.api.transactions import intents
from dynamokv.api.transactions.intents import TXN_BUCKET, Record

TARGET = "DynamoDB_20120810."
TABLE = "accts"


class Crash(Exception):
    """A coordinator 'dying' at a stage: nothing after the raise runs."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_hook() -> Iterator[None]:
    yield
    intents.stage_hook = None


def crash_at(stage: str) -> None:
    def hook(name: str) -> None:
        if name == stage:
            intents.stage_hook = None  # only the first transaction dies
            raise Crash(stage)

    intents.stage_hook = hook


async def call(app: DynamoDBApp, operation: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await app.handle("POST", "/", {"x-amz-target": TARGET + operation},
                                orjson.dumps(body))
    return response.status, orjson.loads(response.body)


async def ok(app: DynamoDBApp, operation: str, body: dict[str, Any]) -> Any:
    status, out = await call(app, operation, body)
    assert status == 200, out
    return out


def error_type(out: Any) -> str:
    return str(out["__type"]).rpartition("#")[2]


def key(k: str) -> dict[str, Any]:
    return {"pk": {"S": k}}


async def make_app(handle: LocalHandle | None = None, clock: Clock | None = None,
                   create: bool = True) -> DynamoDBApp:
    app = DynamoDBApp(handle or LocalHandle(yield_points=True))
    if clock is not None:
        app.context.clock = clock
    if create:
        await ok(app, "CreateTable", {
            "TableName": TABLE, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"})
    return app


async def put(app: DynamoDBApp, k: str, bal: int) -> None:
    await ok(app, "PutItem", {"TableName": TABLE, "Item": {**key(k), "bal": {"N": str(bal)}}})


async def balance(app: DynamoDBApp, k: str, consistent: bool = True) -> int | None:
    out = await ok(app, "GetItem", {"TableName": TABLE, "Key": key(k),
                                    "ConsistentRead": consistent})
    return int(out["Item"]["bal"]["N"]) if "Item" in out else None


def transfer(src: str, dst: str, amount: int) -> dict[str, Any]:
    value = {":a": {"N": str(amount)}}
    return {"TransactItems": [
        {"Update": {"TableName": TABLE, "Key": key(src), "UpdateExpression": "SET bal = bal - :a",
                    "ConditionExpression": "bal >= :a", "ExpressionAttributeValues": value}},
        {"Update": {"TableName": TABLE, "Key": key(dst), "UpdateExpression": "SET bal = bal + :a",
                    "ExpressionAttributeValues": value}},
    ]}


def stored(app: DynamoDBApp, k: str) -> bytes | None:
    handle = app.context.handle
    assert isinstance(handle, LocalHandle)
    table = app.context.catalog._cache[TABLE].info
    return handle._buckets[table.bucket].data.get(table.key_from_wire(key(k))[1])


def records(app: DynamoDBApp) -> dict[str, Record]:
    handle = app.context.handle
    assert isinstance(handle, LocalHandle)
    bucket = handle._buckets.get(TXN_BUCKET)
    if bucket is None:
        return {}
    return {k.decode(): Record.decode(v) for k, v in bucket.data.items()}


async def drain() -> None:
    """Let background work (closing records) run."""
    for _ in range(20):
        await asyncio.sleep(0)


def run(body: Callable[[], Any]) -> Any:
    return asyncio.run(body())


# ------------------------------------------------------------------------------ stored form


def test_intent_round_trip_and_committed_view() -> None:
    committed = orjson.dumps({"pk": {"S": "a"}, "n": {"N": "1"}})
    new = orjson.dumps({"pk": {"S": "a"}, "n": {"N": "2"}})
    for intent in (
        Intent("t1", "x/t1", 12.5, WRITE, committed, new),
        Intent("t1", "k/tok", 12.5, WRITE, None, new),
        Intent("t2", "x/t2", 1.0, DELETE, committed),
        Intent("t3", "x/t3", 1.0, KEEP, None),
    ):
        raw = encode_intent(intent)
        assert has_intent(raw) and not has_intent(committed) and not has_intent(None)
        assert decode_intent(raw) == intent
        assert committed_value(raw) == intent.committed
        if intent.committed is None:
            assert decode_item(raw) == {} and stored_wire(raw) == {}
        else:
            assert stored_wire(raw) == orjson.loads(committed)
    assert Intent("t", "r", 0, WRITE, committed, new).after == new
    assert Intent("t", "r", 0, DELETE, committed).after is None
    assert Intent("t", "r", 0, KEEP, committed).after == committed


# ------------------------------------------------------------------------------ atomicity


def test_one_failed_condition_cancels_everything_with_reasons_in_order() -> None:
    async def body() -> None:
        app = await make_app()
        await put(app, "a", 10)
        await put(app, "b", 5)
        status, out = await call(app, "TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": {**key("new"), "bal": {"N": "1"}}}},
            {"Update": {"TableName": TABLE, "Key": key("a"), "UpdateExpression": "SET bal = :z",
                        "ExpressionAttributeValues": {":z": {"N": "0"}}}},
            {"ConditionCheck": {"TableName": TABLE, "Key": key("b"),
                                "ConditionExpression": "bal > :v",
                                "ExpressionAttributeValues": {":v": {"N": "50"}},
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"Delete": {"TableName": TABLE, "Key": key("c"),
                        "ConditionExpression": "attribute_exists(pk)"}},
        ]})
        assert status == 400 and error_type(out) == "TransactionCanceledException"
        reasons = out["CancellationReasons"]
        assert reasons[0] == {"Code": "None"} and reasons[1] == {"Code": "None"}
        assert reasons[2]["Code"] == "ConditionalCheckFailed"
        assert reasons[2]["Item"] == {**key("b"), "bal": {"N": "5"}}
        assert reasons[3]["Code"] == "ConditionalCheckFailed" and "Item" not in reasons[3]
        assert await balance(app, "a") == 10
        assert await balance(app, "new") is None
        for k in ("a", "b", "new"):
            raw = stored(app, k)
            assert raw is None or not has_intent(raw)
        assert records(app) == {}  # the aborted record is gone

    run(body)


def test_commit_applies_every_kind_and_leaves_no_trace() -> None:
    async def body() -> None:
        app = await make_app()
        await put(app, "a", 100)
        await put(app, "b", 0)
        await put(app, "gone", 1)
        await put(app, "check", 7)
        out = await ok(app, "TransactWriteItems", {
            "ReturnConsumedCapacity": "TOTAL",
            "TransactItems": transfer("a", "b", 30)["TransactItems"] + [
                {"Put": {"TableName": TABLE, "Item": {**key("log"), "bal": {"N": "30"}},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Delete": {"TableName": TABLE, "Key": key("gone")}},
                {"ConditionCheck": {"TableName": TABLE, "Key": key("check"),
                                    "ConditionExpression": "bal = :v",
                                    "ExpressionAttributeValues": {":v": {"N": "7"}}}},
            ]})
        assert out["ConsumedCapacity"][0]["TableName"] == TABLE
        assert [await balance(app, k) for k in ("a", "b", "log", "gone", "check")] == [
            70, 30, 30, None, 7]
        for k in ("a", "b", "log", "check"):
            raw = stored(app, k)
            assert raw is not None and not has_intent(raw)
        assert stored(app, "gone") is None
        await drain()
        assert records(app) == {}

    run(body)


def test_limits() -> None:
    async def body() -> None:
        app = await make_app()
        status, out = await call(app, "TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": key(str(i))}} for i in range(101)]})
        assert status == 400 and "less than or equal to 100" in out["message"]
        status, out = await call(app, "TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": key("x")}},
            {"ConditionCheck": {"TableName": TABLE, "Key": key("x"),
                                "ConditionExpression": "attribute_exists(pk)"}}]})
        assert status == 400 and out["message"] == (
            "Transaction request cannot include multiple operations on one item")
        big = "x" * (390 * 1024)
        status, out = await call(app, "TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": {**key(str(i)), "blob": {"S": big}}}}
            for i in range(11)]})
        assert status == 400 and error_type(out) == "ValidationException"
        assert "size cannot exceed 4 MB" in out["message"]
        assert records(app) == {}

    run(body)


def test_only_the_first_invalid_key_gets_a_validation_error_reason() -> None:
    async def body() -> None:
        app = await make_app()
        status, out = await call(app, "TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": {"pk": {"N": "7"}}}},
            {"Put": {"TableName": TABLE, "Item": {"pk": {"N": "8"}}}},
            {"Put": {"TableName": TABLE, "Item": key("y"),
                     "ConditionExpression": "attribute_exists(pk)"}}]})
        assert status == 400 and error_type(out) == "TransactionCanceledException"
        reasons = out["CancellationReasons"]
        assert [r["Code"] for r in reasons] == ["ValidationError", "None", "None"]
        assert "Message" in reasons[0] and "Message" not in reasons[1]
        assert records(app) == {}

    run(body)


# ------------------------------------------------------------------------------ isolation


def test_concurrent_transfers_keep_the_sum_and_snapshots_see_it() -> None:
    async def body() -> None:
        app = await make_app()
        accounts = ["a", "b", "c", "d"]
        for k in accounts:
            await put(app, k, 100)
        expected = dict.fromkeys(accounts, 100)
        outcomes: Counter[str] = Counter()
        snapshots: list[int] = []
        done = asyncio.Event()

        async def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(12):
                src, dst = rng.sample(accounts, 2)
                amount = rng.randint(1, 80)
                for _attempt in range(50):  # a client retrying conflicts, as SDKs do
                    status, out = await call(app, "TransactWriteItems",
                                             transfer(src, dst, amount))
                    if status == 200:
                        outcomes["committed"] += 1
                        expected[src] -= amount
                        expected[dst] += amount
                        break
                    assert error_type(out) == "TransactionCanceledException", out
                    codes = {r["Code"] for r in out["CancellationReasons"]}
                    if "ConditionalCheckFailed" in codes:
                        outcomes["insufficient"] += 1
                        break
                    assert codes == {"None", "TransactionConflict"}, codes
                    outcomes["conflict"] += 1
                    await asyncio.sleep(rng.random() * 0.002)

        async def reader() -> None:
            while not done.is_set():
                status, out = await call(app, "TransactGetItems", {"TransactItems": [
                    {"Get": {"TableName": TABLE, "Key": key(k)}} for k in accounts]})
                if status == 200:
                    snapshots.append(sum(int(r["Item"]["bal"]["N"]) for r in out["Responses"]))
                else:
                    assert error_type(out) == "TransactionCanceledException"
                await asyncio.sleep(0)

        readers = [asyncio.ensure_future(reader()) for _ in range(2)]
        await asyncio.gather(*(worker(seed) for seed in range(8)))
        done.set()
        await asyncio.gather(*readers)
        assert outcomes["committed"] >= 60 and outcomes["conflict"] > 0, outcomes
        assert {k: await balance(app, k) for k in accounts} == expected
        assert sum(expected.values()) == 400 and all(v >= 0 for v in expected.values())
        # How many snapshots the readers get depends on scheduling; every one must see the sum.
        assert snapshots and all(total == 400 for total in snapshots)

    run(body)


def test_racing_transactions_on_one_item_never_both_apply() -> None:
    async def body() -> None:
        app = await make_app()
        await put(app, "acct", 100)
        withdraw = {"TransactItems": [
            {"Update": {"TableName": TABLE, "Key": key("acct"),
                        "UpdateExpression": "SET bal = bal - :a",
                        "ConditionExpression": "bal >= :a",
                        "ExpressionAttributeValues": {":a": {"N": "30"}}}}]}
        successes = 0
        for _ in range(5):
            results = await asyncio.gather(
                *(call(app, "TransactWriteItems", withdraw) for _ in range(10)))
            successes += [status for status, _ in results].count(200)
        # Each round lets one through while the balance allows: three in all, never a fourth.
        assert successes == 3
        assert await balance(app, "acct") == 10

    run(body)


def test_single_item_writes_on_a_held_item_conflict() -> None:
    async def body() -> None:
        clock = Clock()
        app = await make_app(clock=clock)
        await put(app, "a", 10)
        await put(app, "b", 10)
        crash_at("prepared")
        status, _ = await call(app, "TransactWriteItems", transfer("a", "b", 5))
        assert status == 500
        assert has_intent(stored(app, "a")) and has_intent(stored(app, "b"))
        for operation, body_ in (
            ("UpdateItem", {"TableName": TABLE, "Key": key("a"), "UpdateExpression": "ADD bal :o",
                            "ExpressionAttributeValues": {":o": {"N": "1"}}}),
            ("PutItem", {"TableName": TABLE, "Item": {**key("a"), "bal": {"N": "0"}},
                         "ConditionExpression": "attribute_exists(pk)"}),
            ("DeleteItem", {"TableName": TABLE, "Key": key("b"), "ReturnValues": "ALL_OLD"}),
            # Plain writes too: they must not overwrite the intent of a live transaction.
            ("PutItem", {"TableName": TABLE, "Item": {**key("a"), "bal": {"N": "7"}}}),
            ("DeleteItem", {"TableName": TABLE, "Key": key("b")}),
        ):
            status, out = await call(app, operation, body_)
            assert status == 400 and error_type(out) == "TransactionConflictException", out
        assert has_intent(stored(app, "a")) and has_intent(stored(app, "b"))
        # Another transaction meeting the live intent is cancelled with TransactionConflict.
        status, out = await call(app, "TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": TABLE, "Item": key("z")}},
            {"Update": {"TableName": TABLE, "Key": key("b"), "UpdateExpression": "SET x = :o",
                        "ExpressionAttributeValues": {":o": {"N": "1"}}}}]})
        assert status == 400
        assert [r["Code"] for r in out["CancellationReasons"]] == ["None", "TransactionConflict"]
        assert await balance(app, "z") is None
        # Reads see the committed values meanwhile.
        assert (await balance(app, "a"), await balance(app, "b", consistent=False)) == (10, 10)

    run(body)


# ------------------------------------------------------------------------------ recovery


def test_coordinator_dying_after_commit_is_completed_by_the_next_reader() -> None:
    async def body() -> None:
        app = await make_app()
        for k in ("a", "b", "c"):
            await put(app, k, 50)
        crash_at("committed")
        request = transfer("a", "b", 20)
        request["TransactItems"].append(
            {"Put": {"TableName": TABLE, "Item": {**key("new"), "bal": {"N": "1"}}}})
        status, _ = await call(app, "TransactWriteItems", request)
        assert status == 500
        assert all(has_intent(stored(app, k)) for k in ("a", "b", "new"))
        [record] = records(app).values()
        assert record.state == intents.COMMITTED
        # An eventually consistent read may return the committed value of a young intent.
        assert await balance(app, "a", consistent=False) == 50
        # A consistent read resolves the intent by its record: rolled forward.
        assert await balance(app, "a") == 30
        assert not has_intent(stored(app, "a"))
        # A Query (consistent) rolls its items forward too.
        out = await ok(app, "Query", {"TableName": TABLE, "ConsistentRead": True,
                                      "KeyConditionExpression": "pk = :k",
                                      "ExpressionAttributeValues": {":k": {"S": "new"}}})
        assert out["Items"] == [{**key("new"), "bal": {"N": "1"}}]
        # A writer rolls forward before applying its own change.
        await ok(app, "UpdateItem", {"TableName": TABLE, "Key": key("b"),
                                     "UpdateExpression": "ADD bal :o",
                                     "ExpressionAttributeValues": {":o": {"N": "1"}}})
        assert await balance(app, "b") == 71
        assert all(not has_intent(stored(app, k)) for k in ("a", "b", "new"))

    run(body)


def test_coordinator_dying_after_commit_is_completed_by_a_transaction() -> None:
    async def body() -> None:
        app = await make_app()
        await put(app, "a", 50)
        await put(app, "b", 50)
        crash_at("committed")
        assert (await call(app, "TransactWriteItems", transfer("a", "b", 20)))[0] == 500
        await ok(app, "TransactWriteItems", transfer("b", "a", 70))
        assert (await balance(app, "a"), await balance(app, "b")) == (100, 0)

    run(body)


def test_coordinator_dying_before_commit_is_rolled_back_after_the_timeout() -> None:
    async def body() -> None:
        clock = Clock()
        app = await make_app(clock=clock)
        await put(app, "a", 50)
        await put(app, "b", 50)
        crash_at("prepared")
        request = transfer("a", "b", 20)
        request["TransactItems"].append(
            {"Put": {"TableName": TABLE, "Item": {**key("new"), "bal": {"N": "1"}}}})
        assert (await call(app, "TransactWriteItems", request))[0] == 500
        # Young: the transaction may still be alive. Reads see the old state, snapshots and
        # writes are refused.
        assert await balance(app, "a") == 50 and await balance(app, "new") is None
        status, out = await call(app, "TransactGetItems", {"TransactItems": [
            {"Get": {"TableName": TABLE, "Key": key("a")}},
            {"Get": {"TableName": TABLE, "Key": key("c")}}]})
        assert status == 400
        assert [r["Code"] for r in out["CancellationReasons"]] == [
            "TransactionConflict", "None"]
        status, out = await call(app, "UpdateItem", {
            "TableName": TABLE, "Key": key("a"), "UpdateExpression": "ADD bal :o",
            "ExpressionAttributeValues": {":o": {"N": "1"}}})
        assert error_type(out) == "TransactionConflictException"
        scan = await ok(app, "Scan", {"TableName": TABLE})
        assert sorted(int(i["bal"]["N"]) for i in scan["Items"]) == [50, 50]
        # Old: the next writer aborts it and rolls its intent back.
        clock.now += intents.PENDING_TIMEOUT + 0.5
        await ok(app, "UpdateItem", {"TableName": TABLE, "Key": key("a"),
                                     "UpdateExpression": "ADD bal :o",
                                     "ExpressionAttributeValues": {":o": {"N": "1"}}})
        assert await balance(app, "a") == 51
        [record] = records(app).values()
        assert record.state == intents.ABORTED
        # Eventually consistent reads resolve an old intent too; a snapshot settles the rest.
        assert await balance(app, "new", consistent=False) is None
        assert not has_intent(stored(app, "new"))
        got = await ok(app, "TransactGetItems", {"TransactItems": [
            {"Get": {"TableName": TABLE, "Key": key(k)}} for k in ("a", "b")]})
        assert [int(r["Item"]["bal"]["N"]) for r in got["Responses"]] == [51, 50]
        assert all(not has_intent(stored(app, k)) for k in ("a", "b"))

    run(body)


def test_a_stale_transaction_aborted_by_a_reader_cannot_commit() -> None:
    async def body() -> None:
        clock = Clock()
        app = await make_app(clock=clock)
        await put(app, "a", 50)
        await put(app, "b", 50)

        def hook(name: str) -> None:
            if name == "prepared":
                intents.stage_hook = None
                clock.now += intents.PENDING_TIMEOUT + 1  # the coordinator stalls...
                resolver.append(asyncio.ensure_future(balance(app, "a")))

        resolver: list[asyncio.Future[int | None]] = []
        intents.stage_hook = hook
        # ...so long that the reader aborts it before its commit: the commit finds ABORTED.
        original = intents.decide_fate

        async def slow_commit(ctx: Any, name: str, txn: str, state: str) -> str:
            if state == intents.COMMITTED and resolver:
                await resolver[0]
            return await original(ctx, name, txn, state)

        from dynamokv.api.transactions import coordinator as operations_transact
        operations_transact.decide_fate = slow_commit  # type: ignore[assignment]
        try:
            status, out = await call(app, "TransactWriteItems", transfer("a", "b", 20))
        finally:
            operations_transact.decide_fate = original
        assert status == 400
        assert {r["Code"] for r in out["CancellationReasons"]} == {"TransactionConflict"}
        assert (await balance(app, "a"), await balance(app, "b")) == (50, 50)
        assert all(not has_intent(stored(app, k)) for k in ("a", "b"))

    run(body)


# ------------------------------------------------------------------------------ idempotency


def test_client_request_token_across_two_api_instances() -> None:
    async def body() -> None:
        clock = Clock()
        handle = LocalHandle(yield_points=True)
        one = await make_app(handle, clock)
        two = await make_app(handle, clock, create=False)
        await put(one, "a", 100)
        await put(one, "b", 0)
        request = {**transfer("a", "b", 10), "ClientRequestToken": "tok-1"}
        await ok(one, "TransactWriteItems", request)
        await ok(two, "TransactWriteItems", request)  # a retry through another node
        await ok(one, "TransactWriteItems", {**request, "ReturnConsumedCapacity": "TOTAL"})
        assert (await balance(two, "a"), await balance(two, "b")) == (90, 10)
        _, out = await call(two, "TransactWriteItems",
                                 {**transfer("a", "b", 11), "ClientRequestToken": "tok-1"})
        assert error_type(out) == "IdempotentParameterMismatchException"
        # Ten minutes later the token is new again.
        clock.now += 601
        await ok(two, "TransactWriteItems", request)
        assert (await balance(one, "a"), await balance(one, "b")) == (80, 20)

    run(body)


def test_token_retry_after_a_coordinator_died() -> None:
    async def body() -> None:
        clock = Clock()
        handle = LocalHandle(yield_points=True)
        one = await make_app(handle, clock)
        two = await make_app(handle, clock, create=False)
        await put(one, "a", 100)
        await put(one, "b", 0)
        # Dies after commit: a retry anywhere answers success, completes it, applies nothing new.
        committed = {**transfer("a", "b", 10), "ClientRequestToken": "after-commit"}
        crash_at("committed")
        assert (await call(one, "TransactWriteItems", committed))[0] == 500
        await ok(two, "TransactWriteItems", committed)
        assert not has_intent(stored(one, "a"))
        assert (await balance(one, "a"), await balance(one, "b")) == (90, 10)
        # Dies before commit: in progress while young, then aborted and run again, once.
        pending = {**transfer("a", "b", 5), "ClientRequestToken": "before-commit"}
        crash_at("prepared")
        assert (await call(one, "TransactWriteItems", pending))[0] == 500
        _, out = await call(two, "TransactWriteItems", pending)
        assert error_type(out) == "TransactionInProgressException"
        _, out = await call(two, "TransactWriteItems",
                                 {**transfer("b", "a", 1), "ClientRequestToken": "before-commit"})
        assert error_type(out) == "IdempotentParameterMismatchException"
        clock.now += intents.PENDING_TIMEOUT + 0.5
        await ok(two, "TransactWriteItems", pending)
        await ok(one, "TransactWriteItems", pending)
        assert (await balance(one, "a"), await balance(one, "b")) == (85, 15)

    run(body)


def test_a_cancelled_token_can_be_retried() -> None:
    async def body() -> None:
        app = await make_app()
        await put(app, "a", 5)
        await put(app, "b", 0)
        request = {**transfer("a", "b", 10), "ClientRequestToken": "t"}
        _, out = await call(app, "TransactWriteItems", request)
        assert error_type(out) == "TransactionCanceledException"
        await put(app, "a", 50)
        await ok(app, "TransactWriteItems", request)
        assert (await balance(app, "a"), await balance(app, "b")) == (40, 10)

    run(body)


# ------------------------------------------------------------------------------ sweep


def test_sweep_finishes_abandoned_transactions_and_expires_tokens() -> None:
    async def body() -> None:
        clock = Clock()
        app = await make_app(clock=clock)
        await put(app, "a", 50)
        await put(app, "b", 50)
        await ok(app, "TransactWriteItems", {**transfer("a", "b", 1), "ClientRequestToken": "k"})
        crash_at("prepared")
        assert (await call(app, "TransactWriteItems", transfer("a", "b", 2)))[0] == 500
        crash_at("committed")
        await put(app, "c", 10)
        await put(app, "d", 0)
        assert (await call(app, "TransactWriteItems", transfer("c", "d", 3)))[0] == 500
        await drain()
        assert len(records(app)) == 3
        ctx = app.context
        assert await intents.sweep(ctx) == 0  # all too young
        clock.now += intents.SWEEP_GRACE + 1
        assert await intents.sweep(ctx) == 2
        assert list(records(app)) == ["k/k"]
        assert all(not has_intent(stored(app, k)) for k in ("a", "b", "c", "d"))
        assert [await balance(app, k) for k in ("a", "b", "c", "d")] == [49, 51, 7, 3]
        clock.now += ctx.token_ttl
        assert await intents.sweep(ctx) == 1
        assert records(app) == {}

    run(body)
