"""Invariant checkers, outside the system: they read the history and the disks, never the cores.

Owns: ``DiskLog`` (every write that reached any disk, with the dot each value was stored under),
``sibling_violations`` and the ``check_*`` functions; each returns a list of violations (empty
when the invariant holds). The exact rules are in ``docs/simulator.md``.
May import: stdlib, ``dynamokv.core.*``, ``dynamokv.sim.{history,disk,options}``.

Why a disk log: clients never see dots, but a write's dot is what decides whether a later write
superseded it. Every value the workload writes is unique, so the first sibling stored anywhere
with that value names the write's dot exactly; the checkers learn it from the disks without any
help from the code under test.

The table counter is checked from the history alone (``check_counter``): increments acknowledged
with distinct results, a final value between the acknowledged and the possible increments, and
no read or increment that saw less than an operation finished before it began.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dynamokv.core.ring import Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, VersionedObject
from dynamokv.sim.disk import SimDisk
from dynamokv.sim.history import History, Operation
from dynamokv.sim.options import SimOptions

VIOLATIONS_MAX = 50  # per checker: past this the run is broken enough


@dataclass(frozen=True, slots=True)
class _Stored:
    value: bytes | None
    context: VectorClock
    timestamp_ms: int
    node: str


def actor_node(actor: str) -> str:
    """The node an actor belongs to (actors are ``<node>.<incarnation>[~p|/<one-off>]``)."""
    return actor.split(".", 1)[0]


def is_log_actor(actor: str) -> bool:
    """The actor of writes applied from a partition log (``core.replog.groups``)."""
    return actor[:1] == "L" and actor[1:].isdigit()


def _key(key: bytes) -> str:
    return key.decode(errors="replace")


def _clock(clock: VectorClock | None) -> str:
    if clock is None:
        return "-"
    return "{" + ",".join(f"{a}:{c}" for a, c, _ in clock.entries) + "}"


class _Report:
    """Violations without repeats, in the order found, at most ``VIOLATIONS_MAX``."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._seen: set[str] = set()

    def add(self, text: str) -> None:
        if text not in self._seen and len(self.items) < VIOLATIONS_MAX:
            self._seen.add(text)
            self.items.append(text)


def sibling_violations(where: str, key: bytes, obj: VersionedObject) -> list[str]:
    """An object's own invariants: dots sorted and unique, no sibling obsoleted by another."""
    out: list[str] = []
    sibs = obj.siblings
    for a, b in itertools.pairwise(sibs):
        if not a.dot < b.dot:
            out.append(f"{where} {_key(key)}: siblings not sorted by unique dot ({a.dot}, {b.dot})")
    for s in sibs:
        for t in sibs:
            if t.dot != s.dot and s.obsoleted_by(t.context):
                out.append(f"{where} {_key(key)}: sibling {s.dot} is obsoleted by sibling "
                           f"{t.dot} (context {_clock(t.context)}) yet kept")
    return out


