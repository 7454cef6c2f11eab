"""The index outbox on a pump of NodeCores: entries flagged INDEXED are recorded on every
replica, handed out only by the partition's leader, trimmed everywhere by the leader's mark
(and not brought back by a replay), kept across restarts, never compacted away while pending
(a node that catches up from a snapshot records them too), and back-pressure past the cap."""

from __future__ import annotations

import pytest

from dynamokv.core.hashing import compose_key
from dynamokv.core.messages import ErrorReply
from dynamokv.core.node import NodeCore
from dynamokv.core.replog import outbox
from dynamokv.core.replog.lease import Timings
from dynamokv.core.replog.log import INDEXED
from dynamokv.core.replog.outbox import (
    OutboxAck,
    OutboxBatch,
    OutboxDone,
    OutboxPoll,
    OutboxRecord,
)
from dynamokv.core.requests import CasRequest, CasResult, TableWrite
from dynamokv.core.settings import CoreSettings
from tests.core.test_tables import local
from tests.pump import Pump

BUCKET = "~t/items-1"
KEY = compose_key(b"\x02item")


def _settled(count: int, settings: CoreSettings | None = None) -> Pump:
    pump = Pump.with_nodes(count, settings=settings)
    pump.settle()
    pump.advance(8_000)
    return pump


def _partition(pump: Pump, key: bytes = KEY) -> int:
    ring = pump.nodes["n1"].ring
    assert ring is not None
    return ring.partition_for(BUCKET, key)


def _leader(pump: Pump, partition: int) -> str:
    for node_id, core in pump.nodes.items():
        group = core.logs.groups.get(partition)
        if node_id not in pump.down and group is not None and group.is_leader():
            return node_id
    raise AssertionError(f"partition {partition} has no leader")


def _records(core: NodeCore, partition: int) -> list[OutboxRecord]:
    store = core.outbox.store
    assert store is not None
    return store.scan_outbox(partition, 0, 1_000)


def _poll(pump: Pump, node: str) -> OutboxBatch:
    got = local(pump, node, OutboxPoll())
    assert isinstance(got, OutboxBatch), got
    return got


def _write(pump: Pump, node: str, value: bytes | None, key: bytes = KEY,
           flags: int = INDEXED) -> None:
    assert isinstance(local(pump, node, TableWrite(BUCKET, key, value, flags=flags)), CasResult)


def test_indexed_writes_are_recorded_on_every_replica_and_handed_out_by_the_leader() -> None:
    pump = _settled(3)
    _write(pump, "n1", b"v1")
    _write(pump, "n2", b"v2", flags=0)  # the table had no global index then
    _write(pump, "n3", None)
    local(pump, "n2", CasRequest(BUCKET, KEY, lambda old: b"v3", flags=INDEXED))
    pump.advance(500)  # followers learn the last commit
    partition = _partition(pump)
    expected = [(None, b"v1"), (b"v2", None), (None, b"v3")]
    for core in pump.nodes.values():
        assert [(r.old, r.new) for r in _records(core, partition)] == expected
    leader = _leader(pump, partition)
    parts = {p.partition: p for p in _poll(pump, leader).parts}
    assert [r.new for r in parts[partition].records] == [b"v1", None, b"v3"]
    assert parts[partition].through >= parts[partition].records[-1].index
    for node in set(pump.nodes) - {leader}:
        assert partition not in {p.partition for p in _poll(pump, node).parts}


def test_the_leaders_mark_trims_every_replica_and_a_replay_does_not_bring_them_back() -> None:
    pump = _settled(3)
    for i in range(3):
        _write(pump, "n1", b"v%d" % i)
    partition = _partition(pump)
    leader = _leader(pump, partition)
    part = next(p for p in _poll(pump, leader).parts if p.partition == partition)
    stale = local(pump, leader, OutboxDone(partition, part.term - 1, part.through))
    assert stale == OutboxAck(False)  # handed out in an older term: the mark is not taken
    assert local(pump, leader, OutboxDone(partition, part.term, part.through)) == OutboxAck(True)
    pump.advance(500)
    for core in pump.nodes.values():
        assert _records(core, partition) == []
        assert core.outbox.trimmed(partition) == part.through
    follower = next(n for n in pump.nodes if n != leader)
    restarted = pump.restart(follower)  # replays its log from the base
    pump.advance(3_000)
    assert _records(restarted, partition) == []
    assert partition not in {p.partition for p in _poll(pump, _leader(pump, partition)).parts}


