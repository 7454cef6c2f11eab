"""Review: malformed but decodable peer messages must never make ``NodeCore.handle`` raise.

Every message below passes the wire codec's checks (non-negative ints, str, bytes), so a peer
running an older or buggy version can send it; the node must answer with an error instead of
letting an exception escape into the driver.
"""

from __future__ import annotations

from dynamokv.core.events import MessageReceived
from dynamokv.core.messages import (
    ReplicaRange,
    ReplicaRangeReply,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaScan,
)
from dynamokv.wire.codec import decode, encode
from tests.pump import Pump

BUCKET = "~t/orders-1"


def _handle(pump: Pump, node: str, src: str, msg: object) -> list[object]:
    # Round-trip through the codec first: the message really is decodable.
    msg = decode(encode(msg))
    return pump.nodes[node].handle(MessageReceived(src, msg), pump.now_ms,
                                   1_000_000 + pump.now_ms)


def test_replica_scan_with_out_of_range_partition_is_answered_with_an_error(pump3: Pump) -> None:
    q = pump3.nodes["n1"].ring.q  # type: ignore[union-attr]
    effects = _handle(pump3, "n1", "n2", ReplicaScan(7, BUCKET, q + 5, None, 10))
    replies = [e.msg for e in effects if isinstance(getattr(e, "msg", None), ReplicaRangeReply)]
    assert replies and replies[0].error


def test_replica_range_with_oversized_hash_part_is_answered_with_an_error(pump3: Pump) -> None:
    effects = _handle(pump3, "n1", "n2",
                      ReplicaRange(7, BUCKET, b"h" * 70_000, None, None, False, 10))
    replies = [e.msg for e in effects if isinstance(getattr(e, "msg", None), ReplicaRangeReply)]
    assert replies and replies[0].error


def test_replica_read_with_oversized_bucket_name_is_answered_with_an_error(pump3: Pump) -> None:
    effects = _handle(pump3, "n1", "n2", ReplicaRead(7, "b" * 300, b"k"))
    replies = [e.msg for e in effects if isinstance(getattr(e, "msg", None), ReplicaReadReply)]
    assert replies and replies[0].error
