"""Pages the metrics port serves besides ``/metrics``: ``/health`` (readiness probes),
``/status.json`` (the node's own status), ``/cluster.json`` (every member's view, gathered by
this node) and ``/`` (a live dashboard).

Owns: ``page(path, metrics)`` → ``(http status, body, content type)`` or ``None``;
``ring_view(core)`` (who owns and who leads each partition, published with the status); and
the dashboard: one self-contained HTML page (no CDN, no build step) that polls
``status.json`` and ``cluster.json`` every two seconds.
May import: stdlib (``json``, ``urllib``, ``concurrent.futures``), ``dynamokv.runtime.metrics``
and ``dynamokv.core`` for types only.

Why this node gathers the others' views (``/cluster.json``) instead of the browser: an operator
often reaches one node only (``kubectl port-forward``, an SSH tunnel), and a page may not fetch
from other origins anyway; nodes reach each other's metrics ports on the addresses they
advertise.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dynamokv.core.node import NodeCore
    from dynamokv.runtime.metrics import NodeMetrics

JSON = "application/json"
PEER_TIMEOUT_S = 1.5  # a member's status page that takes longer shows as unreachable
PEERS_FETCHED_MAX = 64  # members asked per /cluster.json (a bigger cluster shows the first 64)


def page(path: str, metrics: NodeMetrics) -> tuple[int, bytes, str] | None:
    health, status = metrics.health, metrics.status
    if path == "/health":
        # 503 until the node is a member of a ring (starting, joining, or left): a load
        # balancer or Kubernetes then sends it no clients.
        code = 200 if health.get("ready") else 503
        return code, _json(health or {"ready": False, "why": "starting"}), JSON
    if path == "/status.json":
        if not status:
            return 503, _json({"why": "starting"}), JSON
        return 200, _json({**status, "latency_minutes": metrics.latency_minutes()}), JSON
    if path == "/cluster.json":
        if not status:
            return 503, _json({"why": "starting"}), JSON
        return 200, _json(cluster_view(status)), JSON
    if path in ("/", "/dashboard"):
        return 200, DASHBOARD.encode(), "text/html; charset=utf-8"
    return None


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, default=str).encode() + b"\n"


def ring_view(core: NodeCore) -> dict[str, Any]:
    """Who owns each partition (by node), and the partition leaders of the table layer as this
    node knows them: the ones it leads, and the leader it last heard of for the others."""
    ring = core.ring
    if ring is None:
        return {}
    groups = core.logs.groups
    return {
        "owners": {m.node_id: list(ring.partitions_of(m.node_id)) for m in ring.members},
        "partition_leaders": {
            "leading": sorted(p for p, g in groups.items() if g.is_leader()),
            "known": {str(p): g.leader for p, g in sorted(groups.items()) if g.leader},
        },
    }


def summary(status: dict[str, Any]) -> dict[str, Any]:
    """The part of a node's status the dashboard shows for every member."""
    hints = status.get("hints") or {}
    handoff = status.get("handoff") or {}
    leaders = status.get("partition_leaders") or {}
    return {
        "node": status.get("node"),
        "ring_version": status.get("ring_version"),
        "uptime_s": status.get("uptime_s"),
        "members": [{k: m.get(k) for k in ("node", "status", "up", "phi", "heard", "down_for_ms")}
                    for m in status.get("members", ())],
        "hints_pending": hints.get("pending", {}),
        "hints_replayed": hints.get("replayed", 0),
        "handoffs": {"active": handoff.get("active", []), "queued": handoff.get("queued", []),
                     "completed": handoff.get("completed", 0)},
        "anti_entropy": status.get("anti_entropy") or {},
        "leading": leaders.get("leading", []),
        "table_logs": status.get("table_logs") or {},
    }


def cluster_view(status: dict[str, Any]) -> dict[str, Any]:
    """Every member's own view (``summary`` of its status), this node's from memory and the
    others' fetched from their metrics ports in parallel; an unreachable one says why."""
    me = status.get("node")
    views: dict[str, Any] = {me: summary(status)} if me else {}
    targets = [(m["node"], m.get("metrics") or "") for m in status.get("members", ())
               if m["node"] != me][:PEERS_FETCHED_MAX]
    if targets:
        with ThreadPoolExecutor(max_workers=min(16, len(targets))) as pool:
            for node, view in zip([t[0] for t in targets], pool.map(_fetch, targets),
                                  strict=True):
                views[node] = view
    return {"seen_from": me, "nodes": views}


