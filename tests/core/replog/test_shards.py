"""Stream shard rolls: the decision (genesis, membership, period), the lineage kept within
retention, and on a pump of NodeCores the roll written in the log so that every replica reads
the same lineage at the same log position, after a restart and after a ring move too."""

from __future__ import annotations

import pytest

from dynamokv.core.hashing import compose_key, key_partition
from dynamokv.core.replog.lease import Timings
from dynamokv.core.replog.log import STREAMED
from dynamokv.core.replog.shards import (
    SHARDS_BUCKET,
    Lineage,
    lineage_key,
    roll_due,
    rolled,
)
from dynamokv.core.requests import StreamRead, StreamResult, TableWrite
from dynamokv.core.settings import CoreSettings
from tests.core.replog.test_streams import BUCKET, KEY, _partition
from tests.core.test_tables import local
from tests.pump import Pump

HOUR = 3600 * 1000


def test_roll_due_names_genesis_membership_and_period() -> None:
    assert roll_due(Lineage(), 0, 0, HOUR, 0) == "genesis"
    lineage = Lineage(10, ((0, 5_000),))
    assert roll_due(lineage, 3, 5_000 + HOUR - 1, HOUR, 9) == ""
    assert roll_due(lineage, 10, 5_000, HOUR, 9) == ""  # the change it already follows
    assert roll_due(lineage, 11, 5_000, HOUR, 9) == "membership"
    assert roll_due(lineage, 3, 5_000 + HOUR, HOUR, 9) == "period"
    rolled_at_20 = Lineage(20, ((0, 5_000), (20, 6_000)))
    assert roll_due(rolled_at_20, 3, 6_000 + HOUR, HOUR, 9) == ""  # no record: not closed
    assert roll_due(rolled_at_20, 25, 6_000, HOUR, 9) == "membership"  # a move closes it


def test_rolled_opens_a_shard_at_the_entry_and_drops_those_closed_past_retention() -> None:
    genesis = rolled(Lineage(), "genesis", 7, 1_000, HOUR)
    assert genesis == Lineage(7, ((0, 1_000),)) and genesis.starts() == [0]
    one = rolled(genesis, "period", 20, 2_000, HOUR)
    two = rolled(one, "membership", 30, 3_000, HOUR)
    assert two.starts() == [0, 20, 30] and two.written_at == 30
    assert (two.end_of(0), two.end_of(20), two.end_of(30)) == (20, 30, None)
    assert (two.closed_ms(0), two.closed_ms(20), two.closed_ms(30)) == (2_000, 3_000, None)
    # Shard 0 closed at 2000: past a retention of 1000 at 3001+; shard 20 closed at 3000.
    later = rolled(two, "period", 40, 3_500, 1_000)
    assert later.starts() == [20, 30, 40]
    assert rolled(later, "period", 50, 10_000, 1_000).starts() == [40, 50]


def test_lineage_encoding_round_trips_and_refuses_malformed_bytes() -> None:
    lineage = Lineage(30, ((0, 1_000), (20, 2_000), (30, 3_000)))
    assert Lineage.decode(lineage.encode()) == lineage
    assert Lineage.decode(b"") == Lineage() and Lineage.decode(None) == Lineage()
    with pytest.raises(ValueError):
        Lineage.decode(lineage.encode()[:-1])


def test_each_partition_keeps_its_lineage_in_that_partition() -> None:
    for q in (8, 64, 1024):
        keys = {lineage_key(p, q) for p in range(q)}
        assert len(keys) == q
        assert all(key_partition(SHARDS_BUCKET, lineage_key(p, q), q) == p for p in range(q))


# ---- on a pump ----------------------------------------------------------------------------

ROLL_MS = 5_000


def _pump(count: int, roll_ms: int = ROLL_MS, raft: Timings | None = None) -> Pump:
    pump = Pump.with_nodes(count, settings=CoreSettings(
        q=16, stream_shard_roll_ms=roll_ms, raft=raft or Timings()))
    pump.settle()
    pump.advance(8_000)
    return pump


def _read(pump: Pump, node: str, after: int = 0) -> StreamResult:
    got = local(pump, node, StreamRead(_partition(pump), BUCKET, after, 1000))
    assert isinstance(got, StreamResult), got
    return got