class DiskLog:
    """Watches every write that reaches a disk (``SimDisk`` observer)."""

    def __init__(self) -> None:
        # Nodes that lost unflushed writes to a power loss so far (the world fills it in), to
        # name the likely cause when a dot is issued twice.
        self.power_lost: set[str] = set()
        self._dots: dict[tuple[str, bytes, Dot], _Stored] = {}
        self._value_dot: dict[tuple[str, bytes, bytes], Dot] = {}
        self._applied: set[tuple[str, bytes, bytes | None, VectorClock]] = set()
        self._report = _Report()

    def observe(self, node: str, bucket: str, key: bytes, obj: VersionedObject) -> None:
        for text in sibling_violations(f"write on {node}:", key, obj):
            self._report.add(text)
        for s in obj.siblings:
            ident = (bucket, key, s.dot)
            stored = self._dots.get(ident)
            if s.value is not None:
                self._value_dot.setdefault((bucket, key, s.value), s.dot)
            self._applied.add((bucket, key, s.value, s.context))
            # Last-writer-wins buckets (tables, "~...") widen the winner's context as they resolve
            # (``resolve_lww``), so only value and stamp name a write there.
            lww = bucket.startswith("~")
            if stored is None:
                self._dots[ident] = _Stored(s.value, s.context, s.timestamp_ms, node)
            elif (stored.value, stored.timestamp_ms) != (s.value, s.timestamp_ms) or (
                    not lww and stored.context != s.context):
                issuer = actor_node(s.dot.actor)
                why = (f" ({issuer}, which issued it, lost unflushed writes to a power loss "
                       "before)" if issuer in self.power_lost else "")
                self._report.add(
                    f"dot {s.dot.actor}:{s.dot.counter} of {_key(key)} names two writes: "
                    f"{stored.value!r} ctx={_clock(stored.context)} "
                    f"t={stored.timestamp_ms} (first on {stored.node}) and {s.value!r} "
                    f"ctx={_clock(s.context)} t={s.timestamp_ms} (on {node}){why}")

    def dot_of(self, bucket: str, key: bytes, value: bytes) -> Dot | None:
        return self._value_dot.get((bucket, key, value))

    def applied(self, bucket: str, op: Operation) -> bool:
        """Did ``op``'s write reach some disk (a sibling with its value and context)?"""
        return (bucket, op.key, op.value, op.context) in self._applied

    def violations(self) -> list[str]:
        """Dot reuse and sibling invariants, seen on the writes as they happened."""
        return list(self._report.items)


def check_acknowledged_writes(history: History, final: Mapping[bytes, Operation],
                              log: DiskLog, bucket: str) -> list[str]:
    """No acknowledged write is lost (rules A and B of docs/simulator.md)."""
    report = _Report()
    by_key: dict[bytes, list[Operation]] = {}
    for op in history.writes():
        by_key.setdefault(op.key, []).append(op)
    for w in history.writes():
        last = final.get(w.key)
        if w.status != "ok" or last is None or w.reply_context is None:
            continue
        end_ctx = last.reply_context or VectorClock.empty()
        if not end_ctx.descends(w.reply_context):  # rule A
            report.add(f"lost write: {w.describe()} replied {_clock(w.reply_context)} but the "
                       f"final read's context {_clock(end_ctx)} does not descend it")
        if w.kind != "put" or w.value is None or w.value in last.values:
            continue
        dot = log.dot_of(bucket, w.key, w.value)  # rule B
        if dot is None:
            report.add(f"lost write: {w.describe()} was acknowledged but never reached a disk")
            continue
        superseded = any(
            o is not w and o.status in ("ok", "unknown")
            and o.context.contains(dot.actor, dot.counter) and log.applied(bucket, o)
            for o in by_key[w.key]
        )
        if not superseded:
            report.add(f"lost write: {w.describe()} (dot {dot.actor}:{dot.counter}) is not in "
                       f"the final read {sorted(last.values)} and no write that saw its dot "
                       "ever reached a disk")
    return report.items


