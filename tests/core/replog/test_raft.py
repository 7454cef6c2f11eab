"""RaftGroup alone: election, replication, persistence, the lease, pre-vote and stickiness.

Groups talk through a tiny in-memory router with per-link cuts; time moves in 10 ms steps.
"""

from __future__ import annotations

import random

from dynamokv.core.replog.lease import Timings
from dynamokv.core.replog.log import PUT, RaftLog
from dynamokv.core.replog.raft import RaftGroup, Role
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore

T = Timings()


class Net:
    def __init__(self, names: list[str]) -> None:
        self.stores = {n: NodeStore(MemoryEngine(), 8) for n in names}
        self.now = 0
        self.cut: set[frozenset[str]] = set()
        self.down: set[str] = set()
        self.groups = {n: self._make(n, names) for n in names}

    def _make(self, name: str, members: list[str]) -> RaftGroup:
        store = self.stores[name]
        hard, entries = store.load_log(0)
        log = RaftLog(0, store, hard, entries)
        if hard is None:
            log.set_hard(base_members=tuple(members))
        return RaftGroup(0, name, log, T, random.Random(name), self.now)

    def restart(self, name: str) -> None:
        self.groups[name] = self._make(name, [])
        self.down.discard(name)

    def step(self, ms: int = 10) -> None:
        self.now += ms
        for name in sorted(self.groups):
            if name not in self.down:
                self.groups[name].tick(self.now)
        self.flush()

    def flush(self) -> None:
        """Deliver until quiet; every group applies what it committed (PartitionLogs' job)."""
        for _ in range(100):
            for g in self.groups.values():
                g.applied = g.commit
            moved = False
            for name in sorted(self.groups):
                g = self.groups[name]
                out, g.out = g.out, []
                for dst, msg in out:
                    if dst in self.down or name in self.down or frozenset((name, dst)) in self.cut:
                        continue
                    self.groups[dst].on_message(name, msg, self.now)
                    moved = True
            if not moved:
                return

    def run(self, ms: int) -> None:
        for _ in range(ms // 10):
            self.step()

    def leaders(self) -> list[str]:
        return [n for n, g in self.groups.items() if g.role is Role.LEADER and n not in self.down]

    def isolate(self, name: str) -> None:
        self.cut |= {frozenset((name, o)) for o in self.groups if o != name}


def test_three_voters_elect_one_leader_and_commit_on_a_majority() -> None:
    net = Net(["a", "b", "c"])
    net.run(3_000)
    assert len(net.leaders()) == 1
    leader = net.groups[net.leaders()[0]]
    index = leader.propose(PUT, net.now, "~t/x", b"k", b"v1")
    net.run(300)
    for g in net.groups.values():
        assert g.commit >= index and g.log.entry(index).value == b"v1"


def test_a_minority_never_commits_and_its_entries_are_replaced() -> None:
    net = Net(["a", "b", "c"])
    net.run(3_000)
    old = net.leaders()[0]
    net.isolate(old)
    stale = net.groups[old].propose(PUT, net.now, "~t/x", b"k", b"lost")
    net.run(4_000)
    new = [n for n in net.leaders() if n != old]
    assert len(new) == 1
    won = net.groups[new[0]].propose(PUT, net.now, "~t/x", b"k", b"kept")
    net.run(300)
    net.cut.clear()
    net.run(3_000)
    assert net.groups[old].commit >= won
    assert all(e.value != b"lost" for e in net.groups[old].log.entries)
    assert net.groups[old].log.term_at(stale) != net.groups[new[0]].term - 100  # replaced


def test_the_old_lease_ends_before_a_new_leader_can_serve_reads() -> None:
    net = Net(["a", "b", "c"])
    net.run(3_000)
    old = net.leaders()[0]
    assert net.groups[old].can_read(net.now)
    lease_end = net.groups[old].lease_until_ms
    net.isolate(old)
    first_read = None
    for _ in range(600):
        net.step()
        others = [n for n in net.leaders() if n != old]
        if others and net.groups[others[0]].can_read(net.now):
            first_read = net.now
            break
    assert first_read is not None and first_read > lease_end
    assert not net.groups[old].can_read(lease_end)


def test_term_vote_and_log_survive_a_restart() -> None:
    net = Net(["a", "b", "c"])
    net.run(3_000)
    leader = net.groups[net.leaders()[0]]
    index = leader.propose(PUT, net.now, "~t/x", b"k", b"v")
    net.run(300)
    follower = next(n for n in net.groups if n != leader.me)
    term = net.groups[follower].term
    net.restart(follower)
    g = net.groups[follower]
    assert g.term == term and g.log.last_index >= index and g.members == ("a", "b", "c")


def test_pre_vote_keeps_a_returning_node_from_deposing_the_leader() -> None:
    net = Net(["a", "b", "c"])
    net.run(3_000)
    leader = net.leaders()[0]
    term = net.groups[leader].term
    loner = next(n for n in net.groups if n != leader)
    net.isolate(loner)
    net.run(10_000)  # it campaigns again and again, in pre-votes only
    assert net.groups[loner].term == term
    net.cut.clear()
    net.run(1_000)
    assert net.leaders() == [leader] and net.groups[leader].term == term


def test_a_single_voter_group_leads_itself() -> None:
    net = Net(["solo"])
    net.run(2_500)
    assert net.leaders() == ["solo"]
    g = net.groups["solo"]
    index = g.propose(PUT, net.now, "~t/x", b"k", b"v")
    net.flush()
    assert g.commit == index and g.can_read(net.now)


def test_a_single_voter_group_keeps_serving_reads_when_idle() -> None:
    net = Net(["solo"])
    net.run(2_500)
    g = net.groups["solo"]
    g.propose(PUT, net.now, "~t/x", b"k", b"v")
    net.flush()
    net.run(5_000)  # no writes: nobody acknowledges anything, yet no one else can lead
    assert net.leaders() == ["solo"] and g.can_read(net.now)


def test_leadership_transfer_gives_up_the_lease_first() -> None:
    net = Net(["a", "b", "c"])
    net.run(3_000)
    old = net.leaders()[0]
    heir = next(n for n in net.groups if n != old)
    assert net.groups[old].transfer_to(heir, net.now)
    assert not net.groups[old].can_read(net.now)
    net.flush()
    net.run(500)
    assert net.leaders() == [heir]


def _log_with(entries: list[tuple[int, int]], members: tuple[str, ...] = ("a", "b", "c")
              ) -> RaftGroup:
    """A follower ``a`` whose log holds entries ``(index, term)``."""
    from dynamokv.core.messages import LogEntry

    store = NodeStore(MemoryEngine(), 8)
    log = RaftLog(0, store)
    log.set_hard(base_members=members, term=max((t for _, t in entries), default=0))
    log.append([LogEntry(t, i, PUT, "~t/x", b"k%d" % i, b"v", ()) for i, t in entries])
    return RaftGroup(0, "a", log, T, random.Random(1), 0)


def test_a_snapshot_keeps_the_entries_after_its_base_when_the_log_holds_the_base() -> None:
    g = _log_with([(1, 1), (2, 1), (3, 2), (4, 2)])
    g.commit = 1
    assert g.snapshot_needed(2)
    g.install_snapshot(2, 1, ("a", "b", "c"))
    # entries 3 and 4 may have been acknowledged and counted by a leader: they stay
    assert [e.index for e in g.log.entries] == [3, 4]
    assert g.log.base_index == 2 and g.commit == 2 and g.applied == 2


def test_a_snapshot_whose_base_conflicts_replaces_the_whole_log() -> None:
    g = _log_with([(1, 1), (2, 1), (3, 1)])
    g.install_snapshot(3, 2, ("a", "b", "c"))
    assert g.log.entries == [] and g.log.last_index == 3 and g.log.last_term == 2


def test_a_snapshot_at_or_below_our_commit_is_not_needed() -> None:
    g = _log_with([(1, 1), (2, 1), (3, 1)])
    g.commit = 3
    assert not g.snapshot_needed(3) and not g.snapshot_needed(2)


def test_a_learner_outside_every_configuration_is_not_removed() -> None:
    """A learner sees committed configurations without itself; it was never a voter, so it
    must keep its log (the leader will count what it acknowledged once it adds it)."""
    from dynamokv.core.messages import LogEntry
    from dynamokv.core.replog.log import CONFIG

    store = NodeStore(MemoryEngine(), 8)
    log = RaftLog(0, store)
    log.append([LogEntry(1, 1, CONFIG, "", b"", None, (b"b", b"c"))])
    learner = RaftGroup(0, "a", log, T, random.Random(1), 0)
    learner.commit = 1
    assert not learner.removed()
    voter = _log_with([(1, 1)], members=("a", "b", "c"))
    voter.log.append([LogEntry(1, 2, CONFIG, "", b"", None, (b"b", b"c"))])
    voter.commit = 2
    assert voter.removed()


def test_a_group_made_again_after_its_node_dropped_it_never_votes() -> None:
    """A group recreated empty after its node dropped it (a stray append) must not vouch for
    a candidate: with an empty log any candidate looks up to date (seed 2182)."""
    from dynamokv.core.messages import RaftVote, RaftVoteReply

    store = NodeStore(MemoryEngine(), 8)
    empty = RaftGroup(0, "a", RaftLog(0, store), T, random.Random(1), 0)
    empty.rejoined = True
    for pre_vote in (True, False):
        empty.on_message("b", RaftVote(0, 5, 3, 2, pre_vote, False), 10_000)
        (dst, reply), = empty.out
        empty.out.clear()
        assert dst == "b" and isinstance(reply, RaftVoteReply) and not reply.granted
    assert empty.log.hard.vote == ""
