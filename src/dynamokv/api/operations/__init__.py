"""The DynamoDB operations on items and tables: thin handlers that parse a request, call the
domain (catalog, indexes, transactions, the cluster handle) and shape the answer.

Owns: ``common`` (typed request fields, the per-node API context), ``items`` (PutItem, GetItem,
UpdateItem, DeleteItem), ``batch`` (BatchGetItem, BatchWriteItem), ``query`` (Query, Scan),
``tables`` (the control plane) and ``consumed`` (consumed capacity figures).
May import: the rest of :mod:`dynamokv.api`; never the runtime.
"""
