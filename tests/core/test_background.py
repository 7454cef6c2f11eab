"""Issue 3 mechanisms through the in-memory pump: sloppy quorum and hinted handoff, PW,
anti-entropy after data loss, ownership handoff on join and leave, staged plan/commit."""

from __future__ import annotations

from dataclasses import replace

from dynamokv.core.admission import AdmissionController, AdmissionSettings
from dynamokv.core.messages import (
    ClusterReply,
    ClusterRequest,
    ErrorReply,
    GetReply,
    GetRequest,
    PutReply,
    PutRequest,
)
from dynamokv.core.ring import MemberStatus
from dynamokv.core.settings import CoreSettings
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump

EMPTY = VectorClock.empty()


def _put(pump: Pump, node: str, key: bytes, value: bytes, **kw: object) -> object:
    return pump.request(node, PutRequest(1, "b", key, value, EMPTY, **kw))  # type: ignore[arg-type]


def _get(pump: Pump, node: str, key: bytes, **kw: object) -> object:
    return pump.request(node, GetRequest(2, "b", key, **kw))  # type: ignore[arg-type]


def _replicas(pump: Pump, key: bytes, n: int = 3) -> tuple[str, ...]:
    ring = pump.nodes["n1"].ring
    assert ring is not None
    return ring.preference_list(ring.partition_for("b", key), n)


def _mark_down(pump: Pump, node: str) -> None:
    pump.down.add(node)
    for other in pump.nodes.values():
        other.detector.unreachable(node, pump.now_ms)


def _mark_up(pump: Pump, node: str) -> None:
    pump.down.discard(node)
    for other in pump.nodes.values():
        other.detector.heard_from(node, pump.now_ms)


def test_sloppy_quorum_writes_a_hint_and_replays_it_when_the_owner_returns() -> None:
    pump = Pump.with_nodes(5)
    pump.settle()
    key = b"hinted"
    primaries = _replicas(pump, key)
    victim = primaries[1]
    coordinator = primaries[0]
    _mark_down(pump, victim)
    reply = _put(pump, coordinator, key, b"v", w=3)  # W=3 needs the fallback: sloppy quorum
    assert isinstance(reply, PutReply)
    holders = [n for n, node in pump.nodes.items() if node.store.hint_counts().get(victim)]
    assert len(holders) == 1 and holders[0] not in primaries
    assert pump.stored(victim, "b", key) is None
    _mark_up(pump, victim)
    pump.advance(3000)
    assert pump.stored(victim, "b", key).values() == [b"v"]
    assert not pump.nodes[holders[0]].store.hint_counts()
    assert pump.nodes[holders[0]].hints.replayed == 1


def test_hints_survive_a_restart_of_their_holder() -> None:
    pump = Pump.with_nodes(5)
    pump.settle()
    key = b"durable-hint"
    primaries = _replicas(pump, key)
    victim = primaries[2]
    _mark_down(pump, victim)
    assert isinstance(_put(pump, primaries[0], key, b"v", w=3), PutReply)
    holder = next(n for n, node in pump.nodes.items() if node.store.hint_counts().get(victim))
    pump.restart(holder)
    _mark_up(pump, victim)
    pump.advance(5000)
    assert pump.stored(victim, "b", key).values() == [b"v"]


def test_pw_requires_primaries() -> None:
    pump = Pump.with_nodes(5)
    pump.settle()
    key = b"pw"
    primaries = _replicas(pump, key)
    _mark_down(pump, primaries[2])
    reply = _put(pump, primaries[0], key, b"v", w=2, pw=3)
    assert isinstance(reply, ErrorReply) and reply.code == "QuorumNotMet"
    assert reply.details["needed_primaries"] == 3
    assert isinstance(_put(pump, primaries[0], key, b"v", w=2, pw=2), PutReply)


def test_anti_entropy_restores_a_replica_that_lost_its_data() -> None:
    settings = CoreSettings(q=16)
    settings = replace(settings, aae=replace(settings.aae, interval_ms=200))
    pump = Pump.with_nodes(3, settings=settings)
    pump.settle()
    keys = [b"k%d" % i for i in range(60)]
    for key in keys:
        assert isinstance(_put(pump, "n1", key, key), PutReply)
    victim = pump.nodes["n3"]
    victim.raw_store.engine._data.clear()  # type: ignore[attr-defined]  # the disk is gone
    victim.trees.trees.clear()
    pump.advance(60_000)
    for key in keys:
        assert pump.stored("n3", "b", key).values() == [key], key
    roots = {tuple(sorted(n.aae.roots().items())) for n in pump.nodes.values()}
    assert len(roots) == 1
    assert victim.aae.keys_repaired + sum(n.aae.keys_repaired for n in pump.nodes.values()) > 0


def test_join_moves_partitions_and_every_key_stays_readable() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    keys = [b"j%d" % i for i in range(80)]
    for key in keys:
        _put(pump, "n1", key, key)
    pump.add_node("n4")
    pump.settle()
    pump.advance(30_000)
    ring = pump.nodes["n1"].ring
    assert ring is not None and ring.partitions_of("n4")
    for key in keys:
        got = _get(pump, "n2", key)
        assert isinstance(got, GetReply) and got.values == (key,)
        holders = {n for n in pump.nodes if pump.stored(n, "b", key) is not None}
        assert holders == set(_replicas(pump, key)), key  # strays handed off and deleted


