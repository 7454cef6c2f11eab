"""What a node keeps in its data directory besides the storage engine's files.

Owns: the ring file (``ring.bin``: ring, bucket table, their versions) and the incarnation file
that makes this data directory's version-vector actor unique.
May import: stdlib, ``msgpack`` (only to read ring files older than the cluster name),
``dynamokv.wire.codec``, ``dynamokv.core``.

Both are written atomically (write a temporary file, fsync, rename, fsync the directory), so a
crash leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import msgpack

from dynamokv.core.messages import DEFAULT_CLUSTER, GossipRing
from dynamokv.core.ring import Ring
from dynamokv.errors import ProtocolError, StorageError
from dynamokv.wire.codec import TAGS, decode, encode

RING_FILE = "ring.bin"
INCARNATION_FILE = "incarnation"
CLEAN_STOP_FILE = "clean-stop"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StorageError(f"cannot write {path.name} in the data directory: {exc}") from exc


def save_ring(data_dir: Path, ring: Ring, buckets: dict[str, dict[str, Any]],
              buckets_version: int, *, cluster: str = DEFAULT_CLUSTER) -> None:
    _atomic_write(Path(data_dir) / RING_FILE,
                  encode(GossipRing(ring, buckets, buckets_version, cluster)))


def load_ring(data_dir: Path) -> tuple[Ring, dict[str, dict[str, Any]], int] | None:
    path = Path(data_dir) / RING_FILE
    if not path.exists():
        return None
    msg = _read_ring_file(path)
    return msg.ring, dict(msg.buckets), msg.buckets_version


def stored_cluster(data_dir: Path) -> str | None:
    """The cluster whose ring this data directory keeps (None: no ring yet)."""
    path = Path(data_dir) / RING_FILE
    return _read_ring_file(path).cluster if path.exists() else None


def _read_ring_file(path: Path) -> GossipRing:
    data = path.read_bytes()
    try:
        msg = decode(data)
    except ProtocolError:
        msg = decode(_legacy_ring_file(data))
    if not isinstance(msg, GossipRing):
        raise StorageError(f"{path.name} does not hold a ring; move it away to rejoin afresh")
    return msg


def _legacy_ring_file(data: bytes) -> bytes:
    """A ring file written before rings carried their cluster's name: it is of the default
    cluster (the only one there was). Anything else is returned as is, to fail as before."""
    try:
        fields = msgpack.unpackb(data)
    except Exception:
        return data
    if isinstance(fields, list) and len(fields) == 4 and fields[0] == TAGS[GossipRing]:
        return bytes(msgpack.packb([*fields, DEFAULT_CLUSTER], use_bin_type=True))
    return data


def incarnation(data_dir: Path) -> str:
    """This data directory's incarnation, as of this start.

    A wiped directory gets a new one, so the node's writes carry a new actor and can never
    re-issue a version-vector counter it issued before it lost its data (Riak's KV679). So does
    a directory whose node did not stop cleanly last time: with the engine's default sync mode
    a machine crash may have lost the last writes, counters included. A clean stop leaves a
    marker (``mark_clean_stop``) that keeps the incarnation across the next start.
    """
    data_dir = Path(data_dir)
    path = data_dir / INCARNATION_FILE
    clean = data_dir / CLEAN_STOP_FILE
    value = path.read_text().strip() if path.exists() else ""
    if not value or not clean.exists():
        value = secrets.token_hex(4)
        _atomic_write(path, value.encode())
    if clean.exists():
        clean.unlink()  # running now: only the next clean stop writes it again
    return value


def mark_clean_stop(data_dir: Path) -> None:
    """Record that the node stopped cleanly (after syncing its storage)."""
    _atomic_write(Path(data_dir) / CLEAN_STOP_FILE, b"clean\n")


__all__ = ["incarnation", "load_ring", "mark_clean_stop", "save_ring"]
