"""Cost of the Merkle anti-entropy tree (``dynamokv.core.merkle``), in process, no cluster.

Measures, on the default shape (1024 segments, fan-out 32):

- the time to build a tree of ``--keys`` keys (default 100,000) and to apply 10,000 incremental
  updates (the per-write cost a replica pays to keep its tree current);
- for 1, 10 and 100 keys that differ between two replicas of ``--keys`` keys each, what one
  side sends to find them: the tree hashes of the descent (roots, then only the children of
  differing nodes), then the ``(key, digest)`` entries of the differing segments, against the
  ``--keys`` entries a full key-by-key comparison would send.

Both sides send the same amount, so figures are per side. Every loop is bounded by the
arguments; the run is seeded and repeatable except for the timings.

Run: ``python bench/merkle_bench.py [--keys N] [--updates N] [--seed N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from collections.abc import Sequence

from dynamokv.core.merkle import MerkleTree, diff_level

BUCKET = "bench"
DIFFERENCES = (1, 10, 100)


def digest_of(value: int) -> bytes:
    """A stand-in for the caller's object digest (e.g. a hash of the version vector)."""
    return hashlib.blake2b(value.to_bytes(8, "big"), digest_size=8).digest()


def key_of(i: int) -> bytes:
    return b"key-%08d" % i


def descend(mine: MerkleTree, theirs: MerkleTree) -> tuple[list[int], int]:
    """The differing segments, and the hashes one side sent to find them (as an exchange)."""
    sent = 0
    indexes: list[int] = [0]
    for level in range(mine.levels()):
        hashes = mine.level_hashes(level, indexes)
        sent += len(hashes)
        differing = diff_level(hashes, theirs.level_hashes(level, indexes), indexes)
        if level == mine.levels() - 1 or not differing:
            return differing, sent
        indexes = [c for i in differing for c in mine.children(level, i)]
    raise AssertionError("unreachable: the loop returns at the leaf level")


def row(cells: Sequence[object], widths: Sequence[int]) -> str:
    return "  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    n_keys: int = args.keys
    rng = random.Random(args.seed)

    # ---- build ---------------------------------------------------------------------------------
    tree = MerkleTree()
    started = time.perf_counter()
    for i in range(n_keys):
        tree.insert(BUCKET, key_of(i), digest_of(i))
    tree.root()
    build_s = time.perf_counter() - started

    by_segment: list[list[int]] = [[] for _ in range(tree.segments)]
    for i in range(n_keys):
        by_segment[tree.segment_of(BUCKET, key_of(i))].append(i)
    sizes = [len(s) for s in by_segment]

    # ---- incremental updates -------------------------------------------------------------------
    current = {i: digest_of(i) for i in range(n_keys)}
    picks = [rng.randrange(n_keys) for _ in range(args.updates)]
    updated = tree.copy()
    started = time.perf_counter()
    for step, i in enumerate(picks):
        new = digest_of(n_keys + step)
        updated.update(BUCKET, key_of(i), current[i], new)
        current[i] = new
    updates_s = time.perf_counter() - started
    started = time.perf_counter()
    updated.root()
    rehash_s = time.perf_counter() - started

    print(f"tree: {tree.segments} segments, fan-out {tree.width}, {tree.levels()} levels")
    print(
        f"keys per segment: mean {statistics.fmean(sizes):.1f}, min {min(sizes)}, max {max(sizes)}"
    )
    print(f"build {n_keys:,} keys: {build_s:.3f} s ({build_s / n_keys * 1e6:.2f} us/key)")
    print(
        f"{args.updates:,} incremental updates: {updates_s:.3f} s "
        f"({updates_s / max(args.updates, 1) * 1e6:.2f} us/update), "
        f"then root(): {rehash_s * 1e3:.2f} ms"
    )
    print()

    # ---- exchange cost -------------------------------------------------------------------------
    widths = (10, 12, 10, 12, 12, 12)
    print(
        row(
            ("differing", "tree hashes", "segments", "key entries", "total sent", "full compare"),
            widths,
        )
    )
    for count in DIFFERENCES:
        theirs = tree.copy()
        for i in rng.sample(range(n_keys), min(count, n_keys)):
            theirs.update(BUCKET, key_of(i), digest_of(i), b"stale")
        segments, hashes = descend(tree, theirs)
        entries = sum(sizes[s] for s in segments)
        print(row((count, hashes, len(segments), entries, hashes + entries, n_keys), widths))


if __name__ == "__main__":
    main()
