"""The per-partition hash tree of Merkle anti-entropy (the Dynamo paper, section 4.7).

Owns: ``key_hash`` (the stable 64-bit hash that picks a key's segment), ``encode_key`` and
``decode_key`` (the byte form of a key every hash starts from), ``MerkleTree`` (one
replica's summary of one partition, kept current write by write), ``diff_level`` (one step of an
exchange: which of the compared nodes differ) and ``differing_segments`` (a whole descent between
two local trees, for tests and the simulator).
May import: the standard library only (``hashlib``); nothing from ``dynamokv``.

Shape. The tree has a fixed number of leaves (``segments``, default 1024) and a fixed fan-out
(``width``, default 32), so ``segments`` must be a power of ``width``: the default has three
levels, the root (level 0), 32 inner nodes (level 1) and 1024 leaves (level 2). Node ``i`` of
level ``l`` has children ``i * width .. i * width + width - 1`` on level ``l + 1``. A key lives in
segment ``segment_of(bucket, key)``, picked from ``key_hash`` and nothing else.

Leaves (Tictac style, after riak's kv_index_tictactree). A leaf's hash is the XOR of
``h(bucket, key, digest)`` over the keys of its segment, where ``digest`` is whatever opaque bytes
the caller computed for the stored object (e.g. a hash of its version vector). XOR makes a write
O(1): ``update`` XORs out the old contribution and XORs in the new one, with no need to read the
segment's other keys, and makes a leaf independent of the order keys were added. Inserting and
then removing a key restores the previous leaf exactly. The price is a contract: the caller must
pass the digest the tree currently holds for a key as ``old_digest`` (``None`` when absent);
inserting the same ``(bucket, key, digest)`` twice cancels out. The hashes are not meant to resist
an adversary (the replicas trust each other), only accidental equality, which at 128 bits is
negligible.

Inner nodes are ``blake2b-128`` of their children's hashes concatenated, recomputed lazily: a
write only marks its leaf dirty, and the first read of an inner hash (``root``, ``level_hashes``)
rehashes the dirty leaves' ancestors bottom-up, each once. An empty leaf is 16 zero bytes, so the
root of an empty tree is a constant of the shape.

The exchange that uses this (both replicas of a partition compare roots, then descend only into
differing children, then compare the keys of the differing segments) is written elsewhere; see
``docs/anti-entropy.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

SEGMENTS_DEFAULT = 1024
WIDTH_DEFAULT = 32

HASH_BYTES = 16  # width of every leaf and inner hash
KEY_HASH_BITS = 64

# blake2b's personalisation separates the three uses of the hash, so that no key hash, leaf
# contribution or inner node can equal another by construction.
_PERSON_KEY = b"dynamokv/mk-key"  # at most 16 bytes each (blake2b's limit)
_PERSON_LEAF = b"dynamokv/mk-leaf"
_PERSON_NODE = b"dynamokv/mk-node"

EMPTY_LEAF = bytes(HASH_BYTES)


def _prefixed(bucket: str, key: bytes) -> bytes:
    # Length prefixes keep (bucket, key) pairs unambiguous whatever bytes they contain: with a
    # bare separator, ("a\x00b", "c") and ("a", "b\x00c") would hash alike.
    b = bucket.encode()
    return len(b).to_bytes(4, "big") + b + len(key).to_bytes(4, "big") + key


def encode_key(bucket: str, key: bytes) -> bytes:
    """The unambiguous byte form of ``(bucket, key)`` that every hash here starts from."""
    return _prefixed(bucket, key)


def decode_key(prefixed: bytes) -> tuple[str, bytes]:
    """``(bucket, key)`` back from ``encode_key``'s bytes."""
    size = int.from_bytes(prefixed[:4], "big")
    bucket = prefixed[4 : 4 + size].decode()
    return bucket, prefixed[8 + size :]


def key_hash(bucket: str, key: bytes) -> int:
    """The stable 64-bit hash of ``key`` in ``bucket`` that picks the key's segment.

    It is independent of the ring position (SHA-1 in ``core.hashing``) on purpose: every key of
    a partition shares the position's top bits, so segments cut from the position would leave
    most segments of a partition empty.
    """
    return _key_hash(_prefixed(bucket, key))


def _key_hash(prefixed: bytes) -> int:
    h = hashlib.blake2b(prefixed, digest_size=8, person=_PERSON_KEY).digest()
    return int.from_bytes(h, "big")


def _contribution(prefixed: bytes, digest: bytes) -> int:
    """``h(bucket, key, digest)``: what one stored key XORs into its leaf."""
    # The digest is last, so it needs no length prefix.
    h = hashlib.blake2b(prefixed + digest, digest_size=HASH_BYTES, person=_PERSON_LEAF).digest()
    return int.from_bytes(h, "big")


