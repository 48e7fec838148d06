"""Hostile handshakes: slow-loris headers, idle TCP/TLS connections, forged or missing
Origin, non-websocket Upgrade headers (the CVE-2025-11677 path), oversized headers.
The gateway closes or refuses them in time and keeps serving a neighbour connected before."""
import ssl
import threading
import time

import pytest

import gw
from test_adversarial_util import (check_neighbour, closed_within, neighbour, raw_upgrade, read_head,
                                   settle, tcp, upgrade_status)
from test_flow_util import API, FULL_PLUGINS
from wsclient import HandshakeRefused

PLUGINS = dict(FULL_PLUGINS, example={"greeting": "hi"})
HS_TIMEOUT = 2
SLACK = 2.0
ORIGIN = "https://pavilion.network"


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    lim = {"handshake_timeout_s": HS_TIMEOUT}
    g = make_module_gateway([
        gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS, limits=lim),
        gw.public_vhost(keys, "tls", tls=True, plugins=PLUGINS, limits=lim),
        gw.public_vhost(keys, "origin", tls=False, plugins=PLUGINS, limits=lim,
                        websocket={"allowed_origins": [ORIGIN, "https://app.pavilion.network"]}),
        gw.public_vhost(keys, "lax", tls=False, plugins=PLUGINS, limits=lim,
                        websocket={"allowed_origins": [ORIGIN], "allow_missing_origin": True}),
        gw.internal_vhost(keys),
    ])
    yield g
    settle(g)


# ------------------------------------------------------------------ slow loris
def test_slow_loris_headers_closed_within_handshake_timeout(g):
    """"GET /ws HTTP/1.1\\r\\n" then one header byte a second, from several sockets: each is
    closed within handshake_timeout_s (2) + slack; meanwhile a neighbour is served and new
    clients connect."""
    nb = neighbour(g)
    socks = [tcp(g.port(), src="127.0.0.%d" % (10 + i % 5)) for i in range(20)]
    for s in socks:
        s.sendall(b"GET /ws HTTP/1.1\r\n")
    t0 = time.monotonic()
    header = b"X-Slow: " + b"a" * 64
    closed_at = {}
    k = 0
    while len(closed_at) < len(socks) and time.monotonic() - t0 < HS_TIMEOUT + SLACK + 1:
        for i, s in enumerate(socks):
            if i in closed_at:
                continue
            try:
                s.sendall(header[k:k + 1])
            except OSError:
                closed_at[i] = time.monotonic() - t0
                continue
            s.setblocking(False)
            try:
                if not s.recv(4096):
                    closed_at[i] = time.monotonic() - t0
            except BlockingIOError:
                pass
            except OSError:
                closed_at[i] = time.monotonic() - t0
            s.setblocking(True)
        k += 1
        if k == 1:  # during the attack: a new client connects and the neighbour is served
            with g.connect(g.token()) as ws:
                gw.probe(ws)
            check_neighbour(nb, "slow-loris sockets")
        time.sleep(1.0)
    for s in socks:
        s.close()
    assert len(closed_at) == len(socks), "%d of %d slow-loris sockets still open after %.1fs" % (
        len(socks) - len(closed_at), len(socks), time.monotonic() - t0)
    assert max(closed_at.values()) <= HS_TIMEOUT + SLACK, closed_at
    check_neighbour(nb, "slow-loris sockets")
    nb.close()


# The idle and slow sockets below all run at once (one module fixture, one thread each),
# so their timeouts cost the suite one timeout, not one each.
def _tls(sock):
    return ssl._create_unverified_context().wrap_socket(sock, server_hostname="localhost")


def _slow_bytes(s, t0, limit):
    """One header byte a second until the socket is closed; returns seconds or None."""
    for b in b"X-Slow: aaaaaaaaaaaa":
        try:
            s.sendall(bytes([b]))
        except OSError:
            return time.monotonic() - t0
        left = min(1.0, t0 + limit - time.monotonic())
        if left <= 0:
            return None
        if closed_within(s, left) is not None:
            return time.monotonic() - t0
    return None


