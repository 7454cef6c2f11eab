"""How long one large DynamoDB API request holds a node's event loop, seen from a GetItem.

Starts one node (``python -m dynamokv node start --engine memory --http ...``) on free ports
of 127.0.0.1, then for each scenario runs a GetItem loop in a separate process (so the client
never shares a GIL with the sender) while this process sends one large request over a raw
socket, and reports the GetItems' latency during that request. Scenarios:

* ``idle``: no large request (the baseline);
* ``put-12mb``: a PutItem of 600,000 one-letter attributes (~11 MiB), refused by its size;
* ``put-4.5mb``: a PutItem of 230,000 attributes, under the size cap, so parsed and then
  refused as over 400 KB;
* ``batch-16mb``: a BatchWriteItem of ~15 MiB of tiny attributes, the worst body still parsed.

Usage: ``python bench/http_loop_hold.py [--rounds 3] [--scenarios idle,put-12mb]``.
The node is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from common import summarize

HOST = "127.0.0.1"
TARGET = "DynamoDB_20120810."


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def post(port: int, operation: str, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        conn.request("POST", "/", body=body, headers={
            "X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.0"})
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def reader(port: int, stop: Any, out: Any) -> None:
    body = b'{"TableName": "bench", "Key": {"pk": {"S": "k"}}}'
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    while not stop.is_set():
        started = time.perf_counter()
        conn.request("POST", "/", body=body, headers={"X-Amz-Target": TARGET + "GetItem"})
        conn.getresponse().read()
        out.put((time.perf_counter(), time.perf_counter() - started))


def big_bodies() -> dict[str, tuple[str, bytes]]:
    def item(count: int) -> dict[str, Any]:
        return {"pk": {"S": "x"}} | {f"a{i}": {"S": "x"} for i in range(count)}

    batch = {"bench": [{"PutRequest": {"Item": item(30_000) | {"pk": {"S": f"b{i}"}}}}
                       for i in range(25)]}
    return {
        "idle": ("", b""),
        "put-12mb": ("PutItem", orjson.dumps({"TableName": "bench", "Item": item(600_000)})),
        "put-4.5mb": ("PutItem", orjson.dumps({"TableName": "bench", "Item": item(230_000)})),
        "batch-16mb": ("BatchWriteItem", orjson.dumps({"RequestItems": batch})),
    }


def scenario(port: int, operation: str, body: bytes) -> dict[str, Any]:
    stop = multiprocessing.Event()
    out: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=reader, args=(port, stop, out))
    proc.start()
    time.sleep(1.0)  # the reader is warm
    started = time.perf_counter()
    answer: Any = None
    if operation:
        status, payload = post(port, operation, body)
        answer = f"{status} {payload.get('message', '')[:60]}"
    else:
        time.sleep(1.0)
    ended = time.perf_counter()
    time.sleep(0.3)
    stop.set()
    samples = []
    while proc.is_alive() or not out.empty():
        try:
            finished, latency = out.get(timeout=0.5)
        except Exception:
            if not proc.is_alive():
                break
            continue
        if finished >= started and finished - latency <= ended + 0.3:
            samples.append(latency)
    proc.join(10)
    summary = summarize(samples) if samples else {}
    return {"body_mib": round(len(body) / 2**20, 1), "request_s": round(ended - started, 2),
            "answer": answer, "reads": len(samples),
            "max_ms": round(max(samples) * 1000, 1) if samples else None, **summary}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default="idle,put-12mb,put-4.5mb,batch-16mb",
                        help="comma-separated subset of the scenarios, in order")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="loop-hold-"))
    listen, http_port = free_port(), free_port()
    argv = [sys.executable, "-m", "dynamokv", "node", "start", "--id", "n1", "--listen",
            f"{HOST}:{listen}", "--data-dir", str(root / "n1"), "--engine", "memory", "--n", "1",
            "--r", "1", "--w", "1", "--ring-size", "8", "--http", f"{HOST}:{http_port}"]
    with open(root / "node.log", "wb") as log:
        node = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{HOST}:{http_port}/", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        table = orjson.dumps({
            "TableName": "bench", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a new node answers 503 until its ring settles
            created = post(http_port, "CreateTable", table)
            if post(http_port, "PutItem",
                    b'{"TableName": "bench", "Item": {"pk": {"S": "k"}}}')[0] == 200:
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"the node never accepted a write: {created}")
        bodies = big_bodies()
        for round_ in range(args.rounds):
            for name in args.scenarios.split(","):
                operation, body = bodies[name]
                result = scenario(http_port, operation, body)
                print(json.dumps({"round": round_ + 1, "scenario": name, **result}), flush=True)
    finally:
        os.kill(node.pid, signal.SIGTERM)
        node.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
