"""The fault schedule: which node crashes or is cut off, when, and for how long.

Owns: ``FaultPlan`` and the ``FaultTarget`` protocol it drives.
May import: stdlib, ``dynamokv.sim.options``.

Faults come one after another with random gaps, each lasting a random while, and never impair
more than ``options.max_impaired`` nodes at once (see ``sim.options`` for why that budget).
Kinds (FDB's kill types, the few we need so far):

- ``crash``: the process dies (memory lost, disk kept) and restarts when the fault ends;
- ``isolate``: a symmetric partition of one node from all others, healed when it ends.

No fault starts after the safety phase ends; healing (``Simulator.heal``) ends any in progress.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Protocol

from dynamokv.sim.options import SimOptions


class FaultTarget(Protocol):
    rng: random.Random

    @property
    def now_ms(self) -> int: ...

    def node_ids(self) -> list[str]: ...

    def call_at(self, at_ms: int, label: str, fn: Callable[[], None]) -> None: ...

    def crash(self, node_id: str) -> None: ...

    def restart(self, node_id: str) -> None: ...

    def isolate(self, node_id: str) -> None: ...

    def rejoin(self, node_id: str) -> None: ...


class FaultPlan:
    def __init__(self, target: FaultTarget, options: SimOptions) -> None:
        self.target = target
        self.options = options
        self.impaired: list[str] = []  # nodes under a fault right now, in the order hit
        self.end_ms = 0
        self.kinds = [k for k, on in (("crash", options.crashes),
                                      ("isolate", options.partitions)) if on]

    def start(self, end_ms: int) -> None:
        self.end_ms = end_ms
        if self.kinds and self.options.max_impaired > 0:
            self._schedule_next()

    def _schedule_next(self) -> None:
        o = self.options
        at = self.target.now_ms + self.target.rng.randint(o.fault_gap_ms_min, o.fault_gap_ms_max)
        if at < self.end_ms:
            self.target.call_at(at, "fault", self._begin)

    def _begin(self) -> None:
        target = self.target
        rng = target.rng
        if target.now_ms >= self.end_ms:
            return
        if len(self.impaired) < self.options.max_impaired:
            candidates = [n for n in target.node_ids() if n not in self.impaired]
            node = rng.choice(candidates)
            kind = rng.choice(self.kinds)
            o = self.options
            length = rng.randint(o.fault_length_ms_min, o.fault_length_ms_max)
            self.impaired.append(node)
            if kind == "crash":
                target.crash(node)
                end: Callable[[str], None] = target.restart
            else:
                target.isolate(node)
                end = target.rejoin
            target.call_at(target.now_ms + length, f"end {kind} {node}",
                           functools.partial(self._end, node, end))
        self._schedule_next()

    def _end(self, node: str, end: Callable[[str], None]) -> None:
        if node in self.impaired:
            self.impaired.remove(node)
            end(node)
