"""Swarm options: every knob of one simulated run, drawn from the seed (TigerBeetle's swarm).

Owns: ``SimOptions`` and ``SimOptions.from_seed``; the bounds each option is drawn from.
May import: stdlib only.

Each run draws its own cluster shape and fault mix, so a corpus of seeds covers many corners
instead of one configuration many times. The draw is a pure function of the seed: it uses its
own ``random.Random`` seeded with a string derived from the seed (str seeds are hashed with
SHA-512, so the draw does not depend on ``PYTHONHASHSEED``), and the simulator's run-time choices
use a separate ``random.Random(seed)``. Overrides given on the command line are applied after the
full draw, so they never shift the other options of a seed.

Fault budget: at most ``max_impaired`` nodes are crashed or partitioned away at any moment, and
that is ``min(1, N - W)``: a fault never takes away more replicas than the writes' quorum
tolerates, so an acknowledged write always keeps a reachable copy (ARCHITECTURE R4).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

BUGS = ("lying-disk",)
"""Bugs the simulator can inject on purpose, to prove its checkers catch them.

``lying-disk``: every node's disk silently ignores every 10th object write (and reports success).
"""


@dataclass(frozen=True, slots=True)
class SimOptions:
    seed: int
    nodes: int = 3
    n: int = 3
    r: int = 2
    w: int = 2
    q: int = 16
    # Strict quorums: every request asks for PR=R / PW=W, so fallbacks (sloppy quorum) cannot
    # stand in for primaries; only then must a read see every write acknowledged before it.
    strict_quorum: bool = False
    clients: int = 3
    keys: int = 4
    # Network (node to node). Loss and duplication are probabilities per message.
    loss: float = 0.0
    duplication: float = 0.0
    delay_min_ms: int = 1
    delay_max_ms: int = 10
    delay_tail: float = 0.0  # probability of an extra delay of up to delay_tail_ms
    delay_tail_ms: int = 0
    fifo: bool = True  # False: messages on one link may overtake each other
    refuse_delay_ms: int = 2  # how long a refused connection takes to be noticed
    connect_timeout_ms: int = 1_000  # a partitioned peer that was never reached times out
    # Clocks: each node's wall clock is offset by up to this much (version timestamps only).
    clock_skew_ms_max: int = 0
    # Storage faults: probability that one object read or write raises StorageError.
    storage_fault: float = 0.0
    # Faults: crash/restart and partition of one node at a time, within the budget.
    crashes: bool = False
    partitions: bool = False
    fault_gap_ms_min: int = 1_000
    fault_gap_ms_max: int = 4_000
    fault_length_ms_min: int = 300
    fault_length_ms_max: int = 3_000
    # Timers.
    request_timeout_ms: int = 1_500
    gossip_interval_ms: int = 1_000
    # Workload.
    think_ms_max: int = 40
    workload_ms: int = 8_000
    settle_ms: int = 5_000  # after healing, before the final reads
    bootstrap_ms_max: int = 30_000
    steps_max: int = 0  # 0: unlimited; otherwise the workload ends after this many events
    bug: str = ""  # one of BUGS to inject on purpose, "" for none

    @property
    def max_impaired(self) -> int:
        """How many nodes may be crashed or cut off at once (see the module docstring)."""
        if not (self.crashes or self.partitions):
            return 0
        return max(0, min(1, self.n - self.w))

    @property
    def client_timeout_ms(self) -> int:
        """How long a simulated client waits for an answer before calling the outcome unknown.

        Longer than any coordinator deadline plus a forward and network delays, so a client only
        gives up on requests the system itself lost track of.
        """
        return 2 * self.request_timeout_ms + 1_000 + 4 * (self.delay_max_ms + self.delay_tail_ms)

    @staticmethod
    def from_seed(seed: int, **overrides: Any) -> SimOptions:
        """The options of ``seed``, then ``overrides`` (``None`` values are ignored)."""
        rng = random.Random(f"dynamokv-sim-options/{seed}")
        n = 3
        r, w = rng.choice([(r, w) for r in (1, 2, 3) for w in (1, 2, 3) if r + w > n])
        delay_min = rng.randint(1, 5)
        tail = rng.choice([0.0, 0.0, 0.01, 0.05])
        drawn = SimOptions(
            seed=seed,
            nodes=rng.randint(3, 5),
            n=n,
            r=r,
            w=w,
            q=rng.choice([8, 16, 32]),
            strict_quorum=rng.random() < 0.5,
            clients=rng.randint(2, 5),
            keys=rng.randint(2, 8),
            loss=rng.choice([0.0, 0.0, round(rng.uniform(0.0, 0.1), 3)]),
            duplication=rng.choice([0.0, 0.0, round(rng.uniform(0.0, 0.05), 3)]),
            delay_min_ms=delay_min,
            delay_max_ms=delay_min + rng.randint(0, 40),
            delay_tail=tail,
            delay_tail_ms=rng.randint(50, 500) if tail else 0,
            fifo=rng.random() < 0.5,
            clock_skew_ms_max=rng.choice([0, 5, 50, 200]),
            storage_fault=rng.choice([0.0, 0.0, 0.0, 0.002, 0.01]),
            crashes=rng.random() < 0.6,
            partitions=rng.random() < 0.3,
            request_timeout_ms=rng.choice([500, 1_000, 2_000]),
            think_ms_max=rng.choice([5, 20, 60]),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(drawn, **clean) if clean else drawn

    def validate(self) -> None:
        if not 1 <= self.nodes <= 16:
            raise ValueError(f"nodes={self.nodes} must be between 1 and 16")
        for name in ("r", "w"):
            if not 1 <= getattr(self, name) <= self.n:
                raise ValueError(f"{name}={getattr(self, name)} must be between 1 and N={self.n}")
        if self.bug and self.bug not in BUGS:
            raise ValueError(f"unknown bug {self.bug!r}; known: {', '.join(BUGS)}")
        if self.delay_min_ms < 0 or self.delay_max_ms < self.delay_min_ms:
            raise ValueError("delays must satisfy 0 <= delay_min_ms <= delay_max_ms")

    def describe(self) -> str:
        """One line, every option as ``name=value`` in declaration order (part of the trace)."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            parts.append(f"{f.name}={value}")
        return " ".join(parts)
