"""Node configuration: one frozen dataclass, with limits named and defaulted.

Owns: ``NodeConfig``, ``TlsFiles`` and address parsing (``Limits`` and ``QuorumDefaults``
live in ``dynamokv.core.settings`` and are re-exported here).

A node *listens* on an address (possibly every interface: ``0.0.0.0:7001``, ``[::]:7001``) and
*advertises* the address peers and clients should dial (``10.0.0.11:7001``); the advertised
address is what the ring records. It defaults to the listen address, which must then be one a
peer can dial.
May import: stdlib, ``dynamokv.core.settings``, ``dynamokv.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dynamokv.core.messages import DEFAULT_CLUSTER
from dynamokv.core.settings import Limits, QuorumDefaults
from dynamokv.errors import ConfigError


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: str
    listen: str  # "host:port" of the binary protocol (clients and peers)
    data_dir: Path
    seeds: tuple[str, ...] = ()  # "host:port" of nodes to join through; empty: start a cluster
    engine: str = "lmdb"  # "lmdb" | "sqlite" | "memory"
    engine_sync: str = "os"  # "os": survives kill -9; "fsync": survives power loss
    metrics_listen: str | None = None  # "host:port" for Prometheus text at /metrics
    http_listen: str | None = None  # "host:port" for the DynamoDB-compatible API
    ring_size: int = 64
    quorum: QuorumDefaults = field(default_factory=QuorumDefaults)
    limits: Limits = field(default_factory=Limits)
    gossip_interval_ms: int = 1_000
    use_uvloop: bool = True
    auto_join: bool = True  # False: the join waits for `dynamokv cluster plan/commit`
    aae_interval_ms: int = 2_000  # how often an anti-entropy exchange may start
    # For fault testing only: this node's wall clock runs this far ahead (negative: behind).
    wall_clock_offset_ms: int = 0
    cluster_name: str = DEFAULT_CLUSTER  # peers of another cluster are refused
    advertise: str | None = None  # "host:port" peers and clients dial; None: ``listen``
    tls: TlsFiles | None = None  # mutual TLS between nodes and clients, HTTPS for the API
    # The DynamoDB-compatible HTTP API (plain fields, one per `node start` flag).
    http_credentials: Path | None = None  # file of "ACCESS_KEY_ID SECRET" lines; None: accept any
    http_max_connections: int = 1024
    http_max_connections_per_client: int = 256
    http_max_buffered_bytes: int = 128 * 1024 * 1024
    http_idle_timeout_s: float = 120.0
    http_compress_min_bytes: int = 4096  # 0: never compress responses
    # Seconds between passes of the table upkeep (TTL expiry, ItemCount/TableSizeBytes).
    table_sweep_interval_s: float = 60.0
    # Seconds a stream shard of a partition stays open before it closes and a child opens.
    stream_shard_roll_s: float = 4 * 3600.0
    # False: background work never yields to a slow foreground (for measuring the loop's effect).
    admission_control: bool = True
    # FOR BENCHMARKS AND TESTS ONLY: apply replica writes from peers after a delay drawn from
    # this distribution (``runtime/inject.py``, e.g. "exp:10"); None: at once.
    inject_replica_delay: str | None = None

    def validate(self) -> None:
        if not self.node_id or len(self.node_id) > 64 or not self.node_id.isprintable():
            raise ConfigError("node id must be 1-64 printable characters, e.g. n1")
        if "." in self.node_id or "@" in self.node_id:
            raise ConfigError(f"node id {self.node_id!r} must not contain '.' or '@'")
        parse_address(self.listen)
        for seed in self.seeds:
            parse_address(seed)
        q = self.ring_size
        if q < 8 or q > 4096 or q & (q - 1):
            raise ConfigError(f"ring size {q} must be a power of two between 8 and 4096")
        self.quorum.validate()
        self._validate_network()
        self._validate_http()
        if not 0.1 <= self.table_sweep_interval_s <= 86_400:
            raise ConfigError("the table sweep interval must be 0.1 to 86400 seconds")
        if not 1 <= self.stream_shard_roll_s <= 86_400:
            raise ConfigError("the stream shard roll period must be 1 to 86400 seconds")
        if self.inject_replica_delay is not None:
            from dynamokv.runtime.inject import DelaySpec

            DelaySpec.parse(self.inject_replica_delay)

    def _validate_http(self) -> None:
        for name in ("http_max_connections", "http_max_connections_per_client"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.http_max_buffered_bytes < 1024 * 1024:
            raise ConfigError("http_max_buffered_bytes must be at least 1 MiB")
        if not self.http_idle_timeout_s > 0:
            raise ConfigError("http_idle_timeout_s must be more than 0 seconds")
        if self.http_compress_min_bytes < 0:
            raise ConfigError("http_compress_min_bytes must be 0 (never) or more")

    def _validate_network(self) -> None:
        name = self.cluster_name
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise ConfigError(f"cluster name {name!r} must be 1-64 letters, digits, '-', '_' "
                              "or '.', e.g. prod-eu")
        if self.advertise is not None:
            host, _ = parse_address(self.advertise)
            if is_wildcard(host):
                raise ConfigError(f"advertise address {self.advertise!r} is not one a peer can "
                                  "dial; give this machine's address, e.g. 10.0.0.11:7001")
        elif is_wildcard(parse_address(self.listen)[0]):
            raise ConfigError(f"listen address {self.listen!r} is every interface: also give "
                              "--advertise (advertise = ...), the address peers and clients "
                              "should dial, e.g. 10.0.0.11:7001")

    def advertised(self) -> str:
        """The address the ring records for this node: what peers and clients dial."""
        return self.advertise or self.listen

    def advertised_for(self, listen: str | None) -> str:
        """What to advertise for another listener (HTTP, metrics): itself, or, when it listens
        on every interface, the advertised host with its own port."""
        if not listen:
            return ""
        host, port = parse_address(listen)
        if not is_wildcard(host):
            return listen
        return join_address(parse_address(self.advertised())[0], port)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for TLS. ``cert``/``key`` are this node's certificate (signed by ``ca``), used
    both to serve and, as a client certificate, to dial peers: nodes authenticate each other
    (mutual TLS) by the cluster's CA. ``http_cert``/``http_key`` override the pair for the
    HTTPS DynamoDB API (e.g. a publicly trusted certificate); clients of that API present none."""

    cert: Path
    key: Path
    ca: Path
    http_cert: Path | None = None
    http_key: Path | None = None
    verify_hostname: bool = False  # also match the peer's certificate to the dialled host


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` → ``(host, port)``, with an error that shows the expected form.

    An IPv6 host is written in brackets, ``[::1]:7001``; the brackets are not part of the host.
    """
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not (0 < int(port) < 65536):
        raise ConfigError(f"address {text!r} must look like 127.0.0.1:7001 or [::1]:7001")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ConfigError(f"address {text!r}: write an IPv6 host in brackets, e.g. [::1]:7001")
    return host.strip("[]"), int(port)


def join_address(host: str, port: int) -> str:
    """``(host, port)`` → ``"host:port"``, bracketing an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_wildcard(host: str) -> bool:
    """Whether ``host`` means every interface (listen-only, never an address to dial)."""
    return host in ("0.0.0.0", "::", "")


__all__ = ["Limits", "NodeConfig", "QuorumDefaults", "TlsFiles", "is_wildcard", "join_address",
           "parse_address"]
