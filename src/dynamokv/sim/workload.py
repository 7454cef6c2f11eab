"""Simulated clients: gets, puts and deletes on a small key set, conditional increments and reads of
one counter, and the final reads.

Owns: ``Workload`` (its clients, what each has read, the final read of every key and of the
counter) and the ``ClientPort`` protocol it needs from the world.
May import: stdlib, ``dynamokv.core.{messages,requests,vclock}``, ``dynamokv.sim.history``,
``dynamokv.sim.options``.

With ``strict_quorum`` every get asks for PR=R and every put for PW=W. The final reads ask for
R=PR=N.

Each key-value client runs one operation at a time against a node it picks at random (clients
are not partition-aware, so non-replicas forward puts), then thinks for a random while. A put is
sent either with the context of the client's last read of that key (a read-modify-write, which
supersedes what was read) or with no context at all (a blind write, which makes siblings);
deletes always carry the last read's context. Every value written is unique
(``<key>.c<client>.<n>``), which is what lets the checkers follow each write.

Counter clients (``cas_clients``) send ``CasRequest``s for ``COUNTER_KEY`` in the table bucket
``CAS_BUCKET`` through a random node's own API (``LocalRequested``): 70 % increments (``decide``
adds one to the decimal value, absent counting as 0), 30 % linearizable reads (``read_only``).
Results carry no request id, so each request gets a client reference of its own and late
answers to abandoned requests are recognised and dropped.

A client gives up on a request after ``client_timeout_ms`` (outcome unknown for writes), and a
crash of the node it talks to closes its connection (the same).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dynamokv.core.messages import ErrorReply, GetReply, GetRequest, Message, PutReply, PutRequest
from dynamokv.core.requests import CasAborted, CasRequest, CasResult
from dynamokv.core.vclock import VectorClock
from dynamokv.sim.history import DEFINITE_PUT_ERRORS, History, Kind, Operation
from dynamokv.sim.options import SimOptions

BUCKET = "sim"
CAS_BUCKET = "~t/sim"  # a table bucket: written through its partition log
COUNTER_KEY = b"counter"
FINAL_READ_RETRY_MS = 250
FINAL_READ_ATTEMPTS_MAX = 40
CAS_REF_BASE = 10_000  # client references of counter requests: one fresh reference each


def increment(old: bytes | None) -> bytes:
    """The counter clients' ``decide``: one more than the decimal value (absent is 0)."""
    return str(int(old or b"0") + 1).encode()


def counter_value(raw: bytes | None) -> int | None:
    """The counter a cas result names (absent is 0), ``None`` if it is not a number."""
    try:
        return int(raw or b"0")
    except ValueError:
        return None


class ClientPort(Protocol):
    """What the workload needs of the world."""

    rng: random.Random

    @property
    def now_ms(self) -> int: ...

    def node_ids(self) -> list[str]: ...

    def client_send(self, node: str, client: int, msg: Message) -> None: ...

    def local_send(self, node: str, client: int, request: object) -> None: ...

    def call_at(self, at_ms: int, label: str, fn: Callable[[], None]) -> None: ...


@dataclass(slots=True)
class _Pending:
    op: Operation
    req_id: int
    ref: int  # the client reference the answer comes to


@dataclass(slots=True)
class _Client:
    ref: int
    counter: bool = False  # a table counter client
    next_req_id: int = 0
    written: int = 0
    contexts: dict[bytes, VectorClock] = field(default_factory=dict)
    pending: _Pending | None = None


