"""``dynamokv node start``: its options and what it does with them.

Owns: the ``node start`` subcommand's parser (``add_command``: the basic flags, the HTTP API
group, ``--limit``), turning parsed options into a ``NodeConfig`` (``cmd_node_start``, with
``parse_limits``) and starting the server (``run_server``, loaded lazily).
May import: stdlib, ``dynamokv.errors``, ``dynamokv.runtime.config``, ``dynamokv.cli.arg_types``,
``dynamokv.cli.components``, ``dynamokv.cli.node_options``; lazily ``dynamokv.runtime.server``
and ``dynamokv.api.sigv4`` (to check a --credentials file before the node starts).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dynamokv.cli import arg_types, components, node_options
from dynamokv.errors import ConfigError
from dynamokv.runtime.config import Limits, NodeConfig, QuorumDefaults, parse_address

Command = Callable[..., argparse.ArgumentParser]


def add_command(node_sub: Any, _command: Command,
                quorum_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``start`` to the ``node`` subcommands."""
    start = _command(
        node_sub, "start", "Run a node in the foreground until Ctrl-C or SIGTERM.",
        """\
        dynamokv node start --id n1 --listen 127.0.0.1:7001 --data-dir ./data/n1
        dynamokv node start --id n2 --listen 127.0.0.1:7002 --data-dir ./data/n2 \\
            --seeds 127.0.0.1:7001""",
        cmd_node_start,
        details="""\
        Without --seeds the node starts a new cluster; with them it joins the cluster those
        nodes belong to. The data dir keeps its ring and data across restarts.

        The DynamoDB API (--http) accepts any credentials unless --credentials names a file
        of access keys, one "ACCESS_KEY_ID SECRET" pair a line (# starts a comment). Then
        every request must be SigV4-signed by one of them, as DynamoDB checks it. Create one:
          umask 077; echo "AKIDLOCAL1 $(openssl rand -hex 20)" > keys.txt""",
    )
    start.add_argument("--id", required=True, dest="node_id", help="node id, e.g. n1")
    start.add_argument("--listen", required=True, metavar="HOST:PORT",
                       help="address of the binary protocol, for clients and peers")
    start.add_argument("--seeds", default="", metavar="HOST:PORT,...",
                       help="nodes to join through (comma-separated); none: start a new cluster")
    start.add_argument("--data-dir", required=True, type=Path, metavar="DIR",
                       help="where this node keeps its data")
    start.add_argument("--engine", choices=("lmdb", "sqlite", "memory"), default="lmdb",
                       help="storage engine (default lmdb; memory keeps nothing on exit)")
    start.add_argument("--sync", choices=("os", "fsync"), default="os",
                       help="os: writes survive a crashed process; fsync: also a power cut, "
                       "slower (default os)")
    start.add_argument("--metrics", metavar="HOST:PORT",
                       help="serve Prometheus metrics at http://HOST:PORT/metrics")
    start.add_argument("--wall-clock-offset-ms", type=int, default=0, metavar="MS",
                       help="FOR FAULT TESTS ONLY: run this node's wall clock MS ahead "
                       "(negative: behind), to check that no clock decides a table write")
    start.add_argument("--http", metavar="HOST:PORT",
                       help="serve the DynamoDB-compatible HTTP API")
    start.add_argument("--table-sweep-interval", type=float, default=60.0, metavar="SECONDS",
                       help="seconds between passes that expire TTL items and count table "
                       "items (default 60)")
    start.add_argument("--stream-shard-roll", type=float, default=4 * 3600.0,
                       metavar="SECONDS",
                       help="seconds a DynamoDB Streams shard of a partition stays open before "
                       "a child shard continues it (default 14400, as DynamoDB)")
    start.add_argument("--ring-size", type=int, default=64, metavar="Q",
                       help="partitions on the ring, a power of two (default 64); fixed for "
                       "the cluster's lifetime")
    quorum_options(start)
    start.add_argument("--no-admission-control", action="store_true",
                       help="never slow hint replay, handoff or anti-entropy down when the "
                            "foreground is slow (for measuring what admission control buys)")
    start.add_argument("--inject-replica-delay", metavar="DIST",
                       help="FOR BENCHMARKS AND TESTS ONLY: apply each replica write from a "
                       "peer after a delay drawn from DIST (ms): fixed:5, uniform:0:20, exp:10 "
                       "or pareto:2:1.5, as a slower network would (staleness curves)")
    start.add_argument("--no-uvloop", action="store_true",
                       help="use the standard asyncio event loop even if uvloop is installed")
    start.add_argument("--staged-join", action="store_true",
                       help="do not join at once: wait for `dynamokv cluster plan` and "
                       "`dynamokv cluster commit` (as riak-admin cluster join)")
    start.add_argument("--aae-interval", type=arg_types.seconds, default=2.0, metavar="SECONDS",
                       help="how often an anti-entropy exchange may start (default 2)")
    http_options(start)
    node_options.add_options(start)  # after every flag a config file may set
    start.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                       dest="limit_flags", help="override one node limit (repeatable), e.g. "
                       "--limit connections_max=2048 --limit idle_timeout_ms=60000; names: "
                       "the fields of dynamokv.core.settings.Limits (over a config file's "
                       "[limits])")


