"""Simulator seed runs: a fixed corpus, fresh seeds, every fault kind, determinism, and
checkers that bite.

Each run is short (a few virtual seconds of workload). A failure prints the seed and the
command that reproduces it. Runs whose only violations are core bugs already found by the
simulator (``KNOWN_CORE_BUGS``) are reported as xfail, so the corpus keeps guarding everything
else until those are fixed; delete an entry once its bug is fixed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import dynamokv
from dynamokv.sim.options import FAULT_KINDS, SimOptions
from dynamokv.sim.run import RunResult, main, run_seed

WORKLOAD_MS = 4_000
KIND_WORKLOAD_MS = 3_000

# Drawn options that pass on today's core, with every fault kind among them: crashes, power
# losses that destroyed unflushed writes (2, 46, 74), pauses, the four partition shapes, loss,
# duplication, reordering, delay tails, skew and jumps, storage faults, joins, completed leaves,
# Paxos counters, 3 to 5 nodes, W from 1 to 3. Re-check them when the core changes: a seed
# fixes the simulator's choices, not what the core does with them.
CORPUS = [2, 4, 8, 10, 13, 15, 20, 33, 42, 46, 49, 51, 74]

# The whole menu at once (``--faults all``: joins and leaves among the faults), which the drawn
# corpus above rarely gives. Regressions, at the full default workload: each found a core bug
# before it was fixed (seeds 300068, 300148, 400332, 400406, 400447, 400473, 400477: a dot issued
# again after a handed-off key came back, fixed by ``core/actors.py``).
ALL_FAULTS_REGRESSIONS = [300068, 300148, 400332, 400406, 400447, 400473, 400477,
                          # 14674, 18130, 30514 still hit the membership bugs of KNOWN_CORE_BUGS
                          14597, 14674, 18130, 30514]
# And a few seeds of the sweep (docs/simulator.md), shortened, for breadth.
ALL_FAULTS_CORPUS = [500001, 500002, 500003, 500004]

# Seeds to force each fault kind on, alone, with one counter client: the first on which the
# kind actually happens is used (each run tried must pass).
KIND_SEEDS = {kind: (1, 2, 3) for kind in FAULT_KINDS} | {"power": (11, 2, 46)}
# What shows that the kind happened (``RunResult.counts``).
EVIDENCE = {
    "crash": "crashes", "power": "unsynced_lost", "pause": "pauses", "isolate": "partitions",
    "split": "partitions", "asym": "partitions", "bridge": "partitions", "loss": "lost",
    "dup": "duplicated", "reorder": "reordered", "delay": "delayed", "skew": "skewed",
    "clock": "clock_jumps", "storage": "storage", "join": "joins", "leave": "departures",
}

@dataclass(frozen=True)
class KnownBug:
    """A core bug the simulator found and reported (docs/simulator.md, Findings).

    ``marker`` is a text that the violations of ``checker`` which the bug itself causes contain
    (and that nothing else produces); ``follows`` names the violations it leads to in turn
    (checker -> a text they contain, "" for any), excused only in a run that shows the marker.
    """

    name: str
    checker: str
    marker: str
    follows: dict[str, str] = field(default_factory=dict)


KNOWN_CORE_BUGS: list[KnownBug] = [
    # Delete an entry once its bug is fixed; add one only for a reported, understood bug.
    # Fixed so far: Paxos retries reporting a lost earlier proposal's result (seed 39), dots
    # issued again after a power loss (seeds 24, 141: a new incarnation after an unclean stop),
    # StorageError escaping handoff's ack (seed 17 with --faults storage,leave,join).
    # Found by the 2026-12-03 evening sweep (docs/simulator.md); liveness only, no safety
    # checker fires. Seed 18130: a JoinRequest the node sent before it joined, delivered to a
    # non-claimant after a partition healed, is forwarded to the claimant after the node has
    # joined and left again, and the claimant adds the departed node back.
    KnownBug("a stale JoinRequest re-adds a node that has left", "liveness",
             "are not the running nodes", {"liveness": ""}),
    # Seeds 14674, 30514: a node that left keeps one partition's log group although the group's
    # voters no longer include it. (Seed 14597, the same symptom, was a leaving node that kept
    # a group it was removed from while the previous owners still listed it: fixed in
    # ``PartitionLogs._may_drop``.)
    KnownBug("a departed node stays in a partition log group", "liveness",
             "still hold its log (not replicas any more)", {"liveness": ""}),
]


def _explained_by_known_bug(result: RunResult) -> bool:
    found = {name: items for name, items in result.violations.items() if items}
    if not found:
        return False
    active = [bug for bug in KNOWN_CORE_BUGS
              if any(bug.marker in item for item in found.get(bug.checker, []))]

    def explained(name: str, item: str) -> bool:
        return any((bug.checker == name and bug.marker in item)
                   or (name in bug.follows and bug.follows[name] in item) for bug in active)

    return bool(active) and all(explained(name, item)
                                for name, items in found.items() for item in items)


def _report(result: RunResult, extra: str = "") -> str:
    lines = [f"seed {result.seed} failed; reproduce with: python -m dynamokv.sim --seed "
             f"{result.seed} --duration-ms {result.options.workload_ms}{extra} --verbose",
             f"options {result.options.describe()}", result.summary]
    for name, items in result.violations.items():
        lines += [f"{name}: {item}" for item in items[:10]]
    lines += result.errors[:1]
    lines += ["last trace lines:", *result.trace_tail]
    return "\n".join(lines)


def _check(options: SimOptions, extra: str = "") -> RunResult:
    result = run_seed(options)
    if not result.ok and _explained_by_known_bug(result):
        pytest.xfail(f"seed {options.seed} hits a known core bug: {_report(result, extra)}")
    assert result.ok, _report(result, extra)
    return result


def _check_seed(seed: int) -> RunResult:
    return _check(SimOptions.from_seed(seed, workload_ms=WORKLOAD_MS))


@pytest.mark.parametrize("seed", CORPUS)
def test_corpus_seed(seed: int) -> None:
    _check_seed(seed)


@pytest.mark.parametrize("turn", range(3))
def test_fresh_seed(turn: int) -> None:
    seed = secrets.randbelow(2**31)
    print(f"fresh seed {seed} (turn {turn}): python -m dynamokv.sim --seed {seed} "
          f"--duration-ms {WORKLOAD_MS}")
    _check_seed(seed)


@pytest.mark.parametrize("seed", ALL_FAULTS_REGRESSIONS)
def test_all_faults_regression_seed(seed: int) -> None:
    _check(SimOptions.from_seed(seed, faults=FAULT_KINDS), " --faults all")


@pytest.mark.parametrize("seed", ALL_FAULTS_CORPUS)
def test_all_faults_corpus_seed(seed: int) -> None:
    options = SimOptions.from_seed(seed, workload_ms=WORKLOAD_MS, faults=FAULT_KINDS)
    result = _check(options, " --faults all")
    assert result.counts["joins"] + result.counts["departures"] > 0


def test_all_faults_fresh_seed() -> None:
    # No counter clients: the per-key Paxos counter is being replaced (docs/simulator.md).
    seed = secrets.randbelow(2**31)
    print(f"fresh seed {seed}: python -m dynamokv.sim --seed {seed} --duration-ms "
          f"{WORKLOAD_MS} --faults all --cas-clients 0")
    _check(SimOptions.from_seed(seed, workload_ms=WORKLOAD_MS, faults=FAULT_KINDS,
                                cas_clients=0), " --faults all --cas-clients 0")


def test_every_fault_kind_has_a_test() -> None:
    assert sorted(KIND_SEEDS) == sorted(FAULT_KINDS) == sorted(EVIDENCE)
    assert set(FAULT_KINDS) <= {k for seed in CORPUS for k in SimOptions.from_seed(seed).faults}


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_fault_kind_alone(kind: str) -> None:
    """The kind, forced on alone, happens and the run still passes every checker."""
    seen = []
    for seed in KIND_SEEDS[kind]:
        options = SimOptions.from_seed(seed, workload_ms=KIND_WORKLOAD_MS, faults=(kind,),
                                       cas_clients=1)
        result = _check(options, f" --faults {kind} --cas-clients 1")
        if result.counts[EVIDENCE[kind]] > 0:
            return
        seen.append(result.summary)
    pytest.fail(f"no {kind} happened on seeds {KIND_SEEDS[kind]}: {seen}")


def test_same_seed_gives_same_digest() -> None:
    options = SimOptions.from_seed(7, workload_ms=2_000, faults=FAULT_KINDS, cas_clients=1)
    first, second = run_seed(options), run_seed(options)
    assert first.digest == second.digest
    assert first.summary.splitlines()[:3] == second.summary.splitlines()[:3]
    other = run_seed(SimOptions.from_seed(8, workload_ms=2_000))
    assert other.digest != first.digest


def test_digest_does_not_depend_on_hash_seed() -> None:
    # Set iteration order changes with PYTHONHASHSEED; a digest that moves with it means some
    # code (core or simulator) iterates a set where order matters.
    src = str(Path(dynamokv.__file__).resolve().parent.parent)
    digests: set[str] = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run(
            [sys.executable, "-m", "dynamokv.sim", "--seed", "12", "--duration-ms", "2000",
             "--faults", "all", "--cas-clients", "1"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        ).stdout
        digests.update(line for line in out.splitlines() if line.startswith("digest "))
    assert len(digests) == 1, digests


@pytest.mark.parametrize("seed", [2, 33])
def test_checkers_catch_a_lying_disk(seed: int) -> None:
    result = run_seed(SimOptions.from_seed(seed, workload_ms=WORKLOAD_MS, bug="lying-disk"))
    assert not result.ok
    # Skipped writes show as acknowledged writes lost, as dots issued twice (a coordinator
    # whose own write was skipped forgets the counter it used), or as replicas whose Merkle
    # trees agree (updated as if the write had happened) while their disks differ.
    # (Replicas whose disks differ may also show as Merkle roots that never agree once
    # healed, reported under liveness: the disk under one of them lied.)
    assert (result.violations["lost-writes"] or result.violations["disk-writes"]
            or result.violations["convergence"]
            or any("Merkle roots differ" in v for v in result.violations["liveness"])), \
        _report(result)


def test_cli_prints_seed_first_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "4", "--duration-ms", "1000", "--check-determinism"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "SEED 4"
    assert out[1].startswith("options seed=4 ")
    assert any(line.startswith("determinism ok") for line in out)
    assert out[-1] == "OK seed 4"


def test_cli_failure_prints_reproduce_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "3", "--duration-ms", "2000", "--faults", "+crash,-power",
                 "--bug", "lying-disk"]) == 1
    out = capsys.readouterr().out
    assert ("reproduce with: python -m dynamokv.sim --seed 3 --duration-ms 2000 "
            "--faults +crash,-power --bug lying-disk --verbose") in out


def test_cli_rejects_an_unknown_fault_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "1", "--faults", "meteor"]) == 1
    assert "unknown fault kind" in capsys.readouterr().err


# Found by the sweep of the session that built the partition logs (seeds 800000-800121,
# --faults all): a learner dropped its log on seeing committed configurations without itself,
# while its leader still counted what it had acknowledged; once added as a voter it made a
# majority it did not hold, and a follower was later sent an entry conflicting with one it
# counted committed. Fixed by keeping a learner's log (only a former voter is "removed"), by
# consulting the ring before dropping, and by snapshots that keep entries after their base.
# 1031: a learner the ring no longer placed in a partition was still replicated to by the
# leader (learners were only ever replaced, never cleared), so it never dropped its copy.
# 900149 (found on the core before both fixes): stale groups kept after a join and a leave.
# 2182: a removed node's group, recreated empty by a stray append, voted for a stale candidate
# (its empty log looked up to date), which then overwrote committed entries. Such a copy now
# never votes until a leader has caught it up to a configuration that lists it. (3038, 3050 and
# 3070 lost their log leaders under a broader first rule that refused every copy without a
# configuration.)
# 3080: a node kept a stale copy whose configuration listed only nodes that had since left
# the cluster; nobody could tell it it was out. Such a copy is now dropped after the orphan
# silence once the ring no longer places the node there.
PARTITION_LOG_SEEDS = [800082, 1031, 900149, 2182, 3038, 3050, 3070, 3080]


@pytest.mark.parametrize("seed", PARTITION_LOG_SEEDS)
def test_partition_log_seed(seed: int) -> None:
    result = run_seed(SimOptions.from_seed(seed, faults=FAULT_KINDS))
    assert result.ok, _report(result, " --faults all")
