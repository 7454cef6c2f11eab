"""Settings the core runs with: quorum defaults, limits and timers, all named and bounded.

Owns: ``QuorumDefaults``, ``Limits``, ``CoreSettings``, ``BucketProps``.
May import: stdlib, ``dynamokv.errors``, the settings classes of ``dynamokv.core`` modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from dynamokv.core.admission import AdmissionSettings
from dynamokv.core.buffer import BufferSettings
from dynamokv.core.exchange import AaeSettings
from dynamokv.core.handoff import HandoffSettings
from dynamokv.core.hints import HintSettings
from dynamokv.core.replog.lease import Timings
from dynamokv.core.vclock import PruneLimits
from dynamokv.errors import ConfigError, InvalidRequest


@dataclass(frozen=True, slots=True)
class QuorumDefaults:
    """Cluster-wide defaults; a bucket's props and each request may override them."""

    n: int = 3
    r: int = 2
    w: int = 2

    def validate(self) -> None:
        if not (1 <= self.n <= 16):
            raise ConfigError(f"n={self.n}: N must be between 1 and 16")
        for name, v in (("r", self.r), ("w", self.w)):
            if not (1 <= v <= self.n):
                raise ConfigError(f"{name}={v}: must be between 1 and N={self.n}")


@dataclass(frozen=True, slots=True)
class Limits:
    """Every bound a node enforces. Requests past one get a precise error, never a crash."""

    # The DynamoDB API composes keys of a user's key attributes (a 2048-byte partition key, a
    # 1024-byte sort key, an index entry's up to eight attributes plus the base key), escaped.
    key_bytes_max: int = 32 * 1024
    value_bytes_max: int = 1024 * 1024
    bucket_name_bytes_max: int = 255
    frame_bytes_max: int = 4 * 1024 * 1024 + 65536
    siblings_max: int = 100
    in_flight_requests_max: int = 10_000
    request_timeout_ms: int = 5_000
    request_timeout_ms_max: int = 60_000
    connect_timeout_ms: int = 1_000
    send_queue_bytes_max: int = 16 * 1024 * 1024
    reply_bytes_max: int = 1024 * 1024  # a replica's range/scan reply (a larger item goes alone)
    # Node links and the binary port (runtime.sockets.LinkSettings says what each bounds).
    link_stall_ms: int = 1_500
    reconnect_backoff_max_ms: int = 500
    connections_max: int = 1_024
    connections_per_address_max: int = 256
    idle_timeout_ms: int = 300_000
    frame_timeout_ms: int = 30_000
    inbound_buffered_bytes_max: int = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BucketProps:
    """Per-bucket replication and conflict settings (riak bucket props)."""

    n: int = 3
    r: int = 2
    w: int = 2
    lww: bool = False  # resolve siblings server-side, last writer wins
    pr: int = 0  # primaries that must answer a read (riak's pr); 0: fallbacks count fully
    pw: int = 0  # primaries that must acknowledge a write (riak's pw)
    # Acknowledge replica writes from an in-memory buffer; only the coordinator's own copy is
    # synced before the ack (paper 6.1). Off by default: a crash then loses the other N-1
    # copies of the last flush interval's writes, which only some data can afford.
    buffer: bool = False

    def with_updates(self, updates: dict[str, Any]) -> BucketProps:
        """A copy with ``updates`` applied, validated; unknown props are an error."""
        allowed = {"n": int, "r": int, "w": int, "lww": bool, "pr": int, "pw": int,
                   "buffer": bool}
        clean: dict[str, Any] = {}
        for name, value in updates.items():
            kind = allowed.get(name)
            if kind is None:
                raise InvalidRequest(
                    f"unknown bucket property {name!r}; known: {', '.join(sorted(allowed))}"
                )
            if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidRequest(f"bucket property {name} must be an integer")
            if kind is bool and not isinstance(value, bool):
                raise InvalidRequest(f"bucket property {name} must be true or false")
            clean[name] = value
        props = replace(self, **clean)
        if not 1 <= props.n <= 16:
            raise InvalidRequest(f"n={props.n}: N must be between 1 and 16")
        for name in ("r", "w"):
            v = getattr(props, name)
            if not 1 <= v <= props.n:
                raise InvalidRequest(f"{name}={v}: must be between 1 and N={props.n}")
        for name in ("pr", "pw"):
            v = getattr(props, name)
            if not 0 <= v <= props.n:
                raise InvalidRequest(f"{name}={v}: must be between 0 and N={props.n}")
        return props

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "r": self.r, "w": self.w, "lww": self.lww, "pr": self.pr,
                "pw": self.pw, "buffer": self.buffer}


@dataclass(frozen=True, slots=True)
class CoreSettings:
    q: int = 64
    quorum: QuorumDefaults = field(default_factory=QuorumDefaults)
    limits: Limits = field(default_factory=Limits)
    gossip_interval_ms: int = 1_000
    join_retry_ms: int = 1_000
    # A suspected peer is probed (sent gossip) at most this often; requests skip it meanwhile.
    down_probe_interval_ms: int = 1_000
    heartbeat_interval_ms: int = 500
    phi_threshold: float = 8.0
    background_tick_ms: int = 100  # how often hint replay, handoff and anti-entropy may run
    auto_join: bool = True  # join through the seeds at once (False: stage for plan/commit)
    hints: HintSettings = field(default_factory=HintSettings)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    aae: AaeSettings = field(default_factory=AaeSettings)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    buffer: BufferSettings = field(default_factory=BufferSettings)  # paper 6.1, per bucket
    prune: PruneLimits = field(default_factory=PruneLimits)
    raft: Timings = field(default_factory=Timings)  # the table partitions' replicated logs
    log_sync: bool = False  # sync every log write before acting on it (power-loss safety)
    # Peers, joins and rings of another cluster are refused (a node pointed at the wrong seed).
    cluster_name: str = "dynamokv"
    # A stream's shard of a partition closes and a child opens this often (DynamoDB: ~4 h).
    stream_shard_roll_ms: int = 4 * 3600 * 1000

    def default_bucket_props(self) -> BucketProps:
        return BucketProps(n=self.quorum.n, r=self.quorum.r, w=self.quorum.w)
