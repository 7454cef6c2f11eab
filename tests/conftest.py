"""Shared fixtures: a seeded Random and an in-memory cluster pump (h11's ConnectionPair, for N
nodes) that routes effects between ``NodeCore``s synchronously."""

from __future__ import annotations

import random

import pytest

from tests.pump import Pump


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture
def pump3() -> Pump:
    pump = Pump.with_nodes(3)
    pump.settle()
    return pump
