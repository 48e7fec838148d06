"""Hostile frames and messages: absurd frame lengths, fragment floods, deep JSON, invalid
UTF-8, hostile channel names, permessage-deflate bombs. Each attack gets the DESIGN
answer (close 1009/1007, error 1002/1003) and a neighbour connected before stays served."""
import json
import time

import pytest

import gw
import wsclient
from test_adversarial_util import (PMD_OFFER, DeflateWS, check_neighbour, deflate, expect_close,
                                   frame_header, neighbour, raw_upgrade, settle)
from test_flow_util import ALL, FULL_PLUGINS, Client, uid
from wsclient import OP_CONT, OP_TEXT, Closed

PLUGINS = dict(FULL_PLUGINS, example={"greeting": "hi"})
SMALL = 1024  # max_message_bytes of the "small" vhost
BIG = 12 << 20  # and of the "big" one


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    g = make_module_gateway([
        gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS),
        gw.public_vhost(keys, "small", tls=False, plugins=PLUGINS, websocket={"max_message_bytes": SMALL}),
        gw.public_vhost(keys, "pmd", tls=False, plugins=PLUGINS, websocket={"permessage_deflate": True}),
        gw.public_vhost(keys, "big", tls=False, plugins=PLUGINS,
                        websocket={"max_message_bytes": BIG, "permessage_deflate": True}),
        gw.internal_vhost(keys),
    ])
    yield g
    settle(g)


@pytest.fixture
def nb(g):
    c = neighbour(g)
    yield c
    c.close()


def attacker(g, vhost="public"):
    ws = g.connect(g.token(vhost=vhost, sub=uid("att"), **ALL), vhost=vhost)
    gw.probe(ws)
    return ws


# ------------------------------------------------------------------ frame length
def test_frame_header_announcing_2_pow_60_bytes_closes_1009(g, nb):
    with attacker(g) as ws:
        ws.send_raw(frame_header(OP_TEXT, 1 << 60) + b"\x00" * 64)
        expect_close(ws, 1009)
    check_neighbour(nb, "a 2^60-byte frame header")


def test_frame_header_announcing_2_pow_63_minus_1_bytes_closed(g, nb):
    """The largest length RFC 6455 allows (MSB clear): refused the same way."""
    with attacker(g) as ws:
        ws.send_raw(frame_header(OP_TEXT, (1 << 63) - 1) + b"\x00" * 64)
        expect_close(ws, 1009)
    check_neighbour(nb, "a 2^63-1-byte frame header")


def test_frame_header_just_over_limit_closes_1009_before_payload(g, nb):
    """The announced length alone decides: no need to send the bytes."""
    with attacker(g) as ws:
        ws.send_raw(frame_header(OP_TEXT, 16384 + 1) + b"{")
        expect_close(ws, 1009)
    check_neighbour(nb, "a header one byte over the limit")


# ------------------------------------------------------------------ fragment floods
def test_one_byte_fragments_past_max_message_bytes_close_1009(g):
    """1-byte fragments without FIN until past max_message_bytes (1024 on this vhost, so the
    byte cap, not the piece cap, is what fires)."""
    nb = neighbour(g, vhost="small")
    with attacker(g, "small") as ws:
        data = b"".join(wsclient.frame(OP_TEXT if i == 0 else OP_CONT, b"x", fin=False)
                        for i in range(SMALL + 16))
        ws.send_raw(data)
        expect_close(ws, 1009)
    check_neighbour(nb, "a 1-byte fragment flood")
    nb.close()


def test_fragments_reassembled_over_limit_close_1009(g, nb):
    """Each fragment is small, the sum is over 16 KiB: the reassembled size is capped."""
    with attacker(g) as ws:
        msg = '{"type":"echo","payload":{"p":"%s"}}' % ("x" * 20000)
        try:
            ws.send_fragmented(msg, 40)
        except OSError:
            pass
        expect_close(ws, 1009)
    check_neighbour(nb, "fragments summing over the limit")


def test_5000_empty_continuation_frames_close_1009(g, nb):
    """Empty fragments cost no bytes; the gateway caps the pieces (4096) of one message."""
    with attacker(g) as ws:
        data = wsclient.frame(OP_TEXT, b"{", fin=False) + b"".join(
            wsclient.frame(OP_CONT, b"", fin=False) for _ in range(5000))
        ws.send_raw(data)
        expect_close(ws, 1009)
    check_neighbour(nb, "an empty-fragment flood")


