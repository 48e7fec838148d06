"""Helpers shared by the test_hardening_* modules (transport hardening). No tests here.

Two clients look at every close the gateway starts:
- the repo's raw client (wsclient.WS), here as `LockedWS` so that a sender thread and the
  reader's close reply never interleave, plus `tcp_end()`: after the closing handshake the
  server must end TCP with a FIN, not a reset (a reset destroys what the client has not read);
- the stock Python `websockets` client (Debian's python3-websockets 10.4), which reports a
  close frame lost to a reset as 1006 and an `HTTP/1.0` answer to its upgrade as "did not
  receive a valid HTTP response".
"""
import asyncio
import json
import socket
import ssl
import threading
import time

import websockets

import wsclient
from test_adversarial_util import raw_upgrade
from wsclient import WS

HEARTBEAT_ACK = json.dumps({"type": "heartbeat_ack"})


# ------------------------------------------------------------------ the raw client
class LockedWS(WS):
    """A wsclient.WS whose frames are written under one lock (sender thread + reader)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.lock = threading.Lock()

    def send_raw(self, data):
        with self.lock:
            self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        self.send_raw(wsclient.frame(opcode, payload, fin, mask, rsv))

    def send_unless_closed(self, data):
        """Send one frame unless our close has gone (under the lock: nothing follows it)."""
        with self.lock:
            if self.closed:
                return False
            self.sock.sendall(data)
            return True


def raw_client(g, vhost="public", token=None, rcvbuf=None, **claims):
    t = g.note_token(token or g.token(vhost=vhost, **claims))
    return raw_upgrade(g.port(vhost), token=t, rcvbuf=rcvbuf, cls=LockedWS, tls=g.client_tls(vhost))


# How a client "keeps sending": BATCH messages every INTERVAL s (~10,000 a second), so that
# there is nearly always something unread on the gateway's side when it acts on a close.
BATCH, INTERVAL = 20, 0.002


class Sender(threading.Thread):
    """Sends `first` (frames, bytes) at once, then BATCH x `msg` every `interval` s, until
    the client's close has gone or stop() — a client that keeps sending while a close is on
    its way."""

    def __init__(self, ws, msg=HEARTBEAT_ACK, interval=INTERVAL, first=()):
        super().__init__(daemon=True)
        self.ws, self.interval, self.first = ws, interval, list(first)
        self.frame = wsclient.frame(wsclient.OP_TEXT, msg) * BATCH
        self.halt = threading.Event()
        self.sent = 0
        self.error = None

    def run(self):
        try:
            for f in self.first:
                if not self.ws.send_unless_closed(f):
                    return
                self.sent += 1
            while not self.halt.is_set():
                if not self.ws.send_unless_closed(self.frame):
                    return
                self.sent += BATCH
                time.sleep(self.interval)
        except OSError as e:  # the gateway went away under us
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(5)


def tcp_end(ws, timeout=4.0, settle=0.2):
    """After the closing handshake: how the server ended TCP. 'fin' (EOF and nothing after
    it), 'reset' (a reset, also one that follows the FIN: lws' shutdown(SHUT_WR) then
    close() with unread data sends both), or 'open' (still open after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "open"
        ws.sock.settimeout(left)
        try:
            data = ws.sock.recv(65536)
        except socket.timeout:
            return "open"
        except ssl.SSLWantReadError:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return "reset"
        if not data:
            break
    time.sleep(settle)  # a reset right behind the FIN
    err = ws.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    state = ws.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return "reset" if err or state == TCP_CLOSE else "fin"


TCP_CLOSE = 7  # tcpi_state after a reset (a FIN alone leaves CLOSE_WAIT)


def raw_close_seen(ws, sender, code, timeout=10.0):
    """Read until the close while `sender` runs; assert the close frame carries `code` and
    the server then ends TCP with a FIN. Returns the JSON messages read before the close."""
    try:
        closed = ws.wait_close(timeout)
    finally:
        sender.stop()
    msgs = [json.loads(d) for op, d in closed.seen if op == wsclient.OP_TEXT]
    assert not closed.dropped, \
        "raw client: connection dropped without a close frame (expected %d; %d frames sent, " \
        "sender error %r)" % (code, sender.sent, sender.error)
    assert closed.code == code, "raw client: expected close %d, got %r" % (code, closed)
    end = tcp_end(ws)
    ws.sock.close()
    assert end == "fin", "raw client: after close %d the server ended TCP with %s, not a FIN" % (
        code, end)
    return msgs


# ------------------------------------------------------------------ python websockets
def ws_uri(g, vhost="public", token=None, path="/ws"):
    tls = g.client_tls(vhost)
    uri = "%s://127.0.0.1:%d%s" % ("wss" if tls else "ws", g.port(vhost), path)
    if token is not None:
        g.note_token(token)
        uri += "?token=" + token
    return uri, (ssl._create_unverified_context() if tls else None)


def ws_connect(g, vhost="public", token=None, path="/ws", **kw):
    """websockets.connect() to a vhost of g (no keepalive pings; certificates unchecked)."""
    uri, ctx = ws_uri(g, vhost, token, path)
    kw.setdefault("ping_interval", None)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("open_timeout", 5)
    if ctx is not None:
        kw["ssl"] = ctx
        if "sock" in kw:
            kw["server_hostname"] = "localhost"
    return websockets.connect(uri, **kw)


async def ws_keep_sending(ws, msg=HEARTBEAT_ACK, interval=INTERVAL, first=()):
    """Send `first`, then BATCH x `msg` every `interval` s, until the connection closes."""
    try:
        for m in first:
            await ws.send(m)
        while True:
            for _ in range(BATCH):
                await ws.send(msg)
            await asyncio.sleep(interval)
    except websockets.ConnectionClosed:
        pass


async def ws_keep_sending_until_close(ws, msg=HEARTBEAT_ACK, interval=INTERVAL, first=(),
                                      timeout=10.0):
    """ws_keep_sending() while reading every message, until the connection closes.
    Returns (ConnectionClosed, JSON messages read)."""
    task = asyncio.create_task(ws_keep_sending(ws, msg, interval, first))
    msgs = []
    try:
        while True:
            m = await asyncio.wait_for(ws.recv(), timeout)
            if isinstance(m, str):
                msgs.append(json.loads(m))
    except websockets.ConnectionClosed as e:
        closed = e
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    await asyncio.wait_for(ws.wait_closed(), 10)
    return closed, msgs


def ws_check_close(ws, closed, code):
    """What the strict client saw: a close frame with `code`, and its closing handshake done."""
    assert closed.rcvd is not None, \
        "websockets: no close frame received (expected %d): %s; close_code %r" % (
            code, closed, ws.close_code)
    assert closed.rcvd.code == code, "websockets: expected close %d, got %s" % (code, closed)
    assert ws.close_code == code, "websockets: close_code %r, expected %d" % (ws.close_code, code)


def run(coro):
    return asyncio.run(coro)
