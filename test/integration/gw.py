"""Helpers for the integration tests: key material, JWT minting, the Gateway process."""
import base64
import copy
import datetime
import hashlib
import hmac
import itertools
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import wsclient

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PAVILION_BUILD", REPO / "build")).resolve()
BINARY = BUILD / "src" / "pavilion-gateway"
PLUGIN_DIR = BUILD / "plugins"
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
# PAVILION_STORE=redis: every gateway gets store.backend "redis" on the session's redis-server
# (conftest.py), each in a database of its own, so that gateways stay as separate as on
# the memory backend.
STORE = os.environ.get("PAVILION_STORE", "memory")
REDIS_PORT = None
REDIS_DBS = 4096
_redis_db = itertools.count(1)


# ------------------------------------------------------------------ key material
def make_cert(d, name="cert", cn="localhost", san="DNS:localhost,IP:127.0.0.1"):
    """Self-signed cert+key via the openssl CLI. Returns (cert_path, key_path)."""
    d = Path(d)
    cert, key = d / (name + ".pem"), d / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + san],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class Keys:
    """All the key files one gateway needs, in directory d."""

    def __init__(self, d):
        d = Path(d)
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        self.cert, self.cert_key = make_cert(d)
        self.hs_secret = b"integration-test-secret-" + os.urandom(8).hex().encode()
        self.hs_file = d / "jwt.key"
        self.hs_file.write_bytes(self.hs_secret + b"\n")
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_pub_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.rsa_pub_file = d / "rsa.pub.pem"
        self.rsa_pub_file.write_bytes(self.rsa_pub_pem)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ec_pub_pem = self.ec.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.ec_pub_file = d / "ec.pub.pem"
        self.ec_pub_file.write_bytes(self.ec_pub_pem)
        self.api_key = "api-" + os.urandom(12).hex()
        self.api_keys_file = d / "api.keys"
        self.api_keys_file.write_text("# test keys\n\n%s\n" % self.api_key)
        for secret in (self.cert_key, self.hs_file, self.api_keys_file):
            os.chmod(secret, 0o600)  # as a deployment keeps them (the gateway warns otherwise)

    def key_for(self, alg):
        if alg.startswith("HS"):
            return self.hs_secret
        return self.rsa if alg[:2] in ("RS", "PS") else self.ec


# ------------------------------------------------------------------ JWT
def b64u(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(claims, key, alg="HS256", header=None):
    """Make a compact JWS by hand. key: bytes for HS*, a cryptography private key for RS/ES,
    ignored for alg none/None."""
    h = {"alg": alg, "typ": "JWT"}
    h.update(header or {})
    si = b64u(json.dumps(h, separators=(",", ":"))) + "." + b64u(json.dumps(claims, separators=(",", ":")))
    if alg.upper().startswith("HS"):
        sig = hmac.new(key, si.encode(), HASHES[alg[2:]]).digest()
    elif alg.lower() == "none":
        sig = b""
    elif alg.startswith("RS"):
        sig = key.sign(si.encode(), padding.PKCS1v15(), getattr(hashes, "SHA" + alg[2:])())
    elif alg.startswith("ES"):
        bits = {"256": 32, "384": 48, "512": 66}[alg[2:]]
        r, s = decode_dss_signature(key.sign(si.encode(), ec.ECDSA(getattr(hashes, "SHA" + alg[2:])())))
        sig = r.to_bytes(bits, "big") + s.to_bytes(bits, "big")
    else:
        raise ValueError(alg)
    return si + "." + b64u(sig)


def claims(sub="alice", ttl=300, iss=None, aud=None, **extra):
    now = int(time.time())
    c = {"sub": sub, "iat": now, "exp": now + ttl}
    if iss is not None:
        c["iss"] = iss
    if aud is not None:
        c["aud"] = aud
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


# ------------------------------------------------------------------ misc
_ports_given = set()


def free_port():
    """A port free now and not handed out before in this test run: the kernel may give the
    same ephemeral port to two bind(0) calls in a row, and one config then lists it twice."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise AssertionError("no fresh free port in 100 tries")


def wait_port(port, timeout=10.0, proc=None, host="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_until(pred, timeout=5.0, step=0.05):
    """pred() every `step` s until it is true or `timeout` s have passed: its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def run_binary(args, timeout=20, **kw):
    return subprocess.run([str(BINARY)] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=2))
    return path


