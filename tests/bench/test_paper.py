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


def test_aae_rebuild_counts_a_partition_in_sync_only_when_all_replicas_agree() -> None:
    from paper_admission_aae import in_sync

    from dynamokv.core.claim import claim
    from dynamokv.core.ring import Member

    ring = claim(None, [Member(f"n{i}", f"h{i}:1") for i in range(1, 5)], q=8, target_n=3,
                 claimant="n1")
    mine = [p for p in range(ring.q) if "n4" in ring.preference_list(p, 3)]
    same = {f"n{i}": {"merkle_roots": {str(p): "aa" for p in range(ring.q)}}
            for i in range(1, 5)}
    assert in_sync(ring, same, "n4") == (len(mine), len(mine))
    wiped = {**same, "n4": {"merkle_roots": {str(p): "bb" for p in mine[1:]}}}
    assert in_sync(ring, wiped, "n4") == (0, len(mine))  # one tree missing, the rest differ
    assert in_sync(ring, {**same, "n4": None}, "n4") == (0, len(mine))


def test_aae_rebuild_pools_rounds_until_the_node_is_in_sync() -> None:
    from paper_admission_aae import _pool

    rounds = [{"samples": [[-1.0, 0.010], [1.0, 0.050], [6.0, 0.020]], "rebuild_s": 4.0,
               "progress": [[1.0, 3, 12, 100, 5], [4.0, 12, 12, 300, 20]], "failures": 0,
               "throttled_windows": 2}]
    pooled = _pool(rounds)
    assert pooled["before_wipe"]["count"] == 1
    assert pooled["while_rebuilding"]["count"] == 1
    assert pooled["while_rebuilding"]["p50_ms"] == 50.0
    assert pooled["keys_repaired"] == [300]


def test_admission_aae_experiment_rebuilds_a_wiped_node(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import paper_admission_aae

    monkeypatch.setattr(paper_admission_aae, "_plan", lambda scale: {
        "rounds": 1, "backlog": 120, "measure_s": 4.0, "rebuild_timeout_s": 90.0})
    assert paper.main(["--only", "admission_aae", "--quick", "--no-progress",
                       "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "admission_aae.json").read_text())
    assert set(data["configs"]) == {"feedback on", "feedback off"}
    for r in data["rounds_run"]:
        assert r["rebuild_s"] is not None  # every partition of the wiped node came back
        # Polls while the foreground ran (none if the node took that long to answer).
        assert all(row[2] == 12 for row in r["progress"])  # Q=16, N=3 of 4 nodes
    for cfg in data["configs"].values():
        assert cfg["before_wipe"]["count"] > 0 and cfg["over_time"]
    assert (tmp_path / "admission_aae.png").stat().st_size > 1000
