"""What the two admission experiments (``paper_admission.py``, ``paper_admission_aae.py``)
share: their frame of rounds with and without admission control, and the latency panel of
their plots.

Owns: :func:`admission_rounds` and :func:`latency_panel`.
May import: ``paper_common``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paper_common import BenchCluster, Progress, over_time


def admission_rounds(plan: dict[str, Any], header: dict[str, Any], pre_s: float, title: str,
                     progress: Progress,
                     one_round: Callable[[BenchCluster, dict[str, Any], int, Any], dict[str, Any]],
                     pool: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> dict[str, Any]:
    """The admission experiments' frame: ``plan["rounds"]`` rounds on each of two 4-node
    clusters, one with admission control ("feedback on") and one without ("feedback off"),
    alternating which goes first; each mode's rounds pooled by ``pool``, each round's samples
    kept as per-second summaries."""
    out: dict[str, Any] = {**plan, **header, "pre_s": pre_s, "rounds_run": []}
    per_round = pre_s + plan["measure_s"]
    with BenchCluster(count=4, ring_size=16) as on_cluster, \
            BenchCluster(count=4, ring_size=16,
                         extra_args=("--no-admission-control",)) as off_cluster, \
            progress.task(title, 2 * plan["rounds"] * per_round) as tick:
        clusters = {"feedback on": on_cluster, "feedback off": off_cluster}
        order = [m for i in range(plan["rounds"])
                 for m in (("feedback on", "feedback off") if i % 2 == 0
                           else ("feedback off", "feedback on"))]
        for i, mode in enumerate(order):
            got = one_round(clusters[mode], plan, i, lambda s, i=i: tick(i * per_round + s))
            out["rounds_run"].append({"mode": mode, "round": i, **got})
    out["configs"] = {mode: pool([r for r in out["rounds_run"] if r["mode"] == mode])
                      for mode in clusters}
    for r in out["rounds_run"]:  # per-second summaries are enough to keep (not every sample)
        r["over_time"] = over_time([(a + pre_s, b) for a, b in r.pop("samples")], 1.0)
    return out


def latency_panel(ax: Any, data: dict[str, Any], xlabel: str) -> None:
    """The left panel of the admission plots: each configuration's p99 and p50 per second,
    against seconds since the restart (``data["pre_s"]`` before it is the warm-up)."""
    for i, (name, cfg) in enumerate(data["configs"].items()):
        rows = cfg["over_time"]
        ax.plot([r["t_s"] - data["pre_s"] for r in rows], [r["p99_ms"] for r in rows],
                marker=".", color=f"C{i}", label=f"{name}: p99")
        ax.plot([r["t_s"] - data["pre_s"] for r in rows], [r["p50_ms"] for r in rows],
                linestyle=":", color=f"C{i}", label=f"{name}: p50")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("foreground latency per second (ms)")
    ax.legend(fontsize=8)
