"""Versioned objects: siblings with dots, the object a replica stores for one key.

Owns: ``Dot``, ``Sibling``, ``VersionedObject`` and the pure operations on them
(``new_sibling``, ``apply_write``, ``sync``, ``resolve_lww``).
May import: ``dynamokv.core.vclock``, ``dynamokv.core.ids``.

We use *dotted version vectors* (Preguiça et al.; Riak's ``dvvset``) rather than one plain
vector clock per object, because plain per-node clocks either lose concurrent writes (two clients
writing without context through the same coordinator) or explode into siblings (Riak's
riak_test#383). Each sibling carries

- ``dot``: the single event ``(actor, counter)`` that created it, and
- ``context``: the causal past its writer had read (a ``VectorClock``), not including the dot.

A sibling ``s`` is *obsoleted* by a sibling ``t`` exactly when ``t.context`` contains ``s.dot``.
Two siblings neither of which obsoletes the other are concurrent and both are kept. This is exact:
no spurious siblings, no lost concurrent writes. Obsoletion is transitive: when siblings meet, a
sibling's context absorbs the context of every sibling it obsoletes (see ``_close_contexts``), so
what a superseded sibling had superseded stays superseded after it is dropped.

The context handed to clients is the join of every sibling's clock (context plus dot); a put
carrying it obsoletes exactly the siblings the writer saw.

Deletes are tombstones: a sibling with ``value is None``. They obey the same causality; an object
whose siblings are all tombstones reads as not found, but its context still supersedes them.

Invariants of ``VersionedObject``: siblings are sorted by dot, dots are unique, and no sibling is
obsoleted by another.
"""

from __future__ import annotations

from dataclasses import dataclass

from dynamokv.core.vclock import VectorClock


@dataclass(frozen=True, slots=True, order=True)
class Dot:
    """One write event: the ``counter``-th event of ``actor``."""

    actor: str
    counter: int


@dataclass(frozen=True, slots=True)
class Sibling:
    """One version of a value: ``value`` (``None`` for a tombstone) written at ``dot``."""

    value: bytes | None
    dot: Dot
    context: VectorClock
    timestamp_ms: int

    @property
    def tombstone(self) -> bool:
        return self.value is None

    def clock(self) -> VectorClock:
        """The sibling's full causal history: its context plus its own dot."""
        if self.context.get(self.dot.actor) >= self.dot.counter:
            return self.context
        return self.context.with_counter(self.dot.actor, self.dot.counter, self.timestamp_ms)

    def obsoleted_by(self, clock: VectorClock) -> bool:
        """True when ``clock`` has seen this sibling's dot."""
        return clock.contains(self.dot.actor, self.dot.counter)

    def size_bytes(self) -> int:
        return (len(self.value) if self.value is not None else 0) + 16 * (len(self.context) + 1)


@dataclass(frozen=True, slots=True)
class VersionedObject:
    """Every surviving (mutually concurrent) sibling of one key, sorted by dot."""

    siblings: tuple[Sibling, ...]

    @staticmethod
    def of(siblings: list[Sibling] | tuple[Sibling, ...]) -> VersionedObject:
        """Build an object from any siblings, dropping duplicates and obsoleted ones."""
        by_dot: dict[Dot, Sibling] = {}
        for s in siblings:
            old = by_dot.get(s.dot)
            if old is None:
                by_dot[s.dot] = s
            elif old.context != s.context:
                # One dot is one write; its context may have been widened by LWW resolution on
                # one replica only. Joining keeps sync commutative.
                by_dot[s.dot] = Sibling(
                    old.value, old.dot, old.context.merge(s.context), old.timestamp_ms
                )
        _close_contexts(by_dot)
        alive = [
            s
            for s in by_dot.values()
            if not any(t.dot != s.dot and s.obsoleted_by(t.context) for t in by_dot.values())
        ]
        alive.sort(key=lambda s: s.dot)
        return VersionedObject(tuple(alive))

    def context(self) -> VectorClock:
        """What a reader has seen: the join of every sibling's clock."""
        clock = VectorClock.empty()
        for s in self.siblings:
            clock = clock.merge(s.clock())
        return clock

    def values(self) -> list[bytes]:
        """The live values (tombstones left out), in dot order."""
        return [s.value for s in self.siblings if s.value is not None]

    def is_deleted(self) -> bool:
        """True when every sibling is a tombstone (reads as not found)."""
        return all(s.value is None for s in self.siblings)

    def dots(self) -> frozenset[Dot]:
        return frozenset(s.dot for s in self.siblings)

    def size_bytes(self) -> int:
        return sum(s.size_bytes() for s in self.siblings)

    def max_timestamp_ms(self) -> int:
        return max((s.timestamp_ms for s in self.siblings), default=0)


