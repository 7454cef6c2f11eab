"""Injected replica delay: FOR BENCHMARKS AND TESTS ONLY (``node start --inject-replica-delay``).

Owns: ``DelaySpec`` (a delay distribution parsed from text such as ``exp:10``) and
``install_replica_delay``, which makes a node apply each ``ReplicaWrite`` it receives from a
peer only after a delay drawn from that distribution.
May import: stdlib, ``asyncio``, ``dynamokv.core.messages``, ``dynamokv.errors``,
``dynamokv.runtime.transport``.

Why: on one machine every replica applies a write within a millisecond of the coordinator, so a
read can never miss an acknowledged write and the staleness curve of probabilistically bounded
staleness (PBS) is flat at zero. Delaying the replicas' apply (and so their acknowledgement)
stands in for a network and disks that are slower than loopback: a coordinator still waits for
W acknowledgements, a read may reach a replica that has not applied the write yet.

Only replica writes from peers are delayed (the coordinator's own copy is applied at once, as
on a real node); reads, acknowledgements, gossip and background transfers are not. Delayed
writes may overtake one another, as they may on a network with several paths: vector clocks
merge them in any order. Nothing here runs unless the option is given: the transport keeps
calling the runner directly, and ``core/`` never knows.

Distributions (milliseconds): ``fixed:MS``, ``uniform:LO:HI``, ``exp:MEAN`` (exponential),
``pareto:MIN:ALPHA`` (a heavy tail, the shape the PBS paper fitted to production latencies).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass

from dynamokv.core.messages import Message, ReplicaWrite
from dynamokv.errors import ConfigError
from dynamokv.runtime.transport import Transport

_KINDS = {"fixed": 1, "uniform": 2, "exp": 1, "pareto": 2}
_MAX_MS = 60_000.0  # a larger delay would only trip the coordinator's deadline
EXAMPLE = "fixed:5, uniform:0:20, exp:10 or pareto:2:1.5"


@dataclass(frozen=True, slots=True)
class DelaySpec:
    """A delay distribution in milliseconds; ``sample(rng)`` draws one delay."""

    kind: str
    params: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> DelaySpec:
        kind, _, rest = text.strip().partition(":")
        if kind not in _KINDS:
            raise ConfigError(f"replica delay {text!r}: unknown distribution {kind!r}; "
                              f"write one of {EXAMPLE}")
        parts = rest.split(":") if rest else []
        if len(parts) != _KINDS[kind]:
            raise ConfigError(f"replica delay {text!r}: {kind} takes {_KINDS[kind]} number(s) "
                              f"after the colon, e.g. {EXAMPLE}")
        try:
            params = tuple(float(p) for p in parts)
        except ValueError:
            raise ConfigError(f"replica delay {text!r}: {rest!r} is not a number; "
                              f"e.g. {EXAMPLE}") from None
        spec = cls(kind, params)
        spec._check(text)
        return spec

    def _check(self, text: str) -> None:
        p = self.params
        if not all(0.0 <= v <= _MAX_MS for v in p):
            raise ConfigError(f"replica delay {text!r}: every number must be between 0 and "
                              f"{_MAX_MS:.0f}")
        if self.kind == "uniform" and p[0] > p[1]:
            raise ConfigError(f"replica delay {text!r}: LO must not exceed HI")
        if self.kind == "pareto" and (p[0] <= 0 or p[1] <= 0):
            raise ConfigError(f"replica delay {text!r}: MIN and ALPHA must be more than 0")

    def sample(self, rng: random.Random) -> float:
        """One delay in milliseconds, capped at 60 s."""
        p = self.params
        if self.kind == "fixed":
            ms = p[0]
        elif self.kind == "uniform":
            ms = rng.uniform(p[0], p[1])
        elif self.kind == "exp":
            ms = rng.expovariate(1.0 / p[0]) if p[0] > 0 else 0.0
        else:
            ms = p[0] * rng.paretovariate(p[1])
        return min(ms, _MAX_MS)

    def __str__(self) -> str:
        return ":".join([self.kind, *(f"{v:g}" for v in self.params)])


OnPeerMessage = Callable[[str, Message], None]


def delayed_delivery(deliver: OnPeerMessage, spec: DelaySpec,
                     rng: random.Random) -> OnPeerMessage:
    """``deliver`` with every ``ReplicaWrite`` handed over after a drawn delay."""

    def on_peer_message(src: str, msg: Message) -> None:
        if type(msg) is not ReplicaWrite:
            deliver(src, msg)
            return
        delay_ms = spec.sample(rng)
        if delay_ms <= 0:
            deliver(src, msg)
            return
        asyncio.get_running_loop().call_later(delay_ms / 1000, deliver, src, msg)

    return on_peer_message


def install_replica_delay(transport: Transport, spec: DelaySpec,
                          rng: random.Random | None = None) -> None:
    """Make ``transport`` hand every ``ReplicaWrite`` to its node after a drawn delay."""
    transport.on_peer_message = delayed_delivery(transport.on_peer_message, spec,
                                                 rng or random.Random())


__all__ = ["DelaySpec", "delayed_delivery", "install_replica_delay"]
