"""The default durable storage engine, over LMDB (a memory-mapped copy-on-write B+tree).

Owns: ``LmdbEngine`` and its on-disk key layout.
May import: stdlib, ``lmdb``, ``msgpack``, ``dynamokv.storage``, ``dynamokv.errors``.

Durability (``sync_mode``):

- ``"os"`` (default): the environment is opened with ``sync=False, metasync=False``. A commit
  copies the changed pages into the file with ``write()``, i.e. into the OS page cache, and
  returns without ``fsync``. A committed write therefore survives the death of the process
  (including ``kill -9``), because the kernel still holds and later flushes the pages, but NOT an
  OS crash or power loss: the last commits may be lost and, as LMDB itself warns for this mode,
  the file may be left inconsistent. ``sync()`` (``mdb_env_sync(force=1)``) makes everything
  committed so far durable. Dynamo-style replication (N copies, hinted handoff, anti-entropy)
  is what covers a single machine losing its tail.
- ``"fsync"``: ``sync=True, metasync=True``; every commit is flushed to stable storage before it
  returns, so an acknowledged write survives power loss.

On-disk keys. LMDB refuses empty keys and keys longer than ``max_key_size()`` (511 bytes in the
default build), while dynamokv's keys may be empty and, with the bucket prefix, over 2 KiB. So:

- a key ``k`` of at most ``L`` bytes (``L = max_key_size() - 2``) is stored inline, under
  ``b"\\x00" + k``;
- a longer key is stored in the *overflow group* of its first ``L`` bytes ``p``: one record under
  ``b"\\x00" + p + b"\\x00"`` whose value is a msgpack list of ``[suffix, value]`` pairs sorted
  by suffix (``suffix = k[L:]``, never empty).

Bytewise order is preserved: every key that extends ``p`` sorts after ``p`` and before any key
not starting with ``p``, and the group record sorts exactly there too (after ``\\x00 p``, before
every other record). No inline key has length ``L + 1``, so group records (stored length
``L + 2``) never collide with inline records and are recognised by their length. A group is
rewritten on every change to it, which is cheap because sharing a 509-byte prefix is rare.

Group commit (``begin_group`` / ``commit_group``). Between the two, on the thread that began the
group, every write goes into ONE open write transaction. A call (``put``, ``delete``,
``write_batch``) that fails (the map is full) still raises at once and is undone alone, as
without a group, while the calls before it stay in the group: LMDB leaves a transaction that
met an error unusable, so the group is begun again and the earlier calls' writes, which the
group keeps (references to their bytes), are applied again. (Nested child transactions would
do the same, but a write in a child copies its pages once more: ~3 us per write.) If that
replay fails too, ``commit_group`` raises. Reads on that thread go through the open
transaction, so they see the group's writes; other threads keep their own transactions and see
only committed data (a writer there waits for the group's commit). Nothing of a group is on
disk, or visible to other threads, before ``commit_group``; a failed commit loses the whole
group (its caller must not have acknowledged any of it: the node runner holds a turn's effects
until the commit, and stops on failure). ``sync`` and ``close`` commit an open group first.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import lmdb
import msgpack

from dynamokv.errors import ConfigError, StorageError
from dynamokv.storage._scan import check_scan_args, chunked_scan
from dynamokv.storage.base import EngineInfo

GiB = 1024 * 1024 * 1024
DEFAULT_MAP_SIZE = 8 * GiB

SYNC_MODES: dict[str, str] = {
    "os": "os: a commit reaches the OS page cache (survives kill -9 of the process; an OS "
    "crash or power loss may lose the last commits and can leave the file inconsistent); "
    "sync() flushes to disk",
    "fsync": "fsync: every commit is flushed to stable storage (survives power loss)",
}

_PREFIX = b"\x00"  # every record's first byte; makes the empty key storable
_GROUP_MARK = b"\x00"

_Group = list[tuple[bytes, bytes]]


class LmdbEngine:
    """A ``StorageEngine`` over one LMDB environment in directory ``path``.

    ``map_size_bytes`` is the largest the database may grow to (address space is reserved, not
    disk). ``max_inline_key_bytes`` lowers the inline/overflow threshold ``L`` (see the module
    docstring); only tests need it, to exercise overflow groups with short keys.

    Thread-safe: LMDB serialises write transactions and every read uses its own short read
    transaction.
    """

    def __init__(
        self,
        path: Path,
        *,
        sync_mode: str = "os",
        map_size_bytes: int = DEFAULT_MAP_SIZE,
        max_inline_key_bytes: int | None = None,
    ) -> None:
        if sync_mode not in SYNC_MODES:
            raise ConfigError(
                f"unknown sync mode {sync_mode!r} for lmdb: use one of {', '.join(SYNC_MODES)}"
            )
        if map_size_bytes <= 0:
            raise ConfigError(f"lmdb map size must be positive, not {map_size_bytes}")
        self.path = Path(path)
        self.map_size_bytes = map_size_bytes
        self.info = EngineInfo(name="lmdb", durable=True, sync_mode=SYNC_MODES[sync_mode])
        durable_commits = sync_mode == "fsync"
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._env: lmdb.Environment | None = lmdb.open(
                str(self.path),
                map_size=map_size_bytes,
                subdir=True,
                sync=durable_commits,
                metasync=durable_commits,
                # One cached read transaction makes each get() a renew instead of a reader-table
                # scan; it is released between operations, so it pins no pages.
                max_spare_txns=1,
            )
            # A process killed while reading (kill -9 mid-scan) leaves its reader slot behind,
            # and a stale slot pins old pages forever; clear those of dead processes now.
            self._env.reader_check()
        except (lmdb.Error, OSError) as exc:
            raise self._translate("open", exc) from exc
        limit = self._env.max_key_size() - len(_PREFIX) - len(_GROUP_MARK)
        if max_inline_key_bytes is not None:
            if not 1 <= max_inline_key_bytes <= limit:
                raise ConfigError(f"max_inline_key_bytes must be between 1 and {limit}")
            limit = max_inline_key_bytes
        self._inline_max = limit
        self._close_lock = threading.Lock()
        self._grouping = False  # between begin_group and commit_group
        self._group_thread = 0  # the thread that began the group
        self._group_txn: lmdb.Transaction[bytes] | None = None  # opened by the first write
        self._group_calls: list[list[tuple[bytes, bytes | None]]] = []  # the group's writes
        self._group_lost = False  # a failed call's writes could not be set up again

    # -- group commit ---------------------------------------------------------------------------

    def begin_group(self) -> None:
        """Start a group: this thread's writes share one transaction until ``commit_group``."""
        self._live_env()
        self._grouping = True
        self._group_thread = threading.get_ident()
        self._group_calls = []
        self._group_lost = False

    def commit_group(self) -> None:
        """Commit the group's writes (if any) and end it; ``StorageError`` if the commit failed,
        in which case none of the group's writes happened."""
        self._grouping = False
        txn, self._group_txn = self._group_txn, None
        self._group_calls = []
        if self._group_lost:
            self._group_lost = False
            if txn is not None:
                txn.abort()
            raise StorageError(f"lmdb group commit on {self.path}: writes of the group were "
                               "lost after a failed write; restart the node",
                               {"path": str(self.path)})
        if txn is None:
            return
        try:
            txn.commit()
        except (lmdb.Error, OSError) as exc:
            with contextlib.suppress(lmdb.Error):
                txn.abort()
            raise self._translate("group commit", exc) from exc

    def _group_reader(self) -> lmdb.Transaction[bytes] | None:
        """The group's open transaction, when this thread's reads must go through it."""
        if self._group_txn is not None and threading.get_ident() == self._group_thread:
            return self._group_txn
        return None

    def _group_writer(self) -> lmdb.Transaction[bytes] | None:
        """The group's transaction for a write of this thread (opened on its first write), or
        None outside a group."""
        if not self._grouping or threading.get_ident() != self._group_thread:
            return None
        if self._group_txn is None:
            self._group_txn = self._live_env().begin(write=True, buffers=False)
        return self._group_txn

    def _grouped_write(self, group: lmdb.Transaction[bytes],
                       ops: Iterable[tuple[bytes, bytes | None]]) -> None:
        """``ops`` into the group's transaction: applied together or not at all."""
        ops = list(ops)  # a generator reading the engine reads before this call writes
        try:
            for key, value in ops:
                self._apply(group, key, value)
        except BaseException:
            self._restart_group()
            raise
        self._group_calls.append(ops)

    def _restart_group(self) -> None:
        """After a failed call: a new group transaction holding the earlier calls' writes."""
        txn, self._group_txn = self._group_txn, None
        if txn is not None:
            txn.abort()
        if not self._group_calls:
            return
        try:
            fresh = self._live_env().begin(write=True, buffers=False)
        except (lmdb.Error, OSError, StorageError):
            self._group_lost = True
            return
        try:
            for call in self._group_calls:
                for key, value in call:
                    self._apply(fresh, key, value)
        except (lmdb.Error, OSError):
            fresh.abort()
            self._group_lost = True  # commit_group says so; the runner stops the node
            return
        self._group_txn = fresh

    # -- key layout ---------------------------------------------------------------------------

    def _record_key(self, key: bytes) -> tuple[bytes, bool]:
        """The record holding ``key`` and whether it is an overflow group."""
        if len(key) <= self._inline_max:
            return _PREFIX + key, False
        return _PREFIX + key[: self._inline_max] + _GROUP_MARK, True

    def _is_group(self, record_key: bytes) -> bool:
        return len(record_key) == self._inline_max + len(_PREFIX) + len(_GROUP_MARK)

    def _expand(self, record_key: bytes, record_value: bytes) -> _Group:
        """The (key, value) pairs one record holds, ascending."""
        if not self._is_group(record_key):
            return [(record_key[len(_PREFIX) :], record_value)]
        base = record_key[len(_PREFIX) : -len(_GROUP_MARK)]
        return [(base + suffix, value) for suffix, value in _unpack_group(record_value)]

    # -- plumbing ------------------------------------------------------------------------------

    def _live_env(self) -> lmdb.Environment:
        env = self._env
        if env is None:
            raise StorageError(f"lmdb engine at {self.path} is closed: open it again")
        return env

    def _translate(self, op: str, exc: BaseException) -> StorageError:
        """An engine exception as a StorageError that says what to do."""
        if isinstance(exc, lmdb.MapFullError):
            return StorageError(
                f"lmdb {op}: the database at {self.path} reached its map size of "
                f"{self.map_size_bytes} bytes: restart the node with a larger storage map size "
                "(LmdbEngine map_size_bytes), or free space by deleting data",
                {"path": str(self.path), "map_size_bytes": self.map_size_bytes},
            )
        if isinstance(exc, lmdb.DiskError) or (
            isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
        ):
            return StorageError(
                f"lmdb {op}: disk full: free space on the filesystem holding {self.path}",
                {"path": str(self.path)},
            )
        if isinstance(exc, lmdb.ReadersFullError):
            return StorageError(
                f"lmdb {op}: too many concurrent readers on {self.path}: finish open scans, "
                "or restart the node to clear stale reader slots",
                {"path": str(self.path)},
            )
        if "already open" in str(exc):
            return StorageError(
                f"lmdb {op}: {self.path} is already open in this process: close the other "
                "engine first (LMDB forbids two handles on one environment in a process)",
                {"path": str(self.path)},
            )
        return StorageError(
            f"lmdb {op} failed on {self.path}: {exc}; check the disk and the file permissions",
            {"path": str(self.path)},
        )

    # -- StorageEngine ---------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        env = self._live_env()
        group = self._group_reader()
        if group is not None:
            return self._get_in(group, key)
        if len(key) <= self._inline_max:
            # The usual case, inlined: one short read transaction (a renew of the cached one).
            try:
                with env.begin(buffers=False) as txn:
                    raw: bytes | None = txn.get(_PREFIX + key)
            except lmdb.Error as exc:
                raise self._translate("get", exc) from exc
            return raw
        try:
            with env.begin(buffers=False) as txn:
                return self._get_in(txn, key)
        except lmdb.Error as exc:
            raise self._translate("get", exc) from exc

    def _get_in(self, txn: lmdb.Transaction[bytes], key: bytes) -> bytes | None:
        record_key, grouped = self._record_key(key)
        try:
            raw: bytes | None = txn.get(record_key)
        except lmdb.Error as exc:
            raise self._translate("get", exc) from exc
        if raw is None or not grouped:
            return raw
        group = _unpack_group(raw)
        suffix = key[self._inline_max :]
        i = bisect.bisect_left(group, suffix, key=_first)
        if i < len(group) and group[i][0] == suffix:
            return group[i][1]
        return None

    def put(self, key: bytes, value: bytes) -> None:
        if self._grouping or len(key) > self._inline_max:
            self.write_batch(((key, value),))
            return
        env = self._live_env()
        try:
            with env.begin(write=True, buffers=False) as txn:
                txn.put(_PREFIX + key, value)
        except (lmdb.Error, OSError) as exc:
            raise self._translate("write", exc) from exc

    def delete(self, key: bytes) -> None:
        self.write_batch(((key, None),))

    def write_batch(self, ops: Iterable[tuple[bytes, bytes | None]]) -> None:
        env = self._live_env()
        try:
            group = self._group_writer()
            if group is not None:
                self._grouped_write(group, ops)
                return
            # One write transaction: all or nothing. If ``ops`` raises half-way the ``with``
            # aborts the transaction and the caller's exception propagates untouched.
            with env.begin(write=True, buffers=False) as txn:
                for key, value in ops:
                    self._apply(txn, key, value)
        except (lmdb.Error, OSError) as exc:
            raise self._translate("write", exc) from exc

    def _apply(self, txn: lmdb.Transaction[bytes], key: bytes, value: bytes | None) -> None:
        record_key, grouped = self._record_key(key)
        if not grouped:
            if value is None:
                txn.delete(record_key)
            else:
                txn.put(record_key, value)
            return
        raw = txn.get(record_key)
        group = _unpack_group(raw) if raw is not None else []
        suffix = key[self._inline_max :]
        i = bisect.bisect_left(group, suffix, key=_first)
        present = i < len(group) and group[i][0] == suffix
        if value is None:
            if not present:
                return
            del group[i]
        elif present:
            group[i] = (suffix, value)
        else:
            group.insert(i, (suffix, value))
        if group:
            txn.put(record_key, _pack_group(group))
        else:
            txn.delete(record_key)

    def scan(
        self,
        start: bytes = b"",
        end: bytes | None = None,
        *,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        self._live_env()
        if not check_scan_args(start, end, limit):
            return iter(())
        return chunked_scan(self._fetch, start, end, reverse, limit)

    def _fetch(
        self, start: bytes, end: bytes | None, reverse: bool, n: int
    ) -> list[tuple[bytes, bytes]]:
        """At most ``n`` pairs of ``[start, end)``, in one short read transaction."""
        env = self._live_env()
        group = self._group_reader()
        try:
            if group is not None:
                return self._fetch_in(group, start, end, reverse, n)
            with env.begin(buffers=False) as txn:
                return self._fetch_in(txn, start, end, reverse, n)
        except lmdb.Error as exc:
            raise self._translate("scan", exc) from exc

    def _fetch_in(self, txn: lmdb.Transaction[bytes], start: bytes, end: bytes | None,
                  reverse: bool, n: int) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        cursor = txn.cursor()
        if not reverse:
            if not cursor.set_range(self._record_key(start)[0]):
                return out
            for record_key, record_value in cursor.iternext():
                if not record_key.startswith(_PREFIX):
                    break
                for k, v in self._expand(record_key, record_value):
                    if end is not None and k >= end:
                        return out
                    if k >= start:
                        out.append((k, v))
                        if len(out) >= n:
                            return out
            return out
        # Reverse: the first record at or after ``end`` may be an overflow group that
        # still holds keys below ``end``, so start there and filter.
        if end is None:
            positioned = cursor.last()
        else:
            positioned = cursor.set_range(self._record_key(end)[0]) or cursor.last()
        if not positioned:
            return out
        for record_key, record_value in cursor.iterprev():
            if not record_key.startswith(_PREFIX):
                continue
            for k, v in reversed(self._expand(record_key, record_value)):
                if end is not None and k >= end:
                    continue
                if k < start:
                    return out
                out.append((k, v))
                if len(out) >= n:
                    return out
        return out

    def is_empty(self) -> bool:
        env = self._live_env()
        try:
            group = self._group_reader()
            if group is not None:
                cursor = group.cursor()
                return not cursor.set_range(_PREFIX) or not cursor.key().startswith(_PREFIX)
            with env.begin(buffers=False) as txn:
                cursor = txn.cursor()
                return not cursor.set_range(_PREFIX) or not cursor.key().startswith(_PREFIX)
        except lmdb.Error as exc:
            raise self._translate("is_empty", exc) from exc

    def sync(self) -> None:
        env = self._live_env()
        if self._group_reader() is not None:
            # What is asked to be on disk includes the group's writes so far; the group goes on.
            self.commit_group()
            self._grouping = True
        try:
            env.sync(True)
        except (lmdb.Error, OSError) as exc:
            raise self._translate("sync", exc) from exc

    def close(self) -> None:
        if self._group_reader() is not None:
            self.commit_group()
        self._grouping = False
        with self._close_lock:
            env, self._env = self._env, None
        if env is not None:
            env.close()

    def stats(self) -> dict[str, int]:
        """Page-level numbers for metrics: entries (records), depth, pages, map size."""
        env = self._live_env()
        stat = env.stat()
        info = env.info()
        return {
            "records": stat["entries"],
            "depth": stat["depth"],
            "pages": stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"],
            "page_size": stat["psize"],
            "map_size_bytes": info["map_size"],
        }


def _first(pair: tuple[bytes, bytes]) -> bytes:
    return pair[0]


def _pack_group(group: _Group) -> bytes:
    packed: bytes = msgpack.packb([list(p) for p in group], use_bin_type=True)
    return packed


def _unpack_group(raw: bytes) -> _Group:
    pairs = msgpack.unpackb(raw, raw=False, use_list=True)
    return [(bytes(s), bytes(v)) for s, v in pairs]