def check_config(path):
    """`pavilion-gateway --check -c path`: the CompletedProcess."""
    return run_binary(["--check", "-c", path])


def start_fails(path, timeout=10):
    """Start the gateway on a config that must be refused: it exits non-zero by itself.
    Returns its stderr. A gateway that starts is killed and fails the test."""
    try:
        r = run_binary(["-c", path], timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the gateway started with a configuration it must refuse: %s" % path)
    assert r.returncode != 0, r.stderr
    return r.stderr


def refused_everywhere(path, *needles):
    """--check exits 1 and a start exits non-zero, each saying every one of `needles`."""
    r = check_config(path)
    assert r.returncode == 1, "--check accepted it:\n%s%s" % (r.stdout, r.stderr)
    err = start_fails(path)
    for out in (r.stderr, err):
        for n in needles:
            assert n in out, "%r not in:\n%s" % (n, out)


def peer_cert_der(port, host="127.0.0.1", server_hostname="localhost"):
    ctx = ssl._create_unverified_context()
    with socket.create_connection((host, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as s:
            return s.getpeercert(binary_form=True)


def public_vhost(keys, name="public", port=None, tls=True, alg="HS256", plugins=None, **over):
    """A public vhost in DESIGN §3 shape; `over` replaces/extends top-level vhost keys,
    and dict values are merged one level deep (e.g. websocket={"path": "/x"})."""
    key_file = {"HS": keys.hs_file, "RS": keys.rsa_pub_file, "PS": keys.rsa_pub_file,
                "ES": keys.ec_pub_file}[alg[:2]]
    v = {
        "name": name,
        "listen": "127.0.0.1:%d" % (port or free_port()),
        "namespace": "default",
        "websocket": {"path": "/ws", "heartbeat_interval_s": 30, "idle_timeout_s": 90,
                      "max_message_bytes": 16384},
        "auth": {"algorithms": [alg], "key_file": str(key_file), "leeway_s": 30},
        "limits": {"messages_per_s": 1000, "burst": 1000, "max_connections_per_ip": 1000,
                   "handshakes_per_s_per_ip": 1000},
        "plugins": {"example": {"greeting": "hi"}} if plugins is None else plugins,
    }
    if tls:
        v["tls"] = {"cert": str(keys.cert), "key": str(keys.cert_key)}
    for k, val in over.items():
        if isinstance(val, dict) and isinstance(v.get(k), dict):
            v[k].update(val)
        elif val is None:
            v.pop(k, None)
        else:
            v[k] = val
    return v


def internal_vhost(keys, name="internal", port=None):
    return {"name": name, "listen": "127.0.0.1:%d" % (port or free_port()), "namespace": "default",
            "api": {"keys_file": str(keys.api_keys_file)}}


def default_store():
    if STORE != "redis":
        return {"backend": "memory"}
    assert REDIS_PORT, "PAVILION_STORE=redis needs the session's redis-server (conftest.py)"
    return {"backend": "redis",
            "url": "redis://127.0.0.1:%d/%d" % (REDIS_PORT, next(_redis_db) % REDIS_DBS)}


def base_config(keys, vhosts, log=None, plugin_dirs=None, **top):
    c = {"plugin_dirs": [str(PLUGIN_DIR)] if plugin_dirs is None else [str(p) for p in plugin_dirs],
         "log": log or {"level": "info", "format": "text"},
         "store": default_store(),
         "vhosts": vhosts}
    c.update(top)
    return c


# ------------------------------------------------------------------ the process
class Gateway:
    """One pavilion-gateway process with a generated config."""

    def __init__(self, workdir, keys, config):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keys = keys
        self.config = copy.deepcopy(config)
        self.conf_path = self.dir / "gateway.json"
        self.log_path = self.dir / "stderr.log"
        self.proc = None
        self.prefix = []  # argv before the binary's (a wrapper that execs it)
        self.store_address = "127.0.0.1"  # where wait_registered finds the store's Redis
        self.tokens_used = []  # every token handed out, for the no-token-in-logs checks
        self.write_config()

    def write_config(self):
        self.conf_path.write_text(json.dumps(self.config, indent=2))

    def vhost(self, name="public"):
        for v in self.config["vhosts"]:
            if v["name"] == name:
                return v
        raise KeyError(name)

    def port(self, name="public"):
        return int(self.vhost(name)["listen"].rsplit(":", 1)[1])

    def client_tls(self, name="public"):
        """A client of this vhost speaks TLS to it (not when a proxy in front terminates it)."""
        v = self.vhost(name)
        return "tls" in v and not v["tls"].get("terminated_upstream")

    def start(self, timeout=10.0):
        assert BINARY.exists(), "gateway binary not built: %s (set PAVILION_BUILD)" % BINARY
        self._log = open(self.log_path, "ab")
        t0 = int(time.time() * 1000) - 5  # Redis TIME runs on this machine's clock
        self.proc = subprocess.Popen(self.prefix + [str(BINARY), "-c", str(self.conf_path)],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, cwd=str(self.dir))
        for v in self.config["vhosts"]:
            host, port = v["listen"].rsplit(":", 1)
            host = "::1" if host.startswith("[") else "127.0.0.1"  # loopback of its family
            if not wait_port(int(port), timeout, self.proc, host):
                rc = self.proc.poll()
                if rc is None:
                    self.proc.kill()
                    self.proc.wait(5)
                raise AssertionError("gateway did not listen on %s (exit %r); stderr:\n%s"
                                     % (port, rc, self.log_tail()))
        st = self.config.get("store", {})
        # (behind sentinels the server is not known here: such tests wait for /readyz)
        if st.get("backend") == "redis" and not st.get("sentinel"):
            self.wait_registered(t0, timeout)
        return self

    def wait_registered(self, since_ms, timeout=10.0):
        """redis store: wait until this process heartbeated (its store is ready)."""
        import redisfix
        url = urllib.parse.urlsplit(self.config["store"].get("url")
                                    or self.config["store"]["shards"][0])
        port, db = url.port, url.path.strip("/")
        user = urllib.parse.unquote(url.username) if url.username else None
        pw = self.config["store"].get("password_file")
        pw = Path(pw).read_text().splitlines()[0] if pw else None
        pw = pw or (urllib.parse.unquote(url.password) if url.password else None)
        tls = None
        if url.scheme == "rediss":  # as the gateway does: its CA, its client certificate
            st = self.config["store"]
            tls = ssl.create_default_context(cafile=st.get("tls_ca_file"))
            if st.get("tls_cert_file"):
                tls.load_cert_chain(st["tls_cert_file"], st["tls_key_file"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("gateway exited %r; stderr:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                c = redisfix.RespClient(port, timeout=1.0, db=int(db or 0), password=pw,
                                        user=user, host=self.store_address, tls=tls)
                try:
                    if c.call("ZCOUNT", "pav:nodes", since_ms, "+inf"):
                        time.sleep(0.02)  # its reply is on the way to it
                        return
                finally:
                    c.close()
            except (OSError, redisfix.RedisError):
                pass
            time.sleep(0.02)
        raise AssertionError("gateway never registered in Redis; stderr:\n%s" % self.log_tail())

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit code. Raises if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError("gateway did not exit within %.0fs of SIGTERM; stderr:\n%s"
                                     % (timeout, self.log_tail()))
        self._log.close()
        return self.proc.returncode

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    # ---------------------------------------------------------- tokens & clients
    def token(self, vhost="public", sub="alice", ttl=300, alg=None, key=None, **extra):
        a = self.vhost(vhost)["auth"]
        alg = alg or a["algorithms"][0]
        extra.setdefault("iss", a.get("issuer"))
        extra.setdefault("aud", a.get("audience"))
        t = mint(claims(sub=sub, ttl=ttl, **extra), key if key is not None else self.keys.key_for(alg), alg)
        self.tokens_used.append(t)
        return t

    def note_token(self, t):
        self.tokens_used.append(t)
        return t

    def connect(self, token=None, vhost="public", path=None, headers=None, bearer=False, **kw):
        v = self.vhost(vhost)
        path = path or v.get("websocket", {}).get("path", "/ws")
        headers = dict(headers or {})
        if token is not None:
            self.note_token(token)
            if bearer:
                headers["Authorization"] = "Bearer " + token
            else:
                path += ("&" if "?" in path else "?") + "token=" + token
        return wsclient.WS.connect("127.0.0.1", self.port(vhost), path, headers,
                                   tls=self.client_tls(vhost), **kw)


# ------------------------------------------------------------------ assertions
def check_envelope(msg):
    assert isinstance(msg, dict), msg
    assert isinstance(msg.get("type"), str), "no string type: %r" % msg
    assert isinstance(msg.get("timestamp"), str) and TS_RE.match(msg["timestamp"]), \
        "bad timestamp in %r" % msg
    return msg


def time_ms(ts):
    """A gateway timestamp (TS_RE: UTC, milliseconds) in ms since the epoch."""
    t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)


def http(host, port, path, headers=None, method="GET", tls=False, timeout=5.0):
    """One raw HTTP/1.1 request (path sent as is), Connection: close.
    Returns (status or None when closed without an answer, body bytes)."""
    h = {"Host": "%s:%d" % (host, port), "Connection": "close"}
    h.update(headers or {})
    raw = socket.create_connection((host, port), timeout=timeout)
    s = ssl._create_unverified_context().wrap_socket(raw, server_hostname="localhost") if tls else raw
    try:
        s.sendall(("%s %s HTTP/1.1\r\n" % (method, path)
                   + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode("latin-1"))
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionError, ssl.SSLError):
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    if not data.startswith(b"HTTP/1.1 "):
        return None, data
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def expect_error(ws, code, timeout=3.0, id=None):
    msg = check_envelope(ws.recv_json(timeout))
    assert msg["type"] == "error", "expected error %d, got %r" % (code, msg)
    p = msg.get("payload")
    assert isinstance(p, dict) and p.get("code") == code and isinstance(p.get("message"), str), \
        "expected error %d, got %r" % (code, msg)
    if id is not None:
        assert msg.get("id") == id, "error should carry id %r: %r" % (id, msg)
    return msg


_nonce = [0]


def probe(ws, timeout=3.0):
    """Assert the connection is open and served: an echo round trip (example plugin)."""
    _nonce[0] += 1
    n = "probe-%d" % _nonce[0]
    ws.send_json({"type": "echo", "payload": {"n": n}})
    deadline = time.monotonic() + timeout
    while True:
        msg = check_envelope(ws.recv_json(max(0.0, deadline - time.monotonic())))
        if msg["type"] == "error":
            raise AssertionError("probe got an error: %r" % msg)
        p = msg.get("payload")
        if msg["type"] == "echo" and isinstance(p, dict) and isinstance(p.get("echo"), dict) \
                and p["echo"].get("n") == n:
            return msg


def expect_auth_rejected(ws, timeout=3.0):
    """After a 101 with a bad token: error 1001, then close 4001."""
    err = expect_error(ws, 1001, timeout)
    c = ws.wait_close(timeout)
    assert c.code == 4001, "expected close 4001 after error 1001, got %r" % c
    return err
