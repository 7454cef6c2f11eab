"""One replication group's consensus: Raft election, log replication, commitment and the lease.

Owns: ``RaftGroup`` (one partition's Raft state machine on one node), ``Role``, ``Peer``.
May import: ``dynamokv.core.messages``, ``dynamokv.core.replog.log``,
``dynamokv.core.replog.lease``.

Sans-IO: every method takes ``now_ms`` (monotonic) and queues messages in ``out`` (drained by
``PartitionLogs`` after each call); persistence goes through the group's ``RaftLog`` before any
message that depends on it is queued.

Beyond textbook Raft (Ongaro's thesis, sections 4.2.3, 6.4 and 9.6):

- pre-vote: a node that stopped hearing its leader first asks whether it could win, without
  raising its term, so a node cut off for a while cannot depose a healthy leader on return;
- leader stickiness: a node that heard a leader within ``election_min_ms`` (or started less
  than that ago) refuses votes, which is also what makes the lease safe (``lease.py``);
- check-quorum: a leader that has not heard a majority for ``election_max_ms`` steps down;
- leadership transfer (``RaftTimeoutNow``): the leader gives up its lease first, then asks a
  caught-up member to campaign at once; voters may then skip stickiness;
- single-server membership changes, in force from the moment the entry is appended, one at a
  time (no new change before the previous one commits); learners are replicated to before they
  become voters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from dynamokv.core.messages import (
    LogEntry,
    Message,
    RaftAppend,
    RaftAppendReply,
    RaftTimeoutNow,
    RaftVote,
    RaftVoteReply,
)
from dynamokv.core.replog.lease import Timings, lease_expiry
from dynamokv.core.replog.log import CONFIG, NOOP, PUT, RaftLog

NEVER = -(1 << 62)


class Role(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(slots=True)
class Peer:
    """The leader's view of one other member (or learner)."""

    next_index: int
    match: int = 0
    sent_ms: int = NEVER  # when we last sent it an append
    acked_sent_ms: int = NEVER  # send time of the newest append it acknowledged
    heard_ms: int = NEVER
    snapshot: bool = False  # being caught up from a snapshot instead of the log
    commit_sent: int = 0  # the highest commit index we told it


