"""Jepsen-style: DynamoDB items on 5 real node processes under kill -9, SIGSTOP, kernel
partitions and skewed clocks, with every history checked for per-item linearizability.

Five nodes, each on its own loopback address (127.0.0.11-15, so iptables rules between those
addresses cut links while the clients on 127.0.0.1 still reach every node's HTTP API); node 2's
wall clock runs 3 s fast and node 4's 2 s slow. Five clients, one per node, run registers (put,
conditional put, delete, ConsistentRead) and counters (UpdateItem ADD, ConsistentRead) on a few
items while a nemesis kills and restarts a node, pauses one, splits the cluster 2|3 and
isolates one. After the heal, a ConsistentRead of every item through every node closes the
history, which ``dynamokv.sim.linearizability`` then checks (an acknowledged write that was
lost shows up there as a read that no order explains). Needs root and iptables; skipped
otherwise. Every rule added is removed.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tests.cluster_harness import LocalCluster, NodeProc, free_ports, host_of
from tests.kernel_faults import dropped_between, iptables_missing

from dynamokv.sim.linearizability import Op, check_history

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NODES = 5
TABLE = "jepsen"
REGISTERS = ("r0", "r1", "r2")
COUNTERS = ("c0", "c1")
WORKLOAD_S = float(os.environ.get("DYNAMOKV_JEPSEN_S", "34"))
SKEW_MS = {2: 3_000, 4: -2_000}
CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2,
                read_timeout=6)
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "AKIDTEST",
               "aws_secret_access_key": "secret"}


class Jepsen:
    def __init__(self, root: Path) -> None:
        self.cluster = LocalCluster(root, ring_size=16, distinct_hosts=True)
        self.http = [f"127.0.0.1:{p}" for p in free_ports(NODES)]
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        first = ""
        for i in range(1, NODES + 1):
            host = host_of(i, True)
            address = f"{host}:{free_ports(1, host)[0]}"
            first = first or address
            extra = ["--http", self.http[i - 1]]
            if i in SKEW_MS:
                extra += ["--wall-clock-offset-ms", str(SKEW_MS[i])]
            argv = self.cluster._argv(f"n{i}", address, root / f"n{i}",
                                      [first] if i > 1 else [], extra)
            self.cluster.nodes.append(NodeProc(f"n{i}", address, root / f"n{i}", argv))

    def host(self, i: int) -> str:
        return host_of(i, True)

    def client(self, i: int) -> Any:
        return boto3.session.Session().client(
            "dynamodb", endpoint_url=f"http://{self.http[i]}", config=CONFIG, **CREDENTIALS)

    def record(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)

    # ---- the clients -----------------------------------------------------------------------
    def worker(self, w: int) -> None:
        rng = random.Random(w)
        ddb = self.client(w % NODES)
        seen: dict[str, bytes | None] = {}
        n = 0
        while not self.stop.is_set():
            n += 1
            if rng.random() < 0.4:
                self._counter_op(ddb, rng.choice(COUNTERS), rng, f"w{w}")
            else:
                key = rng.choice(REGISTERS)
                seen[key] = self._register_op(ddb, key, rng, f"w{w}-{n}", seen.get(key))
            time.sleep(rng.random() * 0.02)

    def _register_op(self, ddb: Any, key: str, rng: random.Random, tag: str,
                     last: bytes | None) -> bytes | None:
        roll = rng.random()
        value = tag.encode()
        t0 = time.monotonic()
        try:
            if roll < 0.35:
                got = ddb.get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True)
                result = got["Item"]["v"]["S"].encode() if "Item" in got else None
                self.record(Op(key, "read", t0, time.monotonic(), result=result, label=tag))
                return result
            if roll < 0.65:
                ddb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "v": {"S": tag}})
                self.record(Op(key, "put", t0, time.monotonic(), value=value, label=tag))
                return value
            if roll < 0.92:
                cond: dict[str, Any] = (
                    {"ConditionExpression": "attribute_not_exists(pk)"} if last is None else
                    {"ConditionExpression": "v = :e",
                     "ExpressionAttributeValues": {":e": {"S": last.decode()}}})
                try:
                    ddb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "v": {"S": tag}},
                                 **cond)
                    ok = True
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise
                    ok = False
                self.record(Op(key, "cput", t0, time.monotonic(), value=value, expected=last,
                               result=ok, label=tag))
                return value if ok else last
            ddb.delete_item(TableName=TABLE, Key={"pk": {"S": key}})
            self.record(Op(key, "delete", t0, time.monotonic(), label=tag))
            return None
        except (ClientError, BotoCoreError) as exc:
            self._unknown(key, roll, t0, value, last, tag, exc)
            return last

    def _unknown(self, key: str, roll: float, t0: float, value: bytes, last: bytes | None,
                 tag: str, exc: Exception) -> None:
        """A failed request: a write's outcome is unknown (it may have applied); a read is
        dropped; a definite refusal (4xx other than a condition) wrote nothing."""
        if isinstance(exc, ClientError) and exc.response.get("ResponseMetadata", {}).get(
                "HTTPStatusCode", 500) < 500:
            return
        if roll < 0.35:
            return
        kind = "put" if roll < 0.65 else "cput" if roll < 0.92 else "delete"
        self.record(Op(key, kind, t0, None, value=None if kind == "delete" else value,
                       expected=last, label=tag))  # type: ignore[arg-type]

    def _counter_op(self, ddb: Any, key: str, rng: random.Random, tag: str) -> None:
        t0 = time.monotonic()
        read = rng.random() < 0.4
        try:
            if read:
                got = ddb.get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True)
                result = got["Item"]["n"]["N"].encode() if "Item" in got else None
                self.record(Op(key, "read", t0, time.monotonic(), result=result, label=tag))
                return
            got = ddb.update_item(TableName=TABLE, Key={"pk": {"S": key}},
                                  UpdateExpression="ADD n :one",
                                  ExpressionAttributeValues={":one": {"N": "1"}},
                                  ReturnValues="UPDATED_NEW")
            self.record(Op(key, "add", t0, time.monotonic(), amount=1,
                           result=got["Attributes"]["n"]["N"].encode(), label=tag))
        except (ClientError, BotoCoreError) as exc:
            if read:
                return
            status = (exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
                      if isinstance(exc, ClientError) else 500)
            if status >= 500:
                self.record(Op(key, "add", t0, None, amount=1, label=tag))

    # ---- the nemesis -----------------------------------------------------------------------
    def nemesis(self) -> list[str]:
        nodes = self.cluster.nodes
        done: list[str] = []
        time.sleep(4)
        nodes[2].kill9()
        done.append("kill -9 n3")
        time.sleep(4)
        nodes[2].start()
        time.sleep(3)
        nodes[4].pause()
        done.append("SIGSTOP n5")
        time.sleep(3)
        nodes[4].resume()
        time.sleep(2)
        with dropped_between([self.host(1), self.host(2)], [self.host(i) for i in (3, 4, 5)]):
            done.append("partition n1 n2 | n3 n4 n5")
            time.sleep(6)
        time.sleep(2)
        with dropped_between([self.host(4)], [self.host(i) for i in (1, 2, 3, 5)]):
            done.append("isolate n4")
            time.sleep(4)
        return done


def _until(fn: Any, timeout_s: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return fn()
        except (ClientError, BotoCoreError) as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"no success in {timeout_s}s: {last!r}")


def test_items_stay_linearizable_under_crashes_pauses_partitions_and_skew(tmp_path: Path
                                                                           ) -> None:
    reason = iptables_missing()
    if reason:
        pytest.skip(reason)
    j = Jepsen(tmp_path)
    cluster = j.cluster
    try:
        for node in cluster.nodes:
            node.start()
            cluster.wait_up(node)
        cluster.wait_converged()
        _until(lambda: j.client(0).create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}]))
        for i in range(NODES):
            _until(lambda i=i: j.client(i).describe_table(TableName=TABLE))
        workers = [threading.Thread(target=j.worker, args=(w,), daemon=True)
                   for w in range(NODES)]
        for t in workers:
            t.start()
        faults = j.nemesis()
        time.sleep(max(0.0, WORKLOAD_S - 34))
        j.stop.set()
        for t in workers:
            t.join(timeout=30)
        for node in cluster.nodes:  # every process runs again, unpaused
            node.resume()
        for i in range(NODES):  # the history's last word: a consistent read through each
            ddb = j.client(i)
            for key in REGISTERS + COUNTERS:
                t0 = time.monotonic()
                got = _until(lambda ddb=ddb, key=key: ddb.get_item(
                    TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True))
                attr = "n" if key in COUNTERS else "v"
                item = got.get("Item")
                result = (item[attr]["N" if attr == "n" else "S"].encode()
                          if item and attr in item else None)
                j.record(Op(key, "read", t0, time.monotonic(), result=result,
                            label=f"final@n{i + 1}"))
        acked = sum(1 for o in j.ops if o.complete is not None and o.kind != "read")
        assert acked > 50, f"too few acknowledged writes to say anything: {acked}"
        verdict = check_history(j.ops)
        print(f"faults: {', '.join(faults)}; {len(j.ops)} operations, {acked} acknowledged "
              f"writes, {sum(1 for o in j.ops if o.complete is None)} unknown; "
              f"verdict {verdict.outcome}")
        assert verdict.outcome in ("ok", "unknown"), verdict.explain()
    finally:
        j.stop.set()
        cluster.stop()
