"""Three real node processes with the DynamoDB HTTP API, and boto3 clients of them, for the
process tests of tables on the partition logs.

Owns: ``HttpNodes`` (the cluster, each node's HTTP address, a fresh client per call),
``http_nodes`` (three nodes started, converged, a table created; always stopped) and ``until``
(a call retried while a leader is being elected).
May import: boto3, botocore, :mod:`tests.cluster_harness`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=3,
                read_timeout=20)
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "AKIDTEST",
               "aws_secret_access_key": "secret"}


def until(fn: Any, timeout_s: float = 30.0) -> Any:
    """``fn()``, retried every 0.2 s while it fails with a boto3 error, for ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:  # a leader is being elected: retry
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"no success in {timeout_s}s: {last!r}")


class HttpNodes:
    def __init__(self, cluster: LocalCluster, http: list[str]) -> None:
        self.cluster = cluster
        self.http = http

    def client(self, i: int) -> Any:
        return boto3.session.Session().client(
            "dynamodb", endpoint_url=f"http://{self.http[i]}", config=CONFIG, **CREDENTIALS)


@contextmanager
def http_nodes(root: Path, table: dict[str, Any],
               extra: Callable[[int], list[str]] = lambda i: []) -> Iterator[HttpNodes]:
    """Nodes n1..n3 under ``root`` (ring of 16; node ``i``, from 0, started with the
    arguments ``extra(i)`` besides its HTTP address), converged, with the table of the
    CreateTable parameters ``table`` created through node 1."""
    ports = free_ports(6)
    cluster = LocalCluster(root, ring_size=16)
    http = [f"127.0.0.1:{p}" for p in ports[3:]]
    first = f"127.0.0.1:{ports[0]}"
    for i in range(3):
        argv = cluster._argv(f"n{i + 1}", f"127.0.0.1:{ports[i]}", root / f"n{i + 1}",
                             [first] if i else [], ["--http", http[i], *extra(i)])
        cluster.nodes.append(NodeProc(f"n{i + 1}", f"127.0.0.1:{ports[i]}",
                                      root / f"n{i + 1}", argv))
    try:
        for node in cluster.nodes:
            node.start()
            cluster.wait_up(node)
        cluster.wait_converged()
        result = HttpNodes(cluster, http)
        until(lambda: result.client(0).create_table(**table))
        yield result
    finally:
        cluster.stop()