def test_records_outlive_a_crash_of_the_leader_and_its_successor_is_handed_them() -> None:
    pump = _settled(3)
    _write(pump, "n1", b"v1")
    _write(pump, "n2", b"v2")
    partition = _partition(pump)
    leader = _leader(pump, partition)
    pump.down.add(leader)  # killed before it indexed anything
    pump.advance(10_000)
    successor = _leader(pump, partition)
    assert successor != leader
    part = next(p for p in _poll(pump, successor).parts if p.partition == partition)
    assert [(r.old, r.new) for r in part.records] == [(None, b"v1"), (b"v1", b"v2")]
    pump.restart(leader)
    pump.advance(5_000)
    assert [r.new for r in _records(pump.nodes[leader], partition)] == [b"v1", b"v2"]


def test_compaction_and_snapshots_never_pass_the_first_pending_record() -> None:
    settings = CoreSettings(q=16, raft=Timings(log_entries_max=8, log_entries_kept=2))
    pump = _settled(3, settings)
    keys = [compose_key(b"\x02k%d" % i) for i in range(24)]
    for key in keys:
        _write(pump, "n1", b"indexed", key=key)
    for round_ in range(12):  # plenty of unflagged writes: logs long past the compaction size
        for key in keys:
            _write(pump, "n1", b"plain%d" % round_, key=key, flags=0)
    for core in pump.nodes.values():
        for partition, group in core.logs.groups.items():
            records = _records(core, partition)
            if records:
                assert group.log.base_index < records[0].index
    pump.add_node("n4")
    pump.settle()
    pump.advance(20_000)
    n4 = pump.nodes["n4"]
    assert n4.logs.snapshots_installed > 0
    mine = [p for p, g in n4.logs.groups.items() if "n4" in g.members]
    pending = {_partition(pump, key) for key in keys} & set(mine)
    assert pending
    for partition in pending:  # replayed from the held base: the pending entries recorded
        assert b"indexed" in [r.new for r in _records(n4, partition)]
    # Once marked, compaction moves on.
    for partition in range(16):
        leader = _leader(pump, partition)
        for part in _poll(pump, leader).parts:
            if part.partition == partition:
                local(pump, leader, OutboxDone(partition, part.term, part.through))
    for key in keys:
        _write(pump, "n1", b"last", key=key, flags=0)
    pump.advance(1_000)
    for core in pump.nodes.values():
        for partition in core.logs.groups:
            assert _records(core, partition) == []
            assert core.outbox.hold(partition) is None


def test_indexed_writes_are_refused_past_the_backlog_cap(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr(outbox, "BACKLOG_MAX", 2)
    pump = _settled(3)
    for i in range(3):  # admitted while the backlog is within the cap
        _write(pump, "n2", b"v%d" % i)
    refused = local(pump, "n2", TableWrite(BUCKET, KEY, b"over", flags=INDEXED))
    assert isinstance(refused, ErrorReply) and refused.code == "Overloaded"
    _write(pump, "n3", b"plain", flags=0)  # other tables' writes are not held up
    partition = _partition(pump)
    leader = _leader(pump, partition)
    assert sum(int(str(c.outbox.status()["refused_writes"])) for c in pump.nodes.values()) == 1
    part = next(p for p in _poll(pump, leader).parts if p.partition == partition)
    local(pump, leader, OutboxDone(partition, part.term, part.through))
    pump.advance(500)
    _write(pump, "n2", b"after")  # indexed again: the backlog is gone
