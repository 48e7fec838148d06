"""Transport hardening, as a strict client sees it (DESIGN 7.5).

- Every close the gateway starts completes the closing handshake, even while the client is
  still sending: 4029 (a 300-message burst), 1009, 4001 (token expiry, revocation through the
  internal API), 4008 (the client stops reading, then reads), 1001 (SIGTERM). Checked with the
  raw client (close frame with the code, then a FIN — never a reset) and with Python
  `websockets` (the close frame received, close_code the code, not 1006).
- Refused handshakes (403, 404, 429, 503) are answered `HTTP/1.1 <code> <reason>` with a
  Content-Length and `Connection: close`, then the socket is closed; `websockets` raises
  InvalidStatusCode with the status.
- A ping longer than 125 bytes (and a 64-bit frame length with its top bit set) is answered
  with close 1002.
- TLS (public and internal vhosts): 1.2 at least, and over TLS 1.2 only forward-secret AEAD
  ciphers, even where the host's OpenSSL configuration allows more.
"""
import asyncio
import re
import signal
import socket
import ssl
import time
import warnings

import pytest
import websockets

import gw
import wsclient
from test_adversarial_util import (Publisher, closes, frame_header, raw_upgrade, read_head,
                                   settle, tcp, wait_until)
from test_flow_util import API, FULL_PLUGINS, uid
from test_hardening_util import (HEARTBEAT_ACK, Sender, raw_client, raw_close_seen, run, tcp_end,
                                 ws_check_close, ws_connect, ws_keep_sending,
                                 ws_keep_sending_until_close)
from wsclient import HandshakeRefused

PLUGINS = dict(FULL_PLUGINS, example={"greeting": "hi"})
SMALL = 1024  # max_message_bytes of "public"
ORIGIN = "https://pavilion.network"
ALL = {"zones": ["*"]}
CLIENTS = ["raw", "websockets"]
# clients here send ~10,000 messages a second (test_hardening_util.Sender): not a flood here
FAST = {"messages_per_s": 100000, "burst": 100000}


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    g = make_module_gateway([
        gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS,
                        websocket={"max_message_bytes": SMALL},
                        auth={"leeway_s": 0},
                        limits=dict(FAST, outbound_queue_bytes=65536)),
        gw.public_vhost(keys, "flood", tls=False, plugins=PLUGINS,
                        limits={"messages_per_s": 10, "burst": 20, "abuse_close_after": 100}),
        gw.public_vhost(keys, "tls", tls=True, plugins=PLUGINS,
                        limits={"messages_per_s": 10, "burst": 20, "abuse_close_after": 100}),
        gw.public_vhost(keys, "origin", tls=False, plugins=PLUGINS,
                        websocket={"allowed_origins": [ORIGIN]}),
        gw.public_vhost(keys, "perip", tls=False, plugins=PLUGINS,
                        limits={"max_connections_per_ip": 2, "handshakes_per_s_per_ip": 1000}),
        gw.internal_vhost(keys),
    ])
    yield g
    settle(g)


# ------------------------------------------------------------------ closes that arrive
def close_via_raw(g, code, vhost="public", first=(), trigger=None, **claims):
    ws = raw_client(g, vhost=vhost, **claims)
    sender = Sender(ws, first=first)
    sender.start()
    if trigger:
        trigger()
    return raw_close_seen(ws, sender, code)


def close_via_websockets(g, code, vhost="public", first=(), trigger=None, **claims):
    async def scenario():
        async with ws_connect(g, vhost, g.token(vhost=vhost, **claims)) as ws:
            if trigger:
                asyncio.get_running_loop().call_later(0.05, trigger)
            closed, msgs = await ws_keep_sending_until_close(ws, first=first)
        ws_check_close(ws, closed, code)
        return msgs
    return run(scenario())


def close_seen(client, g, code, **kw):
    return (close_via_raw if client == "raw" else close_via_websockets)(g, code, **kw)


