"""Helpers shared by the test_flow_* modules (message flow: channels, notifications,
presence, chat, the internal HTTP API). No tests here.

Absence is asserted with `Client.sync()`: a heartbeat_ack with an id is answered by an ack
after everything the gateway queued for the connection before it, so a message that is not
in the inbox once the ack is in did not arrive."""
import http.client
import itertools
import json
import os
import time

import gw

FULL_PLUGINS = {"subscription": {"policy": "claims"}, "notification": {}, "chat": {"client_send": False},
                "presence": {}}
# token claims that let the subscription plugin (policy "claims") allow every channel
ALL = {"zones": ["*"], "channels": ["*"], "chats": ["*"]}

_seq = itertools.count(1)
_run = os.urandom(3).hex()
# how many links of a chain of store calls settle() waits through (a close: conn_remove,
# then channel_counts, then presence_set)
SETTLE_DEPTH = 4


def settle(g):
    """A gateway on the redis store: wait until what g asked its store before now has been
    answered, SETTLE_DEPTH calls deep.  Each GET /v1/channels/{c} below is a store call queued
    behind every call the gateway made before it (one command connection, answered in order),
    so a chain of calls started before this has moved one link per round.  The memory store
    answers at once: nothing to wait for."""
    if g.config.get("store", {}).get("backend") != "redis":
        return
    internal = [v for v in g.config["vhosts"] if "api" in v]
    if not internal:
        time.sleep(0.05)
        return
    port = int(internal[0]["listen"].rsplit(":", 1)[1])
    for _ in range(SETTLE_DEPTH):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/v1/channels/zone:settle",
                         headers={"Authorization": "Bearer " + g.keys.api_key})
            conn.getresponse().read()
        finally:
            conn.close()


def uid(prefix="u"):
    """A user/channel id unique in this test run (ids are [A-Za-z0-9_-])."""
    return "%s-%s-%d" % (prefix, _run, next(_seq))


def flow_vhosts(keys, plugins=None, name="public", internal="internal", namespace="default", **over):
    """A plain-ws public vhost with the flow plugins, and an internal API vhost."""
    pub = gw.public_vhost(keys, name, tls=False,
                          plugins=dict(FULL_PLUGINS) if plugins is None else plugins,
                          namespace=namespace, **over)
    out = [pub]
    if internal:
        iv = gw.internal_vhost(keys, internal)
        iv["namespace"] = namespace
        out.append(iv)
    return out


# ------------------------------------------------------------------ internal API
class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        try:
            self.json = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            self.json = None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<HTTP %s %r>" % (self.status, self.body[:400])


class API:
    def __init__(self, g, vhost="internal"):
        self.g, self.port, self.key = g, g.port(vhost), g.keys.api_key

    def call(self, method, path, body=None, key=True, headers=None, raw=None, content_type="application/json"):
        """key=True: the configured key; a string: that key; None: no Authorization."""
        h = {}
        if key is True:
            h["Authorization"] = "Bearer " + self.key
        elif key:
            h["Authorization"] = "Bearer " + key
        data = raw
        if data is None and body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            h["Content-Type"] = content_type
        h.update(headers or {})
        if method == "GET" and path.startswith("/v1/"):
            settle(self.g)  # a read sees what happened before it, as on the memory store
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, body, **kw)

    def publish(self, channel, type, payload, expect=202):
        r = self.post("/v1/publish", {"channel": channel, "type": type, "payload": payload})
        if expect is not None:
            assert r.status == expect, "publish %s %s: expected %s, got %r" % (type, channel, expect, r)
        return r

    def notify(self, user, notification, expect=201):
        r = self.post("/v1/notifications", {"userId": user, "notification": notification})
        if expect is not None:
            assert r.status == expect, "notification for %s: expected %s, got %r" % (user, expect, r)
        return r

    def inbox(self, user, query=""):
        r = self.get("/v1/users/%s/notifications%s" % (user, query))
        assert r.status == 200, r
        return r.json

    def presence(self, user):
        r = self.get("/v1/users/%s/presence" % user)
        assert r.status == 200, r
        return r.json

    def metrics_text(self):
        r = self.call("GET", "/metrics", key=None)
        assert r.status == 200, r
        return r.text

    def metrics(self):
        return parse_metrics(self.metrics_text())


