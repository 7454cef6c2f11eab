"""``dynamokv cluster join|leave|plan|commit|clear`` and the cluster-wide ``status`` view.

Owns: the membership subcommands (riak-admin cluster's staged verbs) and ``cluster_status``,
which asks every member for its view and lays them side by side.
May import: ``dynamokv.client``, ``dynamokv.errors``, ``dynamokv.cli.render``, rich.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from dynamokv.cli import client_tls, render
from dynamokv.client import Client
from dynamokv.errors import DynamoKVError

EXIT_OK = 0

ACTIONS = {
    "join": ("Stage a node's join (it must be running, started with --staged-join).",
             "dynamokv cluster join n4 127.0.0.1:7004\ndynamokv cluster plan\n"
             "dynamokv cluster commit"),
    "leave": ("Stage a node's leave: at commit it hands off its data, then leaves.",
              "dynamokv cluster leave n3\ndynamokv cluster plan\ndynamokv cluster commit"),
    "plan": ("Show the staged changes and the partitions they would move.",
             "dynamokv cluster plan --json"),
    "commit": ("Apply the staged changes: a new ring, handoffs start at once.",
               "dynamokv cluster commit"),
    "clear": ("Drop every staged change.", "dynamokv cluster clear"),
}


def add_commands(cl_sub: Any, command: Any, client_parent: argparse.ArgumentParser) -> None:
    """Register the membership verbs under ``dynamokv cluster``."""
    for action, (purpose, example) in ACTIONS.items():
        p = command(cl_sub, action, purpose, example, cmd_membership, parents=[client_parent],
                    details="Sent to the claimant (any node tells the client where it is). "
                    "Staged changes do nothing until `dynamokv cluster commit`.")
        p.set_defaults(action=action)
        if action == "join":
            p.add_argument("node_id", help="the joining node's id, e.g. n4")
            p.add_argument("address", help="its HOST:PORT")
        elif action == "leave":
            p.add_argument("node_id", help="the leaving node's id, e.g. n3")


def cmd_membership(args: argparse.Namespace) -> int:
    nodes = [n.strip() for item in (args.nodes or ["127.0.0.1:7001"]) for n in item.split(",")]
    with Client(nodes, timeout_s=args.timeout, tls=client_tls.context()) as client:
        result = client.cluster(args.action, getattr(args, "node_id", ""),
                                getattr(args, "address", ""))
    if args.json:
        render.print_json(result)
        return EXIT_OK
    console = render.make_console()
    _print_plan(console, result)
    return EXIT_OK


def _print_plan(console: Console, result: dict[str, Any]) -> None:
    staged = result.get("staged") or []
    if result.get("action") == "commit":
        console.print(f"committed: ring version is now {result.get('ring_version_now')}; "
                      "handoffs run in the background (watch `dynamokv status`)")
        return
    if not staged:
        console.print("nothing staged")
        return
    table = Table(title="staged changes")
    for col in ("node", "action", "address"):
        table.add_column(col)
    for change in staged:
        table.add_row(change["node"], change["action"], change.get("address", ""))
    console.print(table)
    moving = result.get("partitions_moving", 0)
    console.print(f"ring version {result.get('ring_version')} -> "
                  f"{result.get('next_ring_version')}: {moving} partition(s) change owner")
    per_pair: dict[tuple[str, str], int] = {}
    for t in result.get("transfers", []):
        per_pair[(t["from"], t["to"])] = per_pair.get((t["from"], t["to"]), 0) + 1
    if per_pair:
        moves = Table(title="transfers")
        for col in ("from", "to", "partitions"):
            moves.add_column(col)
        for (a, b), count in sorted(per_pair.items()):
            moves.add_row(a, b, str(count))
        console.print(moves)
    balance = result.get("balance") or {}
    if balance:
        console.print(f"after commit: partitions per node {balance.get('per_node')}, "
                      f"imbalance {balance.get('imbalance')}, "
                      f"windows repeating an owner: {len(balance.get('violations', []))}")
    console.print("run `dynamokv cluster commit` to apply, `dynamokv cluster clear` to drop")


# ---- cluster-wide status ------------------------------------------------------------------------


def gather(nodes: list[str], timeout_s: float) -> dict[str, Any]:
    """Every member's own status, found from the members list of the first node that answers."""
    views: dict[str, Any] = {}
    with Client(nodes, timeout_s=timeout_s, tls=client_tls.context()) as client:
        first = client.status()
    members = {m["node"]: m["address"] for m in first.get("members", [])}
    views[first["node"]] = first
    for node_id, address in sorted(members.items()):
        if node_id in views:
            continue
        try:
            with Client([address], timeout_s=min(timeout_s, 2.0),
                        tls=client_tls.context()) as c:
                views[node_id] = c.status()
        except DynamoKVError as exc:
            views[node_id] = {"node": node_id, "unreachable": f"{exc.code}: {exc}"}
    return {"at": time.time(), "members": sorted(members), "nodes": views}


