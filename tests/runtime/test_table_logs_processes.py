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

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=3,
                read_timeout=20)
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "AKIDTEST",
               "aws_secret_access_key": "secret"}
TABLE = "skewed"
ROUNDS = 2


class Nodes:
    def __init__(self, cluster: LocalCluster, http: list[str]) -> None:
        self.cluster = cluster
        self.http = http

    def client(self, i: int) -> Any:
        return boto3.session.Session().client(
            "dynamodb", endpoint_url=f"http://{self.http[i]}", config=CONFIG, **CREDENTIALS)


def _until(fn: Any, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:  # a leader is being elected: retry
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"no success in {timeout_s}s: {last!r}")


@pytest.fixture
def nodes(tmp_path: Any) -> Iterator[Nodes]:
    ports = free_ports(6)
    cluster = LocalCluster(tmp_path, ring_size=16)
    http = [f"127.0.0.1:{p}" for p in ports[3:]]
    first = f"127.0.0.1:{ports[0]}"
    for i in range(3):
        extra = ["--http", http[i]] + (["--wall-clock-offset-ms", "500"] if i == 0 else [])
        argv = cluster._argv(f"n{i + 1}", f"127.0.0.1:{ports[i]}", tmp_path / f"n{i + 1}",
                             [first] if i else [], extra)
        cluster.nodes.append(NodeProc(f"n{i + 1}", f"127.0.0.1:{ports[i]}",
                                      tmp_path / f"n{i + 1}", argv))
    try:
        for node in cluster.nodes:
            node.start()
            cluster.wait_up(node)
        cluster.wait_converged()
        result = Nodes(cluster, http)
        _until(lambda: result.client(0).create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}]))
        yield result
    finally:
        cluster.stop()


def _put(nodes: Nodes, i: int, key: str, value: str) -> None:
    _until(lambda: nodes.client(i).put_item(TableName=TABLE,
                                            Item={"pk": {"S": key}, "v": {"S": value}}))


def _strong(nodes: Nodes, i: int, key: str) -> str:
    got = _until(lambda: nodes.client(i).get_item(TableName=TABLE, Key={"pk": {"S": key}},
                                                  ConsistentRead=True))
    return str(got["Item"]["v"]["S"])


def test_a_write_after_a_restart_wins_whatever_the_clocks_say(nodes: Nodes) -> None:
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
                got = _until(lambda i=i, r=round_: nodes.client(i).get_item(
                    TableName=TABLE, Key={"pk": {"S": f"item-{r}"}}))
                if got.get("Item", {}).get("v", {}).get("S") == "v2":
                    break
                assert time.monotonic() < deadline, f"node {i + 1} never saw item-{round_}=v2"
                time.sleep(0.2)
