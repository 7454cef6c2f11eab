"""Claim: which node owns which of the ring's Q equal partitions (the paper's strategy 3).

Owns: ``claim`` (members in, next ``Ring`` out), ``balance`` / ``BalanceReport`` (how good a
ring's ownership is) and ``moves`` (what a ring change hands over).
May import: the standard library (no ``random``, ``time`` or ``os``), ``dynamokv.core.ring``,
``dynamokv.core.claim_flow`` (the matching and min-cost-flow machinery used by ``_drain`` and
``_fill``).

Vocabulary: ``q`` partitions, ``S`` owning members (status JOINING or VALID), replication factor
``N`` (``target_n``). The preference list of a partition is its owner and the owners met walking
clockwise, so it names ``N`` distinct nodes exactly when every run of ``N`` consecutive partitions
(wrapping) has distinct owners; equivalently, when every node's partitions are at least ``N``
apart. With ``S < N`` the best possible is ``S`` apart, so everything below uses
``n = min(N, S)``.

A fresh ring is striped so that every node's partitions are as far apart as the balanced counts
allow (see ``_stripe``); that meets the ``n`` spacing whenever any balanced assignment can, which
is exactly when ``ceil(q / S) * n <= q`` (``BalanceReport.feasible``). A change to an existing
ring moves the fewest partitions: a leaver's partitions go to the remaining nodes (a min-cost
flow), a joiner takes partitions from the others (a capacitated matching), and no other partition
changes hands. Priorities, in order: minimal movement (always), balance to floor/ceil (always
reachable by these moves), then spacing. A join from a sound ring keeps the spacing whenever the
new shape is feasible; a leave may not (see ``_drain``), and ``balance`` reports the windows that
break. Everything is deterministic: no randomness, ties broken by node id and partition index.

The design note is ``docs/ring-and-claim.md``.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dynamokv.core.claim_flow import _b_match, _min_cost_assign
from dynamokv.core.ring import Member, MemberStatus, Ring

OWNING_STATUSES = frozenset({MemberStatus.JOINING, MemberStatus.VALID})


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def claim(
    ring: Ring | None,
    members: Sequence[Member],
    *,
    q: int,
    target_n: int,
    claimant: str,
    restripe: bool = False,
) -> Ring:
    """The next ring for ``members``: balanced, ``target_n``-spaced when possible, least movement.

    ``ring`` is the current ring (``None`` for a new cluster, which gets version 1); the result's
    version is ``ring.version + 1``. JOINING and VALID members own partitions, LEAVING and
    EXITING ones own none afterwards, and owners that are no longer members lose theirs too.
    ``restripe=True`` ignores the current assignment and lays the ring out afresh (moving many
    partitions), for an operator who prefers a perfect layout to minimal handoff.

    Raises ``ValueError`` for duplicate node ids, no owning member, ``target_n < 1`` or a ring of
    another size (resizing a ring is not supported).
    """
    if target_n < 1:
        raise ValueError(f"target_n={target_n} must be at least 1")
    ids = [m.node_id for m in members]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate node ids in members")
    owning = sorted(m.node_id for m in members if m.status in OWNING_STATUSES)
    if not owning:
        raise ValueError("no JOINING or VALID member to own the partitions")
    if ring is not None and ring.q != q:
        raise ValueError(f"cannot resize a ring from q={ring.q} to q={q}")
    n = min(target_n, len(owning))
    if ring is None or restripe:
        owners = _stripe(owning, q, n)
    else:
        owners = _rearrange(list(ring.owners), owning, n)
    previous: tuple[str, ...] = ()
    if ring is not None:
        # Remember the owners this change replaces (kept across changes that move nothing), so
        # Paxos can ask majorities of both the old and the new preference lists.
        previous = ring.owners if tuple(owners) != ring.owners else ring.previous_owners
    return Ring(
        q=q,
        owners=tuple(owners),
        members=tuple(sorted(members, key=lambda m: m.node_id)),
        version=1 if ring is None else ring.version + 1,
        claimant=claimant,
        previous_owners=previous,
    )


@dataclass(frozen=True, slots=True)
class BalanceReport:
    """How well a ring spreads partitions and replicas.

    ``nodes`` are the owning members (JOINING/VALID) plus any other node that still owns a
    partition. ``ideal = q / len(nodes)``; ``imbalance = (max_count - ideal) / ideal`` (0.0 is
    perfect; a ring balanced to floor/ceil has ``imbalance < 1 / ideal``). ``effective_n`` is
    ``min(target_n, len(nodes))``; ``violations`` holds the first partition of every window of
    ``effective_n`` consecutive partitions (wrapping) whose owners are not all distinct; a
    partition whose window starts there has fewer than ``effective_n`` distinct nodes in its
    preference list. ``feasible`` says whether any balanced ring of this shape can have no
    violations (``ceil(q / S) * effective_n <= q``), to tell a claim's shortfall from a shape
    that admits no better.
    """

    q: int
    target_n: int
    effective_n: int
    counts: tuple[tuple[str, int], ...]  # (node, partitions owned), sorted by node
    max_count: int
    min_count: int
    ideal: float
    imbalance: float
    violations: tuple[int, ...]
    feasible: bool

    @property
    def balanced(self) -> bool:
        """Every node owns ``floor(q/S)`` or ``ceil(q/S)`` partitions."""
        return self.max_count - self.min_count <= 1

    @property
    def ok(self) -> bool:
        """Balanced, and every preference list names ``effective_n`` distinct nodes."""
        return self.balanced and not self.violations

    def count(self, node: str) -> int:
        return dict(self.counts).get(node, 0)


def balance(ring: Ring, target_n: int) -> BalanceReport:
    """Measure ``ring``: partitions per node, imbalance, and windows breaking ``target_n``."""
    if target_n < 1:
        raise ValueError(f"target_n={target_n} must be at least 1")
    nodes = {m.node_id for m in ring.members if m.status in OWNING_STATUSES}
    nodes.update(ring.owners)
    per_node = dict.fromkeys(sorted(nodes), 0)
    for owner in ring.owners:
        per_node[owner] += 1
    s = len(per_node)
    n = min(target_n, s)
    ideal = ring.q / s
    max_count = max(per_node.values())
    return BalanceReport(
        q=ring.q,
        target_n=target_n,
        effective_n=n,
        counts=tuple(per_node.items()),
        max_count=max_count,
        min_count=min(per_node.values()),
        ideal=ideal,
        imbalance=(max_count - ideal) / ideal,
        violations=tuple(_violating_windows(ring.owners, n)),
        feasible=-(-ring.q // s) * n <= ring.q,
    )


def moves(old: Ring, new: Ring) -> list[tuple[int, str, str]]:
    """The partitions whose owner differs between ``old`` and ``new``: ``(partition, from, to)``."""
    if old.q != new.q:
        raise ValueError(f"rings of different sizes: q={old.q} and q={new.q}")
    return [
        (p, before, after)
        for p, (before, after) in enumerate(zip(old.owners, new.owners, strict=True))
        if before != after
    ]


# --------------------------------------------------------------------------------------------
# A fresh ring
# --------------------------------------------------------------------------------------------


def _stripe(nodes: Sequence[str], q: int, n: int) -> list[str]:
    """Lay ``nodes`` out on ``q`` partitions: balanced, spaced as widely as balance allows.

    With ``q = k*S + r``, the first ``r`` nodes own ``k+1`` partitions and the rest ``k``. Let
    ``C = ceil(q/S)`` and cut the ring into ``C`` consecutive blocks of ``floor(q/C)`` or
    ``ceil(q/C)`` partitions (larger ones first). The list of owners, each node repeated for
    its count in node order, is dealt column-wise: item ``j`` goes to block ``j % C``. A node's
    run is at most ``C`` long, so it lands in distinct consecutive blocks: each block holds
    distinct nodes and a node misses at most one block. Any balanced ring has a node with ``C``
    partitions, so no balanced ring spaces every node more than ``floor(q/C)`` apart; blocks at
    least ``m = min(n, floor(q/C))`` long make that reachable, and the order within blocks
    decides the rest (``_order_blocks``).
    """
    s = len(nodes)
    k, r = divmod(q, s)
    run = [node for i, node in enumerate(nodes) for _ in range(k + 1 if i < r else k)]
    blocks = -(-q // s)
    contents = [run[b::blocks] for b in range(blocks)]
    m = min(n, min(len(c) for c in contents))
    ordered = _order_blocks(contents, m) or contents
    return [node for block in ordered for node in block]


def _order_blocks(contents: Sequence[Sequence[str]], m: int) -> list[list[str]] | None:
    """Order each block so that every node's consecutive partitions are ``m`` apart.

    Within a block, nodes follow a per-block hash order, so a node's neighbours differ from block
    to block (in a plain round-robin stripe a node always sits between the same two nodes, and
    when it leaves, its partitions can only go to nodes that are already too close or would
    unbalance the ring). Spacing constrains only nodes near block edges: a node at slot ``i``
    of a block of size ``s`` must sit at slot ``>= m - (s - i)`` of the next block, and the
    last block must also fit against the first. The first constraint alone never blocks a
    greedy choice (at most ``m - j - 1`` nodes need a slot after ``j``); for the last block an
    earliest-deadline check keeps the greedy choice feasible. ``None`` if that check fails
    (the caller then keeps the plain column order, which is always ``m``-spaced, as every block
    is then in node order).
    """
    ordered: list[list[str]] = []
    first_slot: dict[str, int] = {}
    last = len(contents) - 1
    for b, block in enumerate(contents):
        size = len(block)
        prefer = sorted(block, key=lambda node: _mix(b, node))
        lo = dict.fromkeys(block, 0)
        hi = dict.fromkeys(block, size - 1)
        if b > 0:
            prev = ordered[-1]
            for i, node in enumerate(prev):
                if node in lo:
                    lo[node] = max(0, m - (len(prev) - i))
        if b == last and b > 0:
            for node in block:
                if node in first_slot:
                    hi[node] = size - m + first_slot[node]
        order = _schedule(prefer, lo, hi, check=b == last and b > 0)
        if order is None:
            return None
        if b == 0:
            first_slot = {node: i for i, node in enumerate(order)}
        ordered.append(order)
    return ordered


def _schedule(
    prefer: Sequence[str], lo: Mapping[str, int], hi: Mapping[str, int], *, check: bool
) -> list[str] | None:
    """Fill slots ``0..len-1`` with ``prefer``'s nodes, each within its ``[lo, hi]``, greedily
    in preference order; with ``check``, only choices that leave the rest schedulable."""
    left = list(prefer)
    order: list[str] = []
    if check and not _schedulable(left, lo, hi, 0):
        return None
    for slot in range(len(prefer)):
        for node in left:
            if lo[node] <= slot <= hi[node]:
                rest = [x for x in left if x != node]
                if not check or _schedulable(rest, lo, hi, slot + 1):
                    order.append(node)
                    left = rest
                    break
        else:
            return None
    return order


def _schedulable(
    nodes: Sequence[str], lo: Mapping[str, int], hi: Mapping[str, int], start: int
) -> bool:
    """Whether ``nodes`` fit slots ``start..`` within their ``[lo, hi]`` (earliest deadline)."""
    waiting = sorted(nodes, key=lambda x: lo[x])
    ready: list[tuple[int, str]] = []
    i = 0
    for slot in range(start, start + len(nodes)):
        while i < len(waiting) and lo[waiting[i]] <= slot:
            heapq.heappush(ready, (hi[waiting[i]], waiting[i]))
            i += 1
        if not ready:
            return False
        deadline, _ = heapq.heappop(ready)
        if deadline < slot:
            return False
    return True


def _mix(block: int, node: str) -> bytes:
    """A per-block pseudo-random but fixed rank for ``node`` (no randomness: a hash)."""
    return hashlib.blake2b(f"{block}/{node}".encode(), digest_size=8).digest()


# --------------------------------------------------------------------------------------------
# Changing an existing ring
# --------------------------------------------------------------------------------------------


def _rearrange(owners: list[str], owning: Sequence[str], n: int) -> list[str]:
    """Move the fewest partitions so that exactly ``owning`` own them all, balanced and spaced.

    Leavers are drained first, one at a time, preferring new nodes as receivers so that a node
    replacing another takes its partitions directly; then each new node still below its share
    takes partitions from the others. Nothing else moves: a claim with no join or leave changes
    no owner, even if the ring it starts from is unbalanced (``restripe`` is for that).
    """
    q = len(owners)
    floor_, ceil_ = q // len(owning), -(-q // len(owning))
    owning_set = set(owning)
    joiners = owning_set.difference(owners)
    for leaver in sorted(set(owners) - owning_set):
        _drain(owners, leaver, owning, joiners, n, floor_, ceil_)
    for node in sorted(joiners):
        # A joiner at its floor still takes more while others sit above the ceiling (several
        # joins beside a leave can leave the old nodes over-full).
        if owners.count(node) < floor_ or max(_counts(owners, owning).values()) > ceil_:
            _fill(owners, node, owning, n, floor_, ceil_)
    return owners


def _drain(
    owners: list[str],
    leaver: str,
    owning: Sequence[str],
    joiners: set[str],
    n: int,
    floor_: int,
    ceil_: int,
) -> None:
    """Give every partition of ``leaver`` to an owning node: balanced first, then spaced.

    In a sound ring the leaver's partitions are ``n`` apart, so they interact only through the
    receivers' counts: a transportation problem, solved exactly as a min-cost flow. Filling a
    receiver up to ``floor`` is free, from ``floor`` to ``ceil`` costs more than any spacing
    loss, and beyond ``ceil`` more still, so the result is balanced whenever the counts allow
    (a leave always can). Within that, giving ``p`` to a node costs the windows it would break,
    plus a little for an old node, so that a joiner replacing the leaver takes its partitions
    directly. Spacing is a cost and not a filter because a leave often cannot keep it: the
    survivors stay where they are, and with few of them (``S - 1 <= 2(n - 1)``) every one may
    sit within ``n`` of some orphaned partition. In a ring that already breaks the spacing, the
    leaver's partitions go in rounds of mutually ``n``-apart ones so each round's costs are
    exact.
    """
    counts = _counts(owners, owning)
    pending = [p for p, owner in enumerate(owners) if owner == leaver]
    if len(owning) == 1:  # nothing to choose (and the flow below would be slow for nothing)
        for p in pending:
            owners[p] = owning[0]
        return
    while pending:
        batch, pending = _spaced_subset(pending, len(owners), n)
        items = len(batch)
        # One broken window outweighs every joiner preference together.
        weight = items + 1
        costs = [
            [(x, weight * _conflicts(owners, p, x, n) + (x not in joiners)) for x in owning]
            for p in batch
        ]
        u = 1 + items * max(c for row in costs for _, c in row)
        bands = {
            x: [
                (max(0, floor_ - counts[x]), 0),
                (max(0, ceil_ - max(floor_, counts[x])), u),
                (items, u * (items + 1)),
            ]
            for x in owning
        }
        for p, node in zip(batch, _min_cost_assign(costs, bands), strict=True):
            owners[p] = node
            counts[node] += 1


def _fill(
    owners: list[str], taker: str, owning: Sequence[str], n: int, floor_: int, ceil_: int
) -> None:
    """Let new node ``taker`` take partitions from the others: up to ``floor``, or ``ceil``.

    Only the taker's own spacing is at stake (giving a partition away never hurts the giver),
    but the taken partitions must be ``n`` apart from each other and from what the taker has.
    To make that a matching, the free arcs are cut into segments whose allowed part keeps any
    picks from different segments ``n`` apart; each segment yields at most one partition, each
    other node gives at most ``count - floor``, and nodes above ``ceil`` (possible when several
    nodes join while others leave) give first. Several segment layouts are tried before falling
    back to a greedy choice.
    """
    q = len(owners)
    counts = _counts(owners, owning)
    t_min, t_max = floor_ - counts[taker], ceil_ - counts[taker]
    givers = [x for x in owning if x != taker and counts[x] > floor_]
    low = {x: max(0, counts[x] - ceil_) for x in givers}
    high = {x: counts[x] - floor_ for x in givers}
    # Overload this taker must absorb: all of it if it can, else as much as its share allows.
    overload = min(sum(low.values()), t_max)
    mine = [p for p, owner in enumerate(owners) if owner == taker]
    for segments in _segment_layouts(q, mine, n, t_min, t_max):
        edges: list[list[str]] = []
        for allowed in segments:
            present = {owners[p] for p in allowed}
            edges.append([x for x in givers if x in present])
        matched = _b_match(edges, [low, high], t_max)
        got = _counts_of(x for x in matched if x is not None)
        absorbed = sum(min(got.get(x, 0), low[x]) for x in givers)
        if sum(got.values()) < t_min or absorbed < overload:
            continue
        for allowed, giver in zip(segments, matched, strict=True):
            if giver is not None:
                owners[next(p for p in allowed if owners[p] == giver)] = taker
        return
    # No layout works (the ring was already tighter than ``n`` allows, or the overload sits in
    # the wrong places): take one partition at a time, overloaded givers first, then the pick
    # that breaks the fewest windows (ties: the most loaded giver, then the lowest partition).
    # ``conflict`` is kept up to date incrementally, as rescoring every partition per pick made
    # this quadratic in ``q`` times ``n``.
    conflict = [_conflicts(owners, p, taker, n) for p in range(q)]
    while True:
        floor_met = counts[taker] >= floor_
        if counts[taker] >= ceil_ or (floor_met and all(counts[x] <= ceil_ for x in givers)):
            return
        best, best_key = -1, (False, 0, 0, "")
        for p, owner in enumerate(owners):
            have = counts.get(owner, 0)
            if owner == taker or have <= (ceil_ if floor_met else floor_):
                continue
            key = (have <= ceil_, conflict[p], -have, owner)
            if best < 0 or key < best_key:
                best, best_key = p, key
        if best < 0:
            return
        counts[owners[best]] -= 1
        owners[best] = taker
        counts[taker] += 1
        for d in range(1, min(n, q)):
            conflict[(best + d) % q] += n - d
            conflict[(best - d) % q] += n - d


def _segment_layouts(
    q: int, mine: Sequence[int], n: int, t_min: int, t_max: int
) -> Iterable[list[list[int]]]:
    """Ways to cut the positions a taker may use into segments of mutually ``n``-apart picks.

    Each yielded layout is a list of segments, each given by its allowed positions. A segment
    followed by another in the same free arc allows only its first ``len - (n - 1)`` positions,
    so a pick there and any pick in a later segment are at least ``n`` apart; free arcs end
    ``n`` short of the taker's own partitions. Fewer segments mean wider segments, so layouts
    with ``t_max`` segments come first, then ``t_min``, then rotations of the cut points.
    """
    for wanted in dict.fromkeys((t_max, t_min)):
        if wanted <= 0:
            continue
        if not mine:
            total = q - wanted * (n - 1)  # allowed positions over all segments
            if total < wanted:
                continue
            size = q // wanted
            for offset in range(size):
                yield _cyclic_segments(q, wanted, n, total, offset)
            continue
        arcs = _free_arcs(q, mine, n)
        shares = _apportion([m for _, m in arcs], wanted, n)
        if shares is None:
            continue
        for shift in range(n if n > 1 else 1):
            layout: list[list[int]] = []
            for (start, length), share in zip(arcs, shares, strict=True):
                layout.extend(_linear_segments(q, start, length, share, n, shift))
            yield layout


def _cyclic_segments(q: int, count: int, n: int, total: int, offset: int) -> list[list[int]]:
    """``count`` segments around the whole ring, starting at ``offset``, all spacing-safe."""
    out: list[list[int]] = []
    pos = offset
    for i in range(count):
        allowed = total // count + (1 if i < total % count else 0)
        out.append([(pos + d) % q for d in range(allowed)])
        pos += allowed + n - 1
    return out


def _linear_segments(
    q: int, start: int, length: int, count: int, n: int, shift: int
) -> list[list[int]]:
    """``count`` segments over the free arc ``start .. start+length-1`` (positions mod ``q``).

    ``shift`` moves allowed room from the first segments to the last, so retries see other
    cut points.
    """
    if count == 0:
        return []
    total = length - (count - 1) * (n - 1)
    sizes = [total // count + (1 if i < total % count else 0) for i in range(count)]
    if count > 1 and shift:
        moved = min(shift, sizes[0] - 1)
        sizes[0] -= moved
        sizes[-1] += moved
    out: list[list[int]] = []
    pos = start
    for i, size in enumerate(sizes):
        out.append([(pos + d) % q for d in range(size)])
        pos += size + (n - 1 if i < count - 1 else 0)
    return out


def _free_arcs(q: int, mine: Sequence[int], n: int) -> list[tuple[int, int]]:
    """``(start, length)`` of the runs of positions at least ``n`` from all of ``mine``."""
    arcs = []
    for i, p in enumerate(mine):
        nxt = mine[(i + 1) % len(mine)]
        gap = (nxt - p) % q or q
        length = gap - 2 * n + 1
        if length > 0:
            arcs.append(((p + n) % q, length))
    return arcs


def _apportion(lengths: Sequence[int], wanted: int, n: int) -> list[int] | None:
    """How many segments each arc gets: ``wanted`` in all, the widest allowed room first."""
    shares = [0] * len(lengths)
    caps = [(m - 1) // n + 1 for m in lengths]
    if sum(caps) < wanted:
        return None
    for _ in range(wanted):
        best = max(
            (i for i in range(len(lengths)) if shares[i] < caps[i]),
            key=lambda i: ((lengths[i] - shares[i] * (n - 1)) / (shares[i] + 1), -i),
        )
        shares[best] += 1
    return shares


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _spaced_subset(positions: Sequence[int], q: int, n: int) -> tuple[list[int], list[int]]:
    """Split sorted ``positions`` into a greedy subset at least ``n`` apart (cyclically), rest."""
    chosen: list[int] = []
    rest: list[int] = []
    for p in positions:
        if chosen and (p - chosen[-1] < n or (chosen[0] - p) % q < n):
            rest.append(p)
        else:
            chosen.append(p)
    return chosen, rest


def _conflicts(owners: Sequence[str], p: int, node: str, n: int) -> int:
    """How many ``n``-windows would repeat ``node`` if it owned ``p``.

    A partition of ``node`` at distance ``d < n`` from ``p`` shares ``n - d`` windows with it.
    """
    q = len(owners)
    total = 0
    for d in range(1, min(n, q)):
        total += (n - d) * ((owners[(p + d) % q] == node) + (owners[(p - d) % q] == node))
    return total


def _counts(owners: Sequence[str], nodes: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(nodes, 0)
    for owner in owners:
        if owner in counts:
            counts[owner] += 1
    return counts


def _counts_of(items: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    return counts


def _violating_windows(owners: Sequence[str], n: int) -> list[int]:
    """Start partitions of the ``n``-windows (wrapping) whose owners are not all distinct."""
    q = len(owners)
    if n <= 1:
        return []
    bad = []
    for start in range(q):
        window = [owners[(start + d) % q] for d in range(min(n, q))]
        if len(set(window)) < len(window):
            bad.append(start)
    return bad
