"""DynamoDB workloads through the real app on simulated clusters under the whole fault menu:
registers and a counter checked for per-item linearizability, bank transfers checked for the
sum invariant on every TransactGetItems, a table with a global secondary index checked entry by
entry against its items once healed (crashes, power loss, pauses, every partition shape,
clock skew and jumps, joins and leaves; ``SimOptions.from_seed`` draws their pace)."""

from __future__ import annotations

import pytest

from dynamokv.sim.options import FAULT_KINDS, SimOptions
from dynamokv.simapi.workloads import run_bank, run_gsi, run_registers

pytestmark = pytest.mark.slow

# Seeds with the whole menu on; a failing seed found elsewhere is added here.
CORPUS = (1, 2, 3, 5)


def _all_faults(seed: int) -> SimOptions:
    return SimOptions.from_seed(seed, faults=FAULT_KINDS)


@pytest.mark.parametrize("seed", CORPUS)
def test_registers_stay_linearizable(seed: int) -> None:
    run = run_registers(seed, _all_faults(seed), seconds=6.0)
    assert run.acknowledged > 0, "no write was acknowledged: the run says nothing"
    assert run.outcome in ("ok", "unknown"), run.report


@pytest.mark.parametrize("seed", CORPUS[:2])
def test_transfers_keep_the_total(seed: int) -> None:
    run = run_bank(seed, _all_faults(seed), seconds=6.0)
    assert run.outcome == "ok", run.report


# 2: a node that joined mid-run leads partitions (its upkeep must run); 9: a wall clock jump
# during a retry pause (pauses run on the loop's clock); 13: the first node left.
GSI_CORPUS = (1, 2, 3, 9, 13)


@pytest.mark.parametrize("seed", GSI_CORPUS)
def test_the_index_matches_the_table_once_healed(seed: int) -> None:
    run = run_gsi(seed, _all_faults(seed), seconds=6.0)
    assert run.acknowledged > 0, "no write was acknowledged: the run says nothing"
    assert run.outcome == "ok", run.report