@pytest.mark.parametrize("deflated", [False, True])
def test_a_message_of_megabytes_under_a_large_limit_is_read(g, deflated):
    """max_message_bytes may be up to 16 MiB: a 10 MiB message in one frame (lws hands it
    over in pieces of its receive buffer, thousands of them) is read whole, plain and
    inflated from permessage-deflate, and answered (an unknown type: error 1002 with its id)."""
    msg = json.dumps({"type": "no_such_type", "id": "big", "payload": {"p": "x" * (10 << 20)}})
    token = g.token(vhost="big", sub=uid("big"), **ALL)
    headers = {"Sec-WebSocket-Extensions": PMD_OFFER} if deflated else {}
    with raw_upgrade(g.port("big"), token=token, headers=headers, cls=DeflateWS) as ws:
        if deflated:
            ws.send_deflated(msg)
        else:
            ws.send_text(msg)
        while True:
            m = gw.check_envelope(json.loads(ws.recv_message(timeout=30)[1]))
            if m["type"] != "heartbeat":
                break
        assert m["type"] == "error" and m["id"] == "big" and m["payload"]["code"] == 1002, m


def test_5000_one_byte_fragments_under_a_large_limit_close_1009(g):
    """Under a 12 MiB limit the bytes never run out; the pieces do: each 64 bytes of a
    message earn one piece more than 4096, and 5000 one-byte fragments earn 78."""
    nb = neighbour(g, vhost="big")
    with attacker(g, "big") as ws:
        data = b"".join(wsclient.frame(OP_TEXT if i == 0 else OP_CONT, b"x", fin=False)
                        for i in range(5000))
        ws.send_raw(data)
        expect_close(ws, 1009)
    check_neighbour(nb, "a 1-byte fragment flood under a large limit")
    nb.close()


def test_fragmented_message_under_limit_still_works(g, nb):
    """Control: a legitimately fragmented message of 100 pieces is processed."""
    with attacker(g) as ws:
        ws.send_fragmented(json.dumps({"type": "echo", "id": "f1", "payload": {"p": "y" * 500}}), 100)
        m = gw.check_envelope(ws.recv_json())
        assert m["type"] == "echo" and m["payload"]["echo"]["p"] == "y" * 500, m
    check_neighbour(nb)


# ------------------------------------------------------------------ JSON depth
@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_json_1002_connection_stays(g, nb, depth):
    with attacker(g) as ws:
        inner = "[" * depth + "]" * depth
        ws.send_text('{"type":"echo","id":"deep","payload":{"a":%s}}' % inner)
        gw.expect_error(ws, 1002, id=None)
        gw.probe(ws)
    check_neighbour(nb, "deep JSON")


def test_deeply_nested_objects_1002_connection_stays(g, nb):
    with attacker(g) as ws:
        p = {}
        for _ in range(100):
            p = {"a": p}
        ws.send_json({"type": "echo", "payload": p})
        gw.expect_error(ws, 1002)
        gw.probe(ws)
    check_neighbour(nb, "deep JSON objects")


# ------------------------------------------------------------------ UTF-8
BAD_UTF8 = {
    "lone-continuation": b"\x80",
    "bad-start": b"\xff",
    "truncated-2": b"\xc3",
    "overlong-slash-2": b"\xc0\xaf",
    "overlong-slash-3": b"\xe0\x80\xaf",
    "overlong-slash-4": b"\xf0\x80\x80\xaf",
    "overlong-nul": b"\xc0\x80",
    "surrogate": b"\xed\xa0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "five-byte": b"\xf8\x88\x80\x80\x80",
}


@pytest.mark.parametrize("case", sorted(BAD_UTF8))
def test_invalid_utf8_text_frame_closes_1007(g, nb, case):
    with attacker(g) as ws:
        ws.send_frame(OP_TEXT, b'{"type":"echo","payload":{"p":"' + BAD_UTF8[case] + b'"}}')
        expect_close(ws, 1007)
    check_neighbour(nb, "invalid UTF-8")


def test_invalid_utf8_split_across_fragments_closes_1007(g, nb):
    """The first byte of a 2-byte sequence ends one fragment, a bad continuation starts the next."""
    with attacker(g) as ws:
        ws.send_frame(OP_TEXT, b'{"type":"echo","payload":{"p":"\xc3', fin=False)
        ws.send_frame(OP_CONT, b'("}}', fin=True)
        expect_close(ws, 1007)
    check_neighbour(nb, "invalid UTF-8 across fragments")


def test_valid_utf8_split_across_fragments_works(g, nb):
    with attacker(g) as ws:
        ws.send_frame(OP_TEXT, b'{"type":"echo","payload":{"p":"\xc3', fin=False)
        ws.send_frame(OP_CONT, b'\xa9\xf0\x9f\x98\x80"}}', fin=True)
        m = ws.recv_json()
        assert m["type"] == "echo" and m["payload"]["echo"]["p"] == "\u00e9\U0001F600", m
    check_neighbour(nb)


