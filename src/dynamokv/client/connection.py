"""Client connections to one node: blocking (``BlockingConnection``) and asyncio
(``AsyncConnection``, many requests in flight, matched to replies by request id).

Owns: sockets, framing and request/reply matching on the client side; ``Undelivered``.
May import: ``socket``, ``asyncio``, ``dynamokv.wire``, ``dynamokv.errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time

from dynamokv.core.messages import Message
from dynamokv.errors import ProtocolError, RequestTimeout
from dynamokv.wire.codec import decode, encode
from dynamokv.wire.framing import FrameDecoder, frame

FRAME_BYTES_MAX = 64 * 1024 * 1024
CONNECT_TIMEOUT_S = 1.0


class Undelivered(Exception):
    """The request never reached the node (or the connection died before any reply)."""


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class BlockingConnection:
    def __init__(self, address: str, tls: ssl.SSLContext | None = None) -> None:
        self.address = address
        self.tls = tls  # TLS to the node (mutual, if the context holds a certificate)
        self._sock: socket.socket | None = None
        self._decoder = FrameDecoder(FRAME_BYTES_MAX)
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def _connect(self, timeout_s: float) -> socket.socket:
        try:
            sock = socket.create_connection(_split(self.address), min(timeout_s, CONNECT_TIMEOUT_S))
        except OSError as exc:
            raise Undelivered(f"cannot connect to {self.address}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self._handshake(sock)
        self._decoder = FrameDecoder(FRAME_BYTES_MAX)
        return sock

    def _handshake(self, sock: socket.socket) -> socket.socket:
        assert self.tls is not None
        host = _split(self.address)[0]
        try:
            return self.tls.wrap_socket(sock, server_hostname=host if self.tls.check_hostname
                                        else None)
        except OSError as exc:
            sock.close()
            raise Undelivered(f"TLS handshake with {self.address} failed: {exc}") from exc

    def request(self, msg: Message, timeout_s: float) -> Message:
        with self._lock:
            reused = self._sock is not None
            try:
                return self._request(msg, timeout_s)
            except Undelivered:
                self.close()
                if not reused:
                    raise
            # A kept-alive socket may have died while idle (node restarted): one fresh try.
            return self._request(msg, timeout_s)

    def _request(self, msg: Message, timeout_s: float) -> Message:
        deadline = time.monotonic() + timeout_s
        if self._sock is None:
            self._sock = self._connect(timeout_s)
        sock = self._sock
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.sendall(frame(encode(msg)))
        except OSError as exc:
            raise Undelivered(f"sending to {self.address} failed: {exc}") from exc
        want = getattr(msg, "req_id", None)
        got_any = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise RequestTimeout(f"{self.address} did not answer within {timeout_s:.1f}s",
                                     {"node": self.address})
            try:
                sock.settimeout(remaining)
                data = sock.recv(262144)
            except TimeoutError:
                continue
            except OSError as exc:
                self.close()
                raise Undelivered(f"connection to {self.address} failed: {exc}") from exc
            if not data:
                self.close()
                if got_any:
                    raise ProtocolError(f"{self.address} closed the connection mid-reply")
                hint = (" (with TLS: did it refuse our client certificate? its log says)"
                        if self.tls is not None else "")
                raise Undelivered(f"{self.address} closed the connection{hint}")
            got_any = True
            try:
                for payload in self._decoder.feed(data):
                    reply = decode(payload)
                    if getattr(reply, "req_id", None) == want:
                        return reply
            except ProtocolError:
                self.close()
                raise


class AsyncConnection:
    def __init__(self, address: str, tls: ssl.SSLContext | None = None) -> None:
        self.address = address
        self.tls = tls
        self.closed = False
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._connecting: asyncio.Lock | None = None
        # Frames queued during one loop iteration, and their request ids: written together by
        # ``_flush``, in one system call instead of one per request.
        self._out: list[bytes] = []
        self._out_ids: list[int] = []
        self._flush_scheduled = False

    async def _ensure(self) -> asyncio.StreamWriter:
        if self._writer is not None:
            return self._writer
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is not None:
                return self._writer
            host, port = _split(self.address)
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port, ssl=self.tls), CONNECT_TIMEOUT_S)
            except (TimeoutError, OSError) as exc:
                self.closed = True
                raise Undelivered(f"cannot connect to {self.address}: {exc}") from exc
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._writer = writer
            self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))
            return writer

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder(FRAME_BYTES_MAX)
        error: Exception = Undelivered(f"{self.address} closed the connection")
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                for payload in decoder.feed(data):
                    reply = decode(payload)
                    fut = self._pending.pop(getattr(reply, "req_id", -1), None)
                    if fut is not None and not fut.done():
                        fut.set_result(reply)
        except ProtocolError as exc:
            error = exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            error = Undelivered(f"connection to {self.address} failed: {exc}")
        finally:
            self.closed = True
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(error)
            self._pending.clear()

    async def request(self, msg: Message, timeout_s: float) -> Message:
        if self._writer is None:
            await self._ensure()
        if self.closed:
            # The reader saw the connection end: nothing sent now would be answered.
            raise Undelivered(f"{self.address} closed the connection")
        req_id = msg.req_id
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Message] = loop.create_future()
        self._pending[req_id] = fut
        self._out.append(frame(encode(msg)))
        self._out_ids.append(req_id)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        # One timer handle rather than ``asyncio.wait_for``, which wraps the future in more
        # futures and callbacks and costs several times as much per request.
        timer = loop.call_later(timeout_s, self._expire, req_id, fut, timeout_s)
        try:
            return await fut
        finally:
            timer.cancel()
            if self._pending.get(req_id) is fut:  # cancelled: stop waiting for its reply
                del self._pending[req_id]

    def _expire(self, req_id: int, fut: asyncio.Future[Message], timeout_s: float) -> None:
        if self._pending.get(req_id) is fut:
            del self._pending[req_id]
        if not fut.done():
            fut.set_exception(RequestTimeout(
                f"{self.address} did not answer within {timeout_s:.1f}s", {"node": self.address}))

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, ids = self._out, self._out_ids
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        self._out, self._out_ids = [], []
        writer = self._writer
        try:
            if writer is None:
                raise RuntimeError("not connected")
            writer.write(data)
        except (OSError, RuntimeError) as exc:
            error = Undelivered(f"sending to {self.address} failed: {exc}")
            for req_id in ids:
                fut = self._pending.pop(req_id, None)
                if fut is not None and not fut.done():
                    fut.set_exception(error)

    async def close(self) -> None:
        self.closed = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
