"""After a partition heals, the replicas agree within 30 s at production anti-entropy pace.

The simulator's drawn options run anti-entropy every 50-300 ms; these runs use production's
pace instead (a rotation exchange every 2 s, Q = 64), a partition kind alone, and a liveness
budget of 30 s: within it every replica must report equal Merkle roots, no hints and no stray
partitions (``sim/run.py`` ``_unconverged``). Before exchanges were scheduled by suspicion
(``core/exchange.py``), the same runs took 67-110 s.
"""

from __future__ import annotations

import pytest

from dynamokv.sim.options import PARTITIONS, SimOptions
from dynamokv.sim.run import run_seed

HEAL_BUDGET_MS = 30_000


@pytest.mark.parametrize("nodes", [3, 5])
@pytest.mark.parametrize("kind", PARTITIONS)
def test_replicas_agree_soon_after_a_partition_heals(kind: str, nodes: int) -> None:
    options = SimOptions.from_seed(1, nodes=nodes, faults=(kind,), cas_clients=0, q=64,
                                   aae_interval_ms=2_000, liveness_ms_max=HEAL_BUDGET_MS)
    result = run_seed(options)
    assert result.counts["partitions"] > 0
    assert result.ok, (f"reproduce with: python -m dynamokv.sim --seed 1 --nodes {nodes} "
                       f"--faults {kind} --cas-clients 0 --q 64 --aae-interval-ms 2000 "
                       f"--liveness-ms {HEAL_BUDGET_MS}\n{result.violations}")
