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


def test_staleness_model_follows_the_quorum_arithmetic() -> None:
    import random

    from paper_staleness import model_stale

    rng = random.Random(2)
    # W=1: acknowledged before any other replica applied; R=1 reads the reader's own copy.
    assert model_stale(1, 1, 0.0, 10.0, rng) == 1.0
    # R + W > N: never stale, whatever the delay.
    assert model_stale(2, 2, 0.0, 10.0, rng) == 0.0
    assert model_stale(1, 3, 0.0, 10.0, rng) == 0.0
    later = [model_stale(1, 1, t, 10.0, rng) for t in (0.0, 5.0, 20.0, 80.0)]
    assert later == sorted(later, reverse=True) and later[-1] < 0.01


def test_admission_pools_rounds_by_phase() -> None:
    from paper_admission import _pool

    rounds = [{"samples": [[-1.0, 0.010], [1.0, 0.050], [6.0, 0.020]], "replay_started_s": 1.0,
               "replay_s": 4.0, "failures": 0, "throttled_windows": 2}]
    pooled = _pool(rounds)
    assert pooled["before_restart"]["count"] == 1
    assert pooled["after_restart"]["count"] == 2
    assert pooled["while_replaying"]["count"] == 1
    assert pooled["while_replaying"]["p50_ms"] == 50.0


def test_staleness_experiment_on_delayed_nodes(tmp_path: Path) -> None:
    assert paper.main(["--only", "staleness", "--quick", "--no-progress",
                       "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "staleness.json").read_text())
    assert set(data["configs"]) >= {"(3,1,1)", "(3,2,2)", "(3,1,3)"}
    for name in ("(3,2,2)", "(3,1,3)"):  # R + W > N: a read never misses the write
        assert all(row["stale"] == 0 for row in data["configs"][name]["curve"])
    first = data["configs"]["(3,1,1)"]["curve"][0]
    assert first["t_ms"] == 0 and first["trials"] > 0
    assert (tmp_path / "staleness.png").stat().st_size > 1000
