"""``dynamokv status`` shows the DynamoDB table sweep of each node, on a real node.

One node process (``--http``, the table sweep every 0.3 s) gets a table whose TTL attribute
is enabled and an item that expired an hour ago; once the sweep has deleted it, ``dynamokv
status`` (a separate process, as a user runs it) shows the node's passes and TTL deletes, in
text and in ``--json``. The node is stopped by PID; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

pytestmark = pytest.mark.cluster

SRC = Path(__file__).resolve().parents[2] / "src"
WAIT_S = 60.0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(node address, HTTP endpoint) of one running node that sweeps tables every 0.3 s."""
    port, http_port = free_ports(2)
    cluster = LocalCluster(tmp_path, n=1, r=1, w=1, ring_size=8)
    address = f"127.0.0.1:{port}"
    argv = cluster._argv("n1", address, tmp_path / "n1", [],
                         ["--http", f"127.0.0.1:{http_port}", "--table-sweep-interval", "0.3"])
    cluster.nodes.append(NodeProc("n1", address, tmp_path / "n1", argv))
    try:
        cluster.nodes[0].start()
        cluster.wait_up(cluster.nodes[0])
        cluster.wait_converged()
        yield address, f"http://127.0.0.1:{http_port}"
    finally:
        cluster.stop()


def dynamokv(*args: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
    env["COLUMNS"] = "200"  # one line per table row
    proc = subprocess.run([sys.executable, "-m", "dynamokv", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout


def eventually(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception:  # the node still electing its partitions' leaders
            result = None
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"not within {WAIT_S}s: {what}")


def _table(endpoint: str, name: str) -> Any:
    """A boto3 client of the node, once it has created the table ``name`` (key ``p``)."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="x", aws_secret_access_key="y",
                       config=Config(retries={"max_attempts": 1}))
    eventually(lambda: ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "p", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "p", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST"), "the table created")
    return ddb


def test_status_shows_the_table_sweep_and_its_ttl_deletes(node: tuple[str, str]) -> None:
    address, endpoint = node
    ddb = _table(endpoint, "swept")
    ddb.update_time_to_live(TableName="swept", TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires"})
    past = str(int(time.time()) - 3600)
    eventually(lambda: ddb.put_item(TableName="swept", Item={
        "p": {"S": "old"}, "expires": {"N": past}}), "the item written")
    eventually(lambda: "Item" not in ddb.get_item(TableName="swept", Key={"p": {"S": "old"}}),
               "the expired item deleted by the sweep")

    def swept() -> dict[str, Any] | None:
        view = json.loads(dynamokv("status", "--json", "--node", address))["nodes"]["n1"]
        background = view["background"]
        return background if background.get("ttl_expired", 0) >= 1 else None

    background = eventually(swept, "status --json counting the TTL delete")
    assert background["table_sweep_passes"] >= 1
    assert background["table_sweep_failed_passes"] >= 0
    text = dynamokv("status", "--node", address)
    _, title, sweep_table = text.partition("DynamoDB table sweep per node")
    assert title
    row = next(line for line in sweep_table.splitlines() if line.startswith("│ n1"))
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[0] == "n1"
    assert int(cells[1]) >= 1 and int(cells[3]) >= 1


def test_status_shows_the_table_layers_background_work(node: tuple[str, str]) -> None:
    """A deleted table's items are dropped in the background; ``dynamokv status`` counts the
    drop (and would show a failed one, with its error), next to the index upkeep figures."""
    address, endpoint = node
    ddb = _table(endpoint, "dropped")
    eventually(lambda: ddb.put_item(TableName="dropped", Item={"p": {"S": "x"}}),
               "the item written")
    ddb.delete_table(TableName="dropped")

    def dropped() -> dict[str, Any] | None:
        view = json.loads(dynamokv("status", "--json", "--node", address))["nodes"]["n1"]
        drops = view.get("table_drops", {})
        return view if drops.get("done", 0) >= 1 else None

    view = eventually(dropped, "status --json counting the table's drop")
    assert view["table_drops"]["failed"] == 0 and "last_error" not in view["table_drops"]
    assert "index_work" in view and "index_upkeep" in view
    text = dynamokv("status", "--node", address)
    _, title, work_table = text.partition("DynamoDB table layer per node")
    assert title
    row = next(line for line in work_table.splitlines() if line.startswith("│ n1"))
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert int(cells[8]) >= 1 and cells[9] == "0" and cells[10] == "-"
