"""Keys to ring positions to partitions.

Owns: the hash that places a ``(bucket, key)`` on the ring, and the position → partition map.
May import: ``hashlib``, ``dynamokv.core.ids``.

The ring is SHA-1's 160-bit space (as riak), cut into Q equal partitions, Q a power of two, so the
partition of a position is its top ``log2(Q)`` bits. The bucket name is hashed with the key so
that equal keys in different buckets spread independently.
"""

from __future__ import annotations

import hashlib

RING_BITS = 160
RING_SIZE = 1 << RING_BITS


def key_position(bucket: str, key: bytes) -> int:
    """The 160-bit ring position of ``key`` in ``bucket``."""
    digest = hashlib.sha1(bucket.encode() + b"\x00" + key, usedforsecurity=False).digest()
    return int.from_bytes(digest, "big")


def partition_of_position(position: int, q: int) -> int:
    """The partition holding ``position`` on a ring of ``q`` equal partitions."""
    return position >> (RING_BITS - (q.bit_length() - 1))


def key_partition(bucket: str, key: bytes, q: int) -> int:
    """The partition of ``key`` in ``bucket`` on a ring of ``q`` partitions."""
    return partition_of_position(key_position(bucket, key), q)


def is_power_of_two(q: int) -> bool:
    return q > 0 and q & (q - 1) == 0
