"""The fault schedule of the safety phase: what goes wrong, where, when and for how long.

Owns: ``FaultPlan`` (independent streams of node faults, partitions and clock jumps, and the
run's membership changes) and ``LeaveAdmin`` (the operator's staged leave + commit).
May import: stdlib, ``dynamokv.core.{messages,ring}``, ``dynamokv.sim.{options,world}``.

Every choice comes from the world's ``rng``, so the schedule is part of the seed. Streams, each
on only when the run's ``faults`` include its kinds (``sim.options``):

- node faults (``crash``, ``power``, ``pause``): one after another with random gaps, each for a
  random while, on at most ``node_faults_max`` nodes at once. A crash restarts the node when it
  ends. ``power`` asks the world for a power loss, which it turns into a plain process crash
  when the loss would break the budget (``Simulator.power_loss_unsafe``).
- partitions (``isolate``, ``split``, ``asym``, ``bridge``), one at a time: one node cut off; a
  random minority (or half) from the rest; one node that cannot be heard by (or cannot hear)
  some others; two halves that cannot talk but both reach one bridge node.
- clock jumps (``clock``): a random node's wall clock steps forward or backward by up to
  ``clock_jump_ms_max``.
- membership: with ``join`` a fresh node starts and auto-joins at a random time in the first
  half of the phase; with ``leave`` a random member leaves later (staged ``leave`` then
  ``commit`` at the claimant). A leave needs more than N members, so a run that has ``leave``,
  no ``join`` and only N nodes gets a join first.

No fault starts after the safety phase ends, and ``stop()`` (at healing, which ends every fault
in progress) cancels what is still scheduled.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from dynamokv.core.messages import ClusterReply, ClusterRequest, ErrorReply
from dynamokv.core.ring import MemberStatus, Ring
from dynamokv.sim.options import NODE_FAULTS, PARTITIONS, SimOptions
from dynamokv.sim.world import Simulator

ADMIN_REF = 1_000_000  # the operator's client reference, apart from the workload's
LEAVE_ATTEMPTS_MAX = 40
LEAVE_RETRY_MS = 500

Pairs = list[tuple[str, str]]


class FaultPlan:
    def __init__(self, sim: Simulator, options: SimOptions) -> None:
        self.sim = sim
        self.options = options
        self.impaired: list[str] = []  # nodes crashed or paused by this plan right now
        self.partition: tuple[str, Pairs] | None = None
        self.end_ms = 0
        self.stopped = False
        self.node_kinds = [k for k in NODE_FAULTS if options.has(k)]
        self.shapes = [k for k in PARTITIONS if options.has(k)]
        self.admin: LeaveAdmin | None = None

    def start(self, end_ms: int) -> None:
        sim, o = self.sim, self.options
        self.end_ms = end_ms
        if self.node_kinds:
            self._after_gap(self._node_fault)
        if self.shapes:
            self._after_gap(self._partition)
        if o.has("clock"):
            self._after_gap(self._clock_jump)
        span = end_ms - sim.now_ms
        if o.has("join") or (o.has("leave") and o.nodes <= o.n):
            at = sim.now_ms + sim.rng.randint(span // 10, span // 2)
            sim.call_at(at, "join", self._join)
        if o.has("leave"):
            at = sim.now_ms + sim.rng.randint(span * 4 // 10, span * 8 // 10)
            self.admin = LeaveAdmin(sim, o.n)
            sim.register_sink(ADMIN_REF, self.admin)
            sim.call_at(at, "leave", self.admin.attempt)

    def stop(self) -> None:
        """Healing ended every fault; nothing scheduled may start or end one any more."""
        self.stopped = True
        self.impaired.clear()
        self.partition = None
        if self.admin is not None:
            self.admin.stop()

    def _live(self) -> bool:
        return not self.stopped and self.sim.now_ms < self.end_ms

    def _after_gap(self, fn: Callable[[], None]) -> None:
        o, sim = self.options, self.sim
        at = sim.now_ms + sim.rng.randint(o.fault_gap_ms_min, o.fault_gap_ms_max)
        if at < self.end_ms:
            sim.call_at(at, "fault", fn)

    def _length(self) -> int:
        o = self.options
        return self.sim.rng.randint(o.fault_length_ms_min, o.fault_length_ms_max)

    # ---- node faults ---------------------------------------------------------------------------

    def _node_fault(self) -> None:
        if not self._live():
            return
        sim = self.sim
        candidates = [n for n in sim.node_ids()
                      if n not in self.impaired and sim.nodes[n].core is not None]
        if len(self.impaired) < self.options.node_faults_max and candidates:
            node = sim.rng.choice(candidates)
            kind = sim.rng.choice(self.node_kinds)
            length = self._length()
            self.impaired.append(node)
            if kind == "pause":
                sim.pause(node, sim.now_ms + length)
            elif kind == "power":
                sim.power_fail(node)
            else:
                sim.crash(node)
            sim.call_at(sim.now_ms + length, f"end {kind} {node}",
                        functools.partial(self._end_node_fault, node))
        self._after_gap(self._node_fault)

    def _end_node_fault(self, node: str) -> None:
        if self.stopped or node not in self.impaired:
            return
        self.impaired.remove(node)
        self.sim.resume(node)
        self.sim.restart(node)

    # ---- partitions ----------------------------------------------------------------------------

    def _partition(self) -> None:
        if not self._live():
            return
        sim = self.sim
        if self.partition is None:
            shape = sim.rng.choice(self.shapes)
            label, pairs = self._draw_shape(shape, sim.node_ids())
            if pairs:
                self.partition = (label, pairs)
                sim.partition(label, pairs)
                sim.call_at(sim.now_ms + self._length(), f"end {shape}", self._end_partition)
        self._after_gap(self._partition)

    def _end_partition(self) -> None:
        if self.stopped or self.partition is None:
            return
        label, pairs = self.partition
        self.partition = None
        self.sim.unpartition(label, pairs)

    def _draw_shape(self, shape: str, members: list[str]) -> tuple[str, Pairs]:
        rng = self.sim.rng
        if len(members) < 2:
            return "", []
        if shape == "bridge" and len(members) < 3:
            shape = "isolate"
        if shape == "isolate":
            node = rng.choice(members)
            return f"isolate {node}", _between([node], [m for m in members if m != node])
        if shape == "split":
            minority = sorted(rng.sample(members, rng.randint(1, len(members) // 2)))
            rest = [m for m in members if m not in minority]
            return f"split {','.join(minority)} | {','.join(rest)}", _between(minority, rest)
        if shape == "asym":
            node = rng.choice(members)
            others = [m for m in members if m != node]
            peers = sorted(rng.sample(others, rng.randint(1, len(others))))
            if rng.random() < 0.5:  # the peers do not hear the node; it still hears them
                return (f"asym {node} -/-> {','.join(peers)}",
                        [(node, p) for p in peers])
            return f"asym {','.join(peers)} -/-> {node}", [(p, node) for p in peers]
        bridge = rng.choice(members)
        rest = [m for m in members if m != bridge]
        rng.shuffle(rest)
        cut = rng.randint(1, len(rest) - 1)
        left, right = sorted(rest[:cut]), sorted(rest[cut:])
        return (f"bridge {bridge}: {','.join(left)} | {','.join(right)}",
                _between(left, right))

    # ---- clocks and membership -----------------------------------------------------------------

    def _clock_jump(self) -> None:
        if not self._live():
            return
        sim = self.sim
        node = sim.rng.choice(sim.node_ids())
        delta = sim.rng.randint(1, self.options.clock_jump_ms_max) * sim.rng.choice((-1, 1))
        sim.jump_clock(node, delta)
        self._after_gap(self._clock_jump)

    def _join(self) -> None:
        if self._live():
            self.sim.add_node()


def _between(a: list[str], b: list[str]) -> Pairs:
    """Both directions between every node of ``a`` and every node of ``b``."""
    return [(x, y) for x in a for y in b] + [(y, x) for x in a for y in b]


class LeaveAdmin:
    """The operator removing one member: ``cluster leave <node>`` then ``cluster commit`` at
    the claimant, retried (a new attempt from ``leave``) on errors, refusals and silence."""

    def __init__(self, sim: Simulator, n: int) -> None:
        self.sim = sim
        self.n = n
        self.target: str | None = None
        self.attempts = 0
        self.req_id = 0
        self.step = ""  # "leave" or "commit" while a request is out
        self.node = ""  # where the request went
        self.done = False
        self.stopped = False

    def stop(self) -> None:
        if not self.done and not self.stopped and self.attempts:
            self.sim.trace.add(self.sim.now_ms, "-", "leave",
                               "stopped at healing before its commit was confirmed")
        self.stopped = True

    def _ring(self) -> Ring | None:
        rings = [c.ring for c in (self.sim.nodes[n].core for n in self.sim.up_ids())
                 if c is not None and c.ring is not None]
        return max(rings, key=lambda r: r.version, default=None)

    def attempt(self) -> None:
        if self.done or self.stopped:
            return
        sim = self.sim
        if self.attempts >= LEAVE_ATTEMPTS_MAX:
            sim.trace.add(sim.now_ms, "-", "leave", f"abandoned after {self.attempts} attempts")
            self.stopped = True
            return
        self.attempts += 1
        ring = self._ring()
        valid = [m.node_id for m in ring.members if m.status is MemberStatus.VALID] if ring else []
        if ring is None or (self.target is None and len(valid) <= self.n):
            # Leaving now would leave fewer than N owners (a join may still be on its way).
            self._retry()
            return
        if self.target is None:
            self.target = sim.rng.choice(valid)
            sim.trace.add(sim.now_ms, "-", "leave", f"chose {self.target}")
        elif self.target not in valid:
            self._finish("committed (found leaving)")
            return
        self._send(ring.claimant, "leave")

    def _send(self, node: str, step: str) -> None:
        sim = self.sim
        self.req_id += 1
        self.step = step
        self.node = node
        assert self.target is not None
        msg = ClusterRequest(self.req_id, step, self.target if step == "leave" else "")
        if step == "commit":
            sim.membership_times.append(sim.now_ms)
        sim.client_send(node, ADMIN_REF, msg)
        req_id = self.req_id
        sim.call_at(sim.now_ms + 5_000, "admin timeout",
                    lambda: self._retry() if self.req_id == req_id and self.step else None)

    def _retry(self) -> None:
        self.step = ""
        if not self.done and not self.stopped:
            self.sim.call_at(self.sim.now_ms + LEAVE_RETRY_MS, "leave retry", self.attempt)

    def _finish(self, how: str) -> None:
        self.done = True
        self.step = ""
        self.sim.trace.add(self.sim.now_ms, "-", "leave", f"{self.target} {how}")

    def on_reply(self, ref: int, msg: object) -> None:
        if getattr(msg, "req_id", None) != self.req_id or not self.step or self.stopped:
            return
        if isinstance(msg, ClusterReply) and self.step == "leave":
            self._send(self.node, "commit")
        elif isinstance(msg, ClusterReply):
            self._finish("committed")
        elif isinstance(msg, ErrorReply):
            self._retry()

    def on_refused(self, ref: int, req_id: int) -> None:
        if self.step and req_id == self.req_id:
            self._retry()

    def on_connection_lost(self, node: str) -> None:
        if self.step and node == self.node:
            self._retry()
