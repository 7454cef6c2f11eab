"""Chunked range scans shared by every engine.

Owns: ``chunked_scan``, which turns a bounded "fetch at most n pairs" primitive into the lazy
``StorageEngine.scan`` iterator, and ``SCAN_CHUNK``.
May import: stdlib only.

Why chunks: a scan may be consumed slowly (a handoff streams a partition over the network), and
an engine read transaction held open for that long pins old pages (LMDB: the file grows because
freed pages cannot be reused; SQLite WAL: checkpoints cannot complete). So every chunk is read in
its own short transaction and nothing is held between chunks; the next chunk resumes just past the
last key handed out. The price is that a long scan is a sequence of snapshots rather than one,
which ``StorageEngine.scan`` allows ("or at least never fails because of concurrent writes").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

# Pairs read per transaction: big enough that the per-transaction cost vanishes, small enough
# that a chunk of 1 MiB values stays far below memory limits.
SCAN_CHUNK = 256

# fetch(start, end, reverse, n): at most n pairs with start <= key < end (end None: unbounded),
# ascending, or descending when reverse; fewer than n only when the range is exhausted.
Fetch = Callable[[bytes, bytes | None, bool, int], list[tuple[bytes, bytes]]]


def check_scan_args(start: bytes, end: bytes | None, limit: int | None) -> bool:
    """Validate scan arguments; False when the scan is trivially empty."""
    if limit is not None and limit < 0:
        raise ValueError(f"scan limit must be >= 0 or None, not {limit}")
    if limit == 0:
        return False
    return end is None or start < end


def chunked_scan(
    fetch: Fetch,
    start: bytes,
    end: bytes | None,
    reverse: bool,
    limit: int | None,
    chunk: int = SCAN_CHUNK,
) -> Iterator[tuple[bytes, bytes]]:
    """The lazy scan iterator over ``fetch``, one short read per ``chunk`` pairs.

    Call ``check_scan_args`` eagerly first (so bad arguments fail at the call, not at the first
    ``next``); this generator assumes the arguments are valid.
    """
    lo, hi = start, end
    remaining = limit
    while True:
        want = chunk if remaining is None else min(chunk, remaining)
        pairs = fetch(lo, hi, reverse, want)
        yield from pairs
        if len(pairs) < want:
            return
        if remaining is not None:
            remaining -= len(pairs)
            if remaining == 0:
                return
        last = pairs[-1][0]
        if reverse:
            hi = last  # end is exclusive: resume strictly below the last key
        else:
            lo = last + b"\x00"  # the smallest key strictly greater than ``last``
        if hi is not None and lo >= hi:
            return
