"""Vector clocks: the causal summary of a value's history.

Owns: ``VectorClock`` (an immutable value), ``Order``, ``PruneLimits``.
May import: ``dynamokv.core.ids``.

A clock maps each actor to ``(counter, timestamp_ms)``. The timestamp is the writer's wall time
at the last increment, passed in by the caller (as riak's ``vclock:increment/3``); it is used only
for pruning, never for ordering. Entries are kept sorted by actor so that equal clocks are equal
values and hash alike.

Laws (tested with hypothesis in ``tests/property/test_vclock_laws.py``): ``merge`` is
commutative, associative and idempotent; ``descends`` is a partial order; ``compare`` agrees with
``descends``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Order(enum.Enum):
    """How clock ``a`` relates to clock ``b`` (Voldemort's ``Occurred`` plus equality)."""

    BEFORE = "before"  # a happened before b: b descends a, a != b
    AFTER = "after"  # a happened after b
    EQUAL = "equal"
    CONCURRENT = "concurrent"


@dataclass(frozen=True, slots=True)
class PruneLimits:
    """When a clock may be pruned: riak's small/big vclock and young/old age (defaults alike).

    A clock with at most ``small_vclock`` entries is never pruned; entries younger than
    ``young_vclock_ms`` are never pruned; past ``big_vclock`` entries, or entries older than
    ``old_vclock_ms``, the oldest entries go first.
    """

    small_vclock: int = 50
    big_vclock: int = 50
    young_vclock_ms: int = 20_000
    old_vclock_ms: int = 86_400_000


Entry = tuple[str, int, int]  # (actor, counter, timestamp_ms)


@dataclass(frozen=True, slots=True)
class VectorClock:
    """An immutable vector clock; ``entries`` sorted by actor, counters > 0."""

    entries: tuple[Entry, ...] = ()

    @staticmethod
    def empty() -> VectorClock:
        return _EMPTY

    @staticmethod
    def from_entries(entries: list[Entry] | tuple[Entry, ...]) -> VectorClock:
        """Build from entries in any order; duplicates keep the larger counter."""
        best: dict[str, Entry] = {}
        for actor, counter, ts in entries:
            if counter <= 0:
                continue
            old = best.get(actor)
            if old is None or (counter, ts) > (old[1], old[2]):
                best[actor] = (actor, counter, ts)
        return VectorClock(tuple(best[a] for a in sorted(best)))

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, actor: str) -> int:
        """The counter of ``actor`` (0 when absent)."""
        for a, counter, _ in self.entries:
            if a == actor:
                return counter
        return 0

    def as_dict(self) -> dict[str, int]:
        return {a: c for a, c, _ in self.entries}

    def increment(self, actor: str, timestamp_ms: int) -> VectorClock:
        """One more event by ``actor`` at wall time ``timestamp_ms``."""
        return self.with_counter(actor, self.get(actor) + 1, timestamp_ms)

    def with_counter(self, actor: str, counter: int, timestamp_ms: int) -> VectorClock:
        """Set ``actor``'s counter (used to add a dot to a context)."""
        rest = [e for e in self.entries if e[0] != actor]
        rest.append((actor, counter, timestamp_ms))
        rest.sort()
        return VectorClock(tuple(rest))

    def merge(self, other: VectorClock) -> VectorClock:
        """Least upper bound: the larger counter of each actor."""
        if not other.entries:
            return self
        if not self.entries:
            return other
        mine = {a: (c, t) for a, c, t in self.entries}
        for a, c, t in other.entries:
            old = mine.get(a)
            if old is None or (c, t) > old:
                mine[a] = (c, t)
        return VectorClock(tuple((a, *mine[a]) for a in sorted(mine)))

    def descends(self, other: VectorClock) -> bool:
        """True when every event of ``other`` is in ``self`` (``self >= other``)."""
        if not other.entries:
            return True
        mine = {a: c for a, c, _ in self.entries}
        return all(mine.get(a, 0) >= c for a, c, _ in other.entries)

    def contains(self, actor: str, counter: int) -> bool:
        """True when the event ``(actor, counter)`` is in this clock's history."""
        return self.get(actor) >= counter

    def compare(self, other: VectorClock) -> Order:
        ge = self.descends(other)
        le = other.descends(self)
        if ge and le:
            return Order.EQUAL
        if ge:
            return Order.AFTER
        if le:
            return Order.BEFORE
        return Order.CONCURRENT

    def prune(self, now_ms: int, limits: PruneLimits) -> VectorClock:
        """Drop the oldest entries as the paper and riak do; never shrinks a small clock.

        Pruning loses causal information, so afterwards a value may look concurrent with one it
        descends (a spurious sibling) but never the other way round.
        """
        if len(self.entries) <= limits.small_vclock:
            return self
        by_age = sorted(self.entries, key=lambda e: (e[2], e[0]))
        kept = list(by_age)
        while len(kept) > limits.small_vclock:
            oldest = kept[0]
            age = now_ms - oldest[2]
            if age < limits.young_vclock_ms:
                break
            if len(kept) > limits.big_vclock or age > limits.old_vclock_ms:
                kept.pop(0)
                continue
            break
        return VectorClock(tuple(sorted(kept)))


_EMPTY = VectorClock(())
