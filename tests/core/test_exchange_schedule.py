"""Which anti-entropy exchange starts next (suspect pairs, returned peers, rotation), and how a
put a replica missed makes its pair suspect (and, on a late failure, leaves a hint)."""

from __future__ import annotations

from dynamokv.core.claim import claim
from dynamokv.core.effects import Effect, Send
from dynamokv.core.events import PeerUnreachable
from dynamokv.core.exchange import SUSPECT_TRIES_MAX, AaeSettings, AntiEntropy
from dynamokv.core.hashing import key_partition
from dynamokv.core.messages import (
    AaeKeysRequest,
    AaeLevelReply,
    AaeLevelRequest,
    PutReply,
    PutRequest,
)
from dynamokv.core.ring import Member, Ring
from dynamokv.core.trees import TreeStore
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore
from tests.pump import Pump

Q = 8
ALL = frozenset({"n1", "n2", "n3"})


def _ring() -> Ring:
    members = [Member(f"n{i}", f"10.0.0.{i}:7000") for i in (1, 2, 3)]
    return claim(None, members, q=Q, target_n=3, claimant="n1")


def _built(up: frozenset[str] = ALL) -> tuple[AntiEntropy, Ring, int]:
    """n1's anti-entropy with every tree built and the first rotation exchange done."""
    aae = AntiEntropy("n1", TreeStore(NodeStore(MemoryEngine(), Q), Q),
                      AaeSettings(interval_ms=2_000, timeout_ms=3_000))
    ring = _ring()
    now = 0
    while len(aae.store.trees) < Q:  # builds first, in bounded steps
        aae.step(now, ring, 3, up, 1)
    aae.suspects.clear()
    aae.returned.clear()
    effects, _ = aae.step(now, ring, 3, up, 1)  # the rotation's first exchange
    _answer(aae, effects, now, in_sync=True)
    return aae, ring, now + 100


def _started(effects: list[Effect]) -> tuple[str, int]:
    [send] = effects
    assert isinstance(send, Send) and isinstance(send.msg, AaeLevelRequest)
    return send.to, send.msg.partition


def _answer(aae: AntiEntropy, effects: list[Effect], now: int, *, in_sync: bool) -> None:
    """The peer answers the root request: the same root, or a different one."""
    [send] = effects
    assert isinstance(send, Send) and isinstance(send.msg, AaeLevelRequest)
    tree = aae.store.trees[send.msg.partition].tree
    root = tree.level_hashes(0, (0,))[0]
    theirs = root if in_sync else bytes(16)
    aae.on_level_reply(send.to, AaeLevelReply(send.msg.req_id, (theirs,)), now)


def test_a_suspect_pair_goes_before_the_rotation_without_waiting_for_the_interval() -> None:
    aae, ring, now = _built()
    assert aae.step(now, ring, 3, ALL, 1) == ([], 0)  # rotation not due for 2 s
    aae.suspect(5, "n3")
    effects, used = aae.step(now, ring, 3, ALL, 1)
    assert used == 1 and _started(effects) == ("n3", 5)
    _answer(aae, effects, now, in_sync=True)
    assert aae.suspects == {}
    assert aae.step(now + 100, ring, 3, ALL, 1) == ([], 0)  # in sync: nothing left to do


def test_a_suspect_pair_waits_while_its_peer_is_down() -> None:
    aae, ring, now = _built()
    aae.suspect(5, "n3")
    aae.suspect(6, "n2")
    effects, _ = aae.step(now, ring, 3, frozenset({"n1", "n2"}), 1)
    assert _started(effects) == ("n2", 6)
    assert (5, "n3") in aae.suspects


def test_a_peer_that_comes_back_gets_every_shared_partition_checked() -> None:
    aae, ring, now = _built(up=frozenset({"n1", "n2"}))
    assert aae.step(now, ring, 3, frozenset({"n1", "n2"}), 1) == ([], 0)
    effects, _ = aae.step(now, ring, 3, ALL, 1)  # n3 is up again
    assert _started(effects)[0] == "n3"
    assert sorted(p for p, peer in aae.returned if peer == "n3") == list(range(1, Q))


def _exchange(aae: AntiEntropy, peer: AntiEntropy, effects: list[Effect], now: int) -> str:
    """Carry one exchange between ``aae`` and ``peer`` to its end (repairs are not applied)."""
    while effects:
        sends = [e for e in effects if isinstance(e, Send) and e.to == peer.node_id]
        effects = []
        for send in sends:
            if isinstance(send.msg, AaeLevelRequest):
                effects += aae.on_level_reply(peer.node_id, peer.on_level_request(send.msg), now)
            elif isinstance(send.msg, AaeKeysRequest):
                effects += aae.on_keys_reply(peer.node_id, peer.on_keys_request(send.msg), now,
                                             aae.store.get, lambda b, k, n: True)
    return aae.records[(5, peer.node_id)].outcome