def render_cluster(console: Console, data: dict[str, Any]) -> None:
    members: list[str] = data["members"]
    views: dict[str, Any] = data["nodes"]
    matrix = Table(title="up/down as seen by each node (rows: observer)")
    matrix.add_column("seen by")
    for m in members:
        matrix.add_column(m)
    for observer in members:
        view = views.get(observer, {})
        if "unreachable" in view:
            matrix.add_row(observer, *["[red]unreachable[/]"] * len(members))
            continue
        seen = {m["node"]: m for m in view.get("members", [])}
        cells = []
        for m in members:
            entry = seen.get(m)
            if entry is None:
                cells.append("?")
            elif entry.get("up"):
                cells.append("[green]up[/]")
            else:
                cells.append(f"[red]down {entry.get('down_for_ms', 0) // 1000}s[/]")
        matrix.add_row(observer, *cells)
    console.print(matrix)
    table = Table(title="background work per node")
    for col in ("node", "ring", "hints", "replayed", "handoff a/q", "anti-entropy",
                "repaired", "bg/s", "p99 ms"):
        table.add_column(col)
    for node_id in members:
        view = views.get(node_id, {})
        if "unreachable" in view:
            table.add_row(node_id, "-", "-", "-", "-", view["unreachable"], "-", "-", "-")
            continue
        hints = view.get("hints", {})
        handoff = view.get("handoff", {})
        aae = view.get("anti_entropy", {})
        last = aae.get("last_exchange") or {}
        admission = view.get("admission", {})
        table.add_row(
            node_id, str(view.get("ring_version")),
            str(sum(hints.get("pending", {}).values())), str(hints.get("replayed", 0)),
            f"{len(handoff.get('active', []))}/{len(handoff.get('queued', []))}",
            last.get("outcome", "-"), str(aae.get("keys_repaired", 0)),
            str(admission.get("rate_per_s", "")), str(admission.get("foreground_p99_ms", "")),
        )
    console.print(table)
    render_http(console, members, views)
    render_table_sweep(console, members, views)
    render_table_work(console, members, views)


def render_http(console: Console, members: list[str], views: dict[str, Any]) -> None:
    """The DynamoDB HTTP API's load and refusals per node, if any node serves it."""
    rows = [(m, views[m]["http"]) for m in members if "http" in views.get(m, {})]
    if not rows:
        return
    table = Table(title="DynamoDB HTTP API per node (refused: by limit, since start)")
    for col in ("node", "connections", "buffered MiB", "refused"):
        table.add_column(col)
    for node_id, http in rows:
        refused = ", ".join(f"{k} {v}" for k, v in http.get("refused", {}).items()) or "-"
        table.add_row(node_id, str(http.get("connections", 0)),
                      f"{http.get('buffered_bytes', 0) / 2**20:.1f}", refused)
    console.print(table)


_SWEEP_KEYS = ("table_sweep_passes", "table_sweep_failed_passes", "ttl_expired")


def render_table_sweep(console: Console, members: list[str], views: dict[str, Any]) -> None:
    """The DynamoDB table sweep per node (TTL deletes and item counts; see the
    ``dynamokv_background`` gauges), if any node runs one."""
    rows = [(m, views[m].get("background", {}), views[m].get("background_errors", {}))
            for m in members if "table_sweep_passes" in views.get(m, {}).get("background", {})]
    if not rows:
        return
    table = Table(title="DynamoDB table sweep per node (since start)")
    for col in ("node", "passes", "failed passes", "TTL deletes", "last error"):
        table.add_column(col)
    for node_id, background, errors in rows:
        passes, failed, expired = (int(background.get(key, 0)) for key in _SWEEP_KEYS)
        error = errors.get("table_sweep") or "-"
        table.add_row(node_id, str(passes), f"[red]{failed}[/]" if failed else "0",
                      str(expired), error)
    console.print(table)


def _count(figure: Any) -> str:
    return f"[red]{int(figure)}[/]" if figure else "0"


def render_table_work(console: Console, members: list[str], views: dict[str, Any]) -> None:
    """The DynamoDB table layer's background work per node, failures first: the index outbox
    drain (``index_upkeep``), index upkeep jobs and backfills (``index_work``) and drops of
    deleted tables' and indexes' items (``table_drops``); see the ``dynamokv_table_work``
    gauges. Shown if any node reports them."""
    rows = [(m, views[m]) for m in members
            if any(k in views.get(m, {}) for k in ("index_upkeep", "index_work", "table_drops"))]
    if not rows:
        return
    table = Table(title="DynamoDB table layer per node (since start; failed work is retried, "
                  "then given up)")
    for col in ("node", "index records done", "failed batches", "given up", "backing off",
                "jobs failed", "backfills failed", "repairs", "drops done", "drops failed",
                "last drop error"):
        table.add_column(col)
    for node_id, view in rows:
        drain = view.get("index_upkeep", {})
        work = view.get("index_work", {})
        drops = view.get("table_drops", {})
        table.add_row(
            node_id, str(drain.get("records_done", 0)),
            _count(drain.get("batch_failed", 0) + drain.get("poll_failed", 0)),
            _count(drain.get("given_up", 0)), str(drain.get("partitions_backing_off", 0)),
            _count(work.get("failed", 0)), _count(work.get("backfill_failed", 0)),
            str(work.get("repairs_marked", 0)), str(drops.get("done", 0)),
            _count(drops.get("failed", 0)), drops.get("last_error") or "-")
    console.print(table)


def cmd_cluster_status(args: argparse.Namespace) -> int:
    nodes = [n.strip() for item in (args.nodes or ["127.0.0.1:7001"]) for n in item.split(",")]
    data = gather(nodes, args.timeout)
    if args.json:
        render.print_json(data)
    else:
        render_cluster(render.make_console(), data)
    return EXIT_OK
