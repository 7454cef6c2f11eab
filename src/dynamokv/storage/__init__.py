"""Pluggable storage engines: bytes at rest, with ordered range scans.

May import: ``dynamokv.core``, ``dynamokv.wire`` (to serialise objects), ``dynamokv.errors``.
"""
