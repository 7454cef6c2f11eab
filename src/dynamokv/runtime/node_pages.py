"""Pages the metrics port serves besides ``/metrics``: ``/health`` (readiness probes),
``/status.json`` (the node's own status) and ``/`` (a live dashboard).

Owns: ``page(path, health, status)`` → ``(http status, body, content type)`` or ``None``, and
the dashboard: one self-contained HTML page (no CDN, no build step) that polls
``/status.json`` every two seconds.
May import: stdlib (``json``).
"""

from __future__ import annotations

import json
from typing import Any

JSON = "application/json"


def page(path: str, health: dict[str, Any], status: dict[str, Any]
         ) -> tuple[int, bytes, str] | None:
    if path == "/health":
        # 503 until the node is a member of a ring (starting, joining, or left): a load
        # balancer or Kubernetes then sends it no clients.
        code = 200 if health.get("ready") else 503
        return code, _json(health or {"ready": False, "why": "starting"}), JSON
    if path == "/status.json":
        return (200, _json(status), JSON) if status else (503, _json({"why": "starting"}), JSON)
    if path in ("/", "/dashboard"):
        return 200, DASHBOARD.encode(), "text/html; charset=utf-8"
    return None


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, default=str).encode() + b"\n"


DASHBOARD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dynamokv node</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em} .sub{color:#666;margin-bottom:1em}
section{display:inline-block;vertical-align:top;margin:0 1.5em 1.5em 0}
table{border-collapse:collapse;background:#fff} td,th{padding:.25em .6em;border:1px solid #ddd}
th{background:#f0f0f0;text-align:left} .up{color:#197a1f;font-weight:600}
.down{color:#b3261e;font-weight:600} #err{color:#b3261e} svg{background:#fff}
</style></head><body>
<h1 id="title">dynamokv</h1><div class="sub" id="sub">loading…</div><div id="err"></div>
<section><h2>members</h2><table id="members"></table></section>
<section><h2>ring</h2><svg id="ring" width="240" height="240" viewBox="-120 -120 240 240"></svg>
<div id="legend"></div></section>
<section><h2>background work</h2><table id="bg"></table></section>
<section><h2>latency (ms)</h2><table id="lat"></table></section>
<script>
"use strict";
const COLORS = ["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1",
                "#ff9da7","#9c755f","#bab0ac"];
function cell(row, text, cls) {
  const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td;
}
function table(id, head, rows) {
  const t = document.getElementById(id); t.replaceChildren();
  const h = t.insertRow(); for (const name of head) {
    const th = document.createElement("th"); th.textContent = name; h.appendChild(th); }
  for (const r of rows) { const row = t.insertRow();
    for (const c of r) Array.isArray(c) ? cell(row, c[0], c[1]) : cell(row, c); }
}
function ring(members, q) {
  const svg = document.getElementById("ring"); svg.replaceChildren();
  const color = {}; members.forEach((m, i) => color[m.node] = COLORS[i % COLORS.length]);
  const owners = []; members.forEach(m => (m.owned || []).forEach(p => owners[p] = m.node));
  const ns = "http://www.w3.org/2000/svg";
  for (let p = 0; p < q; p++) {
    const a0 = 2 * Math.PI * p / q - Math.PI / 2, a1 = 2 * Math.PI * (p + 1) / q - Math.PI / 2;
    const [r0, r1] = [70, 110];
    const d = `M${r0*Math.cos(a0)},${r0*Math.sin(a0)} L${r1*Math.cos(a0)},${r1*Math.sin(a0)}` +
      ` A${r1},${r1} 0 0 1 ${r1*Math.cos(a1)},${r1*Math.sin(a1)}` +
      ` L${r0*Math.cos(a1)},${r0*Math.sin(a1)} A${r0},${r0} 0 0 0 ${r0*Math.cos(a0)},` +
      `${r0*Math.sin(a0)}Z`;
    const path = document.createElementNS(ns, "path"); path.setAttribute("d", d);
    path.setAttribute("fill", color[owners[p]] || "#ddd"); path.setAttribute("stroke", "#fff");
    const title = document.createElementNS(ns, "title");
    title.textContent = `partition ${p}: ${owners[p] || "?"}`; path.appendChild(title);
    svg.appendChild(path);
  }
  document.getElementById("legend").replaceChildren(...members.map(m => {
    const s = document.createElement("div"); s.style.color = color[m.node];
    s.textContent = `■ ${m.node}: ${m.partitions} partitions`; return s; }));
}
async function refresh() {
  try {
    const r = await fetch("status.json", {cache: "no-store"});
    if (!r.ok) throw new Error(`status.json: HTTP ${r.status}`);
    const s = await r.json();
    document.getElementById("err").textContent = "";
    document.getElementById("title").textContent = `dynamokv node ${s.node}`;
    document.getElementById("sub").textContent =
      `ring version ${s.ring_version} · claimant ${s.claimant} · Q=${s.q} · ` +
      `up ${s.uptime_s}s · peers ${s.peers_connected} · clients ${s.clients_connected}`;
    table("members", ["node", "address", "status", "up", "phi", "partitions"],
      s.members.map(m => [m.node, m.address, m.status,
        m.up ? ["up", "up"] : [`down ${Math.round(m.down_for_ms / 1000)}s`, "down"],
        m.phi, m.partitions]));
    ring(s.members.map(m => ({...m, owned: (s.owners || {})[m.node]})), s.q);
    const pending = Object.entries(s.hints.pending).map(([k, v]) => `${k}:${v}`).join(" ");
    const aae = s.anti_entropy, last = aae.last_exchange || {};
    table("bg", ["what", "value"], [
      ["hints pending", pending || "none"], ["hints replayed", s.hints.replayed],
      ["handoffs active/queued", `${s.handoff.active.length}/${s.handoff.queued.length}`],
      ["AAE trees built", aae.trees_built], ["AAE exchanges", aae.exchanges],
      ["AAE keys repaired", aae.keys_repaired], ["last exchange", last.outcome || "-"],
      ["in flight", s.in_flight]]);
    const lat = (s.latency || {}).latency_ms || {};
    table("lat", ["op", "samples", "p50", "p99", "p999"], Object.entries(lat).map(
      ([op, v]) => [op, v.samples, v.p50, v.p99, v.p999]));
  } catch (e) { document.getElementById("err").textContent = `cannot load status: ${e}`; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""

__all__ = ["DASHBOARD", "page"]