def _close_contexts(by_dot: dict[Dot, Sibling]) -> None:
    """Make obsoletion transitive: a sibling's context absorbs those of the siblings it obsoletes.

    Without this, what a dropped sibling obsoleted is forgotten with it. An LWW winner's widened
    context is the one place where ``t`` obsoleting ``s`` does not imply ``t.context`` covering
    ``s.context``, so once a later write superseded the winner (a) the losers came back on sync
    with a stale replica, making ``sync`` neither associative nor idempotent, and (b) the object
    context forgot the losers' dots, so ``new_sibling`` could re-issue one of them.
    """
    contexts = {d: s.context for d, s in by_dot.items()}
    changed = True
    while changed:
        changed = False
        for d in list(contexts):
            ctx = wider = contexts[d]
            for e, other in list(contexts.items()):
                if e != d and wider.contains(e.actor, e.counter):
                    wider = wider.merge(other)
            if wider != ctx:
                contexts[d] = wider
                changed = True
    for d, ctx in contexts.items():
        s = by_dot[d]
        if ctx != s.context:
            by_dot[d] = Sibling(s.value, s.dot, ctx, s.timestamp_ms)


def new_sibling(
    local: VersionedObject | None,
    actor: str,
    value: bytes | None,
    context: VectorClock,
    timestamp_ms: int,
) -> Sibling:
    """Stamp a new write at a coordinating replica.

    The counter is one past the largest the actor has issued for this key, as known from the
    replica's local object and the writer's context; with per-incarnation actors (see
    ``core.ids``) this never re-issues a dot.
    """
    seen = context.get(actor)
    if local is not None:
        seen = max(seen, local.context().get(actor))
    return Sibling(value, Dot(actor, seen + 1), context, timestamp_ms)


def apply_write(local: VersionedObject | None, sibling: Sibling) -> VersionedObject:
    """The object after ``sibling`` is written over ``local``: what it saw goes, the rest stays."""
    if local is None:
        return VersionedObject((sibling,))
    return sync(local, VersionedObject((sibling,)))


def sync(a: VersionedObject | None, b: VersionedObject | None) -> VersionedObject:
    """Merge two replicas' objects: the union of siblings minus every obsoleted one.

    Commutative, associative and idempotent (a join), so replicas converge whatever order
    repairs arrive in.
    """
    if a is None:
        return b if b is not None else VersionedObject(())
    if b is None or a == b:
        return a
    return VersionedObject.of(a.siblings + b.siblings)


def resolve_lww(obj: VersionedObject) -> VersionedObject:
    """Last writer wins: keep the sibling with the largest (timestamp, dot).

    The kept sibling's context is widened to the whole object's context so that it obsoletes the
    losers on every replica it reaches.
    """
    if len(obj.siblings) <= 1:
        return obj
    winner = max(obj.siblings, key=lambda s: (s.timestamp_ms, s.dot))
    widened = Sibling(winner.value, winner.dot, obj.context(), winner.timestamp_ms)
    return VersionedObject((widened,))


def is_descendant(newer: VersionedObject, older: VersionedObject | None) -> bool:
    """True when ``newer`` already holds everything in ``older`` (no repair needed)."""
    if older is None:
        return True
    return sync(newer, older) == newer


def object_digest(obj: VersionedObject) -> bytes:
    """A stable 16-byte digest of an object's content (anti-entropy compares these).

    Built from a canonical byte form by hand (the core does not import the wire codec): equal
    objects always digest alike, on every node and across versions of the codec.
    """
    import hashlib

    h = hashlib.blake2b(digest_size=16, person=b"dynamokv/objdig")
    for s in obj.siblings:
        actor = s.dot.actor.encode()
        h.update(len(actor).to_bytes(2, "big") + actor + s.dot.counter.to_bytes(8, "big"))
        h.update(s.timestamp_ms.to_bytes(8, "big", signed=True))
        if s.value is None:
            h.update(b"\x00")
        else:
            h.update(b"\x01" + len(s.value).to_bytes(8, "big") + s.value)
        h.update(len(s.context.entries).to_bytes(4, "big"))
        for a, c, _ in s.context.entries:
            raw = a.encode()
            # Context timestamps are left out: they only steer pruning, and two replicas that
            # merged the same history in different orders may keep different ones.
            h.update(len(raw).to_bytes(2, "big") + raw + c.to_bytes(8, "big"))
    return h.digest()
