"""TCP transport: framed msgpack messages between nodes and from clients, on asyncio protocols.

Owns: ``Transport`` — the listener, one outbound ``PeerLink`` per peer (reconnecting on demand),
inbound connections (a peer announces itself with ``Hello``; anything else is a client), and
write coalescing (every frame queued during one loop iteration goes out in one write).
May import: ``asyncio``, ``dynamokv.wire``, ``dynamokv.core.messages``, ``dynamokv.errors``.

Replies to a peer travel on our own outbound link to it, so each pair of nodes uses two
connections, each carrying requests one way and replies the other. Delivery failures surface as
``on_unreachable(node)`` so the core can fail the affected requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, cast

from dynamokv.core.messages import Hello, Message
from dynamokv.errors import ProtocolError
from dynamokv.wire.codec import decode, encode
from dynamokv.wire.framing import HEADER_SIZE, FrameDecoder, frame_header

log = logging.getLogger("dynamokv.transport")

OnPeerMessage = Callable[[str, Message], None]
OnClientMessage = Callable[[int, Message], None]
OnUnreachable = Callable[[str], None]


class _Conn(asyncio.Protocol):
    """One TCP connection, either direction. Frames in, coalesced frames out."""

    def __init__(self, owner: Transport, *, peer: str | None = None, outbound: bool = False):
        self.owner = owner
        self.peer = peer  # node id once known (outbound: always; inbound: after Hello)
        self.outbound = outbound
        self.client_ref: int | None = None
        self.decoder = FrameDecoder(owner.frame_bytes_max)
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.flush_scheduled = False
        self.closed = False
        self.connected = asyncio.get_running_loop().create_future()

    # asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            payloads = self.decoder.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        # One chunk often carries many messages under load: a failure handling one of them
        # must not drop the others (a try costs nothing in Python 3.11 until it catches).
        for payload in payloads:
            try:
                self._dispatch(decode(payload))
            except ProtocolError as exc:
                self._protocol_error(exc)
                return
            except Exception:  # a bug in a handler must not kill the connection's peers
                log.exception("error handling a message from %s", self._who())

    def _protocol_error(self, exc: ProtocolError) -> None:
        log.warning("closing connection from %s: %s", self._who(), exc)
        self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("connection lost"))
        self.owner._lost(self)

    # internals -------------------------------------------------------------------------------
    def _dispatch(self, msg: Message) -> None:
        owner = self.owner
        if self.closed or (isinstance(msg, Hello) and not owner.accept_hello(self, msg)):
            return
        if self.outbound:
            assert self.peer is not None
            owner.on_peer_message(self.peer, msg)
            return
        if self.peer is not None:
            owner.on_peer_message(self.peer, msg)
        elif self.client_ref is None and isinstance(msg, Hello):
            self.peer = msg.node_id
            owner.on_peer_message(msg.node_id, msg)
        else:
            if self.client_ref is None:
                self.client_ref = owner._register_client(self)
            owner.on_client_message(self.client_ref, msg)

    def _who(self) -> str:
        if self.peer:
            return f"peer {self.peer}"
        return f"client {self.client_ref}"

    def send(self, payload: bytes) -> bool:
        if self.closed:
            return False
        size = len(payload) + HEADER_SIZE
        if self.out_bytes + size > self.owner.send_queue_bytes_max:
            return False
        # Header and payload stay separate buffers: ``flush`` hands them all to one
        # ``writelines`` (a single writev under uvloop), so no payload is copied to be framed.
        out = self.out
        out.append(frame_header(len(payload)))
        out.append(payload)
        self.out_bytes += size
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        return True

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.transport is None or self.closed or not self.out:
            return
        self.transport.writelines(self.out)
        self.out = []
        self.out_bytes = 0

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class PeerLink:
    """Our outbound connection to one peer: connects on first use, queues while connecting."""

    def __init__(self, owner: Transport, node: str, address_of: Callable[[], str | None]):
        self.owner = owner
        self.node = node
        self.address_of = address_of
        self.conn: _Conn | None = None
        self.pending: list[bytes] = []
        self.connecting = False

    def send(self, payload: bytes) -> None:
        conn = self.conn
        if conn is not None and not conn.closed and conn.transport is not None:
            if not conn.send(payload):
                self.owner._report_unreachable(self.node)
            return
        self.pending.append(payload)
        if not self.connecting:
            self.connecting = True
            asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        address = self.address_of()
        try:
            if address is None:
                raise ConnectionError(f"no address known for {self.node}")
            host, _, port = address.rpartition(":")
            loop = asyncio.get_running_loop()
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Conn(self.owner, peer=self.node, outbound=True), host.strip("[]"),
                    int(port), ssl=self.owner.client_ssl,
                ),
                self.owner.connect_timeout_s,
            )
            self.conn = conn
            conn.send(encode(self.owner.hello()))
            for payload in self.pending:
                conn.send(payload)
            self.pending.clear()
        except (TimeoutError, OSError, ConnectionError) as exc:
            # A TLS failure is a configuration error an operator must see, not a flaky peer.
            log.log(logging.ERROR if isinstance(exc, ssl.SSLError) else logging.DEBUG,
                    "cannot connect to %s at %s: %s", self.node, address, exc)
            self.pending.clear()
            self.owner._report_unreachable(self.node)
        finally:
            self.connecting = False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.abort()


class Transport:
    """The node's network: one listener, peer links, client connections."""

    def __init__(
        self,
        *,
        node_id: str,
        address_of: Callable[[str], str | None],
        on_peer_message: OnPeerMessage,
        on_client_message: OnClientMessage,
        on_unreachable: OnUnreachable,
        hello: Callable[[], Hello],
        frame_bytes_max: int,
        send_queue_bytes_max: int,
        connect_timeout_ms: int,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.node_id = node_id
        self.address_of = address_of
        self.on_peer_message = on_peer_message
        self.on_client_message = on_client_message
        self.on_unreachable = on_unreachable
        self.hello = hello
        self.frame_bytes_max = frame_bytes_max
        self.send_queue_bytes_max = send_queue_bytes_max
        self.connect_timeout_s = connect_timeout_ms / 1000
        self.links: dict[str, PeerLink] = {}
        self.clients: dict[int, _Conn] = {}
        self._client_ids = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._inbound: set[_Conn] = set()
        self.server_ssl = server_ssl  # mutual TLS (runtime/tls.py); None: plain TCP
        self.client_ssl = client_ssl
        self._refused_logged: dict[tuple[str, str], float] = {}

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, host, port, reuse_address=True,
                                                backlog=1024, ssl=self.server_ssl)

    def _accept(self) -> _Conn:
        conn = _Conn(self)
        self._inbound.add(conn)
        return conn

    def _register_client(self, conn: _Conn) -> int:
        ref = next(self._client_ids)
        self.clients[ref] = conn
        return ref

    def _lost(self, conn: _Conn) -> None:
        self._inbound.discard(conn)
        if conn.client_ref is not None:
            self.clients.pop(conn.client_ref, None)
        if conn.outbound and conn.peer is not None:
            link = self.links.get(conn.peer)
            if link is not None and link.conn is conn:
                link.conn = None
                self._report_unreachable(conn.peer)

    def _report_unreachable(self, node: str) -> None:
        self.on_unreachable(node)

    # sending -----------------------------------------------------------------------------------
    def send_to_node(self, node: str, msg: Message) -> None:
        link = self.links.get(node)
        if link is None:
            link = PeerLink(self, node, lambda: self.address_of(node))
            self.links[node] = link
        link.send(encode(msg))

    def send_to_address(self, address: str, msg: Message) -> None:
        key = "@" + address
        link = self.links.get(key)
        if link is None:
            link = PeerLink(self, key, lambda: address)
            self.links[key] = link
        link.send(encode(msg))

    def reply_to_client(self, client: int, msg: Message) -> bool:
        conn = self.clients.get(client)
        if conn is None:
            return False  # the client went away; nothing to do
        return conn.send(encode(msg))

    def peer_count(self) -> int:
        return sum(1 for k, link in self.links.items()
                   if not k.startswith("@") and link.conn is not None and not link.conn.closed)

    def client_count(self) -> int:
        return len(self.clients)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self.links.values():
            link.close()
        for conn in list(self._inbound):
            conn.flush()
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def stats(self) -> dict[str, Any]:
        return {"peers_connected": self.peer_count(), "clients_connected": self.client_count()}

    def accept_hello(self, conn: _Conn, msg: Hello) -> bool:
        """Whether ``conn``'s peer may talk to us: it must belong to our cluster. A refused
        inbound peer gets our own Hello before the close, so its log says why."""
        mine = self.hello()
        if msg.cluster == mine.cluster:
            return True
        where = conn.transport.get_extra_info("peername") if conn.transport else None
        key = (msg.node_id, msg.cluster)
        now = time.monotonic()
        if now - self._refused_logged.get(key, -1e9) >= 30:  # a retrying joiner: not every s
            if len(self._refused_logged) > 1000:  # names are the sender's choice: bound them
                self._refused_logged.clear()
            self._refused_logged[key] = now
            log.error("refused peer %s at %s: it belongs to cluster %r, this node %s to %r; "
                      "check --seeds and cluster_name on both", msg.node_id, where, msg.cluster,
                      self.node_id, mine.cluster)
        if not conn.outbound and conn.transport is not None:
            conn.transport.write(frame_header(len(payload := encode(mine))) + payload)
            conn.transport.close()  # after the write: close() flushes, abort() would not
        else:
            conn.abort()
        conn.closed = True
        return False
