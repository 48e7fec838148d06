"""The JSON envelope: validation (error 1002, connection stays open), ids and acks,
size/depth limits, UTF-8."""
import json
import time

import pytest

import gw
import wsclient

LIMIT = 1024


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    return make_module_gateway([gw.public_vhost(keys, websocket={"max_message_bytes": LIMIT})])


@pytest.fixture
def ws(g):
    c = g.connect(g.token())
    yield c
    c.close()


def nested(levels):
    """A client message whose JSON nesting depth is `levels` (the envelope object counts as 1)."""
    p = {}
    for _ in range(levels - 2):
        p = {"a": p}
    return json.dumps({"type": "echo", "payload": p})


def sized(n):
    """An echo message of exactly n bytes."""
    base = '{"type":"echo","payload":{"p":""}}'
    return base.replace('""', '"' + "x" * (n - len(base)) + '"')


def collect(ws, seconds=0.7):
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(gw.check_envelope(ws.recv_json(max(0.01, deadline - time.monotonic()))))
        except TimeoutError:
            break
    return out


# ------------------------------------------------------------------ good messages
def test_echo_roundtrip_has_envelope(ws):
    ws.send_json({"type": "echo", "payload": {"a": [1, "two", {"3": None}]}})
    m = gw.check_envelope(ws.recv_json())
    assert m["type"] == "echo" and m["payload"] == {"greeting": "hi", "echo": {"a": [1, "two", {"3": None}]}}, m


def test_error_message_has_envelope(ws):
    ws.send_text("not json")
    m = gw.expect_error(ws, 1002)
    assert set(m) <= {"type", "payload", "timestamp", "id"}, m


def test_client_timestamp_string_accepted(ws):
    ws.send_json({"type": "echo", "payload": {}, "timestamp": "2024-03-15T12:00:00Z"})
    assert gw.check_envelope(ws.recv_json())["type"] == "echo"


def test_success_with_id_is_acked(ws):
    ws.send_json({"type": "echo", "id": "m-1", "payload": {"x": 1}})
    msgs = collect(ws)
    acks = [m for m in msgs if m["type"] == "ack"]
    assert len(acks) == 1, "expected one ack, got %r" % msgs
    assert acks[0].get("id") == "m-1" and acks[0].get("payload", {}).get("for") == "echo", acks[0]
    assert any(m["type"] == "echo" for m in msgs), msgs
    assert not any(m["type"] == "error" for m in msgs), msgs


def test_success_without_id_is_not_acked(ws):
    ws.send_json({"type": "echo", "payload": {}})
    msgs = collect(ws)
    assert [m["type"] for m in msgs] == ["echo"], msgs


def test_id_of_64_chars_accepted(ws):
    ws.send_json({"type": "echo", "id": "i" * 64, "payload": {}})
    msgs = collect(ws)
    assert any(m["type"] == "ack" and m.get("id") == "i" * 64 for m in msgs), msgs


def test_empty_id_is_an_id_and_is_echoed(ws):
    """The contract bounds an id at 64 characters and sets no floor: "" is acked as ""."""
    ws.send_json({"type": "echo", "id": "", "payload": {}})
    msgs = collect(ws)
    acks = [m for m in msgs if m["type"] == "ack"]
    assert len(acks) == 1 and acks[0].get("id") == "", msgs
    assert acks[0]["payload"].get("for") == "echo", acks[0]


def test_id_of_65_chars_is_refused(ws):
    ws.send_json({"type": "echo", "id": "i" * 65, "payload": {}})
    m = gw.expect_error(ws, 1002)
    assert "at most 64" in m["payload"]["message"], m
    gw.probe(ws)


def test_heartbeat_ack_accepted(ws):
    ws.send_json({"type": "heartbeat_ack", "timestamp": "2024-03-15T12:00:00Z"})
    gw.probe(ws)  # fails on any error in between


def test_failure_with_id_carries_id(ws):
    ws.send_json({"type": "nosuchtype", "id": "bad-1", "payload": {}})
    gw.expect_error(ws, 1002, id="bad-1")
    gw.probe(ws)


def test_bad_payload_with_id_carries_id(ws):
    ws.send_json({"type": "echo", "id": "bad-2", "payload": "x"})
    gw.expect_error(ws, 1002, id="bad-2")


def test_json_depth_8_accepted(ws):
    ws.send_text(nested(8))
    m = gw.check_envelope(ws.recv_json())
    assert m["type"] == "echo", "8 levels (the default json_depth) must be accepted: %r" % m