def _node_hash(children: Iterable[bytes]) -> bytes:
    return hashlib.blake2b(b"".join(children), digest_size=HASH_BYTES, person=_PERSON_NODE).digest()


def _depth(segments: int, width: int) -> int:
    """``k`` with ``width ** k == segments``, or ``ValueError``."""
    if width < 2:
        raise ValueError(f"width must be at least 2, got {width}")
    k, n = 0, 1
    while n < segments:
        n *= width
        k += 1
    if n != segments or k == 0:
        raise ValueError(f"segments ({segments}) must be a positive power of width ({width})")
    return k


class MerkleTree:
    """One replica's hash tree over the keys of one partition; see the module docstring."""

    __slots__ = ("_depth", "_dirty", "_empty", "_leaves", "_nodes", "_segments", "_width")

    def __init__(self, segments: int = SEGMENTS_DEFAULT, width: int = WIDTH_DEFAULT) -> None:
        self._segments = segments
        self._width = width
        self._depth = _depth(segments, width)  # levels below the root; leaves are level _depth
        # The empty hash of each inner level, root first: an empty tree is these constants.
        empty: list[bytes] = []
        below = EMPTY_LEAF
        for _ in range(self._depth):
            below = _node_hash([below] * width)
            empty.append(below)
        empty.reverse()
        self._empty: tuple[bytes, ...] = tuple(empty)
        # Leaves are XOR accumulators held as ints (XOR on int is one operation); inner levels
        # are bytes, root level first.
        self._leaves: list[int] = [0] * segments
        self._nodes: list[list[bytes]] = [
            [self._empty[level]] * width**level for level in range(self._depth)
        ]
        self._dirty: set[int] = set()  # leaves whose ancestors are stale

    # ---- shape ---------------------------------------------------------------------------------

    @property
    def segments(self) -> int:
        """The number of leaves."""
        return self._segments

    @property
    def width(self) -> int:
        """The fan-out of every inner node."""
        return self._width

    def levels(self) -> int:
        """The number of levels, the root's and the leaves' included."""
        return self._depth + 1

    def children(self, level: int, index: int) -> range:
        """The indexes on ``level + 1`` of the children of node ``index`` of ``level``."""
        if not 0 <= level < self._depth:
            raise ValueError(f"level {level} has no children (levels 0..{self._depth - 1} do)")
        if not 0 <= index < self._width**level:
            raise IndexError(f"no node {index} on level {level}")
        first = index * self._width
        return range(first, first + self._width)

    def segment_of(self, bucket: str, key: bytes) -> int:
        """The leaf that holds ``key`` of ``bucket``."""
        return self._segment(_prefixed(bucket, key))

    # ---- writes --------------------------------------------------------------------------------

    def update(
        self, bucket: str, key: bytes, old_digest: bytes | None, new_digest: bytes | None
    ) -> None:
        """Record that ``key``'s digest went from ``old_digest`` to ``new_digest``.

        ``None`` means absent: ``(None, d)`` adds a key, ``(d, None)`` removes it. ``old_digest``
        must be what the tree holds for the key; the tree cannot check it (see the module
        docstring). O(1): one leaf changes and is marked dirty.
        """
        if old_digest != new_digest:
            # Encoded once for all three hashes.
            self.update_encoded(_prefixed(bucket, key), old_digest, new_digest)

    def update_encoded(self, prefixed: bytes, old_digest: bytes | None,
                       new_digest: bytes | None, segment: int | None = None) -> None:
        """``update`` for a key already encoded by ``encode_key`` (callers that keep keys in
        that form, like ``core.trees``, skip encoding them again), whose ``segment`` they may
        know already too."""
        if old_digest == new_digest:
            return
        delta = 0
        if old_digest is not None:
            delta ^= _contribution(prefixed, old_digest)
        if new_digest is not None:
            delta ^= _contribution(prefixed, new_digest)
        if segment is None:
            segment = self._segment(prefixed)
        self._leaves[segment] ^= delta
        self._dirty.add(segment)

    def segment_of_encoded(self, prefixed: bytes) -> int:
        """``segment_of`` for a key already encoded by ``encode_key``."""
        return self._segment(prefixed)

    def insert(self, bucket: str, key: bytes, digest: bytes) -> None:
        """Add a key the tree does not hold yet: ``update(bucket, key, None, digest)``."""
        self.update(bucket, key, None, digest)

    def clear(self) -> None:
        """Forget every key: the tree becomes equal to a new one of the same shape."""
        self._leaves = [0] * self._segments
        self._nodes = [[self._empty[level]] * self._width**level for level in range(self._depth)]
        self._dirty.clear()

    # ---- reads ---------------------------------------------------------------------------------

    def root(self) -> bytes:
        """The root hash; equal roots mean equal contents (up to 128-bit collisions)."""
        self._rehash()
        return self._nodes[0][0]

    def level_hashes(self, level: int, indexes: Sequence[int]) -> list[bytes]:
        """The hashes of nodes ``indexes`` of ``level`` (0 is the root), in the order asked."""
        if not 0 <= level <= self._depth:
            raise ValueError(f"no level {level} (levels are 0..{self._depth})")
        count = self._width**level
        for i in indexes:
            if not 0 <= i < count:
                raise IndexError(f"no node {i} on level {level} ({count} nodes)")
        if level == self._depth:
            leaves = self._leaves
            return [leaves[i].to_bytes(HASH_BYTES, "big") for i in indexes]
        self._rehash()
        nodes = self._nodes[level]
        return [nodes[i] for i in indexes]

    def copy(self) -> MerkleTree:
        """An independent tree with the same shape and contents."""
        clone = MerkleTree.__new__(MerkleTree)
        clone._segments = self._segments
        clone._width = self._width
        clone._depth = self._depth
        clone._empty = self._empty
        clone._leaves = list(self._leaves)
        clone._nodes = [list(level) for level in self._nodes]
        clone._dirty = set(self._dirty)
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleTree):
            return NotImplemented
        # Leaves determine every inner hash, so comparing them needs no rehash.
        return (
            self._segments == other._segments
            and self._width == other._width
            and self._leaves == other._leaves
        )

    __hash__ = None  # type: ignore[assignment]  # mutable: equal trees may later differ

    def __repr__(self) -> str:
        used = sum(1 for leaf in self._leaves if leaf)
        return f"MerkleTree(segments={self._segments}, width={self._width}, non-empty={used})"

    # ---- internals -----------------------------------------------------------------------------

    def _segment(self, prefixed: bytes) -> int:
        # The top bits of the hash (multiply-shift) rather than a modulo: uniform for any
        # segment count, not only powers of two.
        return (_key_hash(prefixed) * self._segments) >> KEY_HASH_BITS

    def _rehash(self) -> None:
        """Recompute the ancestors of dirty leaves, bottom-up, each node once."""
        if not self._dirty:
            return
        width = self._width
        depth = self._depth
        leaves = self._leaves
        parents = {i // width for i in self._dirty}
        # The lowest inner level hashes leaf accumulators, which are ints.
        level = depth - 1
        row = self._nodes[level]
        for p in parents:
            first = p * width
            row[p] = _node_hash(
                leaves[i].to_bytes(HASH_BYTES, "big") for i in range(first, first + width)
            )
        while level > 0:
            below = row
            level -= 1
            row = self._nodes[level]
            parents = {p // width for p in parents}
            for p in parents:
                row[p] = _node_hash(below[p * width : (p + 1) * width])
        self._dirty.clear()


def diff_level(
    level_mine: Sequence[bytes], level_theirs: Sequence[bytes], indexes: Sequence[int]
) -> list[int]:
    """The entries of ``indexes`` whose hashes differ.

    ``level_mine[j]`` and ``level_theirs[j]`` are the two replicas' hashes of node ``indexes[j]``
    of one level (as ``level_hashes(level, indexes)`` returns them).
    """
    if not len(level_mine) == len(level_theirs) == len(indexes):
        raise ValueError(
            f"{len(level_mine)} and {len(level_theirs)} hashes for {len(indexes)} indexes"
        )
    pairs = zip(indexes, level_mine, level_theirs, strict=True)
    return [i for i, mine, theirs in pairs if mine != theirs]


def differing_segments(a: MerkleTree, b: MerkleTree) -> list[int]:
    """The segments (ascending) whose leaves differ between ``a`` and ``b``.

    It descends as an exchange would: the roots, then only the children of differing nodes, so
    it compares at most ``1 + width * (levels - 1) * d`` hashes for ``d`` differing segments.
    """
    if a.segments != b.segments or a.width != b.width:
        raise ValueError(
            f"trees of different shapes: {a.segments}/{a.width} and {b.segments}/{b.width}"
        )
    indexes: list[int] = [0]
    last = a.levels() - 1
    level = 0
    while True:
        differing = diff_level(
            a.level_hashes(level, indexes), b.level_hashes(level, indexes), indexes
        )
        if level == last or not differing:
            return differing
        indexes = [c for i in differing for c in a.children(level, i)]
        level += 1
