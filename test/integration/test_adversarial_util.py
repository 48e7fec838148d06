"""Helpers shared by the test_adversarial_* modules (hostile clients). No tests here.

- `neighbour()`: a well-behaved connection made before an attack; `check_neighbour()` proves it
  is still served afterwards (a message with an id gets its ack).
- `raw_upgrade()`: an upgrade over a socket we build ourselves (source address, SO_RCVBUF,
  extra headers, permessage-deflate), returning a wsclient.WS.
- `DeflateWS`: permessage-deflate framing (RSV1, raw deflate, 00 00 ff ff stripped).
- `rss_kb()`, `fd_count()`: the gateway process' resident memory and open files.
"""
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import time
import zlib

import wsclient
from gw import wait_until  # noqa: F401  (re-exported)
from test_flow_util import ALL, API, Client, metric, uid  # noqa: F401  (re-exported)
from wsclient import Closed, HandshakeRefused, WS

SANITIZED = os.environ.get("PAVILION_BUILD", "").rstrip("/").endswith("asan")
_made = []  # clients made here; settle() closes what a failed test left open


# ------------------------------------------------------------------ neighbours
def neighbour(g, vhost="public", headers=None, **claims):
    """A connection of a fresh user, made before the attack, proven served now."""
    if headers:
        c = client_on(g, sub=uid("nb"), vhost=vhost, headers=headers, **claims)
    else:
        c = Client(g, sub=uid("nb"), vhost=vhost, **claims)
        _made.append(c)
    c.sync()
    return c


def check_neighbour(c, what="the attack"):
    """The neighbour is still served: a message with an id gets its ack."""
    try:
        c.sync()
    except (Closed, TimeoutError, AssertionError, OSError) as e:
        raise AssertionError("neighbour %s not served after %s: %r" % (c.sub, what, e))


