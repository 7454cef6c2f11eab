"""``Client`` (blocking) and ``AsyncClient`` (asyncio): get, put, delete and admin calls.

Owns: request building, retries across nodes, error mapping, ring refresh for partition-aware
routing. Connections live in ``client.connection``; routing decisions in ``client.routing``.
May import: ``dynamokv.client.*``, ``dynamokv.core.messages``, ``dynamokv.errors``.

Retries: a request moves on to the next candidate node only when it could not be delivered
(connection refused, reset or closed before a reply); a node that answers with an error, or that
takes longer than the timeout to answer, ends the request with that error, because a put may
already have been applied.
"""

from __future__ import annotations

import itertools
import os
import ssl
import time
from collections.abc import Sequence
from typing import Any

from dynamokv.client.connection import AsyncConnection, BlockingConnection, Undelivered
from dynamokv.client.results import Context, GetResult
from dynamokv.client.routing import Router
from dynamokv.core.messages import (
    BucketPropsReply,
    BucketPropsRequest,
    ClusterReply,
    ClusterRequest,
    ErrorReply,
    GetReply,
    GetRequest,
    Message,
    PutReply,
    PutRequest,
    RingReply,
    RingRequest,
    StatusReply,
    StatusRequest,
)
from dynamokv.core.ring import Ring
from dynamokv.errors import InvalidRequest, NoNodeAvailable, ProtocolError, error_from_code

DEFAULT_NODES = "127.0.0.1:7001"


def _nodes(nodes: str | Sequence[str] | None) -> list[str]:
    if nodes is None:
        nodes = os.environ.get("DYNAMOKV_NODES", DEFAULT_NODES)
    if isinstance(nodes, str):
        nodes = [n.strip() for n in nodes.split(",") if n.strip()]
    if not nodes:
        raise InvalidRequest("give at least one node address, e.g. 127.0.0.1:7001")
    return list(nodes)


def _as_bytes(data: bytes | str, what: str) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    raise InvalidRequest(f"{what} must be bytes or str, not {type(data).__name__}")


def _clock(context: Context | None) -> Any:
    if context is None:
        return Context().clock
    if not isinstance(context, Context):
        raise InvalidRequest("context must be the Context a get or put returned")
    return context.clock


class _Base:
    def __init__(self, nodes: str | Sequence[str] | None, routing: str, timeout_s: float,
                 ring_refresh_s: float) -> None:
        self.router = Router(_nodes(nodes), routing, ring_refresh_s)
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)

    def _get_msg(self, key: bytes | str, bucket: str, r: int | None,
                 pr: int | None = None) -> GetRequest:
        return GetRequest(next(self._ids), bucket, _as_bytes(key, "key"), r, pr,
                          int(self.timeout_s * 1000))

    def _put_msg(self, key: bytes | str, value: bytes | str | None, context: Context | None,
                 bucket: str, w: int | None, pw: int | None = None) -> PutRequest:
        raw = None if value is None else _as_bytes(value, "value")
        return PutRequest(next(self._ids), bucket, _as_bytes(key, "key"), raw, _clock(context),
                          w, pw, int(self.timeout_s * 1000))

    def _check(self, reply: Message, expected: type) -> Any:
        if isinstance(reply, ErrorReply):
            raise error_from_code(reply.code, reply.message, reply.details)
        if not isinstance(reply, expected):
            raise ProtocolError(f"expected {expected.__name__}, got {type(reply).__name__}")
        return reply

    def _seen(self, reply: Message) -> int:
        version = getattr(reply, "ring_version", 0)
        return version if isinstance(version, int) else 0

    @staticmethod
    def _get_result(reply: GetReply) -> GetResult:
        return GetResult(list(reply.values), Context(reply.context), reply.found)


