"""Operator verbs: ``dynamokv where``, ``hints``, ``aae`` and ``drain``, each with ``--json``.

Owns: their argument parsers and output. They use the node-local ClusterRequest actions of
``dynamokv.core.operator_actions`` (``drain`` goes to the claimant like the membership verbs).
May import: ``dynamokv.client``, ``dynamokv.errors``, ``dynamokv.cli.{client_tls,render}``, rich.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from rich.table import Table

from dynamokv.cli import client_tls, render
from dynamokv.client import Client
from dynamokv.errors import DynamoKVError, RequestTimeout

EXIT_OK = 0


def add_commands(sub: Any, command: Any, client_parent: argparse.ArgumentParser) -> None:
    where = command(
        sub, "where", "Show where a key lives: its partition, replicas, and what each holds.",
        "dynamokv where greeting\ndynamokv where cart-42 --bucket carts --json", cmd_where,
        parents=[client_parent],
        details="""\
        Asks one node for the key's preference list (primaries, and who serves it now that
        some may be down), then each replica for its own copy: siblings, tombstones, clock
        size. A replica without a copy, or a fallback holding a hint, shows what repair is
        still due.""")
    where.add_argument("key")
    where.add_argument("--bucket", default="default", help="bucket (default: default)")

    hints = command(
        sub, "hints", "Show, or clear, the hints a node holds for nodes that were down.",
        "dynamokv hints --node 127.0.0.1:7002\ndynamokv hints --clear n3 --node 127.0.0.1:7002",
        cmd_hints, parents=[client_parent],
        details="""\
        Hints are writes a fallback took for a down primary; they are replayed when it is
        back. Clearing them drops those copies: only anti-entropy or read repair then brings
        the writes to the primary. Clear hints only for a node that is gone for good.""")
    group = hints.add_mutually_exclusive_group()
    group.add_argument("--clear", metavar="NODE", help="delete the hints held for NODE")
    group.add_argument("--clear-all", action="store_true", help="delete every hint held")

    aae = command(
        sub, "aae", "Run an anti-entropy exchange of one partition now.",
        "dynamokv aae 17 --node 127.0.0.1:7001\ndynamokv aae 17 --peer n3 --wait", cmd_aae,
        parents=[client_parent],
        details="""\
        The node given with --node compares its Merkle tree of the partition with a peer's
        (--peer, default: the first replica that is up) and pulls what differs, without
        waiting for the anti-entropy schedule. The node must be a replica of the partition
        (`dynamokv where KEY` names the partition of a key).""")
    aae.add_argument("partition", type=int)
    aae.add_argument("--peer", default="", help="the replica to compare with")
    aae.add_argument("--wait", action="store_true", help="wait for the exchange to finish")

    drain = command(
        sub, "drain", "Take a node out: it hands off all its data, then leaves the ring.",
        "dynamokv drain n3 --wait\ndynamokv drain n3 --wait --wait-timeout 600", cmd_drain,
        parents=[client_parent],
        details="""\
        Stages the node's leave and commits it (as `cluster leave` + `cluster commit`); the
        node keeps serving while it hands its partitions to their new owners. With --wait,
        returns once it is no longer a member: then it is safe to stop.""")
    drain.add_argument("node_id", help="the node to take out, e.g. n3")
    drain.add_argument("--wait", action="store_true", help="wait until it has left")
    drain.add_argument("--wait-timeout", type=float, default=900.0, metavar="SECONDS",
                       help="give up waiting after this long (default 900)")


def _client(args: argparse.Namespace, nodes: list[str] | None = None) -> Client:
    from dynamokv.cli.main import _nodes

    return Client(nodes or _nodes(args), routing="server", timeout_s=args.timeout,
                  tls=client_tls.context())


def cmd_where(args: argparse.Namespace) -> int:
    key_hex = args.key.encode().hex()
    with _client(args) as client:
        doc = client.cluster("where", args.bucket, key_hex)
    doc["key"] = args.key
    doc["replicas"] = {}
    for primary in doc["primaries"]:
        doc["replicas"][primary["node"]] = _replica_view(args, primary, key_hex)
    for s in doc["serving"]:
        if s["kind"] == "fallback" and s["node"] not in doc["replicas"]:
            doc["replicas"][s["node"]] = _replica_view(
                args, {"node": s["node"], "address": ""}, key_hex)
    doc["replicas_agree"] = _agree(doc)
    if args.json:
        render.print_json(doc)
        return EXIT_OK
    console = render.make_console()
    verdict = ("replicas agree" if doc["replicas_agree"] else
               "replicas DIFFER: read repair, hints or `dynamokv aae "
               f"{doc['partition']}` bring them together")
    table = Table(title=f"{args.bucket}/{args.key}: partition {doc['partition']}, N={doc['n']}, "
                  f"ring version {doc['ring_version']} (as seen by {doc['node']}); {verdict}",
                  title_justify="left")
    for col in ("node", "role", "up", "copy", "hints held here"):
        table.add_column(col)
    roles = {p["node"]: "primary" for p in doc["primaries"]}
    roles.update({s["node"]: f"fallback for {s['for']}" for s in doc["serving"]
                  if s["kind"] == "fallback"})
    ups = {p["node"]: p["up"] for p in doc["primaries"]}
    for node_id, view in doc["replicas"].items():
        table.add_row(node_id, roles.get(node_id, ""), str(ups.get(node_id, True)).lower(),
                      _copy_text(view.get("local"), view.get("error")),
                      ", ".join(f"for {t}: {_copy_text(c)}"
                                for t, c in (view.get("hinted_here") or {}).items()) or "-")
    console.print(table)
    return EXIT_OK


def _agree(doc: dict[str, Any]) -> bool:
    """Whether every primary answered with the same copy (siblings, tombstones, clock size and
    newest write time; None for no copy): a cheap sign that nothing is left to repair."""
    copies = [doc["replicas"][p["node"]] for p in doc["primaries"]]
    if any("error" in c for c in copies):
        return False
    return len({repr(c.get("local")) for c in copies}) == 1


def _replica_view(args: argparse.Namespace, member: dict[str, Any], key_hex: str
                  ) -> dict[str, Any]:
    address = member.get("address") or _address_of(args, member["node"])
    if not address:
        return {"error": "no address known"}
    try:
        with _client(args, [address]) as client:
            return client.cluster("where", args.bucket, key_hex)
    except DynamoKVError as exc:
        return {"error": f"{exc.code}: {exc.message}"}


def _address_of(args: argparse.Namespace, node_id: str) -> str:
    with _client(args) as client:
        ring = client.ring()
    return ring.address_of(node_id) or ""


def _copy_text(copy: dict[str, Any] | None, error: str | None = None) -> str:
    if error:
        return f"unreachable ({error})"
    if copy is None:
        return "none"
    text = f"{copy['siblings']} sibling(s)"
    if copy["tombstones"]:
        text += f", {copy['tombstones']} tombstone(s)"
    return text + f", clock of {copy['clock_entries']}"


def cmd_hints(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.clear or args.clear_all:
            doc = client.cluster("hints-clear", args.clear or "")
        else:
            doc = client.cluster("hints")
    if args.json:
        render.print_json(doc)
        return EXIT_OK
    console = render.make_console()
    if "cleared" in doc:
        console.print(f"{doc['node']}: cleared {doc['cleared'] or 'nothing'}; remaining "
                      f"{doc['remaining'] or 'none'}", markup=False)
        return EXIT_OK
    table = Table(title=f"hints held by {doc['node']} (replayed so far: {doc['replayed']})",
                  title_justify="left")
    table.add_column("for node")
    table.add_column("hints", justify="right")
    for target, count in sorted(doc["pending"].items()):
        table.add_row(target, str(count))
    console.print(table if doc["pending"] else "no hints held")
    return EXIT_OK


def cmd_aae(args: argparse.Namespace) -> int:
    with _client(args) as client:
        doc = client.cluster("aae", str(args.partition), args.peer)
        if args.wait:
            doc["progress"] = []
            doc["result"] = _wait_exchange(client, doc, args.timeout, doc["progress"],
                                           quiet=args.json)
    if args.json:
        render.print_json(doc)
    else:
        line = f"{doc['node']}: anti-entropy of partition {doc['partition']} with {doc['peer']}"
        result = doc.get("result")
        line += (f": {result.get('outcome')}, {result.get('keys_repaired', 0)} key(s) repaired"
                 if result else " started (see `dynamokv status`)")
        render.make_console().print(line, markup=False)
    return EXIT_OK


def _wait_exchange(client: Client, started: dict[str, Any], timeout_s: float,
                   progress: list[dict[str, Any]], *, quiet: bool) -> dict[str, Any]:
    """Poll until the exchange is over, noting each step it is seen in (``progress``; printed
    to stderr unless ``quiet``): which stage, and the keys repaired so far."""
    partition, peer = str(started["partition"]), started["peer"]
    t0 = time.monotonic()
    deadline = t0 + max(timeout_s, 30.0)
    while time.monotonic() < deadline:
        doc = client.cluster("aae-result", partition, peer)
        last = doc.get("last") or {}
        if not doc["running"] and last.get("at_ms", -1) >= started["started_ms"]:
            return dict(last)
        _note(progress, _stage(client, started, last), t0, quiet)
        time.sleep(0.2)
    raise RequestTimeout(f"the exchange of partition {partition} did not finish in time")


def _stage(client: Client, started: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    current = (client.status().get("anti_entropy") or {}).get("current") or {}
    same = (current.get("partition"), current.get("peer")) == (started["partition"],
                                                               started["peer"])
    repaired = last.get("keys_repaired", 0) if last.get("outcome") == "running" else 0
    return {"stage": current.get("state", "finishing") if same else "finishing",
            "keys_repaired_so_far": repaired}


def _note(progress: list[dict[str, Any]], step: dict[str, Any], t0: float, quiet: bool
          ) -> None:
    if progress and {k: progress[-1][k] for k in step} == step:
        return  # nothing new
    step = {"after_s": round(time.monotonic() - t0, 1), **step}
    progress.append(step)
    if not quiet:
        print(f"  {step['after_s']:5.1f} s  {step['stage'].replace('_', ' ')}, "
              f"{step['keys_repaired_so_far']} key(s) repaired so far", file=sys.stderr)


def cmd_drain(args: argparse.Namespace) -> int:
    with _client(args) as client:
        doc = client.cluster("drain", args.node_id)
        if args.wait:
            doc["left_after_s"] = _wait_left(client, args.node_id, args.wait_timeout)
    if args.json:
        render.print_json(doc)
    else:
        left = doc.get("left_after_s")
        render.make_console().print(
            f"{args.node_id}: " + (f"left the ring after {left:.1f} s; safe to stop"
                                   if left is not None else
                                   "draining (handing off its data); "
                                   f"`dynamokv drain {args.node_id} --wait` waits for it"),
            markup=False)
    return EXIT_OK


def _wait_left(client: Client, node_id: str, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if node_id not in client.ring().node_ids():
                return time.monotonic() - start
        except DynamoKVError:
            pass  # the node asked may be the one leaving; the client tries the others
        time.sleep(0.5)
    raise RequestTimeout(f"{node_id} is still a member after {timeout_s:.0f} s; see "
                         "`dynamokv status` for its handoffs")


__all__ = ["add_commands"]