IDLE = {
    # name: (vhost, how to open, what to send first, slow bytes after)
    "tcp-plain": ("public", lambda s: s, b"", False),
    "tcp-tls-no-clienthello": ("tls", lambda s: s, b"", False),
    "tls-done-no-request": ("tls", _tls, b"", False),
    "plain-headers-no-end": ("public", lambda s: s,
                             b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", False),
    "tls-headers-no-end": ("tls", _tls,
                           b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", False),
    "tls-slow-loris": ("tls", _tls, b"GET /ws HTTP/1.1\r\n", True),
}


@pytest.fixture(scope="module")
def idle(g):
    """Neighbours on both vhosts first, then every IDLE socket at once; each result is the
    seconds until the gateway closed it (None: still open after HS_TIMEOUT + SLACK)."""
    nbs = {"public": neighbour(g), "tls": neighbour(g, vhost="tls")}
    results, threads = {}, []
    limit = HS_TIMEOUT + SLACK

    def watch(name, vhost, wrap, first, slow):
        s = None
        try:
            s = wrap(tcp(g.port(vhost)))
            t0 = time.monotonic()
            if first:
                s.sendall(first)
            results[name] = _slow_bytes(s, t0, limit) if slow else closed_within(s, limit)
        except Exception as e:  # noqa: BLE001
            results[name] = e
        finally:
            if s is not None:
                s.close()

    for name, args in IDLE.items():
        threads.append(threading.Thread(target=watch, args=(name,) + args, daemon=True))
    for t in threads:
        t.start()
    return nbs, results, threads


@pytest.mark.parametrize("name", list(IDLE))
def test_idle_or_slow_handshake_closed_within_handshake_timeout(g, idle, name):
    nbs, results, threads = idle
    for t in threads:
        t.join(HS_TIMEOUT + SLACK + 5)
    took = results.get(name)
    assert not isinstance(took, Exception), took
    assert took is not None and took <= HS_TIMEOUT + SLACK, \
        "%s: still open %.1fs after connecting (handshake_timeout_s %d)" % (name, HS_TIMEOUT + SLACK, HS_TIMEOUT)
    check_neighbour(nbs[IDLE[name][0]], "an idle/slow handshake (%s)" % name)


# ------------------------------------------------------------------ Origin
@pytest.mark.parametrize("origin,status", [
    (ORIGIN, 101),
    ("https://app.pavilion.network", 101),
    ("https://evil.example", 403),
    (None, 403),
    ("", 403),
    ("null", 403),
    ("https://pavilion.network.evil.example", 403),
    ("https://pavilion.network/", 403),
    ("https://pavilion.network:443", 403),
    ("http://pavilion.network", 403),
    ("HTTPS://PAVILION.NETWORK", 403),
    ("https://pavilion.networ", 403),
    ("https://pavilion.network\tx", 403),
], ids=["exact", "second", "forged", "missing", "empty", "null", "suffix", "slash", "port", "http",
        "case", "prefix", "tab"])
def test_origin_check(g, origin, status):
    nb = neighbour(g, vhost="origin", headers={"Origin": ORIGIN})
    h = {"Origin": origin} if origin is not None else {}
    got = upgrade_status(g.port("origin"), token=g.token(vhost="origin"), headers=h)
    assert got == status, "Origin %r: expected HTTP %s, got %s" % (origin, status, got)
    check_neighbour(nb, "an Origin check")
    nb.close()


def test_two_origin_headers_refused(g):
    """A forged Origin next to the allowed one must not pass."""
    nb = neighbour(g, vhost="origin", headers={"Origin": ORIGIN})
    s = tcp(g.port("origin"))
    t = g.token(vhost="origin")
    s.sendall(("GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Origin: https://evil.example\r\nOrigin: %s\r\n\r\n" % (t, ORIGIN)).encode())
    status, _, _ = read_head(s)
    s.close()
    assert status != 101, "two Origin headers (forged + allowed) upgraded"
    check_neighbour(nb, "a doubled Origin")
    nb.close()


@pytest.mark.parametrize("origin,status", [
    (None, 101),
    (ORIGIN, 101),
    ("https://evil.example", 403),
    ("", 403),
    ("null", 403),
], ids=["missing", "exact", "forged", "empty", "null"])
def test_allow_missing_origin_lets_only_a_missing_origin_through(g, origin, status):
    """allow_missing_origin: a client that sends no Origin (an app, a server) upgrades; a
    browser's wrong Origin, or one sent empty, is still refused."""
    h = {"Origin": origin} if origin is not None else {}
    got = upgrade_status(g.port("lax"), token=g.token(vhost="lax"), headers=h)
    assert got == status, "Origin %r: expected HTTP %s, got %s" % (origin, status, got)


def test_without_allow_missing_origin_a_missing_origin_gets_403(g):
    assert upgrade_status(g.port("origin"), token=g.token(vhost="origin")) == 403


def test_allow_missing_origin_still_refuses_two_origin_headers(g):
    s = tcp(g.port("lax"))
    t = g.token(vhost="lax")
    s.sendall(("GET /ws?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Origin: https://evil.example\r\nOrigin: %s\r\n\r\n" % (t, ORIGIN)).encode())
    status, _, _ = read_head(s)
    s.close()
    assert status == 403


# ------------------------------------------------------------------ non-websocket upgrades (CVE-2025-11677)
def upgrade_request(port, upgrade, path="/ws", extra=""):
    """A GET with Connection: Upgrade and the given Upgrade header. Returns (status or None,
    closed-within-3s seconds or None)."""
    s = tcp(port)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: Upgrade%s\r\nUpgrade: %s\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (path, port, ", HTTP2-Settings" if upgrade == "h2c" else "", upgrade,
                  "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n" if upgrade == "h2c" else "") + extra).encode())
    try:
        status, _, _ = read_head(s, 3)
    except TimeoutError:
        status = "timeout"
    took = closed_within(s, 3) if status != "timeout" else None
    s.close()
    return status, took


