"""Dropping deleted tables' and indexes' buckets in the background (``api/indexes/drop.py``):
retried with a bound, then counted as failed with its error, never silently lost."""

from __future__ import annotations

import asyncio

import pytest

from dynamokv.api.app import DynamoDBApp
from dynamokv.api.indexes import retry
from dynamokv.api.indexes.drop import DROP_ATTEMPTS, drop_buckets, drop_status
from dynamokv.api.local_handle import LocalHandle
from dynamokv.errors import UnavailableError


class FlakyDrops(LocalHandle):
    """A LocalHandle whose first ``failures`` drops fail, as a drop does while a replica of
    the bucket's partitions is unreachable."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.tries = 0

    async def drop_bucket(self, bucket: str) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise UnavailableError("no quorum for partition 3")
        await super().drop_bucket(bucket)


async def _drop(handle: FlakyDrops) -> dict[str, object]:
    app = DynamoDBApp(handle)
    await handle.write("gone", b"k", b"v")
    drop_buckets(app.context, ["gone"], "dropping a test bucket")
    while app.context.background:
        await asyncio.sleep(0.01)
    return drop_status(app.context)


def test_a_drop_that_fails_for_a_while_is_retried_until_done(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "RETRY_DELAY", 0.001)
    handle = FlakyDrops(failures=DROP_ATTEMPTS - 1)
    status = asyncio.run(_drop(handle))
    assert status == {"started": 1, "done": 1, "failed": 0}
    assert asyncio.run(handle.read("gone", b"k")) is None


def test_a_drop_that_keeps_failing_is_counted_with_its_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "RETRY_DELAY", 0.001)
    handle = FlakyDrops(failures=DROP_ATTEMPTS)
    status = asyncio.run(_drop(handle))
    assert handle.tries == DROP_ATTEMPTS
    assert status == {"started": 1, "done": 0, "failed": 1,
                      "last_error": "bucket gone: UnavailableError: no quorum for partition 3"}
