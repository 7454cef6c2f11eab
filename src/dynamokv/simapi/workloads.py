"""DynamoDB workloads on the simulated cluster under the fault menu, checked by the sim's checkers.

Owns: ``run_registers`` (registers and counters through the real DynamoDB app, checked for
per-item linearizability), ``run_bank`` (transfers by TransactWriteItems, every
TransactGetItems snapshot checked for the sum invariant) and ``run_gsi`` (writes to a table with
a global secondary index, the index checked against the table once healed), with
``WorkloadRun``.
May import: stdlib, ``asyncio``, ``dynamokv.sim``, ``dynamokv.simapi``,
``dynamokv.api.layout.items``, ``dynamokv.api.indexes``.

Both run the seed's ``FaultPlan`` (crashes, power loss, pauses, partition shapes, clock skew and
jumps, joins and leaves, as ``SimOptions`` draws them) while clients bound to the first nodes
issue requests, then heal, let the cluster settle, and close the history with a ConsistentRead
(or a snapshot) through every original node. Answers map onto the checkers' outcomes: 200 is
done; ConditionalCheckFailedException is a definite failure (an observation); any other 4xx
changed nothing; a 5xx or a lost node is an unknown outcome for a write and nothing for a read.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from dynamokv.api.indexes.node import start_drain
from dynamokv.sim.bank_checker import check_bank, snapshot_from_response
from dynamokv.sim.faults import FaultPlan
from dynamokv.sim.gsi_checker import IndexSpec, check_gsi
from dynamokv.sim.linearizability import Op, check_history
from dynamokv.sim.options import SimOptions
from dynamokv.simapi.cluster import ApiResult, SimApiCluster

TABLE = "items"
REGISTERS = ("r0", "r1", "r2")
COUNTERS = ("c0",)
ACCOUNTS = ("a", "b", "c", "d")
BALANCE = 100
SETTLE_S = 15.0
GSI_NAME = "by-group"
GSI_ITEMS = tuple(f"i{n}" for n in range(8))
GSI_GROUPS = ("red", "green", "blue")
GSI_CONVERGE_S = 30.0  # after settling, the index must be exact within this (virtual) time


@dataclass(slots=True)
class WorkloadRun:
    seed: int
    outcome: str  # the checker's: ok | violation | unknown | skipped
    report: str
    ops: int = 0
    acknowledged: int = 0
    unknown: int = 0
    violations: list[str] = field(default_factory=list)


def _create(pk: str = "pk") -> dict[str, Any]:
    return {"TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": pk, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": pk, "AttributeType": "S"}]}


async def _until_ok(cluster: SimApiCluster, node: str, operation: str, body: dict[str, Any],
                    tries: int = 60) -> ApiResult:
    result = await cluster.call(node, operation, body)
    for _ in range(tries):
        if result.ok:
            return result
        await asyncio.sleep(0.5)
        result = await cluster.call(node, operation, body)
    return result


def _fate(result: ApiResult) -> str:
    """done | failed (a definite ConditionalCheckFailed) | none (no effect) | unknown."""
    if result.ok:
        return "done"
    if result.error_type == "ConditionalCheckFailedException":
        return "failed"
    return "none" if result.status < 500 else "unknown"


class _Registers:
    def __init__(self, cluster: SimApiCluster, end_s: float) -> None:
        self.cluster = cluster
        self.end_s = end_s
        self.ops: list[Op] = []

    async def client(self, w: int, node: str) -> None:
        rng = random.Random(w)
        last: dict[str, bytes | None] = {}
        n = 0
        while self.cluster.loop.time() < self.end_s:
            n += 1
            if rng.random() < 0.3:
                await self._counter(node, rng, f"w{w}-{n}")
            else:
                key = rng.choice(REGISTERS)
                last[key] = await self._register(node, key, rng, f"w{w}-{n}", last.get(key))
            await asyncio.sleep(rng.random() * 0.05)

    async def _register(self, node: str, key: str, rng: random.Random, tag: str,
                        last: bytes | None) -> bytes | None:
        call, t0, roll = self.cluster.call, self.cluster.sim.now_ms, rng.random()
        item = {"pk": {"S": key}, "v": {"S": tag}}
        if roll < 0.35:
            got = await call(node, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": key}},
                                               "ConsistentRead": True})
            if got.ok:
                value = got.body["Item"]["v"]["S"].encode() if "Item" in got.body else None
                self.ops.append(Op(key, "read", t0, got.end_ms, result=value, label=tag))
                return value
            return last
        if roll < 0.65:
            kind, body = "put", {"TableName": TABLE, "Item": item}
        elif roll < 0.9:
            kind = "cput"
            body = ({"TableName": TABLE, "Item": item,
                     "ConditionExpression": "attribute_not_exists(pk)"} if last is None else
                    {"TableName": TABLE, "Item": item, "ConditionExpression": "v = :e",
                     "ExpressionAttributeValues": {":e": {"S": last.decode()}}})
        else:
            kind, body = "delete", {"TableName": TABLE, "Key": {"pk": {"S": key}}}
        result = await call(node, "DeleteItem" if kind == "delete" else "PutItem", body)
        fate = _fate(result)
        if fate == "none":
            return last
        value = None if kind == "delete" else tag.encode()
        self.ops.append(Op(key, kind, t0, result.end_ms if fate != "unknown" else None,  # type: ignore[arg-type]
                           value=value, expected=last, result=fate == "done", label=tag))
        return value if fate == "done" else last

    async def _counter(self, node: str, rng: random.Random, tag: str) -> None:
        key, call, t0 = rng.choice(COUNTERS), self.cluster.call, self.cluster.sim.now_ms
        if rng.random() < 0.4:
            got = await call(node, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": key}},
                                               "ConsistentRead": True})
            if got.ok:
                value = got.body["Item"]["n"]["N"].encode() if "Item" in got.body else None
                self.ops.append(Op(key, "read", t0, got.end_ms, result=value, label=tag))
            return
        got = await call(node, "UpdateItem", {
            "TableName": TABLE, "Key": {"pk": {"S": key}}, "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "UPDATED_NEW"})
        fate = _fate(got)
        if fate == "done":
            self.ops.append(Op(key, "add", t0, got.end_ms, amount=1,
                               result=got.body["Attributes"]["n"]["N"].encode(), label=tag))
        elif fate == "unknown":
            self.ops.append(Op(key, "add", t0, None, amount=1, label=tag))

    async def final_reads(self, nodes: list[str]) -> None:
        for node in nodes:
            for key in REGISTERS + COUNTERS:
                t0 = self.cluster.sim.now_ms
                got = await _until_ok(self.cluster, node, "GetItem", {
                    "TableName": TABLE, "Key": {"pk": {"S": key}}, "ConsistentRead": True})
                if not got.ok:
                    continue
                attr, kind = ("n", "N") if key in COUNTERS else ("v", "S")
                item = got.body.get("Item")
                value = item[attr][kind].encode() if item and attr in item else None
                self.ops.append(Op(key, "read", t0, got.end_ms, result=value,
                                   label=f"final@{node}"))


def _setup(seed: int, options: SimOptions | None) -> tuple[SimApiCluster, list[str]]:
    cluster = SimApiCluster(seed, options if options is not None else SimOptions.from_seed(seed),
                            requester_timeout_ms=3_000)
    cluster.bootstrap()
    return cluster, cluster.sim.node_ids()


async def _faulty_phase(cluster: SimApiCluster, options: SimOptions, seconds: float,
                        clients: list[Any]) -> None:
    sim = cluster.sim
    plan = FaultPlan(sim, options)
    plan.start(sim.now_ms + int(seconds * 1000))
    await asyncio.gather(*clients)
    plan.stop()
    sim.heal()
    for node_id in sim.node_ids():  # nodes that joined: the API (and its upkeep) runs on each
        if node_id not in cluster.apps:
            start_drain(cluster.add_app(node_id).context)
    await asyncio.sleep(SETTLE_S)


def run_registers(seed: int, options: SimOptions | None = None, seconds: float = 8.0,
                  clients: int = 4) -> WorkloadRun:
    """Registers and a counter through the DynamoDB app; per-item linearizability."""
    cluster, nodes = _setup(seed, options)
    work = _Registers(cluster, 0.0)

    async def main() -> None:
        assert (await _until_ok(cluster, nodes[0], "CreateTable", _create())).ok
        for node in nodes:
            await _until_ok(cluster, node, "DescribeTable", {"TableName": TABLE})
        work.end_s = cluster.loop.time() + seconds
        await _faulty_phase(cluster, cluster.sim.options, seconds,
                            [work.client(w, nodes[w % len(nodes)]) for w in range(clients)])
        await work.final_reads(nodes)

    try:
        cluster.run(main())
    finally:
        cluster.close()
    verdict = check_history(work.ops)
    return WorkloadRun(seed, verdict.outcome, verdict.explain(), len(work.ops),
                       sum(1 for o in work.ops if o.complete is not None and o.kind != "read"),
                       sum(1 for o in work.ops if o.complete is None),
                       [v.explain() for v in verdict.violations])


def run_bank(seed: int, options: SimOptions | None = None, seconds: float = 8.0,
             clients: int = 3) -> WorkloadRun:
    """Transfers by TransactWriteItems; every TransactGetItems sees the total unchanged."""
    cluster, nodes = _setup(seed, options)
    snapshots: list[Any] = []
    counts = {"transfers": 0, "unknown": 0}

    async def client(w: int, node: str, end_s: float) -> None:
        rng = random.Random(seed * 31 + w)
        while cluster.loop.time() < end_s:
            src, dst = rng.sample(ACCOUNTS, 2)
            amount = rng.randint(1, 20)
            if rng.random() < 0.6:
                result = await cluster.call(node, "TransactWriteItems", {"TransactItems": [
                    {"Update": {"TableName": TABLE, "Key": {"pk": {"S": src}},
                                "UpdateExpression": "SET b = b - :a",
                                "ConditionExpression": "b >= :a",
                                "ExpressionAttributeValues": {":a": {"N": str(amount)}}}},
                    {"Update": {"TableName": TABLE, "Key": {"pk": {"S": dst}},
                                "UpdateExpression": "SET b = b + :a",
                                "ExpressionAttributeValues": {":a": {"N": str(amount)}}}}]})
                counts["transfers" if result.ok else "unknown"] += 1
            else:
                await _snapshot(node)
            await asyncio.sleep(rng.random() * 0.05)

    async def _snapshot(node: str) -> None:
        got = await cluster.call(node, "TransactGetItems", {"TransactItems": [
            {"Get": {"TableName": TABLE, "Key": {"pk": {"S": a}}}} for a in ACCOUNTS]})
        if got.ok:
            snapshots.append(snapshot_from_response(got.body, ACCOUNTS, balance_attr="b"))

    async def main() -> None:
        assert (await _until_ok(cluster, nodes[0], "CreateTable", _create())).ok
        for account in ACCOUNTS:
            await _until_ok(cluster, nodes[0], "PutItem", {
                "TableName": TABLE, "Item": {"pk": {"S": account}, "b": {"N": str(BALANCE)}}})
        end_s = cluster.loop.time() + seconds
        await _faulty_phase(cluster, cluster.sim.options, seconds,
                            [client(w, nodes[w % len(nodes)], end_s) for w in range(clients)])
        for node in nodes:
            for _ in range(20):
                before = len(snapshots)
                await _snapshot(node)
                if len(snapshots) > before:
                    break
                await asyncio.sleep(0.5)

    try:
        cluster.run(main())
    finally:
        cluster.close()
    bad = check_bank(snapshots, total=BALANCE * len(ACCOUNTS), accounts=ACCOUNTS)
    report = "sum invariant held" if bad is None else str(bad)
    return WorkloadRun(seed, "ok" if bad is None else "violation", report, len(snapshots),
                       counts["transfers"], counts["unknown"], [] if bad is None else [report])


def _create_indexed() -> dict[str, Any]:
    body = _create()
    body["AttributeDefinitions"].append({"AttributeName": "g", "AttributeType": "S"})
    body["GlobalSecondaryIndexes"] = [{
        "IndexName": GSI_NAME, "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"}}]
    return body


async def _gsi_client(cluster: SimApiCluster, w: int, node: str, end_s: float,
                      counts: dict[str, int]) -> None:
    """Puts (with or without the index key), moves (SET g), removals of the index key and
    deletes of a few items: every kind of change an index entry follows."""
    rng = random.Random(w * 7919 + 1)
    while cluster.loop.time() < end_s:
        key = {"pk": {"S": rng.choice(GSI_ITEMS)}}
        roll, group = rng.random(), {"S": rng.choice(GSI_GROUPS)}
        if roll < 0.4:
            item = {**key, "v": {"N": str(rng.randrange(1000))}}
            if rng.random() < 0.85:
                item["g"] = group
            result = await cluster.call(node, "PutItem", {"TableName": TABLE, "Item": item})
        elif roll < 0.75:
            result = await cluster.call(node, "UpdateItem", {
                "TableName": TABLE, "Key": key, "UpdateExpression": "SET g = :g, v = :v",
                "ExpressionAttributeValues": {":g": group,
                                              ":v": {"N": str(rng.randrange(1000))}}})
        elif roll < 0.9:
            result = await cluster.call(node, "UpdateItem", {
                "TableName": TABLE, "Key": key, "UpdateExpression": "REMOVE g"})
        else:
            result = await cluster.call(node, "DeleteItem", {"TableName": TABLE, "Key": key})
        counts[_fate(result)] += 1
        if result.error_type:
            counts["error:" + result.error_type] = counts.get("error:" + result.error_type, 0) + 1
        await asyncio.sleep(rng.random() * 0.05)


async def _gsi_state(cluster: SimApiCluster, node: str) -> tuple[list[Any], list[Any]] | None:
    """The base items (a consistent Scan) and the index's stored entries, as DynamoDB JSON
    (None: the cluster did not answer)."""
    from dynamokv.api.layout.items import stored_wire

    base: list[Any] = []
    start: dict[str, Any] | None = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = await cluster.call(node, "Scan", {"TableName": TABLE, "ConsistentRead": True,
                                                 **extra})
        if not page.ok:
            return None
        base += page.body["Items"]
        start = page.body.get("LastEvaluatedKey")
        if start is None:
            break
    context = cluster.apps[node].context
    info = await context.catalog.require(TABLE)
    bucket = info.indexes[GSI_NAME].bucket
    assert bucket is not None
    entries: list[Any] = []
    after: bytes | None = None
    while True:
        try:
            scanned = await context.handle.scan(bucket, 0, 1, after, 500)
        except Exception:
            return None
        entries += [stored_wire(raw) for _, raw in scanned.items]
        if scanned.last_key is None:
            return base, entries
        after = scanned.last_key


def run_gsi(seed: int, options: SimOptions | None = None, seconds: float = 8.0,
            clients: int = 4) -> WorkloadRun:
    """Writes to a table with a global secondary index under the fault menu; after healing,
    every index entry is backed by its base item and every base item is indexed
    (``sim.gsi_checker``), within ``GSI_CONVERGE_S`` of settling."""
    cluster, nodes = _setup(seed, options)
    counts: dict[str, int] = {"done": 0, "failed": 0, "none": 0, "unknown": 0}
    spec = IndexSpec(("pk",), ("g",), "ALL", name=GSI_NAME)
    violations: list[str] = ["the state was never read"]

    async def main() -> None:
        assert (await _until_ok(cluster, nodes[0], "CreateTable", _create_indexed())).ok
        for node in nodes:
            await _until_ok(cluster, node, "DescribeTable", {"TableName": TABLE})
        end_s = cluster.loop.time() + seconds
        await _faulty_phase(cluster, cluster.sim.options, seconds,
                            [_gsi_client(cluster, w, nodes[w % len(nodes)], end_s, counts)
                             for w in range(clients)])
        deadline = cluster.loop.time() + GSI_CONVERGE_S
        turn = 0
        while True:
            live = [n for n in cluster.sim.up_ids() if n in cluster.apps] or nodes
            turn += 1
            state = await _gsi_state(cluster, live[turn % len(live)])
            if state is not None:
                violations[:] = check_gsi(state[0], state[1], spec)
                if not violations:
                    return
            if cluster.loop.time() >= deadline:
                return
            await asyncio.sleep(1.0)

    try:
        cluster.run(main())
    finally:
        cluster.close()
    errors = {k: v for k, v in counts.items() if k.startswith("error:")}
    report = ("index exact" if not violations else "; ".join(violations[:5])) + f" {errors}"
    return WorkloadRun(seed, "ok" if not violations else "violation", report,
                       sum(v for k, v in counts.items() if ":" not in k), counts["done"],
                       counts["unknown"], violations)


__all__ = ["WorkloadRun", "run_bank", "run_gsi", "run_registers"]