def check_quorum_reads(history: History, options: SimOptions,
                       power_losses: Sequence[int] = (), membership: Sequence[int] = ()
                       ) -> list[str]:
    """With strict quorums (PR=R, PW=W) and R + W > N, a read begun after a write was
    acknowledged sees it (or a successor).

    The read's R replies and the write's W acknowledgements then all come from the key's N
    primaries, so they share a replica, which stored the coordinator's whole object before
    acknowledging; its context, and so the read's, descends the write's reply context. (With
    sloppy quorums a fallback may stand in for a primary, and Dynamo promises no such thing.)

    Two faults take the shared replica away, and the promise with it, so pairs they touch are
    not checked: a power loss (at ``power_losses``) that may have destroyed one of the write's
    copies before the OS flushed it (between the write's start and ``flush_ms`` after its
    acknowledgement) and came before the read ended; and any membership change (a join or a
    leave's commit, at ``membership``) before the read ended, since the new primaries hold
    nothing until ownership handoff brings it, and it comes in the background.
    """
    if options.r + options.w <= options.n or not options.strict_quorum:
        return []
    report = _Report()
    acked: dict[bytes, list[Operation]] = {}
    for op in history.ops:
        if op.is_write and op.status == "ok":
            acked.setdefault(op.key, []).append(op)
    first_change = min(membership, default=None)
    for g in history.ops:
        if g.kind not in ("get", "final-get") or g.status != "ok" or g.reply_context is None:
            continue
        if first_change is not None and first_change <= g.end_ms:
            continue
        for wr in acked.get(g.key, []):
            if wr.end_ms >= g.invoke_ms or wr.reply_context is None:
                continue
            if any(wr.invoke_ms <= t <= wr.end_ms + options.flush_ms and t <= g.end_ms
                   for t in power_losses):
                continue
            if not g.reply_context.descends(wr.reply_context):
                report.add(f"stale quorum read: {g.describe()} with context "
                           f"{_clock(g.reply_context)} began after {wr.describe()} replied "
                           f"{_clock(wr.reply_context)}")
    return report.items


def check_stored_siblings(disks: Iterable[SimDisk]) -> list[str]:
    """Every object on every disk: no sibling dominated by another, dots sorted and unique."""
    report = _Report()
    for disk in disks:
        for _, key, obj in disk.objects():
            for text in sibling_violations(f"stored on {disk.node_id}:", key, obj):
                report.add(text)
    return report.items


def check_convergence(ring: Ring, n: int, disks: Mapping[str, SimDisk],
                      final: Mapping[bytes, Operation], bucket: str) -> list[str]:
    """After the final reads, each key's N replicas hold one object, the one the read returned."""
    report = _Report()
    for key, read in final.items():
        replicas = ring.preference_list(ring.partition_for(bucket, key), n)
        objects = {node: disks[node].peek(bucket, key) for node in replicas}
        first = objects[replicas[0]]
        for node, obj in objects.items():
            if obj != first:
                report.add(f"diverged: {_key(key)} on {node} {_describe(obj)} but on "
                           f"{replicas[0]} {_describe(first)}")
        ctx = first.context() if first is not None else VectorClock.empty()
        values = tuple(first.values()) if first is not None else ()
        if (values, ctx) != (read.values, read.reply_context):
            report.add(f"final read of {_key(key)} returned {list(read.values)} "
                       f"{_clock(read.reply_context)} but the replicas hold {_describe(first)}")
    return report.items


def check_partitions(ring: Ring, n: int, disks: Mapping[str, SimDisk],
                     live: Iterable[str]) -> list[str]:
    """Replicas agree, read from the disks: for every partition, the N nodes of its preference
    list hold exactly the same objects, and no other live node holds any (handoff finished)."""
    report = _Report()
    live_nodes = [node for node in live if node in disks]
    for partition in range(ring.q):
        replicas = ring.preference_list(partition, n)
        held = {node: list(disks[node].store.fold_partition(partition)) for node in replicas}
        first = held[replicas[0]]
        for node in replicas[1:]:
            if held[node] != first:
                mine = {(b, k): o for b, k, o in first}
                theirs = {(b, k): o for b, k, o in held[node]}
                diff = sorted(k for k in mine.keys() | theirs.keys()
                              if mine.get(k) != theirs.get(k))
                b, k = diff[0]
                report.add(f"partition {partition}: {node} differs from {replicas[0]} on "
                           f"{len(diff)} keys, e.g. {b}/{_key(k)}: {_describe(theirs.get((b, k)))}"
                           f" vs {_describe(mine.get((b, k)))}")
        for node in live_nodes:
            if node not in replicas and not disks[node].store.partition_is_empty(partition):
                report.add(f"partition {partition}: {node} still holds objects but is no "
                           f"replica (replicas {', '.join(replicas)})")
    return report.items


