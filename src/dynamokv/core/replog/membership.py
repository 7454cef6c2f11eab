"""Group membership follows the ring: the next single-server change towards a target.

Owns: ``Step`` and ``next_step`` (pure): given a group's voters, the ring's preference list for
its partition and who is up, what the leader should do next.
May import: stdlib only.

One change at a time (Raft's single-server changes, Ongaro's thesis 4.1): first bring in a
missing target replica as a learner and, once it has caught up, make it a voter; then remove a
voter the ring no longer lists; a leader that must leave hands leadership to a target replica
first. Adding before removing keeps the group at N voters or more throughout, so a change never
lowers how many failures the group tolerates. With nothing to change, leadership moves to the
preference list's first replica, which spreads leaders evenly because the ring rotates owners.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    action: str  # "none" | "learn" | "add" | "remove" | "transfer"
    node: str = ""


def next_step(me: str, members: tuple[str, ...], target: tuple[str, ...],
              up: frozenset[str], caught_up: frozenset[str]) -> Step:
    """The leader ``me``'s next move. ``caught_up``: learners whose log matches ours."""
    for node in target:
        if node not in members and node in up:
            return Step("add", node) if node in caught_up else Step("learn", node)
    if any(node not in members for node in target):
        return Step("none")  # a target replica is down: wait for it before removing anyone
    for node in members:
        if node not in target:
            if node == me:
                heir = next((t for t in target if t in up and t != me), "")
                return Step("transfer", heir) if heir else Step("none")
            return Step("remove", node)
    preferred = target[0] if target else ""
    if preferred and preferred != me and preferred in up:
        return Step("transfer", preferred)
    return Step("none")
