"""Transactions over a real in-process cluster of three nodes (ClusterHandle: quorum reads,
per-key Paxos cas), with one API instance per node: concurrent transfers through every node
keep the sum, a coordinator dying after commit is completed through another node, and a
ClientRequestToken retry through another node returns the first outcome."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.transactions import intents
from dynamokv.runtime.server import RunningNode
from tests.api.test_transactions import (
    TABLE,
    balance,
    call,
    crash_at,
    error_type,
    key,
    make_app,
    ok,
    put,
    transfer,
)
from tests.inprocess import start_inprocess_cluster

RETRYABLE = {"TransactionInProgressException", "ServiceUnavailable", "InternalServerError",
             "ThrottlingException"}


@pytest.fixture(autouse=True)
def no_hook() -> Iterator[None]:
    yield
    intents.stage_hook = None


async def _cluster(root: Path, count: int = 3) -> list[RunningNode]:
    return await start_inprocess_cluster(root, count)


async def _apps(root: Path) -> tuple[list[RunningNode], list[DynamoDBApp]]:
    nodes = await _cluster(root)
    apps = []
    for i, node in enumerate(nodes):
        assert node.handle is not None
        apps.append(await make_app(node.handle, create=i == 0))  # type: ignore[arg-type]
    return nodes, apps


def test_transactions_across_three_nodes(tmp_path: Path) -> None:
    async def main() -> None:
        nodes, apps = await _apps(tmp_path)
        try:
            accounts = ["a", "b", "c"]
            for k in accounts:
                await put(apps[0], k, 100)
            expected = dict.fromkeys(accounts, 100)
            committed = 0

            async def worker(seed: int) -> None:
                nonlocal committed
                rng = random.Random(seed)
                app = apps[seed % len(apps)]
                for n in range(4):
                    src, dst = rng.sample(accounts, 2)
                    amount = rng.randint(1, 50)
                    # One token per transfer: a retry after an unknown outcome (a 5xx under
                    # Paxos contention) can never apply it twice.
                    request = {**transfer(src, dst, amount), "ClientRequestToken": f"{seed}-{n}"}
                    for _attempt in range(100):
                        status, out = await call(app, "TransactWriteItems", request)
                        if status == 200:
                            committed += 1
                            expected[src] -= amount
                            expected[dst] += amount
                            break
                        kind = error_type(out)
                        if kind == "TransactionCanceledException":
                            codes = {r["Code"] for r in out["CancellationReasons"]}
                            if "ConditionalCheckFailed" in codes:
                                break
                            assert codes <= {"None", "TransactionConflict"}, out
                        else:
                            assert kind in RETRYABLE, out
                        await asyncio.sleep(rng.random() * 0.05)
                    else:
                        raise AssertionError("a transfer never got a definite answer")

            async def reader(app: DynamoDBApp, sums: list[int]) -> None:
                for _ in range(8):
                    status, out = await call(app, "TransactGetItems", {"TransactItems": [
                        {"Get": {"TableName": TABLE, "Key": key(k)}} for k in accounts]})
                    if status == 200:
                        sums.append(sum(int(r["Item"]["bal"]["N"]) for r in out["Responses"]))
                    await asyncio.sleep(0.02)

            sums: list[int] = []
            await asyncio.gather(*(worker(seed) for seed in range(4)),
                                 reader(apps[1], sums), reader(apps[2], sums))
            assert committed > 0
            for app in apps:
                assert {k: await balance(app, k) for k in accounts} == expected
            assert all(total == 300 for total in sums)

            # A coordinator dies after its commit: another node completes it on read.
            crash_at("committed")
            status, _ = await call(apps[0], "TransactWriteItems", transfer("a", "b", 1))
            assert status == 500
            assert await balance(apps[1], "a") == expected["a"] - 1
            assert await balance(apps[2], "b") == expected["b"] + 1

            # A token retried through another node: the first outcome, applied once.
            request = {**transfer("b", "c", 2), "ClientRequestToken": "cluster-tok"}
            await ok(apps[0], "TransactWriteItems", request)
            await ok(apps[2], "TransactWriteItems", request)
            assert await balance(apps[1], "c") == expected["c"] + 2
            status, out = await call(apps[1], "TransactWriteItems",
                                     {**transfer("c", "b", 2), "ClientRequestToken": "cluster-tok"})
            assert error_type(out) == "IdempotentParameterMismatchException"
        finally:
            for node in nodes:
                await node.stop()

    asyncio.run(main())

