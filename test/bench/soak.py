#!/usr/bin/python3
"""soak.py — hold thousands of WebSocket connections against a running pavilion-gateway for
a long time, with churn, steady publishing and a mix of abusive clients; report the server's
memory and file descriptors, connections held, deliveries and closes by code.

Starts nothing itself (test/bench/soak.sh does: build, config, gateway, soak, stop).

    soak.py --host 127.0.0.1 --port 8090 --api-port 8091 --api-key KEY \\
            --jwt-key-file jwt.key --server-pid PID --duration 600 --connections 3000

One thread runs an epoll loop (selectors) over non-blocking sockets with a small RFC 6455
client; two more threads publish through the internal API (steady zone traffic; bursts to
slow readers). Reports are `key: value` lines: at start (after the ramp), every
--report-every seconds, at the end, and once more after every client has closed.
"""
import argparse
import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import queue
import random
import resource
import selectors
import socket
import struct
import sys
import multiprocessing
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
PUB_COUNTERS = ("publishes", "deliveries_queued", "burst_publishes", "publish_errors")


# ------------------------------------------------------------------ helpers
def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(secret, claims):
    si = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode()) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")).encode())
    return si + "." + b64u(hmac.new(secret, si.encode(), hashlib.sha256).digest())


def mask(data, key):
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0):
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    key = os.urandom(4)
    return hdr + key + mask(payload, key)


