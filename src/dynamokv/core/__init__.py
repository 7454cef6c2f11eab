"""The sans-IO core of dynamokv: it decides everything and touches nothing.

Rules for every module in this package:

- no ``asyncio``, ``socket``, ``time``, module-level ``random``, ``uuid``, ``os`` or file I/O;
- handlers are synchronous and run to completion;
- time comes in as arguments (``now_ms`` monotonic, ``wall_ms`` for version stamps);
- randomness comes from an injected ``random.Random``;
- outputs are values (effects), never side effects, except calls through the narrow
  storage port in ``core.ports`` (see ``docs/architecture.md`` for why storage is a port).

May import: the standard library and ``dynamokv.core.*`` only.
"""