def parse_metrics(text):
    """Prometheus text → {'name{labels}': value} (labels as written) and {'name': value}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        try:
            out[key.replace(" ", "")] = float(val)
        except ValueError:
            pass
    return out


def metric(m, name, **labels):
    """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for key, v in m.items():
        n, _, lab = key.partition("{")
        if n != name:
            continue
        have = {}
        for part in lab.rstrip("}").split(","):
            if "=" in part:
                k, _, val = part.partition("=")
                have[k] = val.strip('"')
        if all(have.get(k) == str(val) for k, val in labels.items()):
            total += v
    return total


# ------------------------------------------------------------------ clients
class Client:
    """One WebSocket connection of `sub`, keeping every message it has read in `inbox`."""

    def __init__(self, g, sub=None, vhost="public", token=None, headers=None, **claims):
        self.g, self.vhost = g, vhost
        self.sub = sub or uid()
        self.ws = g.connect(token or g.token(vhost=vhost, sub=self.sub, **claims), vhost=vhost,
                            headers=headers)
        self.inbox = []
        self.n = 0

    def close(self):
        self.ws.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv(self, timeout):
        m = gw.check_envelope(self.ws.recv_json(timeout))
        return m

    def send(self, type, payload=None, id=None):
        m = {"type": type}
        if payload is not None:
            m["payload"] = payload
        if id is not None:
            m["id"] = id
        self.ws.send_json(m)

    def request(self, type, payload=None, timeout=3.0):
        """Send with a fresh id; return the ack or error carrying it. Others go to inbox."""
        self.n += 1
        rid = "r%d" % self.n
        self.send(type, payload, rid)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                m = self._recv(max(0.0, left))
            except TimeoutError:
                raise AssertionError("no ack/error for %s %r within %.1fs; got %r"
                                     % (type, payload, timeout, self.inbox[-5:]))
            if m.get("id") == rid and m["type"] in ("ack", "error"):
                return m
            self.inbox.append(m)

    def ok(self, type, payload=None):
        m = self.request(type, payload)
        assert m["type"] == "ack", "%s %r by %s: expected ack, got %r" % (type, payload, self.sub, m)
        assert isinstance(m.get("payload"), dict) and m["payload"].get("for") == type, m
        return m

    def err(self, type, payload, code):
        m = self.request(type, payload)
        assert m["type"] == "error" and isinstance(m.get("payload"), dict) \
            and m["payload"].get("code") == code, \
            "%s %r by %s: expected error %d, got %r" % (type, payload, self.sub, code, m)
        assert isinstance(m["payload"].get("message"), str), m
        return m

    def subscribe(self, channel, **params):
        p = {"channel": channel}
        if params:
            p["parameters"] = params
        m = self.ok("subscribe", p)
        settle(self.g)  # the subscribe hooks' store work (announcements, replays) is done
        return m

    def sync(self):
        """Everything the gateway sent before now is in self.inbox after this."""
        settle(self.g)
        self.ok("heartbeat_ack")

    def take(self, type=None, **match):
        """Remove and return the inbox messages of `type` whose payload has `match` items."""
        got, keep = [], []
        for m in self.inbox:
            p = m.get("payload") if isinstance(m.get("payload"), dict) else {}
            if (type is None or m.get("type") == type) and all(p.get(k) == v for k, v in match.items()):
                got.append(m)
            else:
                keep.append(m)
        self.inbox = keep
        return got

    def wait_for(self, type, timeout=3.0, **match):
        """The first message of `type` with payload items `match` (from inbox or the socket)."""
        got = self.take(type, **match)
        if got:
            self.inbox = got[1:] + self.inbox
            return got[0]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                m = self._recv(max(0.0, left))
            except TimeoutError:
                raise AssertionError("%s: no %s %r within %.1fs; inbox %r"
                                     % (self.sub, type, match, timeout, self.inbox[-8:]))
            p = m.get("payload") if isinstance(m.get("payload"), dict) else {}
            if m.get("type") == type and all(p.get(k) == v for k, v in match.items()):
                return m
            self.inbox.append(m)

    def wait_close(self, timeout=5.0):
        return self.ws.wait_close(timeout)


def ticks(client, channel, want, timeout=5.0):
    """The next `want` tick messages client gets (in arrival order), each of `channel`."""
    got = []
    while len(got) < want:
        got.append(client.wait_for("tick", timeout=timeout))
        assert got[-1].get("channel") == channel, got[-1]
    return got
