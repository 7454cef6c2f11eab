"""bench/paper.py on tiny settings: the experiments produce well-formed results and plots
(never their timings, which depend on the machine)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="plots need matplotlib: pip install 'dynamokv[plots]'")

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import paper  # noqa: E402


def test_over_time_groups_samples_by_window() -> None:
    rows = paper.over_time([(0.1, 0.010), (0.5, 0.030), (1.2, 0.020)], 1.0)
    assert [r["t_s"] for r in rows] == [0.0, 1.0]
    assert rows[0]["count"] == 2 and rows[0]["p50_ms"] == 10.0 and rows[1]["p999_ms"] == 20.0


def test_only_rejects_unknown_experiments() -> None:
    assert paper.selected("nrw,buffer") == ["nrw", "buffer"]
    with pytest.raises(SystemExit, match="unknown experiment"):
        paper.selected("buffer,nope")


def test_imbalance_is_a_fraction_and_one_node_is_always_balanced() -> None:
    import random

    share = paper._imbalance(16, 4, 500, 3, random.Random(1))
    assert 0.0 <= share <= 1.0
    assert paper._imbalance(8, 1, 200, 2, random.Random(1)) == 0.0


def test_balance_experiment_writes_json_and_plot(tmp_path: Path) -> None:
    tiny = paper.Scale(seconds=1.0, concurrency=2, keys=20, quick=True)
    data = paper.run_balance(tiny, paper.Progress(False))
    assert {r["q"] for r in data["vs_q"]} >= {8, 256}
    plt = paper.load_pyplot()
    paper.plot_balance(data, plt, tmp_path / "balance.png")
    assert (tmp_path / "balance.png").stat().st_size > 1000


def test_buffer_experiment_on_real_nodes(tmp_path: Path) -> None:
    assert paper.main(["--only", "buffer", "--seconds", "1", "--no-progress",
                       "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "buffer.json").read_text())
    assert set(data["configs"]) == {"durable", "buffered"}
    for cfg in data["configs"].values():
        assert cfg["summary"]["count"] > 0 and cfg["over_time"]
    assert (tmp_path / "buffer.png").stat().st_size > 1000
