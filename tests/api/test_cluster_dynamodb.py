"""The DynamoDB API on a real 3-node cluster (N=3, R=2, W=2, lmdb, ring of 16 partitions).

Each node is a separate ``dynamokv node start --http`` process (``tests/cluster_harness.py``);
every request goes over HTTP, through boto3, the AWS CLI or PynamoDB, and successive requests
of one scenario go to different nodes. Covered:

* the catalog: a table created through n1 is usable through n2 and n3;
* items: put/get/update/delete, Query and Scan paging, each step through another node;
* linearizable conditional writes: racing ``attribute_not_exists`` puts from threads spread
  over the three nodes (exactly one wins), and an ``ADD`` counter incremented concurrently
  through every node (ends at exactly the number of acknowledged calls);
* a node killed with SIGKILL while a writer keeps writing (SDK retries off): every acknowledged
  write is readable with ConsistentRead afterwards, conditional writes and counters keep working
  on 2 of 3 nodes, and once the node is back, reads through it see everything;
* Paxos with the first node to have joined killed (a regression test: the previous ring's
  replica set used to be required for good);
* smoke tests of the ``aws dynamodb`` CLI and of PynamoDB against the cluster.

Every process is started by the harness and stopped by PID in ``finally``; every loop is
bounded in count and time. The module takes about a minute.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.cluster_harness import LocalCluster, NodeProc, free_ports

pytestmark = pytest.mark.cluster

RING_SIZE = 16
HTTP_READY_TIMEOUT_S = 30.0
# No SDK retries anywhere: every call the test counts is one request, acknowledged or not.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=3, read_timeout=20, max_pool_connections=4)
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "AKIDTEST",
               "aws_secret_access_key": "secret"}

# What a Paxos round that gave up under contention answers (HTTP 503; SDKs retry it).
CONTENTION = "ServiceUnavailable"

_names = itertools.count()


# ---- the cluster ---------------------------------------------------------------------------------


@dataclass
class HttpCluster:
    """A ``LocalCluster`` whose nodes also serve the DynamoDB API (``http[i]`` for ``n{i+1}``)."""

    cluster: LocalCluster
    http: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> list[NodeProc]:
        return self.cluster.nodes

    def endpoint(self, i: int) -> str:
        return f"http://{self.http[i % len(self.http)]}"

    def client(self, i: int) -> Any:
        """A new boto3 client (own session, so one per thread is safe) of node ``i % 3``."""
        session = boto3.session.Session()
        return session.client("dynamodb", endpoint_url=self.endpoint(i), config=NO_RETRIES,
                              **CREDENTIALS)

    def wait_http(self, i: int, timeout_s: float = HTTP_READY_TIMEOUT_S) -> None:
        ddb = self.client(i)
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                ddb.list_tables(Limit=1)
                return
            except (BotoCoreError, ClientError) as exc:
                last = exc
                time.sleep(0.2)
        raise AssertionError(f"HTTP API of n{i + 1} not answering after {timeout_s}s: {last!r}\n"
                             f"{self.log_tail(i)}")

    def log_tail(self, i: int, lines: int = 30) -> str:
        node = self.nodes[i]
        try:
            text = (node.data_dir.parent / f"{node.node_id}.log").read_text(errors="replace")
        except OSError:
            return f"({node.node_id}: no log)"
        return f"--- {node.node_id}.log ---\n" + "\n".join(text.splitlines()[-lines:])

    def logs(self) -> str:
        return "\n".join(self.log_tail(i) for i in range(len(self.nodes)))


@pytest.fixture(scope="module")
def ddb_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpCluster]:
    root = tmp_path_factory.mktemp("ddb-cluster")
    ports = free_ports(6)
    cluster = LocalCluster(root, ring_size=RING_SIZE)
    result = HttpCluster(cluster, [f"127.0.0.1:{p}" for p in ports[3:]])
    first = f"127.0.0.1:{ports[0]}"
    for i in range(3):
        address = f"127.0.0.1:{ports[i]}"
        data_dir = root / f"n{i + 1}"
        argv = cluster._argv(f"n{i + 1}", address, data_dir, [first] if i else [],
                             ["--http", result.http[i]])
        cluster.nodes.append(NodeProc(f"n{i + 1}", address, data_dir, argv))
    try:
        # One at a time, so that the ring history is fixed: v1 {n1}, v2 {n1, n2} (n2 joined),
        # v3 {n1, n2, n3} (n3 joined). The failure tests rely on that order.
        for count, node in enumerate(cluster.nodes, start=1):
            node.start()
            cluster.wait_up(node)
            cluster.wait_for(lambda count=count: ring_settled(cluster, count),
                             timeout_s=30, what=f"{count} members in every node's ring")
        cluster.wait_converged()
        for i in range(3):
            result.wait_http(i)
        yield result
    finally:
        cluster.stop()


def previous_owners_forgotten(cluster: LocalCluster) -> bool:
    """Every running node's ring is past the handoff of the last change."""
    for node in cluster.nodes:
        if node.alive:
            with cluster.client(only=node.node_id, timeout_s=2.0) as c:
                if c.ring().previous_owners:
                    return False
    return True


