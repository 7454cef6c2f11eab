"""Claim's flow machinery: capacitated matching and min-cost flow over (item, node) choices.

Owns: ``_b_match`` / ``_augment`` (Kuhn's augmenting paths within per-node capacities) and
``_min_cost_assign`` / ``_FlowGraph`` (min-cost flow by successive shortest paths). Private to
``dynamokv.core.claim``, which uses them to move the fewest partitions on a ring change.
May import: the standard library only (no ``random``, ``time`` or ``os``).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def _b_match(
    edges: Sequence[Sequence[str]], phases: Sequence[Mapping[str, int]], limit: int
) -> list[str | None]:
    """Match each left item to at most one of its nodes, within per-node capacities.

    Kuhn's augmenting paths, once per phase with that phase's capacities (which only grow): an
    augmenting path raises the load of its last node only, so what an earlier phase gave a node
    is never taken back, and one pass per phase yields a maximum matching for that phase. Stops
    at ``limit`` matched items. Deterministic: items and nodes are tried in the order given.
    """
    match: list[str | None] = [None] * len(edges)
    holders: dict[str, dict[int, None]] = {}  # node -> items matched to it, in match order
    total = 0
    for caps in phases:
        for item in range(len(edges)):
            if total >= limit:
                return match
            if match[item] is None and _augment(item, edges, caps, match, holders):
                total += 1
    return match


def _augment(
    root: int,
    edges: Sequence[Sequence[str]],
    caps: Mapping[str, int],
    match: list[str | None],
    holders: dict[str, dict[int, None]],
) -> bool:
    """Find and apply one augmenting path from the unmatched item ``root`` (breadth first)."""
    reached_by: dict[str, int] = {}  # node -> item that reached it
    queue = [root]
    for item in queue:
        for node in edges[item]:
            if node in reached_by:
                continue
            reached_by[node] = item
            held = holders.setdefault(node, {})
            if len(held) < caps.get(node, 0):
                # Shift every item on the path to the node that reached it.
                while True:
                    via = reached_by[node]
                    previous = match[via]
                    match[via] = node
                    holders[node][via] = None
                    if previous is None:
                        return True
                    del holders[previous][via]
                    node = previous
            queue.extend(held)
    return False


def _min_cost_assign(
    costs: Sequence[Sequence[tuple[str, int]]], bands: Mapping[str, Sequence[tuple[int, int]]]
) -> list[str]:
    """Give every item one node at least total cost; ``costs[i]`` lists ``(node, cost)``.

    ``bands[node]`` lists ``(capacity, cost)`` tiers: the node takes up to ``capacity`` items
    at that extra cost per item, for each tier; the tiers must offer room for every item.
    Min-cost flow by successive shortest paths (Dijkstra on reduced costs, then every
    zero-reduced-cost path before the next Dijkstra, as the distances take few values).
    """
    items = len(costs)
    index = {node: 2 + items + i for i, node in enumerate(bands)}
    graph = _FlowGraph(2 + items + len(bands))
    first_edge = []
    for i, row in enumerate(costs):
        graph.add(0, 2 + i, 1, 0)
        first_edge.append(len(graph.to))
        for node, cost in row:
            graph.add(2 + i, index[node], 1, cost)
    for node, tiers in bands.items():
        for cap, cost in tiers:
            if cap > 0:
                graph.add(index[node], 1, cap, cost)
    graph.run(0, 1, items)
    nodes = list(bands)
    result = []
    for i, row in enumerate(costs):
        used = next(
            e for e in range(first_edge[i], first_edge[i] + 2 * len(row), 2) if graph.cap[e] == 0
        )
        result.append(nodes[graph.to[used] - 2 - items])
    return result


class _FlowGraph:
    """A residual graph for min-cost flow; edge ``e`` and its reverse are ``e`` and ``e ^ 1``."""

    def __init__(self, size: int) -> None:
        self.out: list[list[int]] = [[] for _ in range(size)]
        self.to: list[int] = []
        self.cap: list[int] = []
        self.cost: list[int] = []

    def add(self, u: int, v: int, cap: int, cost: int) -> None:
        self.out[u].append(len(self.to))
        self.to.append(v)
        self.cap.append(cap)
        self.cost.append(cost)
        self.out[v].append(len(self.to))
        self.to.append(u)
        self.cap.append(0)
        self.cost.append(-cost)

    def run(self, source: int, sink: int, amount: int) -> int:
        """Push up to ``amount`` units from ``source`` to ``sink`` at least cost; the units pushed.

        Every path found starts with a unit-capacity edge, so each pushes exactly one unit.
        """
        size = len(self.out)
        potential = [0] * size  # every initial cost is >= 0, so zero is a valid start
        pushed = 0
        while pushed < amount:
            dist = self._distances(source, potential)
            if dist[sink] is None:
                break
            for v in range(size):
                d = dist[v]
                if d is not None:
                    potential[v] += d
            while pushed < amount and self._push_tight_path(source, sink, potential):
                pushed += 1
        return pushed

    def _distances(self, source: int, potential: Sequence[int]) -> list[int | None]:
        dist: list[int | None] = [None] * len(self.out)
        dist[source] = 0
        heap = [(0, source)]
        while heap:
            d, u = heapq.heappop(heap)
            if d != dist[u]:
                continue
            for e in self.out[u]:
                if self.cap[e] <= 0:
                    continue
                v = self.to[e]
                nd = d + self.cost[e] + potential[u] - potential[v]
                old = dist[v]
                if old is None or nd < old:
                    dist[v] = nd
                    heapq.heappush(heap, (nd, v))
        return dist

    def _push_tight_path(self, source: int, sink: int, potential: Sequence[int]) -> bool:
        """Push one unit along a path of zero reduced cost edges, if there is one."""
        parent_edge: dict[int, int] = {source: -1}
        stack = [source]
        while stack:
            u = stack.pop()
            if u == sink:
                break
            for e in self.out[u]:
                v = self.to[e]
                if (
                    self.cap[e] > 0
                    and v not in parent_edge
                    and self.cost[e] + potential[u] - potential[v] == 0
                ):
                    parent_edge[v] = e
                    stack.append(v)
        if sink not in parent_edge:
            return False
        v = sink
        while v != source:
            e = parent_edge[v]
            self.cap[e] -= 1
            self.cap[e ^ 1] += 1
            v = self.to[e ^ 1]
        return True
