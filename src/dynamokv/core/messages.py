"""Every message that crosses a socket, as frozen dataclasses (no encoding here).

Owns: node ↔ node replica traffic, ring and gossip messages, and ``ALL_MESSAGES`` (the wire
tags) over them and the client ↔ node messages of :mod:`dynamokv.core.client_messages`.
May import: ``dynamokv.core.vclock``, ``dynamokv.core.versioned``, ``dynamokv.core.ring``,
``dynamokv.core.client_messages``.

Encoding lives in ``dynamokv.wire.codec``, which gives each class here a stable numeric tag; add
new messages at the end of ``ALL_MESSAGES`` and never renumber. Every message, the client ones
included, is imported from here.

Request ids are chosen by the sender and echoed in the reply; they are unique per sender only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dynamokv.core.client_messages import (
    BucketPropsReply as BucketPropsReply,
)
from dynamokv.core.client_messages import (
    BucketPropsRequest as BucketPropsRequest,
)
from dynamokv.core.client_messages import (
    ErrorReply as ErrorReply,
)
from dynamokv.core.client_messages import (
    GetReply as GetReply,
)
from dynamokv.core.client_messages import (
    GetRequest as GetRequest,
)
from dynamokv.core.client_messages import (
    PutReply as PutReply,
)
from dynamokv.core.client_messages import (
    PutRequest as PutRequest,
)
from dynamokv.core.client_messages import (
    RingReply as RingReply,
)
from dynamokv.core.client_messages import (
    RingRequest as RingRequest,
)
from dynamokv.core.client_messages import (
    StatusReply as StatusReply,
)
from dynamokv.core.client_messages import (
    StatusRequest as StatusRequest,
)
from dynamokv.core.ring import Ring
from dynamokv.core.versioned import VersionedObject

# The cluster a node belongs to unless configured otherwise; peers of other clusters are refused.
DEFAULT_CLUSTER = "dynamokv"

# ---- node -> node ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """First frame on a connection a node opens to a peer: who is talking."""

    node_id: str
    ring_version: int = 0
    cluster: str = DEFAULT_CLUSTER  # a peer of another cluster is refused at once


@dataclass(frozen=True, slots=True)
class ReplicaRead:
    """Read a replica's copy; ``hint_for`` names the down primary a fallback stands in for."""

    req_id: int
    bucket: str
    key: bytes
    hint_for: str = ""


@dataclass(frozen=True, slots=True)
class ReplicaReadReply:
    req_id: int
    obj: VersionedObject | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class ReplicaWrite:
    """Merge ``obj`` into the replica's copy; ``ack`` false for fire-and-forget read repair."""

    req_id: int
    bucket: str
    key: bytes
    obj: VersionedObject
    ack: bool = True
    hint_for: str = ""  # non-empty: we are a fallback; keep it as a hint for this node


@dataclass(frozen=True, slots=True)
class ReplicaWriteAck:
    req_id: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class CoordinatePut:
    """A non-replica hands a client's put to a replica to coordinate (the paper's forward)."""

    req_id: int
    request: PutRequest


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A node asks to be added to the cluster (sent to a seed, forwarded to the claimant)."""

    node_id: str
    address: str
    http_address: str = ""
    metrics_address: str = ""
    staged: bool = False  # stage for `cluster plan/commit` instead of joining at once
    cluster: str = DEFAULT_CLUSTER  # the cluster the joiner means to join


@dataclass(frozen=True, slots=True)
class GossipRing:
    """Periodic exchange of rings and bucket properties; receivers keep the newer."""

    ring: Ring
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets_version: int = 0
    cluster: str = DEFAULT_CLUSTER  # receivers of another cluster never merge this ring


# ---- issue 3: hints, handoff, anti-entropy, membership, heartbeats ---------------------------


@dataclass(frozen=True, slots=True)
class KeyObject:
    """One key and its object, as carried in batches (hint replay, handoff)."""

    bucket: str
    key: bytes
    obj: VersionedObject


@dataclass(frozen=True, slots=True)
class KeyDigest:
    """One key and the digest of its object (anti-entropy key comparison)."""

    bucket: str
    key: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """Heartbeat; every message counts as one, this one is for otherwise quiet peers."""

    seq: int
    ring_version: int = 0


@dataclass(frozen=True, slots=True)
class HintBatch:
    """A fallback hands hinted writes back to the node they were meant for."""

    batch_id: int
    items: tuple[KeyObject, ...]


@dataclass(frozen=True, slots=True)
class HintBatchAck:
    batch_id: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class HandoffBatch:
    """Ownership transfer: objects of ``partition`` for a node that now replicates them."""

    xfer_id: int
    partition: int
    items: tuple[KeyObject, ...]


@dataclass(frozen=True, slots=True)
class HandoffAck:
    xfer_id: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class AaeLevelRequest:
    """Anti-entropy: the hashes of ``indexes`` at ``level`` of the peer's tree of ``partition``."""

    req_id: int
    partition: int
    level: int
    indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AaeLevelReply:
    req_id: int
    hashes: tuple[bytes, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class AaeKeysRequest:
    """Anti-entropy: every key and object digest in ``segments`` of the peer's ``partition``."""

    req_id: int
    partition: int
    segments: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AaeKeysReply:
    req_id: int
    keys: tuple[KeyDigest, ...]
    error: str = ""


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    """Membership administration, answered by the claimant (riak-admin cluster ...).

    ``action``: "join" (stage ``node`` at ``address``), "leave" (stage ``node``'s leave),
    "plan" (show staged changes and the transfers they cause), "commit", "clear".
    """

    req_id: int
    action: str
    node: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True)