def ring_settled(cluster: LocalCluster, members: int) -> bool:
    """Every started node sees ``members`` members and the same ring version."""
    statuses = [cluster.status(n.node_id) for n in cluster.nodes if n.alive]
    return (all(len(s["members"]) == members for s in statuses)
            and len({s["ring_version"] for s in statuses}) == 1)


def new_table(ddb: Any, *, sort: bool = False) -> str:
    name = f"cl_{next(_names)}_{os.getpid()}"
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attrs.append({"AttributeName": "sk", "AttributeType": "N"})
    answer = ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attrs,
                              BillingMode="PAY_PER_REQUEST")
    assert answer["TableDescription"]["TableStatus"] == "ACTIVE"
    return name


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def eventually(check: Callable[[], Any], *, what: str, timeout_s: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy, at most ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    for _ in range(10_000):
        last = check()
        if last or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert last, f"not within {timeout_s}s: {what}"
    return last


def run_threads(targets: list[Callable[[], None]], timeout_s: float) -> None:
    """Start one thread per target and join them all within ``timeout_s`` (or fail)."""
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout_s
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"threads still running after {timeout_s}s"


# ---- catalog and items ---------------------------------------------------------------------------


def test_table_created_through_one_node_is_seen_by_the_others(ddb_cluster: HttpCluster) -> None:
    n1, n2, n3 = (ddb_cluster.client(i) for i in range(3))
    name = new_table(n1, sort=True)
    for other in (n2, n3):
        table = other.describe_table(TableName=name)["Table"]
        assert table["TableStatus"] == "ACTIVE"
        assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
        listed: list[str] = []
        start: dict[str, Any] = {}
        for _ in range(100):  # bounded paging of ListTables
            page = other.list_tables(Limit=5, **start)
            listed += page["TableNames"]
            if "LastEvaluatedTableName" not in page:
                break
            start = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
        assert name in listed
    # usable at once through another node, and a second create anywhere is refused
    n3.put_item(TableName=name, Item={"pk": {"S": "x"}, "sk": {"N": "1"}})
    with pytest.raises(ClientError) as info:
        n2.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    assert error_code(info.value) == "ResourceInUseException"


def test_item_operations_through_different_nodes(ddb_cluster: HttpCluster) -> None:
    n1, n2, n3 = (ddb_cluster.client(i) for i in range(3))
    table = new_table(n1, sort=True)
    key = {"pk": {"S": "user#1"}, "sk": {"N": "7"}}
    n1.put_item(TableName=table, Item={**key, "name": {"S": "ann"}, "visits": {"N": "1"}})
    # ConsistentRead through another node sees the acknowledged write at once; a default read
    # asks one replica (its own), which may lag for a moment
    assert n3.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["visits"] == {
        "N": "1"}
    eventually(lambda: n2.get_item(TableName=table, Key=key).get("Item", {}).get("name")
               == {"S": "ann"}, what="a default read through n2")

    updated = n3.update_item(
        TableName=table, Key=key, UpdateExpression="SET #n = :n ADD visits :one",
        ConditionExpression="#n = :old", ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":n": {"S": "bob"}, ":one": {"N": "1"}, ":old": {"S": "ann"}},
        ReturnValues="ALL_NEW")["Attributes"]
    assert updated["name"] == {"S": "bob"} and updated["visits"] == {"N": "2"}
    got = n1.get_item(TableName=table, Key=key, ConsistentRead=True,
                      ProjectionExpression="visits")["Item"]
    assert got == {"visits": {"N": "2"}}
    with pytest.raises(ClientError) as info:  # the old condition no longer holds
        n2.update_item(TableName=table, Key=key, UpdateExpression="SET #n = :n",
                       ConditionExpression="#n = :old", ExpressionAttributeNames={"#n": "name"},
                       ExpressionAttributeValues={":n": {"S": "eve"}, ":old": {"S": "ann"}})
    assert error_code(info.value) == "ConditionalCheckFailedException"

    old = n2.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert old["name"] == {"S": "bob"}
    assert "Item" not in n3.get_item(TableName=table, Key=key, ConsistentRead=True)
    eventually(lambda: "Item" not in n1.get_item(TableName=table, Key=key),
               what="the delete seen by a default read through n1")


