"""Per-key Paxos among a key's primary replicas: linearizable compare-and-set and reads.

Owns: ``Ballot``, ``AcceptorState`` and the acceptor's handlers (``on_prepare``,
``on_propose``, ``on_commit``), and ``CasOp``, the proposer's state machine
(PREPARING → [REPAIRING] → PROPOSING → COMMITTING → DONE) in the style of Cassandra's
lightweight transactions.
May import: ``dynamokv.core.{versioned,vclock,messages}``.

Why: a compare-and-set on a leaderless quorum is not atomic (two writers can both read the old
value from overlapping quorums and both "succeed"). DynamoDB's conditional writes and strongly
consistent reads need agreement, so they run one Paxos instance per key among the key's N
primaries (never fallbacks: a sloppy quorum would break the majority intersection Paxos relies
on). Any node may propose.

One round: the proposer picks a ballot above any it has seen and sends PREPARE; a majority of
PROMISEs brings back (a) any proposal accepted but not known committed — which the proposer
must finish first (it re-proposes and commits it, then starts over with a new ballot) — and
(b) each acceptor's current object, whose join is the key's current value (every committed
write reached a majority, and majorities intersect). The caller's ``decide`` turns that value
into the new one (or aborts: the condition failed); PROPOSE must be accepted by a majority;
COMMIT applies the object to a majority's storage, and only then does the proposer answer.
Competing proposers see NACKs with the higher promised ballot and retry after a backoff,
boundedly.

The proposer stamps its new versions with its own actor suffixed ``~p``: its counters come
from a majority read, which sees every earlier Paxos write of that actor, whereas the node's
plain actor counts from its local store.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass, field

from dynamokv.core.versioned import Dot, VersionedObject

PAXOS_ACTOR_SUFFIX = "~p"


@dataclass(frozen=True, slots=True, order=True)
class Ballot:
    ms: int
    node: str

    @staticmethod
    def zero() -> Ballot:
        return _ZERO


_ZERO = Ballot(0, "")


@dataclass(frozen=True, slots=True)
class AcceptorState:
    """What one replica remembers for one key's Paxos (stored durably next to the object)."""

    promised: Ballot = _ZERO
    accepted: Ballot = _ZERO
    accepted_obj: VersionedObject | None = None
    committed: Ballot = _ZERO


def on_prepare(state: AcceptorState, ballot: Ballot) -> tuple[AcceptorState, bool]:
    if ballot > state.promised:
        return AcceptorState(ballot, state.accepted, state.accepted_obj, state.committed), True
    return state, False


def on_propose(state: AcceptorState, ballot: Ballot, obj: VersionedObject
               ) -> tuple[AcceptorState, bool]:
    if ballot >= state.promised:
        return AcceptorState(ballot, ballot, obj, state.committed), True
    return state, False


def on_commit(state: AcceptorState, ballot: Ballot) -> AcceptorState:
    if ballot <= state.committed:
        return state
    # The accepted proposal is now committed; forget its body so state stays small.
    accepted_obj = None if state.accepted <= ballot else state.accepted_obj
    accepted = state.accepted if accepted_obj is not None else ballot
    return AcceptorState(max(state.promised, ballot), accepted, accepted_obj, ballot)


class CasPhase(enum.Enum):
    PREPARING = "preparing"
    REPAIRING = "repairing"  # finishing an earlier proposer's accepted proposal
    PROPOSING = "proposing"
    COMMITTING = "committing"


@dataclass(slots=True)
class CasOp:
    """One linearizable read-modify-write (or read) of one key, driven by the node."""

    client: int
    req_id: int
    bucket: str
    key: bytes
    replicas: tuple[str, ...]
    majority: int
    read_only: bool
    deadline_ms: int
    attempts: int = 0
    phase: CasPhase = CasPhase.PREPARING
    ballot: Ballot = _ZERO
    round_id: int = 0
    promises: dict[str, tuple[Ballot, VersionedObject | None, Ballot, VersionedObject | None]] = (
        field(default_factory=dict))
    nacks: dict[str, Ballot] = field(default_factory=dict)
    acks: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    proposal: VersionedObject | None = None
    old_value: bytes | None = None
    new_value: bytes | None = None
    retry_at_ms: int | None = None  # -1: retry wanted, time not chosen yet
    restart_after_commit: bool = False  # the commit in flight finishes someone else's value
    # Our earlier proposals that lost their round: any of them may still be chosen (finished by
    # another proposer), so a retry first checks whether one already took effect.
    prior: dict[Dot, tuple[bytes | None, bytes | None]] = field(default_factory=dict)

    def start_round(self, round_id: int, ballot: Ballot, phase: CasPhase) -> None:
        self.round_id = round_id
        self.ballot = ballot
        self.phase = phase
        self.promises.clear()
        self.nacks.clear()
        self.acks.clear()
        self.failed.clear()

    groups: tuple[tuple[str, ...], ...] = ()  # replica sets that each need a majority

    def _sets(self) -> tuple[tuple[str, ...], ...]:
        return self.groups or (self.replicas,)

    def reached(self, answered: Collection[str]) -> bool:
        """A majority of every replica set is among ``answered``."""
        return all(sum(1 for n in g if n in answered) >= len(g) // 2 + 1 for g in self._sets())

    def lost(self) -> bool:
        """Too many replicas failed or refused for a majority of some set this round."""
        for group in self._sets():
            out = sum(1 for n in group if n in self.failed or n in self.nacks)
            if len(group) - out < len(group) // 2 + 1:
                return True
        return False

    def highest_seen(self) -> Ballot:
        seen = [b for b in self.nacks.values()]
        seen += [p[0] for p in self.promises.values()]
        return max(seen, default=self.ballot)
