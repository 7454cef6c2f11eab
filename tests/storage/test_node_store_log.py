"""NodeStore's partition-log records: compaction and truncation drop exactly their range,
including ranges larger than one delete chunk (1,024 keys per engine transaction)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamokv.core.messages import LogEntry
from dynamokv.storage.base import StorageEngine
from dynamokv.storage.lmdb_engine import LmdbEngine
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.node_store import NodeStore


@pytest.fixture(params=["memory", "lmdb"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> StorageEngine:
    if request.param == "memory":
        return MemoryEngine()
    return LmdbEngine(tmp_path / "lmdb")


def _entries(first: int, last: int) -> list[LogEntry]:
    return [LogEntry(1, i, 1, "b", i.to_bytes(4, "big"), b"v") for i in range(first, last + 1)]


def test_compaction_across_chunks_keeps_only_the_tail(engine: StorageEngine) -> None:
    store = NodeStore(engine, 8)
    store.append_log(3, _entries(1, 2_600))
    store.append_log(4, _entries(1, 10))  # another group's log is left alone
    store.compact_log(3, 2_500)
    _, kept = store.load_log(3)
    assert [e.index for e in kept] == list(range(2_501, 2_601))
    assert len(store.load_log(4)[1]) == 10


def test_truncation_drops_the_suffix(engine: StorageEngine) -> None:
    store = NodeStore(engine, 8)
    store.append_log(0, _entries(1, 1_500))
    store.truncate_log(0, 200)
    assert [e.index for e in store.load_log(0)[1]] == list(range(1, 200))
    store.drop_log(0)
    assert store.load_log(0)[1] == []