# ------------------------------------------------------------------ channel names
CHANNEL_1003 = {
    "dotdot": "zone:../etc",
    "dotdot-prefix": "../zone:a",
    "slash": "zone:a/b",
    "empty-id": "zone:",
    "65-chars": "zone:" + "a" * 65,
    "1000-chars": "channel:" + "b" * 1000,
    "unicode": "zone:caf\u00e9",
    "rtl-override": "zone:a\u202eb",
    "space": "zone:a b",
    "colon": "zone:a:b",
    "upper-kind": "ZONE:a",
    "unknown-kind": "room:a",
    "user-dotdot": "user:../alice",
    "chat-65": "chat:" + "c" * 65,
}


@pytest.mark.parametrize("case", sorted(CHANNEL_1003))
def test_bad_channel_name_1003_connection_stays(g, nb, case):
    c = Client(g, sub=uid("att"), **ALL)
    with c:
        c.err("subscribe", {"channel": CHANNEL_1003[case]}, 1003)
        c.subscribe("zone:ok-" + case)  # still served, grammar-valid names still work
    check_neighbour(nb, "a bad channel name")


def test_channel_with_escaped_nul_1002(g, nb):
    """\\u0000 in a JSON string is refused by the gateway's JSON scan (1002), before the
    channel grammar sees a truncated C string."""
    c = Client(g, sub=uid("att"), **ALL)
    with c:
        c.ws.send_text('{"type":"subscribe","id":"n1","payload":{"channel":"zone:a\\u0000b"}}')
        gw.expect_error(c.ws, 1002, id=None)
        c.subscribe("zone:a")  # "zone:a" (the part before the NUL) works on its own
    check_neighbour(nb, "a NUL in a channel name")


def test_channel_with_raw_nul_byte_1002(g, nb):
    c = Client(g, sub=uid("att"), **ALL)
    with c:
        c.ws.send_frame(OP_TEXT, b'{"type":"subscribe","payload":{"channel":"zone:a\x00b"}}')
        gw.expect_error(c.ws, 1002)
        c.sync()
    check_neighbour(nb, "a raw NUL in JSON")


def test_channel_id_of_64_chars_accepted(g, nb):
    c = Client(g, sub=uid("att"), **ALL)
    with c:
        c.subscribe("zone:" + "z" * 64)
    check_neighbour(nb)


# ------------------------------------------------------------------ permessage-deflate
def pmd_connect(g, vhost="pmd"):
    ws = raw_upgrade(g.port(vhost), token=g.token(vhost=vhost, sub=uid("pmd")),
                     headers={"Sec-WebSocket-Extensions": PMD_OFFER}, cls=DeflateWS)
    return ws


def pmd_echo(ws, n):
    ws.send_deflated(json.dumps({"type": "echo", "payload": {"n": n}}))
    deadline = time.monotonic() + 3
    while True:
        op, data = ws.recv_message(max(0.0, deadline - time.monotonic()))
        m = json.loads(data)
        if m.get("type") == "echo":
            assert m["payload"]["echo"] == {"n": n}, m
            return m


def test_pmd_negotiated_and_small_compressed_message_works(g):
    nb = neighbour(g, vhost="pmd")
    with pmd_connect(g) as ws:
        assert "permessage-deflate" in ws.headers.get("sec-websocket-extensions", ""), ws.headers
        pmd_echo(ws, "small-1")
        pmd_echo(ws, "small-2")  # a second message: no context confusion
    check_neighbour(nb)
    nb.close()


@pytest.mark.parametrize("fragments", [1, 4])
def test_pmd_bomb_1mb_of_zeros_closes_1009(g, fragments):
    nb = neighbour(g, vhost="pmd")
    with pmd_connect(g) as ws:
        pmd_echo(ws, "before")
        bomb = b'{"type":"echo","payload":{"p":"' + b"0" * (1 << 20) + b'"}}'
        z = deflate(bomb)
        assert len(z) < 4096, len(z)  # well under max_message_bytes on the wire
        try:
            ws.send_deflated(bomb, fragments)
        except OSError:
            pass  # closed after the first fragments already
        try:
            while True:
                ws.recv_message(5)
        except Closed as c:
            assert c.code == 1009, "expected close 1009 after an inflation bomb, got %r" % c
        except TimeoutError:
            pytest.fail("no close within 5 s after a 1 MiB inflation bomb")
    check_neighbour(nb, "a deflate bomb")
    nb.close()


