"""The simulator's parts on their own: checkers, disk, network, world, options."""

from __future__ import annotations

import random

import pytest

from dynamokv.core.messages import GetRequest
from dynamokv.core.ring import Member, Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.errors import StorageError
from dynamokv.sim.checkers import (
    DiskLog,
    check_acknowledged_writes,
    check_convergence,
    check_counter,
    check_partitions,
    sibling_violations,
)
from dynamokv.sim.disk import DiskFaults, SimDisk
from dynamokv.sim.history import History, Kind, Operation, Status
from dynamokv.sim.network import LinkFaults, SimNetwork
from dynamokv.sim.options import FAULT_KINDS, SimOptions, parse_faults
from dynamokv.sim.world import Simulator

B = "sim"
EMPTY = VectorClock.empty()


def clock(**counters: int) -> VectorClock:
    return VectorClock.from_entries([(a, c, 0) for a, c in counters.items()])


def sib(value: bytes | None, actor: str, counter: int, ctx: VectorClock = EMPTY) -> Sibling:
    return Sibling(value, Dot(actor, counter), ctx, 0)


def obj(*siblings: Sibling) -> VersionedObject:
    return VersionedObject(tuple(siblings))  # raw: no reduction, so tests can build bad ones


# ---- checkers ----------------------------------------------------------------------------------


def test_sibling_violations_flags_a_dominated_sibling() -> None:
    good = obj(sib(b"x", "a", 1), sib(b"y", "b", 1))
    assert sibling_violations("n1", b"k", good) == []
    bad = obj(sib(b"x", "a", 1), sib(b"y", "b", 1, clock(a=1)))
    assert any("obsoleted" in v for v in sibling_violations("n1", b"k", bad))
    unsorted = obj(sib(b"y", "b", 1), sib(b"x", "a", 1))
    assert any("sorted" in v for v in sibling_violations("n1", b"k", unsorted))


def test_disk_log_flags_a_reused_dot() -> None:
    log = DiskLog()
    log.observe("n1", B, b"k", obj(sib(b"v1", "a", 1)))
    log.observe("n2", B, b"k", obj(sib(b"v1", "a", 1)))  # the same write elsewhere: fine
    log.observe("n1", B, b"other", obj(sib(b"w", "a", 1)))  # dots are per key: fine
    assert log.violations() == []
    log.observe("n1", B, b"k", obj(sib(b"v2", "a", 1)))
    assert any("names two writes" in v for v in log.violations())


def _acked_put(history: History, key: bytes, value: bytes, sent: VectorClock,
               replied: VectorClock, client: int = 1) -> None:
    op = history.invoke(client, "put", key, "n1", 0, value=value, context=sent)
    History.finish(op, "ok", 5, reply_context=replied)


def _final(history: History, key: bytes, values: tuple[bytes, ...], ctx: VectorClock
           ) -> dict[bytes, Operation]:
    op = history.invoke(9, "final-get", key, "n1", 100)
    History.finish(op, "ok", 105, reply_context=ctx, values=values, found=bool(values))
    return {key: op}


def test_lost_write_rule_b_needs_a_write_that_saw_the_dot() -> None:
    log = DiskLog()
    history = History()
    _acked_put(history, b"k", b"v1", EMPTY, clock(a=1))
    log.observe("n1", B, b"k", obj(sib(b"v1", "a", 1)))
    final = _final(history, b"k", (), clock(a=1))
    problems = check_acknowledged_writes(history, final, log, B)
    assert len(problems) == 1 and "no write that saw its dot" in problems[0]

    # A later write sent with a context holding a:1 that reached a disk explains it.
    history = History()
    _acked_put(history, b"k", b"v1", EMPTY, clock(a=1))
    _acked_put(history, b"k", b"v2", clock(a=1), clock(a=2), client=2)
    log.observe("n1", B, b"k", obj(sib(b"v2", "a", 2, clock(a=1))))
    final = _final(history, b"k", (b"v2",), clock(a=2))
    assert check_acknowledged_writes(history, final, log, B) == []


def test_lost_write_rule_a_final_context_must_descend_the_reply() -> None:
    log = DiskLog()
    history = History()
    _acked_put(history, b"k", b"v1", EMPTY, clock(a=1, b=3))
    log.observe("n1", B, b"k", obj(sib(b"v1", "a", 1)))
    final = _final(history, b"k", (b"v1",), clock(a=1))
    problems = check_acknowledged_writes(history, final, log, B)
    assert len(problems) == 1 and "does not descend" in problems[0]


def test_lost_write_that_never_reached_a_disk() -> None:
    history = History()
    _acked_put(history, b"k", b"v1", EMPTY, clock(a=1))
    final = _final(history, b"k", (), clock(a=1))
    problems = check_acknowledged_writes(history, final, DiskLog(), B)
    assert "never reached a disk" in problems[0]


