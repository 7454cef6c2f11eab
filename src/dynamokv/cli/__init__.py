"""The ``dynamokv`` command line.

Owns: ``main`` (the parser and handlers), ``render`` (tables and JSON) and ``cluster`` (local
clusters of node processes).
May import: see each module; the package itself imports nothing so that ``import dynamokv.cli``
stays cheap.
"""
