"""A durable storage engine over stdlib ``sqlite3``, for machines where LMDB is not wanted.

Owns: ``SqliteEngine``.
May import: stdlib, ``dynamokv.storage``, ``dynamokv.errors``.

One table ``kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID``: the primary key B-tree holds the
values, and SQLite compares BLOBs with ``memcmp`` (shorter first on a tie), which is exactly
the bytewise order ``StorageEngine`` promises. The database lives in ``PATH/kv.sqlite3`` in WAL
mode (readers never block the writer, and a commit is one append to the log).

Durability (``sync_mode``):

- ``"os"`` (default): ``synchronous=NORMAL``. A commit appends its frames to the WAL file with
  ``write()`` and returns without ``fsync``; the WAL is fsynced only before each checkpoint. A
  committed write survives the death of the process (``kill -9``), because its frames are in the
  OS page cache; an OS crash or power loss may roll back the most recent commits, but never
  corrupts the database. ``sync()`` checkpoints, which fsyncs everything committed so far.
- ``"fsync"``: ``synchronous=FULL``; the WAL is fsynced at every commit, so an acknowledged write
  survives power loss.

Threads: the engine may be called from any thread, one call at a time being the expected use;
the connection is opened with ``check_same_thread=False`` and every call holds a lock, so
concurrent callers are serialised rather than corrupting the connection state.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from dynamokv.errors import ConfigError, StorageError
from dynamokv.storage._scan import check_scan_args, chunked_scan
from dynamokv.storage.base import EngineInfo

DB_FILE = "kv.sqlite3"

SYNC_MODES: dict[str, tuple[str, str]] = {
    "os": (
        "NORMAL",
        "os: a commit reaches the OS page cache (survives kill -9 of the process; an OS crash "
        "or power loss may lose the last commits, never corrupts); sync() flushes to disk",
    ),
    "fsync": ("FULL", "fsync: every commit is flushed to stable storage (survives power loss)"),
}


class SqliteEngine:
    """A ``StorageEngine`` over one SQLite database in directory ``path``."""

    def __init__(self, path: Path, *, sync_mode: str = "os") -> None:
        if sync_mode not in SYNC_MODES:
            raise ConfigError(
                f"unknown sync mode {sync_mode!r} for sqlite: use one of {', '.join(SYNC_MODES)}"
            )
        synchronous, described = SYNC_MODES[sync_mode]
        self.path = Path(path)
        self.info = EngineInfo(name="sqlite", durable=True, sync_mode=described)
        self._lock = threading.Lock()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: autocommit, so each put is its own transaction and
            # write_batch opens one explicitly; no implicit transaction is ever left open.
            conn = sqlite3.connect(
                str(self.path / DB_FILE), check_same_thread=False, isolation_level=None
            )
        except (sqlite3.Error, OSError) as exc:
            raise self._translate("open", exc) from exc
        self._conn: sqlite3.Connection | None = conn
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(
                    f"sqlite at {self.path} cannot use WAL mode (got {mode!r}): put the data "
                    "directory on a local filesystem that supports shared memory"
                )
            conn.execute(f"PRAGMA synchronous={synchronous}")
            # Another process (an operator's inspection, a stale node) may hold the write lock
            # briefly; wait rather than fail at once.
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            conn.close()
            self._conn = None
            raise self._translate("open", exc) from exc
        except StorageError:
            conn.close()
            self._conn = None
            raise

    def _translate(self, op: str, exc: BaseException) -> StorageError:
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc)
        # The primary code is the low byte of the extended one (SQLITE_FULL = 13).
        if (isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL) or "is full" in text:
            return StorageError(
                f"sqlite {op}: disk full: free space on the filesystem holding {self.path}",
                {"path": str(self.path)},
            )
        return StorageError(
            f"sqlite {op} failed on {self.path}: {text}; check the disk and the file permissions",
            {"path": str(self.path), "sqlite_error": getattr(exc, "sqlite_errorname", None)},
        )

    def _live(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise StorageError(f"sqlite engine at {self.path} is closed: open it again")
        return conn

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            conn = self._live()
            try:
                row = conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                raise self._translate("get", exc) from exc
        return None if row is None else bytes(row[0])

    def put(self, key: bytes, value: bytes) -> None:
        with self._lock:
            conn = self._live()
            try:
                conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))
            except sqlite3.Error as exc:
                raise self._translate("put", exc) from exc

    def delete(self, key: bytes) -> None:
        with self._lock:
            conn = self._live()
            try:
                conn.execute("DELETE FROM kv WHERE k = ?", (key,))
            except sqlite3.Error as exc:
                raise self._translate("delete", exc) from exc

    def write_batch(self, ops: Iterable[tuple[bytes, bytes | None]]) -> None:
        with self._lock:
            conn = self._live()
            try:
                # IMMEDIATE takes the write lock up front, so the batch cannot fail half-way
                # with SQLITE_BUSY after some statements ran.
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._translate("write", exc) from exc
            try:
                for key, value in ops:
                    if value is None:
                        conn.execute("DELETE FROM kv WHERE k = ?", (key,))
                    else:
                        conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))
                conn.execute("COMMIT")
            except BaseException as exc:
                # Nothing of the batch may stay applied, whether the engine or the caller's
                # iterable failed; the caller's own exception propagates as it is.
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.Error):
                    raise self._translate("write", exc) from exc
                raise

    def scan(
        self,
        start: bytes = b"",
        end: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            self._live()
        if not check_scan_args(start, end, limit):
            return iter(())
        return chunked_scan(self._fetch, start, end, reverse, limit)

    def _fetch(
        self, start: bytes, end: bytes | None, reverse: bool, n: int
    ) -> list[tuple[bytes, bytes]]:
        order = "DESC" if reverse else "ASC"
        if end is None:
            sql = f"SELECT k, v FROM kv WHERE k >= ? ORDER BY k {order} LIMIT ?"
            args: tuple[bytes | int, ...] = (start, n)
        else:
            sql = f"SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k {order} LIMIT ?"
            args = (start, end, n)
        with self._lock:
            conn = self._live()
            try:
                rows = conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._translate("scan", exc) from exc
        return [(bytes(k), bytes(v)) for k, v in rows]

    def is_empty(self) -> bool:
        with self._lock:
            conn = self._live()
            try:
                return conn.execute("SELECT 1 FROM kv LIMIT 1").fetchone() is None
            except sqlite3.Error as exc:
                raise self._translate("is_empty", exc) from exc

    def sync(self) -> None:
        with self._lock:
            conn = self._live()
            try:
                # A checkpoint fsyncs the WAL, copies it into the database file and fsyncs that:
                # after it, every commit so far is on stable storage whatever ``synchronous`` is.
                conn.execute("PRAGMA wal_checkpoint(FULL)").fetchall()
            except sqlite3.Error as exc:
                raise self._translate("sync", exc) from exc

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise self._translate("close", exc) from exc
