"""Simulator seed runs: a fixed corpus, fresh seeds, determinism, and checkers that bite.

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
from pathlib import Path

import pytest

import dynamokv
from dynamokv.sim.options import SimOptions
from dynamokv.sim.run import RunResult, main, run_seed

WORKLOAD_MS = 4_000

# Chosen to cover every fault kind: crashes, partitions, loss, duplication, reordering, storage
# faults, clock skew, strict and sloppy quorums, 3 to 5 nodes, W from 1 to 3.
CORPUS = [2, 4, 7, 8, 10, 13, 15, 17, 20, 27, 29, 36]

# Core bugs the simulator found (see docs/simulator.md); the text identifies their violations.
KNOWN_CORE_BUGS: dict[str, str] = {
    # Fixed: fallback coordinators re-issued dots (now primaries stamp, or a one-off actor);
    # hints.on_ack let StorageError escape (now caught). Add new entries only with an issue.
}


def _explained_by_known_bug(result: RunResult) -> bool:
    found = {name: items for name, items in result.violations.items() if items}
    if not found:
        return False
    for name, items in found.items():
        if name == "lost-writes" and "disk-writes" in found:
            continue  # a reused dot merges two writes into one: the loss follows from it
        marker = KNOWN_CORE_BUGS.get(name)
        if marker is None or not all(marker in item for item in items):
            return False
    return True


def _report(result: RunResult) -> str:
    lines = [f"seed {result.seed} failed; reproduce with: python -m dynamokv.sim --seed "
             f"{result.seed} --duration-ms {result.options.workload_ms} --verbose",
             f"options {result.options.describe()}", result.summary]
    for name, items in result.violations.items():
        lines += [f"{name}: {item}" for item in items[:10]]
    lines += result.errors[:1]
    lines += ["last trace lines:", *result.trace_tail]
    return "\n".join(lines)


def _check_seed(seed: int) -> RunResult:
    result = run_seed(SimOptions.from_seed(seed, workload_ms=WORKLOAD_MS))
    if not result.ok and _explained_by_known_bug(result):
        pytest.xfail(f"seed {seed} hits a known core bug: {_report(result)}")
    assert result.ok, _report(result)
    return result


@pytest.mark.parametrize("seed", CORPUS)
def test_corpus_seed(seed: int) -> None:
    _check_seed(seed)


@pytest.mark.parametrize("turn", range(3))
def test_fresh_seed(turn: int) -> None:
    seed = secrets.randbelow(2**31)
    print(f"fresh seed {seed} (turn {turn}): python -m dynamokv.sim --seed {seed} "
          f"--duration-ms {WORKLOAD_MS}")
    _check_seed(seed)


def test_same_seed_gives_same_digest() -> None:
    options = SimOptions.from_seed(7, workload_ms=2_000)
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
            [sys.executable, "-m", "dynamokv.sim", "--seed", "12", "--duration-ms", "2000"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        ).stdout
        digests.update(line for line in out.splitlines() if line.startswith("digest "))
    assert len(digests) == 1, digests


@pytest.mark.parametrize("seed", [2, 7])
def test_checkers_catch_a_lying_disk(seed: int) -> None:
    result = run_seed(SimOptions.from_seed(seed, workload_ms=WORKLOAD_MS, bug="lying-disk"))
    assert not result.ok
    assert result.violations["lost-writes"], _report(result)
    assert result.violations["disk-writes"]


def test_cli_prints_seed_first_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "4", "--duration-ms", "1000", "--check-determinism"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "SEED 4"
    assert out[1].startswith("options seed=4 ")
    assert any(line.startswith("determinism ok") for line in out)
    assert out[-1] == "OK seed 4"


def test_cli_failure_prints_reproduce_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seed", "2", "--duration-ms", "2000", "--bug", "lying-disk"]) == 1
    out = capsys.readouterr().out
    assert ("reproduce with: python -m dynamokv.sim --seed 2 --duration-ms 2000 "
            "--bug lying-disk --verbose") in out
