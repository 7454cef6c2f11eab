"""Fixtures shared by the boto3 tests of tests/api.

Owns: ``running`` -- one in-process server (``ServerThread``) per test module -- and ``ddb``, a
boto3 client of it for the module. A module that needs another server (other limits, yield
points) defines its own fixture of the same name, which wins over these.
May import: pytest, :mod:`tests.api.test_app_harness`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.test_app_harness import ServerThread, served


@pytest.fixture(scope="module")
def running() -> Iterator[ServerThread]:
    with served() as server:
        yield server


@pytest.fixture(scope="module")
def ddb(running: ServerThread) -> Any:
    return running.client()
