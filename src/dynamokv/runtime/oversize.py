"""What a node answers for a message too large to travel: an error reply, not a dropped link.

Owns: ``peek`` (the message class and request id at the head of a skipped frame) and
``answer_for`` (the error answer to a message of that class).
May import: ``msgpack``, ``dynamokv.core.messages``, ``dynamokv.errors``.

Two cases use it. A peer's frame over our limit is skipped by the decoder (only its first bytes
kept) and the transport answers the request named there, so the sender fails that one request
at once instead of losing its connection and marking us down. A message of our own over the
limit is never sent: its answer is delivered locally, as if the peer had refused it. A reply that
is too large (a range reply, a replica read) gets the error form of that reply, so the waiting
request fails with a reason instead of timing out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from dynamokv.core.messages import (
    ALL_MESSAGES,
    BucketPropsRequest,
    ClusterRequest,
    ErrorReply,
    GetRequest,
    HandoffAck,
    HandoffBatch,
    HintBatch,
    HintBatchAck,
    Message,
    PutRequest,
    ReplicaRange,
    ReplicaRangeReply,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaScan,
    ReplicaWrite,
    ReplicaWriteAck,
    RingRequest,
    StatusRequest,
)

_ANSWERS: dict[type, Callable[[int, str], Message]] = {
    ReplicaRead: lambda i, e: ReplicaReadReply(i, None, e),
    ReplicaReadReply: lambda i, e: ReplicaReadReply(i, None, e),
    ReplicaWrite: lambda i, e: ReplicaWriteAck(i, e),
    HintBatch: lambda i, e: HintBatchAck(i, e),
    HandoffBatch: lambda i, e: HandoffAck(i, e),
    ReplicaRange: lambda i, e: ReplicaRangeReply(i, (), False, e),
    ReplicaScan: lambda i, e: ReplicaRangeReply(i, (), False, e),
    ReplicaRangeReply: lambda i, e: ReplicaRangeReply(i, (), False, e),
}
_CLIENT_REQUESTS = (GetRequest, PutRequest, RingRequest, StatusRequest, BucketPropsRequest,
                    ClusterRequest)
# Replies: their error form is delivered to the waiting request on this node.
REPLIES: frozenset[type] = frozenset({ReplicaReadReply, ReplicaRangeReply})


def peek(head: bytes) -> tuple[type, int] | None:
    """The class and first field (a request id) of the message whose encoding starts with
    ``head``; ``None`` when the head does not say (too short, not a message, no int id)."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(head)
    try:
        if unpacker.read_array_header() < 2:
            return None
        tag: Any = unpacker.unpack()
        first: Any = unpacker.unpack()
    except (msgpack.OutOfData, ValueError, TypeError, msgpack.ExtraData):
        return None
    if type(tag) is not int or not 0 <= tag < len(ALL_MESSAGES) or type(first) is not int:
        return None
    return ALL_MESSAGES[tag], first


def answer_for(cls: type, req_id: int, error: str) -> Message | None:
    """The error answer to a message of class ``cls`` with this id; ``None`` when it has none
    (gossip, heartbeats, anti-entropy: their senders retry by themselves)."""
    if cls in _CLIENT_REQUESTS:
        return ErrorReply(req_id, "InvalidRequest", error)
    make = _ANSWERS.get(cls)
    return make(req_id, error) if make is not None else None


def too_large(size: int, limit: int) -> str:
    return f"message of {size} bytes exceeds the frame limit of {limit} bytes"
