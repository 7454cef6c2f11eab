"""Active preference lists: which nodes serve a partition right now (Dynamo's sloppy quorum).

Owns: ``ReplicaKind``, ``Replica``, ``active_preference_list`` and ``primaries``.
May import: ``dynamokv.core.ring``.

The preference list of a partition is its first ``n`` distinct owners clockwise (the
primaries). When a primary is down, the request goes to the next node clockwise beyond those
``n`` that is up and not already serving, tagged with the primary it stands in for, so that it
can hand the data back later (hinted handoff). This is riak_core_apl's ``get_apl_ann``:
primaries that are up come first, in ring order, then the fallbacks in the order of the
primaries they replace.
"""

from __future__ import annotations

import enum
from collections.abc import Set
from dataclasses import dataclass

from dynamokv.core.ring import Ring


class ReplicaKind(enum.Enum):
    PRIMARY = "primary"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class Replica:
    """One node serving a partition: a primary, or a fallback standing in for ``for_node``."""

    node: str
    kind: ReplicaKind
    for_node: str | None = None  # the down primary this fallback stands in for


def primaries(ring: Ring, partition: int, n: int) -> tuple[str, ...]:
    """The ``n`` nodes that should hold ``partition``, up or not, in ring order."""
    return ring.preference_list(partition, n)


def active_preference_list(ring: Ring, partition: int, n: int, up: Set[str]) -> tuple[Replica, ...]:
    """Who serves ``partition`` now: the up primaries, then one up fallback per down primary.

    Fallbacks are taken in ring order from the nodes past the first ``n``, skipping nodes that
    are down; fewer than ``n`` replicas come back when not enough nodes are up.
    """
    ordered = ring.successors(partition)
    first = ordered[:n]
    spare = iter(node for node in ordered[n:] if node in up)
    live = tuple(Replica(node, ReplicaKind.PRIMARY) for node in first if node in up)
    stand_ins: list[Replica] = []
    for node in first:
        if node in up:
            continue
        fallback = next(spare, None)
        if fallback is None:
            break
        stand_ins.append(Replica(fallback, ReplicaKind.FALLBACK, for_node=node))
    return live + tuple(stand_ins)