@pytest.mark.parametrize("client", CLIENTS)
def test_4029_after_a_300_message_burst_arrives(g, client):
    burst = [HEARTBEAT_ACK] * 300
    if client == "raw":
        burst = [wsclient.frame(wsclient.OP_TEXT, m) for m in burst]
    msgs = close_seen(client, g, 4029, vhost="flood", first=burst, sub=uid("flood"))
    assert any(m["type"] == "error" and m["payload"]["code"] == 1005 for m in msgs), msgs[-5:]


def test_4029_over_tls_arrives(g):
    """The same burst over wss, strict client."""
    msgs = close_via_websockets(g, 4029, vhost="tls", first=[HEARTBEAT_ACK] * 300,
                                sub=uid("flood"))
    assert any(m["type"] == "error" for m in msgs), msgs[-5:]


@pytest.mark.parametrize("client", CLIENTS)
def test_1009_arrives_while_the_client_keeps_sending(g, client):
    big = '{"type":"echo","payload":{"pad":"%s"}}' % ("x" * (4 * SMALL))
    first = [wsclient.frame(wsclient.OP_TEXT, big)] if client == "raw" else [big]
    close_seen(client, g, 1009, first=first, sub=uid("big"))


@pytest.mark.parametrize("client", CLIENTS)
def test_4001_token_expiry_arrives_while_the_client_keeps_sending(g, client):
    """leeway_s 0 on this vhost: a 2 s token expires while the client sends 100 messages/s."""
    msgs = close_seen(client, g, 4001, sub=uid("exp"), ttl=2)
    errs = [m for m in msgs if m["type"] == "error"]
    assert errs and errs[-1]["payload"] == {"code": 1001, "message": "token expired"}, msgs[-5:]


@pytest.mark.parametrize("client", CLIENTS)
def test_4001_revocation_arrives_while_the_client_keeps_sending(g, client):
    sub = uid("rv")
    api = API(g)

    def revoke():
        # once the store counts the connection (revocation closes what it counts)
        gw.wait_until(lambda: api.presence(sub).get("connections") == 1, 5)
        r = api.call("DELETE", "/v1/users/%s/connections" % sub)
        assert r.status == 200 and r.json == {"closed": 1}, r

    msgs = close_seen(client, g, 4001, sub=sub, trigger=revoke)
    errs = [m for m in msgs if m["type"] == "error"]
    assert errs and errs[-1]["payload"]["message"] == "connection revoked", msgs[-5:]


def publish_until_4008(g, chan, limit=1500):
    """16 KB publications to chan until the gateway has closed a slow consumer (4008)."""
    api = API(g)
    before = closes(api, 4008)
    pub = Publisher(g)
    try:
        for i in range(limit):
            pub.publish(chan, "bulk", {"i": i, "pad": "x" * 16000})
            if i % 10 == 9 and closes(api, 4008) > before:
                return i + 1
    finally:
        pub.close()
    pytest.fail("no 4008 after %d publications to a client that does not read" % limit)


def test_4008_arrives_when_the_client_reads_again_raw(g):
    """A subscriber that stops reading (SO_RCVBUF 4096) while it keeps sending, then reads:
    it gets what was in flight, then close 4008, then a FIN."""
    chan = "zone:" + uid("slow")
    ws = raw_client(g, sub=uid("slow"), rcvbuf=4096, **ALL)
    ws.send_json({"type": "subscribe", "id": "s", "payload": {"channel": chan}})
    assert ws.recv_json(3)["type"] == "ack"
    sender = Sender(ws)
    sender.start()
    publish_until_4008(g, chan)
    raw_close_seen(ws, sender, 4008)


def test_4008_arrives_when_the_client_reads_again_websockets(g):
    chan = "zone:" + uid("slow")

    async def scenario():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", g.port()))
        # max_queue 1, read_limit 1024: the client stops taking data off the socket
        async with ws_connect(g, token=g.token(sub=uid("slow"), **ALL), sock=s, max_queue=1,
                              read_limit=1024, max_size=2 ** 20) as ws:
            await ws.send('{"type":"subscribe","id":"s","payload":{"channel":"%s"}}' % chan)
            assert '"ack"' in await asyncio.wait_for(ws.recv(), 3)
            task = asyncio.create_task(ws_keep_sending(ws))
            await asyncio.to_thread(publish_until_4008, g, chan)
            task.cancel()
            # now read everything, still sending
            closed, _ = await ws_keep_sending_until_close(ws)
        ws_check_close(ws, closed, 4008)

    run(scenario())


