"""How long large but valid DynamoDB requests hold a node's event loop, and where the time goes.

Two parts:

* ``--stages``: in this process, no node. For each body shape, the best of ``--repeat`` runs of
  each step of the write path, in ms of CPU time of this process (other load on the machine
  counts little): ``orjson.loads`` of the body, ``item_from_wire`` (validation and typed
  values), ``item_size`` and ``encode_item`` (the stored bytes), and ``prepare_body`` (what a
  large body now costs in the worker thread: parse and all of the above).
* the default: one real node (memory engine, ``--n 1``) started in this process, with a ticker
  coroutine on its event loop that sleeps 2 ms at a time and records how late it wakes up. A
  client in another process (so it never shares this GIL) sends each request ``--rounds``
  times; for each the script reports the request's latency and the longest (and 99th
  percentile) event-loop stall the ticker saw while it ran.

Every body is valid and within DynamoDB's limits: items of at most 400 KB (the worst shapes:
tens of thousands of attributes, a list of 200,000 NULLs, 130,000 numbers, 31 levels of
nesting), batches of 25 such items in at most 16 MB, an UpdateItem whose value is a 400 KB
list, and the GetItem (plain, projected), Query and failed conditional put of such an item.

Usage: ``python bench/large_items.py [--stages] [--rounds 3] [--scenarios a,b]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

HOST = "127.0.0.1"
TARGET = "DynamoDB_20120810."
TABLE = "bench"


# ------------------------------------------------------------------------------ shapes


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"NULL": True}
    for level in range(levels):
        value = ({"L": [value, {"N": str(level)}]} if level % 2
                 else {"M": {"m": value, "s": {"S": "x"}}})
    return value


def items() -> dict[str, dict[str, Any]]:
    """Items of (almost) 400 KB whose wire form costs the most per byte of item size."""
    return {
        "wide": {f"a{i:05d}": {"S": "xy"} for i in range(50_000)},
        "list-null": {"l": {"L": [{"NULL": True}] * 199_000}},
        "list-num": {"l": {"L": [{"N": str(i * 7 + 1)} for i in range(82_000)]}},
        "map-str": {"m": {"M": {f"k{i}": {"S": f"v{i}"} for i in range(33_000)}}},
        "num-set": {"s": {"NS": [str(i) for i in range(95_000)]}},
        "deep": {f"d{i}": _deep(31) for i in range(1_600)},
    }


def _batch_item(i: int, shape: str) -> dict[str, Any]:
    # 25 items of ~620 KB of JSON each fill the 16 MB request limit.
    if shape == "wide":
        return {f"a{i:05d}": {"S": "xy"} for i in range(24_500)}
    return {"l": {"L": [{"NULL": True}] * 43_500}}


def bodies() -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for name, item in items().items():
        out[f"put-{name}"] = ("PutItem", orjson.dumps(
            {"TableName": TABLE, "Item": {"pk": {"S": f"put-{name}"}} | item}))
    for shape in ("wide", "list"):
        batch = [{"PutRequest": {"Item": {"pk": {"S": f"b{shape}{i}"}} | _batch_item(i, shape)}}
                 for i in range(25)]
        out[f"batch-{shape}"] = ("BatchWriteItem", orjson.dumps({"RequestItems": {TABLE: batch}}))
    value = {"L": [{"NULL": True}] * 199_000}
    out["update-list"] = ("UpdateItem", orjson.dumps({
        "TableName": TABLE, "Key": {"pk": {"S": "update-list"}},
        "UpdateExpression": "SET #l = :v", "ExpressionAttributeNames": {"#l": "l"},
        "ExpressionAttributeValues": {":v": value}}))
    out["get-list"] = ("GetItem", orjson.dumps(
        {"TableName": TABLE, "Key": {"pk": {"S": "put-list-null"}}}))
    # The reads that decode the item (api/large_reads.py): a projection, capacity, a page.
    out["get-list-projected"] = ("GetItem", orjson.dumps(
        {"TableName": TABLE, "Key": {"pk": {"S": "put-list-null"}},
         "ProjectionExpression": "l[0]", "ReturnConsumedCapacity": "TOTAL"}))
    out["query-list"] = ("Query", orjson.dumps(
        {"TableName": TABLE, "KeyConditionExpression": "pk = :k",
         "ExpressionAttributeValues": {":k": {"S": "put-list-null"}}}))
    out["failed-condition-list"] = ("PutItem", orjson.dumps(
        {"TableName": TABLE, "Item": {"pk": {"S": "put-list-null"}},
         "ConditionExpression": "attribute_not_exists(pk)",
         "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}))
    return out


# ------------------------------------------------------------------------------ stages


def _best_ms(function: Any, *args: Any, repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()  # CPU time: the machine's other load does not count
        result = function(*args)
        best = min(best, time.process_time() - started)
    return best * 1000, result


def stages(repeat: int) -> None:
    from dynamokv.api.attributes import item_from_wire, item_size
    try:
        from dynamokv.api.layout.items import encode_item
    except ImportError:  # the layout before api/ had sub-packages
        from dynamokv.api.items import encode_item  # type: ignore[no-redef]

    try:
        from dynamokv.api.bodies import prepare_body
    except ImportError:  # the code before large bodies went to a worker thread
        prepare_body = None

    for name, item in items().items():
        body = orjson.dumps({"TableName": TABLE, "Item": {"pk": {"S": "x"}} | item})
        loads_ms, parsed = _best_ms(orjson.loads, body, repeat=repeat)
        wire_ms, typed = _best_ms(item_from_wire, parsed["Item"], repeat=repeat)
        typed = {**typed}  # a plain dict: what an item built by an update is
        size_ms, size = _best_ms(item_size, typed, repeat=repeat)
        encode_ms, _ = _best_ms(encode_item, typed, repeat=repeat)
        prepare_ms = (_best_ms(prepare_body, body, "PutItem", repeat=repeat)[0]
                      if prepare_body is not None else None)
        print(json.dumps({"shape": name, "body_mb": round(len(body) / 1e6, 2),
                          "item_kb": round(size / 1024, 1), "loads_ms": round(loads_ms, 1),
                          "item_from_wire_ms": round(wire_ms, 1),
                          "item_size_ms": round(size_ms, 1),
                          "encode_item_ms": round(encode_ms, 1),
                          "prepare_body_ms": prepare_ms and round(prepare_ms, 1)}), flush=True)


# ------------------------------------------------------------------------------ node


def _post(port: int, operation: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=300)
    try:
        conn.request("POST", "/", body=body, headers={
            "X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.0"})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def _client(port: int, jobs: Any, results: Any) -> None:
    """Runs in another process: send each (operation, body) and report status and latency."""
    while True:
        job = jobs.get()
        if job is None:
            return
        operation, body = job
        started = time.perf_counter()
        status, answer = _post(port, operation, body)
        elapsed = time.perf_counter() - started
        message = "" if status == 200 else json.loads(answer).get("message", "")[:80]
        results.put((status, elapsed, message))


class Ticker:
    """Sleeps ``period`` at a time on the loop and records how late each wake-up is."""

    def __init__(self, period: float = 0.002) -> None:
        self.period = period
        self.lateness: list[float] = []
        self.recording = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.period)
            if self.recording:
                self.lateness.append(loop.time() - started - self.period)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def _settle(port: int) -> None:
    table = orjson.dumps({
        "TableName": TABLE, "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST"})
    probe = orjson.dumps({"TableName": TABLE, "Item": {"pk": {"S": "probe"}}})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a new node answers 503 until its ring settles
        await asyncio.to_thread(_post, port, "CreateTable", table)
        if (await asyncio.to_thread(_post, port, "PutItem", probe))[0] == 200:
            return
        await asyncio.sleep(0.5)
    raise SystemExit("the node never accepted a write")


async def against_node(rounds: int, names: list[str]) -> None:
    from dynamokv.core.settings import QuorumDefaults
    from dynamokv.runtime.config import NodeConfig
    from dynamokv.runtime.server import start_node

    all_bodies = bodies()
    root = Path(tempfile.mkdtemp(prefix="large-items-"))
    config = NodeConfig(node_id="n1", listen=f"{HOST}:{_free_port()}", data_dir=root / "n1",
                        engine="memory", ring_size=8, quorum=QuorumDefaults(n=1, r=1, w=1),
                        http_listen=f"{HOST}:{_free_port()}")
    node = await start_node(config)
    port = int(config.http_listen.rpartition(":")[2])  # type: ignore[union-attr]
    ticker = Ticker()
    ticking = asyncio.create_task(ticker.run())
    jobs: Any = multiprocessing.Queue()
    results: Any = multiprocessing.Queue()
    client = multiprocessing.Process(target=_client, args=(port, jobs, results), daemon=True)
    client.start()
    try:
        await _settle(port)
        for round_ in range(rounds):
            for name in names:
                operation, body = all_bodies[name]
                await asyncio.sleep(0.3)
                ticker.lateness = []
                ticker.recording = True
                jobs.put((operation, body))
                status, elapsed, message = await asyncio.to_thread(results.get)
                ticker.recording = False
                stalls = sorted(ticker.lateness) or [0.0]
                print(json.dumps({
                    "round": round_ + 1, "scenario": name, "body_mb": round(len(body) / 1e6, 2),
                    "status": status, "message": message, "request_s": round(elapsed, 2),
                    "max_stall_ms": round(stalls[-1] * 1000, 1),
                    "p99_stall_ms": round(stalls[int(len(stalls) * 0.99)] * 1000, 1),
                    "median_stall_ms": round(statistics.median(stalls) * 1000, 2)}), flush=True)
    finally:
        jobs.put(None)
        client.join(10)
        if client.is_alive():
            client.kill()
        ticking.cancel()
        await node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stages", action="store_true", help="time the steps, no node")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step (--stages)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(bodies()),
                        help="comma-separated subset of the requests, in order")
    args = parser.parse_args()
    if args.stages:
        stages(args.repeat)
        return 0
    with contextlib.suppress(ImportError):  # as `dynamokv node start` runs
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(against_node(args.rounds, args.scenarios.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
