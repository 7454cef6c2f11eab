"""What is particular to each engine: sync settings, full disks and maps, threads, laziness."""

from __future__ import annotations

import errno
import subprocess
import sys
import threading
from pathlib import Path

import lmdb
import pytest

from dynamokv.errors import ConfigError, StorageError
from dynamokv.storage.lmdb_engine import LmdbEngine
from dynamokv.storage.memory import MemoryEngine
from dynamokv.storage.sqlite_engine import SqliteEngine


@pytest.mark.parametrize("mode", ["os", "fsync"])
def test_lmdb_sync_modes(mode: str, tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path, sync_mode=mode)
    try:
        assert engine._env is not None
        flags = engine._env.flags()
        assert flags["sync"] is flags["metasync"] is (mode == "fsync")
        assert engine.info.sync_mode.startswith(mode + ":")
        assert "kill -9" in LmdbEngine(tmp_path / "x").info.sync_mode
        assert engine.info.durable
    finally:
        engine.close()


def test_lmdb_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fsync"):
        LmdbEngine(tmp_path, sync_mode="never")
    with pytest.raises(ConfigError):
        LmdbEngine(tmp_path, map_size_bytes=0)
    with pytest.raises(ConfigError):
        LmdbEngine(tmp_path, max_inline_key_bytes=600)


def test_lmdb_map_full_says_what_to_do(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path, map_size_bytes=256 * 1024)
    try:
        with pytest.raises(StorageError, match="map size") as info:
            for i in range(10_000):
                engine.put(b"%d" % i, b"x" * 4096)
        assert "larger" in str(info.value)
        assert info.value.details["map_size_bytes"] == 256 * 1024
        # A failed commit applies nothing and the engine still reads.
        assert engine.get(b"0") == b"x" * 4096
    finally:
        engine.close()


def test_lmdb_disk_full_says_what_to_do(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path)
    try:
        for exc in (lmdb.DiskError("ENOSPC"), OSError(errno.ENOSPC, "No space left on device")):
            err = engine._translate("write", exc)
            assert isinstance(err, StorageError)
            assert "disk full: free space" in str(err)
            assert str(tmp_path) in str(err)
    finally:
        engine.close()


def test_lmdb_long_keys_share_an_overflow_record(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path)
    try:
        prefix = b"p" * 600
        for i in range(10):
            engine.put(prefix + bytes([i]), bytes([i]))
        assert engine.stats()["records"] == 1, "keys sharing their first 509 bytes: one record"
        engine.write_batch([(prefix + bytes([i]), None) for i in range(10)])
        assert engine.stats()["records"] == 0, "an emptied overflow record is removed"
        assert engine.is_empty()
    finally:
        engine.close()


def test_lmdb_opened_twice_says_what_to_do(tmp_path: Path) -> None:
    engine = LmdbEngine(tmp_path)
    try:
        with pytest.raises(StorageError, match="already open in this process"):
            LmdbEngine(tmp_path)
    finally:
        engine.close()
    LmdbEngine(tmp_path).close()  # fine once the first one is closed


@pytest.mark.parametrize(("mode", "level"), [("os", 1), ("fsync", 2)])
def test_sqlite_pragmas(mode: str, level: int, tmp_path: Path) -> None:
    engine = SqliteEngine(tmp_path, sync_mode=mode)
    try:
        conn = engine._live()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
        assert engine.info.sync_mode.startswith(mode + ":")
    finally:
        engine.close()
    with pytest.raises(ConfigError):
        SqliteEngine(tmp_path, sync_mode="never")


def test_sqlite_full_says_what_to_do(tmp_path: Path) -> None:
    engine = SqliteEngine(tmp_path)
    try:
        # A page quota is the portable way to make SQLite report SQLITE_FULL.
        engine._live().execute("PRAGMA max_page_count=8")
        with pytest.raises(StorageError, match="disk full: free space"):
            engine.write_batch((b"%d" % i, b"x" * 4096) for i in range(100))
        assert engine.is_empty(), "the failed batch was rolled back"
        engine.put(b"small", b"ok")
        assert engine.get(b"small") == b"ok"
    finally:
        engine.close()


@pytest.mark.parametrize("kind", ["memory", "lmdb", "sqlite"])
def test_used_from_another_thread(kind: str, tmp_path: Path) -> None:
    engine = (
        MemoryEngine()
        if kind == "memory"
        else LmdbEngine(tmp_path)
        if kind == "lmdb"
        else SqliteEngine(tmp_path)
    )
    engine.put(b"main", b"1")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(200):
                engine.put(b"t%d-%03d" % (n, i), b"v")
                assert engine.get(b"main") == b"1"
            assert len(list(engine.scan(b"t%d-" % n, b"t%d." % n))) == 200
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        assert len(list(engine.scan(b"t", b"u"))) == 600
    finally:
        engine.close()


def test_registry_imports_engines_lazily() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dynamokv.storage.registry import open_engine\n"
        "e = open_engine('memory', Path('unused'))\n"
        "assert 'lmdb' not in sys.modules and 'sqlite3' not in sys.modules, sorted(sys.modules)\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        timeout=60,
        env={"PYTHONPATH": str(src)},
    )
