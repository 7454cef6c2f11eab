"""How the command line shows things: rich tables for people, JSON for scripts.

Owns: value decoding for display, JSON conversion (bytes → base64), and the tables of ``get``,
``ring``, ``status``, ``bucket`` and ``cluster up``.
May import: stdlib, ``rich``, ``dynamokv.core.ring``, ``dynamokv.core.claim`` (to read their
values; rendering never builds or changes a ring).

User data (keys, values, node ids) is always wrapped in ``rich.text.Text`` or written with plain
``print``: a value such as ``[bold]x`` must come out as typed, not be read as rich markup.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from dynamokv.core.claim import BalanceReport
from dynamokv.core.ring import Ring

# -- consoles and JSON ---------------------------------------------------------------------


def make_console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """A console bound to the stream *now*, so redirections and pytest's capture are honoured."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    return Console(file=stream, highlight=False, soft_wrap=False)


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: bytes become base64, contexts their base64 form."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(obj)).decode("ascii")
    to_b64 = getattr(obj, "to_base64", None)
    if callable(to_b64):
        return to_b64()
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
        return [jsonable(v) for v in items]
    return str(obj)


def dumps(obj: Any) -> str:
    return json.dumps(jsonable(obj), indent=2, ensure_ascii=False)


def print_json(obj: Any, file: IO[str] | None = None) -> None:
    print(dumps(obj), file=file if file is not None else sys.stdout)


# -- values --------------------------------------------------------------------------------


def decode_value(value: bytes | str) -> tuple[str, str]:
    """``(encoding, text)``: ``("utf-8", text)`` when the bytes decode, else ``("base64", b64)``."""
    if isinstance(value, str):
        return "utf-8", value
    try:
        return "utf-8", bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return "base64", base64.b64encode(bytes(value)).decode("ascii")


def context_text(context: Any) -> str:
    """A context as the base64 text ``--context`` accepts ("" when there is none)."""
    if context is None:
        return ""
    to_b64 = getattr(context, "to_base64", None)
    return str(to_b64()) if callable(to_b64) else str(jsonable(context))


def get_result_dict(key: str, bucket: str, result: Any) -> dict[str, Any]:
    """The JSON form of a ``GetResult`` (``.values``, ``.context``, ``.found``)."""
    values = list(result.values)
    decoded = [decode_value(v) for v in values]
    return {
        "bucket": bucket,
        "key": key,
        "found": bool(result.found),
        "siblings": len(values),
        "values": [{"encoding": enc, "value": text} for enc, text in decoded],
        "context": context_text(result.context),
    }


def get_result_text(result: Any) -> str:
    """What ``dynamokv get`` prints: each value on its own line, then the context."""
    values = list(result.values)
    lines: list[str] = []
    if not result.found or not values:
        lines.append("not found")
    elif len(values) == 1:
        lines.append(_value_line(values[0]))
    else:
        # Siblings are concurrent versions; the next put with this context reconciles them.
        lines.append(f"{len(values)} siblings")
        lines.extend(f"[{i}] {_value_line(v)}" for i, v in enumerate(values, 1))
    ctx = context_text(result.context)
    if ctx:
        lines.append(f"context: {ctx}")
    return "\n".join(lines)


def _value_line(value: bytes | str) -> str:
    encoding, text = decode_value(value)
    return text if encoding == "utf-8" else f"base64:{text}"


# -- tables --------------------------------------------------------------------------------


def mapping_table(data: Mapping[str, Any], *, title: str | None = None) -> Table:
    """A two-column table; nested values are shown as compact JSON."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for k, v in data.items():
        table.add_row(Text(str(k)), Text(_cell(v)))
    return table


def _cell(value: Any) -> str:
    value = jsonable(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return "" if value is None else str(value)


def nodes_table(nodes: Sequence[Mapping[str, Any]], *, title: str = "nodes") -> Table:
    """The table ``cluster up`` prints: one row per node process."""
    table = Table(title=title, title_justify="left")
    for col in ("id", "pid", "address", "http", "metrics", "log"):
        table.add_column(col, overflow="fold")
    for n in nodes:
        table.add_row(
            Text(str(n.get("id", ""))),
            Text(str(n.get("pid", ""))),
            Text(str(n.get("address") or "")),
            Text(str(n.get("http_address") or "-")),
            Text(str(n.get("metrics_address") or "-")),
            Text(str(n.get("log") or "")),
        )
    return table


# -- ring ----------------------------------------------------------------------------------


def partition_runs(partitions: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted partition indices as inclusive runs: ``[0, 1, 2, 7]`` → ``[(0, 2), (7, 7)]``."""
    runs: list[tuple[int, int]] = []
    for p in sorted(set(partitions)):
        if runs and p == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], p)
        else:
            runs.append((p, p))
    return runs