class ClusterReply:
    req_id: int
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeaveComplete:
    """A leaving node tells the claimant it has handed everything off."""

    node_id: str


# ---- range reads for tables; the Paxos messages are of the retired per-key Paxos (their wire
# tags stay reserved; a node ignores them) --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplicaRange:
    """Objects of one table partition key, ``start <= sort part < end`` (None: unbounded)."""

    req_id: int
    bucket: str
    hash_part: bytes
    start: bytes | None
    end: bytes | None
    reverse: bool
    limit: int


@dataclass(frozen=True, slots=True)
class ReplicaScan:
    """Objects of ``bucket`` in ring partition ``partition`` after key ``after``."""

    req_id: int
    bucket: str
    partition: int
    after: bytes | None
    limit: int


@dataclass(frozen=True, slots=True)
class ReplicaRangeReply:
    """``more``: the replica stopped at ``limit`` and may hold keys past the last one."""

    req_id: int
    items: tuple[KeyObject, ...]
    more: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class PaxosPrepare:
    req_id: int
    bucket: str
    key: bytes
    ballot_ms: int
    ballot_node: str


@dataclass(frozen=True, slots=True)
class PaxosPromise:
    """``ok``: promised. Carries the acceptor's in-flight proposal and its current object."""

    req_id: int
    ok: bool
    promised_ms: int
    promised_node: str
    accepted_ms: int
    accepted_node: str
    accepted: VersionedObject | None
    committed_ms: int
    committed_node: str
    current: VersionedObject | None
    error: str = ""


@dataclass(frozen=True, slots=True)
class PaxosPropose:
    req_id: int
    bucket: str
    key: bytes
    ballot_ms: int
    ballot_node: str
    obj: VersionedObject


@dataclass(frozen=True, slots=True)
class PaxosAccepted:
    req_id: int
    ok: bool
    promised_ms: int
    promised_node: str
    error: str = ""


@dataclass(frozen=True, slots=True)
class PaxosCommit:
    req_id: int
    bucket: str
    key: bytes
    ballot_ms: int
    ballot_node: str
    obj: VersionedObject


@dataclass(frozen=True, slots=True)
class PaxosCommitAck:
    req_id: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class HandoffIdle:
    """A node tells the claimant it has nothing left to hand off under ``ring_version``; once
    every member has, the claimant forgets the ring's previous owners."""

    node_id: str
    ring_version: int