class Workload:
    def __init__(self, port: ClientPort, options: SimOptions, history: History) -> None:
        self.port = port
        self.options = options
        self.history = history
        self.keys = [f"k{i}".encode() for i in range(options.keys)]
        self.clients = [_Client(ref) for ref in range(1, options.clients + 1)]
        self.clients += [_Client(options.clients + i, counter=True)
                         for i in range(1, options.cas_clients + 1)]
        # The final reader, outside the workload.
        self.reader = _Client(options.clients + options.cas_clients + 1)
        self.end_ms = 0
        self.final: dict[bytes, Operation] = {}
        self.final_counter: Operation | None = None
        self._final_queue: list[tuple[Kind, bytes]] = []
        self._final_attempts = 0
        self._next_cas_ref = CAS_REF_BASE
        self._by_cas_ref: dict[int, _Client] = {}

    # ---- running -----------------------------------------------------------------------------

    def start(self, end_ms: int) -> None:
        self.end_ms = end_ms
        now = self.port.now_ms
        for client in self.clients:
            self._schedule_tick(client, now)

    def stop(self) -> None:
        """Issue no new operations (those in flight still finish)."""
        self.end_ms = min(self.end_ms, self.port.now_ms)

    def busy(self) -> bool:
        return any(c.pending is not None for c in self.clients)

    def _schedule_tick(self, client: _Client, now: int) -> None:
        at = now + self.port.rng.randint(0, self.options.think_ms_max)
        self.port.call_at(at, f"c{client.ref} tick", lambda: self._tick(client))

    def _tick(self, client: _Client) -> None:
        if self.port.now_ms >= self.end_ms or client.pending is not None:
            return
        rng = self.port.rng
        if client.counter:
            self._send(client, "incr" if rng.random() < 0.7 else "cas-read", COUNTER_KEY)
            return
        key = rng.choice(self.keys)
        x = rng.random()
        context = client.contexts.get(key)
        if x < 0.45 or (x >= 0.95 and context is None):
            self._send(client, "get", key)
        elif x < 0.95:
            blind = x >= 0.80
            client.written += 1
            value = f"{key.decode()}.c{client.ref}.{client.written}".encode()
            ctx = VectorClock.empty() if blind or context is None else context
            self._send(client, "put", key, value, ctx)
        else:
            assert context is not None
            self._send(client, "delete", key, None, context)

    def _send(self, client: _Client, kind: Kind, key: bytes, value: bytes | None = None,
              context: VectorClock | None = None) -> None:
        port = self.port
        node = port.rng.choice(port.node_ids())
        op = self.history.invoke(client.ref, kind, key, node, port.now_ms, value=value,
                                 context=context)
        client.next_req_id += 1
        req_id = client.next_req_id
        ref = client.ref
        if kind in ("incr", "cas-read", "final-cas-read"):
            self._next_cas_ref += 1
            ref = self._next_cas_ref
            self._by_cas_ref[ref] = client
        client.pending = _Pending(op, req_id, ref)
        o = self.options
        strict = o.strict_quorum
        if kind in ("incr", "cas-read", "final-cas-read"):
            read = kind != "incr"
            port.local_send(node, ref, CasRequest(CAS_BUCKET, key, None if read else increment,
                                                  read_only=read))
        else:
            msg: Message
            if kind == "final-get":
                # Every primary must answer: a fallback's hint is no proof the primary has it.
                msg = GetRequest(req_id, BUCKET, key, r=o.n, pr=o.n)
            elif kind == "get":
                msg = GetRequest(req_id, BUCKET, key, pr=o.r if strict else None)
            else:
                msg = PutRequest(req_id, BUCKET, key, value, context or VectorClock.empty(),
                                 pw=o.w if strict else None)
            port.client_send(node, ref, msg)
        port.call_at(port.now_ms + self.options.client_timeout_ms, f"c{client.ref} timeout",
                     lambda: self._give_up(client, req_id, "client timeout"))

    # ---- answers (called by the world) -----------------------------------------------------------

    def on_reply(self, ref: int, msg: object) -> None:
        client = self._client(ref)
        pending = client.pending if client else None
        if client is None or pending is None or pending.ref != ref:
            return  # an answer to a request the client already gave up on
        op = pending.op
        if op.kind in ("incr", "cas-read", "final-cas-read"):
            self._on_cas_reply(client, op, msg)
            return
        if getattr(msg, "req_id", None) != pending.req_id:
            return
        now = self.port.now_ms
        if isinstance(msg, GetReply):
            History.finish(op, "ok", now, reply_context=msg.context, values=msg.values,
                           found=msg.found)
            client.contexts[op.key] = msg.context
        elif isinstance(msg, PutReply):
            History.finish(op, "ok", now, reply_context=msg.context)
        elif isinstance(msg, ErrorReply):
            definite = not op.is_write or msg.code in DEFINITE_PUT_ERRORS
            History.finish(op, "fail" if definite else "unknown", now, error=msg.code)
        else:
            History.finish(op, "unknown" if op.is_write else "fail", now,
                           error=f"unexpected {type(msg).__name__}")
        self._done(client)

    def _on_cas_reply(self, client: _Client, op: Operation, msg: object) -> None:
        now = self.port.now_ms
        if isinstance(msg, CasResult):
            History.finish(op, "ok", now)
            op.cas_old, op.cas_new = counter_value(msg.old), counter_value(msg.new)
        elif isinstance(msg, CasAborted):
            # ``increment`` only raises on a counter that is not a number: the checker flags it.
            History.finish(op, "fail", now, error=f"aborted: {msg.error!r}")
        else:
            code = msg.code if isinstance(msg, ErrorReply) else f"unexpected {type(msg).__name__}"
            History.finish(op, "unknown" if op.kind == "incr" else "fail", now, error=code)
        self._done(client)

    def on_refused(self, ref: int, req_id: int) -> None:
        """The request never reached a node (connection refused): it certainly did nothing."""
        client = self._client(ref)
        pending = client.pending if client is not None else None
        # A refusal names the request id, except a counter request's (its reference is its own):
        # a late refusal of an earlier request must not end the one in flight now.
        if client is None or pending is None or pending.ref != ref or (
                ref < CAS_REF_BASE and pending.req_id != req_id):
            return
        History.finish(pending.op, "fail", self.port.now_ms, error="refused")
        self._done(client)

    def on_connection_lost(self, node: str) -> None:
        """``node`` crashed: every request waiting on it ends without an answer."""
        for client in [*self.clients, self.reader]:
            pending = client.pending
            if pending is not None and pending.op.node == node:
                self._give_up(client, pending.req_id, "connection lost")

    def _give_up(self, client: _Client, req_id: int, why: str) -> None:
        pending = client.pending
        if pending is None or pending.req_id != req_id:
            return
        op = pending.op
        unknown = op.is_write or op.kind == "incr"
        History.finish(op, "unknown" if unknown else "fail", self.port.now_ms, error=why)
        self._done(client)

    def _done(self, client: _Client) -> None:
        assert client.pending is not None
        pending = client.pending
        client.pending = None
        self._by_cas_ref.pop(pending.ref, None)
        if client is self.reader:
            self._after_final_read(pending.op)
        else:
            self._schedule_tick(client, self.port.now_ms)

    def _client(self, ref: int) -> _Client | None:
        if ref >= CAS_REF_BASE:
            return self._by_cas_ref.get(ref)
        if ref == self.reader.ref:
            return self.reader
        if 1 <= ref <= len(self.clients):
            return self.clients[ref - 1]
        return None

    # ---- the final reads -----------------------------------------------------------------------

    def start_final_reads(self) -> None:
        """Read every key at R=N (which also read-repairs it), then the counter through the
        log leader, retrying each until it succeeds."""
        self._final_queue = [("final-get", k) for k in self.keys]
        if self.options.cas_clients:
            self._final_queue.append(("final-cas-read", COUNTER_KEY))
        self._final_attempts = 0
        self._next_final_read()

    def final_done(self) -> bool:
        return not self._final_queue and self.reader.pending is None

    def final_failed(self) -> list[str]:
        """What the final reads could not read, for the liveness report."""
        failed = [k.decode() for k in self.keys if k not in self.final]
        if self.options.cas_clients and self.final_counter is None:
            failed.append(f"{CAS_BUCKET}/{COUNTER_KEY.decode()}")
        return failed

    def _after_final_read(self, op: Operation) -> None:
        if op.status == "ok":
            if op.kind == "final-cas-read":
                self.final_counter = op
            else:
                self.final[op.key] = op
            self._final_queue.pop(0)
            self._final_attempts = 0
        elif self._final_attempts >= FINAL_READ_ATTEMPTS_MAX:
            self._final_queue.pop(0)  # give up on this key; the checker reports it
            self._final_attempts = 0
        self._next_final_read()

    def _next_final_read(self) -> None:
        if not self._final_queue:
            return
        kind, key = self._final_queue[0]
        delay = FINAL_READ_RETRY_MS if self._final_attempts else 0
        self._final_attempts += 1
        self.port.call_at(self.port.now_ms + delay, "final read",
                          lambda: self._send(self.reader, kind, key))
