"""The deterministic simulator: whole clusters of ``NodeCore``s in one process, one seed each.

Owns: the public face of the simulator (``Simulator``, ``SimOptions``, ``run_seed``, ``main``).
May import: ``dynamokv.core.*``, ``dynamokv.wire.*``, ``dynamokv.storage.memory`` and
``dynamokv.storage.objects`` and ``dynamokv.storage.node_store``. Never ``asyncio``, ``time``,
``dynamokv.runtime``, ``api`` or ``cli``, nor module-level ``random``: every choice comes from the
seed (``run.py`` draws a fresh seed with ``secrets`` only when none is given, and prints it).

Design and usage: ``docs/simulator.md``.
"""

from __future__ import annotations

from dynamokv.sim.options import SimOptions
from dynamokv.sim.run import RunResult, main, run_seed
from dynamokv.sim.world import Simulator

__all__ = ["RunResult", "SimOptions", "Simulator", "main", "run_seed"]
