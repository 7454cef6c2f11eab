"""Stream records on a pump of NodeCores: only entries flagged STREAMED are recorded, the same
records on every replica (read locally or forwarded by a node that is not a replica), service
deletes marked, reads that page and report their bounds, and retention by cap and by age."""

from __future__ import annotations

import pytest

from dynamokv.core.hashing import compose_key
from dynamokv.core.messages import StreamRecord
from dynamokv.core.replog import streams
from dynamokv.core.replog.log import SERVICE, STREAMED
from dynamokv.core.requests import CasRequest, StreamRead, StreamResult, TableWrite
from tests.core.test_tables import local
from tests.pump import Pump

BUCKET = "~t/events-1"
OTHER = "~t/other-1"
KEY = compose_key(b"\x02item")


def _settled(count: int) -> Pump:
    pump = Pump.with_nodes(count)
    pump.settle()
    pump.advance(8_000)
    return pump


def _partition(pump: Pump, bucket: str = BUCKET) -> int:
    ring = pump.nodes["n1"].ring
    assert ring is not None
    return ring.partition_for(bucket, KEY)


def _read(pump: Pump, node: str, after: int = 0, limit: int = 100,
          bucket: str = BUCKET) -> StreamResult:
    got = local(pump, node, StreamRead(_partition(pump, bucket), bucket, after, limit))
    assert isinstance(got, StreamResult), got
    return got


def _without_clock(records: list[StreamRecord]) -> list[tuple[object, ...]]:
    return [(r.index, r.bucket, r.key, r.old, r.new, r.service) for r in records]


def test_only_streamed_entries_are_recorded_the_same_on_every_replica() -> None:
    pump = _settled(3)
    local(pump, "n1", TableWrite(BUCKET, KEY, b"v1", flags=STREAMED))
    local(pump, "n2", TableWrite(BUCKET, KEY, b"v2"))  # the table had no stream then
    local(pump, "n3", TableWrite(BUCKET, KEY, b"v3", flags=STREAMED))
    local(pump, "n2", TableWrite(OTHER, KEY, b"x", flags=STREAMED))
    local(pump, "n1", CasRequest(BUCKET, KEY, lambda old: None, flags=STREAMED | SERVICE))
    pump.advance(500)  # followers learn the last commit
    first = _read(pump, "n1")
    assert [(r.old, r.new, r.service) for r in first.records] == [
        (None, b"v1", False), (b"v2", b"v3", False), (b"v3", None, True)]
    indexes = [r.index for r in first.records]
    assert indexes == sorted(indexes) and first.last >= indexes[-1] and first.trimmed == 0
    for node in ("n2", "n3"):
        assert _without_clock(_read(pump, node).records) == _without_clock(first.records)
    assert [r.new for r in _read(pump, "n2", bucket=OTHER).records] == [b"x"]


def test_reads_page_by_log_index_and_a_non_replica_forwards() -> None:
    pump = _settled(4)  # N=3 of 4 nodes: some node replicates none of a partition's log
    for i in range(5):
        local(pump, "n1", TableWrite(BUCKET, KEY, b"v%d" % i, flags=STREAMED))
    pump.advance(500)
    partition = _partition(pump)
    outsider = next(n for n, core in pump.nodes.items()
                    if not core.streams.replicates(partition))
    page = _read(pump, outsider, limit=2)
    assert [r.new for r in page.records] == [b"v0", b"v1"]
    assert page.scanned == page.records[-1].index
    rest = _read(pump, "n2", after=page.scanned, limit=100)
    assert [r.new for r in rest.records] == [b"v2", b"v3", b"v4"]
    assert rest.scanned == rest.last  # nothing left: the next read starts at the end
    bounds = _read(pump, outsider, limit=0)
    assert bounds.records == [] and bounds.last == rest.last


def test_retention_trims_beyond_the_cap_and_past_the_age(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    pump = _settled(3)
    monkeypatch.setattr(streams, "CAP_PER_PARTITION", 3)
    for i in range(6):
        local(pump, "n1", TableWrite(BUCKET, KEY, b"v%d" % i, flags=STREAMED))
    pump.advance(3_000)  # a retention pass or two on every node
    for node in ("n1", "n2", "n3"):
        got = _read(pump, node)
        assert [r.new for r in got.records] == [b"v3", b"v4", b"v5"]
        assert got.trimmed == got.records[0].index - 1
    newest = got.records[-1].index
    monkeypatch.setattr(streams, "RETENTION_MS", 1_000)
    pump.advance(3_000)
    got = _read(pump, "n2")
    # Every record is trimmed (the log also holds the partition's shard lineage entry).
    assert got.records == [] and got.trimmed == newest
