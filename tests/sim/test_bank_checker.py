"""The bank invariant checker: every snapshot sums to the total, every account present."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dynamokv.sim.bank_checker import BankRead, check_bank, snapshot_from_response


def test_snapshots_that_keep_the_sum_pass() -> None:
    reads = [BankRead({"a": 50, "b": 50}), BankRead({"a": 20, "b": 80}),
             BankRead({"a": Decimal("0.5"), "b": Decimal("99.5")})]
    assert check_bank(reads, total=100) is None


def test_the_first_read_off_the_total_is_reported() -> None:
    reads = [BankRead({"a": 50, "b": 50}, 0, 5, "r0"), BankRead({"a": 20, "b": 50}, 6, 9, "r1"),
             BankRead({"a": 0, "b": 0}, 10, 12, "r2")]
    violation = check_bank(reads, total=100)
    assert violation is not None
    assert violation.index == 1 and violation.total == Decimal(70)
    assert violation.explain() == "read #1 r1 [6..9]: sum 70 != 100 (a=20, b=50)"


def test_a_missing_account_is_a_violation() -> None:
    reads = [BankRead({"a": 100, "b": None})]
    violation = check_bank(reads, total=100)
    assert violation is not None and violation.missing == ["b"]
    # accounts named explicitly: one absent from the snapshot altogether
    violation = check_bank([BankRead({"a": 100})], total=100, accounts=["a", "b"])
    assert violation is not None and "accounts missing: b" in violation.explain()


def test_snapshot_from_a_transact_get_items_response() -> None:
    response = {"Responses": [{"Item": {"pk": {"S": "a"}, "balance": {"N": "30"}}},
                              {"Item": {"pk": {"S": "b"}, "balance": {"N": "70"}}}, {}]}
    read = snapshot_from_response(response, ["a", "b", "c"], label="t1")
    assert read.balances == {"a": Decimal(30), "b": Decimal(70), "c": None}
    assert check_bank([read], total=100) is not None  # c absent
    with pytest.raises(ValueError, match="expected 2 entries"):
        snapshot_from_response(response, ["a", "b"])
    with pytest.raises(ValueError, match="not a number"):
        snapshot_from_response({"Responses": [{"Item": {"balance": {"S": "x"}}}]}, ["a"])