@pytest.mark.parametrize("client", CLIENTS)
def test_1001_on_sigterm_arrives_while_the_client_keeps_sending(make_gateway, keys, client):
    g = make_gateway([gw.public_vhost(keys, tls=False, plugins=PLUGINS, limits=FAST),
                      gw.internal_vhost(keys)])
    close_seen(client, g, 1001, sub=uid("sd"), trigger=lambda: g.signal(signal.SIGTERM))
    assert g.proc.wait(10) == 0


def test_close_frame_not_answered_socket_cut_within_drain_deadline(g):
    """A client that never answers the close (and keeps the gateway busy with frames): the
    socket is closed within 2 s of the close frame (plus the once-a-second tick)."""
    ws = raw_client(g, vhost="flood", sub=uid("mute"))
    for _ in range(200):  # past abuse_close_after: close 4029
        ws.send_text(HEARTBEAT_ACK)
    t0 = None
    deadline = time.monotonic() + 10
    # read frames by hand: wsclient would answer the close
    while time.monotonic() < deadline:
        fin, op, payload = ws.recv_frame(5)
        if op == wsclient.OP_CLOSE:
            t0 = time.monotonic()
            assert payload[:2] == (4029).to_bytes(2, "big"), payload
            break
    assert t0 is not None, "no close frame"
    end = tcp_end(ws, timeout=5)
    took = time.monotonic() - t0
    ws.sock.close()
    assert end in ("fin", "reset") and took <= 3.2, \
        "socket still %s %.1fs after a close that was not answered" % (end, took)


