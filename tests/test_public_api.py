"""The public surface is explicit: ``__all__`` names exactly what the package exports."""

from __future__ import annotations

import dynamokv
import dynamokv.client
import dynamokv.errors


def test_top_level_all_resolves() -> None:
    for name in dynamokv.__all__:
        assert getattr(dynamokv, name) is not None, name


def test_top_level_exports_the_client_and_every_error() -> None:
    errors = {n for n in dynamokv.errors.__all__ if n not in ("error_from_code", "StaleRing")}
    assert errors <= set(dynamokv.__all__)
    assert {"Client", "AsyncClient", "Context", "GetResult"} <= set(dynamokv.__all__)


def test_client_package_all() -> None:
    assert sorted(dynamokv.client.__all__) == ["AsyncClient", "Client", "Context", "GetResult"]
