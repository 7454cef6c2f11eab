"""Every replication group of one node: routing, applying, membership, snapshots, the feed.

Owns: ``PartitionLogs`` — the node's ``RaftGroup`` per ring partition it replicates (created at
cluster founding, on a leader's first message, or loaded at restart), applying committed
entries to the store in log order, the applied-change feed, leadership balance and membership
changes that follow the ring, snapshot transfers, and ``Change``; and the seams its consumers
hook into (``feed_listeners``, ``applied_hooks``, ``compaction_holds`` that keep compaction and
snapshot bases below what a consumer still needs, ``snapshot_hooks``, ``write_gates`` for
back-pressure).
May import: ``dynamokv.core.*``, ``dynamokv.errors``.

Client-facing table requests (waiting for commit, forwarding to the leader) live in
``replog.proposals``; this module is the replication machinery underneath.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dynamokv.core.effects import Effect, Log, Send
from dynamokv.core.messages import (
    LogEntry,
    Message,
    RaftAppend,
    RaftAppendReply,
    RaftSnapshotAck,
    RaftSnapshotChunk,
    RaftTimeoutNow,
    RaftVote,
    RaftVoteReply,
)
from dynamokv.core.ports import ObjectStore
from dynamokv.core.replog.lease import Timings
from dynamokv.core.replog.log import CONFIG, PUT, HardState, LogStore, RaftLog, is_put
from dynamokv.core.replog.membership import next_step
from dynamokv.core.replog.raft import RaftGroup
from dynamokv.core.replog.snapshot import SnapshotSender, is_log_managed
from dynamokv.core.ring import Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject, resolve_lww
from dynamokv.errors import DynamoKVError

RAFT_MESSAGES = (RaftAppend, RaftAppendReply, RaftVote, RaftVoteReply, RaftTimeoutNow)
REBALANCE_EVERY_MS = 250
TRANSFER_PAUSE_MS = 3_000  # per group, between leadership transfers
ORPHAN_AFTER_MS = 30_000  # a group we are no longer part of is dropped after this silence
FEED_KEPT = 10_000
SNAPSHOT_RESEND_MS = 2_000


class LogNode(Protocol):
    node_id: str
    ring: Ring | None

    def up_nodes(self) -> frozenset[str]: ...


class Storage(ObjectStore, LogStore, Protocol):
    pass


@dataclass(frozen=True, slots=True)
class Change:
    """One applied write, in its partition's log order: the seam for GSI upkeep, Streams,
    TTL and item counts (old and new images; ``None``: absent)."""

    partition: int
    index: int
    term: int
    bucket: str
    key: bytes
    old: bytes | None
    new: bytes | None
    kind: int = PUT  # with its flags (``log.STREAMED``, ``log.SERVICE``)


def stored_object(partition: int, entry: LogEntry) -> VersionedObject:
    """How an applied put is kept: one sibling whose dot names the log position, so the same
    entry applied twice (a replay after a restart) is the same object."""
    assert entry.value is not None
    return VersionedObject((Sibling(entry.value, Dot(f"L{partition}", entry.index),
                                    VectorClock.empty(), 0),))


def live_value(obj: VersionedObject | None) -> bytes | None:
    if obj is None:
        return None
    values = resolve_lww(obj).values()
    return values[0] if values else None


def _is_tombstone(hard: HardState | None, entries: list[LogEntry]) -> bool:
    """What a dropped group leaves behind: a term and vote, no log, no configuration."""
    return (hard is not None and not entries and hard.base_index == 0
            and not hard.base_members)


class PartitionLogs:
    def __init__(self, node: LogNode, store: Storage, n: int, timings: Timings,
                 rng: random.Random, *, log_sync: bool = False) -> None:
        self.node = node
        self.me = node.node_id
        self.store = store
        self.n = n
        self.timings = timings
        self.rng = rng
        self.log_sync = log_sync
        self.groups: dict[int, RaftGroup] = {}
        self.feed: deque[Change] = deque(maxlen=FEED_KEPT)
        self.feed_listeners: list[Callable[[Change], None]] = []
        self.applied_hooks: list[Callable[[int, LogEntry], list[Effect]]] = []
        # Consumers that must see every entry from some index on (the index outbox): each says
        # how far a compaction or snapshot base of a group may go (None: no limit).
        self.compaction_holds: list[Callable[[int], int | None]] = []
        self.snapshot_hooks: list[Callable[[int, int], None]] = []  # (group, base) installed
        # Refusals of new writes at the leader (back-pressure): (group, kind) -> error or None.
        self.write_gates: list[Callable[[int, int], DynamoKVError | None]] = []
        self.snapshots: dict[tuple[int, str], SnapshotSender] = {}
        self._snapshot_ids = rng.randrange(1 << 30)
        self._tombstones: dict[int, HardState] = {}  # dropped groups: their term and vote
        self._receiving: dict[int, int] = {}  # group -> snapshot id being received
        self._received_through: dict[int, tuple[str, bytes] | None] = {}  # its last key
        self._rebalance_at = 0
        self._changes = [0]  # bumped by any change to a group's next deadline (see RaftGroup)
        self._deadline_seen: tuple[int, int | None] = (-1, None)
        self._transferred_ms: dict[int, int] = {}
        self._silent_since: dict[int, int] = {}
        self.apply_failures = 0
        self.changes_applied = 0
        self.snapshots_started = 0
        self.snapshots_installed = 0

    # ---- lifecycle ---------------------------------------------------------------------------
    def load(self, now_ms: int) -> None:
        """After a restart: every group with persisted state, as a follower."""
        for group in self.store.log_groups():
            hard, entries = self.store.load_log(group)
            if _is_tombstone(hard, entries):
                assert hard is not None
                self._tombstones[group] = hard
                continue
            log = RaftLog(group, self._durable(), hard, entries)
            self.groups[group] = RaftGroup(group, self.me, log, self.timings, self.rng, now_ms,
                                           self._changes)

    def bootstrap(self, q: int, now_ms: int) -> None:
        """A new cluster: this node is the only voter of every partition's group."""
        for group in range(q):
            if group in self.groups:
                continue
            log = RaftLog(group, self._durable())
            log.set_hard(base_members=(self.me,))
            raft = RaftGroup(group, self.me, log, self.timings, self.rng, now_ms,
                             self._changes)
            raft.election_due_ms = now_ms  # nobody else can hold a lease: campaign at once
            raft.deadline_changed()
            raft.heard_leader_ms = now_ms - self.timings.election_min_ms
            self.groups[group] = raft
            self._changes[0] += 1

    def _durable(self) -> LogStore:
        """Log writes are as durable as the engine makes every write: with ``--sync fsync``
        each is on disk before it returns, which is what Raft needs to survive power loss
        (the simulator models log writes so). ``log_sync`` adds the one ordering the engine
        cannot know: applied items reach the disk before a compaction or snapshot base that
        says they were applied."""
        return self.store

    def _group_for_leader(self, group: int, now_ms: int) -> RaftGroup:
        """The group a leader talks to us about; created empty if we have none (a new
        member learns everything, configuration included, from the leader)."""
        raft = self.groups.get(group)
        if raft is None:
            tombstone = self._tombstones.pop(group, None)
            log = RaftLog(group, self._durable(), tombstone)
            raft = RaftGroup(group, self.me, log, self.timings, self.rng, now_ms,
                             self._changes)
            raft.rejoined = tombstone is not None
            self.groups[group] = raft
            self._changes[0] += 1
        return raft

    # ---- messages ----------------------------------------------------------------------------
    def on_message(self, src: str, msg: Message, now_ms: int) -> list[Effect]:
        ring = self.node.ring
        if ring is None or not 0 <= msg.group < ring.q:
            return []
        if isinstance(msg, RaftSnapshotChunk):
            return self._on_snapshot_chunk(src, msg, now_ms)
        if isinstance(msg, RaftSnapshotAck):
            return self._on_snapshot_ack(src, msg, now_ms)
        if isinstance(msg, RaftAppend):
            raft = self._group_for_leader(msg.group, now_ms)
        else:
            found = self.groups.get(msg.group)
            if found is None:
                if isinstance(msg, RaftVote):
                    return [Send(src, RaftVoteReply(msg.group, 0, False, msg.pre_vote))]
                return []
            raft = found
        try:
            raft.on_message(src, msg, now_ms)
        except DynamoKVError as exc:  # the log could not be persisted: act on nothing
            raft.out.clear()
            return [Log("error", "replication log write failed",
                        {"group": msg.group, "error": f"{exc.code}: {exc}"})]
        return self._after(raft, now_ms)

    def _after(self, raft: RaftGroup, now_ms: int) -> list[Effect]:
        """Drain a group's messages, then apply what it committed."""
        effects: list[Effect] = [Send(node, msg) for node, msg in raft.out]
        raft.out.clear()
        effects.extend(self._apply(raft))
        for node in sorted(raft.snapshot_wanted):
            if (raft.group, node) not in self.snapshots:
                effects.extend(self._start_snapshot(raft, node, now_ms))
        return effects

    # ---- applying ----------------------------------------------------------------------------
    def _apply(self, raft: RaftGroup) -> list[Effect]:
        effects: list[Effect] = []
        for entry in raft.pending():
            if is_put(entry.kind):
                try:
                    self._apply_put(raft.group, entry)
                except DynamoKVError as exc:
                    self.apply_failures += 1
                    effects.append(Log("warning", "applying a log entry failed; retrying",
                                       {"group": raft.group, "index": entry.index,
                                        "error": f"{exc.code}: {exc}"}))
                    break
            raft.applied = entry.index
            for hook in self.applied_hooks:
                effects.extend(hook(raft.group, entry))
        self._maybe_compact(raft)
        return effects

    def _apply_put(self, group: int, entry: LogEntry) -> None:
        old = live_value(self.store.get(entry.bucket, entry.key))
        if entry.value is None:
            self.store.delete(entry.bucket, entry.key)
        else:
            self.store.put(entry.bucket, entry.key, stored_object(group, entry))
        self.changes_applied += 1
        change = Change(group, entry.index, entry.term, entry.bucket, entry.key, old,
                        entry.value, entry.kind)
        self.feed.append(change)
        for listener in self.feed_listeners:
            listener(change)

    def _maybe_compact(self, raft: RaftGroup) -> None:
        t = self.timings
        if len(raft.log.entries) <= t.log_entries_max:
            return
        through = self._held(raft, raft.applied - t.log_entries_kept)
        for (group, _), sender in self.snapshots.items():
            if group == raft.group:
                through = min(through, sender.base_index)
        if through > raft.log.base_index:
            if self.log_sync:
                self.store.sync()  # what the base claims applied must be on disk first
            raft.log.compact(through)

    def _held(self, raft: RaftGroup, through: int) -> int:
        """``through``, lowered to what the compaction holds allow (never below the base)."""
        for hold in self.compaction_holds:
            limit = hold(raft.group)
            if limit is not None:
                through = max(min(through, limit), raft.log.base_index)
        return through

    def refuse_write(self, group: int, kind: int) -> DynamoKVError | None:
        """Why a new write of ``kind`` to ``group`` must be refused now (None: it may go)."""
        for gate in self.write_gates:
            refusal = gate(group, kind)
            if refusal is not None:
                return refusal
        return None

    # ---- time --------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        changes, deadline = self._deadline_seen
        if changes == self._changes[0]:
            return deadline
        times = [g.next_deadline() for g in self.groups.values()]
        if self.groups:
            times.append(self._rebalance_at)
        deadline = min(times) if times else None
        self._deadline_seen = (self._changes[0], deadline)
        return deadline

    def on_timer(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for group in sorted(self.groups):
            raft = self.groups[group]
            if now_ms >= raft.next_deadline() or raft.applied < raft.commit:
                try:
                    raft.tick(now_ms)
                except DynamoKVError as exc:
                    raft.out.clear()
                    effects.append(Log("error", "replication log write failed",
                                       {"group": group, "error": f"{exc.code}: {exc}"}))
                    continue
                effects.extend(self._after(raft, now_ms))
        if now_ms >= self._rebalance_at:
            self._rebalance_at = now_ms + REBALANCE_EVERY_MS
            self._changes[0] += 1
            effects.extend(self._rebalance(now_ms))
            effects.extend(self._resend_snapshots(now_ms))
        return effects

    # ---- membership follows the ring -------------------------------------------------------
    def target(self, group: int) -> tuple[str, ...]:
        ring = self.node.ring
        if ring is None:
            return ()
        return ring.preference_list(group, self.n)

    def _rebalance(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        up = self.node.up_nodes()
        for group in sorted(self.groups):
            raft = self.groups[group]
            if raft.is_leader():
                effects.extend(self._lead_membership(raft, up, now_ms))
            else:
                effects.extend(self._maybe_drop(raft, now_ms))
        return effects

    def _lead_membership(self, raft: RaftGroup, up: frozenset[str], now_ms: int
                         ) -> list[Effect]:
        target = self.target(raft.group)
        if raft.learners - set(target):
            # The ring moved on: stop catching up a node it no longer places here, so that
            # node stops hearing us and drops its copy (seed 1031, --faults all).
            raft.set_learners(raft.learners & set(target), now_ms)
        if not raft.config_change_allowed():
            return []
        caught_up = frozenset(n for n, p in raft.peers.items()
                              if n in raft.learners and not p.snapshot
                              and p.match >= raft.commit)
        step = next_step(self.me, raft.members, target, up, caught_up)
        if step.action == "learn":
            raft.set_learners({step.node}, now_ms)
        elif step.action == "add":
            raft.propose(CONFIG, now_ms, members=(*raft.members, step.node))
            raft.set_learners(set(), now_ms)
        elif step.action == "remove":
            raft.propose(CONFIG, now_ms, members=tuple(m for m in raft.members
                                                        if m != step.node))
        elif step.action == "transfer":
            last = self._transferred_ms.get(raft.group, -TRANSFER_PAUSE_MS)
            if now_ms - last >= TRANSFER_PAUSE_MS and raft.transfer_to(step.node, now_ms):
                self._transferred_ms[raft.group] = now_ms
        return self._after(raft, now_ms)

    def _maybe_drop(self, raft: RaftGroup, now_ms: int) -> list[Effect]:
        """Forget a group (log and data) we are no longer part of, once that is settled."""
        if not self._may_drop(raft, now_ms):
            return []
        self._silent_since.pop(raft.group, None)
        del self.groups[raft.group]
        self._changes[0] += 1
        self._clear_data(raft.group)
        self.store.drop_log(raft.group)
        # Term and vote outlive the log: were we added again, we must not vote twice in a
        # term we already voted in.
        tombstone = HardState(term=raft.term, vote=raft.log.hard.vote)
        self.store.save_hard_state(raft.group, tombstone)
        self._tombstones[raft.group] = tombstone
        return [Log("info", "left replication group", {"group": raft.group})]

    def _may_drop(self, raft: RaftGroup, now_ms: int) -> bool:
        """Our removal committed, or a voter says its committed configuration leaves us out
        (we missed the entry), and the ring no longer lists us; or the ring lists us under
        neither its owners nor its previous ones, our configuration neither, and no leader
        spoke to us for a long while. A removal counts even while the previous owners still
        list us: a leaving node is among them until its leave completes, which waits for it
        to hold no group (seed 14597 waited forever)."""
        ring = self.node.ring
        if ring is None:
            return False
        group = raft.group
        if self.me in self.target(group):
            self._silent_since.pop(group, None)
            return False
        if raft.removed() or raft.removed_by:
            return True
        if self.me in ring.previous_preference_list(group, self.n):
            self._silent_since.pop(group, None)
            return False
        if self.me in raft.members and any(ring.member(m) is not None
                                           for m in raft.members if m != self.me):
            return False
        # Not a member; or every other member of our configuration has left the cluster
        # (a leave completes only once the node is no voter of any group, so this
        # configuration was superseded without us; seed 3080): after a long silence, go.
        since = self._silent_since.setdefault(group, now_ms)
        return now_ms - max(since, raft.heard_leader_ms) >= ORPHAN_AFTER_MS

    def _clear_data(self, group: int) -> None:
        after: tuple[str, bytes] | None = None
        while True:
            rows = self.store.scan_partition(group, after, 512)
            if not rows:
                return
            for bucket, key, _ in rows:
                if is_log_managed(bucket):
                    self.store.delete(bucket, key)
            after = (rows[-1][0], rows[-1][1])

    # ---- snapshots ---------------------------------------------------------------------------
    def _start_snapshot(self, raft: RaftGroup, node: str, now_ms: int) -> list[Effect]:
        # Held like compaction: the receiver replays the entries after the base, so it keeps
        # an outbox record of every entry not yet indexed (whole images: replay is safe).
        base = self._held(raft, raft.applied)
        base_term = raft.log.term_at(base)
        if base_term is None:
            return []
        self._snapshot_ids += 1
        sender = SnapshotSender(raft.group, node, self._snapshot_ids, base, base_term,
                                raft.log.members_at(base))
        self.snapshots[(raft.group, node)] = sender
        self.snapshots_started += 1
        return [Send(node, sender.next_chunk(self.store, raft.term, now_ms)),
                Log("info", "sending a snapshot", {"group": raft.group, "to": node,
                                                   "base_index": base})]

    def _on_snapshot_ack(self, src: str, msg: RaftSnapshotAck, now_ms: int) -> list[Effect]:
        sender = self.snapshots.get((msg.group, src))
        raft = self.groups.get(msg.group)
        if sender is None or sender.snapshot_id != msg.snapshot_id:
            return []
        if raft is None or not raft.is_leader() or msg.term != raft.term or msg.error:
            del self.snapshots[(msg.group, src)]
            if raft is not None:
                raft.snapshot_wanted.discard(src)
                peer = raft.peers.get(src)
                if peer is not None:
                    peer.snapshot = False
                    raft.deadline_changed()
            return []
        if msg.done:
            del self.snapshots[(msg.group, src)]
            raft.snapshot_sent(src, sender.base_index, now_ms)
            return self._after(raft, now_ms)
        if src in raft.peers:
            raft.peers[src].heard_ms = now_ms
        return [Send(src, sender.next_chunk(self.store, raft.term, now_ms))]

    def _resend_snapshots(self, now_ms: int) -> list[Effect]:
        """A chunk or its ack was lost: start that transfer over."""
        effects: list[Effect] = []
        for key, sender in list(self.snapshots.items()):
            if now_ms - sender.sent_ms < SNAPSHOT_RESEND_MS:
                continue
            del self.snapshots[key]
            raft = self.groups.get(key[0])
            if raft is not None and raft.is_leader() and key[1] in raft.peers:
                effects.extend(self._start_snapshot(raft, key[1], now_ms))
        return effects

    def _on_snapshot_chunk(self, src: str, msg: RaftSnapshotChunk, now_ms: int
                           ) -> list[Effect]:
        raft = self._group_for_leader(msg.group, now_ms)
        if msg.term < raft.term:
            return [Send(src, RaftSnapshotAck(msg.group, raft.term, msg.snapshot_id, False,
                                              "stale term"))]
        raft.heard_from_leader(src, msg.term, now_ms)
        if msg.first and not raft.snapshot_needed(msg.base_index):
            # We committed that far already (a reply of ours was late): go on from the log.
            return [Send(src, RaftSnapshotAck(msg.group, raft.term, msg.snapshot_id, True))]
        try:
            if msg.first:
                self._receiving[msg.group] = msg.snapshot_id
                self._received_through[msg.group] = None
            if self._receiving.get(msg.group) != msg.snapshot_id:
                raise ValueError("a chunk of a snapshot that was not started")
            self._replace_range(msg)
            if msg.done:
                if self.log_sync:
                    self.store.sync()  # the snapshot's items before the base that names them
                del self._receiving[msg.group]
                self._received_through.pop(msg.group, None)
                self.snapshots_installed += 1
                raft.install_snapshot(msg.base_index, msg.base_term,
                                      tuple(m.decode() for m in msg.members))
                for hook in self.snapshot_hooks:
                    hook(msg.group, msg.base_index)
        except (DynamoKVError, ValueError) as exc:
            return [Send(src, RaftSnapshotAck(msg.group, raft.term, msg.snapshot_id, False,
                                              str(exc)))]
        effects: list[Effect] = [Send(src, RaftSnapshotAck(msg.group, raft.term,
                                                           msg.snapshot_id, msg.done))]
        effects.extend(self._after(raft, now_ms))
        return effects

    def _replace_range(self, msg: RaftSnapshotChunk) -> None:
        """Make our copy of the key range this chunk covers equal to the chunk. Chunks come in
        key order, so the range runs from the previous chunk's last key (exclusive) to this
        one's last key, or to the end on the last chunk. Nothing is cleared up front: a
        transfer cut short leaves every key at an image at least as new as before, which the
        log then brings to its committed state (images are idempotent)."""
        for item in msg.items:
            self.store.put(item.bucket, item.key, item.obj)
        end = (msg.items[-1].bucket, msg.items[-1].key) if msg.items else None
        if msg.done or end is not None:
            self._delete_missing(msg.group, self._received_through.get(msg.group),
                                 None if msg.done else end,
                                 {(item.bucket, item.key) for item in msg.items})
        if end is not None:
            self._received_through[msg.group] = end

    def _delete_missing(self, group: int, after: tuple[str, bytes] | None,
                        through: tuple[str, bytes] | None, keep: set[tuple[str, bytes]]
                        ) -> None:
        """Delete our log-managed keys after ``after`` up to ``through`` (which we hold; the
        store's key order decides, ``None``: to the end) that are not in ``keep``."""
        cursor = after
        while True:
            rows = self.store.scan_partition(group, cursor, 512)
            for bucket, key, _ in rows:
                if (bucket, key) == through:
                    return
                if is_log_managed(bucket) and (bucket, key) not in keep:
                    self.store.delete(bucket, key)
            if len(rows) < 512:
                return
            cursor = (rows[-1][0], rows[-1][1])

    # ---- questions ---------------------------------------------------------------------------
    def holds_groups(self) -> bool:
        return any(self.me in g.members for g in self.groups.values())

    def status(self, now_ms: int) -> dict[str, object]:
        leading = sorted(g for g, r in self.groups.items() if r.is_leader())
        return {
            "groups": len(self.groups),
            "leading": len(leading),
            "leased": sum(1 for g in leading if self.groups[g].can_read(now_ms)),
            "snapshots_sending": len(self.snapshots),
            "snapshots_started": self.snapshots_started,
            "snapshots_installed": self.snapshots_installed,
            "changes_applied": self.changes_applied,
            "apply_failures": self.apply_failures,
        }
