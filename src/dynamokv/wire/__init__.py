"""Bytes on the wire and at rest: the msgpack codec and the length-prefixed framing.

Owns: ``dynamokv.wire.codec`` (messages, objects and clocks to bytes and back) and
``dynamokv.wire.framing`` (cutting a byte stream into frames).
May import: ``dynamokv.core.*``, ``dynamokv.errors`` and ``msgpack`` only.

Everything that turns bytes from a peer, a client or the disk into values goes through here,
and every failure to do so is a ``dynamokv.errors.ProtocolError``.
"""
