"""Process lifecycle of one node: open storage, restore the ring, serve, shut down cleanly.

Owns: ``serve(config) -> int`` (foreground, until SIGINT/SIGTERM) and ``start_node(config)``
(the same, as an awaitable handle for tests and embedding).
May import: ``asyncio``, ``signal``, ``dynamokv.runtime.*``, ``dynamokv.storage``,
``dynamokv.core``, ``dynamokv.api`` (the DynamoDB-compatible HTTP app, when enabled).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import sys
from dataclasses import dataclass, replace
from typing import Any

from dynamokv.core.ids import actor_for
from dynamokv.core.node import NodeCore
from dynamokv.core.ring import Member, MemberStatus
from dynamokv.core.settings import CoreSettings
from dynamokv.errors import ConfigError, DynamoKVError
from dynamokv.runtime.config import NodeConfig, parse_address
from dynamokv.runtime.handle import ClusterHandle
from dynamokv.runtime.inject import DelaySpec, install_replica_delay
from dynamokv.runtime.metrics import MetricsHTTPServer, NodeMetrics
from dynamokv.runtime.persist import incarnation, load_ring, mark_clean_stop, stored_cluster
from dynamokv.runtime.runner import NodeRunner
from dynamokv.storage.base import StorageEngine
from dynamokv.storage.node_store import NodeStore
from dynamokv.storage.registry import open_engine

log = logging.getLogger("dynamokv.server")


@dataclass
class RunningNode:
    config: NodeConfig
    runner: NodeRunner
    engine: StorageEngine
    metrics_server: MetricsHTTPServer | None
    extra_servers: list[Any]
    handle: ClusterHandle | None = None

    async def stop(self) -> None:
        """Stop serving, flush, sync and close storage. Idempotent."""
        for server in self.extra_servers:
            with contextlib.suppress(Exception):
                await server.stop()
        self.extra_servers = []
        await self.runner.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()
            self.metrics_server = None
        try:
            self.engine.sync()
            self.engine.close()
            mark_clean_stop(self.config.data_dir)
        except DynamoKVError:
            self.engine.close()  # not clean: the next start takes a new incarnation


def core_settings(config: NodeConfig, q: int) -> CoreSettings:
    base = CoreSettings()
    return CoreSettings(q=q, quorum=config.quorum, limits=config.limits,
                        gossip_interval_ms=config.gossip_interval_ms,
                        auto_join=config.auto_join,
                        aae=replace(base.aae, interval_ms=config.aae_interval_ms),
                        log_sync=config.engine_sync == "fsync",
                        cluster_name=config.cluster_name,
                        stream_shard_roll_ms=int(config.stream_shard_roll_s * 1000),
                        admission=(base.admission if config.admission_control
                                   else replace(base.admission,
                                                p99_threshold_ms=float("inf"))))


async def start_node(config: NodeConfig) -> RunningNode:
    """Open the node's storage and start serving on its addresses."""
    config.validate()
    server_ssl, client_ssl = _peer_tls(config)  # bad certificates fail before anything opens
    config.data_dir.mkdir(parents=True, exist_ok=True)
    _check_cluster_of_data_dir(config)
    settings = core_settings(config, config.ring_size)
    engine = open_engine(config.engine, config.data_dir, sync_mode=config.engine_sync)
    try:
        restored = load_ring(config.data_dir)
        ring, buckets, buckets_version = restored if restored else (None, {}, 0)
        if ring is not None and ring.q != config.ring_size:
            log.warning("keeping the stored ring size %d (asked for %d)", ring.q, config.ring_size)
            settings = core_settings(config, ring.q)
        store = NodeStore(engine, settings.q)
        me = Member(config.node_id, config.advertised(), MemberStatus.VALID,
                    config.advertised_for(config.http_listen),
                    config.advertised_for(config.metrics_listen))
        core = NodeCore(
            me=me,
            actor=actor_for(config.node_id, incarnation(config.data_dir)),
            store=store,
            settings=settings,
            rng=random.Random(),
            seeds=tuple(s for s in config.seeds if s not in (config.listen, config.advertised())),
            ring=ring,
            buckets=buckets,
            buckets_version=buckets_version,
        )
        metrics = NodeMetrics()
        info = engine.info
        runner = NodeRunner(core, data_dir=config.data_dir, metrics=metrics,
                            wall_clock_offset_ms=config.wall_clock_offset_ms,
                            storage_info={"engine": info.name, "durable": info.durable,
                                          "sync": info.sync_mode},
                            server_ssl=server_ssl, client_ssl=client_ssl,
                            group_commit=engine if hasattr(engine, "begin_group") else None)
        if config.inject_replica_delay is not None:  # benchmarks and tests only
            install_replica_delay(runner.transport, DelaySpec.parse(config.inject_replica_delay))
        host, port = parse_address(config.listen)
        await runner.start(host, port)
        metrics_server = None
        if config.metrics_listen:
            mhost, mport = parse_address(config.metrics_listen)
            metrics_server = metrics.start_http(mhost, mport)
        node = RunningNode(config, runner, engine, metrics_server, [], ClusterHandle(runner))
        if config.http_listen:
            api = await _start_http_api(config, node)
            if api is not None:
                node.extra_servers.append(api)
        else:
            _start_index_upkeep(node)
        return node
    except BaseException:
        engine.close()
        raise


