"""Many queued messages reach the client intact and in order.

When a connection's queue holds several frames, the gateway frames them
itself and hands them to the socket in one write (src/conn.c write_batch).
A client that sends many requests in one TCP write gets all their answers
queued in one event-loop round, which drives that path; the frame sizes
cross the 7-bit, 16-bit and 64-bit length forms and the batch size."""
import json

import pytest

import gw
import wsclient


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    v = gw.public_vhost(keys, tls=False, plugins={"example": {"greeting": "hi"}},
                        limits={"messages_per_s": 100000, "burst": 100000,
                                "outbound_queue_bytes": 64 << 20})
    v["websocket"]["max_message_bytes"] = 1 << 20
    return make_module_gateway([v])


SIZES = [0, 1, 60, 110, 120, 126, 127, 500, 4000, 30000, 65400, 65536, 70000, 100, 3, 200000, 5, 7]


def test_backlog_of_answers_arrives_in_order_with_every_frame_size(g):
    with g.connect(g.token()) as ws:
        burst = b"".join(
            wsclient.frame(wsclient.OP_TEXT, json.dumps(
                {"type": "echo", "id": "e%d" % i, "payload": {"i": i, "pad": "x" * n}}))
            for i, n in enumerate(SIZES * 4))
        ws.send_raw(burst)
        got = []
        while len(got) < 2 * len(SIZES) * 4:   # each echo is answered, then acked
            m = ws.recv_json(10, skip=("heartbeat",))
            gw.check_envelope(m)
            got.append(m)
    echoes = [m["payload"]["echo"] for m in got if m["type"] == "echo"]
    acks = [m["id"] for m in got if m["type"] == "ack"]
    assert [e["i"] for e in echoes] == list(range(len(SIZES) * 4))
    assert [len(e["pad"]) for e in echoes] == SIZES * 4
    assert acks == ["e%d" % i for i in range(len(SIZES) * 4)]
