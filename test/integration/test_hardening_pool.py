"""One unauthenticated host must not freeze every vhost (lws keeps one pool of header buffers
for the whole process: 256 before, 1024 now, of which public vhosts may hold 960).

- 256 sockets (and 1100, more than the public share of the pool) from several addresses in
  127/8 that send `POST / HTTP/1.1` with `Content-Length: 100000` and then one byte every
  3 s: the internal vhost's /healthz and new ws/wss handshakes still succeed within a few
  seconds (a public vhost answers such a request 404 and closes it, body unread).
- 1100 idle sockets on a public vhost (each holds a header buffer from accept): /healthz on
  the internal vhost still answers (public connections leave a reserve of the pool).
- Every connection counts against max_connections_per_ip from accept, not only upgrades.
- Both refusals at accept (the pool's reserve, far past max_connections_per_ip) hold on a
  "reuse_port" vhost too, whose connections the gateway accepts itself and hands to lws.
- A request that trickles is closed by its deadline (handshake_timeout_s from accept), even
  when it spends most of it before and during the TLS handshake.
"""
import asyncio
import http.client
import ssl
import threading
import time

import pytest
import websockets

import gw
from test_adversarial_util import (closed_within, raw_upgrade, read_head, tcp, upgrade_status,
                                   wait_until)
from test_flow_util import FULL_PLUGINS, uid
from test_hardening_util import run, ws_connect

PLUGINS = dict(FULL_PLUGINS, example={"greeting": "hi"})
ANSWER_WITHIN = 3.0  # "a few seconds"
SOURCES = ["127.0.0.%d" % i for i in range(2, 12)]
PUBLIC_SHARE = 1024 - 64  # header buffers public connections may hold (src/server.c)


def healthz(g, timeout=ANSWER_WITHIN):
    conn = http.client.HTTPConnection("127.0.0.1", g.port("internal"), timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def wss_handshake_works(g, vhost):
    """A new handshake with Python websockets (open_timeout ANSWER_WITHIN), then an echo."""
    async def attempt():
        async with ws_connect(g, vhost, g.token(vhost=vhost, sub=uid("new")),
                              open_timeout=ANSWER_WITHIN) as ws:
            await ws.send('{"type":"echo","id":"e","payload":{"n":1}}')
            while True:
                m = await ws.recv()
                if '"echo"' in m:
                    return True
    return run(attempt())


class Trickle(threading.Thread):
    """One byte every `every` s on each socket still open."""

    def __init__(self, socks, every=3.0):
        super().__init__(daemon=True)
        self.socks, self.every, self.halt = list(socks), every, threading.Event()

    def run(self):
        while not self.halt.wait(self.every):
            for s in list(self.socks):
                try:
                    s.send(b"x")
                except OSError:
                    self.socks.remove(s)

    def stop(self):
        self.halt.set()
        self.join(5)


def open_many(port, n, first=b"", sources=SOURCES):
    socks = []
    for i in range(n):
        try:
            s = tcp(port, src=sources[i % len(sources)])
            if first:
                s.sendall(first)
        except OSError:
            continue  # closed at accept (the pool reserve): part of the test
        socks.append(s)
    return socks


@pytest.mark.parametrize("n", [256, PUBLIC_SHARE + 140])
def test_trickled_post_bodies_do_not_freeze_other_vhosts(make_gateway, keys, n):
    g = make_gateway([gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS),
                      gw.public_vhost(keys, "tls", tls=True, plugins=PLUGINS),
                      gw.internal_vhost(keys)])
    post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"
    socks = open_many(g.port("public"), n, post)
    trickle = Trickle(socks)
    trickle.start()
    try:
        time.sleep(0.5)  # the gateway has seen every request
        t0 = time.monotonic()
        try:
            status, body = healthz(g)
        except (OSError, http.client.HTTPException) as e:
            pytest.fail("/healthz on the internal vhost did not answer within %.0fs while %d "
                        "trickled POST bodies were open: %r" % (ANSWER_WITHIN, n, e))
        assert status == 200, (status, body)
        try:
            assert wss_handshake_works(g, "tls")
            assert wss_handshake_works(g, "public")
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
            pytest.fail("no new handshake within %.0fs during the attack: %r" % (ANSWER_WITHIN, e))
        assert time.monotonic() - t0 < 3 * ANSWER_WITHIN
        # the attackers were answered 404 and closed, bodies unread
        answered = 0
        for s in socks[:16]:
            try:
                status, hdrs, _ = read_head(s, 2)
            except (TimeoutError, OSError):
                status = None
            if status == 404:
                answered += 1
                assert closed_within(s, 2) is not None, "a refused POST left open"
        assert answered == 16, "%d of 16 POSTs answered 404" % answered
    finally:
        trickle.stop()
        for s in socks:
            s.close()


