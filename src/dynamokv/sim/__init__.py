"""The deterministic simulator: whole clusters of ``NodeCore``s in one process, one seed each.

Owns: the public face of the simulator (``Simulator``, ``SimOptions``, ``run_seed``, ``main``).
May import: ``dynamokv.core.*``, ``dynamokv.wire.*``, ``dynamokv.storage.memory`` and
``dynamokv.storage.objects``. Never ``asyncio``, ``dynamokv.runtime``, ``api`` or ``cli``, nor
``time`` or module-level ``random`` outside ``run.py``'s wall-clock report and seed choice.

Design and usage: ``docs/simulator.md``.
"""

from __future__ import annotations

from dynamokv.sim.options import SimOptions
from dynamokv.sim.run import RunResult, main, run_seed
from dynamokv.sim.world import Simulator

__all__ = ["RunResult", "SimOptions", "Simulator", "main", "run_seed"]