# ---- replicated logs of table partitions (core/replog) -----------------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry of a partition's log. ``kind``: 0 no-op, 1 put (``value`` None: delete),
    2 configuration (``members``: the group's voters from this entry on)."""

    term: int
    index: int
    kind: int
    bucket: str = ""
    key: bytes = b""
    value: bytes | None = None
    members: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class RaftVote:
    """A (pre-)vote request for ``term`` of ``group`` (a ring partition). ``transfer``: the
    leader handed over on purpose, so voters need not wait out its lease."""

    group: int
    term: int
    last_index: int
    last_term: int
    pre_vote: bool
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class RaftVoteReply:
    """``removed``: the voter's committed configuration leaves the candidate out."""

    group: int
    term: int
    granted: bool
    pre_vote: bool
    removed: bool = False


@dataclass(frozen=True, slots=True)
class RaftAppend:
    """Entries after ``prev_index`` (empty: a heartbeat); ``seq`` is echoed for the lease."""

    group: int
    term: int
    prev_index: int
    prev_term: int
    entries: tuple[LogEntry, ...]
    commit: int
    seq: int


@dataclass(frozen=True, slots=True)
class RaftAppendReply:
    """``match``: the follower's log agrees with the leader's up to here (on failure: a hint
    of where to retry from)."""

    group: int
    term: int
    success: bool
    match: int
    seq: int


@dataclass(frozen=True, slots=True)
class RaftTimeoutNow:
    """The leader hands leadership of ``group`` to the receiver: campaign at once."""

    group: int
    term: int


@dataclass(frozen=True, slots=True)
class RaftSnapshotChunk:
    """Part of a partition's applied state at ``base_index`` (the first chunk clears the
    receiver's copy; ``done`` on the last). Items are live values of log-managed buckets."""

    group: int
    term: int
    snapshot_id: int
    base_index: int
    base_term: int
    members: tuple[bytes, ...]
    items: tuple[KeyObject, ...]
    first: bool
    done: bool


@dataclass(frozen=True, slots=True)
class RaftSnapshotAck:
    group: int
    term: int
    snapshot_id: int
    done: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class LogWrite:
    """Forwarded table write: sequence it in ``bucket``/``key``'s partition log. With
    ``conditional``, apply only if the item is still ``expected`` (``None``: absent)."""

    req_id: int
    bucket: str
    key: bytes
    value: bytes | None
    conditional: bool = False
    expected: bytes | None = None
    timeout_ms: int = 0
    refuse_prefix: bytes = b""  # see ``TableWrite``
    flags: int = 0  # put flags of the entry (``replog.log.STREAMED``, ``SERVICE``)


@dataclass(frozen=True, slots=True)
class LogRead:
    """Forwarded strongly consistent read of one item, served by its partition's leader."""

    req_id: int
    bucket: str
    key: bytes
    latest: bool = False  # include entries not yet committed (a conditional write's base)
    consistent: bool = True  # False: any replica answers from its applied state


@dataclass(frozen=True, slots=True)
class LogRange:
    """Forwarded strongly consistent range read of one table partition key."""

    req_id: int
    bucket: str
    hash_part: bytes
    start: bytes | None
    end: bytes | None
    reverse: bool
    limit: int


@dataclass(frozen=True, slots=True)
class LogScan:
    """Forwarded scan of ``bucket`` in ring partition ``partition`` after key ``after``,
    answered by the partition's leader from its applied state."""

    req_id: int
    bucket: str
    partition: int
    after: bytes | None
    limit: int
    consistent: bool = False  # only under the leader's lease (a ConsistentRead Scan)


@dataclass(frozen=True, slots=True)
class LogReply:
    """Answer to ``LogWrite``/``LogRead``/``LogRange``: ``value`` is the item (reads), the
    item's current value (a failed condition), or the old value (writes). ``code`` empty:
    success; ``ConditionFailed``, ``Refused`` (the item holds the write's refused prefix),
    ``NotLeader`` (``leader`` names whom to ask) or an error code otherwise."""

    req_id: int
    code: str
    value: bytes | None = None
    leader: str = ""
    message: str = ""
    items: tuple[KeyObject, ...] = ()
    more: bool = False


@dataclass(frozen=True, slots=True)
class StreamFetch:
    """Stream records of ``bucket`` in partition ``group`` after log index ``after``, from a
    replica of the partition (``limit`` 0: only the bounds)."""

    req_id: int
    group: int
    bucket: str
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One stream record: an applied put entry flagged ``STREAMED`` (images are the stored
    item values; ``wall_ms`` the applying replica's clock; ``service``: a TTL delete)."""

    index: int
    bucket: str
    key: bytes
    old: bytes | None
    new: bytes | None
    wall_ms: int
    service: bool


@dataclass(frozen=True, slots=True)
class StreamFetchReply:
    """Answer to ``StreamFetch``: ``code`` empty on success; ``trimmed``/``last``/``scanned``
    as in ``requests.StreamResult``."""

    req_id: int
    code: str
    message: str = ""
    trimmed: int = 0
    last: int = 0
    scanned: int = 0
    records: tuple[StreamRecord, ...] = ()
    shards: bytes = b""  # the partition's shard lineage, as in ``requests.StreamResult``


CLIENT_REQUESTS = (GetRequest, PutRequest, RingRequest, StatusRequest, BucketPropsRequest,
                   ClusterRequest)
CLIENT_REPLIES = (GetReply, PutReply, RingReply, StatusReply, BucketPropsReply, ErrorReply,
                  ClusterReply)

# Wire tags are positions in this tuple: append only.
ALL_MESSAGES: tuple[type, ...] = (
    GetRequest,
    PutRequest,
    RingRequest,
    StatusRequest,
    BucketPropsRequest,
    GetReply,
    PutReply,
    RingReply,
    StatusReply,
    BucketPropsReply,
    ErrorReply,
    Hello,
    ReplicaRead,
    ReplicaReadReply,
    ReplicaWrite,
    ReplicaWriteAck,
    CoordinatePut,
    JoinRequest,
    GossipRing,
    KeyObject,
    KeyDigest,
    Ping,
    HintBatch,
    HintBatchAck,
    HandoffBatch,
    HandoffAck,
    AaeLevelRequest,
    AaeLevelReply,
    AaeKeysRequest,
    AaeKeysReply,
    ClusterRequest,
    ClusterReply,
    LeaveComplete,
    ReplicaRange,
    ReplicaScan,
    ReplicaRangeReply,
    PaxosPrepare,
    PaxosPromise,
    PaxosPropose,
    PaxosAccepted,
    PaxosCommit,
    PaxosCommitAck,
    HandoffIdle,
    LogEntry,
    RaftVote,
    RaftVoteReply,
    RaftAppend,
    RaftAppendReply,
    RaftTimeoutNow,
    RaftSnapshotChunk,
    RaftSnapshotAck,
    LogWrite,
    LogRead,
    LogRange,
    LogReply,
    LogScan,
    StreamFetch,
    StreamRecord,
    StreamFetchReply,
)

Message = Any  # any instance of a class in ALL_MESSAGES
