"""The transport between real sockets on loopback, in one event loop: oversize messages answered
with an error instead of a dropped link (both the sender's and the receiver's guard), a peer
that stops reading detected as a stalled link, reconnect back-off, and the error answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dynamokv.core.messages import (
    ErrorReply,
    GetRequest,
    Hello,
    HintBatch,
    HintBatchAck,
    KeyObject,
    Message,
    Ping,
    ReplicaRangeReply,
)
from dynamokv.core.vclock import VectorClock
from dynamokv.core.versioned import Dot, Sibling, VersionedObject
from dynamokv.runtime import oversize
from dynamokv.runtime.metrics import NodeMetrics
from dynamokv.runtime.sockets import LinkSettings
from dynamokv.runtime.transport import Transport
from dynamokv.wire.codec import encode


@dataclass
class Node:
    name: str
    transport: Transport
    port: int = 0
    got: list[tuple[str, Message]] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _node(name: str, addresses: dict[str, str], *, frame_max: int = 1 << 20,
                queue_max: int = 16 << 20, links: LinkSettings | None = None,
                metrics: NodeMetrics | None = None, port: int | None = None) -> Node:
    node: Node

    def on_peer(src: str, msg: Message) -> None:
        node.got.append((src, msg))

    transport = Transport(
        node_id=name, address_of=addresses.get, on_peer_message=on_peer,
        on_client_message=lambda client, msg: None,
        on_unreachable=lambda n: node.unreachable.append(n), hello=lambda: Hello(name, 0),
        frame_bytes_max=frame_max, send_queue_bytes_max=queue_max, connect_timeout_ms=500,
        links=links, metrics=metrics)
    node = Node(name, transport, port or _free_port())
    await transport.listen("127.0.0.1", node.port)
    addresses[name] = f"127.0.0.1:{node.port}"
    return node


def _obj(size: int) -> VersionedObject:
    return VersionedObject((Sibling(b"v" * size, Dot("a", 1), VectorClock.empty(), 0),))


async def _until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def test_an_oversize_message_of_ours_is_answered_locally_and_the_link_lives() -> None:
    async def go() -> None:
        addresses: dict[str, str] = {}
        metrics = NodeMetrics()
        a = await _node("a", addresses, frame_max=64_000, metrics=metrics)
        b = await _node("b", addresses)
        try:
            a.transport.send_to_node("b", HintBatch(7, (KeyObject("bk", b"k", _obj(100_000)),)))
            a.transport.send_to_node("b", Ping(1, 0))
            await _until(lambda: any(isinstance(m, Ping) for _, m in b.got))
            await _until(lambda: any(isinstance(m, HintBatchAck) for _, m in a.got))
            ack = next(m for _, m in a.got if isinstance(m, HintBatchAck))
            assert ack.batch_id == 7 and "exceeds the frame limit of 64000 bytes" in ack.error
            assert not any(isinstance(m, HintBatch) for _, m in b.got)  # never sent
            assert not a.unreachable  # the peer was not marked down
            assert metrics.registry.get_sample_value(
                "dynamokv_oversize_messages_total", {"direction": "out"}) == 1
        finally:
            await a.transport.close()
            await b.transport.close()

    _run(go)


def test_a_peers_oversize_frame_gets_an_error_reply_not_a_dropped_link() -> None:
    async def go() -> None:
        addresses: dict[str, str] = {}
        a = await _node("a", addresses, frame_max=4 << 20)  # sends what b will not take
        b = await _node("b", addresses, frame_max=64_000)
        try:
            a.transport.send_to_node("b", HintBatch(9, (KeyObject("bk", b"k", _obj(200_000)),)))
            a.transport.send_to_node("b", Ping(2, 0))
            await _until(lambda: any(isinstance(m, HintBatchAck) for _, m in a.got))
            ack = next(m for _, m in a.got if isinstance(m, HintBatchAck))
            assert ack.batch_id == 9 and "exceeds the frame limit" in ack.error
            await _until(lambda: any(isinstance(m, Ping) for _, m in b.got))  # same link
            assert not a.unreachable and not b.unreachable
            assert b.transport.counts.get("closed:protocol") is None
            # A too-large reply to one of b's requests: b's waiting request gets the error form.
            a.transport.frame_bytes_max = 8 << 20
            items = tuple(KeyObject("bk", b"%d" % i, _obj(20_000)) for i in range(10))
            a.transport.send_to_node("b", ReplicaRangeReply(31, items, False))
            await _until(lambda: any(isinstance(m, ReplicaRangeReply) for _, m in b.got))
            reply = next(m for _, m in b.got if isinstance(m, ReplicaRangeReply))
            assert reply.req_id == 31 and reply.items == () and "frame limit" in reply.error
        finally:
            await a.transport.close()
            await b.transport.close()

    _run(go)


def test_a_peer_that_stops_reading_is_detected_as_a_stalled_link() -> None:
    async def go() -> None:
        addresses: dict[str, str] = {}
        server = socket.create_server(("127.0.0.1", 0))  # accepts, never reads
        addresses["deaf"] = f"127.0.0.1:{server.getsockname()[1]}"
        links = LinkSettings(link_stall_ms=600)
        a = await _node("a", addresses, queue_max=256 << 20, links=links)
        try:
            for _ in range(64):  # far more than the kernel buffers on both sides hold
                a.transport.send_to_node("deaf", Ping(1, 0))
                a.transport.send_to_node("deaf", HintBatch(1, (KeyObject("b", b"k",
                                                                          _obj(900_000)),)))
                await asyncio.sleep(0.005)
            # The watchdog ends the link (the kernel's TCP_USER_TIMEOUT is only a backstop).
            await _until(lambda: "deaf" in a.unreachable, timeout_s=10)
            assert a.transport.links_by_node["deaf"].conn is None
            assert a.transport.counts.get("closed:stall", 0) >= 1
        finally:
            await a.transport.close()
            server.close()

    _run(go)


def test_failed_connects_back_off_and_a_returning_peer_is_redialled() -> None:
    async def go() -> None:
        addresses: dict[str, str] = {"gone": f"127.0.0.1:{_free_port()}"}
        links = LinkSettings(reconnect_backoff_min_ms=200, reconnect_backoff_max_ms=400)
        a = await _node("a", addresses, links=links)
        b: Node | None = None
        try:
            a.transport.send_to_node("gone", Ping(1, 0))
            await _until(lambda: len(a.unreachable) == 1)
            link = a.transport.links_by_node["gone"]
            assert 0.2 <= link.backoff_s <= 0.4
            a.transport.send_to_node("gone", Ping(2, 0))  # within the back-off: dropped
            assert not link.connecting and len(a.unreachable) == 2
            # The peer comes back on that address: the scheduled retry reconnects by itself.
            b = await _node("gone", addresses,
                            port=int(addresses["gone"].rpartition(":")[2]))
            await _until(lambda: link.conn is not None and not link.conn.closed)
            a.transport.send_to_node("gone", Ping(3, 0))
            await _until(lambda: any(isinstance(m, Ping) and m.seq == 3 for _, m in b.got))
        finally:
            await a.transport.close()
            if b is not None:
                await b.transport.close()

    _run(go)


def test_error_answers_name_the_request() -> None:
    head = encode(GetRequest(42, "b", b"k" * 100))[:64]
    assert oversize.peek(head) == (GetRequest, 42)
    assert oversize.peek(b"\x92") is None and oversize.peek(b"garbage") is None
    answer: Any = oversize.answer_for(GetRequest, 42, "too big")
    assert answer == ErrorReply(42, "InvalidRequest", "too big")
    assert oversize.answer_for(Ping, 1, "x") is None  # heartbeats have no answer
    assert oversize.answer_for(HintBatch, 3, "x") == HintBatchAck(3, "x")