def _disk(node: str, q: int = 8, faults: DiskFaults | None = None) -> SimDisk:
    return SimDisk(node, q, "inc", random.Random(1), faults or DiskFaults())


def test_convergence_flags_diverged_replicas() -> None:
    members = tuple(Member(n, f"{n}.sim:7000") for n in ("n1", "n2", "n3"))
    ring = Ring(4, ("n1", "n2", "n3", "n1"), members, 1, "n1")
    disks = {n: _disk(n, q=4) for n in ("n1", "n2", "n3")}
    one = obj(sib(b"v", "a", 1))
    for d in disks.values():
        d.put(B, b"k", one)
    history = History()
    final = _final(history, b"k", (b"v",), one.context())
    assert check_convergence(ring, 3, disks, final, B) == []
    disks["n2"].put(B, b"k", obj(sib(b"v", "a", 1), sib(b"w", "b", 1)))
    problems = check_convergence(ring, 3, disks, final, B)
    assert any("diverged" in p for p in problems)


# ---- disk --------------------------------------------------------------------------------------


def test_disk_keeps_data_across_a_crash_and_can_lose_unsynced_writes() -> None:
    disk = _disk("n1")
    disk.put(B, b"k", obj(sib(b"v1", "a", 1)))
    assert disk.crash(lose_unsynced=True) == 0  # this disk never loses anything
    assert disk.get(B, b"k") == obj(sib(b"v1", "a", 1))

    lossy = _disk("n1", faults=DiskFaults(loses_unsynced=True))
    lossy.put(B, b"k", obj(sib(b"v1", "a", 1)))
    lossy.sync()
    lossy.put(B, b"k", obj(sib(b"v2", "a", 2)))
    lossy.put(B, b"new", obj(sib(b"x", "a", 1)))
    lossy.put_hint("n2", B, b"h", obj(sib(b"y", "a", 1)))
    assert lossy.crash() == 0  # the process died: the OS still has every write
    assert lossy.get(B, b"new") is not None
    assert lossy.crash(lose_unsynced=True) == 3  # the power went: unflushed writes are gone
    assert lossy.get(B, b"k") == obj(sib(b"v1", "a", 1))
    assert lossy.get(B, b"new") is None
    assert lossy.hints() == {}


def test_disk_flushes_writes_older_than_the_writeback_delay() -> None:
    now = [0]
    disk = SimDisk("n1", 8, "inc", random.Random(1),
                   DiskFaults(loses_unsynced=True, flush_ms=100), clock=lambda: now[0])
    disk.put(B, b"old", obj(sib(b"v", "a", 1)))
    now[0] = 150
    disk.put(B, b"young", obj(sib(b"w", "a", 1)))
    assert [u.kind for u in disk.unsynced()] == ["object"]
    assert disk.crash(lose_unsynced=True) == 1
    assert disk.get(B, b"old") is not None and disk.get(B, b"young") is None


def test_disk_faults_and_lies() -> None:
    failing = _disk("n1", faults=DiskFaults(storage_fault=1.0))
    with pytest.raises(StorageError):
        failing.put(B, b"k", obj(sib(b"v", "a", 1)))
    with pytest.raises(StorageError):
        failing.get(B, b"k")
    seen: list[bytes] = []
    liar = SimDisk("n1", 8, "inc", random.Random(1), DiskFaults(lie_every=2),
                   lambda node, bucket, key, o: seen.append(key))
    liar.put(B, b"a", obj(sib(b"v", "a", 1)))
    liar.put(B, b"b", obj(sib(b"v", "a", 1)))  # the second write is the lie
    assert liar.peek(B, b"a") is not None and liar.peek(B, b"b") is None
    assert seen == [b"a"] and liar.lied == 1


# ---- network -----------------------------------------------------------------------------------


def _net(**faults: object) -> SimNetwork:
    return SimNetwork(random.Random(3), LinkFaults(**faults),  # type: ignore[arg-type]
                      refuse_delay_ms=2, connect_timeout_ms=1000)


