"""Micro-benchmark of the wire codec: microseconds per encode and decode of typical messages.

Owns: nothing the product imports; run by hand to watch the hot path.
May import: ``dynamokv.core``, ``dynamokv.wire``.

Usage (from the repository root)::

    PYTHONPATH=src python bench/codec_bench.py [--iterations N] [--repeat R]

Each figure is the best of ``R`` runs of ``N`` calls (the minimum is the least disturbed by
other work on the machine), so the whole run is bounded: about 2 * cases * R * N calls.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

try:
    import dynamokv  # noqa: F401
except ImportError:  # run without PYTHONPATH: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dynamokv.core.messages import (
    ErrorReply,
    GetReply,
    GetRequest,
    GossipRing,
    PutReply,
    PutRequest,
    ReplicaWrite,
)
from dynamokv.core.ring import Member, Ring
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.wire.codec import decode, decode_object, encode, encode_object
from dynamokv.wire.framing import FrameDecoder, frame

NOW_MS = 1_700_000_000_000
CLOCK = VectorClock.from_entries(
    [("n1.3fa9c2d1", 17, NOW_MS), ("n2.0b1e77aa", 4, NOW_MS + 5), ("n3.c0ffee01", 9, NOW_MS + 9)]
)
VALUE = bytes(range(256)) * 4  # 1 KiB
OBJECT = VersionedObject.of(
    [
        Sibling(VALUE, Dot("n1.3fa9c2d1", 18), CLOCK, NOW_MS + 20),
        Sibling(VALUE, Dot("n2.0b1e77aa", 5), CLOCK, NOW_MS + 21),
    ]
)
MEMBERS = tuple(Member(f"n{i}", f"10.0.0.{i}:7001") for i in range(1, 6))
RING = Ring(64, tuple(f"n{1 + i % 5}" for i in range(64)), MEMBERS, 12, "n1")

MESSAGES: dict[str, Any] = {
    "GetRequest": GetRequest(123456, "users", b"user:000123456", 2, None, 5000),
    "PutRequest 1KiB, 3-entry clock": PutRequest(
        123456, "users", b"user:000123456", VALUE, CLOCK, 2, None, 5000
    ),
    "PutReply": PutReply(123456, CLOCK, 12),
    "GetReply 1KiB": GetReply(123456, (VALUE,), CLOCK, True, 12),
    "ReplicaWrite 2 siblings": ReplicaWrite(99, "users", b"user:000123456", OBJECT),
    "ErrorReply with details": ErrorReply(
        7, "QuorumNotMet", "2 of 3 needed", {"replied": ["n1"], "missing": ["n2", "n3"], "w": 2}
    ),
    "GossipRing q=64, 5 members": GossipRing(RING, {"users": {"n": 3, "r": 2, "w": 2}}, 4),
}


def per_call_us(fn: Callable[[], object], iterations: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best kept)")
    args = parser.parse_args()
    n, r = max(1, args.iterations), max(1, args.repeat)

    print(f"python {sys.version.split()[0]}, best of {r} x {n} calls, microseconds per call")
    print(f"{'case':<34}{'bytes':>7}{'encode':>9}{'decode':>9}")
    for name, msg in MESSAGES.items():
        data = encode(msg)
        assert decode(data) == msg
        enc = per_call_us(partial(encode, msg), n, r)
        dec = per_call_us(partial(decode, data), n, r)
        print(f"{name:<34}{len(data):>7}{enc:>9.2f}{dec:>9.2f}")

    stored = encode_object(OBJECT)
    assert decode_object(stored) == OBJECT
    enc = per_call_us(lambda: encode_object(OBJECT), n, r)
    dec = per_call_us(lambda: decode_object(stored), n, r)
    print(f"{'encode_object 2 siblings':<34}{len(stored):>7}{enc:>9.2f}{dec:>9.2f}")

    payload = encode(MESSAGES["PutRequest 1KiB, 3-entry clock"])
    framed = frame(payload)
    decoder = FrameDecoder(1 << 20)
    enc = per_call_us(lambda: frame(payload), n, r)
    dec = per_call_us(lambda: decoder.feed(framed), n, r)
    print(f"{'frame / FrameDecoder.feed':<34}{len(framed):>7}{enc:>9.2f}{dec:>9.2f}")


if __name__ == "__main__":
    main()