def check_counter(history: History, final: Operation | None, log: DiskLog | None = None,
                  bucket: str = "") -> list[str]:
    """The table counter (``CasRequest`` increments and linearizable reads).

    - every acknowledged increment returned ``new == old + 1``, and no two returned the same
      ``new`` (each increment was applied to a different state);
    - the result is the operation's own: the version holding ``new`` was stamped by the
      sequencer the operation went through (the disk log names who stamped each value,
      ``log.dot_of``);
    - the final value read through the log leader is at least the number of acknowledged
      increments and at most that plus the increments whose outcome is unknown;
    - real-time order: an operation that began after another finished saw at least what that
      one left (a read saw no less; an increment started from no less).
    """
    report = _Report()
    ops = [o for o in history.ops if o.kind in ("incr", "cas-read", "final-cas-read")]
    for o in ops:
        if o.error.startswith("aborted"):
            report.add(f"counter: {o.describe()}: decide was given a value that is no number")
        if o.status == "ok" and (o.cas_old is None or o.cas_new is None):
            report.add(f"counter: {o.describe()} returned a value that is no number")
    done = [o for o in ops if o.status == "ok" and o.cas_old is not None
            and o.cas_new is not None]
    acked = [o for o in done if o.kind == "incr"]
    unknown = [o for o in ops if o.kind == "incr" and o.status == "unknown"]
    by_new: dict[int, Operation] = {}
    for o in acked:
        assert o.cas_old is not None and o.cas_new is not None
        if o.cas_new != o.cas_old + 1:
            report.add(f"counter: {o.describe()} is no increment")
        dot = log.dot_of(bucket, o.key, str(o.cas_new).encode()) if log is not None else None
        # Writes sequenced by a partition log are stamped by the log (actor ``L<partition>``),
        # not by the coordinating node: there the unique-result check below does this job.
        if dot is not None and not is_log_actor(dot.actor) and actor_node(dot.actor) != o.node:
            report.add(f"counter: {o.describe()} reported {o.cas_new}, which a proposal of "
                       f"{actor_node(dot.actor)} wrote ({dot.actor}:{dot.counter}): a result "
                       "that is not this operation's")
        other = by_new.get(o.cas_new)
        if other is not None:
            report.add(f"counter: two acknowledged increments returned {o.cas_new}: "
                       f"{other.describe()} and {o.describe()}")
        by_new[o.cas_new] = o
    if final is not None and final.cas_old is not None:
        value = final.cas_old
        if value < len(acked):
            report.add(f"counter: final value {value} but {len(acked)} increments were "
                       "acknowledged (an acknowledged increment was lost)")
        if value > len(acked) + len(unknown):
            report.add(f"counter: final value {value} but only {len(acked)} acknowledged and "
                       f"{len(unknown)} unknown increments (an increment applied twice, or one "
                       "that failed took effect)")
    # Real time: sweep operations by start; ``seen`` is the most any operation that had
    # finished by then left behind.
    by_end = sorted(done, key=lambda o: o.end_ms)
    ends = [o.end_ms for o in by_end]
    best: list[tuple[int, Operation | None]] = []
    top: tuple[int, Operation | None] = (-1, None)
    for o in by_end:
        assert o.cas_new is not None
        if o.cas_new > top[0]:
            top = (o.cas_new, o)
        best.append(top)
    for o in done:
        assert o.cas_old is not None
        i = bisect.bisect_left(ends, o.invoke_ms)  # operations that ended strictly before
        if i:
            seen, before = best[i - 1]
            if o.cas_old < seen and before is not None:
                report.add(f"counter went backwards: {o.describe()} began after "
                           f"{before.describe()} finished")
    return report.items


def _describe(obj: VersionedObject | None) -> str:
    if obj is None:
        return "nothing"
    sibs = ", ".join(f"{s.dot.actor}:{s.dot.counter}={s.value!r}" for s in obj.siblings)
    return f"[{sibs}] {_clock(obj.context())}"
