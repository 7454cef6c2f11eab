"""Node configuration: one frozen dataclass, with limits named and defaulted.

Owns: ``NodeConfig`` and address parsing (``Limits`` and ``QuorumDefaults`` live in
``dynamokv.core.settings`` and are re-exported here).
May import: stdlib, ``dynamokv.core.settings``, ``dynamokv.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
    # False: background work never yields to a slow foreground (for measuring the loop's effect).
    admission_control: bool = True

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


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` → ``(host, port)``, with an error that shows the expected form."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not (0 < int(port) < 65536):
        raise ConfigError(f"address {text!r} must look like 127.0.0.1:7001")
    return host.strip("[]"), int(port)


__all__ = ["Limits", "NodeConfig", "QuorumDefaults", "parse_address"]