# ------------------------------------------------------------------ raw sockets
def tcp(port, src="127.0.0.1", rcvbuf=None, timeout=5.0, host="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((host, port))
    return s


def read_head(sock, timeout=5.0):
    """Read an HTTP response head. Returns (status or None, headers, rest) — None when the
    server closed the socket without a response."""
    data = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no HTTP response head; got %r" % data[:200])
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            raise TimeoutError("no HTTP response head; got %r" % data[:200])
        except (ConnectionError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            if data:
                break
            return None, {}, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, {}, data
    h = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        h[k.strip().lower()] = v.strip()
    return status, h, rest


def raw_upgrade(port, path="/ws", token=None, headers=None, src="127.0.0.1", rcvbuf=None,
                tls=False, timeout=5.0, cls=WS, sock=None):
    """An RFC 6455 upgrade on our own socket (sock: one already connected). Returns a `cls`
    (WS) on 101, raises HandshakeRefused(status) otherwise (status None: the socket was
    closed without answer)."""
    s = sock or tcp(port, src=src, rcvbuf=rcvbuf, timeout=timeout)
    if tls:
        s = ssl._create_unverified_context().wrap_socket(s, server_hostname="localhost")
    if token is not None:
        path += ("&" if "?" in path else "?") + "token=" + token
    key = base64.b64encode(os.urandom(16)).decode()
    h = {"Host": "127.0.0.1:%d" % port, "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
    h.update(headers or {})
    req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None)
    s.sendall((req + "\r\n").encode())
    try:
        status, rh, rest = read_head(s, timeout)
    except TimeoutError:
        s.close()
        raise
    if status != 101:
        s.close()
        raise HandshakeRefused(status, rh, rest)
    accept = base64.b64encode(hashlib.sha1(key.encode() + wsclient.GUID).digest()).decode()
    if rh.get("sec-websocket-accept") != accept:
        s.close()
        raise AssertionError("bad Sec-WebSocket-Accept: %r" % rh.get("sec-websocket-accept"))
    s.settimeout(timeout)
    return cls(s, status, rh, rest)


def upgrade_status(port, **kw):
    """The HTTP status of an upgrade attempt (101 closes the connection again)."""
    try:
        ws = raw_upgrade(port, **kw)
    except HandshakeRefused as e:
        return e.status
    ws.close()
    return 101


def closed_within(sock, seconds):
    """Wait until the peer closes `sock` (EOF or reset); return the time it took, or None."""
    t0 = time.monotonic()
    deadline = t0 + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            return None
        except ssl.SSLWantReadError:
            continue
        except (ConnectionError, ssl.SSLError, OSError):
            return time.monotonic() - t0
    return None


def cpu_seconds(g):
    with open("/proc/%d/stat" % g.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_request(path, body, key=None):
    head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" % path
    if key:
        head += "Authorization: Bearer %s\r\n" % key
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def read_to_close(s, seconds):
    """Everything the peer sends until it closes (EOF or reset); None if still open."""
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return None
        except OSError:
            return got
        if not chunk:
            return got
        got += chunk
    return None


def pipeline_a_body(g, api, second):
    """GET /healthz (or a publish) and behind it, in the same write, a request with a body
    (api.c body_done()): the first is answered, the second neither carried out nor answered,
    the connection closed, and the loop does not spin. second: "post_healthz", "publish"
    (two publishes behind a publish: neither is carried out) or "delete_with_body" (of
    another user's connections)."""
    nb = neighbour(g, **ALL)
    victim = neighbour(g)
    key = g.keys.api_key
    chan = "zone:" + uid("piped")
    nb.subscribe(chan)  # the channel's offset then counts every publication
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    if second == "post_healthz":
        data, expect = first + post_request("/healthz", b"{}"), 200
    elif second == "publish":
        body = json.dumps({"channel": chan, "type": "t", "payload": {}}).encode()
        data, expect = post_request("/v1/publish", body, key) * 3, 202
    else:
        data, expect = first + ("DELETE /v1/users/%s/connections HTTP/1.1\r\nHost: x\r\n"
                                "Authorization: Bearer %s\r\nContent-Length: 2\r\n\r\n{}"
                                % (victim.sub, key)).encode(), 200
    s = tcp(g.port("internal"))
    try:
        s.sendall(data)
        got = read_to_close(s, 5)
    finally:
        s.close()
    assert got is not None, "the connection was left open"
    assert got.count(b"HTTP/1.1 ") == 1 and got.startswith(b"HTTP/1.1 %d" % expect), got[:300]
    cpu = cpu_seconds(g)
    time.sleep(1.0)
    assert cpu_seconds(g) - cpu < 0.5, "the gateway spins after a pipelined body"
    if second == "publish":
        offset = json.loads(got.partition(b"\r\n\r\n")[2])["offset"]
        r = api.publish(chan, "t", {})
        assert r.json["offset"] == offset + 1, "the pipelined publish was carried out: %r" % r
    check_neighbour(victim, "a pipelined DELETE of another user's connections")
    check_neighbour(nb, "a pipelined body")


def frame_header(opcode, length, fin=True, mask_key=b"\x01\x02\x03\x04", rsv=0):
    """A client frame header claiming `length` payload bytes (any 64-bit value)."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    if length < 126:
        hdr = struct.pack("!BB", b0, 0x80 | length)
    elif length < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, length)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, length)
    return hdr + mask_key


def expect_close(ws, code, timeout=5.0):
    """Read until the close; assert its code. Returns the Closed (with .seen)."""
    c = ws.wait_close(timeout)
    assert c.code == code, "expected close %d, got %r (last messages %r)" % (
        code, c, [m[1][:120] for m in getattr(c, "seen", [])[-3:]])
    return c


def json_messages(closed):
    """The JSON messages read before a close (from Closed.seen)."""
    import json
    out = []
    for op, data in getattr(closed, "seen", []):
        if op == wsclient.OP_TEXT:
            try:
                out.append(json.loads(data))
            except ValueError:
                pass
    return out


# ------------------------------------------------------------------ permessage-deflate
PMD_OFFER = "permessage-deflate; client_no_context_takeover; client_max_window_bits"


def deflate(data):
    """One message, raw deflate, sync-flushed, trailing 00 00 ff ff removed (RFC 7692 7.2.1)."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class DeflateWS(WS):
    """A WS that negotiated permessage-deflate: sends compressed text (RSV1), inflates
    compressed messages it receives."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.inflater = zlib.decompressobj(-15)

    def send_deflated(self, data, fragments=1):
        if isinstance(data, str):
            data = data.encode()
        z = deflate(data)
        step = max(1, -(-len(z) // fragments))
        chunks = [z[i:i + step] for i in range(0, len(z), step)] or [b""]
        for i, c in enumerate(chunks):
            self.send_frame(wsclient.OP_TEXT if i == 0 else wsclient.OP_CONT, c,
                            fin=(i == len(chunks) - 1), rsv=4 if i == 0 else 0)

    def recv_message(self, timeout=5.0):
        """(opcode, bytes) of the next data message, inflated when RSV1 was set."""
        deadline = time.monotonic() + timeout
        parts, op, compressed = [], None, False
        while True:
            b0, b1 = self._read(2, deadline)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            key = self._read(4, deadline) if b1 & 0x80 else None
            payload = self._read(n, deadline)
            if key:
                payload = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == wsclient.OP_CLOSE:
                self.closed = True
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(self.close_code, payload[2:].decode("utf-8", "replace"))
            if opcode == wsclient.OP_PING:
                self.send_frame(wsclient.OP_PONG, payload)
                continue
            if opcode == wsclient.OP_PONG:
                continue
            if opcode != wsclient.OP_CONT:
                op, compressed = opcode, bool(b0 & 0x40)
            parts.append(payload)
            if b0 & 0x80:
                data = b"".join(parts)
                if compressed:
                    data = self.inflater.decompress(data + b"\x00\x00\xff\xff")
                return op, data


# ------------------------------------------------------------------ the process
def proc_status(g, field):
    with open("/proc/%d/status" % g.proc.pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_kb(g):
    return proc_status(g, "VmRSS")


def fd_count(g):
    return len(os.listdir("/proc/%d/fd" % g.proc.pid))


def closes(api, code):
    return metric(api.metrics(), "pavilion_closes_total", code=str(code))


def client_on(g, sub=None, vhost="public", src="127.0.0.1", rcvbuf=None, token=None, headers=None,
              **claims):
    """A test_flow_util.Client whose socket we built: source address, SO_RCVBUF."""
    c = Client.__new__(Client)
    c.g, c.vhost, c.inbox, c.n = g, vhost, [], 0
    c.sub = sub or uid()
    t = token or g.token(vhost=vhost, sub=c.sub, **claims)
    g.note_token(t)
    c.ws = raw_upgrade(g.port(vhost), token=t, src=src, rcvbuf=rcvbuf, headers=headers,
                       tls=g.client_tls(vhost))
    _made.append(c)
    return c


def connections(g, vhost="internal"):
    """The gateway's open-connections gauge."""
    return metric(API(g, vhost).metrics(), "pavilion_connections")


def settle(g, vhost="internal", timeout=3.0):
    """Before the gateway is stopped: wait until every client close has been processed, so the
    SIGTERM finds no connection (a stop with open connections takes up to 10 s, see report)."""
    while _made:
        _made.pop().close()
    try:
        wait_until(lambda: connections(g, vhost) == 0, timeout)
    except (OSError, KeyError):
        pass


class Publisher:
    """POST /v1/publish over one keep-alive HTTP connection (faster than one per call)."""

    def __init__(self, g, vhost="internal"):
        import http.client
        self._mk = lambda: http.client.HTTPConnection("127.0.0.1", g.port(vhost), timeout=5)
        self.key = g.keys.api_key
        self.conn = self._mk()

    def publish(self, channel, type, payload):
        import json
        body = json.dumps({"channel": channel, "type": type, "payload": payload}).encode()
        h = {"Authorization": "Bearer " + self.key, "Content-Type": "application/json"}
        for attempt in (0, 1):
            try:
                self.conn.request("POST", "/v1/publish", body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                assert r.status == 202, (r.status, data[:300])
                return json.loads(data)
            except (OSError, __import__("http.client").client.HTTPException):
                self.conn.close()
                self.conn = self._mk()
                if attempt:
                    raise

    def close(self):
        self.conn.close()
