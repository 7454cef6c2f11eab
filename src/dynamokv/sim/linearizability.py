"""A per-key linearizability checker for histories of one-item DynamoDB operations.

Owns: ``Op`` (one operation of a history), the register model (``apply``), ``check_key`` and
``check_history`` (Wing & Gong's search with Lowe's memoisation), ``KeyVerdict`` / ``Verdict``
and the limits ``MAX_OPS_PER_KEY`` and ``STEP_BUDGET``.
May import: stdlib only.

The model: each key is a register holding ``bytes | None`` (one item's value; ``None`` = no
item), with these operations (``Op.kind``):

- ``read``: returns the value (``result``: ``bytes | None``).
- ``put`` ``value``: sets it. ``delete``: sets ``None``.
- ``cput`` ``value`` if current == ``expected`` (``None``: the item must not exist), else it
  fails with ConditionalCheckFailed: ``result`` is ``True`` (applied) or ``False`` (failed);
  the failure is an observation like a read's. ``cdelete``: the same, setting ``None``.
- ``add`` ``amount``: UpdateItem ADD on a number: new = old + amount (absent counts as 0);
  ``result`` is the new value. Adding to a value that is not a number cannot happen.

Values that spell a decimal number (``b"5"``, ``b"5.0"``, ``b"-1e2"``) are compared as
numbers, as DynamoDB compares N values; every other value as bytes.

Times are those of the client: ``invoke`` when it sent the request, ``complete`` when it got the
answer, or ``None`` for an unknown outcome (timeout, lost connection): such an operation may
have taken effect at any time after ``invoke``, or never, and its ``result`` is not used (an
unknown read constrains nothing and is dropped). Op A precedes op B in real time when
``A.complete < B.invoke``; equal times count as concurrent (clocks of whole milliseconds).

The search (Wing & Gong 1993, with Lowe's memoisation, "Testing for linearizability", 2017, as
in porcupine): depth-first over linearization orders. The next op may be any op not yet
linearized that was invoked no later than the earliest completion among the definite ops not
yet linearized; it must be legal in the current state. A configuration -- the definite ops
linearized (a bitmask), the unknown ops linearized (another), the register -- is explored once.
Three reductions keep the search small:

- an op that never changes the state (a read, a failed conditional write) is linearized as
  soon as it is legal, without branching: any linearization with it later stays valid with it
  moved first;
- a configuration is dominated, and skipped, by an explored one with the same definite ops and
  state and a subset of its unknown ops: leaving an unknown op out is always allowed;
- an unknown op is only linearized where it changes the state and where that can matter: just
  before a state-dependent definite op it makes legal, possibly through a chain of other
  unknown conditionals and adds (``_Search._worth_injecting`` has the argument). Without this,
  every unknown op could be injected at every later point, and a violation late in a history
  with a few dozen unknown ops took minutes to prove.

The history is linearizable when every definite op is linearized.

Bounds: keys with more than ``MAX_OPS_PER_KEY`` operations are skipped (outcome ``skipped``,
with the reason), and the search gives up after ``STEP_BUDGET`` configurations (outcome
``unknown``): the search is exponential in the worst case, and the simulator's histories must
never hang a run. Concurrency (how many ops overlap) is what costs; the length of a history
with few clients barely does (see ``docs/simulator.md`` for measured figures).

On a violation the verdict names the key, the longest linearizable prefix found (in order, with
the state after it), and the operations at the point where it got stuck: the op that had to go
next (the first definite op to complete) and the other candidates, each with why it could not
be next.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

MAX_OPS_PER_KEY = 5_000  # bitmasks of this many bits, one per explored configuration
STEP_BUDGET = 100_000

Kind = Literal["read", "put", "delete", "cput", "cdelete", "add"]
KINDS = ("read", "put", "delete", "cput", "cdelete", "add")
Outcome = Literal["ok", "violation", "unknown", "skipped"]
Value = bytes | None

SUMS_MAX = 4_096  # see _Search._worth_injecting
_NUMBER = re.compile(rb"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Op:
    """One client operation on one key; see the module docstring for each kind's fields."""

    key: Hashable
    kind: Kind
    invoke: float
    complete: float | None  # None: unknown outcome
    value: Value = None  # put, cput
    expected: Value = None  # cput, cdelete: the value the item must have (None: absent)
    amount: int | Decimal = 0  # add
    result: Any = None  # read: the value; cput/cdelete: applied?; add: the new value
    label: str = ""  # who / which request, for reports

    def describe(self) -> str:
        what: str = self.kind
        if self.kind in ("put", "cput"):
            what += f" {_show(self.value)}"
        if self.kind in ("cput", "cdelete"):
            what += f" if {_show(self.expected)}"
        if self.kind == "add":
            what += f" {self.amount}"
        end = "?" if self.complete is None else _time(self.complete)
        if self.complete is None:
            got = "unknown"
        elif self.kind in ("put", "delete"):
            got = "ok"
        elif self.kind in ("cput", "cdelete"):
            got = "applied" if self.result else "ConditionalCheckFailed"
        elif self.kind == "add":
            got = _show(_to_value(self.result))
        else:
            got = _show(self.result)
        label = f"{self.label} " if self.label else ""
        return f"{label}[{_time(self.invoke)}..{end}] {what} -> {got}"


