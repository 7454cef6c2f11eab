"""The index outbox key space of ``NodeStore`` on every engine: records by partition and log
index, in order, trimmed with a mark that is remembered, dropped whole, and still there when
the data directory is opened again."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamokv.core.replog.outbox import OutboxRecord, OutboxStore
from dynamokv.storage.node_store import NodeStore
from dynamokv.storage.registry import open_engine

ENGINES = ("memory", "lmdb", "sqlite")


def _record(index: int, new: bytes | None = b"v") -> OutboxRecord:
    return OutboxRecord(index, "~t/items-1", b"\x00\x01k%d" % index, None, new)


@pytest.mark.parametrize("engine", ENGINES)
def test_records_scan_in_log_order_and_trim_with_a_mark(engine: str, tmp_path: Path) -> None:
    store = NodeStore(open_engine(engine, tmp_path), 16)
    assert isinstance(store, OutboxStore)
    for index in (7, 3, 12, 300):
        store.put_outbox_record(2, _record(index, None if index == 12 else b"v%d" % index))
    store.put_outbox_record(5, _record(1))
    assert [r.index for r in store.scan_outbox(2, 0, 10)] == [3, 7, 12, 300]
    assert store.scan_outbox(2, 7, 10)[0] == _record(12, None)
    assert [r.index for r in store.scan_outbox(2, 3, 2)] == [7, 12]
    assert store.last_outbox_index(2) == 300 and store.last_outbox_index(9) == 0
    assert store.outbox_groups() == [2, 5]
    store.trim_outbox(2, 12)
    assert [r.index for r in store.scan_outbox(2, 0, 10)] == [300]
    assert store.outbox_trimmed(2) == 12 and store.outbox_trimmed(5) == 0
    store.drop_outbox(5)
    assert store.outbox_groups() == [2] and store.scan_outbox(5, 0, 10) == []
    assert store.scan_partition(2, None, 100) == []  # invisible to partition scans


@pytest.mark.parametrize("engine", ("lmdb", "sqlite"))
def test_records_and_the_mark_survive_reopening(engine: str, tmp_path: Path) -> None:
    first = open_engine(engine, tmp_path)
    store = NodeStore(first, 16)
    store.put_outbox_record(4, _record(9))
    store.put_outbox_record(4, _record(10))
    store.trim_outbox(4, 9)
    first.sync()
    first.close()
    again = NodeStore(open_engine(engine, tmp_path), 16)
    assert again.scan_outbox(4, 0, 10) == [_record(10)]
    assert again.outbox_trimmed(4) == 9