class RaftGroup:
    def __init__(self, group: int, me: str, log: RaftLog, timings: Timings,
                 rng: random.Random, now_ms: int, changes: list[int] | None = None) -> None:
        self.group = group
        self.me = me
        self.log = log
        self.timings = timings
        self.rng = rng
        self.role = Role.FOLLOWER
        self.leader = ""
        self.commit = log.base_index
        self.applied = log.base_index
        self.out: list[tuple[str, Message]] = []
        # Started (or restarted) now: we may have acknowledged a leader's append just before,
        # so we wait out any lease it holds before voting for anybody else.
        self.heard_leader_ms = now_ms
        self.election_due_ms = now_ms + self._election_timeout()
        self.votes: set[str] = set()
        self.peers: dict[str, Peer] = {}
        self.learners: set[str] = set()
        # Voters removed by a configuration entry, still sent appends until they hold the
        # entry and know it committed, so they can tell they are out (node -> give-up time).
        self.departing: dict[str, int] = {}
        self.lease_until_ms = 0
        self.term_start_index = 0
        self.transfer_until_ms: int | None = None
        self.snapshot_wanted: set[str] = set()
        self.removed_by = ""  # a voter whose committed configuration leaves us out
        self.rejoined = False  # made again after this node dropped the group (see _on_vote)
        # next_deadline(), kept until a call that can change it: every loop turn asks every
        # group, and most groups change nothing between two turns. ``changes`` (shared by a
        # node's groups) counts such calls, so the node can keep the minimum over its groups.
        self._deadline: int | None = None
        self._changes = changes if changes is not None else [0]
        self._changes[0] += 1  # a new group: its owner's minimum must include it

    # ---- state -----------------------------------------------------------------------------
    @property
    def term(self) -> int:
        return self.log.hard.term

    @property
    def members(self) -> tuple[str, ...]:
        return self.log.members

    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    def can_propose(self) -> bool:
        return self.role is Role.LEADER and self.transfer_until_ms is None

    def can_read(self, now_ms: int) -> bool:
        """Strongly consistent reads from the local state are safe: we lead under a lease, an
        entry of our term committed (so we hold every committed write) and all is applied.
        A sole voter needs no lease: no other node can win an election without its vote, and
        with no peers to acknowledge heartbeats its lease would otherwise lapse when idle."""
        leased = now_ms < self.lease_until_ms or self.members == (self.me,)
        return (self.can_propose() and leased
                and self.commit >= self.term_start_index and self.applied >= self.commit)

    def _majority(self) -> int:
        return len(self.members) // 2 + 1

    def _election_timeout(self) -> int:
        t = self.timings
        return self.rng.randint(t.election_min_ms, t.election_max_ms)

    # ---- proposals ---------------------------------------------------------------------------
    def propose(self, kind: int, now_ms: int, bucket: str = "", key: bytes = b"",
                value: bytes | None = None, members: tuple[str, ...] = ()) -> int:
        """Append an entry as leader (persisted) and start replicating it; its index."""
        self._touch()
        assert self.can_propose()
        entry = LogEntry(self.term, self.log.last_index + 1, kind, bucket, key, value,
                         tuple(m.encode() for m in members))
        before = set(self.members)
        self.log.append([entry])
        if kind == CONFIG:
            for node in before - set(members) - {self.me}:
                self.departing[node] = now_ms + 10 * self.timings.election_max_ms
            self._sync_peers(now_ms)
        for node, peer in self.peers.items():
            if peer.next_index == entry.index:  # caught up: send right away
                self._send_append(node, peer, now_ms)
        self._advance_commit(now_ms)
        return entry.index

    def config_change_allowed(self) -> bool:
        """One membership change at a time, and only once our term's first entry committed."""
        return (self.can_propose() and self.log.config_index <= self.commit
                and self.commit >= self.term_start_index)

    # ---- time --------------------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        self._touch()
        if self.role is Role.LEADER:
            self._leader_tick(now_ms)
        elif now_ms >= self.election_due_ms:
            self._campaign(now_ms, pre_vote=True)

    def deadline_changed(self) -> None:
        """Someone else changed what ``next_deadline`` depends on (an election time, a peer's
        snapshot state)."""
        self._touch()

    def _touch(self) -> None:
        self._deadline = None
        self._changes[0] += 1

    def next_deadline(self) -> int:
        if self._deadline is None:
            self._deadline = self._next_deadline()
        return self._deadline

    def _next_deadline(self) -> int:
        if self.role is Role.LEADER:
            times = [p.sent_ms + self.timings.heartbeat_ms for p in self.peers.values()
                     if not p.snapshot]
            if self.transfer_until_ms is not None:
                times.append(self.transfer_until_ms)
            return min(times) if times else self.election_due_ms + (1 << 40)
        return self.election_due_ms

    def _leader_tick(self, now_ms: int) -> None:
        t = self.timings
        if self.transfer_until_ms is not None and now_ms >= self.transfer_until_ms:
            self._step_down(self.term, now_ms, "")  # the transfer failed: let an election run
            return
        heard = [now_ms if m == self.me else self.peers[m].heard_ms
                 for m in self.members if m == self.me or m in self.peers]
        if len(heard) >= self._majority():
            quorum_heard = sorted(heard, reverse=True)[self._majority() - 1]
            if now_ms - quorum_heard > t.election_max_ms and now_ms >= self.election_due_ms:
                self._step_down(self.term, now_ms, "")  # check-quorum: we are cut off
                return
        self._forget_departed(now_ms)
        for node, peer in self.peers.items():
            if not peer.snapshot and now_ms - peer.sent_ms >= t.heartbeat_ms:
                self._send_append(node, peer, now_ms)

    def _forget_departed(self, now_ms: int) -> None:
        cfg = self.log.config_index
        done = [n for n, give_up in self.departing.items()
                if now_ms >= give_up or (n in self.peers and self.commit >= cfg
                                         and self.peers[n].match >= cfg
                                         and self.peers[n].commit_sent >= cfg)]
        if done:
            for node in done:
                del self.departing[node]
            self._sync_peers(now_ms)

    # ---- messages ----------------------------------------------------------------------------
    def on_message(self, src: str, msg: Message, now_ms: int) -> None:
        self._touch()
        if isinstance(msg, RaftAppend):
            self._on_append(src, msg, now_ms)
        elif isinstance(msg, RaftAppendReply):
            self._on_append_reply(src, msg, now_ms)
        elif isinstance(msg, RaftVote):
            self._on_vote(src, msg, now_ms)
        elif isinstance(msg, RaftVoteReply):
            self._on_vote_reply(src, msg, now_ms)
        elif (isinstance(msg, RaftTimeoutNow) and msg.term == self.term
              and self.me in self.members):
            self._campaign(now_ms, pre_vote=False, transfer=True)

    # ---- election ----------------------------------------------------------------------------
    def _ignores_votes(self, now_ms: int) -> bool:
        return (self.role is Role.LEADER
                or now_ms < self.heard_leader_ms + self.timings.election_min_ms)

    def _campaign(self, now_ms: int, *, pre_vote: bool, transfer: bool = False) -> None:
        self.election_due_ms = now_ms + self._election_timeout()
        if self.me not in self.members:
            return  # not a voter (yet, or any more): never campaign
        self.votes = {self.me}
        if pre_vote:
            self.role = Role.PRE_CANDIDATE
            term = self.term + 1
        else:
            self.role = Role.CANDIDATE
            self.leader = ""
            self.log.set_hard(term=self.term + 1, vote=self.me)
            term = self.term
        vote = RaftVote(self.group, term, self.log.last_index, self.log.last_term, pre_vote,
                        transfer)
        self.out.extend((m, vote) for m in self.members if m != self.me)
        self._count_votes(now_ms)

    def _count_votes(self, now_ms: int) -> None:
        if len(self.votes & set(self.members)) < self._majority():
            return
        if self.role is Role.PRE_CANDIDATE:
            self._campaign(now_ms, pre_vote=False)
        elif self.role is Role.CANDIDATE:
            self._become_leader(now_ms)

    def _on_vote(self, src: str, msg: RaftVote, now_ms: int) -> None:
        cfg = self.log.config_index
        if cfg and src not in self.members and self.commit >= cfg:
            # A node our committed configuration removed: tell it, so it stops campaigning
            # (it may never have received the entry that removed it).
            self.out.append((src, RaftVoteReply(self.group, self.term, False, msg.pre_vote,
                                                True)))
            return
        if self.rejoined and self.me not in self.members:
            # We dropped this group once (our removal committed) and a stray append made it
            # again, empty: our vote would vouch for a log we no longer hold, and a stale
            # candidate could win with it (seed 2182). Once a leader has caught us up to a
            # configuration that lists us again, we vote as any member.
            self.out.append((src, RaftVoteReply(self.group, self.term, False, msg.pre_vote)))
            return
        if not msg.transfer and self._ignores_votes(now_ms):
            self.out.append((src, RaftVoteReply(self.group, self.term, False, msg.pre_vote)))
            return
        up_to_date = self.log.up_to_date(msg.last_index, msg.last_term)
        if msg.pre_vote:
            grant = msg.term > self.term and up_to_date
            self.out.append((src, RaftVoteReply(self.group, msg.term if grant else self.term,
                                                grant, True)))
            return
        if msg.term > self.term:
            self._step_down(msg.term, now_ms, "")
        grant = (msg.term == self.term and self.log.hard.vote in ("", src) and up_to_date)
        if grant:
            self.log.set_hard(vote=src)
            self.election_due_ms = now_ms + self._election_timeout()
        self.out.append((src, RaftVoteReply(self.group, self.term, grant, False)))

    def _on_vote_reply(self, src: str, msg: RaftVoteReply, now_ms: int) -> None:
        if msg.removed:
            self.removed_by = src
        if msg.pre_vote:
            if self.role is Role.PRE_CANDIDATE and msg.granted and msg.term == self.term + 1:
                self.votes.add(src)
                self._count_votes(now_ms)
            return
        if msg.term > self.term:
            self._step_down(msg.term, now_ms, "")
        elif self.role is Role.CANDIDATE and msg.granted and msg.term == self.term:
            self.votes.add(src)
            self._count_votes(now_ms)

    def _step_down(self, term: int, now_ms: int, leader: str) -> None:
        if term > self.term:
            self.log.set_hard(term=term, vote="")
        self.role = Role.FOLLOWER
        self.leader = leader
        self.lease_until_ms = 0
        self.transfer_until_ms = None
        self.peers = {}
        self.departing = {}
        self.snapshot_wanted = set()
        self.election_due_ms = now_ms + self._election_timeout()

    def removed(self) -> bool:
        """A committed configuration without us, after one with us: this node was a voter and
        is out of the group. (A learner being caught up is in no configuration yet; it must
        keep what it acknowledged, since the leader will count it once it adds it.)"""
        cfg = self.log.config_index
        return (cfg > 0 and self.me not in self.members and self.commit >= cfg
                and self.log.was_member(self.me))

    def _become_leader(self, now_ms: int) -> None:
        self.role = Role.LEADER
        self.leader = self.me
        self.lease_until_ms = 0
        self.transfer_until_ms = None
        self.peers = {}
        self._sync_peers(now_ms)
        self.term_start_index = self.propose(NOOP, now_ms)
        # check-quorum runs from here: give the followers one election timeout to answer
        self.election_due_ms = now_ms + self.timings.election_max_ms

    # ---- replication: leader -----------------------------------------------------------------
    def _sync_peers(self, now_ms: int) -> None:
        """Peers are the members and learners but us; new ones start at our log's end."""
        wanted = (set(self.members) | self.learners | set(self.departing)) - {self.me}
        for node in list(self.peers):
            if node not in wanted:
                del self.peers[node]
                self.snapshot_wanted.discard(node)
        for node in sorted(wanted - set(self.peers)):
            peer = self.peers[node] = Peer(next_index=self.log.last_index + 1, heard_ms=now_ms)
            if self.role is Role.LEADER:
                self._send_append(node, peer, now_ms)

    def set_learners(self, learners: set[str], now_ms: int) -> None:
        self._touch()
        if learners != self.learners:
            self.learners = set(learners)
            if self.role is Role.LEADER:
                self._sync_peers(now_ms)

    def _send_append(self, node: str, peer: Peer, now_ms: int) -> None:
        if peer.snapshot:
            return
        if peer.next_index <= self.log.base_index:
            peer.snapshot = True  # what it needs was compacted: PartitionLogs sends a snapshot
            self.snapshot_wanted.add(node)
            return
        prev = peer.next_index - 1
        prev_term = self.log.term_at(prev)
        assert prev_term is not None
        t = self.timings
        entries = self.log.slice(peer.next_index, t.entries_per_append_max,
                                 t.bytes_per_append_max)
        self.out.append((node, RaftAppend(self.group, self.term, prev, prev_term, entries,
                                          self.commit, now_ms)))
        peer.sent_ms = now_ms
        peer.commit_sent = self.commit
        peer.next_index = prev + len(entries) + 1  # optimistic: pipelined until refused

    def _on_append_reply(self, src: str, msg: RaftAppendReply, now_ms: int) -> None:
        if msg.term > self.term:
            self._step_down(msg.term, now_ms, "")
            return
        peer = self.peers.get(src)
        if self.role is not Role.LEADER or msg.term != self.term or peer is None:
            return
        peer.heard_ms = now_ms
        if peer.snapshot:
            return
        if not msg.success:
            if src in self.learners and msg.match < peer.match:
                peer.match = msg.match  # it lost its copy (dropped, or rebuilt): start over
            peer.next_index = max(1, min(peer.next_index - 1, msg.match + 1))
            self._send_append(src, peer, now_ms)
            return
        if msg.match > peer.match:
            peer.match = msg.match
        peer.next_index = max(peer.next_index, peer.match + 1)
        peer.acked_sent_ms = max(peer.acked_sent_ms, msg.seq)
        self._advance_commit(now_ms)
        if peer.next_index <= self.log.last_index and msg.match >= peer.next_index - 1:
            self._send_append(src, peer, now_ms)  # more to send, and it caught up with us

    def _advance_commit(self, now_ms: int) -> None:
        voters = self.members
        if not voters:
            return
        matches = [self.log.last_index if v == self.me else
                   (self.peers[v].match if v in self.peers else 0) for v in voters]
        n = sorted(matches, reverse=True)[self._majority() - 1]
        if n > self.commit and self.log.term_at(n) == self.term:
            self.commit = n
            for node, peer in self.peers.items():  # followers apply it now, not a beat later
                if peer.next_index > self.log.last_index and peer.match >= n:
                    self._send_append(node, peer, now_ms)
        if self.transfer_until_ms is None:
            sent = [now_ms if v == self.me else self.peers[v].acked_sent_ms
                    for v in voters if v == self.me or v in self.peers]
            self.lease_until_ms = max(self.lease_until_ms,
                                      lease_expiry(sent, len(voters), self.timings))
        if self.me not in voters and self.commit >= self.log.config_index:
            self._step_down(self.term, now_ms, "")  # our removal committed: we are done

    def snapshot_sent(self, node: str, base_index: int, now_ms: int) -> None:
        """``node`` installed our snapshot at ``base_index``: continue from the log."""
        self._touch()
        peer = self.peers.get(node)
        self.snapshot_wanted.discard(node)
        if peer is None:
            return
        peer.snapshot = False
        peer.match = max(peer.match, base_index)
        peer.next_index = peer.match + 1
        peer.heard_ms = now_ms
        self._send_append(node, peer, now_ms)

    def transfer_to(self, node: str, now_ms: int) -> bool:
        """Hand leadership to caught-up member ``node``; our lease ends first."""
        self._touch()
        peer = self.peers.get(node)
        if (not self.can_propose() or node not in self.members or peer is None
                or peer.match < self.log.last_index):
            return False
        self.lease_until_ms = 0
        self.transfer_until_ms = now_ms + self.timings.election_min_ms
        self.out.append((node, RaftTimeoutNow(self.group, self.term)))
        return True

    # ---- replication: follower ---------------------------------------------------------------
    def _on_append(self, src: str, msg: RaftAppend, now_ms: int) -> None:
        if msg.term < self.term:
            self.out.append((src, RaftAppendReply(self.group, self.term, False,
                                                  self.log.last_index, msg.seq)))
            return
        self.heard_from_leader(src, msg.term, now_ms)
        log = self.log
        prev, entries = msg.prev_index, msg.entries
        if prev < log.base_index:  # entries up to our base are committed and equal
            entries = tuple(e for e in entries if e.index > log.base_index)
            prev = log.base_index
        elif log.term_at(prev) != msg.prev_term:
            hint = min(log.last_index, prev - 1)
            self.out.append((src, RaftAppendReply(self.group, self.term, False,
                                                  max(hint, log.base_index), msg.seq)))
            return
        new: list[LogEntry] = []
        for e in entries:
            if new:
                new.append(e)
                continue
            have = log.term_at(e.index)
            if have is None:
                new.append(e)
            elif have != e.term:
                assert e.index > self.commit, "a committed entry can never be replaced"
                log.truncate(e.index)
                new.append(e)
        log.append(new)
        match = prev + len(entries)
        if msg.commit > self.commit:
            self.commit = max(self.commit, min(msg.commit, match))
        self.out.append((src, RaftAppendReply(self.group, self.term, True, match, msg.seq)))

    def heard_from_leader(self, src: str, term: int, now_ms: int) -> None:
        """A valid message of ``src`` leading ``term`` (an append or a snapshot chunk)."""
        self._touch()
        if term > self.term or self.role is not Role.FOLLOWER:
            self._step_down(term, now_ms, src)
        self.leader = src
        self.heard_leader_ms = now_ms
        self.election_due_ms = now_ms + self._election_timeout()

    def snapshot_needed(self, base_index: int) -> bool:
        """Whether a snapshot at ``base_index`` tells us anything: not if we committed that far
        (the leader can go on from the log)."""
        return base_index > self.commit

    def install_snapshot(self, base_index: int, base_term: int, members: tuple[str, ...]
                         ) -> None:
        """A snapshot at ``base_index`` (beyond our commit) replaced our applied state. As in
        Raft (figure 13), entries after the base are kept when our log holds the base entry
        itself: we may have acknowledged them, and a leader may have counted them."""
        self._touch()
        if self.log.term_at(base_index) == base_term:
            self.log.compact(base_index)
        else:
            self.log.reset(base_index, base_term, members)
        self.commit = max(self.commit, base_index)
        self.applied = base_index

    def pending(self) -> list[LogEntry]:
        """Committed entries not applied yet, in order."""
        if self.applied >= self.commit:
            return []
        start = self.applied - self.log.base_index
        return self.log.entries[start: self.commit - self.log.base_index]


__all__ = ["CONFIG", "NOOP", "PUT", "Peer", "RaftGroup", "Role"]
