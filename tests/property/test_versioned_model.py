"""Model-based test of ``dynamokv.core.versioned``: three replicas, lossy replication, LWW.

A hypothesis state machine drives clients that read from any replica and write, with the
context they read or with none, through any coordinating replica (``new_sibling`` then
``apply_write``); replication and anti-entropy are pushes or pairwise ``sync`` between arbitrary
replicas, so any subset may miss any write for a while. ``resolve_lww`` may run on any replica.

The model keeps the *true* causality next to the objects: for every write, the dots its writer
actually saw (the siblings of the object it read), plus, for an LWW winner, every sibling it beat.
After every step we check the object invariants, the join laws of ``sync`` on the states reached,
convergence after a full anti-entropy round, and that no write is lost: each one is a sibling of
the fully synced state or truly superseded by a write that is.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import (
    Dot,
    Sibling,
    VersionedObject,
    apply_write,
    is_descendant,
    new_sibling,
    resolve_lww,
    sync,
)

REPLICAS = ["a.1", "b.1", "c.1"]
CLIENTS = [0, 1, 2]
EMPTY = VersionedObject(())

replica_names = st.sampled_from(REPLICAS)
clients = st.sampled_from(CLIENTS)


def as_obj(obj: VersionedObject | None) -> VersionedObject:
    return obj if obj is not None else EMPTY


def fold(objs: list[VersionedObject | None]) -> VersionedObject:
    """What full anti-entropy would produce: the join of every replica's object."""
    out = EMPTY
    for o in objs:
        out = sync(out, o)
    return out


def check_well_formed(obj: VersionedObject) -> None:
    """The ``VersionedObject`` invariants: sorted unique dots, nothing obsoleted inside."""
    dots = [s.dot for s in obj.siblings]
    assert dots == sorted(dots), obj
    assert len(set(dots)) == len(dots), obj
    for s, t in itertools.permutations(obj.siblings, 2):
        assert not s.obsoleted_by(t.context), f"{s.dot} obsoleted by {t.dot} in {obj}"


def semantic(obj: VersionedObject) -> tuple[object, ...]:
    """What a reader can observe: the siblings' writes and the context handed out."""
    return (tuple((s.dot, s.value, s.timestamp_ms) for s in obj.siblings), obj.context())


def check_sync_laws(objs: list[VersionedObject], exact_assoc: bool) -> None:
    """Join laws of ``sync``; associativity only up to ``semantic`` once LWW has run (below)."""
    for a in objs:
        assert sync(a, a) == a
        assert sync(a, EMPTY) == a and sync(EMPTY, a) == a
        assert sync(a, None) == a and sync(None, a) == a
    for a, b in itertools.combinations(objs, 2):
        ab = sync(a, b)
        assert ab == sync(b, a), "sync not commutative"
        assert sync(ab, a) == ab and sync(ab, b) == ab, "sync not idempotent"
        assert is_descendant(ab, a) and is_descendant(ab, b)
        check_well_formed(ab)
    for a, b, c in itertools.permutations(objs, 3):
        left, right = sync(sync(a, b), c), sync(a, sync(b, c))
        # resolve_lww widens the winner's context in place, so which later siblings absorb that
        # knowledge depends on merge order; the siblings and the object context do not.
        if exact_assoc:
            assert left == right, "sync not associative"
        assert semantic(left) == semantic(right), "sync not associative (observably)"
        # One more exchange settles the contexts.
        assert sync(left, right) == sync(right, left)
        assert semantic(sync(left, right)) == semantic(left)


class VersionedModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.replicas: dict[str, VersionedObject | None] = dict.fromkeys(REPLICAS)
        self.history: dict[str, list[VersionedObject]] = {r: [] for r in REPLICAS}
        # What each client last read: the context handed out and the siblings it saw.
        self.read_ctx: dict[int, VectorClock] = dict.fromkeys(CLIENTS, VectorClock.empty())
        self.read_dots: dict[int, frozenset[Dot]] = dict.fromkeys(CLIENTS, frozenset())
        self.writes: dict[Dot, Sibling] = {}
        # True supersession: dot -> dots it knowingly replaced (read, or beat under LWW).
        self.supersedes: dict[Dot, set[Dot]] = {}
        # Widest context ever seen for each dot (LWW resolution widens a winner's context).
        self.known_ctx: dict[Dot, VectorClock] = {}
        self.now = 0
        self.lww_ran = False

    # --- helpers --------------------------------------------------------------------------------

    def _store(self, replica: str, obj: VersionedObject) -> None:
        check_well_formed(obj)
        self.replicas[replica] = obj
        self.history[replica].append(obj)
        for s in obj.siblings:
            self.known_ctx[s.dot] = self.known_ctx[s.dot].merge(s.context)

    def _objs(self) -> list[VersionedObject]:
        return [as_obj(self.replicas[r]) for r in REPLICAS]

    # --- rules ----------------------------------------------------------------------------------

    @rule(client=clients, replica=replica_names)
    def read(self, client: int, replica: str) -> None:
        obj = as_obj(self.replicas[replica])
        self.read_ctx[client] = obj.context()
        self.read_dots[client] = obj.dots()

    @rule(
        client=clients,
        coordinator=replica_names,
        with_context=st.booleans(),
        delete=st.booleans(),
        skew=st.integers(-3, 3),
    )
    def write(
        self, client: int, coordinator: str, with_context: bool, delete: bool, skew: int
    ) -> None:
        # Coordinators' wall clocks are skewed, so LWW order need not follow causality.
        self.now += 1
        ts = max(0, self.now * 4 + skew)
        ctx = self.read_ctx[client] if with_context else VectorClock.empty()
        seen = self.read_dots[client] if with_context else frozenset()
        local = self.replicas[coordinator]
        value = None if delete else f"v{len(self.writes)}".encode()
        sib = new_sibling(local, coordinator, value, ctx, ts)
        assert sib.dot not in self.writes, f"dot {sib.dot} re-issued"
        assert sib.dot.actor == coordinator and sib.context == ctx
        assert not ctx.contains(sib.dot.actor, sib.dot.counter)
        self.writes[sib.dot] = sib
        self.supersedes[sib.dot] = set(seen)
        self.known_ctx[sib.dot] = ctx
        after = apply_write(local, sib)
        # A fresh write survives at its coordinator (its context may widen, see below).
        assert sib.dot in after.dots()
        for s in as_obj(local).siblings:
            # What the writer read goes; everything else stays.
            if s.dot not in after.dots():
                assert ctx.contains(s.dot.actor, s.dot.counter)
        self._store(coordinator, after)
        # The put answers with the coordinator's object (read-your-writes). Note ``sib.clock()``
        # alone would not do as a context: ``{a: n}`` also covers ``a``'s earlier dots, which
        # this writer may not have seen.
        self.read(client, coordinator)

    @rule(src=replica_names, dst=replica_names)
    def push(self, src: str, dst: str) -> None:
        """One-way replication, hinted handoff or read repair: ``dst`` learns ``src``'s object."""
        if self.replicas[src] is None:
            return
        self._store(dst, sync(self.replicas[dst], self.replicas[src]))

    @rule(x=replica_names, y=replica_names)
    def exchange(self, x: str, y: str) -> None:
        """One anti-entropy exchange: both sides end with the join."""
        joined = sync(self.replicas[x], self.replicas[y])
        self._store(x, joined)
        self._store(y, joined)

    @rule(replica=replica_names)
    def lww(self, replica: str) -> None:
        obj = self.replicas[replica]
        if obj is None or not obj.siblings:
            return
        resolved = resolve_lww(obj)
        assert len(resolved.siblings) == 1
        (winner,) = resolved.siblings
        best = max(obj.siblings, key=lambda s: (s.timestamp_ms, s.dot))
        assert (winner.dot, winner.value, winner.timestamp_ms) == (
            best.dot,
            best.value,
            best.timestamp_ms,
        )
        assert sync(resolved, obj) == resolved, "the winner must obsolete every loser"
        self.supersedes[winner.dot] |= obj.dots() - {winner.dot}
        self.lww_ran = True
        self._store(replica, resolved)

    @precondition(lambda self: bool(self.writes))
    @rule(order=st.permutations(list(itertools.combinations(REPLICAS, 2))))
    def full_anti_entropy(self, order: list[tuple[str, str]]) -> None:
        expected = fold(list(self.replicas.values()))
        for x, y in order:
            self.exchange(x, y)
        objs = self._objs()
        assert objs[0] == objs[1] == objs[2], "replicas diverged after full anti-entropy"
        assert semantic(objs[0]) == semantic(expected)
        if not self.lww_ran:
            assert objs[0] == expected

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def objects_well_formed(self) -> None:
        for obj in self._objs():
            check_well_formed(obj)

    @invariant()
    def sync_is_a_join_on_reached_states(self) -> None:
        check_sync_laws(self._objs(), exact_assoc=not self.lww_ran)

    @invariant()
    def contexts_untouched_without_lww(self) -> None:
        # Without LWW every context is causally closed, so a dot keeps its writer's context on
        # every replica (the simulator's disk checker relies on one dot naming one write).
        if not self.lww_ran:
            for obj in self._objs():
                for s in obj.siblings:
                    assert s.context == self.writes[s.dot].context

    @invariant()
    def replicas_only_grow(self) -> None:
        # A replica's newest object descends each of its earlier ones (nothing comes back).
        for r in REPLICAS:
            hist = self.history[r]
            if len(hist) >= 2:
                assert is_descendant(hist[-1], hist[-2])

    @invariant()
    def no_lost_write(self) -> None:
        final = fold(list(self.replicas.values()))
        present = final.dots()
        # Strong form: every write is present or truly superseded by a present write.
        covered: set[Dot] = set()
        frontier = list(present)
        while frontier:
            d = frontier.pop()
            for e in self.supersedes.get(d, ()):
                if e not in covered:
                    covered.add(e)
                    frontier.append(e)
        lost = set(self.writes) - present - covered
        assert not lost, f"writes lost: {sorted(lost)} final={final}"
        # The brief's form: obsoleted (dot in the context) by a transitively present write.
        obsoleted: set[Dot] = set()
        frontier = list(present)
        while frontier:
            d = frontier.pop()
            ctx = self.known_ctx[d]
            for w in self.writes:
                if w not in obsoleted and w != d and ctx.contains(w.actor, w.counter):
                    obsoleted.add(w)
                    frontier.append(w)
        assert set(self.writes) <= present | obsoleted
        # Every present sibling is a write that was really accepted, unaltered.
        for s in final.siblings:
            written = self.writes[s.dot]
            assert (s.value, s.timestamp_ms) == (written.value, written.timestamp_ms)
            assert s.context.descends(written.context)

    @invariant()
    def lww_everywhere_converges(self) -> None:
        objs = self._objs()
        # Resolve on every replica independently, then full anti-entropy, then resolve again.
        resolved = [resolve_lww(o) for o in objs]
        joined = fold(list(resolved))
        finals = [resolve_lww(sync(r, joined)) for r in resolved]
        assert finals[0] == finals[1] == finals[2]
        assert len(finals[0].siblings) == (1 if self.writes else 0)
        # Stale replicas cannot bring a loser back.
        for old in objs:
            assert sync(finals[0], old) == finals[0]


VersionedModel.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVersionedModel = VersionedModel.TestCase