def _time(t: float) -> str:
    return str(int(t)) if float(t).is_integer() else f"{t:g}"


def _show(value: Value) -> str:
    return "absent" if value is None else repr(value)


def _number(value: Value) -> Decimal | None:
    if value is None or not _NUMBER.fullmatch(value):
        return None
    try:
        return Decimal(value.decode("ascii"))
    except InvalidOperation:
        return None


def _encode(number: Decimal) -> bytes:
    text = format(number.normalize(), "f")
    return b"0" if text in ("-0", "0") else text.encode("ascii")


def canonical(value: Value) -> Value:
    """The register's form of ``value``: numbers normalised (``b"5.0"`` -> ``b"5"``)."""
    number = _number(value)
    return value if number is None else _encode(number)


def _to_value(result: Any) -> Value:
    if isinstance(result, bytes) or result is None:
        return canonical(result)
    return _encode(Decimal(result))


def apply(state: Value, op: Op) -> tuple[bool, Value]:
    """``(legal, new state)`` of ``op`` linearized in ``state`` with its observed result (an
    unknown op: as if it succeeded where it can). Values must be ``canonical``."""
    kind = op.kind
    if kind == "read":
        return op.result == state, state
    if kind == "put":
        return True, op.value
    if kind == "delete":
        return True, None
    if kind in ("cput", "cdelete"):
        new = op.value if kind == "cput" else None
        holds = state == op.expected
        if op.complete is None:
            return True, new if holds else state
        return holds == bool(op.result), new if holds else state
    old = Decimal(0) if state is None else _number(state)
    if old is None:
        return False, state  # ADD to a value that is not a number: refused, never applied
    new_value = _encode(old + Decimal(op.amount))
    if op.complete is None:
        return True, new_value
    return _to_value(op.result) == new_value, new_value


def _never_changes(op: Op) -> bool:
    """Ops that leave the state as it was wherever they are legal: linearizing one as soon as it
    is legal loses no linearization (move it first in any valid order: still valid)."""
    if op.complete is None:
        return False
    if op.kind == "read":
        return True
    if op.kind in ("cput", "cdelete"):
        return not op.result
    return op.kind == "add" and op.amount == 0


def _why_not(state: Value, op: Op) -> str:
    if op.kind == "read":
        return f"read {_show(op.result)} but the item was {_show(state)}"
    if op.kind in ("cput", "cdelete"):
        if op.result:
            return f"applied, but the item was {_show(state)}, not {_show(op.expected)}"
        return f"failed its condition, but the item was {_show(state)}"
    if op.kind == "add":
        if state is not None and _number(state) is None:
            return f"ADD to {_show(state)}, which is not a number"
        return f"returned {_show(_to_value(op.result))} from {_show(state)}"
    return "not legal here"


