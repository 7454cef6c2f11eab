"""LmdbEngine's group commit: one write transaction for many calls, read-your-writes inside it,
nothing visible elsewhere before the commit, and a failing call undone alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dynamokv.errors import StorageError
from dynamokv.storage.lmdb_engine import LmdbEngine


def _other_thread(fn):  # type: ignore[no-untyped-def]
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_a_group_reads_its_own_writes_and_others_see_them_only_after_the_commit(
        tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path / "db")
    engine.put(b"a", b"old")
    engine.begin_group()
    engine.put(b"a", b"new")
    engine.write_batch([(b"b", b"1"), (b"c", b"2")])
    engine.delete(b"c")
    assert engine.get(b"a") == b"new"
    assert list(engine.scan(b"", None)) == [(b"a", b"new"), (b"b", b"1")]
    assert _other_thread(lambda: engine.get(b"a")) == b"old"
    assert _other_thread(lambda: list(engine.scan(b"", None))) == [(b"a", b"old")]
    engine.commit_group()
    assert _other_thread(lambda: list(engine.scan(b"", None))) == [(b"a", b"new"), (b"b", b"1")]
    engine.close()
    reopened = LmdbEngine(tmp_path / "db")
    assert list(reopened.scan(b"", None)) == [(b"a", b"new"), (b"b", b"1")]
    reopened.close()


def test_a_group_that_is_never_committed_leaves_nothing_on_disk_after_a_crash(
        tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path / "db")
    engine.begin_group()
    engine.put(b"k", b"v")
    # A crash before the commit: the open transaction dies with the process.
    assert engine._group_txn is not None
    engine._group_txn.abort()
    engine._group_txn = None
    engine._grouping = False
    assert engine.get(b"k") is None
    engine.close()


def test_a_write_that_fails_in_a_group_is_undone_alone(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path / "db", map_size_bytes=256 * 1024)
    engine.begin_group()
    engine.put(b"first", b"x" * 100)
    with pytest.raises(StorageError, match="map size"):
        engine.write_batch((b"big%d" % i, b"y" * 4000) for i in range(200))
    assert engine.get(b"big0") is None
    engine.put(b"second", b"z")
    engine.commit_group()
    assert list(engine.scan(b"", None)) == [(b"first", b"x" * 100), (b"second", b"z")]
    engine.close()


def test_sync_commits_the_group_and_the_group_goes_on(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path / "db")
    engine.begin_group()
    engine.put(b"a", b"1")
    engine.sync()
    assert _other_thread(lambda: engine.get(b"a")) == b"1"
    engine.put(b"b", b"2")
    assert _other_thread(lambda: engine.get(b"b")) is None
    engine.commit_group()
    assert _other_thread(lambda: engine.get(b"b")) == b"2"
    engine.close()


def test_close_commits_an_open_group(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path / "db")
    engine.begin_group()
    engine.put(b"a", b"1")
    engine.close()
    reopened = LmdbEngine(tmp_path / "db")
    assert reopened.get(b"a") == b"1"
    reopened.close()


def test_overflow_keys_work_in_a_group(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path / "db", max_inline_key_bytes=4)
    engine.begin_group()
    engine.put(b"abcdXY", b"1")
    engine.put(b"abcdXZ", b"2")
    engine.delete(b"abcdXY")
    assert engine.get(b"abcdXZ") == b"2"
    assert engine.get(b"abcdXY") is None
    engine.commit_group()
    assert list(engine.scan(b"", None)) == [(b"abcdXZ", b"2")]
    engine.close()