UPGRADES = ["foo", "h2c", "websocketx", "web socket", "websocket2", "h2"]


@pytest.mark.parametrize("vhost", ["public", "internal"])
@pytest.mark.parametrize("upgrade", UPGRADES, ids=["foo", "h2c", "websocketx", "space",
                                                   "websocket2", "h2"])
def test_non_websocket_upgrade_closed_no_101(g, vhost, upgrade):
    nb = neighbour(g)
    path = "/ws" if vhost == "public" else "/v1/publish"
    for _ in range(3):  # a few times: a use-after-free would show in the ASan build's log
        status, took = upgrade_request(g.port(vhost), upgrade, path)
        assert status != 101, "Upgrade: %r on %s answered 101" % (upgrade, vhost)
        assert status != "timeout", "Upgrade: %r on %s: no answer and not closed" % (upgrade, vhost)
        assert took is not None, "Upgrade: %r on %s: connection left open (HTTP %s)" % (upgrade, vhost, status)
    check_neighbour(nb, "Upgrade: %s" % upgrade)
    with g.connect(g.token()) as ws:
        gw.probe(ws)
    r = API(g).get("/healthz")
    assert r.status == 200, r
    nb.close()


def test_many_non_websocket_upgrades_in_parallel(g):
    """50 concurrent Upgrade: foo / h2c on both vhosts, while a neighbour works."""
    nb = neighbour(g)
    errors = []

    def one(i):
        try:
            port = g.port("public" if i % 2 else "internal")
            status, took = upgrade_request(port, "foo" if i % 3 else "h2c")
            if status == 101 or took is None:
                errors.append((i, status, took))
        except Exception as e:  # noqa: BLE001
            errors.append((i, repr(e)))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in ts:
        t.start()
    check_neighbour(nb, "parallel bad upgrades")
    for t in ts:
        t.join(15)
    assert not errors, errors
    check_neighbour(nb, "parallel bad upgrades")
    nb.close()


def test_websocket_upgrade_case_insensitive_still_works(g):
    """Control for the above: the token is compared case-insensitively (RFC 6455 4.2.1)."""
    with raw_upgrade(g.port(), token=g.token(), headers={"Upgrade": "WebSocket"}) as ws:
        gw.probe(ws)


# ------------------------------------------------------------------ oversized headers
def test_oversized_header_block_refused_neighbour_fine(g):
    """More header data than the 4096-byte header pool entry: refused, socket closed."""
    nb = neighbour(g)
    s = tcp(g.port())
    try:
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Fill-%d: %s\r\n" % (i, b"v" * 200) for i in range(40)) + b"\r\n")
    except OSError:
        pass
    try:
        status, _, _ = read_head(s, 3)
    except TimeoutError:
        status = "timeout"
    assert status != 101 and status != "timeout", status
    assert closed_within(s, 3) is not None
    s.close()
    check_neighbour(nb, "an oversized header block")
    nb.close()


def test_long_token_in_query_refused_cleanly(g):
    """A 100 KB token: no upgrade or an auth refusal, never a crash."""
    nb = neighbour(g)
    try:
        with raw_upgrade(g.port(), token="a" * 100000) as ws:
            gw.expect_auth_rejected(ws)
    except (HandshakeRefused, OSError):
        pass
    check_neighbour(nb, "a 100 KB token")
    nb.close()
