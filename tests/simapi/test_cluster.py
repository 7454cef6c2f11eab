"""The real DynamoDB app on a simulated three-node cluster, in virtual time: tables, items,
conditions, consistent reads, queries and transactions through different nodes; concurrent
clients checked by the sim's checkers; and a seed replays exactly."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

from dynamokv.sim.bank_checker import check_bank, snapshot_from_response
from dynamokv.sim.linearizability import Op, check_history
from dynamokv.simapi.cluster import ApiResult, SimApiCluster

TABLE = "Accounts"
CREATE = {
    "TableName": TABLE,
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                  {"AttributeName": "sk", "KeyType": "RANGE"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "sk", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def key(pk: str, sk: str = "-") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def scenario(seed: int) -> tuple[list[tuple[str, int, dict[str, Any]]], str, int]:
    """Every response of a fixed script, the trace digest and the virtual end time."""
    cluster = SimApiCluster(seed)
    cluster.bootstrap()
    log: list[tuple[str, int, dict[str, Any]]] = []

    async def call(node: str, operation: str, body: dict[str, Any]) -> ApiResult:
        result = await cluster.call(node, operation, body)
        log.append((f"{node} {operation}", result.status, result.body))
        return result

    async def main() -> None:
        assert (await call("n1", "CreateTable", CREATE)).ok
        for name, balance in (("a", 60), ("b", 40)):
            put = {"TableName": TABLE, "Item": {**key(name), "balance": {"N": str(balance)}}}
            assert (await call("n2", "PutItem", put)).ok
        for sk in ("2", "1", "3"):
            item = {**key("log", sk), "note": {"S": f"entry {sk}"}}
            assert (await call("n3", "PutItem", {"TableName": TABLE, "Item": item})).ok
        update = {"TableName": TABLE, "Key": key("a"),
                  "UpdateExpression": "SET balance = balance - :d",
                  "ConditionExpression": "balance >= :d",
                  "ExpressionAttributeValues": {":d": {"N": "10"}},
                  "ReturnValues": "UPDATED_NEW"}
        updated = await call("n3", "UpdateItem", update)
        assert updated.ok and updated.body["Attributes"]["balance"] == {"N": "50"}
        too_much = {**update, "ExpressionAttributeValues": {":d": {"N": "500"}}}
        refused = await call("n1", "UpdateItem", too_much)
        assert refused.error_type == "ConditionalCheckFailedException"
        got = await call("n1", "GetItem", {"TableName": TABLE, "Key": key("a"),
                                           "ConsistentRead": True})
        assert got.body["Item"]["balance"] == {"N": "50"}
        query = await call("n2", "Query", {
            "TableName": TABLE, "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "log"}}, "ConsistentRead": True})
        assert [i["sk"]["S"] for i in query.body["Items"]] == ["1", "2", "3"]
        transfer = {"TransactItems": [
            {"Update": {"TableName": TABLE, "Key": key("a"),
                        "UpdateExpression": "SET balance = balance - :x",
                        "ConditionExpression": "balance >= :x",
                        "ExpressionAttributeValues": {":x": {"N": "25"}}}},
            {"Update": {"TableName": TABLE, "Key": key("b"),
                        "UpdateExpression": "SET balance = balance + :x",
                        "ExpressionAttributeValues": {":x": {"N": "25"}}}}]}
        assert (await call("n3", "TransactWriteItems", transfer)).ok
        snapshot = await call("n1", "TransactGetItems", {"TransactItems": [
            {"Get": {"TableName": TABLE, "Key": key(k)}} for k in ("a", "b")]})
        read = snapshot_from_response(snapshot.body, ["a", "b"])
        assert read.balances == {"a": 25, "b": 65}
        # the 10 taken by the conditional update left the bank
        assert check_bank([read], total=90) is None

    cluster.run(main())
    cluster.close()
    assert not cluster.sim.violations, cluster.sim.violations
    return log, cluster.sim.trace.digest(), cluster.sim.now_ms


def test_the_real_app_on_a_simulated_cluster() -> None:
    log, _, end_ms = scenario(11)
    assert [(what, status) for what, status, _ in log] == [
        ("n1 CreateTable", 200), ("n2 PutItem", 200), ("n2 PutItem", 200),
        ("n3 PutItem", 200), ("n3 PutItem", 200), ("n3 PutItem", 200),
        ("n3 UpdateItem", 200), ("n1 UpdateItem", 400), ("n1 GetItem", 200), ("n2 Query", 200),
        ("n3 TransactWriteItems", 200), ("n1 TransactGetItems", 200)]
    assert end_ms < 60_000  # virtual: a handful of round trips each


def test_the_same_seed_replays_the_same_responses_and_trace() -> None:
    first = scenario(5)
    again = scenario(5)
    assert first == again
    other = scenario(6)
    assert other[1] != first[1]  # another seed: other delays, another trace


def test_concurrent_clients_through_every_node_are_linearizable() -> None:
    """Four clients race conditional puts, puts and consistent reads of one item through the
    three nodes; the history they saw is checked by the linearizability checker."""
    cluster = SimApiCluster(21)
    cluster.bootstrap()
    history: list[Op] = []
    item_key = key("hot")

    async def client(c: int) -> None:
        rng = random.Random(c)
        for i in range(6):
            node = f"n{rng.randint(1, 3)}"
            roll = rng.random()
            start = cluster.sim.now_ms
            if roll < 0.4:
                r = await cluster.call(node, "GetItem", {"TableName": TABLE, "Key": item_key,
                                                         "ConsistentRead": True})
                assert r.ok, r.body
                value = r.body.get("Item", {}).get("v", {}).get("S")
                history.append(Op("hot", "read", start, r.end_ms,
                                  result=None if value is None else value.encode(),
                                  label=f"c{c}"))
            else:
                new = f"c{c}.{i}"
                body: dict[str, Any] = {"TableName": TABLE, "Item": {**item_key, "v": {"S": new}}}
                expected = None
                if roll < 0.8:
                    # replace only what this client last saw (or create)
                    seen = [o.result for o in history if o.label == f"c{c}" and o.kind == "read"]
                    expected = seen[-1] if seen else None
                    if expected is None:
                        body["ConditionExpression"] = "attribute_not_exists(pk)"
                    else:
                        body["ConditionExpression"] = "v = :e"
                        body["ExpressionAttributeValues"] = {":e": {"S": expected.decode()}}
                r = await cluster.call(node, "PutItem", body)
                failed = r.error_type == "ConditionalCheckFailedException"
                assert r.ok or failed, r.body
                if "ConditionExpression" in body:
                    history.append(Op("hot", "cput", start, r.end_ms, value=new.encode(),
                                      expected=expected, result=r.ok, label=f"c{c}"))
                else:
                    history.append(Op("hot", "put", start, r.end_ms, value=new.encode(),
                                      label=f"c{c}"))
            await asyncio.sleep(rng.random() / 50)

    async def main() -> None:
        assert (await cluster.call("n1", "CreateTable", CREATE)).ok
        await asyncio.gather(*(client(c) for c in range(4)))

    cluster.run(main())
    cluster.close()
    assert len(history) == 24
    verdict = check_history(history)
    assert verdict.outcome == "ok", verdict.explain()
    # the clients really overlapped: some operation began before another one ended
    spans = sorted((o.invoke, o.complete) for o in history)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))


def test_a_crashed_node_answers_service_unavailable_and_the_others_carry_on() -> None:
    cluster = SimApiCluster(8)
    cluster.bootstrap()
    sim = cluster.sim
    item = {"TableName": TABLE, "Item": {**key("x"), "v": {"S": "1"}}}

    async def main() -> list[tuple[str, int, str]]:
        out: list[tuple[str, int, str]] = []
        assert (await cluster.call("n1", "CreateTable", CREATE)).ok
        sim.call_at(sim.now_ms + 2, "crash n3", lambda: sim.crash("n3"))
        for node in ("n3", "n3", "n1"):  # in flight at the crash, then refused, then elsewhere
            r = await cluster.call(node, "PutItem", item)
            out.append((node, r.status, r.body.get("message", "")))
        sim.restart("n3")
        await asyncio.sleep(2)
        got = await cluster.call("n3", "GetItem", {"TableName": TABLE, "Key": key("x"),
                                                   "ConsistentRead": True})
        out.append(("n3", got.status, got.body["Item"]["v"]["S"]))
        return out

    unavailable = "The service is unavailable: "
    assert cluster.run(main()) == [
        ("n3", 503, unavailable + "connection to n3 lost mid-request"),
        ("n3", 503, unavailable + "n3 refused the connection"),
        ("n1", 200, ""), ("n3", 200, "1")]
    cluster.close()