def is_closed(s):
    """Has the gateway closed s (EOF or reset)? Without waiting."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


@pytest.mark.parametrize("reuse_port", [False, True])
def test_idle_public_sockets_leave_the_internal_vhost_a_share_of_the_pool(make_gateway, keys,
                                                                          reuse_port):
    """More idle sockets on a public vhost than its share of the pool (plain ws: lws gives each
    a header buffer at accept): the pool keeps a reserve, /healthz answers; the surplus is
    closed at accept.  A "reuse_port" vhost's connections reach lws without its accept-time
    filter: they were all kept, and took the whole pool."""
    g = make_gateway([gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS,
                                      reuse_port=reuse_port),
                      gw.internal_vhost(keys)])
    n = PUBLIC_SHARE + 140
    socks = open_many(g.port("public"), n)
    try:
        time.sleep(0.5)
        try:
            status, _ = healthz(g)
        except (OSError, http.client.HTTPException) as e:
            pytest.fail("/healthz did not answer within %.0fs while %d idle sockets were open "
                        "on the public vhost: %r" % (ANSWER_WITHIN, n, e))
        assert status == 200
        closed = sum(1 for s in socks if is_closed(s))
        assert closed >= n - PUBLIC_SHARE, "only %d idle sockets closed at accept" % closed
        assert "connection closed at accept (header pool reserve)" in g.log_text()
    finally:
        for s in socks:
            s.close()
    # once they are gone, public handshakes work again
    assert wait_until(lambda: upgrade_status(g.port(), token=g.token()) == 101, 5)


@pytest.mark.parametrize("reuse_port", [False, True])
def test_every_connection_counts_against_the_per_ip_limit(make_gateway, keys, reuse_port):
    """max_connections_per_ip 3: three idle sockets from one address, then that address' upgrade
    gets 429 and another address' 101; far past the limit sockets are closed at accept; when
    the idle ones go, the address may upgrade again.  A "reuse_port" vhost's connections were
    never closed at accept."""
    g = make_gateway([gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS,
                                      reuse_port=reuse_port,
                                      limits={"max_connections_per_ip": 3,
                                              "handshakes_per_s_per_ip": 1000}),
                      gw.internal_vhost(keys)])
    port = g.port()
    idle = [tcp(port, src="127.0.0.40") for _ in range(3)]
    try:
        time.sleep(0.2)
        assert upgrade_status(port, token=g.token(), src="127.0.0.40") == 429
        assert upgrade_status(port, token=g.token(), src="127.0.0.41") == 101
        # past the limit by 16 more: the next is closed at accept, without a request
        idle += [tcp(port, src="127.0.0.40") for _ in range(16)]
        time.sleep(0.2)
        extra = tcp(port, src="127.0.0.40")
        took = closed_within(extra, 2)
        extra.close()
        assert took is not None, "a connection 17 past max_connections_per_ip was left open"
        assert "peer=127.0.0.40: connection closed at accept (per-IP limit)" in g.log_text()
    finally:
        for s in idle:
            s.close()
    assert wait_until(lambda: upgrade_status(port, token=g.token(), src="127.0.0.40") == 101, 3)


def test_public_post_answered_and_closed_body_unread(make_gateway, keys):
    """A POST whose body trickles (lws would drain it with a timeout every byte renews):
    answered 404 and closed at once."""
    g = make_gateway([gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS),
                      gw.internal_vhost(keys)])
    s = tcp(g.port())
    s.sendall(b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
    status, hdrs, _ = read_head(s, 3)
    assert status == 404, (status, hdrs)
    took = None
    for _ in range(4):  # keep trickling: the socket must be closed regardless
        try:
            s.send(b"x")
        except OSError:
            took = 0
            break
        took = closed_within(s, 1)
        if took is not None:
            break
    s.close()
    assert took is not None, "the refused POST was kept open while its body trickled"
    assert hdrs.get("connection") == "close", hdrs


HS_TIMEOUT = 4


def test_trickling_request_closed_by_its_deadline_from_accept(make_gateway, keys):
    """handshake_timeout_s 6 on a TLS vhost: 4 s idle after connecting, then the TLS
    handshake, then one header byte every 0.5 s.  The gateway's deadline from accept closes
    it, on its first one-second tick at or after 6 s, and says so (a debug line).  lws alone
    would give the TLS accept, then the request's headers 6 s each, the headers' from the
    end of the handshake: 10 s or more after connecting, whatever the load (it can only make
    that later), so the close must come before then."""
    hs, idle = 6, 4
    g = make_gateway([gw.public_vhost(keys, "tls", tls=True, plugins=PLUGINS,
                                      limits={"handshake_timeout_s": hs}),
                      gw.internal_vhost(keys)], log={"level": "debug", "format": "text"})
    t0 = time.monotonic()
    raw = tcp(g.port("tls"))
    time.sleep(idle)
    closed_at = None
    try:
        s = ssl._create_unverified_context().wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"GET /ws HTTP/1.1\r\n")
        for b in b"X-Slow: " + b"a" * 40:
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed_at = time.monotonic() - t0
                break
            if closed_within(s, 0.5) is not None:
                closed_at = time.monotonic() - t0
                break
    except (OSError, ssl.SSLError):
        closed_at = time.monotonic() - t0  # cut during the TLS handshake
    raw.close()
    assert closed_at is not None, "a trickling request was still open %d s after " \
        "connecting (handshake_timeout_s %d)" % (idle + 20, hs)
    assert "request not upgraded or answered within the handshake timeout: closing" in \
        g.log_text(), "closed %.1f s after connecting, not by the deadline from accept" % \
        closed_at
    assert closed_at < idle + hs, "closed %.1f s after connecting: no sooner than lws' " \
        "own header timeout" % closed_at


def test_a_client_within_the_deadline_is_served(make_gateway, keys):
    """Control: the deadline from accept leaves a normal (slowish) client alone."""
    g = make_gateway([gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS,
                                      limits={"handshake_timeout_s": HS_TIMEOUT}),
                      gw.internal_vhost(keys)])
    s = tcp(g.port())
    time.sleep(1)
    s.close()
    with raw_upgrade(g.port(), token=g.note_token(g.token())) as ws:
        ws.send_json({"type": "echo", "payload": {}})
        assert ws.recv_json(3)["type"] == "echo"
        time.sleep(HS_TIMEOUT + 1.5)  # past the handshake deadline: still served
        ws.send_json({"type": "echo", "payload": {}})
        assert ws.recv_json(3)["type"] == "echo"
