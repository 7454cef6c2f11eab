"""NodeRunner's group commit on a real 1-node lmdb node: a table write is answered only once
its writes are committed, and a failed group commit lets no answer out and stops the node."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from tests.cluster_harness import free_ports

from dynamokv.api.handle import compose_key
from dynamokv.core.settings import QuorumDefaults
from dynamokv.errors import StorageError
from dynamokv.runtime.config import NodeConfig
from dynamokv.runtime.server import RunningNode, start_node
from dynamokv.storage.lmdb_engine import LmdbEngine

BUCKET = "~t/tbl-1"


async def _node(root: Path) -> RunningNode:
    (port,) = free_ports(1)
    config = NodeConfig(node_id="n1", listen=f"127.0.0.1:{port}", data_dir=root / "n1",
                        engine="lmdb", ring_size=8, quorum=QuorumDefaults(1, 1, 1))
    node = await start_node(config)
    for _ in range(200):
        if node.runner.core.ring is not None:
            break
        await asyncio.sleep(0.05)
    return node


def _visible_elsewhere(engine: LmdbEngine) -> int:
    """How many records a reader on another thread sees (committed data only)."""
    out: list[int] = []
    t = threading.Thread(target=lambda: out.append(len(list(engine.scan(b"", None)))))
    t.start()
    t.join()
    return out[0]


def test_a_write_is_answered_after_its_group_is_committed(tmp_path: Path) -> None:
    async def main() -> None:
        node = await _node(tmp_path)
        try:
            engine = node.engine
            assert isinstance(engine, LmdbEngine)
            assert node.runner._group is engine
            handle = node.handle
            assert handle is not None
            key = compose_key(b"pk", b"1")
            for attempt in range(100):  # the partition's log elects its leader first
                try:
                    await handle.write(BUCKET, key, b"v1")
                    break
                except Exception:
                    if attempt == 99:
                        raise
                    await asyncio.sleep(0.1)
            before = _visible_elsewhere(engine)
            await handle.write(BUCKET, compose_key(b"pk", b"2"), b"v2")
            # Answered: the log entry and the applied item are committed, seen by any reader.
            assert _visible_elsewhere(engine) > before
            assert await handle.read(BUCKET, compose_key(b"pk", b"2")) == b"v2"
        finally:
            await node.stop()

    asyncio.run(main())


def test_a_failed_group_commit_lets_no_answer_out_and_stops_the_node(tmp_path: Path) -> None:
    async def main() -> None:
        node = await _node(tmp_path)
        try:
            handle = node.handle
            assert handle is not None
            for attempt in range(100):
                try:
                    await handle.write(BUCKET, compose_key(b"pk", b"0"), b"v0")
                    break
                except Exception:
                    if attempt == 99:
                        raise
                    await asyncio.sleep(0.1)
            engine = node.engine
            assert isinstance(engine, LmdbEngine)
            stops: list[bool] = []
            node.runner.on_storage_failure = lambda: stops.append(True)
            real_commit = engine.commit_group

            def failing_commit() -> None:
                txn, engine._group_txn = engine._group_txn, None
                engine._grouping = False
                if txn is not None:
                    txn.abort()
                raise StorageError("lmdb group commit: disk full (test)")

            before = _visible_elsewhere(engine)
            engine.commit_group = failing_commit  # type: ignore[method-assign]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(handle.write(BUCKET, compose_key(b"pk", b"9"), b"v9"),
                                       1.0)
            assert stops == [True]
            assert node.runner.storage_failed
            engine.commit_group = real_commit  # type: ignore[method-assign]
            assert _visible_elsewhere(engine) == before  # nothing of the lost turn on disk
        finally:
            await node.stop()

    asyncio.run(main())


def test_events_after_the_engine_closed_do_not_break_the_runner(tmp_path: Path) -> None:
    async def main() -> None:
        node = await _node(tmp_path)
        await node.stop()
        # A late event (a timer, a peer's frame) on a stopped node: no group, no exception.
        node.runner._on_timer()
        assert not node.runner._grouping

    asyncio.run(main())
