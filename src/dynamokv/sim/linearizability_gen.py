"""Random histories that are linearizable by construction, and corruptions of them.

Owns: ``random_history`` and ``corrupt``: the linearizability checker's own test material (its
property tests and its benchmark), drawn from an injected ``random.Random``.
May import: stdlib, ``dynamokv.sim.linearizability``.

``random_history`` runs the register model sequentially: the k-th operation takes effect at
an increasing instant ``T_k``, and its result is the model's. Each operation belongs to one of
``concurrency`` clients (a client's operations never overlap), and its window is drawn around
``T_k``: invoked up to ``spread`` before, completed up to ``spread`` after (never before the
client's previous operation completed). So at most ``concurrency`` operations overlap, and the
history is linearizable: ordering by ``T_k`` is a witness. Writes end with an unknown outcome
with probability ``unknown``; half of those took effect at ``T_k``, half never did.

Every value is a decimal number (puts write fresh multiples of 1000; adds add 1 to 3), so
``add`` applies everywhere.
"""

from __future__ import annotations

import dataclasses
import random

from dynamokv.sim.linearizability import Kind, Op, Value, apply

_WRITES = ("put", "delete", "cput", "cdelete", "add")


def random_history(rng: random.Random, count: int, *, concurrency: int = 5, spread: int = 8,
                   unknown: float = 0.0, key: str = "k") -> list[Op]:
    """``count`` operations on ``key``; see the module docstring."""
    free_at = [0] * concurrency  # when each client's previous operation completed
    state: Value = None
    written: list[Value] = [None]
    ops: list[Op] = []
    t = 0
    for k in range(count):
        t += rng.randint(1, 3)
        idle = [c for c in range(concurrency) if free_at[c] <= t]
        if not idle:
            t = min(free_at)
            idle = [c for c in range(concurrency) if free_at[c] <= t]
        client = rng.choice(idle)
        invoke = max(free_at[client], t - rng.randint(0, spread))
        complete = t + rng.randint(0, spread)
        op = _draw(rng, key, k, state, written, invoke, complete, client)
        if op.kind in _WRITES and rng.random() < unknown:
            took_effect = rng.random() < 0.5
            op = dataclasses.replace(op, complete=None, result=None)
            if took_effect:
                state = apply(state, op)[1]
            free_at[client] = complete + 1
            ops.append(op)
            continue
        legal, state = apply(state, op)
        assert legal, op
        written.append(state)
        free_at[client] = complete + 1
        ops.append(op)
    return ops


def _draw(rng: random.Random, key: str, k: int, state: Value, written: list[Value],
          invoke: int, complete: int, client: int) -> Op:
    """The k-th operation with the result the model gives it in ``state``."""
    label = f"c{client}#{k}"
    roll = rng.random()
    if roll < 0.35:
        return Op(key, "read", invoke, complete, result=state, label=label)
    if roll < 0.55:
        return Op(key, "put", invoke, complete, value=str(1000 * (k + 1)).encode(), label=label)
    if roll < 0.6:
        return Op(key, "delete", invoke, complete, label=label)
    if roll < 0.85:
        kind: Kind = "cput" if roll < 0.8 else "cdelete"
        expected = state if rng.random() < 0.6 else rng.choice(written)
        value = str(1000 * (k + 1)).encode() if kind == "cput" else None
        return Op(key, kind, invoke, complete, value=value, expected=expected,
                  result=expected == state, label=label)
    amount = rng.randint(1, 3)
    new = apply(state, Op(key, "add", 0, None, amount=amount))[1]
    assert new is not None
    return Op(key, "add", invoke, complete, amount=amount, result=int(new), label=label)


def corrupt(rng: random.Random, ops: list[Op]) -> tuple[list[Op], str]:
    """``ops`` with one observed result changed: a read or an add returns something else, a
    conditional write's outcome flips. Returns the new history and what was changed."""
    observed = [i for i, op in enumerate(ops)
                if op.complete is not None and op.kind in ("read", "cput", "cdelete", "add")]
    if not observed:
        raise ValueError("no operation with an observed result to corrupt")
    i = rng.choice(observed)
    op = ops[i]
    if op.kind == "read":
        values = sorted({o.value for o in ops if o.value is not None} | {op.result} - {None})
        others = [v for v in values if v != op.result]
        if op.result is not None:
            others.append(None)
        changed = dataclasses.replace(op, result=rng.choice(others) if others else b"-1")
    elif op.kind == "add":
        changed = dataclasses.replace(op, result=op.result + rng.choice((-1, 1)))
    else:
        changed = dataclasses.replace(op, result=not op.result)
    out = list(ops)
    out[i] = changed
    return out, f"#{i} {op.describe()} became {changed.describe()}"