# ------------------------------------------------------------------ refusals strict clients can read
def raw_refusal(port, path="/ws", headers=None, src="127.0.0.1", token=None):
    """The raw answer to an upgrade: (status line, headers, body, how TCP ended)."""
    s = tcp(port, src=src)
    if token is not None:
        path += "?token=" + token
    h = {"Host": "127.0.0.1:%d" % port, "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}
    h.update(headers or {})
    s.sendall(("GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items())
               + "\r\n").encode())
    data = b""
    end = "open"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        except OSError:
            end = "reset"
            break
        if not chunk:
            end = "fin"
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs, body, end


REASONS = {403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
           503: "Service Unavailable"}


def check_raw_refusal(answer, status):
    line, hdrs, body, end = answer
    assert line == "HTTP/1.1 %d %s" % (status, REASONS[status]), \
        "status line %r, expected HTTP/1.1 %d" % (line, status)
    assert hdrs.get("connection", "").lower() == "close", hdrs
    assert int(hdrs.get("content-length", "-1")) == len(body), (hdrs, body)
    assert end == "fin", "after the %d the socket was %s, not closed with a FIN" % (status, end)


def ws_refusal_status(g, vhost="public", path="/ws", token=None, **kw):
    """The status Python websockets reports for a refused upgrade."""
    async def attempt():
        try:
            async with ws_connect(g, vhost, token, path, **kw):
                return 101
        except websockets.InvalidStatusCode as e:
            return e.status_code
    return run(attempt())


@pytest.mark.parametrize("client", CLIENTS)
def test_403_origin_readable(g, client):
    t = g.token(vhost="origin")
    if client == "raw":
        check_raw_refusal(raw_refusal(g.port("origin"), headers={"Origin": "https://evil.example"},
                                      token=g.note_token(t)), 403)
    else:
        assert ws_refusal_status(g, "origin", token=t, origin="https://evil.example") == 403
        assert ws_refusal_status(g, "origin", token=g.token(vhost="origin"), origin=ORIGIN) == 101


@pytest.mark.parametrize("client", CLIENTS)
def test_404_path_readable(g, client):
    if client == "raw":
        check_raw_refusal(raw_refusal(g.port(), path="/elsewhere"), 404)
    else:
        assert ws_refusal_status(g, path="/elsewhere", token=g.token()) == 404


@pytest.mark.parametrize("client", CLIENTS)
def test_429_per_ip_readable(g, client):
    """max_connections_per_ip 2 on "perip": two held, the third upgrade gets 429 (each client
    from its own source address)."""
    src = "127.0.0.%d" % (30 + CLIENTS.index(client))
    port = g.port("perip")
    held = [raw_upgrade(port, token=g.note_token(g.token(vhost="perip")), src=src)
            for _ in range(2)]
    try:
        if client == "raw":
            check_raw_refusal(raw_refusal(port, src=src, token=g.note_token(
                g.token(vhost="perip"))), 429)
        else:
            s = tcp(port, src=src)
            assert ws_refusal_status(g, "perip", token=g.token(vhost="perip"), sock=s) == 429
    finally:
        for ws in held:
            ws.close()


def test_plain_http_request_on_public_vhost_404_readable(g):
    """Not an upgrade: HTTP/1.1 404, Connection: close, closed."""
    s = tcp(g.port())
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    status, hdrs, rest = read_head(s)
    s.close()
    assert status == 404 and hdrs.get("connection") == "close", (status, hdrs)


@pytest.mark.parametrize("client", CLIENTS)
def test_503_while_shutting_down_readable(make_gateway, keys, client):
    """After SIGTERM, while a client that never answers the close holds the process up
    (at most the 2 s drain), a new handshake gets 503."""
    g = make_gateway([gw.public_vhost(keys, tls=False, plugins=PLUGINS), gw.internal_vhost(keys)])
    mute = raw_upgrade(g.port(), token=g.note_token(g.token(sub=uid("mute"))))
    assert wait_until(lambda: run_ok(API(g).get, "/healthz"), 3)
    g.signal(signal.SIGTERM)
    # wait until the gateway has taken the signal: a probe sent before that is upgraded and
    # then held until the shutdown cuts it (the 2 s drain), which used the whole window
    assert wait_until(lambda: "shutting down: closing" in g.log_text(), 2, step=0.01), \
        g.log_tail()
    # then it is shutting down (a raw upgrade says 503), then ask
    assert wait_until(lambda: raw_status(g) == 503, 2, step=0.01), "no 503 after SIGTERM"
    if client == "raw":
        check_raw_refusal(raw_refusal(g.port(), token=g.note_token(g.token())), 503)
    else:
        assert ws_refusal_status(g, token=g.token()) == 503
    mute.sock.close()
    assert g.proc.wait(10) == 0


def run_ok(fn, *a):
    try:
        return fn(*a).status == 200
    except OSError:
        return False


def raw_status(g):
    try:
        return int(raw_refusal(g.port(), token=g.note_token(g.token()))[0].split(" ")[1])
    except (OSError, IndexError, ValueError):
        return None


# ------------------------------------------------------------------ protocol violations lws handles
@pytest.mark.parametrize("case", ["ping-126-bytes", "ping-64-bit-length", "length-top-bit"])
def test_oversized_control_frame_and_bad_length_close_1002(g, case):
    """lws 4.1 drops these without a close frame; the gateway has it send 1002 (and the
    strict end: a FIN after the client's close)."""
    ws = raw_client(g, sub=uid("ctl"))
    if case == "ping-126-bytes":
        ws.send_frame(wsclient.OP_PING, b"p" * 126)
    elif case == "ping-64-bit-length":
        ws.send_raw(frame_header(wsclient.OP_PING, 70000) + b"p" * 64)
    else:
        ws.send_raw(b"\x81\xff\x80" + b"\x00" * 7 + b"\x01\x02\x03\x04" + b"x" * 16)
    c = ws.wait_close(5)
    assert not c.dropped, "%s: dropped without a close frame" % case
    assert c.code == 1002, "%s: expected close 1002, got %r" % (case, c)
    ws.sock.close()


# ------------------------------------------------------------------ TLS versions and ciphers
# An OpenSSL policy that allows everything (TLS 1.0, SHA-1, security level 0), as a
# host's own openssl.cnf may: the gateway's TLS floor must not depend on it.
LAX_OPENSSL_CNF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
CipherString = DEFAULT:@SECLEVEL=0
MinProtocol = TLSv1
"""


def tls_handshake(port, version=None, ciphers="DEFAULT"):
    """(protocol, cipher) a client that offers only `version` and `ciphers` gets, else None."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(ciphers + ":@SECLEVEL=0")
    if version is not None:
        with warnings.catch_warnings():  # TLSVersion.TLSv1 and TLSv1_1 are deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ctx.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return s.version(), s.cipher()[0]
    except (ssl.SSLError, OSError):
        return None


@pytest.fixture
def lax_openssl_gateway(make_gateway, keys, tmp_path, monkeypatch):
    """A gateway started under LAX_OPENSSL_CNF, with a TLS public and a TLS internal vhost."""
    cnf = tmp_path / "lax-openssl.cnf"
    cnf.write_text(LAX_OPENSSL_CNF)
    monkeypatch.setenv("OPENSSL_CONF", str(cnf))
    internal = gw.internal_vhost(keys)
    internal["tls"] = {"cert": str(keys.cert), "key": str(keys.cert_key)}
    return make_gateway([gw.public_vhost(keys, tls=True), internal])


@pytest.mark.parametrize("vhost", ["public", "internal"])
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_older_than_1_2_refused_whatever_the_openssl_policy(lax_openssl_gateway, vhost,
                                                                version):
    g = lax_openssl_gateway
    got = tls_handshake(g.port(vhost), getattr(ssl.TLSVersion, version))
    assert got is None, "vhost %s accepted %s: %r" % (vhost, version, got)
    assert tls_handshake(g.port(vhost), ssl.TLSVersion.TLSv1_2) is not None
    assert tls_handshake(g.port(vhost))[0] == "TLSv1.3"


@pytest.mark.parametrize("cipher,accepted", [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", True),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", True),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", True),
    ("ECDHE-ECDSA-AES128-SHA", False),
    ("ECDHE-ECDSA-AES256-SHA", False),
    ("ECDHE-ECDSA-AES128-SHA256", False),
    ("ECDHE-ECDSA-AES256-SHA384", False),
])
def test_tls_1_2_offers_only_forward_secret_aead_ciphers(lax_openssl_gateway, cipher, accepted):
    g = lax_openssl_gateway
    got = tls_handshake(g.port(), ssl.TLSVersion.TLSv1_2, cipher)
    assert (got is not None) == accepted, "%s over TLS 1.2: %r" % (cipher, got)


