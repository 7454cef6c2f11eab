"""How a table is laid out in the cluster's byte keys and values.

Owns: ``keycodec`` (an order-preserving, self-delimiting encoding of key values) and ``items``
(the stored bytes of one item, with or without a transaction's intent).
May import: the value modules of :mod:`dynamokv.api` (attributes, numbers) and the stdlib.
"""
