"""The asyncio driver: the only place with sockets, clocks, tasks and threads.

May import: ``dynamokv.core``, ``dynamokv.wire``, ``dynamokv.storage``, ``dynamokv.errors``,
``dynamokv.api`` (the server hosts the DynamoDB-compatible app).
"""
