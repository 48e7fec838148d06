"""Minimal RFC 6455 WebSocket client over raw sockets, for integration tests.

No websocket library: the point is to control every byte sent to the gateway.
"""
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeRefused(Exception):
    """The server answered the upgrade with something other than 101."""

    def __init__(self, status, headers, body):
        super().__init__("handshake refused: HTTP %s" % status)
        self.status, self.headers, self.body = status, headers, body


class Closed(Exception):
    """The connection is closed: code/reason from the close frame, or None if dropped."""

    def __init__(self, code=None, reason="", dropped=False):
        super().__init__("closed code=%r reason=%r dropped=%r" % (code, reason, dropped))
        self.code, self.reason, self.dropped = code, reason, dropped


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    """Build one frame (client frames are masked)."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


class WS:
    def __init__(self, sock, status, headers, leftover=b""):
        self.sock, self.status, self.headers = sock, status, headers
        self.buf = leftover
        self.close_code = None
        self.close_reason = ""
        self.closed = False

    # ---------------------------------------------------------------- connect
    @classmethod
    def connect(cls, host, port, path="/ws", headers=None, tls=True,
                server_hostname=None, timeout=5.0, cafile=None):
        """Open a WebSocket. Raises HandshakeRefused (with .status) when not 101."""
        raw = socket.create_connection((host, port), timeout=timeout)
        sock = raw
        if tls:
            ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
            if cafile:
                ctx.check_hostname = server_hostname is not None
            sock = ctx.wrap_socket(raw, server_hostname=server_hostname or host)
        sock.settimeout(timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Host": "%s:%d" % (server_hostname or host, port), "Upgrade": "websocket",
                "Connection": "Upgrade", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        hdrs.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
        sock.sendall(req.encode())
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            if time.monotonic() > deadline or len(data) > 65536:
                sock.close()
                raise TimeoutError("no HTTP response head")
            chunk = sock.recv(4096)
            if not chunk:
                sock.close()
                raise HandshakeRefused(None, {}, data)
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        rh = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            rh[k.strip().lower()] = v.strip()
        if status != 101:
            body = rest
            try:  # read what body there is, briefly
                sock.settimeout(0.5)
                n = int(rh.get("content-length", "0") or 0)
                while len(body) < n:
                    c = sock.recv(4096)
                    if not c:
                        break
                    body += c
            except (OSError, ValueError):
                pass
            sock.close()
            raise HandshakeRefused(status, rh, body)
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if rh.get("sec-websocket-accept") != accept:
            sock.close()
            raise AssertionError("bad Sec-WebSocket-Accept: %r" % rh.get("sec-websocket-accept"))
        return cls(sock, status, rh, rest)

    # ---------------------------------------------------------------- send
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        self.sock.sendall(frame(opcode, payload, fin, mask, rsv))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def send_binary(self, data):
        self.send_frame(OP_BINARY, data)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_fragmented(self, data, parts, opcode=OP_TEXT):
        """Send data as `parts` fragments (first has opcode, rest continuation)."""
        if isinstance(data, str):
            data = data.encode()
        step = max(1, -(-len(data) // parts))
        chunks = [data[i:i + step] for i in range(0, len(data), step)] or [b""]
        for i, c in enumerate(chunks):
            self.send_frame(opcode if i == 0 else OP_CONT, c, fin=(i == len(chunks) - 1))

    def send_close(self, code=1000, reason=""):
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())

    # ---------------------------------------------------------------- receive
    def _read(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("recv timed out")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("recv timed out")
            except (ConnectionError, ssl.SSLError, OSError):
                chunk = b""
            if not chunk:
                self.closed = True
                raise Closed(dropped=True)
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=5.0):
        """Return (fin, opcode, payload) of the next frame."""
        deadline = time.monotonic() + timeout
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
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv(self, timeout=5.0):
        """Next complete data message as (opcode, bytes). Pings are answered.
        Raises Closed on a close frame or a dropped connection, TimeoutError otherwise."""
        if self.closed:
            raise Closed(self.close_code, self.close_reason, dropped=self.close_code is None)
        deadline = time.monotonic() + timeout
        parts, op = [], None
        while True:
            fin, opcode, payload = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.closed = True
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_reason = payload[2:].decode("utf-8", "replace")
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                raise Closed(self.close_code, self.close_reason)
            if opcode != OP_CONT:
                op = opcode
            parts.append(payload)
            if fin:
                return op, b"".join(parts)

    def recv_text(self, timeout=5.0):
        op, data = self.recv(timeout)
        assert op == OP_TEXT, "expected a text frame, got opcode %d: %r" % (op, data[:200])
        return data.decode("utf-8")

    def recv_json(self, timeout=5.0, skip=("heartbeat",)):
        """Next JSON message, skipping types in `skip` (heartbeats by default)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.recv_text(max(0.0, deadline - time.monotonic())))
            if msg.get("type") not in skip:
                return msg

    def wait_close(self, timeout=5.0):
        """Read (and discard) messages until the close; return the Closed exception."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            try:
                seen.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed as c:
                c.seen = seen
                return c
            except TimeoutError:
                raise TimeoutError("no close within %.1fs; got %r" % (timeout, seen[-5:]))

    def close(self):
        try:
            if not self.closed:
                self.send_close(1000)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
