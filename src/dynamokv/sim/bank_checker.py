"""The bank-transfer invariant: every snapshot of all accounts sums to the same total.

Owns: ``BankRead`` (one snapshot, e.g. one TransactGetItems of every account),
``snapshot_from_response`` (a TransactGetItems response in DynamoDB JSON to a snapshot),
``check_bank`` and ``BankViolation``.
May import: stdlib only.

A bank workload moves money between a fixed set of accounts with TransactWriteItems (debit
one, credit another, in one transaction) and reads all of them with TransactGetItems. Since
every transaction keeps the sum, and TransactGetItems is serializable, every read must see
exactly the initial total, with every account present. The first read that does not is the
violation reported (a transaction applied in part, or a read that saw half of one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

Balance = int | Decimal


@dataclass(frozen=True, slots=True)
class BankRead:
    """One snapshot: account -> balance (``None``: the item was absent)."""

    balances: Mapping[str, Balance | None]
    invoke: float = 0
    complete: float = 0
    label: str = ""


@dataclass(frozen=True, slots=True)
class BankViolation:
    index: int  # position of the read in the order given
    read: BankRead
    total: Decimal | None  # the snapshot's sum (None when accounts were missing)
    expected: Decimal
    missing: list[str] = field(default_factory=list)

    def explain(self) -> str:
        who = f" {self.read.label}" if self.read.label else ""
        when = f" [{self.read.invoke}..{self.read.complete}]"
        shown = ", ".join(f"{a}={self.read.balances.get(a)}" for a in sorted(self.read.balances))
        if self.missing:
            problem = f"accounts missing: {', '.join(self.missing)}"
        else:
            problem = f"sum {self.total} != {self.expected}"
        return f"read #{self.index}{who}{when}: {problem} ({shown})"


def check_bank(reads: Iterable[BankRead], *, total: Balance,
               accounts: Sequence[str] | None = None) -> BankViolation | None:
    """The first read whose balances do not sum to ``total`` or that lacks one of
    ``accounts`` (default: the accounts of the first read); ``None`` if every read holds."""
    expected = Decimal(total)
    names: list[str] | None = list(accounts) if accounts is not None else None
    for index, read in enumerate(reads):
        if names is None:
            names = sorted(read.balances)
        missing = [a for a in names if read.balances.get(a) is None]
        if missing:
            return BankViolation(index, read, None, expected, missing)
        found = sum((Decimal(b) for b in read.balances.values() if b is not None), Decimal(0))
        if found != expected:
            return BankViolation(index, read, found, expected)
    return None


def snapshot_from_response(response: Mapping[str, Any], accounts: Sequence[str], *,
                           balance_attr: str = "balance", invoke: float = 0,
                           complete: float = 0, label: str = "") -> BankRead:
    """A ``BankRead`` from a TransactGetItems response whose ``Responses`` answer
    ``accounts`` in order (an empty entry: the item is absent)."""
    entries = response.get("Responses")
    if not isinstance(entries, list) or len(entries) != len(accounts):
        raise ValueError(f"expected {len(accounts)} entries in Responses, got {entries!r}")
    balances: dict[str, Balance | None] = {}
    for account, entry in zip(accounts, entries, strict=True):
        item = entry.get("Item") if isinstance(entry, dict) else None
        if item is None:
            balances[account] = None
            continue
        attr = item.get(balance_attr)
        if not isinstance(attr, dict) or "N" not in attr:
            raise ValueError(f"account {account}: {balance_attr} is not a number: {attr!r}")
        try:
            balances[account] = Decimal(attr["N"])
        except (InvalidOperation, TypeError):
            raise ValueError(f"account {account}: bad number {attr['N']!r}") from None
    return BankRead(balances, invoke, complete, label)