def test_message_of_exactly_max_bytes_accepted(ws):
    ws.send_text(sized(LIMIT))
    m = gw.check_envelope(ws.recv_json())
    assert m["type"] == "echo", m


def test_fragmented_message_under_limit_reassembled(ws):
    ws.send_fragmented(sized(900), 4)
    m = gw.check_envelope(ws.recv_json())
    assert m["type"] == "echo" and len(m["payload"]["echo"]["p"]) > 800, m


def test_fragmented_message_with_ping_between_fragments(ws):
    data = sized(300).encode()
    ws.send_frame(wsclient.OP_TEXT, data[:100], fin=False)
    ws.send_frame(wsclient.OP_PING, b"mid")
    ws.send_frame(wsclient.OP_CONT, data[100:], fin=True)
    m = gw.check_envelope(ws.recv_json())
    assert m["type"] == "echo", m


def test_ping_answered_with_pong(ws):
    ws.send_frame(wsclient.OP_PING, b"hello")
    deadline = time.monotonic() + 3
    while True:
        fin, op, data = ws.recv_frame(max(0.0, deadline - time.monotonic()))
        if op == wsclient.OP_PONG:
            assert data == b"hello"
            break


# ------------------------------------------------------------------ malformed → 1002, still open
MALFORMED = {
    "not_json": "hello",
    "empty_text": "",
    "truncated_json": '{"type":"echo"',
    "json_array": '[{"type":"echo","payload":{}}]',
    "json_string": '"echo"',
    "json_number": "42",
    "json_null": "null",
    "trailing_object": '{"type":"echo","payload":{}} {}',
    "trailing_garbage": '{"type":"echo","payload":{}}x',
    "two_objects_no_space": '{"type":"echo","payload":{}}{"type":"echo","payload":{}}',
    "missing_type": '{"payload":{}}',
    "type_not_string": '{"type":5,"payload":{}}',
    "type_null": '{"type":null,"payload":{}}',
    "type_empty": '{"type":"","payload":{}}',
    "payload_string": '{"type":"echo","payload":"x"}',
    "payload_array": '{"type":"echo","payload":[1]}',
    "payload_null": '{"type":"echo","payload":null}',
    "timestamp_number": '{"type":"echo","payload":{},"timestamp":5}',
    "timestamp_object": '{"type":"echo","payload":{},"timestamp":{}}',
    "unknown_top_level_key": '{"type":"echo","payload":{},"extra":1}',
    "id_65_chars": json.dumps({"type": "echo", "id": "i" * 65, "payload": {}}),
    "id_not_string": '{"type":"echo","id":7,"payload":{}}',
    "unknown_type": '{"type":"nosuchtype","payload":{}}',
    # a repeated key: readers differ on which one counts, so none does
    "repeated_type": '{"type":"nosuchtype","type":"echo","payload":{}}',
    "repeated_payload_key": '{"type":"echo","payload":{"a":1,"a":2}}',
    "repeated_key_escaped": '{"type":"echo","payload":{},"\\u0074ype":"echo"}',
    "json_depth_9": nested(9),
    "json_depth_50": nested(50),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_message_gets_1002_and_stays_open(ws, case):
    ws.send_text(MALFORMED[case])
    gw.expect_error(ws, 1002)
    gw.probe(ws)


def test_binary_frame_gets_1002_and_stays_open(ws):
    ws.send_binary(b'{"type":"echo","payload":{}}')
    gw.expect_error(ws, 1002)
    gw.probe(ws)


def test_many_malformed_messages_in_a_row(ws):
    for i in range(20):
        ws.send_text("junk %d" % i)
    for _ in range(20):
        gw.expect_error(ws, 1002)
    gw.probe(ws)


# ------------------------------------------------------------------ closes
def expect_close(ws, code, timeout=5):
    c = ws.wait_close(timeout)
    assert c.code == code, "expected close %d, got %r (messages before: %r)" % (code, c, c.seen[-3:])


def send_tolerant(fn, *args):
    """Send what may be cut short: the server is free to close before reading it all."""
    try:
        fn(*args)
    except OSError:
        pass


def test_message_over_max_bytes_closes_1009(ws):
    send_tolerant(ws.send_text, sized(LIMIT + 1))
    expect_close(ws, 1009)


def test_large_message_closes_1009(ws):
    send_tolerant(ws.send_text, sized(64 * 1024))
    expect_close(ws, 1009)


def test_fragmented_message_over_max_bytes_closes_1009(ws):
    send_tolerant(ws.send_fragmented, sized(3 * LIMIT), 6)
    expect_close(ws, 1009)


def test_many_small_fragments_over_max_bytes_closes_1009(ws):
    data = sized(2 * LIMIT).encode()
    for i in range(0, len(data), 16):
        first, last = i == 0, i + 16 >= len(data)
        try:
            ws.send_frame(wsclient.OP_TEXT if first else wsclient.OP_CONT, data[i:i + 16], fin=last)
        except OSError:
            break
    expect_close(ws, 1009)


def test_invalid_utf8_closes_1007(ws):
    ws.send_text(b'{"type":"echo","payload":{"s":"\xff\xfe"}}')
    expect_close(ws, 1007)


def test_invalid_utf8_across_fragments_closes_1007(ws):
    ws.send_frame(wsclient.OP_TEXT, b'{"type":"echo","payload":{"s":"\xc3', fin=False)
    ws.send_frame(wsclient.OP_CONT, b'("}}', fin=True)
    expect_close(ws, 1007)


def test_overlong_utf8_encoding_closes_1007(ws):
    ws.send_text(b'{"type":"echo","payload":{"s":"\xc0\xaf"}}')
    expect_close(ws, 1007)


@pytest.mark.xfail(strict=True, reason="libwebsockets 4.1 accepts unmasked client frames and does "
                   "not expose the mask bit (README: Security); passes if lws starts refusing them")
def test_unmasked_client_frame_closes_connection(ws):
    ws.send_frame(wsclient.OP_TEXT, b'{"type":"echo","payload":{}}', mask=False)
    try:
        c = ws.wait_close(5)
    except TimeoutError:
        pytest.fail("an unmasked client frame must make the server close the connection")
    assert c.dropped or c.code == 1002, c


def test_gateway_survives_limit_closes(g):
    with g.connect(g.token()) as ws:
        gw.probe(ws)


# ------------------------------------------------------------------ more envelope edges
def test_whitespace_around_object_accepted(ws):
    """RFC 8259: JSON-text = ws value ws; surrounding whitespace is still exactly one object."""
    ws.send_text(' \n{"type":"echo","payload":{}}\n ')
    m = gw.check_envelope(ws.recv_json())
    assert m["type"] == "echo", m


def test_type_with_embedded_nul_not_dispatched(ws):
    ws.send_text('{"type":"echo\\u0000junk","payload":{}}')
    gw.expect_error(ws, 1002)
    gw.probe(ws)


def test_json_depth_9_with_arrays_gets_1002(ws):
    p = []
    for _ in range(7):
        p = [p]
    ws.send_text(json.dumps({"type": "echo", "payload": {"a": p}}))
    gw.expect_error(ws, 1002)
    gw.probe(ws)


def test_lone_surrogate_escape_never_yields_invalid_utf8(ws):
    """A \\ud800 escape decodes to no valid UTF-8: refuse it (1002) or answer in valid UTF-8."""
    ws.send_text('{"type":"echo","payload":{"s":"\\ud800"}}')
    op, data = ws.recv(3)
    try:
        msg = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        pytest.fail("the gateway sent invalid UTF-8 in a text frame: %r" % data)
    assert msg["type"] in ("error", "echo"), msg
    gw.probe(ws)


def test_client_close_is_echoed(ws):
    ws.send_close(1000, "bye")
    c = ws.wait_close(3)
    assert c.code == 1000, c


# ------------------------------------------------------------------ RFC 6455 protocol violations
def expect_failed(ws, what):
    try:
        c = ws.wait_close(5)
    except TimeoutError:
        pytest.fail("%s: the server must fail the connection (close 1002), it stayed open" % what)
    assert c.dropped or c.code == 1002, "%s: expected close 1002 (or a drop), got %r" % (what, c)


def test_reserved_opcode_fails_connection(ws):
    ws.send_frame(0x3, b"x")
    expect_failed(ws, "reserved opcode 0x3")


def test_rsv_bit_without_extension_fails_connection(ws):
    ws.send_frame(wsclient.OP_TEXT, b'{"type":"echo","payload":{}}', rsv=0x4)
    expect_failed(ws, "RSV1 set without permessage-deflate")


def test_continuation_without_start_fails_connection(ws):
    ws.send_frame(wsclient.OP_CONT, b'{"type":"echo","payload":{}}', fin=True)
    expect_failed(ws, "continuation frame with nothing to continue")


def test_new_message_inside_fragmented_message_fails_connection(ws):
    ws.send_frame(wsclient.OP_TEXT, b'{"type":"echo",', fin=False)
    ws.send_frame(wsclient.OP_TEXT, b'{"type":"echo","payload":{}}', fin=True)
    expect_failed(ws, "a new text frame while a fragmented message is open")


def test_fragmented_ping_fails_connection(ws):
    ws.send_frame(wsclient.OP_PING, b"x", fin=False)
    expect_failed(ws, "a fragmented control frame")


def test_oversized_ping_fails_connection(ws):
    ws.send_frame(wsclient.OP_PING, b"x" * 126)
    expect_failed(ws, "a ping with 126 bytes of payload")


# ------------------------------------------------------------------ limits set under "limits"
@pytest.fixture(scope="module")
def g_limits(make_module_gateway, keys):
    v = gw.public_vhost(keys, "lim", tls=False, limits={"max_message_bytes": 512, "json_depth": 3})
    del v["websocket"]["max_message_bytes"]
    return make_module_gateway([v])


def test_limits_max_message_bytes_honoured(g_limits):
    with g_limits.connect(g_limits.token(vhost="lim"), vhost="lim") as c:
        c.send_text(sized(512))
        assert gw.check_envelope(c.recv_json())["type"] == "echo"
        send_tolerant(c.send_text, sized(513))
        expect_close(c, 1009)


def test_limits_json_depth_honoured(g_limits):
    with g_limits.connect(g_limits.token(vhost="lim"), vhost="lim") as c:
        c.send_text(nested(3))
        assert gw.check_envelope(c.recv_json())["type"] == "echo"
        c.send_text(nested(4))
        gw.expect_error(c, 1002)
        gw.probe(c)


def test_unicode_and_json_values_roundtrip(ws):
    payload = {"s": "h\u00e9llo \u2713 \U0001F600 \u4e2d", "esc": "tab\tquote\"back\\slash/",
               "n": [0, -1, 2**53, 1.5, -0.25, 1e300], "b": [True, False, None], "o": {"": ""}}
    ws.send_text(json.dumps({"type": "echo", "payload": payload}, ensure_ascii=False))
    m = gw.check_envelope(ws.recv_json())
    assert m["payload"]["echo"] == payload, m
    ws.send_text(json.dumps({"type": "echo", "payload": payload}, ensure_ascii=True))
    assert gw.check_envelope(ws.recv_json())["payload"]["echo"] == payload


# ------------------------------------------------------------------ per-connection state
def test_fragment_boundary_exactly_max_bytes_accepted(ws):
    ws.send_fragmented(sized(LIMIT), 5)
    assert gw.check_envelope(ws.recv_json())["type"] == "echo"


def test_fragment_boundary_one_over_max_bytes_closes_1009(ws):
    send_tolerant(ws.send_fragmented, sized(LIMIT + 1), 5)
    expect_close(ws, 1009)


def test_interleaved_fragmented_messages_on_two_connections(g):
    with g.connect(g.token(sub="a1")) as a, g.connect(g.token(sub="b1")) as b:
        da = json.dumps({"type": "echo", "payload": {"who": "a" * 300}}).encode()
        db = json.dumps({"type": "echo", "payload": {"who": "b" * 300}}).encode()
        a.send_frame(wsclient.OP_TEXT, da[:150], fin=False)
        b.send_frame(wsclient.OP_TEXT, db[:100], fin=False)
        b.send_frame(wsclient.OP_CONT, db[100:], fin=True)
        assert gw.check_envelope(b.recv_json())["payload"]["echo"]["who"] == "b" * 300
        a.send_frame(wsclient.OP_CONT, da[150:], fin=True)
        assert gw.check_envelope(a.recv_json())["payload"]["echo"]["who"] == "a" * 300


def test_pipelined_messages_answered_in_order(ws):
    n = 200
    ws.send_raw(b"".join(wsclient.frame(wsclient.OP_TEXT, json.dumps(
        {"type": "echo", "id": "p%d" % i, "payload": {"i": i}})) for i in range(n)))
    echoes, acks = [], []
    while len(acks) < n:
        m = gw.check_envelope(ws.recv_json(5))
        assert m["type"] in ("echo", "ack"), m
        (echoes if m["type"] == "echo" else acks).append(m)
    assert [m["payload"]["echo"]["i"] for m in echoes] == list(range(n))
    assert [m["id"] for m in acks] == ["p%d" % i for i in range(n)]


def test_many_concurrent_connections(g):
    conns = []
    try:
        for i in range(40):
            conns.append(g.connect(g.token(sub="many%d" % i)))
        for c in conns:
            c.send_json({"type": "echo", "payload": {"me": id(c)}})
        for c in conns:
            assert gw.check_envelope(c.recv_json())["payload"]["echo"]["me"] == id(c)
    finally:
        for c in conns:
            c.close()