async def _start_http_api(config: NodeConfig, node: RunningNode) -> Any:
    try:
        from dynamokv.runtime.http_api import start_http_api
    except ImportError:
        log.warning("the DynamoDB-compatible HTTP API is not available in this build; "
                    "serving the binary protocol only")
        return None
    from dynamokv.api.sigv4 import load_credentials

    assert config.http_listen is not None and node.handle is not None
    host, port = parse_address(config.http_listen)
    auth = load_credentials(config.http_credentials) if config.http_credentials else None
    context = None
    if config.tls is not None:
        from dynamokv.runtime.tls import http_server_context

        context = http_server_context(config.tls)
    api = await start_http_api(node.handle, host, port, auth=auth,
                               limits=http_limits(config), metrics=node.runner.metrics,
                               ssl=context)
    # TTL expiry and item counts of the partitions this node leads; stopped with the node.
    from dynamokv.api.maintenance import Maintenance

    node.extra_servers.append(Maintenance(api.app.context, config.table_sweep_interval_s,
                                          metrics=node.runner.metrics).start())
    _register_drain(node, api.app.context)
    return api


def _register_drain(node: RunningNode, context: Any) -> None:
    """Global secondary index upkeep from the index outbox of the partitions this node leads:
    stopped with the node, its counters in ``status`` (``index_upkeep``)."""
    from dynamokv.api.indexes.node import start_drain

    drain = start_drain(context)
    if drain is not None:
        node.extra_servers.append(drain)
        node.runner.metrics.status_sources["index_upkeep"] = drain.status
    _register_table_work(node, context)


def _register_table_work(node: RunningNode, context: Any) -> None:
    """The table layer's other background work in ``status`` and the metrics: index upkeep
    jobs and backfills (``index_work``) and bucket drops (``table_drops``)."""
    from dynamokv.api.indexes.drop import drop_status

    sources = node.runner.metrics.status_sources
    sources["index_work"] = lambda: dict(sorted(getattr(context.index_work, "stats", {}).items()))
    sources["table_drops"] = lambda: drop_status(context)


def _start_index_upkeep(node: RunningNode) -> None:
    """A node without the HTTP API still leads table partitions: it drains their outbox."""
    try:
        from dynamokv.api.app import DynamoDBApp
    except ImportError:
        return
    assert node.handle is not None
    _register_drain(node, DynamoDBApp(node.handle).context)


def http_limits(config: NodeConfig) -> Any:
    from dynamokv.runtime.http_api import HttpLimits

    return HttpLimits(
        max_connections=config.http_max_connections,
        max_connections_per_client=config.http_max_connections_per_client,
        max_buffered_bytes=config.http_max_buffered_bytes,
        idle_timeout=config.http_idle_timeout_s,
        compress_min_bytes=config.http_compress_min_bytes,
    )


def _peer_tls(config: NodeConfig) -> tuple[Any, Any]:
    """The binary protocol's (server, client) SSL contexts; (None, None) without TLS."""
    if config.tls is None:
        return None, None
    from dynamokv.runtime.tls import http_server_context, peer_client_context, peer_server_context

    if config.http_listen:
        http_server_context(config.tls)  # check the API's certificate now, not at the end
    return peer_server_context(config.tls), peer_client_context(config.tls)


def _check_cluster_of_data_dir(config: NodeConfig) -> None:
    """A data dir holds the ring of one cluster: starting it under another name would announce
    that ring to the other cluster's nodes."""
    stored = stored_cluster(config.data_dir)
    if stored is not None and stored != config.cluster_name:
        raise ConfigError(f"data dir {config.data_dir} holds a ring of cluster {stored!r}, but "
                          f"this node is configured for cluster {config.cluster_name!r}; fix "
                          "cluster_name, or use an empty data dir to join the other cluster")


def serve(config: NodeConfig) -> int:
    """Run one node in the foreground until SIGINT or SIGTERM; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s " + config.node_id + " %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if config.use_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        return asyncio.run(_serve(config))
    except DynamoKVError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return 1


async def _serve(config: NodeConfig) -> int:
    node = await start_node(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    log.info("node %s of cluster %s serving on %s as %s (engine %s, data %s%s)", config.node_id,
             config.cluster_name, config.listen, config.advertised(), config.engine,
             config.data_dir, ", mutual TLS" if config.tls else "")
    print(f"ready {config.node_id} {config.listen}", flush=True)
    await stop.wait()
    log.info("node %s stopping", config.node_id)
    await node.stop()
    return 0