def http_options(p: argparse.ArgumentParser) -> None:
    d = NodeConfig(node_id="n", listen="127.0.0.1:1", data_dir=Path("."))
    g = p.add_argument_group("DynamoDB HTTP API (with --http)")
    g.add_argument("--credentials", type=Path, metavar="FILE",
                   help="file of 'ACCESS_KEY_ID SECRET' lines; requests must be SigV4-signed "
                   "by one of them (default: accept any credentials, for local use)")
    g.add_argument("--http-max-connections", type=arg_types.positive_int, metavar="N",
                   default=d.http_max_connections,
                   help="open connections on the port (default %(default)s)")
    g.add_argument("--http-max-connections-per-client", type=arg_types.positive_int, metavar="N",
                   default=d.http_max_connections_per_client,
                   help="open connections from one client address (default %(default)s)")
    g.add_argument("--http-max-buffered-mb", type=arg_types.positive_int, metavar="MB",
                   default=d.http_max_buffered_bytes // (1024 * 1024),
                   help="request body megabytes the node holds at once; a body past it is "
                   "refused with 503 (default %(default)s)")
    g.add_argument("--http-idle-timeout", type=arg_types.seconds, metavar="SECONDS",
                   default=d.http_idle_timeout_s,
                   help="close a connection idle this long (default %(default)s)")
    g.add_argument("--http-compress-min-bytes", type=int, metavar="N",
                   default=d.http_compress_min_bytes,
                   help="compress responses of at least N bytes when the client accepts gzip "
                   "or deflate; 0: never (default %(default)s)")


def run_server(config: NodeConfig) -> int:
    serve = components.attribute("dynamokv.runtime.server", "serve", "the node server")
    return int(serve(config))


def cmd_node_start(args: argparse.Namespace) -> int:
    args = node_options.resolve(args)
    seeds = tuple(s.strip() for s in args.seeds.split(",") if s.strip())
    config = NodeConfig(
        node_id=args.node_id,
        listen=args.listen,
        data_dir=args.data_dir,
        seeds=seeds,
        engine=args.engine,
        engine_sync=args.sync,
        metrics_listen=args.metrics,
        http_listen=args.http,
        ring_size=args.ring_size,
        quorum=QuorumDefaults(n=args.n, r=args.r, w=args.w),
        use_uvloop=not args.no_uvloop,
        auto_join=not args.staged_join,
        aae_interval_ms=int(args.aae_interval * 1000),
        wall_clock_offset_ms=args.wall_clock_offset_ms,
        cluster_name=args.cluster_name,
        advertise=args.advertise,
        tls=node_options.tls_files(args),
        limits=parse_limits(args.limit_flags or [], args.limits),
        http_credentials=args.credentials,
        http_max_connections=args.http_max_connections,
        http_max_connections_per_client=args.http_max_connections_per_client,
        http_max_buffered_bytes=args.http_max_buffered_mb * 1024 * 1024,
        http_idle_timeout_s=args.http_idle_timeout,
        http_compress_min_bytes=args.http_compress_min_bytes,
        table_sweep_interval_s=args.table_sweep_interval,
        stream_shard_roll_s=args.stream_shard_roll,
        admission_control=not args.no_admission_control,
        inject_replica_delay=args.inject_replica_delay,
    )
    config.validate()
    if args.credentials is not None:
        # A bad key file is a usage error now, not a log line of a node that never serves.
        from dynamokv.api.sigv4 import load_credentials

        load_credentials(args.credentials)
    for flag, address in (("--metrics", args.metrics), ("--http", args.http)):
        if address is not None:
            try:
                parse_address(address)
            except ConfigError as e:
                raise ConfigError(f"{flag}: {e.message}") from None
    return run_server(config)


def parse_limits(items: list[str], base: Limits | None = None) -> Limits:
    """``--limit NAME=VALUE`` flags over ``base`` (the config file's, else the default
    ``Limits``; every limit is an integer)."""
    known = Limits.__dataclass_fields__
    values: dict[str, int] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in known:
            raise ConfigError(f"--limit {item!r}: expected NAME=VALUE with NAME one of "
                              f"{', '.join(sorted(known))}")
        try:
            value = int(text)
        except ValueError:
            raise ConfigError(f"--limit {item!r}: {text!r} is not an integer") from None
        if value < 0:
            raise ConfigError(f"--limit {item!r}: must be >= 0")
        values[name] = value
    return replace(base or Limits(), **values)