def test_network_connections_refusals_and_partitions() -> None:
    net = _net(delay_min_ms=1, delay_max_ms=50, fifo=True)
    assert net.route("n1", 1, "n2", None, 0).outcome == "refused"
    first = net.route("n1", 1, "n2", 1, 0)
    assert first.outcome == "deliver" and first.hello
    times = [net.route("n1", 1, "n2", 1, t).at_ms[0] for t in range(20)]
    assert times == sorted(times)  # FIFO: no overtaking on one link
    assert not net.route("n1", 1, "n2", 1, 30).hello
    assert net.route("n1", 1, "n2", 2, 30).hello  # n2 restarted: a new connection
    net.isolate("n2", ["n1", "n2", "n3"])
    assert net.route("n1", 1, "n2", 2, 40).outcome == "blocked"  # open link: silent loss
    assert net.route("n3", 1, "n2", 2, 40).outcome == "timeout"  # new link: connect times out
    net.heal()
    assert net.route("n3", 1, "n2", 2, 50).outcome == "deliver"
    assert net.reset_links("n2") == ["n1", "n3"]


def test_network_one_way_partition() -> None:
    net = _net()
    net.block([("n1", "n2")])  # n2 does not hear n1; n1 still hears n2
    assert net.route("n1", 1, "n2", 1, 0).outcome == "timeout"
    assert net.route("n2", 1, "n1", 1, 0).outcome == "deliver"
    net.unblock([("n1", "n2")])
    assert net.route("n1", 1, "n2", 1, 0).outcome == "deliver"


def test_network_loss_and_duplication() -> None:
    lossy = _net(loss=1.0)
    assert lossy.route("n1", 1, "n2", 1, 0).outcome == "lost"
    dup = _net(duplication=1.0, fifo=False)
    assert len(dup.route("n1", 1, "n2", 1, 0).at_ms) == 2


# ---- world -------------------------------------------------------------------------------------


def _quiet(seed: int, nodes: int = 3, faults: tuple[str, ...] = ()) -> Simulator:
    options = SimOptions(seed=seed, nodes=nodes, q=8, faults=faults)
    return Simulator(seed, options)


def test_world_bootstraps_and_restarts_from_disk() -> None:
    sim = _quiet(5)
    assert sim.bootstrap()
    ring = sim.nodes["n2"].core.ring  # type: ignore[union-attr]
    assert ring is not None and sorted(ring.node_ids()) == ["n1", "n2", "n3"]
    sim.crash("n2")
    assert sim.nodes["n2"].core is None
    sim.run_until(sim.now_ms + 100)
    # Peers saw the connection reset and suspect n2 at once.
    core1 = sim.nodes["n1"].core
    assert core1 is not None and not core1.detector.is_up("n2")
    sim.restart("n2")
    core2 = sim.nodes["n2"].core
    assert core2 is not None and core2.ring == ring and sim.nodes["n2"].epoch == 2
    sim.run_until(sim.now_ms + 3_000)
    assert core1.detector.is_up("n2")
    assert sim.violations == [] and sim.errors == []


def test_world_answers_clients_and_refuses_when_down() -> None:
    sim = _quiet(6)
    assert sim.bootstrap()

    class Sink:
        def __init__(self) -> None:
            self.replies: list[object] = []
            self.refused: list[int] = []

        def on_reply(self, ref: int, msg: object) -> None:
            self.replies.append(msg)

        def on_refused(self, ref: int, req_id: int) -> None:
            self.refused.append(req_id)

        def on_connection_lost(self, node: str) -> None:
            pass

    sink = Sink()
    sim.sink = sink
    sim.client_send("n1", 1, GetRequest(1, B, b"k"))
    sim.run_until(sim.now_ms + 500)
    assert len(sink.replies) == 1
    sim.crash("n3")
    sim.client_send("n3", 1, GetRequest(2, B, b"k"))
    sim.run_until(sim.now_ms + 50)
    assert sink.refused == [2]


class _Sink:
    def __init__(self) -> None:
        self.replies: list[object] = []

    def on_reply(self, ref: int, msg: object) -> None:
        self.replies.append(msg)

    def on_refused(self, ref: int, req_id: int) -> None:
        pass

    def on_connection_lost(self, node: str) -> None:
        pass


def test_world_pause_delays_events_without_refusing_them() -> None:
    sim = _quiet(7)
    assert sim.bootstrap()
    sink = _Sink()
    sim.sink = sink
    sim.pause("n2", sim.now_ms + 2_000)
    start = sim.now_ms
    sim.client_send("n2", 1, GetRequest(1, B, b"k"))
    sim.run_until(start + 1_900)
    assert sink.replies == []  # queued, not refused
    sim.run_until(start + 4_000)
    assert len(sink.replies) == 1
    assert sim.violations == [] and sim.errors == []