def _write(pump: Pump, values: range) -> None:
    for i in values:
        local(pump, "n1", TableWrite(BUCKET, KEY, b"v%d" % i, flags=STREAMED))


def _lineages(pump: Pump) -> set[Lineage]:
    """The lineage of the partition on every replica that replicates it."""
    group = _partition(pump)
    return {core.streams.lineage(group) for core in pump.nodes.values()
            if core.streams.replicates(group)}


def test_a_period_roll_is_one_log_entry_every_replica_reads_the_same() -> None:
    pump = _pump(3)
    _write(pump, range(3))
    pump.advance(1_500)  # the leader writes the genesis lineage: no shard closes
    (genesis,) = _lineages(pump)
    assert genesis.starts() == [0]
    _write(pump, range(3, 6))
    pump.advance(ROLL_MS)
    (lineage,) = _lineages(pump)
    assert len(lineage.starts()) == 2
    child = lineage.starts()[1]
    _write(pump, range(6, 9))
    pump.advance(500)
    for node in ("n1", "n2", "n3"):
        got = _read(pump, node)
        assert Lineage.decode(got.shards) == lineage
        parent = [r.new for r in got.records if r.index <= child]
        assert parent == [b"v%d" % i for i in range(6)]
        assert [r.new for r in got.records if r.index > child] == [b"v6", b"v7", b"v8"]
    restarted = pump.restart("n2")  # the lineage is an applied item: it outlives a restart
    pump.advance(2_000)
    assert restarted.streams.lineage(_partition(pump)).starts()[:2] == lineage.starts()


def _one_key_per_partition(q: int) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    i = 0
    while len(keys) < q:
        key = compose_key(b"k%d" % i)
        keys.setdefault(key_partition(BUCKET, key, q), key)
        i += 1
    return keys


def test_a_ring_move_rolls_the_shard_of_every_partition_whose_group_changed() -> None:
    # No period roll in this test, only membership ones; logs compact early, so the joining
    # node catches up from snapshots, which carry the lineage it never saw written.
    pump = _pump(3, roll_ms=3600_000, raft=Timings(log_entries_max=8, log_entries_kept=2))
    keys = _one_key_per_partition(16)
    for key in keys.values():
        local(pump, "n1", TableWrite(BUCKET, key, b"before", flags=STREAMED))
    pump.advance(1_500)  # genesis everywhere
    for key in keys.values():
        for _ in range(8):
            local(pump, "n1", TableWrite(BUCKET, key, b"filler"))
    geneses = {g: pump.nodes["n1"].streams.lineage(g) for g in keys}
    assert all(lineage.starts() == [0] for lineage in geneses.values())
    pump.add_node("n4")
    pump.settle()
    pump.advance(3_000)
    for key in keys.values():
        local(pump, "n2", TableWrite(BUCKET, key, b"after", flags=STREAMED))
    pump.advance(2_000)
    moved = 0
    for group, key in keys.items():
        leader = next(c for c in pump.nodes.values()
                      if group in c.logs.groups and c.logs.groups[group].is_leader())
        replicas = [pump.nodes[m] for m in leader.logs.groups[group].members]
        lineages = {c.streams.lineage(group) for c in replicas}
        assert len(lineages) == 1, group  # every replica: the same lineage
        (lineage,) = lineages
        config = max(c.logs.groups[group].log.config_index for c in replicas)
        changed = config > geneses[group].written_at
        assert len(lineage.starts()) >= 2 if changed else lineage.starts() == [0]
        moved += changed
        got = local(pump, "n4", StreamRead(group, BUCKET, 0, 1000))
        assert isinstance(got, StreamResult) and Lineage.decode(got.shards) == lineage
        # Through any node, every record: n4 holds them only from its snapshot on, so a read
        # from before that is answered by another replica, which holds every one.
        assert [r.new for r in got.records if r.key == key] == [b"before", b"after"], group
        for replica in replicas:
            if replica.node_id != "n4":
                records = replica.streams.read_local(group, BUCKET, 0, 1000)[3]
                assert [r.new for r in records if r.key == key] == [b"before", b"after"]
        # No record sits on a shard boundary: each belongs to exactly one shard.
        assert not {r.index for r in got.records} & set(lineage.starts())
    assert moved > 0  # adding a fourth node moved some partitions
    assert pump.nodes["n4"].logs.snapshots_installed > 0
