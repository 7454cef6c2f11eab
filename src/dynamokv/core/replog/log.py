"""A replication group's log: entries after a compaction base, persisted before they count.

Owns: ``HardState`` (what Raft must persist before acting: term, vote and the compaction base),
``LogStore`` (the persistence port), ``RaftLog`` (the in-memory log of one group over it).
May import: ``dynamokv.core.messages``.

Indexes start at 1. Entries ``<= base_index`` were applied and compacted away; ``base_term`` and
``base_members`` describe the last of them. The configuration in force is the last configuration
entry in the log (committed or not: Raft's single-server changes take effect on append), else
``base_members``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from dynamokv.core.messages import LogEntry

NOOP, PUT, CONFIG = 0, 1, 2
# INDEXED_THROUGH: the leader's node has brought the global secondary indexes up to date with
# every entry through the index in ``key`` (8 bytes, big-endian); replicas trim their index
# outbox (``replog.outbox``) when they apply it.
INDEXED_THROUGH = 3
# Flags a put entry may carry (kind = PUT | flags), decided once by the leader so every replica
# reads the same: STREAMED, record the change in the table's stream (its StreamSpecification
# was enabled when the write was made); SERVICE, a delete made by the service itself (TTL);
# INDEXED, the table has global secondary indexes: keep an index outbox record of the change.
STREAMED, SERVICE, INDEXED = 4, 8, 16


def is_put(kind: int) -> bool:
    """A put or delete of one item, with or without flags."""
    return kind & 3 == PUT


@dataclass(frozen=True, slots=True)
class HardState:
    term: int = 0
    vote: str = ""
    base_index: int = 0
    base_term: int = 0
    base_members: tuple[str, ...] = ()


class LogStore(Protocol):
    """Synchronous persistence of groups' logs (the node's storage engine)."""

    def load_log(self, group: int) -> tuple[HardState | None, list[LogEntry]]: ...

    def log_groups(self) -> list[int]: ...

    def save_hard_state(self, group: int, state: HardState) -> None: ...

    def append_log(self, group: int, entries: Sequence[LogEntry]) -> None: ...

    def truncate_log(self, group: int, from_index: int) -> None:
        """Delete entries ``>= from_index``."""
        ...

    def compact_log(self, group: int, through_index: int) -> None:
        """Delete entries ``<= through_index``."""
        ...

    def drop_log(self, group: int) -> None:
        """Forget the group entirely (this node is no longer a member)."""
        ...


def members_of(entry: LogEntry) -> tuple[str, ...]:
    return tuple(m.decode() for m in entry.members)


class RaftLog:
    def __init__(self, group: int, store: LogStore, hard: HardState | None = None,
                 entries: Sequence[LogEntry] = ()) -> None:
        self.group = group
        self.store = store
        self.hard = hard or HardState()
        self.entries: list[LogEntry] = [e for e in entries if e.index > self.hard.base_index]
        self.entries.sort(key=lambda e: e.index)
        self._config_index = 0
        self.members = self._find_members()

    # ---- reading ---------------------------------------------------------------------------------
    @property
    def base_index(self) -> int:
        return self.hard.base_index

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.hard.base_index

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.hard.base_term

    @property
    def config_index(self) -> int:
        """Index of the configuration entry in force (0: the base's)."""
        return self._config_index

    def term_at(self, index: int) -> int | None:
        """The term of entry ``index``, or ``None`` if it is not in the log (or compacted,
        except the base itself)."""
        if index == self.hard.base_index:
            return self.hard.base_term
        at = index - self.hard.base_index - 1
        if 0 <= at < len(self.entries):
            return self.entries[at].term
        return None

    def entry(self, index: int) -> LogEntry:
        return self.entries[index - self.hard.base_index - 1]

    def slice(self, start: int, count_max: int, bytes_max: int) -> tuple[LogEntry, ...]:
        """Entries from ``start`` on, at most ``count_max`` and about ``bytes_max`` bytes (at
        least one entry, however large, so a big item still travels)."""
        at = start - self.hard.base_index - 1
        out: list[LogEntry] = []
        size = 0
        for e in self.entries[max(at, 0): max(at, 0) + count_max]:
            size += len(e.key) + len(e.value or b"") + 64
            if out and size > bytes_max:
                break
            out.append(e)
        return tuple(out)

    def up_to_date(self, last_index: int, last_term: int) -> bool:
        """Raft's election restriction: is a candidate's log at least as complete as ours?"""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    # ---- writing (persisted before return) ----------------------------------------------------
    def set_hard(self, **changes: object) -> None:
        new = replace(self.hard, **changes)  # type: ignore[arg-type]
        if new != self.hard:
            self.store.save_hard_state(self.group, new)
            self.hard = new
            if "base_members" in changes:
                self.members = self._find_members()

    def append(self, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        self.store.append_log(self.group, entries)
        self.entries.extend(entries)
        if any(e.kind == CONFIG for e in entries):
            self.members = self._find_members()

    def truncate(self, from_index: int) -> None:
        """Drop entries ``>= from_index`` (a deposed leader's unreplicated tail)."""
        at = from_index - self.hard.base_index - 1
        if at >= len(self.entries):
            return
        self.store.truncate_log(self.group, from_index)
        del self.entries[max(at, 0):]
        self.members = self._find_members()

    def compact(self, through_index: int) -> None:
        """Forget applied entries ``<= through_index`` (kept: their term and configuration)."""
        if through_index <= self.hard.base_index or through_index > self.last_index:
            return
        term = self.term_at(through_index)
        assert term is not None
        members = self.members_at(through_index)
        drop = through_index - self.hard.base_index
        self.set_hard(base_index=through_index, base_term=term, base_members=members)
        self.store.compact_log(self.group, through_index)
        del self.entries[:drop]
        self.members = self._find_members()

    def reset(self, base_index: int, base_term: int, members: tuple[str, ...]) -> None:
        """Replace the whole log by a snapshot's base."""
        self.store.truncate_log(self.group, 0)
        self.entries = []
        self.set_hard(base_index=base_index, base_term=base_term, base_members=members)
        self.members = self._find_members()

    def was_member(self, node: str) -> bool:
        """Whether ``node`` is a voter of the base's configuration or of any in the log."""
        return node in self.hard.base_members or any(
            e.kind == CONFIG and node in members_of(e) for e in self.entries)

    def members_at(self, index: int) -> tuple[str, ...]:
        found = self.hard.base_members
        for e in self.entries:
            if e.index > index:
                break
            if e.kind == CONFIG:
                found = members_of(e)
        return found

    def _find_members(self) -> tuple[str, ...]:
        for e in reversed(self.entries):
            if e.kind == CONFIG:
                self._config_index = e.index
                return members_of(e)
        self._config_index = 0
        return self.hard.base_members