def proc_figures(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:", "Threads:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
        out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        pass
    return out


# ------------------------------------------------------------------ one connection
class Conn:
    """A client connection. kind: normal | flood | oversize | badtoken | slow | garbage."""

    __slots__ = ("sock", "kind", "user", "token", "state", "inbuf", "outbuf", "zones", "born",
                 "close_code", "reading", "acked", "soak", "deadline", "events", "rcvbuf", "hs_key")

    def __init__(self, kind, user, token, zones=(), rcvbuf=None):
        self.kind, self.user, self.token, self.zones = kind, user, token, list(zones)
        self.sock = None
        self.state = "new"
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.born = time.monotonic()
        self.close_code = None
        self.reading = True
        self.acked = 0
        self.soak = 0
        self.deadline = None
        self.events = 0
        self.rcvbuf = rcvbuf
        self.hs_key = None


class Soak:
    def __init__(self, a):
        self.a = a
        self.secret = open(a.jwt_key_file, "rb").read()
        if self.secret.endswith(b"\n"):
            self.secret = self.secret[:-1]
        self.sel = selectors.DefaultSelector()
        self.conns = set()
        self.normal = []  # held normal connections (open or opening)
        self.n = 0
        self.c = collections.Counter()  # counters reported as key: value
        # the publishers are processes (no GIL shared with the epoll loop), forked before any
        # client socket exists; they count into shared memory
        self.stop = multiprocessing.Event()
        self.go = multiprocessing.Event()
        self.burst_q = multiprocessing.Queue()
        self.pc = multiprocessing.Array("q", len(PUB_COUNTERS), lock=False)
        self.zone_names = ["soak%d" % i for i in range(a.zones)]
        if a.source:
            self.sources = a.source.split(",")
        elif a.host.startswith("127.") and a.sources > 0:
            self.sources = ["127.0.0.%d" % (2 + i) for i in range(a.sources)]
        else:
            self.sources = []
        self.t0 = time.monotonic()
        self.exp = int(time.time()) + a.duration + 7200

    # -------------------------------------------------------------- tokens
    def token(self, user, bad=False):
        claims = {"sub": user, "iat": int(time.time()), "exp": self.exp, "zones": ["*"]}
        if self.a.issuer:
            claims["iss"] = self.a.issuer
        if self.a.audience:
            claims["aud"] = self.a.audience
        t = mint(self.secret if not bad else b"wrong-" + self.secret, claims)
        return t

    # -------------------------------------------------------------- sockets
    def open(self, kind, zones=(), rcvbuf=None):
        self.n += 1
        user = "soak-%s-%d" % (kind, self.n)
        c = Conn(kind, user, self.token(user, bad=(kind == "badtoken")), zones, rcvbuf)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setblocking(False)
        src = self.sources[self.n % len(self.sources)] if self.sources else None
        if src:
            # the port is picked at connect(), per destination: no ephemeral-port shortage
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((src, 0))
        try:
            rc = s.connect_ex((self.a.host, self.a.port))
        except OSError:
            rc = -1
        if rc not in (0, 115):  # EINPROGRESS
            s.close()
            self.c["connect_errors_%s" % rc] += 1
            return None
        c.sock = s
        c.state = "connecting"
        self.conns.add(c)
        self.sel.register(s, selectors.EVENT_WRITE, c)
        c.events = selectors.EVENT_WRITE
        c.deadline = time.monotonic() + 15
        self.c["opened_" + kind] += 1
        return c

    def want(self, c):
        ev = (selectors.EVENT_READ if c.reading else 0) | (selectors.EVENT_WRITE if c.outbuf else 0)
        if c.state == "connecting":
            ev = selectors.EVENT_WRITE
        if ev != c.events:
            if ev == 0:
                self.sel.unregister(c.sock)
            elif c.events == 0:
                self.sel.register(c.sock, ev, c)
            else:
                self.sel.modify(c.sock, ev, c)
            c.events = ev

    def send(self, c, data):
        if c.state == "closed":
            return
        c.outbuf += data
        self.flush(c)

    def flush(self, c):
        while c.outbuf:
            try:
                n = c.sock.send(c.outbuf)
            except BlockingIOError:
                break
            except OSError as e:
                self.c["send_errors_%s" % e.errno] += 1
                self.gone(c, None)
                return
            del c.outbuf[:n]
        if c.state != "closed":
            self.want(c)

    def send_json(self, c, obj):
        self.send(c, frame(1, json.dumps(obj, separators=(",", ":"))))

    def gone(self, c, code):
        """The connection is over: count it by kind and code."""
        if c.state == "closed":
            return
        prev = c.state
        c.state = "closed"
        if c.events:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
        c.events = 0
        try:
            c.sock.close()
        except OSError:
            pass
        self.conns.discard(c)
        label = "dropped" if code is None else str(code)
        if c.kind == "normal":
            if prev == "closing":
                self.c["churn_closed"] += 1
            else:
                if prev in ("connecting", "handshake"):
                    # not yet held: say where and after how long the handshake ended
                    age = time.monotonic() - c.born
                    self.c["normal_handshake_failed_%s_%s" % (prev, "under_1s" if age < 1 else
                                                              "1_to_10s" if age < 10 else "over_10s")] += 1
                else:
                    self.c["normal_lost_" + label] += 1
        else:
            self.c["abuse_%s_close_%s" % (c.kind, label)] += 1
        self.c["client_closes_" + label] += 1

    def close_normal(self, c):
        if c.state == "open":
            c.state = "closing"
            c.deadline = time.monotonic() + 5
            self.send(c, frame(8, struct.pack("!H", 1000)))
        else:
            self.gone(c, None)

    # -------------------------------------------------------------- protocol
    def on_writable(self, c):
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.c["connect_errors_%s" % err] += 1
                self.gone(c, None)
                return
            c.state = "handshake"
            c.hs_key = base64.b64encode(os.urandom(16)).decode()
            req = ("GET /ws?token=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                   % (c.token, self.a.host, self.a.port, c.hs_key))
            c.outbuf += req.encode()
            c.events = selectors.EVENT_WRITE
        self.flush(c)

    def on_readable(self, c):
        try:
            data = c.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError as e:
            self.c["recv_errors_%s" % e.errno] += 1
            data = b""
        if not data:
            self.gone(c, c.close_code)
            return
        c.inbuf += data
        if c.state == "handshake":
            i = c.inbuf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(c.inbuf[:i]).decode("latin-1")
            del c.inbuf[:i + 4]
            status = head.split(" ", 2)[1] if " " in head else "?"
            if status != "101":
                self.c["handshake_http_%s_%s" % (status, c.kind)] += 1
                self.gone(c, None)
                return
            c.state = "open"
            c.deadline = None
            self.on_open(c)
        self.parse(c)

    def parse(self, c):
        buf = c.inbuf
        while c.state in ("open", "closing") and len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    return
                n, off = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n, off = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < off + n:
                return
            payload = bytes(buf[off:off + n])
            del buf[:off + n]
            op = b0 & 0x0F
            if op == 8:
                c.close_code = struct.unpack("!H", payload[:2])[0] if n >= 2 else 1005
                if c.state == "open":
                    self.send(c, frame(8, payload[:2]))
                self.gone(c, c.close_code)
                return
            if op == 9:
                self.send(c, frame(10, payload))
            elif op in (0, 1):
                self.on_text(c, payload)

    def on_open(self, c):
        if c.kind == "normal":
            self.c["normal_open"] += 1
            for i, z in enumerate(c.zones):
                self.send_json(c, {"type": "subscribe", "id": "s%d" % i, "payload": {"channel": "zone:" + z}})
        elif c.kind == "flood":
            msg = frame(1, '{"type":"heartbeat_ack"}')
            # burst 20, then 100 excess → 4029; few enough that the gateway reads them all,
            # so its close is a FIN the client can read, not a reset
            self.send(c, msg * 125)
        elif c.kind == "oversize":
            # a header announcing more than max_message_bytes, and the first bytes of it
            n = self.a.max_message_bytes + 1024
            key = os.urandom(4)
            self.send(c, struct.pack("!BBH", 0x81, 0x80 | 126, n) + key + mask(b"x" * 64, key))
        elif c.kind == "garbage":
            choice = random.choice(("random", "reserved-opcode", "rsv-bits", "binary"))
            self.c["garbage_" + choice] += 1
            if choice == "random":
                self.send(c, os.urandom(64))
            elif choice == "reserved-opcode":
                self.send(c, frame(0x3, b"??"))
            elif choice == "rsv-bits":
                self.send(c, frame(1, b"{}", rsv=2))
            else:
                self.send(c, frame(2, os.urandom(32)))
                self.send(c, frame(8, struct.pack("!H", 1000)))  # then leave politely
        elif c.kind == "slow":
            c.reading = False  # stop reading; a burst is published to user:<id>
            c.deadline = time.monotonic() + self.a.slow_wait
            self.want(c)
            self.burst_q.put(c.user)

    def on_text(self, c, payload):
        if b'"type":"soak"' in payload:
            c.soak += 1
            self.c["deliveries"] += 1
        elif b'"type":"heartbeat"' in payload:
            self.c["heartbeats"] += 1
            self.send(c, frame(1, '{"type":"heartbeat_ack"}'))
        elif b'"type":"ack"' in payload:
            c.acked += 1
            self.c["acks"] += 1
        elif b'"type":"error"' in payload:
            try:
                code = json.loads(payload)["payload"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
            self.c["errors_%s_%s" % (c.kind, code)] += 1
        elif b'"type":"bulk"' in payload:
            pass

    # -------------------------------------------------------------- timers
    def tick(self, now):
        # deadlines: stuck handshakes, closes without answer, slow readers start draining
        for c in list(self.conns):
            if c.deadline is None or now < c.deadline:
                continue
            if c.kind == "slow" and c.state == "open" and not c.reading:
                c.reading = True  # drain: what is left, then the close (4008) or EOF
                c.deadline = now + 20
                self.want(c)
                continue
            if c.state in ("connecting", "handshake"):
                self.c["handshake_timeouts_" + c.kind] += 1
            elif c.kind != "normal":
                self.c["abuse_%s_no_close" % c.kind] += 1
            self.gone(c, None if c.state != "closing" else 1000)
        self.normal = [c for c in self.normal if c.state != "closed"]

    def top_up(self, limit):
        """Open normal connections up to --connections, at most `limit` now."""
        opening = sum(1 for c in self.normal if c.state in ("connecting", "handshake"))
        want = min(self.a.connections - len(self.normal), limit, max(0, 400 - opening))
        for _ in range(max(0, want)):
            zones = random.sample(self.zone_names, k=min(2, len(self.zone_names)))
            c = self.open("normal", zones)
            if c:
                self.normal.append(c)

    def churn(self):
        held = [c for c in self.normal if c.state == "open"]
        k = int(len(held) * self.a.churn)
        for c in random.sample(held, min(k, len(held))):
            self.close_normal(c)

    def abuse(self, i):
        kinds = ["flood", "oversize", "badtoken", "garbage", "slow"]
        kind = kinds[i % len(kinds)]
        if kind == "slow" and sum(1 for c in self.conns if c.kind == "slow") >= 2:
            kind = "garbage"
        self.open(kind, rcvbuf=4096 if kind == "slow" else None)

    # -------------------------------------------------------------- reports
    def metrics(self):
        try:
            h = http.client.HTTPConnection(self.a.host, self.a.api_port, timeout=5)
            h.request("GET", "/metrics")
            text = h.getresponse().read().decode()
            h.close()
        except (OSError, http.client.HTTPException):
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith("pavilion_closes_total{") or line.startswith("pavilion_connections ") \
                    or line.startswith("pavilion_rate_limited_total") or line.startswith("pavilion_auth_failures_total"):
                k, _, v = line.rpartition(" ")
                k = k.replace("pavilion_closes_total{code=\"", "server_closes_").replace("\"}", "")
                k = k.replace("pavilion_", "server_")
                out[k] = int(float(v))
        return out

    def report(self, phase):
        now = time.monotonic()
        pf = proc_figures(self.a.server_pid)
        held = sum(1 for c in self.normal if c.state == "open")
        lines = [("phase", phase), ("utc", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
                 ("elapsed_s", "%.0f" % (now - self.t0)),
                 ("server_rss_kb", pf.get("VmRSS", "?")), ("server_hwm_kb", pf.get("VmHWM", "?")),
                 ("server_fds", pf.get("fds", "?")),
                 ("connections_held", held), ("sockets_open", len(self.conns))]
        counters = dict(self.c)
        for (kind, state), n in collections.Counter((c.kind, c.state) for c in self.conns).items():
            if (kind, state) != ("normal", "open"):
                counters["sockets_%s_%s" % (kind, state)] = n
        for i, k in enumerate(PUB_COUNTERS):
            counters[k] = self.pc[i]
        lines += sorted(counters.items())
        lines += sorted(self.metrics().items())
        print("--- %s ---" % phase)
        for k, v in lines:
            print("%s: %s" % (k, v))
        sys.stdout.flush()

    # -------------------------------------------------------------- publishers
    def api(self):
        return http.client.HTTPConnection(self.a.host, self.a.api_port, timeout=10)

    def post(self, h, body):
        data = json.dumps(body, separators=(",", ":")).encode()
        hdr = {"Authorization": "Bearer " + self.a.api_key, "Content-Type": "application/json"}
        for attempt in (0, 1):
            try:
                h.request("POST", "/v1/publish", body=data, headers=hdr)
                r = h.getresponse()
                out = r.read()
                return h, r.status, out
            except (OSError, http.client.HTTPException):
                h.close()
                h = self.api()
                if attempt:
                    return h, None, b""

    def zone_publisher(self):
        self.go.wait()
        h = self.api()
        seq = 0
        interval = 1.0 / self.a.rate
        nxt = time.monotonic()
        while not self.stop.is_set():
            seq += 1
            z = self.zone_names[seq % len(self.zone_names)]
            h, st, out = self.post(h, {"channel": "zone:" + z, "type": "soak",
                                       "payload": {"seq": seq, "t": time.time(), "pad": "p" * 160}})
            if st == 202:
                self.pc[0] += 1
                try:
                    self.pc[1] += int(json.loads(out)["recipients"])
                except (ValueError, KeyError):
                    pass
            else:
                self.pc[3] += 1
            nxt += interval
            d = nxt - time.monotonic()
            if d > 0:
                self.stop.wait(d)
            else:
                nxt = time.monotonic()
        h.close()

    def burst_publisher(self):
        """Big messages to a slow reader's user channel until its queue overflows (4008)."""
        self.go.wait()
        h = self.api()
        pad = "b" * 16000
        while not self.stop.is_set():
            try:
                user = self.burst_q.get(timeout=0.5)
            except queue.Empty:
                continue
            self.stop.wait(0.5)  # its user channel is joined just after the upgrade
            for i in range(self.a.slow_burst):
                if self.stop.is_set():
                    break
                h, st, out = self.post(h, {"channel": "user:" + user, "type": "bulk",
                                           "payload": {"i": i, "pad": pad}})
                if st == 202 and b'"recipients":0' in out and i > 0:
                    break  # closed already
                self.pc[2] += 1
        h.close()

    # -------------------------------------------------------------- main loop
    def run(self):
        a = self.a
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
        procs = [multiprocessing.Process(target=self.zone_publisher, daemon=True),
                 multiprocessing.Process(target=self.burst_publisher, daemon=True)]
        for pr in procs:
            pr.start()
        self.report("before")
        ramp_until = time.monotonic() + a.ramp_timeout
        while time.monotonic() < ramp_until:
            self.top_up(200)
            self.poll(0.05)
            self.tick(time.monotonic())
            if sum(1 for c in self.normal if c.state == "open") >= a.connections:
                break
        # everyone subscribed: let the acks arrive
        for _ in range(20):
            self.poll(0.05)
        self.report("start")
        self.go.set()
        self.t0 = start = time.monotonic()
        end = start + a.duration
        next_sec = start + 1
        next_abuse = start + a.abuse_every
        next_report = start + a.report_every
        abuse_i = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            self.poll(min(0.05, max(0.0, end - now)))
            now = time.monotonic()
            if now >= next_report:  # before this second's churn: held = all but the churn in flight
                next_report += a.report_every
                self.report("t+%ds" % round(now - start))
            if now >= next_sec:
                next_sec += 1
                self.tick(now)
                self.churn()
                self.top_up(400)
            if now >= next_abuse:
                next_abuse += a.abuse_every
                self.abuse(abuse_i)
                abuse_i += 1
        self.stop.set()
        for pr in procs:
            pr.join(15)
            if pr.is_alive():
                pr.terminate()
        for _ in range(40):  # deliveries in flight
            self.poll(0.05)
        self.report("end")
        for c in list(self.conns):
            if c.kind == "normal":
                self.close_normal(c)
            else:
                self.gone(c, None)
        t = time.monotonic() + 5
        while self.conns and time.monotonic() < t:
            self.poll(0.05)
            self.tick(time.monotonic())
        for c in list(self.conns):
            self.gone(c, None)
        time.sleep(2)
        self.report("after-close")

    def poll(self, timeout):
        for key, ev in self.sel.select(timeout):
            c = key.data
            if c.state == "closed":
                continue
            if ev & selectors.EVENT_WRITE:
                self.on_writable(c)
            if c.state != "closed" and ev & selectors.EVENT_READ:
                self.on_readable(c)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="public vhost (plain ws)")
    p.add_argument("--api-port", type=int, required=True, help="internal vhost")
    p.add_argument("--api-key", required=True)
    p.add_argument("--jwt-key-file", required=True, help="the vhost's HS256 secret file")
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--duration", type=int, default=600, help="seconds (after the ramp)")
    p.add_argument("--connections", type=int, default=3000)
    p.add_argument("--churn", type=float, default=0.02, help="fraction closed and reopened each second")
    p.add_argument("--zones", type=int, default=50)
    p.add_argument("--rate", type=float, default=10.0, help="zone publishes per second")
    p.add_argument("--abuse-every", type=float, default=2.0, help="seconds between abusive clients")
    p.add_argument("--slow-burst", type=int, default=400, help="16 KB messages sent to each slow reader")
    p.add_argument("--slow-wait", type=float, default=15.0, help="seconds a slow reader does not read")
    p.add_argument("--max-message-bytes", type=int, default=16384)
    p.add_argument("--report-every", type=int, default=60)
    p.add_argument("--ramp-timeout", type=float, default=120.0)
    p.add_argument("--source", default=None, help="bind client sockets to these addresses (comma list)")
    p.add_argument("--sources", type=int, default=8,
                   help="on a loopback host: spread clients over 127.0.0.2 .. 127.0.0.(N+1)")
    p.add_argument("--issuer")
    p.add_argument("--audience")
    a = p.parse_args()
    Soak(a).run()


if __name__ == "__main__":
    main()
