"""What tables are: the replicated catalog of table descriptions and the validation of the
requests that change it.

Owns: ``catalog`` (``TableInfo``, ``IndexInfo``, the per-node cache of descriptions) and
``table_requests`` (parsing CreateTable/UpdateTable/TagResource parameters).
May import: :mod:`dynamokv.api.layout`, :mod:`dynamokv.api.errors`, the value modules.
"""
