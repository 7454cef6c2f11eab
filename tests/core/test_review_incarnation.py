"""Review: replies addressed to a previous incarnation of a node must not feed its new requests.

Request ids restart from the same value when a node restarts, and a ``ReplicaReadReply`` does
not say which key it is for, so a reply that was in flight across the restart (a slow peer
answers after the node came back; the peer's link reconnects and delivers it) lands on an
unrelated request that happens to reuse the id.
"""

from __future__ import annotations

from dynamokv.core.effects import Reply, Send
from dynamokv.core.events import ClientRequested, MessageReceived
from dynamokv.core.messages import (
    GetReply,
    GetRequest,
    PutReply,
    PutRequest,
    ReplicaRead,
    ReplicaReadReply,
)
from dynamokv.core.vclock import VectorClock
from tests.pump import Pump

EMPTY = VectorClock.empty()


def test_a_stale_replica_reply_from_before_a_restart_is_not_taken_for_another_key(
        pump3: Pump) -> None:
    assert isinstance(pump3.request("n3", PutRequest(1, "b", b"A", b"value-of-A", EMPTY)),
                      PutReply)
    assert isinstance(pump3.request("n2", PutRequest(1, "b", b"B", b"value-of-B", EMPTY)),
                      PutReply)
    now, wall = pump3.now_ms, 1_000_000 + pump3.now_ms
    # n1 coordinates a get of A, sends its replica reads, then crashes before any answer.
    effects = pump3.nodes["n1"].handle(ClientRequested(7, GetRequest(2, "b", b"A")), now, wall)
    read_a = next(e.msg for e in effects
                  if isinstance(e, Send) and e.to == "n2" and isinstance(e.msg, ReplicaRead))
    pump3.restart("n1")
    pump3.deliver_all()
    # n2 was slow: it answers the old read only now, and its link delivers to the new n1.
    stale = next(e.msg for e in pump3.nodes["n2"].handle(MessageReceived("n1", read_a), now, wall)
                 if isinstance(e, Send) and isinstance(e.msg, ReplicaReadReply))
    # The new n1 coordinates a get of B, which reuses the request id.
    node = pump3.nodes["n1"]
    out = node.handle(ClientRequested(8, GetRequest(3, "b", b"B")), now, wall)
    out += node.handle(MessageReceived("n2", stale), now, wall)
    answers = [e.msg for e in out if isinstance(e, Reply) and e.client == 8]
    if not answers:  # not decided by the stale reply: let the real replies come in
        pump3._run("n1", out)
        pump3.deliver_all()
        answers = pump3.replies.get(8, [])
    assert answers and isinstance(answers[0], GetReply)
    assert answers[0].values == (b"value-of-B",)
