"""``dynamokv ring``'s replica check: it warns only when keys really get fewer than N distinct
replicas (fewer owning nodes than N), never for windows whose preference lists skip a repeat."""

from __future__ import annotations

import io

from rich.console import Console

from dynamokv.cli.render import ring_renderables, ring_summary
from dynamokv.core.claim import balance, claim
from dynamokv.core.ring import Member


def _text(summary: dict) -> str:  # type: ignore[type-arg]
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    for item in ring_renderables(summary):
        console.print(item)
    return out.getvalue()


def _ring(nodes: int, q: int = 64):  # type: ignore[no-untyped-def]
    members = [Member(f"n{i}", f"127.0.0.1:{7000 + i}") for i in range(1, nodes + 1)]
    return claim(None, members, q=q, target_n=3, claimant="n1")


def test_three_nodes_give_every_key_three_replicas_and_no_warning() -> None:
    ring = _ring(3)
    # 64 partitions over 3 nodes cannot be spaced 3 apart everywhere (ceil(64/3)*3 > 64) ...
    assert balance(ring, 3).violations
    # ... yet every preference list still names 3 distinct nodes.
    assert all(len(ring.preference_list(p, 3)) == 3 for p in range(ring.q))
    summary = ring_summary(ring, balance(ring, 3))
    assert summary["replicas_per_key"] == 3
    text = _text(summary)
    assert "fewer" not in text
    assert "every key's preference list names 3 distinct nodes" in text
    assert "replica count unaffected" in text


def test_fewer_owners_than_n_is_the_warning() -> None:
    ring = _ring(2)
    summary = ring_summary(ring, balance(ring, 3))
    assert summary["replicas_per_key"] == 2
    assert "every key gets 2 distinct replica(s), fewer than N=3" in _text(summary)
