"""Table writes on real node processes under clock skew and restarts (the partition logs).

The regression of the last-writer-wins table layer: node 1's wall clock 500 ms fast; node 3 is
down while PutItem v1 is acknowledged through node 1; node 3 restarts; PutItem v2 (same key) is
acknowledged through node 3. LWW kept v1 for good in 20 of 20 rounds. With the partition logs
no clock decides which write wins: ConsistentRead must return v2 through every node, and so
must every replica once it caught up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.runtime.http_nodes import HttpNodes, http_nodes, until

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TABLE = "skewed"
ROUNDS = 2


@pytest.fixture
def nodes(tmp_path: Any) -> Iterator[HttpNodes]:
    table = {"TableName": TABLE, "BillingMode": "PAY_PER_REQUEST",
             "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
             "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]}
    # Node 1's wall clock runs 500 ms fast.
    with http_nodes(tmp_path, table,
                    lambda i: ["--wall-clock-offset-ms", "500"] if i == 0 else []) as started:
        yield started


def _put(nodes: HttpNodes, i: int, key: str, value: str) -> None:
    until(lambda: nodes.client(i).put_item(TableName=TABLE,
                                            Item={"pk": {"S": key}, "v": {"S": value}}))


def _strong(nodes: HttpNodes, i: int, key: str) -> str:
    got = until(lambda: nodes.client(i).get_item(TableName=TABLE, Key={"pk": {"S": key}},
                                                  ConsistentRead=True))
    return str(got["Item"]["v"]["S"])


def test_a_write_after_a_restart_wins_whatever_the_clocks_say(nodes: HttpNodes) -> None:
    n3 = nodes.cluster.nodes[2]
    for round_ in range(ROUNDS):
        key = f"item-{round_}"
        n3.kill9()
        _put(nodes, 0, key, "v1")  # through the node whose clock is 500 ms fast
        n3.start()
        nodes.cluster.wait_up(n3)
        _put(nodes, 2, key, "v2")
        for i in range(3):
            assert _strong(nodes, i, key) == "v2", f"round {round_}: node {i + 1}"
    # Every replica converges on the last write too (eventually consistent reads).
    deadline = time.monotonic() + 30
    for i in range(3):
        for round_ in range(ROUNDS):
            while True:
                got = until(lambda i=i, r=round_: nodes.client(i).get_item(
                    TableName=TABLE, Key={"pk": {"S": f"item-{r}"}}))
                if got.get("Item", {}).get("v", {}).get("S") == "v2":
                    break
                assert time.monotonic() < deadline, f"node {i + 1} never saw item-{round_}=v2"
                time.sleep(0.2)