class Client(_Base):
    """A blocking client. Thread-safe; one connection per node, one request at a time on it.

    ``routing="server"`` sends each request to any node (it coordinates or forwards);
    ``routing="partition"`` sends it straight to a replica of the key.
    """

    def __init__(self, nodes: str | Sequence[str] | None = None, *, routing: str = "server",
                 timeout_s: float = 5.0, ring_refresh_s: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(nodes, routing, timeout_s, ring_refresh_s)
        self._conns: dict[str, BlockingConnection] = {}
        self.tls = tls  # for nodes run with TLS: see dynamokv.runtime.tls.client_context

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    # ---- data ------------------------------------------------------------------------------
    def get(self, key: bytes | str, *, bucket: str = "default", r: int | None = None,
            pr: int | None = None) -> GetResult:
        """Every concurrent version of ``key``; ``r`` replies needed (``pr`` of them from
        primaries, not fallbacks)."""
        msg = self._get_msg(key, bucket, r, pr)
        reply = self._check(self._call(msg, self._route(bucket, msg.key)), GetReply)
        return self._get_result(reply)

    def put(self, key: bytes | str, value: bytes | str, context: Context | None = None, *,
            bucket: str = "default", w: int | None = None, pw: int | None = None) -> Context:
        """Write ``value`` superseding what ``context`` saw; ``w`` acks needed (``pw`` of them
        from primaries). Returns the new version's context."""
        msg = self._put_msg(key, value, context, bucket, w, pw)
        reply = self._check(self._call(msg, self._route(bucket, msg.key)), PutReply)
        return Context(reply.context)

    def delete(self, key: bytes | str, context: Context | None = None, *,
               bucket: str = "default", w: int | None = None, pw: int | None = None) -> Context:
        msg = self._put_msg(key, None, context, bucket, w, pw)
        reply = self._check(self._call(msg, self._route(bucket, msg.key)), PutReply)
        return Context(reply.context)

    # ---- admin -----------------------------------------------------------------------------
    def ring(self) -> Ring:
        reply = self._check(self._call(RingRequest(next(self._ids)), self._any()), RingReply)
        self.router.set_ring(reply.ring, reply.defaults, time.monotonic())
        ring: Ring = reply.ring
        return ring

    def status(self, node: str | None = None) -> dict[str, Any]:
        targets = [node] if node else self._any()
        reply = self._check(self._call(StatusRequest(next(self._ids)), targets), StatusReply)
        return dict(reply.status)

    def bucket_props(self, bucket: str, **props: Any) -> dict[str, Any]:
        msg = BucketPropsRequest(next(self._ids), bucket, props)
        return dict(self._check(self._call(msg, self._any()), BucketPropsReply).props)

    def cluster(self, action: str, node: str = "", address: str = "") -> dict[str, Any]:
        """Membership: ``action`` is join, leave, plan, commit or clear (staged, as riak).

        Sent to the claimant; any other node answers with the claimant's address, and the
        request follows it once.
        """
        msg = ClusterRequest(next(self._ids), action, node, address)
        reply = self._call(msg, self._any())
        if isinstance(reply, ErrorReply) and reply.details.get("address"):
            msg = ClusterRequest(next(self._ids), action, node, address)
            reply = self._call(msg, [str(reply.details["address"])])
        return dict(self._check(reply, ClusterReply).result)

    # ---- plumbing --------------------------------------------------------------------------
    def _any(self) -> list[str]:
        return self.router.any_node(time.monotonic())

    def _route(self, bucket: str, key: bytes) -> list[str]:
        if self.router.needs_ring(time.monotonic()):
            self._refresh_ring()
        return self.router.for_key(bucket, key, time.monotonic())

    def _refresh_ring(self) -> None:
        try:
            self.ring()
        except (NoNodeAvailable, ProtocolError):
            # Fall back to server-driven routing until a node answers; retried on the next call.
            self.router.ring_fetched_s = time.monotonic()

    def _call(self, msg: Message, candidates: list[str]) -> Message:
        deadline = time.monotonic() + self.timeout_s
        failures: dict[str, str] = {}
        for address in candidates:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            conn = self._conns.get(address)
            if conn is None:
                conn = self._conns[address] = BlockingConnection(address, self.tls)
            try:
                reply = conn.request(msg, remaining)
            except Undelivered as exc:
                failures[address] = str(exc)
                self.router.mark_down(address, time.monotonic())
                continue
            self.router.mark_up(address)
            if self.router.needs_ring(time.monotonic(), self._seen(reply)):
                self.router.ring_fetched_s = float("-inf")  # refresh before the next request
            return reply
        raise NoNodeAvailable(
            "no dynamokv node answered; is the cluster running? (start one with "
            "`dynamokv cluster up`)",
            {"tried": failures},
        )


class AsyncClient(_Base):
    """The asyncio twin of ``Client``: many requests in flight on one connection per node."""

    def __init__(self, nodes: str | Sequence[str] | None = None, *, routing: str = "server",
                 timeout_s: float = 5.0, ring_refresh_s: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(nodes, routing, timeout_s, ring_refresh_s)
        self._conns: dict[str, AsyncConnection] = {}
        self.tls = tls

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for conn in self._conns.values():
            await conn.close()
        self._conns.clear()

    async def get(self, key: bytes | str, *, bucket: str = "default", r: int | None = None,
                  pr: int | None = None) -> GetResult:
        msg = self._get_msg(key, bucket, r, pr)
        reply = self._check(await self._call(msg, await self._route(bucket, msg.key)), GetReply)
        return self._get_result(reply)

    async def put(self, key: bytes | str, value: bytes | str, context: Context | None = None,
                  *, bucket: str = "default", w: int | None = None, pw: int | None = None
                  ) -> Context:
        msg = self._put_msg(key, value, context, bucket, w, pw)
        reply = self._check(await self._call(msg, await self._route(bucket, msg.key)), PutReply)
        return Context(reply.context)

    async def delete(self, key: bytes | str, context: Context | None = None, *,
                     bucket: str = "default", w: int | None = None, pw: int | None = None
                     ) -> Context:
        msg = self._put_msg(key, None, context, bucket, w, pw)
        reply = self._check(await self._call(msg, await self._route(bucket, msg.key)), PutReply)
        return Context(reply.context)

    async def ring(self) -> Ring:
        candidates = self.router.any_node(time.monotonic())
        reply = self._check(await self._call(RingRequest(next(self._ids)), candidates), RingReply)
        self.router.set_ring(reply.ring, reply.defaults, time.monotonic())
        ring: Ring = reply.ring
        return ring

    async def status(self, node: str | None = None) -> dict[str, Any]:
        targets = [node] if node else self.router.any_node(time.monotonic())
        reply = self._check(await self._call(StatusRequest(next(self._ids)), targets),
                            StatusReply)
        return dict(reply.status)

    async def _route(self, bucket: str, key: bytes) -> list[str]:
        if self.router.needs_ring(time.monotonic()):
            # Mark the fetch first so concurrent requests do not all refetch the ring.
            self.router.ring_fetched_s = time.monotonic()
            try:
                await self.ring()
            except (NoNodeAvailable, ProtocolError):
                pass
        return self.router.for_key(bucket, key, time.monotonic())

    async def _call(self, msg: Message, candidates: list[str]) -> Message:
        deadline = time.monotonic() + self.timeout_s
        failures: dict[str, str] = {}
        for address in candidates:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            conn = self._conns.get(address)
            if conn is None or conn.closed:
                conn = self._conns[address] = AsyncConnection(address, self.tls)
            try:
                reply = await conn.request(msg, remaining)
            except Undelivered as exc:
                failures[address] = str(exc)
                self.router.mark_down(address, time.monotonic())
                continue
            self.router.mark_up(address)
            if self.router.needs_ring(time.monotonic(), self._seen(reply)):
                self.router.ring_fetched_s = float("-inf")
            return reply
        raise NoNodeAvailable(
            "no dynamokv node answered; is the cluster running? (start one with "
            "`dynamokv cluster up`)",
            {"tried": failures},
        )
