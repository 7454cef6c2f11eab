"""The object buffer (paper 6.1) in the simulator: what a power loss may and may not take, and
the buffer never serving a value older than the engine's, under a faulty workload."""

from __future__ import annotations

from dynamokv.core.messages import BucketPropsRequest, GetReply, GetRequest, PutReply, PutRequest
from dynamokv.core.node import NodeCore
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject, sync
from dynamokv.sim.faults import FaultPlan
from dynamokv.sim.history import History
from dynamokv.sim.options import SimOptions
from dynamokv.sim.workload import BUCKET, Workload
from dynamokv.sim.world import Simulator

ADMIN = 99


class _Sink:
    def __init__(self) -> None:
        self.replies: list[object] = []

    def on_reply(self, ref: int, msg: object) -> None:
        self.replies.append(msg)

    def on_refused(self, ref: int, req_id: int) -> None:
        pass

    def on_connection_lost(self, node: str) -> None:
        pass


def _buffered_world(seed: int, faults: tuple[str, ...], **extra: object) -> Simulator:
    options = SimOptions(seed=seed, nodes=3, q=8, faults=faults, **extra)  # type: ignore[arg-type]
    sim = Simulator(seed, options)
    assert sim.bootstrap()
    admin = _Sink()
    sim.register_sink(ADMIN, admin)
    sim.client_send("n1", ADMIN, BucketPropsRequest(1, BUCKET, {"buffer": True}))
    sim.run_until(sim.now_ms + 3_000)  # the props reach every node by gossip
    cores = [n.core for n in sim.nodes.values()]
    assert all(c is not None and c.bucket_props(BUCKET).buffer for c in cores)
    return sim


def _core(sim: Simulator, node: str) -> NodeCore:
    core = sim.nodes[node].core
    assert core is not None
    return core


def test_an_acknowledged_buffered_write_survives_power_loss_of_every_other_replica() -> None:
    sim = _buffered_world(21, ("power",))
    sink = _Sink()
    sim.sink = sink
    sim.client_send("n1", 1, PutRequest(1, BUCKET, b"cart", b"book", VectorClock.empty(), w=3))
    sim.run_while(lambda: not sink.replies, sim.now_ms + 1_000)
    assert isinstance(sink.replies[-1], PutReply)
    # n1 coordinated and wrote durably; n2 and n3 acknowledged from their buffers.
    assert sim.nodes["n1"].disk.unsynced() == []
    assert sim.nodes["n1"].disk.peek(BUCKET, b"cart") is not None
    for node in ("n2", "n3"):
        assert sim.nodes[node].disk.peek(BUCKET, b"cart") is None
        assert _core(sim, node).buffer.get(BUCKET, b"cart") is not None
    for node in ("n2", "n3", "n1"):  # every node loses power, the durable one last
        sim.crash(node, power=True)
    for node in ("n2", "n3"):
        assert sim.nodes[node].disk.peek(BUCKET, b"cart") is None  # their copies are gone
    for node in ("n1", "n2", "n3"):
        sim.restart(node)
    sim.run_until(sim.now_ms + 3_000)
    sim.client_send("n2", 1, GetRequest(2, BUCKET, b"cart", r=3))
    sim.run_while(lambda: not isinstance(sink.replies[-1], GetReply), sim.now_ms + 2_000)
    reply = sink.replies[-1]
    assert isinstance(reply, GetReply) and reply.values == (b"book",)
    assert sim.violations == [] and sim.errors == []


def test_without_the_durable_copy_the_same_power_loss_loses_the_write() -> None:
    """The control: a write only in buffers (a repair, no coordinator copy) is lost."""
    sim = _buffered_world(22, ("power",))
    core = _core(sim, "n2")
    core.merge_into_store(BUCKET, b"k", VersionedObject(
        (Sibling(b"v", Dot("x", 1), VectorClock.empty(), 0),)))
    assert core.buffer.get(BUCKET, b"k") is not None
    sim.crash("n2", power=True)
    assert sim.nodes["n2"].disk.peek(BUCKET, b"k") is None


def _buffer_violations(sim: Simulator) -> list[str]:
    """Every buffered value must descend what the engine holds for its key."""
    found = []
    for node_id, node in sim.nodes.items():
        if node.core is None:
            continue
        for bucket, key, obj in node.core.buffer.buffered_items():
            stored = node.disk.peek(bucket, key)
            if sync(stored, obj) != obj:
                found.append(f"{node_id} buffers {bucket}/{key!r} older than its engine")
    return found


def test_the_buffer_never_serves_a_value_older_than_the_engine_under_faults() -> None:
    sim = _buffered_world(23, ("crash", "power", "loss", "reorder", "join"),
                          clients=4, keys=3, workload_ms=6_000)
    workload = Workload(sim, sim.options, History())
    sim.sink = workload
    end = sim.now_ms + sim.options.workload_ms
    workload.start(end)
    plan = FaultPlan(sim, sim.options)
    plan.start(end)
    violations: list[str] = []
    flushed = 0
    while sim.now_ms < end and sim.step():
        violations.extend(_buffer_violations(sim))
        flushed = max(flushed, sum(n.core.buffer.flushed_objects for n in sim.nodes.values()
                                   if n.core is not None))
    plan.stop()
    assert violations == []
    assert flushed > 0  # the workload did go through the buffer
    assert sim.errors == []
