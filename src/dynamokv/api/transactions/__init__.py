"""TransactWriteItems and TransactGetItems: all-or-nothing, serializable, over per-item
conditional writes that each item's partition log sequences.

Owns: ``coordinator`` (validating a transaction and driving it to commit or abort, and the
recovery of one whose coordinator died) and ``intents`` (the transaction records and the
intents every other operation must meet and resolve).
May import: :mod:`dynamokv.api.schema`, :mod:`dynamokv.api.layout`,
:mod:`dynamokv.api.operations.common`, the value and expression modules of :mod:`dynamokv.api`.
"""
