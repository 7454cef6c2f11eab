"""The dynamokv client: sync ``Client`` and async ``AsyncClient``, server- or partition-routed.

May import: ``dynamokv.core``, ``dynamokv.wire``, ``dynamokv.errors``; never ``runtime`` or ``api``.
"""

from dynamokv.client.client import AsyncClient, Client
from dynamokv.client.results import Context, GetResult

__all__ = ["AsyncClient", "Client", "Context", "GetResult"]
