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


# Buckets of DynamoDB tables: keys are compose_key(hash_part, sort_part) and are placed by the
# hash part alone, so one partition key's items share replicas and sort together. Names starting
# with "~" are reserved for the system and refused from clients of the key-value API.
RESERVED_BUCKET_PREFIX = "~"
TABLE_BUCKET_PREFIX = "~t/"


def compose_key(hash_part: bytes, sort_part: bytes = b"") -> bytes:
    """The storage key of a table item: the hash part, length-prefixed, then the sort part."""
    if len(hash_part) > 0xFFFF:
        raise ValueError("hash part longer than 65535 bytes")
    return len(hash_part).to_bytes(2, "big") + hash_part + sort_part


def split_key(key: bytes) -> tuple[bytes, bytes]:
    """``(hash_part, sort_part)`` of a key made by ``compose_key``."""
    size = int.from_bytes(key[:2], "big")
    return key[2 : 2 + size], key[2 + size :]


def placement_key(bucket: str, key: bytes) -> bytes:
    """The part of ``key`` that decides its ring position."""
    if bucket.startswith(TABLE_BUCKET_PREFIX) and len(key) >= 2:
        return key[: 2 + int.from_bytes(key[:2], "big")]
    return key


def key_position(bucket: str, key: bytes) -> int:
    """The 160-bit ring position of ``key`` in ``bucket``."""
    data = bucket.encode() + b"\x00" + placement_key(bucket, key)
    digest = hashlib.sha1(data, usedforsecurity=False).digest()
    return int.from_bytes(digest, "big")


def partition_of_position(position: int, q: int) -> int:
    """The partition holding ``position`` on a ring of ``q`` equal partitions."""
    return position >> (RING_BITS - (q.bit_length() - 1))


def key_partition(bucket: str, key: bytes, q: int) -> int:
    """The partition of ``key`` in ``bucket`` on a ring of ``q`` partitions."""
    return partition_of_position(key_position(bucket, key), q)


def is_power_of_two(q: int) -> bool:
    return q > 0 and q & (q - 1) == 0
