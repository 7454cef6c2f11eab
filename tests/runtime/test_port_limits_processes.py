"""The binary port's limits on a real node process: connections per address and in all, partial
frames that never complete, idle connections, and an oversize request.

Clients come from distinct loopback addresses (127.0.0.5-8) so the per-address limit can be
seen apart from the port's; the node listens on its own loopback address. Each refusal and
closing must be a clear answer (an ``Overloaded`` error frame, then the close) and a Prometheus
count, and the node must keep serving while the attack connections sit on it.
"""

from __future__ import annotations

import select
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from tests.cluster_harness import LocalCluster, free_ports, host_of

from dynamokv.core.messages import ErrorReply, PutRequest, StatusReply, StatusRequest
from dynamokv.core.vclock import VectorClock
from dynamokv.wire.codec import decode, encode
from dynamokv.wire.framing import PROTOCOL_VERSION, FrameDecoder, frame

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PER_ADDRESS = 12
IN_ALL = 30
LIMITS = ("--limit", f"connections_max={IN_ALL}",
          "--limit", f"connections_per_address_max={PER_ADDRESS}",
          "--limit", "frame_timeout_ms=4000", "--limit", "idle_timeout_ms=12000")
ALMOST_A_FRAME = (4 * 1024 * 1024).to_bytes(4, "big") + bytes([PROTOCOL_VERSION])


def _connect(address: str, source: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=5, source_address=(source, 0))
    return sock


def _answer(sock: socket.socket, wait_s: float) -> tuple[list[object], bool]:
    """The messages ``sock`` received within ``wait_s`` and whether the node closed it."""
    decoder = FrameDecoder(64 << 20)
    got: list[object] = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return got, True
        if not data:
            return got, True
        got.extend(decode(p) for p in decoder.feed(data))
    return got, False


def _split_refused(socks: list[socket.socket], wait_s: float
                   ) -> tuple[list[socket.socket], list[list[object]]]:
    """After ``wait_s``: the sockets still open, and what each refused one was told."""
    time.sleep(wait_s)
    held, told = [], []
    for sock in socks:
        got, closed = _answer(sock, 0.01)
        if closed:
            told.append(got)
            sock.close()
        else:
            held.append(sock)
    return held, told


def _metric(url: str, name: str, reason: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(f'{name}{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def _status(address: str, source: str) -> object:
    with _connect(address, source) as sock:
        sock.sendall(frame(encode(StatusRequest(5))))
        got, _ = _answer(sock, 5)
    return got[0] if got else None


def test_the_binary_port_refuses_past_its_limits_and_keeps_serving(tmp_path: Path) -> None:
    host = host_of(1, distinct_hosts=True)
    metrics = f"{host}:{free_ports(1, host)[0]}"
    cluster = LocalCluster.start(tmp_path, 1, n=1, r=1, w=1, ring_size=16, distinct_hosts=True,
                                 extra_args=(*LIMITS, "--metrics", metrics))
    url = f"http://{metrics}/metrics"
    address = cluster.node("n1").address
    held: list[socket.socket] = []
    try:
        # 1. One address past its limit: refused with a reason, the rest held open.
        first = [_connect(address, "127.0.0.5") for _ in range(PER_ADDRESS + 3)]
        held, told = _split_refused(first, 0.5)
        assert len(told) == 3, told
        for got in told:
            assert isinstance(got[0], ErrorReply) and got[0].code == "Overloaded"
            assert "connections_per_address_max" in got[0].message
        # 2. More addresses, until the port's limit: refused past it.
        more = [_connect(address, source) for source in ("127.0.0.6", "127.0.0.7")
                for _ in range(PER_ADDRESS)]
        kept, told = _split_refused(more, 0.5)
        held += kept
        assert all("connections_max" in got[0].message for got in told)  # type: ignore[attr-defined]
        assert len(held) == IN_ALL
        assert _metric(url, "dynamokv_connections_refused_total", "address") == 3
        assert _metric(url, "dynamokv_connections_refused_total", "connections") == (
            2 * PER_ADDRESS - (IN_ALL - PER_ADDRESS))
        # 3. Every held connection starts a 4 MiB frame and sends 1 MiB of it, never the rest.
        for sock in held:
            sock.sendall(ALMOST_A_FRAME + b"x" * (1 << 20))
        # 4. The node keeps serving: free two places and ask for its status meanwhile.
        for sock in held[:2]:
            sock.close()
        held = held[2:]
        time.sleep(0.3)
        assert isinstance(_status(address, "127.0.0.8"), StatusReply)
        # 5. An oversize request gets an error reply on a connection that stays usable.
        with _connect(address, "127.0.0.8") as sock:
            big = PutRequest(77, "b", b"k", b"v" * (5 << 20), VectorClock.empty())
            sock.sendall(frame(encode(big)) + frame(encode(StatusRequest(78))))
            got, closed = _answer(sock, 5)
            assert not closed
            assert isinstance(got[0], ErrorReply) and got[0].req_id == 77
            assert got[0].code == "InvalidRequest" and "frame limit" in got[0].message
            assert isinstance(got[1], StatusReply) and got[1].req_id == 78
        # 6. Frames never completed are closed after frame_timeout_ms (4 s).
        for sock in held:
            _, closed = _answer(sock, 8)
            assert closed
        assert _metric(url, "dynamokv_connections_closed_total", "slow_frame") >= len(held)
        # 7. An idle connection is closed after idle_timeout_ms (12 s), and the port is free.
        with _connect(address, "127.0.0.9") as idle:
            _, closed = _answer(idle, 20)
            assert closed
        assert _metric(url, "dynamokv_connections_closed_total", "idle") >= 1
        assert isinstance(_status(address, "127.0.0.5"), StatusReply)
    finally:
        for sock in held:
            sock.close()
        cluster.stop()