def _fetch(target: tuple[str, str]) -> dict[str, Any]:
    node, address = target
    if not address:
        return {"node": node, "error": "no metrics port (started without --metrics)"}
    try:
        with urllib.request.urlopen(f"http://{address}/status.json",
                                    timeout=PEER_TIMEOUT_S) as reply:
            doc = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return {"node": node, "error": f"{address}: HTTP {exc.code}"}
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        return {"node": node, "error": f"{address}: {getattr(exc, 'reason', exc)}"}
    if not isinstance(doc, dict) or doc.get("node") != node:
        return {"node": node, "error": f"{address} is not the metrics port of {node}"}
    return summary(doc)


DASHBOARD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dynamokv node</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em} h2{font-size:1.05em} .sub{color:#666;margin-bottom:1em}
section{display:inline-block;vertical-align:top;margin:0 1.5em 1.5em 0}
table{border-collapse:collapse;background:#fff} td,th{padding:.25em .6em;border:1px solid #ddd}
th{background:#f0f0f0;text-align:left} .up{color:#197a1f;font-weight:600}
.down{color:#b3261e;font-weight:600} .err{color:#b3261e} svg{background:#fff}
.note{color:#666;font-size:.9em;max-width:32em}
</style></head><body>
<h1 id="title">dynamokv</h1><div class="sub" id="sub">loading…</div>
<div id="err" class="err"></div>
<section><h2>members (as this node sees them)</h2><table id="members"></table></section>
<section><h2>members as seen by each node</h2><table id="seen"></table>
<div class="note">rows: the node asked; columns: the member it judges</div></section>
<section><h2>ring</h2>
<svg id="ring" width="260" height="260" viewBox="-130 -130 260 260"></svg>
<div class="note">outer: owner of each partition · inner: its table-log leader
(grey: none known)</div><div id="legend"></div></section>
<section><h2>background work per node</h2><table id="bg"></table></section>
<section><h2>latency per minute (ms, last <span id="mins">10</span> minutes)</h2>
<table id="lat"></table></section>
<script>
"use strict";
const COLORS = ["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1",
                "#ff9da7","#9c755f","#bab0ac"];
const NS = "http://www.w3.org/2000/svg";
function el(tag, text, cls) {
  const e = document.createElement(tag); e.textContent = text; if (cls) e.className = cls;
  return e;
}
function table(id, head, rows) {
  const t = document.getElementById(id); t.replaceChildren();
  const h = t.insertRow(); for (const name of head) h.appendChild(el("th", name));
  for (const r of rows) { const row = t.insertRow();
    for (const c of r) {
      if (c instanceof Node) { row.insertCell().appendChild(c); continue; }
      const td = row.insertCell();
      if (Array.isArray(c)) { td.textContent = c[0]; td.className = c[1];
                              if (c[2]) td.title = c[2]; }
      else td.textContent = c;
    } }
}
function arc(p, q, r0, r1, fill, label) {
  const a0 = 2 * Math.PI * p / q - Math.PI / 2, a1 = 2 * Math.PI * (p + 1) / q - Math.PI / 2;
  const d = `M${r0*Math.cos(a0)},${r0*Math.sin(a0)} L${r1*Math.cos(a0)},${r1*Math.sin(a0)}` +
    ` A${r1},${r1} 0 0 1 ${r1*Math.cos(a1)},${r1*Math.sin(a1)}` +
    ` L${r0*Math.cos(a1)},${r0*Math.sin(a1)} A${r0},${r0} 0 0 0 ${r0*Math.cos(a0)},` +
    `${r0*Math.sin(a0)}Z`;
  const path = document.createElementNS(NS, "path"); path.setAttribute("d", d);
  path.setAttribute("fill", fill); path.setAttribute("stroke", "#fff");
  path.setAttribute("class", label.startsWith("leader") ? "lead" : "own");
  const title = document.createElementNS(NS, "title"); title.textContent = label;
  path.appendChild(title); return path;
}
function ring(s, leaders) {
  const svg = document.getElementById("ring"); svg.replaceChildren();
  const color = {}; s.members.forEach((m, i) => color[m.node] = COLORS[i % COLORS.length]);
  const owners = [];
  for (const [node, ps] of Object.entries(s.owners || {})) for (const p of ps) owners[p] = node;
  for (let p = 0; p < s.q; p++) {
    svg.appendChild(arc(p, s.q, 80, 125, color[owners[p]] || "#ddd",
                        `partition ${p}: owner ${owners[p] || "?"}`));
    svg.appendChild(arc(p, s.q, 55, 75, color[leaders[p]] || "#ddd",
                        `leader of partition ${p}: ${leaders[p] || "none known"}`));
  }
  const led = {}; Object.values(leaders).forEach(n => led[n] = (led[n] || 0) + 1);
  document.getElementById("legend").replaceChildren(...s.members.map(m => {
    const d = el("div", `■ ${m.node}: owns ${m.partitions}, leads ${led[m.node] || 0}`);
    d.style.color = color[m.node]; return d; }));
}
function leadersOf(s, views) {
  // A node's own claim to lead wins; otherwise the leader this node last heard of.
  const out = {...((s.partition_leaders || {}).known || {})};
  for (const v of Object.values(views)) for (const p of (v.leading || [])) out[p] = v.node;
  return out;
}
function seen(views, members) {
  const names = members.map(m => m.node);
  table("seen", ["seen by", ...names], Object.values(views).map(v => {
    if (v.error) return [[v.node, "down"], ...names.map(() => ["?", "", v.error])];
    const by = {}; (v.members || []).forEach(m => by[m.node] = m);
    return [v.node, ...names.map(n => {
      const m = by[n]; if (!m) return ["not a member", "down"];
      return m.up ? ["up", "up", `phi ${m.phi}`]
                  : [`down ${Math.round(m.down_for_ms / 1000)}s`, "down", `phi ${m.phi}`];
    })];
  }));
}
function background(views) {
  table("bg", ["node", "ring", "hints pending", "replayed", "handoffs active/queued",
               "AAE trees built (building)", "AAE exchange now", "AAE exchanges",
               "keys repaired", "last exchange", "leads"],
    Object.values(views).map(v => {
      if (v.error) return [v.node, ["unreachable", "down", v.error]];
      const pend = Object.entries(v.hints_pending).map(([k, n]) => `${k}:${n}`).join(" ");
      const a = v.anti_entropy || {}, cur = a.current, last = a.last_exchange || {};
      return [v.node, v.ring_version, pend || "none", v.hints_replayed,
        `${v.handoffs.active.length}/${v.handoffs.queued.length}`,
        `${a.trees_built ?? "-"} (${a.trees_building ?? 0})`,
        cur ? `p${cur.partition} with ${cur.peer}: ${cur.state}` : "idle",
        a.exchanges ?? "-", a.keys_repaired ?? "-",
        last.outcome ? `${last.outcome} (${last.keys_repaired} repaired)` : "-",
        v.leading.length];
    }));
}
function spark(rows, key, max) {
  const svg = document.createElementNS(NS, "svg"); svg.setAttribute("width", "160");
  svg.setAttribute("height", "36"); const n = rows.length;
  const pts = rows.map((r, i) => `${4 + i * 152 / Math.max(n - 1, 1)},` +
                       `${32 - 28 * (max ? r[key] / max : 0)}`).join(" ");
  const line = document.createElementNS(NS, "polyline"); line.setAttribute("points", pts);
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#4e79a7");
  line.setAttribute("stroke-width", "2"); svg.appendChild(line); return svg;
}
function latency(lm) {
  document.getElementById("mins").textContent = lm.minutes;
  table("lat", ["op", "requests", "p99 per minute", "p50 now", "p99 now", "p99 max"],
    Object.entries(lm.ops).map(([op, rows]) => {
      const max = Math.max(...rows.map(r => r.p99)), now = rows[rows.length - 1];
      return [op, rows.reduce((t, r) => t + r.requests, 0), spark(rows, "p99", max),
              now.p50, now.p99, max];
    }));
}
let views = {};
async function load(url) {
  const r = await fetch(url, {cache: "no-store"});
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}
async function refresh() {
  try {
    const s = await load("status.json");
    document.getElementById("err").textContent = "";
    document.getElementById("title").textContent = `dynamokv node ${s.node}`;
    document.getElementById("sub").textContent =
      `ring version ${s.ring_version} · claimant ${s.claimant} · Q=${s.q} · ` +
      `up ${s.uptime_s}s · peers ${s.peers_connected} · clients ${s.clients_connected} · ` +
      `refreshed ${new Date().toLocaleTimeString()}`;
    table("members", ["node", "address", "status", "up", "phi", "partitions"],
      s.members.map(m => [m.node, m.address, m.status,
        m.up ? ["up", "up"] : [`down ${Math.round(m.down_for_ms / 1000)}s`, "down"],
        m.phi, m.partitions]));
    try { views = (await load("cluster.json")).nodes; }
    catch (e) { views = {}; document.getElementById("err").textContent = `${e}`; }
    ring(s, leadersOf(s, views));
    seen(views, s.members);
    background(views);
    latency(s.latency_minutes || {minutes: 0, ops: {}});
  } catch (e) { document.getElementById("err").textContent = `cannot load status: ${e}`; }
}
async function loop() { await refresh(); setTimeout(loop, 2000); }  // never two at once
loop();
</script></body></html>
"""

__all__ = ["DASHBOARD", "cluster_view", "page", "ring_view", "summary"]