# ------------------------------------------------------------------ log lines a client cannot multiply
UPGRADE = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
REFUSED_REQUESTS = {
    # past handshakes_per_s_per_ip: 429 each
    "429": (UPGRADE.encode(), "handshake refused with 429"),
    # a request lws cannot read: it complains (a warning) for each
    "unreadable": (b"\r\n\r\n", "lws: "),
}


@pytest.mark.parametrize("case", list(REFUSED_REQUESTS))
def test_refused_requests_do_not_write_a_log_line_each(make_gateway, keys, case):
    data, needle = REFUSED_REQUESTS[case]
    g = make_gateway([gw.public_vhost(keys, tls=False, limits={"handshakes_per_s_per_ip": 1})])
    lines = lambda: [ln for ln in g.log_text().splitlines() if needle in ln]  # noqa: E731
    t0 = time.monotonic()
    for _ in range(300):
        with tcp(g.port()) as s:
            s.sendall(data)
            read_head(s)
    took = time.monotonic() - t0
    time.sleep(0.2)
    n = len(lines())
    assert n <= 10 * (int(took) + 2), "%d lines for 300 refused requests in %.1fs" % (n, took)
    time.sleep(1.1)  # what was held back is counted on the next line
    for _ in range(2):  # (the first upgrade of a second is not over the limit)
        with tcp(g.port()) as s:
            s.sendall(data)
            read_head(s)
    assert wait_until(lambda: re.search(r"\b\d{2,} (such|lines)", g.log_text()) is not None, 3), \
        "no count of the lines held back:\n%s" % g.log_tail()