@dataclass(slots=True)
class KeyVerdict:
    key: Hashable
    outcome: Outcome
    ops: int
    steps: int = 0
    message: str = ""
    prefix: list[Op] = field(default_factory=list)  # the longest linearizable prefix found
    prefix_state: Value = None  # the register after it
    stuck: list[tuple[Op, str]] = field(default_factory=list)  # candidates there, and why not

    def explain(self) -> str:
        lines = [f"key {self.key!r}: {self.outcome} ({self.ops} ops, {self.steps} steps)"
                 + (f": {self.message}" if self.message else "")]
        if self.outcome == "violation":
            lines.append(f"  longest linearizable prefix ({len(self.prefix)} ops), "
                         f"leaving {_show(self.prefix_state)}:")
            shown = self.prefix[-8:]
            if len(self.prefix) > len(shown):
                lines.append(f"    ... {len(self.prefix) - len(shown)} earlier ops")
            lines.extend(f"    {op.describe()}" for op in shown)
            lines.append("  then no operation could go next:")
            lines.extend(f"    {op.describe()}: {why}" for op, why in self.stuck)
        return "\n".join(lines)


@dataclass(slots=True)
class Verdict:
    keys: list[KeyVerdict]

    @property
    def outcome(self) -> Outcome:
        """``violation`` if any key has one, else ``unknown`` / ``skipped`` if any, else ok."""
        outcomes = {k.outcome for k in self.keys}
        for worst in ("violation", "unknown", "skipped"):
            if worst in outcomes:
                return worst  # type: ignore[return-value]
        return "ok"

    @property
    def violations(self) -> list[KeyVerdict]:
        return [k for k in self.keys if k.outcome == "violation"]

    def explain(self) -> str:
        return "\n".join(k.explain() for k in self.keys if k.outcome != "ok") or "linearizable"