def test_staged_leave_plan_commit_hands_everything_off() -> None:
    pump = Pump.with_nodes(4)
    pump.settle()
    keys = [b"l%d" % i for i in range(60)]
    for key in keys:
        _put(pump, "n1", key, key)
    claimant = pump.nodes["n1"].ring.claimant  # type: ignore[union-attr]
    staged = pump.request(claimant, ClusterRequest(5, "leave", "n3"))
    assert isinstance(staged, ClusterReply)
    plan = pump.request(claimant, ClusterRequest(6, "plan"))
    assert isinstance(plan, ClusterReply)
    assert plan.result["staged"] == [{"node": "n3", "action": "leave", "address": "10.0.0.3:7000"}]
    assert plan.result["partitions_moving"] > 0
    assert all(t["from"] == "n3" for t in plan.result["transfers"])
    done = pump.request(claimant, ClusterRequest(7, "commit"))
    assert isinstance(done, ClusterReply)
    pump.advance(30_000)
    ring = pump.nodes["n1"].ring
    assert ring is not None and ring.member("n3") is None
    assert pump.nodes["n3"].left
    assert not pump.nodes["n3"].store.nonempty_partitions()
    for key in keys:
        got = _get(pump, "n1", key)
        assert isinstance(got, GetReply) and got.values == (key,)


def test_staged_join_waits_for_commit() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    staged_settings = replace(pump.settings or CoreSettings(q=16), auto_join=False)
    pump.add_node("n4", settings=staged_settings)
    pump.advance(3000)
    ring = pump.nodes["n1"].ring
    assert ring is not None and ring.member("n4") is None
    claimant = ring.claimant
    plan = pump.request(claimant, ClusterRequest(8, "plan"))
    assert isinstance(plan, ClusterReply)
    assert [c["node"] for c in plan.result["staged"]] == ["n4"]
    pump.request(claimant, ClusterRequest(9, "commit"))
    pump.settle()
    member = pump.nodes["n2"].ring.member("n4")  # type: ignore[union-attr]
    assert member is not None and member.status is MemberStatus.VALID


def test_cluster_requests_name_the_claimant_when_sent_elsewhere() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    reply = pump.request("n2", ClusterRequest(1, "plan"))
    assert isinstance(reply, ErrorReply)
    assert reply.details["claimant"] == "n1"


def test_admission_backs_off_when_foreground_p99_rises_and_recovers() -> None:
    settings = AdmissionSettings(p99_threshold_ms=50, window_ms=1000, rate_max=100, rate_min=2,
                                 rate_step=10)
    ctl = AdmissionController(settings, 0)
    t = 0
    for _ in range(5):  # five slow windows
        for _ in range(100):
            ctl.observe(200, t)
        t += 1000
    ctl.observe(200, t)
    assert ctl.rate <= 100 / 16
    slow_rate = ctl.rate
    for _ in range(5):  # then fast ones
        t += 1000
        for _ in range(100):
            ctl.observe(1, t)
    assert ctl.rate > slow_rate
    granted = sum(ctl.admit(t + i * 10) for i in range(100))  # one second at the current rate
    assert 0 < granted <= ctl.rate + settings.burst + 1


def test_phi_detector_suspects_a_silent_peer() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    pump.advance(5000)  # heartbeats flowing
    node = pump.nodes["n1"]
    assert node.detector.is_up("n2")
    pump.silent.add("n2")  # silence without a connection error (a paused process)
    pump.advance(5_000)
    assert node.detector.phi("n2", pump.now_ms) > 1
    pump.advance(15_000)
    assert not node.detector.is_up("n2")
    pump.silent.discard("n2")
    pump.advance(3000)
    assert node.detector.is_up("n2")


def test_three_nodes_one_down_the_coordinator_keeps_the_hint() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    _mark_down(pump, "n3")
    for i in range(20):
        assert isinstance(_put(pump, "n1", b"h%d" % i, b"v"), PutReply)
    assert pump.nodes["n1"].store.hint_counts() == {"n3": 20}
    _mark_up(pump, "n3")
    pump.advance(5000)
    assert not pump.nodes["n1"].store.hint_counts()
    for i in range(20):
        assert pump.stored("n3", "b", b"h%d" % i).values() == [b"v"]


def test_previous_owners_are_forgotten_once_every_member_handed_off() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    for i in range(30):
        _put(pump, "n1", b"p%d" % i, b"v")
    pump.add_node("n4")
    pump.settle()
    ring = pump.nodes["n1"].ring
    assert ring is not None
    pump.advance(30_000)
    settled = pump.nodes["n2"].ring
    assert settled is not None and not settled.previous_owners
    assert settled.version > ring.version


def test_a_receiver_with_slow_foreground_makes_replayers_back_off() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    _mark_down(pump, "n3")
    for i in range(10):
        assert isinstance(_put(pump, "n1", b"b%d" % i, b"v"), PutReply)
    receiver = pump.nodes["n3"]
    receiver.admission.last_p99_ms = 500.0  # its foreground is slow
    receiver.admission._window_start_ms = pump.now_ms + 10**9  # and stays so
    _mark_up(pump, "n3")
    pump.advance(3000)
    assert pump.nodes["n1"].store.hint_counts() == {"n3": 10}  # held back, not lost
    receiver.admission.last_p99_ms = 1.0  # the foreground recovered
    pump.advance(3000)
    assert not pump.nodes["n1"].store.hint_counts()
    assert pump.stored("n3", "b", b"b3").values() == [b"v"]
