"""The active preference list: where a request goes when some primaries are down.

Owns: ``ReplicaKind``, ``Replica``, ``active_preference_list``, ``primaries``.
May import: ``dynamokv.core.ring``.

Riak's ``riak_core_apl`` in pure form: the first ``n`` nodes of the preference list that are up
serve as PRIMARY replicas; every primary that is down is replaced by the next node in ring
order beyond the first ``n`` that is up and not yet used, tagged FALLBACK with the primary it
stands in for (the Dynamo paper's sloppy quorum and hinted handoff, 4.6). The ``up`` set comes
from the caller (the failure detector); nothing here looks anything up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dynamokv.core.ring import Ring


class ReplicaKind(enum.Enum):
    PRIMARY = "primary"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class Replica:
    node: str
    kind: ReplicaKind
    for_node: str | None = None  # the down primary a fallback stands in for


def primaries(ring: Ring, partition: int, n: int) -> tuple[str, ...]:
    return ring.preference_list(partition, n)


def active_preference_list(
    ring: Ring, partition: int, n: int, up: frozenset[str]
) -> tuple[Replica, ...]:
    """Primaries that are up, then one fallback per down primary (fewer if none is left)."""
    everyone = ring.successors(partition)
    first = everyone[:n]
    result = [Replica(node, ReplicaKind.PRIMARY) for node in first if node in up]
    spare = iter(node for node in everyone[n:] if node in up)
    for node in first:
        if node in up:
            continue
        fallback = next(spare, None)
        if fallback is None:
            break
        result.append(Replica(fallback, ReplicaKind.FALLBACK, node))
    return tuple(result)