def test_world_power_loss_never_destroys_the_last_copy() -> None:
    sim = _quiet(8, faults=("power",))
    assert sim.bootstrap()
    only_here = obj(sib(b"v", "w", 1))
    sim.nodes["n1"].disk.put(B, b"k", only_here)
    assert "last copy" in sim.power_loss_unsafe("n1")
    assert not sim.power_fail("n1")  # refused: a process crash instead
    assert sim.nodes["n1"].disk.peek(B, b"k") == only_here
    sim.restart("n1")
    sim.run_until(sim.now_ms + sim.options.flush_ms + 1)  # the OS has flushed "k" by now
    assert sim.power_loss_unsafe("n1") == ""
    sim.nodes["n1"].disk.put(B, b"k2", obj(sib(b"v", "w", 1)))
    assert "last copy" in sim.power_loss_unsafe("n1")
    sim.nodes["n3"].disk.put_hint("n1", B, b"k2", obj(sib(b"v2", "w", 2, clock(w=1))))
    assert sim.power_loss_unsafe("n1") == ""  # superseded by a write held on n3
    sim.nodes["n1"].disk.put("~t/x", b"k", obj(sib(b"v", "w", 1)))
    assert "table data" in sim.power_loss_unsafe("n1")


def test_world_joins_a_fresh_node_and_jumps_clocks() -> None:
    sim = _quiet(9)
    assert sim.bootstrap()
    new = sim.add_node()
    assert new == "n4"
    sim.run_until(sim.now_ms + 5_000)
    assert sim.rings_complete()
    before = sim.clocks.wall_ms("n4", sim.now_ms)
    sim.jump_clock("n4", -3_000)
    assert sim.clocks.wall_ms("n4", sim.now_ms) == before - 3_000


# ---- options and the counter checker -------------------------------------------------------


def test_parse_faults() -> None:
    drawn = ("crash", "loss")
    assert parse_faults("pause,crash", drawn) == ("crash", "pause")
    assert parse_faults("+power,-loss", drawn) == ("crash", "power")
    assert parse_faults("none", drawn) == ()
    assert parse_faults("all", drawn) == FAULT_KINDS
    with pytest.raises(ValueError):
        parse_faults("meteor", drawn)
    options = SimOptions.from_seed(3)
    assert options.faults == SimOptions.from_seed(3).faults  # a function of the seed


def _cas(history: History, kind: Kind, old: int, new: int, start: int, end: int,
         status: Status = "ok") -> Operation:
    op = history.invoke(1, kind, b"counter", "n1", start)
    History.finish(op, status, end)
    if status == "ok":
        op.cas_old, op.cas_new = old, new
    return op


def test_counter_checker_accepts_a_linearizable_history() -> None:
    h = History()
    _cas(h, "incr", 0, 1, 0, 10)
    _cas(h, "incr", 1, 2, 5, 20)  # overlapping: fine
    _cas(h, "cas-read", 2, 2, 30, 40)
    _cas(h, "incr", 0, 0, 41, 50, status="unknown")
    final = _cas(h, "final-cas-read", 3, 3, 100, 110)
    assert check_counter(h, final) == []


def test_counter_checker_flags_duplicates_lost_and_stale() -> None:
    h = History()
    _cas(h, "incr", 0, 1, 0, 10)
    _cas(h, "incr", 0, 1, 20, 30)  # the same result twice, and it started from a stale value
    _cas(h, "cas-read", 0, 0, 40, 50)  # went backwards
    final = _cas(h, "final-cas-read", 1, 1, 100, 110)  # two acknowledged, one applied
    problems = check_counter(h, final)
    assert any("two acknowledged increments" in p for p in problems)
    assert any("went backwards" in p for p in problems)
    assert any("was lost" in p for p in problems)
    h2 = History()
    _cas(h2, "incr", 0, 1, 0, 10)
    assert any("applied twice" in p for p in check_counter(h2, _cas(h2, "final-cas-read", 3, 3,
                                                                    20, 30)))


def test_partition_checker_flags_differences_and_strays() -> None:
    members = tuple(Member(n, f"{n}.sim:7000") for n in ("n1", "n2", "n3", "n4"))
    ring = Ring(4, ("n1", "n2", "n3", "n4"), members, 1, "n1")
    disks = {n: _disk(n, q=4) for n in ("n1", "n2", "n3", "n4")}
    assert check_partitions(ring, 3, disks, list(disks)) == []
    key = b"k"
    replicas = ring.preference_list(ring.partition_for(B, key), 3)
    for node in replicas:
        disks[node].put(B, key, obj(sib(b"v", "a", 1)))
    assert check_partitions(ring, 3, disks, list(disks)) == []
    disks[replicas[1]].put(B, key, obj(sib(b"v", "a", 1), sib(b"w", "b", 1)))
    other = next(n for n in disks if n not in replicas)
    disks[other].put(B, key, obj(sib(b"v", "a", 1)))
    problems = check_partitions(ring, 3, disks, list(disks))
    assert any("differs" in p for p in problems)
    assert any("no replica" in p for p in problems)
