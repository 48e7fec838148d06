"""A real redis-server for the integration tests, and gateways on it.

RedisServer starts `redis-server` on a free loopback port (no persistence), talks RESP to it
with a tiny client of its own (no Python package needed), and can be stopped, frozen
(SIGSTOP), thawed, killed and restarted empty on the same port.

Nodes makes 2-3 gateway processes that are one gateway through one Redis: distinct ports,
one namespace, each with a public (plain ws) and an internal vhost.
"""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import gw
import test_flow_util as fu

REDIS_SERVER = "redis-server"


class RedisError(Exception):
    pass


class RespClient:
    """One connection speaking RESP2: call(*args) -> the decoded reply."""

    def __init__(self, port, timeout=5.0, db=0, password=None, user=None, host="127.0.0.1",
                 tls=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:  # an ssl.SSLContext
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        self.buf = b""
        if password:
            self.call("AUTH", *([user] if user else []), password)
        if db:
            self.call("SELECT", db)

    def close(self):
        self.sock.close()

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

    def call(self, *args):
        self.send(*args)
        return self.read()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RedisError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RedisError("bad reply %r" % line)


class RedisServer:
    def __init__(self, workdir, port=None, extra=(), host="127.0.0.1", tls=None):
        """tls: {"cert": path, "key": path, "ca": path, "auth_clients": bool}: a TLS port
        only, with that certificate, asking clients for one signed by "ca" if auth_clients."""
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.tls = tls
        self.port = port or gw.free_port()
        self.extra = list(extra)
        self.proc = None
        self.log_path = self.dir / ("redis-%d.log" % self.port)

    @property
    def url(self):
        return "redis%s://%s:%d" % ("s" if self.tls else "", self.host, self.port)

    def _tls_args(self):
        t = self.tls
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(t["cert"]),
                "--tls-key-file", str(t["key"]), "--tls-ca-cert-file", str(t["ca"]),
                "--tls-auth-clients", "yes" if t.get("auth_clients") else "no"]

    def _client_tls(self):
        """The fixture's own clients: they trust the server's certificate, whatever host it
        names, and show the client certificate the server asks for."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=str(self.tls["cert"]))
        ctx.check_hostname = False  # the tests serve certificates of other hosts too
        if self.tls.get("auth_clients"):
            ctx.load_cert_chain(str(self.tls["client_cert"]), str(self.tls["client_key"]))
        return ctx

    def start(self, timeout=10.0):
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", self.host,
                "--save", "", "--appendonly", "no", "--dir", str(self.dir)] + self.extra
        if self.tls:
            args += self._tls_args()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=self._log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                c = RespClient(self.port, timeout=1.0, host=self.host, tls=self._client_tls())
                try:
                    ok = c.call("PING") == "PONG"
                except RedisError as e:
                    ok = "NOAUTH" in str(e)  # it answers: a password is set
                c.close()
                if ok:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise AssertionError("redis-server did not start on %d" % self.port)

    def client(self, db=0):
        return RespClient(self.port, db=db, host=self.host, tls=self._client_tls())

    def call(self, *args, db=0):
        c = self.client(db)
        try:
            return c.call(*args)
        finally:
            c.close()

    def keys(self, pattern="*", db=0):
        """Every key matching pattern (SCAN, so it also works on a big keyspace)."""
        out, cursor = [], "0"
        c = self.client(db)
        try:
            while True:
                cursor, batch = c.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
                out += batch
                if cursor == "0":
                    return sorted(set(out))
        finally:
            c.close()

    def freeze(self):
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        if self.proc:
            self._log.close()
        self.proc = None

    def restart_empty(self):
        """Kill it and start a new, empty one on the same port."""
        self.kill()
        return self.start()

    stop = kill


def wait_until(cond, timeout=10.0, step=0.05, what="condition"):
    """gw.wait_until that fails the test when cond() is still false at the end."""
    v = gw.wait_until(cond, timeout, step)
    if not v:
        raise AssertionError("%s not reached within %.1fs" % (what, timeout))
    return v


def registered_nodes(redis, db=0):
    return redis.call("ZCARD", "pav:nodes", db=db)


def node_id(g):
    """The store node id a gateway on the redis store logged at start."""
    m = re.search(r"store: node ([0-9a-f]{16})", g.log_text())
    assert m, g.log_tail()
    return m.group(1)


def scripts_c():
    """src/redis_scripts.c of the build under test (its source directory)."""
    try:
        info = json.loads((gw.BUILD / "meson-info" / "meson-info.json").read_text())
        return Path(info["directories"]["source"]) / "src" / "redis_scripts.c"
    except (OSError, ValueError, KeyError):
        return Path(__file__).resolve().parents[2] / "src" / "redis_scripts.c"


def lua_script(name):
    """The text of one of the backend's Lua scripts, as src/redis_scripts.c builds it
    (macros and string literals concatenated), so that a test can play a node that ran
    a script and then died."""
    src = scripts_c().read_text()
    lit = re.compile(r'"((?:[^"\\]|\\.)*)"')

    def text(body):
        out = []
        for tok in re.findall(r'"(?:[^"\\]|\\.)*"|[A-Z_][A-Z0-9_]*', body):
            if tok.startswith('"'):
                out.append(lit.match(tok).group(1).encode().decode("unicode_escape"))
            else:
                out.append(macros[tok])
        return "".join(out)

    macros = {}
    for m in re.finditer(r"^#define (LUA_[A-Z0-9_]+) \\\n((?:.*\\\n)*.*)$", src, re.M):
        macros[m.group(1)] = text(m.group(2))
    m = re.search(r"^static const char %s\[\] =\n(.*?);$" % re.escape(name), src, re.M | re.S)
    assert m, name
    return text(m.group(1))


def redis_store(url, **over):
    s = {"backend": "redis", "url": url}
    s.update(over)
    return s


class Nodes:
    """n gateways on one Redis, one namespace: nodes[i].api, nodes[i].client(sub)."""

    def __init__(self, factory, keys, redis, n=3, plugins=None, store=None, log=None,
                 public_over=None, **top):
        self.redis = redis
        self.gws = []
        for _ in range(n):
            vh = fu.flow_vhosts(keys, plugins=plugins, **(public_over or {}))
            g = factory(vhosts=vh, start=False, store=redis_store(redis.url, **(store or {})),
                        log=log or {"level": "info", "format": "text"}, **top)
            self.gws.append(g)

    def start(self):
        before = registered_nodes(self.redis)
        for g in self.gws:
            g.start()
        wait_until(lambda: registered_nodes(self.redis) >= before + len(self.gws), 10,
                   what="every node registered")
        # every node answers /readyz: the store is up and the node registered
        for g in self.gws:
            wait_until(lambda: fu.API(g).get("/readyz").status == 200, 10, what="readyz")
        return self

    def settle(self):
        """What every node asked Redis before now has been answered (see fu.settle)."""
        for g in self.gws:
            fu.settle(g)

    def __getitem__(self, i):
        return self.gws[i]

    def __len__(self):
        return len(self.gws)

    def api(self, i):
        return fu.API(self.gws[i])

    def client(self, i, sub=None, **claims):
        return fu.Client(self.gws[i], sub=sub, **claims)


def close_to_eof(client, timeout=5.0):
    """Closes a fu.Client's connection and reads until the server closed its socket: by
    then the gateway has begun removing it from the store."""
    ws = client.ws
    try:
        ws.send_close(1000)
        ws.wait_close(timeout)
        ws.sock.settimeout(timeout)
        while ws.sock.recv(4096):
            pass
    except OSError:
        pass
    ws.close()


def mount_namespace_available():
    """Whether this user may run a process with files of its own over /etc (root, util-linux)."""
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def own_etc(g, **files):
    """Starts gateway g in a mount namespace of its own where /etc/NAME is files[NAME] (a
    bind mount: rewriting that file in place changes what the gateway reads)."""
    mounts = "".join('mount --bind "$%d" /etc/%s && ' % (i + 1, name)
                     for i, name in enumerate(files))
    g.prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                mounts + 'shift %d && exec "$@"' % len(files), "own-etc"] + \
        [str(p) for p in files.values()]
    return g


def redis_available():
    try:
        subprocess.run([REDIS_SERVER, "--version"], capture_output=True, timeout=10, check=True)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


if os.environ.get("PAVILION_REDIS_SERVER"):
    REDIS_SERVER = os.environ["PAVILION_REDIS_SERVER"]