def runs_text(runs: Sequence[tuple[int, int]]) -> str:
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "-"


def ring_summary(ring: Ring, report: BalanceReport) -> dict[str, Any]:
    """The JSON form of ``dynamokv ring``: who owns which partitions, and how evenly."""
    counts = dict(report.counts)
    for m in ring.members:  # leaving or exiting members own nothing but still belong
        counts.setdefault(m.node_id, 0)
    nodes = []
    for node_id, count in sorted(counts.items()):
        member = ring.member(node_id)
        nodes.append(
            {
                "id": node_id,
                "address": member.address if member else "",
                "status": member.status.value if member else "not a member",
                "partitions": count,
                "share": round(count / ring.q, 4),
                "ranges": [list(r) for r in partition_runs(ring.partitions_of(node_id))],
            }
        )
    n = report.effective_n
    violations = [
        {
            "start": start,
            "partitions": [(start + i) % ring.q for i in range(n)],
            "owners": [ring.owners[(start + i) % ring.q] for i in range(n)],
        }
        for start in report.violations
    ]
    # The preference list skips repeated owners, so a key gets min(N, owners) distinct
    # replicas whatever the spacing; only too few owning nodes make that fall short of N.
    owning = len(set(ring.owners))
    return {
        "version": ring.version,
        "claimant": ring.claimant,
        "q": ring.q,
        "target_n": report.target_n,
        "effective_n": n,
        "replicas_per_key": min(report.target_n, owning),
        "owning_nodes": owning,
        "nodes": nodes,
        "ideal": round(report.ideal, 3),
        "max_count": report.max_count,
        "min_count": report.min_count,
        "imbalance": round(report.imbalance, 4),
        "balanced": report.balanced,
        "feasible": report.feasible,
        "violations": violations,
    }


VIOLATIONS_SHOWN = 8  # enough to see the pattern; --json has them all


