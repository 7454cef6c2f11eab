"""Swarm options: every knob of one simulated run, drawn from the seed (TigerBeetle's swarm).

Owns: ``SimOptions`` and ``SimOptions.from_seed``; ``FAULT_KINDS`` and the bounds each option is
drawn from; ``parse_faults`` (the ``--faults`` syntax).
May import: stdlib only.

Each run draws its own cluster shape and fault mix, so a corpus of seeds covers many corners
instead of one configuration many times. The draw is a pure function of the seed: it uses its
own ``random.Random`` seeded with a string derived from the seed (str seeds are hashed with
SHA-512, so the draw does not depend on ``PYTHONHASHSEED``), and the simulator's run-time choices
use a separate ``random.Random(seed)``. Overrides given on the command line are applied after the
full draw, so they never shift the other options of a seed.

Fault kinds are switched on one by one (``faults``); the magnitudes of every kind (loss rate,
clock jump size, flush window, ...) are drawn whether the kind is on or not, so forcing a kind
on with ``--faults`` gives it the seed's own magnitude and leaves every other draw alone.

Fault budget (what keeps the claimed tolerance, see ``docs/simulator.md``): process crashes,
pauses and partitions never destroy data, so they are bounded only to keep runs useful (at most
``node_faults_max`` nodes crashed or paused at once, one partition at a time). Power losses do
destroy the writes a node has not yet flushed; the world injects one only when every write it
would destroy still has a copy on another disk (``Simulator.power_loss_unsafe``).
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

FAULT_KINDS = (
    "crash",  # the process dies (kill -9) and restarts later: loses nothing
    "power",  # the machine loses power: loses the writes the OS had not flushed yet
    "pause",  # the process stops handling events for a while (GC, SIGSTOP, a slow disk)
    "isolate",  # partition: one node cut off from every other
    "split",  # partition: a minority and a majority (or two halves)
    "asym",  # partition: one way only (A hears B, B does not hear A)
    "bridge",  # partition: two halves that both see one bridge node
    "loss",  # node-to-node messages lost
    "dup",  # node-to-node messages delivered twice
    "reorder",  # messages on one link overtake each other
    "delay",  # a tail of long delays
    "skew",  # each node's wall clock has a fixed offset
    "clock",  # wall clocks jump forward or backward (monotonic time unaffected)
    "storage",  # object and hint reads and writes raise StorageError
    "join",  # a fresh node joins mid-run (auto-join through its seeds)
    "leave",  # a member leaves mid-run (staged leave + commit through the claimant)
)

# Probability of each kind being on in a drawn run (swarm testing: each run a different mix).
_FAULT_ODDS = {
    "crash": 0.5, "power": 0.35, "pause": 0.35, "isolate": 0.3, "split": 0.25, "asym": 0.25,
    "bridge": 0.2, "loss": 0.3, "dup": 0.3, "reorder": 0.5, "delay": 0.4, "skew": 0.5,
    "clock": 0.35, "storage": 0.3, "join": 0.25, "leave": 0.25,
}

NODE_FAULTS = ("crash", "power", "pause")
PARTITIONS = ("isolate", "split", "asym", "bridge")


def parse_faults(spec: str, drawn: tuple[str, ...]) -> tuple[str, ...]:
    """The fault kinds ``spec`` selects: ``crash,pause`` (exactly these), ``none``, ``all``,
    or ``+power,-loss`` (the drawn kinds with some added or removed)."""
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if items == ["none"]:
        return ()
    if items == ["all"]:
        return FAULT_KINDS
    relative = bool(items) and all(s[0] in "+-" for s in items)
    chosen = set(drawn) if relative else set()
    for item in items:
        name = item[1:] if item[0] in "+-" else item
        if name not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {name!r}; known: {', '.join(FAULT_KINDS)}, "
                             "or none / all")
        if item[0] == "-":
            chosen.discard(name)
        else:
            chosen.add(name)
    return tuple(k for k in FAULT_KINDS if k in chosen)


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
    cas_clients: int = 0  # clients running linearizable increments and reads of one counter
    faults: tuple[str, ...] = ()  # the fault kinds on in this run (FAULT_KINDS order)
    # Network (node to node). Loss and duplication are probabilities per message.
    loss: float = 0.05
    duplication: float = 0.02
    delay_min_ms: int = 1
    delay_max_ms: int = 10
    delay_tail: float = 0.02  # probability of an extra delay of up to delay_tail_ms
    delay_tail_ms: int = 200
    refuse_delay_ms: int = 2  # how long a refused connection takes to be noticed
    connect_timeout_ms: int = 1_000  # a partitioned peer that was never reached times out
    # Clocks: a fixed offset of up to clock_skew_ms_max per node; jumps of up to
    # clock_jump_ms_max either way. Wall clocks only stamp versions (never table writes).
    clock_skew_ms_max: int = 50
    clock_jump_ms_max: int = 2_000
    # Storage faults: probability that one object read or write raises StorageError.
    storage_fault: float = 0.005
    # Power loss: writes younger than this (the OS's writeback delay) are lost with the power.
    flush_ms: int = 200
    # Fault episodes: crashes and pauses of up to node_faults_max nodes at once, one partition
    # at a time; gaps and lengths in virtual ms.
    node_faults_max: int = 1
    fault_gap_ms_min: int = 500
    fault_gap_ms_max: int = 3_000
    fault_length_ms_min: int = 200
    fault_length_ms_max: int = 3_000
    # Timers.
    request_timeout_ms: int = 1_500
    gossip_interval_ms: int = 1_000
    aae_interval_ms: int = 100  # short, so anti-entropy converges within the liveness phase
    # Workload.
    think_ms_max: int = 40
    workload_ms: int = 8_000
    liveness_ms_max: int = 60_000  # after healing: convergence must come within this
    bootstrap_ms_max: int = 30_000
    steps_max: int = 0  # 0: unlimited; otherwise the workload ends after this many events
    bug: str = ""  # one of BUGS to inject on purpose, "" for none

    def has(self, kind: str) -> bool:
        return kind in self.faults

    @property
    def client_timeout_ms(self) -> int:
        """How long a simulated client waits for an answer before calling the outcome unknown.

        Longer than any coordinator deadline plus a forward and network delays, so a client only
        gives up on requests the system itself lost track of (a paused node aside).
        """
        return 2 * self.request_timeout_ms + 1_000 + 4 * (self.delay_max_ms + self.delay_tail_ms)

    @staticmethod
    def from_seed(seed: int, **overrides: Any) -> SimOptions:
        """The options of ``seed``, then ``overrides`` (``None`` values are ignored)."""
        rng = random.Random(f"dynamokv-sim-options/{seed}")
        n = 3
        r, w = rng.choice([(r, w) for r in (1, 2, 3) for w in (1, 2, 3) if r + w > n])
        delay_min = rng.randint(1, 5)
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
            cas_clients=rng.choice([0, 1, 2]),
            loss=round(rng.uniform(0.005, 0.1), 3),
            duplication=round(rng.uniform(0.005, 0.05), 3),
            delay_min_ms=delay_min,
            delay_max_ms=delay_min + rng.randint(0, 40),
            delay_tail=rng.choice([0.01, 0.05]),
            delay_tail_ms=rng.randint(50, 500),
            clock_skew_ms_max=rng.choice([5, 50, 200, 2_000]),
            clock_jump_ms_max=rng.choice([500, 5_000, 60_000]),
            storage_fault=rng.choice([0.002, 0.01]),
            flush_ms=rng.choice([50, 200, 1_000]),
            node_faults_max=rng.choice([1, 1, 2]),
            request_timeout_ms=rng.choice([500, 1_000, 2_000]),
            aae_interval_ms=rng.choice([50, 100, 300]),
            think_ms_max=rng.choice([5, 20, 60]),
        )
        faults = tuple(k for k in FAULT_KINDS if rng.random() < _FAULT_ODDS[k])
        drawn = dataclasses.replace(drawn, faults=faults)
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(drawn, **clean) if clean else drawn

    def validate(self) -> None:
        if not 1 <= self.nodes <= 16:
            raise ValueError(f"nodes={self.nodes} must be between 1 and 16")
        for name in ("r", "w"):
            if not 1 <= getattr(self, name) <= self.n:
                raise ValueError(f"{name}={getattr(self, name)} must be between 1 and N={self.n}")
        if self.q < 1 or self.q & (self.q - 1):
            raise ValueError(f"q={self.q} must be a power of two")
        if self.aae_interval_ms < 1 or self.liveness_ms_max < 1:
            raise ValueError("aae_interval_ms and liveness_ms_max must be positive")
        if self.bug and self.bug not in BUGS:
            raise ValueError(f"unknown bug {self.bug!r}; known: {', '.join(BUGS)}")
        if self.delay_min_ms < 0 or self.delay_max_ms < self.delay_min_ms:
            raise ValueError("delays must satisfy 0 <= delay_min_ms <= delay_max_ms")
        unknown = [k for k in self.faults if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")

    def describe(self) -> str:
        """One line, every option as ``name=value`` in declaration order (part of the trace)."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, tuple):
                value = ",".join(value) or "none"
            parts.append(f"{f.name}={value}")
        return " ".join(parts)
