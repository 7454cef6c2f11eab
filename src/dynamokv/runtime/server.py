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
from dynamokv.errors import DynamoKVError
from dynamokv.runtime.config import NodeConfig, parse_address
from dynamokv.runtime.handle import ClusterHandle
from dynamokv.runtime.metrics import MetricsHTTPServer, NodeMetrics
from dynamokv.runtime.persist import incarnation, load_ring, mark_clean_stop
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
                        admission=(base.admission if config.admission_control
                                   else replace(base.admission,
                                                p99_threshold_ms=float("inf"))))


async def start_node(config: NodeConfig) -> RunningNode:
    """Open the node's storage and start serving on its addresses."""
    config.validate()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    settings = core_settings(config, config.ring_size)
    engine = open_engine(config.engine, config.data_dir, sync_mode=config.engine_sync)
    try:
        restored = load_ring(config.data_dir)
        ring, buckets, buckets_version = restored if restored else (None, {}, 0)
        if ring is not None and ring.q != config.ring_size:
            log.warning("keeping the stored ring size %d (asked for %d)", ring.q, config.ring_size)
            settings = core_settings(config, ring.q)
        store = NodeStore(engine, settings.q)
        me = Member(config.node_id, config.listen, MemberStatus.VALID,
                    config.http_listen or "", config.metrics_listen or "")
        core = NodeCore(
            me=me,
            actor=actor_for(config.node_id, incarnation(config.data_dir)),
            store=store,
            settings=settings,
            rng=random.Random(),
            seeds=tuple(s for s in config.seeds if s != config.listen),
            ring=ring,
            buckets=buckets,
            buckets_version=buckets_version,
        )
        metrics = NodeMetrics()
        info = engine.info
        runner = NodeRunner(core, data_dir=config.data_dir, metrics=metrics,
                            wall_clock_offset_ms=config.wall_clock_offset_ms,
                            storage_info={"engine": info.name, "durable": info.durable,
                                          "sync": info.sync_mode})
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
    assert config.http_listen is not None and node.handle is not None
    host, port = parse_address(config.http_listen)
    return await start_http_api(node.handle, host, port)


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
    log.info("node %s serving on %s (engine %s, data %s)", config.node_id, config.listen,
             config.engine, config.data_dir)
    print(f"ready {config.node_id} {config.listen}", flush=True)
    await stop.wait()
    log.info("node %s stopping", config.node_id)
    await node.stop()
    return 0
