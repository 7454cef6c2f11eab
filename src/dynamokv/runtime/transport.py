"""TCP transport: framed msgpack messages between nodes and from clients, on asyncio protocols.

Owns: ``Transport`` — the listener, one outbound ``PeerLink`` per peer (reconnecting on demand),
inbound connections (a peer announces itself with ``Hello``; anything else is a client), and
write coalescing (every frame queued during one loop iteration goes out in one write), and the
health of every connection: stall detection, reconnect back-off, the binary port's connection
limits and timeouts, and error answers for messages over the frame limit.
May import: ``asyncio``, ``dynamokv.wire``, ``dynamokv.core.messages``, ``dynamokv.errors``,
``dynamokv.runtime.{sockets,oversize,metrics}``.

Replies to a peer travel on our own outbound link to it, so each pair of nodes uses two
connections, each carrying requests one way and replies the other. Delivery failures surface as
``on_unreachable(node)`` so the core can fail the affected requests at once.

A watchdog runs every ``_WATCH_S``: a connection with bytes waiting and none acknowledged for
``link_stall_ms`` is aborted (an outbound link then reconnects on its next send, so a healed
partition carries traffic again within about a second instead of after TCP's retransmission
back-off), and an inbound connection silent past ``idle_timeout_ms`` or stuck in one frame past
``frame_timeout_ms`` is closed. Every socket is set up by ``sockets.configure_socket``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import itertools
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, cast

from dynamokv.core.messages import ErrorReply, Hello, Message
from dynamokv.errors import ProtocolError
from dynamokv.runtime import oversize, tls
from dynamokv.runtime.metrics import NodeMetrics
from dynamokv.runtime.sockets import LinkSettings, configure_socket, kernel_unacked
from dynamokv.wire.codec import decode, encode
from dynamokv.wire.framing import HEADER_SIZE, FrameDecoder, OversizeFrame, frame, frame_header

log = logging.getLogger("dynamokv.transport")

_WATCH_S = 0.25  # how often the watchdog looks at every connection
# A frame over the limit but at most this large is skipped and answered with an error (a peer
# configured with a larger limit, a client's large request); a larger one means garbage.
_SKIP_UP_TO = 64 * 1024 * 1024
_WARN_EVERY_S = 10.0  # one log line per kind of refusal or closing in this long, at most
_TLS_REFUSAL_WINDOW_S = 2.0  # a peer closing a new TLS connection this soon likely refused us

OnPeerMessage = Callable[[str, Message], None]
OnClientMessage = Callable[[int, Message], None]
OnUnreachable = Callable[[str], None]


def _source_host(listen_host: str) -> str | None:
    """The address our outbound connections start from: the listen address when it names one
    interface (peers then see one address per node, as its firewall rules and logs expect),
    else (a wildcard or a host name) whatever the route picks."""
    try:
        ip = ipaddress.ip_address(listen_host.strip("[]"))
    except ValueError:
        return None
    return None if ip.is_unspecified else str(ip)


class _Conn(asyncio.Protocol):
    """One TCP connection, either direction. Frames in, coalesced frames out."""

    def __init__(self, owner: Transport, *, peer: str | None = None, outbound: bool = False):
        self.owner = owner
        self.peer = peer  # node id once known (outbound: always; inbound: after Hello)
        self.outbound = outbound
        self.client_ref: int | None = None
        self.decoder = FrameDecoder(owner.frame_bytes_max, skip_up_to=_SKIP_UP_TO)
        self.transport: asyncio.Transport | None = None
        self.sock: Any = None
        self.address = ""  # the remote host
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.flush_scheduled = False
        self.closed = False
        self.refused = False
        loop = asyncio.get_running_loop()
        self.connected = loop.create_future()
        # Watchdog state: bytes handed to the transport, how many of them were acknowledged at
        # the last look and since when nothing more was; when the last message and the frame in
        # progress arrived.
        self.written = 0
        self.acked = 0
        self.stalled_since: float | None = None
        self.last_message_at = loop.time()
        self.frame_started_at: float | None = None
        self.made_at = loop.time()
        self.received = 0  # bytes received (a TLS refusal closes a connection before any)

    # asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.sock = transport.get_extra_info("socket")
        self.made_at = asyncio.get_running_loop().time()
        peername = transport.get_extra_info("peername")
        self.address = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        configure_socket(self.sock, self.owner.links)
        if not self.outbound:
            self.owner._admit(self)
        if not self.connected.done():
            self.connected.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.refused:
            return
        decoder = self.decoder
        before = decoder.buffered_bytes
        try:
            payloads = decoder.feed(data)
        except ProtocolError as exc:
            self.owner._buffered(before, 0)
            self._protocol_error(exc)
            return
        after = decoder.buffered_bytes
        now = asyncio.get_running_loop().time()
        if payloads or decoder.skipped:
            self.last_message_at = now
            # A frame still in progress began in this chunk, after the ones it completed.
            self.frame_started_at = now if decoder.in_frame else None
        elif decoder.in_frame and self.frame_started_at is None:
            self.frame_started_at = now
        if after != before and not self.owner._buffered(before, after):
            self.owner.close_conn(self, "buffer", "partial frames over the node's memory budget")
            return
        if decoder.skipped:
            skipped, decoder.skipped = decoder.skipped, []
            for frame_ in skipped:
                self.owner._oversize_in(self, frame_)
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
        self.owner._count("closed", "protocol")
        self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.outbound and not self.closed and self.owner.client_ssl is not None:
            self._tls_refusal(exc)
        self.closed = True
        self.owner._buffered(self.decoder.buffered_bytes, 0)
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("connection lost"))
        self.owner._lost(self)

    # internals -------------------------------------------------------------------------------
    def _tls_refusal(self, exc: Exception | None) -> None:
        """With TLS 1.3 a server checks our certificate after our side of the handshake is
        done, and asyncio turns its refusal into a bare end of stream: a peer that closes a
        fresh connection we made, before sending anything, most likely refused us."""
        fresh = asyncio.get_running_loop().time() - self.made_at < _TLS_REFUSAL_WINDOW_S
        if fresh and self.received == 0:
            peer = self.peer or "?"
            who = f"seed {peer[1:]}" if peer.startswith("@") else f"{peer} at {self.address}"
            why = tls.describe(exc) if isinstance(exc, ssl.SSLError) else (
                "did it refuse our certificate (not signed by its CA, or expired)? its log "
                "says why")
            tls.report(f"{who} closed our TLS connection at once: {why}")

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
        return f"client {self.client_ref or '?'} at {self.address}"

    def send(self, payload: bytes) -> bool:
        if self.closed:
            return False
        size = len(payload) + HEADER_SIZE
        # What the event loop still holds counts too: a peer that stopped reading must not
        # grow our memory without bound between flushes.
        waiting = self.transport.get_write_buffer_size() if self.transport is not None else 0
        if self.out_bytes + waiting + size > self.owner.send_queue_bytes_max:
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
        self.written += self.out_bytes
        self.out = []
        self.out_bytes = 0

    def unacked(self) -> int:
        """Bytes written and not acknowledged by the peer: the loop's buffer and the kernel's."""
        if self.transport is None:
            return 0
        return self.transport.get_write_buffer_size() + kernel_unacked(self.sock)

    def stalled(self, now: float, stall_s: float) -> bool:
        """Bytes wait and none was acknowledged for ``stall_s`` (looked at by the watchdog)."""
        if self.written == self.acked or self.transport is None:
            return False  # everything acknowledged at the last look and nothing written since
        waiting = self.unacked()
        acked = self.written - waiting
        if waiting == 0 or acked > self.acked:
            self.acked = acked
            self.stalled_since = None if waiting == 0 else now
            return False
        if self.stalled_since is None:
            self.stalled_since = now
        return now - self.stalled_since >= stall_s

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class PeerLink:
    """Our outbound connection to one peer: connects on first use, queues while connecting.

    After a failed connect, sends are dropped (and reported unreachable) for a back-off that
    doubles from ``reconnect_backoff_min_ms`` up to ``reconnect_backoff_max_ms``; a send dropped
    meanwhile schedules the next attempt for when the back-off ends, so a peer that comes back
    is reconnected within the back-off, not at the next send after it.
    """

    def __init__(self, owner: Transport, node: str, address_of: Callable[[], str | None]):
        self.owner = owner
        self.node = node
        self.address_of = address_of
        self.conn: _Conn | None = None
        self.pending: list[bytes] = []
        self.connecting = False
        self.backoff_s = 0.0
        self.retry_at = 0.0
        self.retry: asyncio.TimerHandle | None = None

    def send(self, payload: bytes) -> None:
        conn = self.conn
        if conn is not None and not conn.closed and conn.transport is not None:
            if not conn.send(payload):
                self.owner._report_unreachable(self.node)
            return
        if self.connecting:
            self.pending.append(payload)
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.retry_at:
            self.owner._report_unreachable(self.node)
            if self.retry is None:
                self.retry = loop.call_at(self.retry_at, self._retry)
            return
        self.pending.append(payload)
        self._start_connect()

    def _retry(self) -> None:
        self.retry = None
        if not self.connecting and (self.conn is None or self.conn.closed):
            self._start_connect()

    def _start_connect(self) -> None:
        self.connecting = True
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        address = self.address_of()
        owner = self.owner
        try:
            if address is None:
                raise ConnectionError(f"no address known for {self.node}")
            conn = await owner.open_connection(address, self.node)
            self.conn = conn
            self.backoff_s = 0.0
            conn.send(encode(owner.hello()))
            for payload in self.pending:
                conn.send(payload)
            self.pending.clear()
        except (TimeoutError, OSError, ConnectionError) as exc:
            if isinstance(exc, ssl.SSLError):
                # A configuration error an operator must see, not a flaky peer: said in words
                # (runtime/tls.py), once per 30 s however often the connection is retried.
                who = (f"seed {address}" if self.node.startswith("@")
                       else f"{self.node} at {address}")
                tls.report(f"cannot connect to {who}: {tls.describe(exc)}")
            else:
                log.debug("cannot connect to %s at %s: %s", self.node, address, exc)
            self.pending.clear()
            links = owner.links
            self.backoff_s = min(max(self.backoff_s * 2, links.reconnect_backoff_min_ms / 1000),
                                 links.reconnect_backoff_max_ms / 1000)
            self.retry_at = asyncio.get_running_loop().time() + self.backoff_s
            owner._report_unreachable(self.node)
        finally:
            self.connecting = False

    def close(self) -> None:
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
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
        links: LinkSettings | None = None,
        metrics: NodeMetrics | None = None,
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
        self.links = links or LinkSettings()
        self.metrics = metrics
        self.links_by_node: dict[str, PeerLink] = {}
        self.clients: dict[int, _Conn] = {}
        self._client_ids = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._inbound: set[_Conn] = set()
        self.server_ssl = server_ssl  # mutual TLS (runtime/tls.py); None: plain TCP
        self.client_ssl = client_ssl
        self._refused_logged: dict[tuple[str, str], float] = {}
        self._per_address: dict[str, int] = {}
        self._buffered_total = 0
        self._watch: asyncio.TimerHandle | None = None
        self._warned: dict[str, float] = {}
        self.source_host: str | None = None  # outbound connections start from our listen address
        self.counts: dict[str, int] = {}  # "closed:stall", "refused:address", ... for status

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, host, port, reuse_address=True,
                                                backlog=1024, ssl=self.server_ssl)
        self.source_host = _source_host(host)
        self._watch = loop.call_later(_WATCH_S, self._watchdog)

    async def open_connection(self, address: str, node: str) -> _Conn:
        """Connect to a peer at ``address`` (the one place outbound connections are made)."""
        host, _, port = address.rpartition(":")
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: _Conn(self, peer=node, outbound=True),
                                   host.strip("[]"), int(port), ssl=self.client_ssl,
                                   local_addr=(self.source_host, 0) if self.source_host else None),
            self.connect_timeout_s,
        )
        await conn.connected
        return conn

    def _accept(self) -> _Conn:
        return _Conn(self)

    def _admit(self, conn: _Conn) -> None:
        """Count a new inbound connection, or refuse it past the port's limits."""
        links = self.links
        held = self._per_address.get(conn.address, 0)
        if len(self._inbound) >= links.connections_max:
            self._refuse(conn, "connections", f"the node holds {len(self._inbound)} "
                         f"connections, its limit (connections_max={links.connections_max})")
        elif held >= links.connections_per_address_max:
            self._refuse(conn, "address", f"{held} connections from {conn.address} already, "
                         f"the limit per address (connections_per_address_max="
                         f"{links.connections_per_address_max})")
        else:
            self._inbound.add(conn)
            self._per_address[conn.address] = held + 1
            self._publish_inbound()

    def _refuse(self, conn: _Conn, reason: str, why: str) -> None:
        conn.refused = True
        self._count("refused", reason)
        self._warn(f"refused:{reason}", "refusing a connection from %s: %s", conn.address, why)
        transport = conn.transport
        if transport is not None:
            # The client learns why before the close: a precise error, not a bare reset.
            reply = ErrorReply(0, "Overloaded", f"connection refused: {why}; try again later")
            transport.write(frame(encode(reply)))
            transport.close()

    def close_conn(self, conn: _Conn, reason: str, why: str) -> None:
        """Close ``conn`` for ``reason`` (logged and counted)."""
        if conn.closed:
            return
        self._count("closed", reason)
        self._warn(f"closed:{reason}", "closing the connection of %s: %s", conn._who(), why)
        conn.abort()

    def _register_client(self, conn: _Conn) -> int:
        ref = next(self._client_ids)
        self.clients[ref] = conn
        return ref

    def _lost(self, conn: _Conn) -> None:
        if conn in self._inbound:
            self._inbound.discard(conn)
            left = self._per_address.get(conn.address, 1) - 1
            if left > 0:
                self._per_address[conn.address] = left
            else:
                self._per_address.pop(conn.address, None)
            self._publish_inbound()
        if conn.client_ref is not None:
            self.clients.pop(conn.client_ref, None)
        if conn.outbound and conn.peer is not None:
            link = self.links_by_node.get(conn.peer)
            if link is not None and link.conn is conn:
                link.conn = None
                self._report_unreachable(conn.peer)

    def _report_unreachable(self, node: str) -> None:
        self.on_unreachable(node)

    # watchdog and accounting -------------------------------------------------------------------
    def _watchdog(self) -> None:
        """Abort stalled connections; close idle inbound ones and ones stuck in a frame."""
        loop = asyncio.get_running_loop()
        self._watch = loop.call_later(_WATCH_S, self._watchdog)
        now = loop.time()
        links = self.links
        stall_s = links.link_stall_ms / 1000
        for link in list(self.links_by_node.values()):
            conn = link.conn
            if conn is not None and not conn.closed and conn.stalled(now, stall_s):
                self.close_conn(conn, "stall", f"{conn.unacked()} bytes unacknowledged for "
                                f"{links.link_stall_ms} ms (link_stall_ms); reconnecting")
        for conn in list(self._inbound):
            if conn.closed:
                continue
            if conn.stalled(now, stall_s):
                self.close_conn(conn, "stall", f"{conn.unacked()} bytes of replies "
                                f"unacknowledged for {links.link_stall_ms} ms (link_stall_ms)")
            elif (conn.frame_started_at is not None
                  and now - conn.frame_started_at >= links.frame_timeout_ms / 1000):
                self.close_conn(conn, "slow_frame", f"a frame not complete after "
                                f"{links.frame_timeout_ms} ms (frame_timeout_ms)")
            elif now - conn.last_message_at >= links.idle_timeout_ms / 1000:
                self.close_conn(conn, "idle", f"no message for {links.idle_timeout_ms} ms "
                                "(idle_timeout_ms)")

    def _buffered(self, before: int, after: int) -> bool:
        """Account a connection's partial frame going from ``before`` to ``after`` bytes;
        False when the node's budget for partial frames is exceeded."""
        self._buffered_total += after - before
        return self._buffered_total <= self.links.inbound_buffered_bytes_max

    def _count(self, what: str, reason: str) -> None:
        key = f"{what}:{reason}"
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.metrics is not None:
            self.metrics.count_connection(what, reason)

    def _publish_inbound(self) -> None:
        if self.metrics is not None:
            self.metrics.set_inbound_connections(len(self._inbound))

    def _warn(self, key: str, fmt: str, *args: object) -> None:
        """Log a warning, at most once per ``_WARN_EVERY_S`` per key (a flood of refused
        connections must not become a flood of log lines)."""
        now = asyncio.get_running_loop().time()
        if now - self._warned.get(key, -_WARN_EVERY_S) >= _WARN_EVERY_S:
            self._warned[key] = now
            log.warning(fmt, *args)

    # oversize messages -------------------------------------------------------------------------
    def _oversize_in(self, conn: _Conn, skipped: OversizeFrame) -> None:
        """A peer or client sent a frame over our limit: answer it with an error."""
        if self.metrics is not None:
            self.metrics.count_oversize("in")
        text = oversize.too_large(skipped.size, self.frame_bytes_max)
        self._warn("oversize:in", "skipped a frame from %s: %s", conn._who(), text)
        named = oversize.peek(skipped.head)
        if named is None:
            return
        cls, req_id = named
        answer = oversize.answer_for(cls, req_id, text)
        if answer is None:
            return
        if conn.outbound or (cls in oversize.REPLIES and conn.peer is not None):
            # A reply to one of our requests: the waiting request fails with the reason.
            assert conn.peer is not None
            self._deliver_later(conn.peer, answer)
        elif conn.peer is not None:
            self.send_to_node(conn.peer, answer)  # replies to a peer travel on our link
        else:
            conn.send(encode(answer))

    def _oversize_out(self, node: str, msg: Message, size: int) -> None:
        """A message of ours over the frame limit: never sent; answered as the peer would."""
        if self.metrics is not None:
            self.metrics.count_oversize("out")
        text = oversize.too_large(size, self.frame_bytes_max)
        self._warn("oversize:out", "not sending %s to %s: %s", type(msg).__name__, node, text)
        req_id = getattr(msg, dataclasses.fields(msg)[0].name, None) if dataclasses.is_dataclass(
            msg) else None
        if not isinstance(req_id, int):
            return
        answer = oversize.answer_for(type(msg), req_id, text)
        if answer is None:
            return
        if type(msg) in oversize.REPLIES:
            self.send_to_node(node, answer)  # the requester gets the error form instead
        else:
            self._deliver_later(node, answer)

    def _deliver_later(self, node: str, msg: Message) -> None:
        # Not from inside the send that the core's effects are running: on the next iteration.
        asyncio.get_running_loop().call_soon(self.on_peer_message, node, msg)

    # sending -----------------------------------------------------------------------------------
    def _link(self, key: str, address_of: Callable[[], str | None]) -> PeerLink:
        link = self.links_by_node.get(key)
        if link is None:
            link = PeerLink(self, key, address_of)
            self.links_by_node[key] = link
        return link

    def send_to_node(self, node: str, msg: Message) -> None:
        payload = encode(msg)
        if len(payload) > self.frame_bytes_max:
            self._oversize_out(node, msg, len(payload))
            return
        self._link(node, lambda: self.address_of(node)).send(payload)

    def send_to_address(self, address: str, msg: Message) -> None:
        self._link("@" + address, lambda: address).send(encode(msg))

    def reply_to_client(self, client: int, msg: Message) -> bool:
        conn = self.clients.get(client)
        if conn is None:
            return False  # the client went away; nothing to do
        return conn.send(encode(msg))

    def peer_count(self) -> int:
        return sum(1 for k, link in self.links_by_node.items()
                   if not k.startswith("@") and link.conn is not None and not link.conn.closed)

    def client_count(self) -> int:
        return len(self.clients)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._server is not None:
            self._server.close()
        for link in self.links_by_node.values():
            link.close()
        for conn in list(self._inbound):
            conn.flush()
            conn.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def stats(self) -> dict[str, Any]:
        return {"peers_connected": self.peer_count(), "clients_connected": self.client_count(),
                "inbound_connections": len(self._inbound),
                "connection_events": dict(sorted(self.counts.items()))}

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