def check_history(ops: Iterable[Op], *, max_ops_per_key: int = MAX_OPS_PER_KEY,
                  step_budget: int = STEP_BUDGET) -> Verdict:
    """Check every key's sub-history on its own (linearizability is compositional)."""
    by_key: dict[Hashable, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    return Verdict([check_key(key_ops, max_ops=max_ops_per_key, step_budget=step_budget)
                    for key_ops in by_key.values()])


def check_key(ops: Sequence[Op], *, initial: Value = None, max_ops: int = MAX_OPS_PER_KEY,
              step_budget: int = STEP_BUDGET) -> KeyVerdict:
    """Is the history of one key (starting from ``initial``) linearizable?"""
    key = ops[0].key if ops else None
    for op in ops:
        _validate(op, key)
    kept = [_canonical_op(op) for op in ops
            if not (op.kind == "read" and op.complete is None)]
    if len(kept) > max_ops:
        return KeyVerdict(key, "skipped", len(kept),
                          message=f"{len(kept)} operations on one key, more than the bound "
                                  f"of {max_ops}; split the run or raise max_ops")
    return _Search(kept, canonical(initial), step_budget).run(key)


def _validate(op: Op, key: Hashable) -> None:
    if op.key != key:
        raise ValueError(f"check_key got ops of two keys: {key!r} and {op.key!r}")
    if op.kind not in KINDS:
        raise ValueError(f"unknown operation kind {op.kind!r}; known: {', '.join(KINDS)}")
    if op.complete is not None and op.complete < op.invoke:
        raise ValueError(f"operation completes before it is invoked: {op.describe()}")
    if op.kind == "add" and op.complete is not None and op.result is None:
        raise ValueError(f"a completed add must carry the new value: {op.describe()}")


def _remember(seen: dict[tuple[int, Value], list[int]], where: tuple[int, Value],
              applied: int) -> bool:
    """Record a configuration; False if it is dominated by one explored before (same definite
    ops and state, a subset of these unknown ops applied: everything still possible here was
    possible there)."""
    explored = seen.get(where)
    if explored is None:
        seen[where] = [applied]
        return True
    if any(prev & ~applied == 0 for prev in explored):
        return False
    explored[:] = [prev for prev in explored if applied & ~prev != 0]  # drop the dominated
    explored.append(applied)
    return True


def _canonical_op(op: Op) -> Op:
    result = op.result
    if op.kind == "read":
        result = canonical(result)
    return Op(op.key, op.kind, op.invoke, op.complete, canonical(op.value),
              canonical(op.expected), op.amount, result, op.label)


@dataclass(slots=True)
class _Frame:
    done: int  # bitmask of the definite ops linearized
    applied: int  # bitmask of the unknown ops linearized
    state: Value
    low: int  # index in ``definite_by_invoke`` of the first definite op not linearized
    low_complete: int  # index in completion order of the first definite op not linearized
    path_len: int  # length of the path when this frame was entered (after forced moves)
    candidates: list[int]
    next: int = 0
    plan: _Plan | None = None  # made when an unknown op is first considered here


@dataclass(slots=True)
class _Plan:
    """What unknown ops injected at a frame could lead to (``_Search._worth_injecting``)."""

    targets: list[Op]  # state-dependent definite candidates
    links: list[Op]  # available unknown conditionals
    sums: set[Decimal] | None  # what the available unknown adds can add; None: too many

    def reaches(self, x: Value, want: Value) -> bool:
        """Can the adds take ``x`` to ``want`` (over-approximated)?"""
        if x == want:
            return True
        if self.sums is None:
            return True
        base = Decimal(0) if x is None else _number(x)
        goal = _number(want)
        return base is not None and goal is not None and goal - base in self.sums

    def satisfied(self, x: Value, o: Op) -> bool:
        """Is definite op ``o`` legal in some state the adds can take ``x`` to?"""
        if o.kind == "read":
            return self.reaches(x, o.result)
        if o.kind in ("cput", "cdelete"):
            if o.result:
                return self.reaches(x, o.expected)
            return x != o.expected or self.sums is None or len(self.sums) > 1
        wanted = _to_value(o.result)
        before = _number(wanted) if wanted is not None else None
        if before is None:
            return False
        return self.reaches(x, _encode(before - Decimal(o.amount)))


def _subset_sums(amounts: list[Decimal]) -> set[Decimal] | None:
    sums = {Decimal(0)}
    for amount in amounts:
        sums |= {s + amount for s in sums}
        if len(sums) > SUMS_MAX:
            return None
    return sums


class _Search:
    """Configurations are ``(done, applied, state)``: the definite ops linearized, the unknown
    ops linearized, the register. Success depends only on ``done``, ``state`` and the unknown
    ops still available, so a configuration is dominated -- and skipped -- when one with the
    same ``done`` and ``state`` and a subset of its ``applied`` was explored before. Definite
    candidates are tried before unknown ones, so the configurations with fewer unknown ops
    applied come first."""

    def __init__(self, ops: list[Op], initial: Value, budget: int) -> None:
        self.ops = ops
        self.initial = initial
        self.budget = budget
        n = len(ops)
        order = sorted(range(n), key=lambda i: (ops[i].invoke, i))
        self.by_invoke = order
        self.definite_by_invoke = [i for i in order if ops[i].complete is not None]
        self.unknown_by_invoke = [i for i in order if ops[i].complete is None]
        self.by_complete = sorted(self.definite_by_invoke, key=lambda i: (ops[i].complete, i))
        self.bit = [1 << i for i in range(n)]
        self.all_definite = sum(self.bit[i] for i in self.definite_by_invoke)
        self.path: list[int] = []
        self.best: list[int] = []
        self.best_state: Value = initial
        self.steps = 0

    def run(self, key: Hashable) -> KeyVerdict:
        ops, bit = self.ops, self.bit
        seen: dict[tuple[int, Value], list[int]] = {}
        first = self._enter(0, 0, self.initial, 0, 0)
        if first is None:
            return self._verdict(key, "ok")
        stack = [first]
        while stack:
            frame = stack[-1]
            if frame.next >= len(frame.candidates):
                stack.pop()
                if stack:
                    del self.path[stack[-1].path_len:]
                continue
            i = frame.candidates[frame.next]
            frame.next += 1
            op = ops[i]
            legal, state = apply(frame.state, op)
            unknown = op.complete is None
            if not legal or (unknown and state == frame.state):
                continue  # an unknown op that changes nothing here is as good as never
            if unknown and not self._worth_injecting(state, frame, i):
                continue
            done = frame.done if unknown else frame.done | bit[i]
            applied = frame.applied | bit[i] if unknown else frame.applied
            if not _remember(seen, (done, state), applied):
                continue
            self.steps += 1
            if self.steps > self.budget:
                return self._verdict(key, "unknown",
                                     f"gave up after {self.budget} steps (the step budget)")
            self.path.append(i)
            child = self._enter(done, applied, state, frame.low, frame.low_complete)
            if child is None:
                return self._verdict(key, "ok")
            stack.append(child)
        return self._verdict(key, "violation")

    def _worth_injecting(self, after: Value, frame: _Frame, unknown: int) -> bool:
        """Whether linearizing unknown op ``unknown`` here, leaving ``after``, can matter.

        In a valid order, move each unknown op as late as it goes: just before the next
        definite op (real time allows it: nothing must follow an op that never completed).
        Then a run of unknown ops before a definite op ``o`` matters only if ``o`` depends on
        the state (not a blind put or delete, which would overwrite it) and is legal after the
        run, and an op of the run followed by a blind unknown put or delete can be dropped. So
        an injection is tried only if, from ``after``, the other available unknown
        conditionals and adds can reach a state where some state-dependent candidate is
        legal (most often: none needed). That reachability is over-approximated (adds may
        count twice, sums past ``SUMS_MAX`` count as anything), so no linearization is lost.
        """
        plan = frame.plan
        if plan is None:
            plan = frame.plan = self._plan(frame)
        if not plan.targets:
            return False
        bases = [after]
        for x in bases:
            if any(plan.satisfied(x, o) for o in plan.targets):
                return True
            for link in plan.links:
                new = link.value if link.kind == "cput" else None
                if new not in bases and plan.reaches(x, link.expected):
                    bases.append(new)
        return False

    def _plan(self, frame: _Frame) -> _Plan:
        ops = self.ops
        targets = [ops[j] for j in frame.candidates
                   if ops[j].complete is not None and ops[j].kind not in ("put", "delete")]
        available = [ops[j] for j in frame.candidates
                     if ops[j].complete is None and not self.bit[j] & frame.applied]
        links = [o for o in available if o.kind in ("cput", "cdelete")]
        amounts = [Decimal(o.amount) for o in available if o.kind == "add"]
        return _Plan(targets, links, _subset_sums(amounts))

    def _enter(self, done: int, applied: int, state: Value, low: int, low_c: int
               ) -> _Frame | None:
        """The frame of a configuration after its forced moves, or ``None`` when every definite
        op is linearized (success)."""
        ops, bit = self.ops, self.bit
        by_invoke = self.definite_by_invoke
        while True:
            if done == self.all_definite:
                return None
            while bit[by_invoke[low]] & done:
                low += 1
            while bit[self.by_complete[low_c]] & done:
                low_c += 1
            horizon = ops[self.by_complete[low_c]].complete
            assert horizon is not None
            candidates = []
            forced = -1
            for j in range(low, len(by_invoke)):
                i = by_invoke[j]
                op = ops[i]
                if op.invoke > horizon:
                    break
                if bit[i] & done:
                    continue
                if _never_changes(op) and apply(state, op)[0]:
                    forced = i
                    break
                candidates.append(i)
            if forced < 0:
                for i in self.unknown_by_invoke:
                    if ops[i].invoke > horizon:
                        break
                    if not bit[i] & applied:
                        candidates.append(i)
                self._note_depth(state)
                return _Frame(done, applied, state, low, low_c, len(self.path), candidates)
            done |= bit[forced]
            self.path.append(forced)

    def _note_depth(self, state: Value) -> None:
        if len(self.path) > len(self.best):
            self.best = list(self.path)
            self.best_state = state

    def _verdict(self, key: Hashable, outcome: Outcome, message: str = "") -> KeyVerdict:
        verdict = KeyVerdict(key, outcome, len(self.ops), self.steps, message)
        if outcome == "violation":
            verdict.prefix = [self.ops[i] for i in self.best]
            verdict.prefix_state = self.best_state
            verdict.stuck = self._stuck()
        return verdict

    def _stuck(self) -> list[tuple[Op, str]]:
        """At the end of the longest prefix: the op that had to go next and the others that
        could have, each with why it could not."""
        ops = self.ops
        done = set(self.best)
        state = self.best_state
        pending = [i for i in self.by_complete if i not in done]
        horizon = ops[pending[0]].complete if pending else _INF
        assert horizon is not None
        out = []
        for i in self.by_invoke:
            op = ops[i]
            if i in done or op.invoke > horizon:
                continue
            legal, _ = apply(state, op)
            why = _why_not(state, op) if not legal else "legal, but every order after it fails"
            out.append((op, why))
        return out