def test_pmd_just_over_limit_after_inflation_closes_1009(g):
    nb = neighbour(g, vhost="pmd")
    with pmd_connect(g) as ws:
        ws.send_deflated(json.dumps({"type": "echo", "payload": {"p": "q" * 17000}}))
        try:
            while True:
                ws.recv_message(5)
        except Closed as c:
            assert c.code == 1009, c
    check_neighbour(nb, "an over-limit compressed message")
    nb.close()


def test_pmd_invalid_utf8_after_inflation_closes_1007(g):
    nb = neighbour(g, vhost="pmd")
    with pmd_connect(g) as ws:
        ws.send_deflated(b'{"type":"echo","payload":{"p":"\xc0\xaf"}}')
        try:
            while True:
                ws.recv_message(5)
        except Closed as c:
            assert c.code == 1007, "expected close 1007 for invalid UTF-8 inside a compressed message, got %r" % c
    check_neighbour(nb, "compressed invalid UTF-8")
    nb.close()


def test_pmd_off_by_default_no_extension_in_response(g):
    with raw_upgrade(g.port("public"), token=g.token(sub=uid("pmd")),
                     headers={"Sec-WebSocket-Extensions": PMD_OFFER}) as ws:
        assert "sec-websocket-extensions" not in ws.headers, ws.headers
        gw.probe(ws)


def test_pmd_off_rsv1_frame_refused(g, nb):
    """Without the extension, a frame with RSV1 set is a protocol error: the connection is
    closed (1002 protocol error by lws), never treated as compressed."""
    with attacker(g) as ws:
        ws.send_frame(OP_TEXT, deflate(b'{"type":"echo","payload":{}}'), rsv=4)
        c = ws.wait_close(5)
        assert c.code in (1002, None), c
    check_neighbour(nb, "an RSV1 frame without the extension")


# ------------------------------------------------------------------ control frames
def test_ping_flood_without_reading_keeps_memory_bounded(g, nb):
    """20000 pings (125 bytes each) from a client that never reads the pongs."""
    from test_adversarial_util import rss_kb
    rss0 = rss_kb(g)
    ws = raw_upgrade(g.port(), token=g.token(sub=uid("ping")), rcvbuf=4096)
    ping = wsclient.frame(wsclient.OP_PING, b"p" * 125)
    sent = 0
    ws.sock.settimeout(5)
    try:
        for _ in range(200):
            ws.send_raw(ping * 100)
            sent += 100
    except OSError:
        pass  # blocked or closed: either way the gateway did not buffer it all
    growth = (rss_kb(g) - rss0) / 1024
    ws.close()
    assert growth < 32, "gateway RSS grew by %.1f MB under a ping flood (%d pings)" % (growth, sent)
    check_neighbour(nb, "a ping flood")


@pytest.mark.parametrize("case", ["ping-126-bytes", "fragmented-ping", "reserved-opcode", "rsv2",
                                  "continuation-first", "text-inside-fragmented"])
def test_protocol_violations_close_1002(g, nb, case):
    with attacker(g) as ws:
        if case == "ping-126-bytes":
            ws.send_frame(wsclient.OP_PING, b"x" * 126)
        elif case == "fragmented-ping":
            ws.send_frame(wsclient.OP_PING, b"x", fin=False)
        elif case == "reserved-opcode":
            ws.send_frame(0x3, b"{}")
        elif case == "rsv2":
            ws.send_frame(OP_TEXT, b"{}", rsv=2)
        elif case == "continuation-first":
            ws.send_frame(OP_CONT, b'{"type":"echo","payload":{}}')
        else:
            ws.send_frame(OP_TEXT, b'{"type":', fin=False)
            ws.send_frame(OP_TEXT, b'"echo","payload":{}}')
        c = ws.wait_close(5)
        # lws fails the connection: a close 1002, or (oversized control frame) a plain drop
        assert c.code == 1002 or (case == "ping-126-bytes" and c.dropped), \
            "%s: expected close 1002 (protocol error), got %r" % (case, c)
    check_neighbour(nb, "a protocol violation (%s)" % case)


@pytest.mark.parametrize("payload", [b"\x03\xed", b"\x03\xe8\xc0\xaf", b"\x00\x00", b"\x0f\xa0", b"\x03"],
                         ids=["reserved-1005", "bad-utf8-reason", "code-0", "code-4000", "one-byte"])
def test_odd_close_frames_handled(g, nb, payload):
    """Close frames with reserved codes, invalid UTF-8 reasons or a 1-byte body: the
    connection ends, the gateway stays up."""
    with attacker(g) as ws:
        ws.send_frame(wsclient.OP_CLOSE, payload)
        ws.wait_close(5)  # answered with a close frame or dropped: either way it ends
    check_neighbour(nb, "an odd close frame")
