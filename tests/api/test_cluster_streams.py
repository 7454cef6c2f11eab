"""DynamoDB Streams and TTL on a real 3-process cluster (lmdb, ring of 16, ``--http``, the table
sweep every second, stream shards rolled every 2 seconds): boto3's ``dynamodbstreams`` client
reads through one node what was written through the others, TTL expiry shows up as service
deletes in the stream and expired items go, DescribeTable counts the items; shards close and
a child continues each (a tailing reader follows ``CHILD_SHARDS``; a reader of the whole stream
pages DescribeStream and reads parents before children), no record lost or read twice; then a
smoke test of ``aws dynamodbstreams`` and the TTL commands of ``aws dynamodb``. Every process
is stopped by PID; every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

from tests.api.test_cluster_dynamodb import CREDENTIALS, NO_RETRIES, HttpCluster, ring_settled
from tests.cluster_harness import LocalCluster, NodeProc, free_ports

pytestmark = pytest.mark.cluster

T = TypeVar("T")
WAIT_S = 40.0
SERVICE = {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"}
ROLL_S = 2  # seconds a stream shard stays open


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpCluster]:
    root = tmp_path_factory.mktemp("streams-cluster")
    ports = free_ports(6)
    local = LocalCluster(root, ring_size=16)
    result = HttpCluster(local, [f"127.0.0.1:{p}" for p in ports[3:]])
    first = f"127.0.0.1:{ports[0]}"
    for i in range(3):
        argv = local._argv(f"n{i + 1}", f"127.0.0.1:{ports[i]}", root / f"n{i + 1}",
                           [first] if i else [],
                           ["--http", result.http[i], "--table-sweep-interval", "1",
                            "--stream-shard-roll", str(ROLL_S)])
        local.nodes.append(NodeProc(f"n{i + 1}", f"127.0.0.1:{ports[i]}", root / f"n{i + 1}",
                                    argv))
    try:
        for count, node in enumerate(local.nodes, start=1):
            node.start()
            local.wait_up(node)
            local.wait_for(lambda count=count: ring_settled(local, count), timeout_s=30,
                           what=f"{count} members in every node's ring")
        local.wait_converged()
        for i in range(3):
            result.wait_http(i)
        yield result
    finally:
        local.stop()


def streams_client(cluster: HttpCluster, i: int) -> Any:
    return boto3.session.Session().client("dynamodbstreams", endpoint_url=cluster.endpoint(i),
                                          config=NO_RETRIES, **CREDENTIALS)


def eventually(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception:  # a leader moving answers a retryable 5xx: try again
            found = None
        if found is not None:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {WAIT_S}s: {what}")


def all_shards(streams: Any, arn: str, limit: int = 100) -> list[dict[str, Any]]:
    """Every shard of the stream, DescribeStream paged ``limit`` shards at a time."""
    shards: list[dict[str, Any]] = []
    start: dict[str, str] = {}
    for _ in range(1000):
        page = streams.describe_stream(StreamArn=arn, Limit=limit, **start)[
            "StreamDescription"]
        assert len(page["Shards"]) <= limit
        shards += page["Shards"]
        if "LastEvaluatedShardId" not in page:
            return shards
        start = {"ExclusiveStartShardId": page["LastEvaluatedShardId"]}
    raise AssertionError("DescribeStream kept paging")


def drain(streams: Any, it: str | None, seen: list[dict[str, Any]], limit: int = 100
          ) -> str | None:
    """Read a shard from ``it`` until caught up (the next iterator) or closed (None)."""
    while it is not None:
        page = streams.get_records(ShardIterator=it, Limit=limit)
        seen += page["Records"]
        it = page.get("NextShardIterator")
        if not page["Records"]:
            break
    return it


def all_records(streams: Any, arn: str, limit: int = 100) -> list[dict[str, Any]]:
    """Every record of the stream as the Kinesis adapter reads it: each shard from
    TRIM_HORIZON to its end (closed) or to what is there (open), parents before children."""
    shards = all_shards(streams, arn, limit)
    ids = [s["ShardId"] for s in shards]
    assert len(set(ids)) == len(ids)  # no shard on two pages
    done: set[str] = set()
    records: list[dict[str, Any]] = []
    while len(done) < len(shards):
        ready = [s for s in shards if s["ShardId"] not in done
                 and s.get("ParentShardId") in (None, *done)]
        assert ready, "a shard whose parent is listed but never readable"
        for shard in ready:
            it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            mine: list[dict[str, Any]] = []
            closed = drain(streams, it, mine) is None
            numbers = shard["SequenceNumberRange"]
            for r in mine:
                assert numbers["StartingSequenceNumber"] <= r["dynamodb"]["SequenceNumber"]
                if "EndingSequenceNumber" in numbers:
                    assert r["dynamodb"]["SequenceNumber"] <= numbers["EndingSequenceNumber"]
            assert closed or "EndingSequenceNumber" not in numbers
            records += mine
            done.add(shard["ShardId"])
    return records


def test_streams_ttl_and_counts_through_boto3(cluster: HttpCluster) -> None:
    ddb = [cluster.client(i) for i in range(3)]
    name = f"stream_{os.getpid()}"
    created = ddb[0].create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = created["TableDescription"]["LatestStreamArn"]
    ddb[1].update_time_to_live(TableName=name, TimeToLiveSpecification={
        "AttributeName": "ttl", "Enabled": True})
    now = int(time.time())
    for i in range(8):
        ddb[i % 3].put_item(TableName=name, Item={"id": {"S": f"live{i}"}, "n": {"N": "1"},
                                                  "ttl": {"N": str(now + 3600)}})
    for i in range(3):
        ddb[(i + 1) % 3].put_item(TableName=name, Item={"id": {"S": f"gone{i}"},
                                                        "ttl": {"N": str(now - 60)}})
    ddb[2].update_item(TableName=name, Key={"id": {"S": "live0"}},
                       UpdateExpression="SET n = :two", ExpressionAttributeValues={
                           ":two": {"N": "2"}})
    ddb[0].delete_item(TableName=name, Key={"id": {"S": "live7"}})

    streams = streams_client(cluster, 2)
    listed = streams.list_streams(TableName=name)["Streams"]
    assert [s["StreamArn"] for s in listed] == [arn]
    description = streams.describe_stream(StreamArn=arn)["StreamDescription"]
    assert description["StreamStatus"] == "ENABLED"
    open_shards = [s for s in all_shards(streams, arn)
                   if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    assert len(open_shards) == 16  # one open shard per ring partition
    assert description["StreamViewType"] == "NEW_AND_OLD_IMAGES"

    def expired_in_stream() -> list[dict[str, Any]] | None:
        records = all_records(streams, arn)
        removes = [r for r in records if r.get("userIdentity") == SERVICE]
        return records if len(removes) == 3 else None

    records = eventually(expired_in_stream, "the three expired items deleted by TTL")
    by_item: dict[str, list[str]] = {}
    for r in records:
        by_item.setdefault(r["dynamodb"]["Keys"]["id"]["S"], []).append(r["eventName"])
    assert by_item["live0"] == ["INSERT", "MODIFY"]
    assert by_item["live7"] == ["INSERT", "REMOVE"]
    assert all(by_item[f"gone{i}"] == ["INSERT", "REMOVE"] for i in range(3))
    modify = next(r for r in records if r["eventName"] == "MODIFY")
    assert modify["dynamodb"]["OldImage"]["n"] == {"N": "1"}
    assert modify["dynamodb"]["NewImage"]["n"] == {"N": "2"}
    for i in range(3):
        got = ddb[i].get_item(TableName=name, Key={"id": {"S": f"gone{i}"}}, ConsistentRead=True)
        assert "Item" not in got

    def counted() -> dict[str, Any] | None:
        table = ddb[1].describe_table(TableName=name)["Table"]
        return table if table["ItemCount"] == 7 else None

    table = eventually(counted, "ItemCount 7 in DescribeTable")
    assert table["TableSizeBytes"] > 0


def _stream_table(ddb: Any, name: str) -> str:
    created = ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    return str(created["TableDescription"]["LatestStreamArn"])


def _values(records: list[dict[str, Any]], key: str) -> list[int]:
    return [int(r["dynamodb"]["NewImage"]["v"]["N"]) for r in records
            if r["dynamodb"]["Keys"]["id"]["S"] == key]


def _shard_of(streams: Any, arn: str, key: str) -> str:
    """The shard holding the first record of ``key``."""
    for shard in all_shards(streams, arn):
        it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records: list[dict[str, Any]] = []
        drain(streams, it, records)
        if _values(records, key):
            return str(shard["ShardId"])
    raise AssertionError(f"no shard holds a record of {key}")


def _child(streams: Any, arn: str, parent: str) -> str:
    def found() -> str | None:
        children = streams.describe_stream(StreamArn=arn, ShardFilter={
            "Type": "CHILD_SHARDS", "ShardId": parent})["StreamDescription"]["Shards"]
        assert [c["ParentShardId"] for c in children] in ([], [parent])
        return str(children[0]["ShardId"]) if children else None

    return eventually(found, f"the child of {parent}")


def test_a_tailing_reader_follows_each_closed_shard_into_its_child(cluster: HttpCluster
                                                                   ) -> None:
    ddb = cluster.client(1)
    name = f"tail_{os.getpid()}"
    arn = _stream_table(cluster.client(0), name)
    ddb.put_item(TableName=name, Item={"id": {"S": "hot"}, "v": {"N": "0"}})
    streams = streams_client(cluster, 2)
    followed = [eventually(lambda: _shard_of(streams, arn, "hot"), "the record of hot")]
    it: str | None = streams.get_shard_iterator(
        StreamArn=arn, ShardId=followed[0], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    seen: list[dict[str, Any]] = []
    written = 1
    deadline = time.monotonic() + WAIT_S
    while len(followed) < 3 and time.monotonic() < deadline:  # two rolls at least
        ddb.put_item(TableName=name, Item={"id": {"S": "hot"}, "v": {"N": str(written)}})
        written += 1
        it = drain(streams, it, seen, limit=3)
        if it is None:  # closed, its last record read: the child continues the partition
            followed.append(_child(streams, arn, followed[-1]))
            it = streams.get_shard_iterator(StreamArn=arn, ShardId=followed[-1],
                                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        time.sleep(0.2)
    assert len(followed) >= 3, f"fewer than two rolls in {WAIT_S}s"
    eventually(lambda: True if len(_values(seen, "hot")) >= written or drain(
        streams, it, seen) is None else None, "the last writes read")
    assert _values(seen, "hot") == list(range(written))  # in order, none lost, none twice
    numbers = [r["dynamodb"]["SequenceNumber"] for r in seen]
    assert numbers == sorted(numbers)


def test_the_whole_stream_across_rolls_parents_before_children(cluster: HttpCluster) -> None:
    ddbs = [cluster.client(i) for i in range(3)]
    name = f"rolls_{os.getpid()}"
    arn = _stream_table(ddbs[0], name)
    keys = [f"k{i}" for i in range(6)]
    end = time.monotonic() + 2.5 * ROLL_S  # writes across two rolls at least
    rounds = 0
    while time.monotonic() < end or rounds < 3:
        for i, key in enumerate(keys):
            ddbs[(i + rounds) % 3].put_item(TableName=name, Item={
                "id": {"S": key}, "v": {"N": str(rounds)}})
        rounds += 1
    streams = [streams_client(cluster, i) for i in range(3)]

    def complete() -> list[dict[str, Any]] | None:
        records = all_records(streams[0], arn, limit=7)  # DescribeStream in pages of 7
        return records if all(len(_values(records, k)) >= rounds for k in keys) else None

    records = eventually(complete, "every write in the stream")
    for key in keys:
        assert _values(records, key) == list(range(rounds))  # none lost, none twice
    shards = all_shards(streams[1], arn)
    closed = {s["ShardId"]: s for s in shards if "EndingSequenceNumber" in s[
        "SequenceNumberRange"]}
    children = [s for s in shards if s.get("ParentShardId") in closed]
    assert closed and children
    for child in children:  # a child's records come after all of its parent's
        parent = closed[child["ParentShardId"]]["SequenceNumberRange"]
        assert child["SequenceNumberRange"]["StartingSequenceNumber"] > parent[
            "EndingSequenceNumber"]

    def agrees() -> bool | None:
        # Every node lists the same closed shards, once it has applied the rolls: a node whose
        # replica is a roll behind lists that shard as still open for a moment (DescribeStream
        # is eventually consistent, as DynamoDB's).
        later = {s["ShardId"]: s for s in all_shards(streams[2], arn, limit=5)}
        return all(later.get(sid) == shard for sid, shard in closed.items()) or None

    eventually(agrees, "the third node lists the same closed shards")


def aws(endpoint: str, home: Path, *args: str) -> Any:
    exe = shutil.which("aws")
    argv = [exe] if exe else [sys.executable, "-m", "awscli"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(home / "config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"), "AWS_PAGER": "",
           "AWS_MAX_ATTEMPTS": "1"}
    done = subprocess.run([*argv, *args, "--endpoint-url", endpoint, "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"aws {args}: {done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_aws_cli_streams_and_ttl_smoke(cluster: HttpCluster, tmp_path: Path) -> None:
    if shutil.which("aws") is None:
        pytest.importorskip("awscli")
    name = f"cli_stream_{os.getpid()}"
    e = cluster.endpoint
    aws(e(0), tmp_path, "dynamodb", "create-table", "--table-name", name,
        "--attribute-definitions", "AttributeName=id,AttributeType=S",
        "--key-schema", "AttributeName=id,KeyType=HASH", "--billing-mode", "PAY_PER_REQUEST",
        "--stream-specification", "StreamEnabled=true,StreamViewType=KEYS_ONLY")
    aws(e(1), tmp_path, "dynamodb", "update-time-to-live", "--table-name", name,
        "--time-to-live-specification", "Enabled=true,AttributeName=exp")
    ttl = aws(e(2), tmp_path, "dynamodb", "describe-time-to-live", "--table-name", name)
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED",
                                            "AttributeName": "exp"}
    aws(e(2), tmp_path, "dynamodb", "put-item", "--table-name", name,
        "--item", '{"id": {"S": "1"}}')
    listed = aws(e(1), tmp_path, "dynamodbstreams", "list-streams", "--table-name", name)
    arn = listed["Streams"][0]["StreamArn"]
    shards = aws(e(0), tmp_path, "dynamodbstreams", "describe-stream", "--stream-arn", arn)[
        "StreamDescription"]["Shards"]
    # Which of the 16 shards holds the record is found with boto3 (one CLI process costs about
    # a second); the CLI then reads that shard, as a user of the CLI would.
    boto = streams_client(cluster, 2)

    def holding() -> list[str]:  # the write may reach this replica's feed a moment later
        return [shard["ShardId"] for shard in shards if boto.get_records(
            ShardIterator=boto.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON")["ShardIterator"])["Records"]]

    deadline = time.monotonic() + 15
    while not (found_in := holding()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(found_in) == 1, found_in
    it = aws(e(1), tmp_path, "dynamodbstreams", "get-shard-iterator", "--stream-arn", arn,
             "--shard-id", found_in[0], "--shard-iterator-type", "TRIM_HORIZON")
    found = aws(e(2), tmp_path, "dynamodbstreams", "get-records", "--shard-iterator",
                it["ShardIterator"])["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]) for r in found] == [
        ("INSERT", {"id": {"S": "1"}})]
    assert "NewImage" not in found[0]["dynamodb"]


def test_a_deleted_tables_stream_stays_readable_and_disabled(cluster: HttpCluster) -> None:
    """As DynamoDB: DeleteTable leaves the table's stream DISABLED, listed and readable (its
    shards and records) for 24 hours; a table created again under the name gets a new stream
    of its own, listed beside the old one."""
    ddb, name = cluster.client(1), "deleted-with-stream"
    arn = _stream_table(ddb, name)
    for key, value in (("a", 1), ("b", 2), ("a", 3)):
        ddb.put_item(TableName=name, Item={"id": {"S": key}, "v": {"N": str(value)}})
    reader = streams_client(cluster, 2)
    eventually(lambda: True if len(all_records(reader, arn)) == 3 else None,
               "the three records through another node")
    ddb.delete_table(TableName=name)
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.describe_table(TableName=name)
    for i in range(3):  # through every node, the node that deleted the table too
        streams = streams_client(cluster, i)
        assert [(s["StreamArn"], s["TableName"]) for s in streams.list_streams()["Streams"]
                if s["TableName"] == name] == [(arn, name)]
        assert [s["StreamArn"] for s in streams.list_streams(TableName=name)["Streams"]] == [
            arn]
        stream = streams.describe_stream(StreamArn=arn)["StreamDescription"]
        assert (stream["StreamStatus"], stream["StreamViewType"], stream["TableName"]) == (
            "DISABLED", "NEW_IMAGE", name)
        assert stream["Shards"] and all(
            "EndingSequenceNumber" in s["SequenceNumberRange"] for s in stream["Shards"])
        records = all_records(streams, arn)
        assert (_values(records, "a"), _values(records, "b")) == ([1, 3], [2])
        assert [r["eventName"] for r in records if r["dynamodb"]["Keys"]["id"]["S"] == "a"
                ] == ["INSERT", "MODIFY"]
    # Created again: a new stream (a new table, a new bucket), the old one still listed.
    again = _stream_table(ddb, name)
    assert again != arn
    ddb.put_item(TableName=name, Item={"id": {"S": "c"}, "v": {"N": "4"}})
    eventually(lambda: True if _values(all_records(reader, again), "c") == [4] else None,
               "the new stream's record")
    assert [s["StreamArn"] for s in reader.list_streams(TableName=name)["Streams"]] == sorted(
        [arn, again])
    assert not _values(all_records(reader, arn), "c")
    assert not _values(all_records(reader, again), "a")
    ddb.delete_table(TableName=name)
    assert [s["StreamArn"] for s in reader.list_streams(TableName=name)["Streams"]] == sorted(
        [arn, again])
    with pytest.raises(reader.exceptions.ResourceNotFoundException):
        reader.list_streams(TableName="never-a-table")