def test_a_repaired_pair_is_checked_again_a_bounded_number_of_times() -> None:
    aae, ring, now = _built()
    n3 = AntiEntropy("n3", TreeStore(NodeStore(MemoryEngine(), Q), Q), aae.settings)
    for partition in range(Q):
        n3.store.build(partition)
    key = next(b"k%d" % i for i in range(1000)
               if key_partition("b", b"k%d" % i, Q) == 5)
    sibling = Sibling(b"v", Dot("n1.a", 1), VectorClock.empty(), 0)
    aae.store.put("b", key, VersionedObject((sibling,)))  # only n1 holds it
    aae.suspect(5, "n3")
    outcomes = []
    for _ in range(SUSPECT_TRIES_MAX + 2):
        effects, _ = aae.step(now, ring, 3, ALL, 1)
        if not effects:
            break
        assert _started(effects) == ("n3", 5)
        outcomes.append(_exchange(aae, n3, effects, now))
        now += 100
    assert outcomes == ["repaired"] * (SUSPECT_TRIES_MAX + 1)  # the pushes never land here
    assert (5, "n3") not in aae.suspects  # left to the rotation


def test_a_timed_out_suspect_exchange_is_queued_again() -> None:
    aae, ring, now = _built()
    aae.suspect(5, "n3")
    effects, _ = aae.step(now, ring, 3, ALL, 1)
    assert _started(effects) == ("n3", 5)
    aae.step(now + 3_000, ring, 3, ALL, 1)  # no answer: timed out, and the pair goes back
    assert aae.records[(5, "n3")].outcome == "timed out"
    assert (5, "n3") in aae.suspects


def test_a_put_that_a_replica_never_acknowledged_makes_that_pair_suspect() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    pump.advance(20_000)
    n1 = pump.nodes["n1"]
    n1.aae.suspects.clear()
    pump.silent.add("n3")  # its messages vanish: no error, no ack
    reply = pump.request("n1", PutRequest(1, "b", b"k", b"v", VectorClock.empty(), w=2))
    assert isinstance(reply, PutReply)
    ring = n1.ring
    assert ring is not None
    pair = (ring.partition_for("b", b"k"), "n3")
    assert pair not in n1.aae.suspects  # answered at W = 2: n3 may still answer
    pump.advance(n1.limits.request_timeout_ms + 10)
    current = n1.aae.current
    assert pair in n1.aae.suspects or (
        current is not None and (current.partition, current.peer) == pair)


def test_a_replica_that_fails_after_the_answer_gets_a_hint() -> None:
    pump = Pump.with_nodes(3)
    pump.settle()
    pump.advance(20_000)
    n1 = pump.nodes["n1"]
    pump.silent.add("n3")  # no ack yet, and no error either
    reply = pump.request("n1", PutRequest(1, "b", b"k", b"v", VectorClock.empty(), w=2))
    assert isinstance(reply, PutReply)
    assert n1.hints.pending() == {}
    # Then its connection breaks: the answered put is hinted for it, as an earlier failure is.
    pump._run("n1", n1.handle(PeerUnreachable("n3"), pump.now_ms, 1_000_000 + pump.now_ms))
    assert n1.hints.pending() == {"n3": 1}
    assert n1.coordinator.unconfirmed == {}


def test_exchanges_of_built_partitions_go_on_while_a_large_partition_is_still_building(
        ) -> None:
    store = TreeStore(NodeStore(MemoryEngine(), Q), Q)
    big = 5
    key = 0
    written = 0
    while written < 200:  # far more than one build step reads
        if key_partition("b", b"k%d" % key, Q) == big:
            sibling = Sibling(b"v", Dot("a", written + 1), VectorClock.empty(), 0)
            store.put("b", b"k%d" % key, VersionedObject((sibling,)))
            written += 1
        key += 1
    aae = AntiEntropy("n1", store, AaeSettings(interval_ms=2_000, build_keys_per_step=20))
    ring = _ring()
    started: list[int] = []
    for now in range(0, 1_000, 100):
        effects, used = aae.step(now, ring, 3, ALL, 2)
        assert used <= 2
        for e in effects:
            if isinstance(e, Send) and isinstance(e.msg, AaeLevelRequest):
                started.append(e.msg.partition)
                aae._finish(aae.current, now, 0, "in sync")  # type: ignore[arg-type]
        if started and big in store.building:
            break
    assert started and big not in started  # an exchange began before the big tree was done
    assert big in store.building
    reply = aae.on_level_request(AaeLevelRequest(1, big, 0, (0,)))
    assert reply.error == "tree not built"  # a peer asking about it waits too
    while big not in store.trees:
        aae.step(10_000, ring, 3, ALL, 1)
    assert store.trees[big].key_count() == 200