def test_query_and_scan_paging_across_nodes(ddb_cluster: HttpCluster) -> None:
    clients = [ddb_cluster.client(i) for i in range(3)]
    table = new_table(clients[0], sort=True)
    partitions = {f"p{p}": 12 + p for p in range(6)}  # 6 partition keys, 12..17 items each
    expected = set()
    requests = []
    for pk, count in partitions.items():
        for sk in range(count):
            expected.add((pk, sk))
            requests.append({"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"N": str(sk)},
                                                     "v": {"S": f"{pk}/{sk}"}}}})
    for i in range(0, len(requests), 25):
        batch: dict[str, Any] = {table: requests[i:i + 25]}
        for attempt in range(10):  # bounded: unprocessed items are re-sent at most 10 times
            answer = clients[attempt % 3].batch_write_item(RequestItems=batch)
            batch = answer.get("UnprocessedItems") or {}
            if not batch:
                break
        assert not batch, f"items left unprocessed: {batch}"

    # Query p3 (15 items, 12 of them in range), 4 per page, each page through the next node,
    # both directions: with ConsistentRead the pages are exact at once; without it they are
    # read from one replica and may lag briefly, so they are polled until complete
    def paged_query(forward: bool, consistent: bool, first_node: int) -> list[int]:
        seen: list[int] = []
        start: dict[str, Any] = {}
        for page_no in range(20):
            page = clients[(first_node + page_no) % 3].query(
                TableName=table, KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={":p": {"S": "p3"}, ":lo": {"N": "2"},
                                           ":hi": {"N": "13"}},
                Limit=4, ScanIndexForward=forward, ConsistentRead=consistent, **start)
            assert page["Count"] <= 4
            seen += [int(item["sk"]["N"]) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return seen

    for forward in (True, False):
        want = list(range(2, 14)) if forward else list(range(13, 1, -1))
        for first_node in range(3):
            assert paged_query(forward, True, first_node) == want
        eventually(lambda forward=forward, want=want: paged_query(forward, False, 1) == want,
                   what="an eventually consistent paged query")

    # Scans are eventually consistent (each page reads one replica), so a page may briefly
    # lack an item whose third replica write is still in flight: the whole paged scan is
    # repeated until complete, but it must never repeat an item or return a foreign one.
    def paged_scan() -> bool:
        scanned: list[tuple[str, int]] = []
        start: dict[str, Any] = {}
        for page_no in range(100):  # 7 items per page, each page through the next node
            page = clients[page_no % 3].scan(TableName=table, Limit=7, **start)
            assert page["Count"] <= 7
            scanned += [(item["pk"]["S"], int(item["sk"]["N"])) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        assert len(scanned) == len(set(scanned)), "a scan page repeated items"
        assert set(scanned) <= expected
        return set(scanned) == expected

    eventually(paged_scan, what="a paged scan returning every item")

    def segmented_scan() -> bool:  # 3 segments, one per node, cover the table exactly once
        segments: list[tuple[str, int]] = []
        for seg in range(3):
            start: dict[str, Any] = {}
            for _ in range(100):
                page = clients[seg].scan(TableName=table, Segment=seg, TotalSegments=3,
                                         Limit=10, **start)
                segments += [(item["pk"]["S"], int(item["sk"]["N"])) for item in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    break
                start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        assert len(segments) == len(set(segments)), "segments overlap"
        return set(segments) == expected

    eventually(segmented_scan, what="a parallel scan returning every item")


# ---- concurrency: linearizable conditional writes ------------------------------------------------


def test_racing_conditional_puts_exactly_one_wins(ddb_cluster: HttpCluster) -> None:
    threads = 8
    rounds = 4
    clients = [ddb_cluster.client(i) for i in range(threads)]  # thread i -> node i % 3
    table = new_table(clients[0])
    for r in range(rounds):
        key = f"race-{r}"
        barrier = threading.Barrier(threads, timeout=30)
        outcomes: dict[int, str] = {}

        def racer(i: int, key: str = key, barrier: threading.Barrier = barrier,
                  outcomes: dict[int, str] = outcomes) -> None:
            barrier.wait()
            try:
                clients[i].put_item(TableName=table,
                                    Item={"pk": {"S": key}, "owner": {"N": str(i)}},
                                    ConditionExpression="attribute_not_exists(pk)")
                outcomes[i] = "ok"
            except (ClientError, BotoCoreError) as exc:
                outcomes[i] = error_code(exc)

        run_threads([lambda i=i: racer(i) for i in range(threads)], timeout_s=60)
        winners = [i for i, o in outcomes.items() if o == "ok"]
        losers = [o for o in outcomes.values() if o != "ok"]
        assert len(outcomes) == threads
        assert len(winners) == 1, f"round {r}: {outcomes}\n{ddb_cluster.logs()}"
        # a loser may rarely see the contention 503 instead (see the counter test)
        assert losers.count("ConditionalCheckFailedException") >= threads - 2, outcomes
        assert set(losers) <= {"ConditionalCheckFailedException", CONTENTION}, outcomes
        for node in range(3):
            item = clients[node].get_item(TableName=table, Key={"pk": {"S": key}},
                                          ConsistentRead=True)["Item"]
            assert item["owner"] == {"N": str(winners[0])}


def test_concurrent_add_counter_loses_no_increment(ddb_cluster: HttpCluster) -> None:
    threads = 6
    per_thread = 15
    clients = [ddb_cluster.client(i) for i in range(threads)]
    table = new_table(clients[0])
    key = {"pk": {"S": "counter"}}
    ok = [0] * threads
    failed: list[str] = []
    deadline = time.monotonic() + 60

    def incrementer(i: int) -> None:
        for _ in range(per_thread):
            if time.monotonic() > deadline:
                return
            try:
                clients[i].update_item(TableName=table, Key=key, UpdateExpression="ADD n :one",
                                       ExpressionAttributeValues={":one": {"N": "1"}})
                ok[i] += 1
            except (ClientError, BotoCoreError) as exc:
                failed.append(error_code(exc))

    run_threads([lambda i=i: incrementer(i) for i in range(threads)], timeout_s=90)
    # Known limitation (reported): under this contention a Paxos round occasionally gives up
    # after 12 attempts with 503 ServiceUnavailable "no Paxos majority after retries"; SDKs
    # retry it by default, here retries are off. No other error is expected, and the counter
    # must hold exactly the acknowledged increments (a given-up round never applies).
    assert set(failed) <= {CONTENTION}, f"failed increments: {failed}\n{ddb_cluster.logs()}"
    assert len(failed) <= threads * per_thread // 10, f"too many given-up rounds: {failed}"
    total = sum(ok)
    assert total + len(failed) == threads * per_thread
    for node in range(3):
        item = clients[node].get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
        assert item["n"] == {"N": str(total)}, f"through n{node + 1}"


# ---- other clients -------------------------------------------------------------------------------


def aws_cli(endpoint: str, home: Path, *args: str) -> Any:
    exe = shutil.which("aws")
    argv = [exe] if exe else [sys.executable, "-m", "awscli"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "AKIDTEST",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
        "AWS_PAGER": "",
        "AWS_MAX_ATTEMPTS": "1",
    }
    done = subprocess.run([*argv, "dynamodb", *args, "--endpoint-url", endpoint,
                           "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"aws dynamodb {args}: {done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_aws_cli_smoke(ddb_cluster: HttpCluster, tmp_path: Path) -> None:
    if shutil.which("aws") is None:
        pytest.importorskip("awscli")
    name = f"cli_{os.getpid()}"
    aws_cli(ddb_cluster.endpoint(0), tmp_path, "create-table", "--table-name", name,
            "--attribute-definitions", "AttributeName=id,AttributeType=S",
            "--key-schema", "AttributeName=id,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST")
    assert name in aws_cli(ddb_cluster.endpoint(1), tmp_path, "list-tables")["TableNames"]
    aws_cli(ddb_cluster.endpoint(2), tmp_path, "put-item", "--table-name", name,
            "--item", '{"id": {"S": "1"}, "n": {"N": "42"}}')
    got = aws_cli(ddb_cluster.endpoint(0), tmp_path, "get-item", "--table-name", name,
                  "--key", '{"id": {"S": "1"}}', "--consistent-read")
    assert got["Item"]["n"] == {"N": "42"}
    assert aws_cli(ddb_cluster.endpoint(1), tmp_path, "scan", "--table-name", name)["Count"] == 1


def test_pynamodb_smoke(ddb_cluster: HttpCluster) -> None:
    pytest.importorskip("pynamodb")
    from pynamodb.attributes import NumberAttribute, UnicodeAttribute
    from pynamodb.exceptions import PutError
    from pynamodb.models import Model

    name = f"pynamo_{os.getpid()}"

    def model_on(i: int) -> Any:
        class Note(Model):
            class Meta:
                table_name = name
                host = ddb_cluster.endpoint(i)
                region = "us-east-1"
                aws_access_key_id = "AKIDTEST"
                aws_secret_access_key = "secret"
                billing_mode = "PAY_PER_REQUEST"
                max_retry_attempts = 0

            owner = UnicodeAttribute(hash_key=True)
            seq = NumberAttribute(range_key=True)
            text = UnicodeAttribute()
            likes = NumberAttribute(default=0)

        return Note

    on1, on2, on3 = model_on(0), model_on(1), model_on(2)
    on1.create_table(wait=True)
    assert on2.exists() and on3.exists()
    for seq in range(5):
        on1(owner="ann", seq=seq, text=f"note {seq}").save()
    note = on2.get("ann", 3, consistent_read=True)
    assert note.text == "note 3"
    note.update(actions=[on2.likes.add(2)])
    assert on3.get("ann", 3, consistent_read=True).likes == 2
    assert [n.seq for n in on3.query("ann", on3.seq >= 2)] == [2, 3, 4]
    with pytest.raises(PutError) as info:
        on3(owner="ann", seq=0, text="dup").save(condition=on3.owner.does_not_exist())
    assert info.value.cause_response_code == "ConditionalCheckFailedException"
    assert on1.count("ann") == 5


# ---- failures: a node killed mid-run -------------------------------------------------------------


def test_kill9_mid_run_acknowledged_writes_survive(ddb_cluster: HttpCluster) -> None:
    """n3 is SIGKILLed while a writer keeps writing through all three nodes (no retries).

    n3 is the node that joined last (see the fixture); losing n2, the first to join, is
    ``test_paxos_with_the_first_joiner_down``.
    """
    victim = 2
    node = ddb_cluster.nodes[victim]
    setup = ddb_cluster.client(0)
    table = new_table(setup)
    writer_clients = [ddb_cluster.client(i) for i in range(3)]
    acked: dict[str, str] = {}  # key -> value of an acknowledged write
    errors: dict[str, int] = {}
    stop = threading.Event()
    killed = threading.Event()
    writes_after_kill = [0]
    writer_deadline = time.monotonic() + 40

    def writer() -> None:
        for seq in range(100_000):
            if stop.is_set() or time.monotonic() > writer_deadline:
                return
            key, value = f"w{seq:05d}", f"v{seq}"
            conditional = seq % 4 == 3  # every 4th write goes through Paxos
            extra = {"ConditionExpression": "attribute_not_exists(pk)"} if conditional else {}
            try:
                writer_clients[seq % 3].put_item(
                    TableName=table, Item={"pk": {"S": key}, "v": {"S": value}}, **extra)
            except (ClientError, BotoCoreError) as exc:
                errors[error_code(exc)] = errors.get(error_code(exc), 0) + 1
                continue
            acked[key] = value
            if killed.is_set():
                writes_after_kill[0] += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while len(acked) < 30 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        node.kill9()
        killed.set()
        deadline = time.monotonic() + 15
        while writes_after_kill[0] < 30 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert writes_after_kill[0] >= 30, (
        f"only {writes_after_kill[0]} writes acknowledged after the kill; errors {errors}\n"
        f"{ddb_cluster.logs()}")

    print(f"kill -9 n3: {len(acked)} writes acknowledged ({writes_after_kill[0]} after the "
          f"kill), failed: {errors}")
    survivors = [ddb_cluster.client(0), ddb_cluster.client(1)]

    def consistent_get(client: Any, key: str) -> Any:
        """A ConsistentRead GetItem, retried on ServiceUnavailable as SDKs do by default (a
        partition whose leader died answers it until its new leader's lease holds), bounded."""
        deadline = time.monotonic() + 20
        while True:
            try:
                return client.get_item(TableName=table, Key={"pk": {"S": key}},
                                       ConsistentRead=True).get("Item")
            except ClientError as exc:
                if error_code(exc) != "ServiceUnavailable" or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # every acknowledged write is there, linearizably, through either survivor
    for i, (key, value) in enumerate(sorted(acked.items())):
        item = consistent_get(survivors[i % 2], key)
        assert item is not None and item["v"] == {"S": value}, f"{key}: {item} (errors {errors})"

    # conditional writes and counters keep working on 2 of 3 nodes
    for i in range(6):
        after_key = {"pk": {"S": f"after-{i}"}}
        survivors[i % 2].put_item(TableName=table, Item={**after_key, "n": {"N": "0"}},
                                  ConditionExpression="attribute_not_exists(pk)")
        with pytest.raises(ClientError) as info:
            survivors[(i + 1) % 2].put_item(TableName=table,
                                            Item={**after_key, "n": {"N": "9"}},
                                            ConditionExpression="attribute_not_exists(pk)")
        assert error_code(info.value) == "ConditionalCheckFailedException"
        survivors[(i + 1) % 2].update_item(TableName=table, Key=after_key,
                                           UpdateExpression="ADD n :one",
                                           ExpressionAttributeValues={":one": {"N": "1"}})
    racers = [ddb_cluster.client(i % 2) for i in range(6)]
    outcomes: list[str] = []

    def racer(i: int) -> None:
        try:
            racers[i].put_item(TableName=table, Item={"pk": {"S": "race-2of3"}},
                               ConditionExpression="attribute_not_exists(pk)")
            outcomes.append("ok")
        except (ClientError, BotoCoreError) as exc:
            outcomes.append(error_code(exc))

    run_threads([lambda i=i: racer(i) for i in range(6)], timeout_s=60)
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) <= {"ok", "ConditionalCheckFailedException", CONTENTION}, outcomes
    assert outcomes.count("ConditionalCheckFailedException") >= 4, outcomes

    # bring n3 back: reads through it see every acknowledged write and the later ones
    node.start()
    ddb_cluster.cluster.wait_up(node)
    ddb_cluster.wait_http(victim)
    back = ddb_cluster.client(victim)
    for key, value in sorted(acked.items()):
        # n3 just restarted: leadership of the partitions it prefers moves back to it once it
        # caught up, so a read may meet a moment without a leased leader (retryable, bounded)
        item = consistent_get(back, key)
        assert item is not None and item["v"] == {"S": value}, f"via n3, {key}: {item}"
    # A default read through n3 reads n3's own replica only, which lacks what was written
    # while it was down until anti-entropy or read repair brings it (a few seconds).
    sample = list(sorted(acked.items()))[::5]

    def all_visible() -> bool:
        return all(back.get_item(TableName=table, Key={"pk": {"S": key}}).get("Item", {})
                   .get("v") == {"S": value} for key, value in sample)

    eventually(all_visible, what="acknowledged writes in default reads through n3",
               timeout_s=30)
    for i in range(6):
        item = back.get_item(TableName=table, Key={"pk": {"S": f"after-{i}"}},
                             ConsistentRead=True)["Item"]
        assert item["n"] == {"N": "1"}
    assert back.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"


def test_paxos_with_the_first_joiner_down(ddb_cluster: HttpCluster) -> None:
    """n2, the first node to join n1, is killed: Paxos on n1 + n3 keeps working.

    Regression test: Paxos needs a majority of the replicas before the last ring change too,
    and that previous ring, {n1, n2}, needs both nodes. Until the ring forgot its previous
    owners once handoff was done, losing n2 made every conditional write, UpdateItem and
    ConsistentRead (and, once the catalog cache expired, every table operation) answer 503
    "no Paxos majority after retries" for good. While handoff after a join is still running,
    that is still expected, so the test first waits for the ring to settle.
    """
    victim = 1
    node = ddb_cluster.nodes[victim]
    ddb_cluster.cluster.wait_for(lambda: previous_owners_forgotten(ddb_cluster.cluster),
                                 timeout_s=60, what="every ring to forget its previous owners")
    n1 = ddb_cluster.client(0)
    table = new_table(n1)
    n1.put_item(TableName=table, Item={"pk": {"S": "before"}},
                ConditionExpression="attribute_not_exists(pk)")
    node.kill9()
    try:
        for i in range(3):  # conditional writes through both survivors
            ddb_cluster.client(2 * (i % 2)).put_item(
                TableName=table, Item={"pk": {"S": f"after-{i}"}},
                ConditionExpression="attribute_not_exists(pk)")
        item = n1.get_item(TableName=table, Key={"pk": {"S": "before"}}, ConsistentRead=True)
        assert "Item" in item
    finally:
        node.start()
        ddb_cluster.cluster.wait_up(node)
        ddb_cluster.wait_http(victim)