def ring_renderables(summary: Mapping[str, Any]) -> list[RenderableType]:
    """Tables and lines for ``dynamokv ring`` from :func:`ring_summary`'s output."""
    q = summary["q"]
    title = (
        f"ring version {summary['version']} · Q={q} partitions · claimant {summary['claimant']}"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("node")
    table.add_column("address")
    table.add_column("status")
    table.add_column("partitions", justify="right")
    table.add_column("share", justify="right")
    table.add_column("ranges (partition indices)", overflow="fold")
    for node in summary["nodes"]:
        table.add_row(
            Text(node["id"]),
            Text(node["address"]),
            Text(node["status"]),
            str(node["partitions"]),
            f"{node['share'] * 100:.1f}%",
            Text(runs_text([tuple(r) for r in node["ranges"]])),
        )
    out: list[RenderableType] = [table]
    out.append(Text(f"partition i holds ring positions [i·2^160/{q}, (i+1)·2^160/{q})"))
    out.append(
        Text(
            f"imbalance: {summary['imbalance'] * 100:+.1f}% (largest node owns "
            f"{summary['max_count']}, ideal {summary['ideal']:g}, smallest "
            f"{summary['min_count']}); "
            + ("balanced" if summary["balanced"] else "NOT balanced to floor/ceil of the ideal"),
            style="" if summary["balanced"] else "yellow",
        )
    )
    n = summary["effective_n"]
    target, replicas = summary["target_n"], summary["replicas_per_key"]
    if replicas < target:
        out.append(Text(
            f"only {summary['owning_nodes']} node(s) own partitions: every key gets {replicas} "
            f"distinct replica(s), fewer than N={target}; add nodes or lower N",
            style="yellow",
        ))
    else:
        out.append(Text(f"every key's preference list names {target} distinct nodes",
                        style="green"))
    violations = summary["violations"]
    if violations:
        why = ("" if summary["feasible"] else
               "; a balanced ring of this shape cannot avoid every such window")
        out.append(
            Text(
                f"{len(violations)} window(s) of {n} consecutive partitions repeat an owner: "
                f"their preference lists skip the repeat and reach further round the ring "
                f"(replica count unaffected; a failed node's load spreads less evenly{why})",
                style="dim",
            )
        )
        out.extend(
            Text(f"  partitions {', '.join(map(str, v['partitions']))}: {', '.join(v['owners'])}")
            for v in violations[:VIOLATIONS_SHOWN]
        )
        if len(violations) > VIOLATIONS_SHOWN:
            out.append(Text(f"  ... and {len(violations) - VIOLATIONS_SHOWN} more (see --json)"))
    else:
        out.append(Text(f"every {n} consecutive partitions have distinct owners"))
    return out


# -- status --------------------------------------------------------------------------------

_ID_KEYS = ("node_id", "id", "node")
_VERSION_KEYS = ("ring_version", "version")


def status_members(status: Mapping[str, Any], ring: Ring | None) -> list[dict[str, Any]]:
    """Members with up/down as the node sees them, from ``status()`` or else from the ring.

    ``status()`` is the server's dict; it may list members as a list of dicts or a mapping of
    node id → state. Members found only in the ring show ``"?"``: the ring says who belongs,
    not who answers.
    """
    raw = status.get("members")
    members: dict[str, dict[str, Any]] = {}
    if isinstance(raw, Mapping):
        for node_id, info in raw.items():
            members[str(node_id)] = _member_row(str(node_id), info)
    elif isinstance(raw, list | tuple):
        for info in raw:
            if isinstance(info, Mapping):
                node_id = str(next((info[k] for k in _ID_KEYS if k in info), "?"))
                members[node_id] = _member_row(node_id, info)
    if ring is not None:
        for m in ring.members:
            row = members.setdefault(m.node_id, _member_row(m.node_id, {}))
            row["address"] = row["address"] or m.address
            row["status"] = row["status"] or m.status.value
    return [members[k] for k in sorted(members)]


def _member_row(node_id: str, info: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": node_id, "address": "", "status": "", "up": "?"}
    if isinstance(info, Mapping):
        row["address"] = str(info.get("address", "") or "")
        row["status"] = str(info.get("status", "") or "")
        up = info.get("up", info.get("alive", info.get("reachable")))
        if isinstance(up, bool):
            row["up"] = "up" if up else "down"
        elif isinstance(info.get("state"), str):
            row["up"] = info["state"]
    elif isinstance(info, bool):
        row["up"] = "up" if info else "down"
    elif isinstance(info, str):
        row["up"] = info
    return row


def status_summary(status: Mapping[str, Any], ring: Ring | None) -> dict[str, Any]:
    """The JSON form of ``dynamokv status``: identity, ring version, members, then the rest."""
    node_id = next((status[k] for k in _ID_KEYS if k in status), None)
    version = next((status[k] for k in _VERSION_KEYS if k in status), None)
    if version is None and ring is not None:
        version = ring.version
    return {
        "node_id": node_id,
        "ring_version": version,
        "members": status_members(status, ring),
        "status": jsonable(dict(status)),
    }


def status_renderables(summary: Mapping[str, Any]) -> list[RenderableType]:
    out: list[RenderableType] = [
        Text(f"node {summary['node_id'] or '?'} · ring version {summary['ring_version']}")
    ]
    members = summary["members"]
    if members:
        table = Table(title="members (as this node sees them)", title_justify="left")
        for col in ("node", "address", "ring status", "reachable"):
            table.add_column(col)
        for m in members:
            style = {"up": "green", "down": "red"}.get(m["up"], "")
            table.add_row(
                Text(m["id"]), Text(m["address"]), Text(m["status"]), Text(m["up"], style=style)
            )
        out.append(table)
    rest = {
        k: v
        for k, v in summary["status"].items()
        if k not in ("members", *_ID_KEYS, *_VERSION_KEYS)
    }
    if rest:
        out.append(mapping_table(rest, title="node status"))
    return out


__all__ = [
    "context_text",
    "decode_value",
    "dumps",
    "get_result_dict",
    "get_result_text",
    "jsonable",
    "make_console",
    "mapping_table",
    "nodes_table",
    "partition_runs",
    "print_json",
    "ring_renderables",
    "ring_summary",
    "runs_text",
    "status_members",
    "status_renderables",
    "status_summary",
]
