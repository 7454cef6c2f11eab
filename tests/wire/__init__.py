"""Tests of ``dynamokv.wire``: the msgpack codec and the frame decoder."""
