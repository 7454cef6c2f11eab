"""Quorum tallies: when a get or put has its answer (riak_kv's get_core / put_core split).

Owns: ``PutTally``, ``GetTally``, ``Decision``.
May import: ``dynamokv.core.versioned``.

A tally knows nothing of messages or time: the coordinator feeds it replies and failures and asks
``decision()``. A request succeeds once ``needed`` replicas answered and fails as soon as so many
failed that ``needed`` can no longer be reached (riak's ``n - q + 1`` threshold, counted over the
replicas actually asked).
"""

from __future__ import annotations

import enum

from dynamokv.core.versioned import VersionedObject, is_descendant, sync


class Decision(enum.Enum):
    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"


class _Tally:
    __slots__ = ("failed", "needed", "needed_primaries", "ok_nodes", "primaries", "replicas")

    def __init__(self, needed: int, replicas: tuple[str, ...], *,
                 primaries: frozenset[str] | None = None, needed_primaries: int = 0) -> None:
        self.needed = needed
        self.replicas = replicas
        # Which of ``replicas`` are primaries (the rest are fallbacks standing in for down
        # primaries); PR/PW count only these (riak's pr/pw).
        self.primaries = frozenset(replicas) if primaries is None else primaries
        self.needed_primaries = needed_primaries
        self.ok_nodes: list[str] = []
        self.failed: dict[str, str] = {}

    def record_failure(self, node: str, reason: str) -> None:
        if node in self.replicas and node not in self.failed and node not in self.ok_nodes:
            self.failed[node] = reason

    def waiting_on(self) -> list[str]:
        return [n for n in self.replicas if n not in self.failed and n not in self.ok_nodes]

    def decision(self) -> Decision:
        primaries_ok = sum(1 for n in self.ok_nodes if n in self.primaries)
        if len(self.ok_nodes) >= self.needed and primaries_ok >= self.needed_primaries:
            return Decision.OK
        if len(self.replicas) - len(self.failed) < self.needed:
            return Decision.FAILED
        primaries_possible = sum(
            1 for n in self.replicas if n in self.primaries and n not in self.failed
        )
        if primaries_possible < self.needed_primaries:
            return Decision.FAILED
        return Decision.PENDING

    def complete(self) -> bool:
        """Every replica asked has answered or failed (read repair can be decided)."""
        return len(self.ok_nodes) + len(self.failed) >= len(self.replicas)

    def report(self) -> dict[str, object]:
        """What went wrong, for the caller's error details."""
        return {
            "needed": self.needed,
            "needed_primaries": self.needed_primaries,
            "fallbacks": sorted(set(self.replicas) - self.primaries),
            "replicas": list(self.replicas),
            "succeeded": list(self.ok_nodes),
            "failed": dict(self.failed),
            "no_reply": self.waiting_on(),
        }


class PutTally(_Tally):
    """Counts write acknowledgements toward W."""

    __slots__ = ()

    def record_ack(self, node: str) -> None:
        if node in self.replicas and node not in self.ok_nodes and node not in self.failed:
            self.ok_nodes.append(node)


class GetTally(_Tally):
    """Counts read replies toward R and works out which replicas need read repair."""

    __slots__ = ("objects",)

    def __init__(self, needed: int, replicas: tuple[str, ...], *,
                 primaries: frozenset[str] | None = None, needed_primaries: int = 0) -> None:
        super().__init__(needed, replicas, primaries=primaries,
                         needed_primaries=needed_primaries)
        self.objects: dict[str, VersionedObject | None] = {}

    def record_reply(self, node: str, obj: VersionedObject | None) -> None:
        if node in self.replicas and node not in self.ok_nodes and node not in self.failed:
            self.ok_nodes.append(node)
            self.objects[node] = obj

    def merged(self) -> VersionedObject | None:
        """The join of every reply so far (``None`` when no replica had the key)."""
        result: VersionedObject | None = None
        for node in self.ok_nodes:
            obj = self.objects[node]
            if obj is not None:
                result = obj if result is None else sync(result, obj)
        return result

    def repair_targets(self) -> list[str]:
        """Replicas that answered with less than the merged object."""
        merged = self.merged()
        if merged is None:
            return []
        return [n for n in self.ok_nodes if not is_descendant(self.objects[n] or _EMPTY, merged)]


_EMPTY = VersionedObject(())
