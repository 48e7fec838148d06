"""Signals (SIGTERM/SIGINT shutdown, SIGHUP reload of keys and certificates) and log formats."""
import hashlib
import json
import re
import resource
import signal
import socket
import subprocess
import time

import pytest

import gw
import test_flow_util as fu
from wsclient import Closed, HandshakeRefused


def test_sigterm_closes_clients_1001_and_exits_0(make_gateway):
    g = make_gateway()
    a, b = g.connect(g.token(sub="alice")), g.connect(g.token(sub="bob"))
    gw.probe(a)
    gw.probe(b)
    t0 = time.monotonic()
    g.signal(signal.SIGTERM)
    for ws in (a, b):
        c = ws.wait_close(10)
        assert c.code == 1001, "expected close 1001 on shutdown, got %r" % c
        ws.close()
    try:
        rc = g.proc.wait(max(0.1, 10 - (time.monotonic() - t0)))
    except subprocess.TimeoutExpired:
        pytest.fail("gateway still running 10 s after SIGTERM")
    assert rc == 0, "exit code %r after SIGTERM; stderr:\n%s" % (rc, g.log_tail())


def test_sigterm_exits_promptly_once_clients_are_gone(make_gateway):
    """The 10 s are a bound, not a wait: once every client answered the 1001 close, the
    process should exit right away (operators restart gateways in rolling deploys)."""
    g = make_gateway()
    a = g.connect(g.token())
    gw.probe(a)
    g.signal(signal.SIGTERM)
    c = a.wait_close(10)
    assert c.code == 1001, c
    a.close()
    t0 = time.monotonic()
    try:
        g.proc.wait(3)
    except subprocess.TimeoutExpired:
        g.proc.wait(10)
        pytest.fail("gateway exited %.1f s after its last client closed (expected < 3 s)"
                    % (time.monotonic() - t0))


def test_sigint_closes_clients_1001_and_exits_0(make_gateway):
    g = make_gateway()
    a = g.connect(g.token())
    gw.probe(a)
    g.signal(signal.SIGINT)
    c = a.wait_close(10)
    assert c.code == 1001, c
    a.close()
    assert g.proc.wait(10) == 0, g.log_tail()


def test_readyz_is_503_while_stopping(make_gateway, keys):
    """From SIGTERM on, new handshakes get 503: /readyz says the same, so that a load balancer
    stops sending clients for the grace; /healthz stays 200 (the process still runs)."""
    g = make_gateway(fu.flow_vhosts(keys))
    api = fu.API(g)
    assert api.get("/readyz").status == 200
    a = fu.Client(g)
    a.sync()
    g.signal(signal.SIGTERM)
    # `a` has not answered the close yet, so the gateway is still there, stopping
    seen = []
    assert gw.wait_until(lambda: seen.append(api.get("/readyz")) or seen[-1].status == 503, 1), \
        "/readyz while stopping: %r" % seen[-3:]
    r = seen[-1]
    assert r.json == {"status": "stopping"}, r
    assert api.get("/healthz").status == 200
    with pytest.raises(HandshakeRefused) as refused:
        g.connect(g.token())
    assert refused.value.status == 503
    assert a.wait_close(10).code == 1001
    a.close()
    assert g.proc.wait(10) == 0, g.log_tail()


def _slow_start(make_gateway):
    """A gateway being started with 20,000 drop-ins, which make its start long enough to
    send it a signal while the configuration is read: (gateway, process)."""
    g = make_gateway(start=False, include="conf.d")
    d = g.dir / "conf.d"
    d.mkdir()
    for i in range(20000):
        (d / ("%05d.json" % i)).write_text('{"log": {"level": "info", "format": "text"}}')
    with open(g.log_path, "ab") as log:
        proc = subprocess.Popen([str(gw.BINARY), "-c", str(g.conf_path)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
    time.sleep(0.15)
    return g, proc


def test_sighup_while_starting_does_not_kill_the_gateway(make_gateway):
    """`systemctl reload` right after a start: SIGHUP used to have its default action (the
    process ends) until the handlers were installed, after the configuration, the plugins
    and the keys were loaded."""
    g, proc = _slow_start(make_gateway)
    try:
        proc.send_signal(signal.SIGHUP)
        assert gw.wait_port(g.port(), 15, proc), "died of the SIGHUP (exit %r):\n%s" % (
            proc.poll(), g.log_tail())
        proc.send_signal(signal.SIGHUP)  # and once up, SIGHUP reloads
        assert gw.wait_until(lambda: "reload: certificates and keys" in g.log_text(), 5)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def test_sigterm_while_starting_stops_it_and_exits_0(make_gateway):
    """`systemctl stop` right after a start: a SIGTERM that came while the configuration
    was being read ended the process by the signal. It is now noted from the start's
    first step, and the start ends in the shutdown: exit 0 (the port is checked closed
    when the signal goes)."""
    g, proc = _slow_start(make_gateway)
    try:
        assert not _listening(g.port()), "the start was over before the signal: no test"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert rc == 0, "exit %r after a SIGTERM during the start:\n%s" % (rc, g.log_tail())
    assert "stopped" in g.log_text()


def _accepted(g, token):
    with g.connect(token) as ws:
        try:
            gw.probe(ws)
            return True
        except (AssertionError, Closed, TimeoutError):
            return False


def test_sighup_reloads_jwt_key_without_dropping_connections(make_gateway, tmp_path):
    keys = gw.Keys(tmp_path / "k")
    g = make_gateway(keys=keys)
    old_token = g.token()
    live = g.connect(old_token)
    gw.probe(live)
    new_secret = b"rotated-secret-0123456789"
    keys.hs_file.write_bytes(new_secret + b"\n")
    g.signal(signal.SIGHUP)
    new_token = g.token(key=new_secret)
    assert gw.wait_until(lambda: _accepted(g, new_token), step=0.2), \
        "token signed with the new key still refused 5 s after SIGHUP; stderr:\n%s" % g.log_tail()
    gw.probe(live)  # the already connected client stays and works
    with g.connect(g.token()) as ws:  # signed with the old key
        gw.expect_auth_rejected(ws)
    gw.probe(live)
    live.close()
    assert g.proc.poll() is None


def test_sighup_with_broken_key_file_keeps_running(make_gateway, tmp_path):
    """A reload that fails must not kill the gateway nor its clients."""
    keys = gw.Keys(tmp_path / "k")
    g = make_gateway(keys=keys)
    live = g.connect(g.token())
    gw.probe(live)
    keys.hs_file.unlink()
    g.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert g.proc.poll() is None, "gateway died on a failed reload:\n%s" % g.log_tail()
    gw.probe(live)
    live.close()


def _fingerprint(port):
    return hashlib.sha256(gw.peer_cert_der(port)).hexdigest()


def test_sighup_reloads_certificate(make_gateway, tmp_path):
    keys = gw.Keys(tmp_path / "k")
    g = make_gateway(keys=keys)
    before = _fingerprint(g.port())
    live = g.connect(g.token())
    gw.probe(live)
    gw.make_cert(keys.dir)  # overwrites cert.pem / cert.key with a new self-signed pair
    g.signal(signal.SIGHUP)
    after = gw.wait_until(lambda: (_fingerprint(g.port()) != before) and _fingerprint(g.port()), 5,
                           step=0.2)
    assert after, "new TLS connections still see the old certificate 5 s after SIGHUP"
    new_pem_der = subprocess.run(["openssl", "x509", "-in", str(keys.cert), "-outform", "DER"],
                                 capture_output=True, check=True).stdout
    assert after == hashlib.sha256(new_pem_der).hexdigest(), "served cert is neither old nor new one"
    gw.probe(live)
    with g.connect(g.token()) as ws:
        gw.probe(ws)
    live.close()


def _activity(g):
    with g.connect(g.token(sub="loguser")) as ws:
        gw.probe(ws)
        ws.send_text("junk")
        gw.expect_error(ws, 1002)
    with g.connect(gw.mint(gw.claims(), b"wrong")) as ws:
        try:
            ws.wait_close(3)
        except TimeoutError:
            pass
    time.sleep(0.3)


def test_json_log_format(make_gateway):
    g = make_gateway(log={"level": "debug", "format": "json"})
    _activity(g)
    lines = [l for l in g.log_text().splitlines() if l.strip()]
    assert lines, "no log output"
    for l in lines:
        try:
            o = json.loads(l)
        except ValueError:
            pytest.fail("log line is not JSON: %r" % l)
        assert isinstance(o, dict) and "level" in o and "msg" in o, "log line lacks level/msg: %r" % l
        # the README's shape, on every line: a consumer can rely on each key
        assert sorted(o) == ["component", "level", "msg", "ts"], "not {ts,level,component,msg}: %r" % l
        assert gw.TS_RE.match(o["ts"]) and o["level"] in ("error", "warn", "info", "debug"), l
    assert any("loguser" in l for l in lines), "no log line names the connecting user"
    assert any("127.0.0.1" in l for l in lines), "no log line names the remote address"


def test_text_log_format(make_gateway):
    g = make_gateway(log={"level": "debug", "format": "text"})
    _activity(g)
    lines = [l for l in g.log_text().splitlines() if l.strip()]
    assert lines, "no log output"
    for l in lines:
        try:
            json.loads(l)
            pytest.fail("text log line parses as JSON: %r" % l)
        except ValueError:
            pass


def test_repeated_sighup_keeps_serving(make_gateway):
    g = make_gateway()
    live = g.connect(g.token())
    for _ in range(5):
        g.signal(signal.SIGHUP)
        time.sleep(0.05)
    time.sleep(0.3)
    assert g.proc.poll() is None, g.log_tail()
    gw.probe(live)
    live.close()
    with g.connect(g.token()) as ws:
        gw.probe(ws)


def test_sighup_reloads_rs256_public_key(make_gateway, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    keys = gw.Keys(tmp_path / "k")
    g = make_gateway([gw.public_vhost(keys, alg="RS256")], keys=keys)
    live = g.connect(g.token())
    gw.probe(live)
    new = rsa.generate_private_key(65537, 2048)
    keys.rsa_pub_file.write_bytes(new.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    g.signal(signal.SIGHUP)
    assert gw.wait_until(lambda: _accepted(g, g.token(key=new)), step=0.2), \
        "new RS256 key not in use 5 s after SIGHUP"
    with g.connect(g.token()) as ws:
        gw.expect_auth_rejected(ws)
    gw.probe(live)
    live.close()


def test_log_level_error_hides_info(make_gateway):
    g = make_gateway(log={"level": "error", "format": "text"})
    _activity(g)
    info = [l for l in g.log_text().splitlines() if " info " in l or " debug " in l]
    assert not info, "info/debug lines at level error: %r" % info[:5]


def test_connection_close_logged_with_code(make_gateway):
    g = make_gateway(log={"level": "info", "format": "json"})
    with g.connect(g.token(sub="closer")) as ws:
        gw.probe(ws)
        ws.send_close(1000)
        ws.wait_close(3)
    time.sleep(0.3)
    lines = [json.loads(l) for l in g.log_text().splitlines() if "closer" in l]
    assert len(lines) >= 2, "expected open and close lines for user closer: %r" % lines
    assert any("1000" in json.dumps(l) for l in lines), "close code not logged: %r" % lines


def _close_line(g, user):
    lines = [json.loads(l)["msg"] for l in g.log_text().splitlines() if "user=%s " % user in l]
    return next((m for m in lines if " closed " in m), None)


def test_close_lines_name_the_code_the_connection_ended_with(make_gateway):
    """The close line names the code that ended the connection, and who sent it: the
    client's own code (1005 when its close frame had none), 1006 when it went without a close
    frame, the gateway's when the gateway closed (before, every close the gateway did not
    start was logged as code=1000)."""
    g = make_gateway(log={"level": "info", "format": "json"})
    with g.connect(g.token(sub="closes-4321")) as ws:
        gw.probe(ws)
        ws.send_close(4321, "bye")
        ws.wait_close(3)
    with g.connect(g.token(sub="closes-nocode")) as ws:
        gw.probe(ws)
        ws.send_frame(0x8, b"")
        ws.wait_close(3)
    ws = g.connect(g.token(sub="closes-dropped"))
    gw.probe(ws)
    ws.sock.close()
    with g.connect(g.token(sub="closes-toobig")) as ws:
        gw.probe(ws)
        ws.send_text("x" * 20000)
        assert ws.wait_close(3).code == 1009
    want = {"closes-4321": "closed code=4321 by=client", "closes-nocode": "closed code=1005 by=client",
            "closes-dropped": "closed code=1006 by=client", "closes-toobig": "closed code=1009 by=server"}
    assert gw.wait_until(lambda: all(_close_line(g, u) for u in want)), g.log_tail()
    got = {u: _close_line(g, u) for u in want}
    for u, w in want.items():
        assert got[u].endswith(w), "%s: %r (expected ... %s)" % (u, got[u], w)


def _send_raw(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(data)
        try:
            s.recv(4096)
        except OSError:
            pass


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_client_strings_do_not_break_log_lines(make_gateway, keys, fmt):
    """What a client chooses (the token's sub, Origin, User-Agent, Host, the path, the
    subprotocol, message types, ids and channels, an API path) puts no line break, escape
    sequence or other control byte into a log line, even at debug; in json every line is one
    UTF-8 JSON object; and neither a token nor the API key reaches the log."""
    g = make_gateway(fu.flow_vhosts(keys), log={"level": "debug", "format": fmt})
    evil = "\x1b[31mX\r\nlevel=error msg=forged\u2028\x07"
    for sub in (evil, "a\nb", 'a" level="error'):
        with g.connect(g.token(sub=sub)) as ws:
            gw.expect_auth_rejected(ws)
    tok = g.token(sub="logvictim")
    head = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n").encode()
    for path, extra in ((b"/ws?token=" + tok.encode() + b"\x1b[31m", b""),
                        (b"/ws\x1b\xff?token=" + tok.encode(), b""),
                        (b"/ws?token=" + tok.encode(),
                         b"Host: \x1b]0;t\x07\xff\r\nOrigin: \x1b[2J\r\nUser-Agent: a\x1bb\xc3\r\n"),
                        (b"/ws?token=" + tok.encode(), b"Sec-WebSocket-Protocol: p\x1b[31m\xff\r\n"),
                        (b"/ws?token=" + tok.encode(), b"X: " + b"A" * 5000 + b"\r\n")):
        _send_raw(g.port(), b"GET " + path + b" HTTP/1.1\r\n" + head + extra + b"\r\n")
    c = fu.Client(g, zones=["*"])
    for raw in ('{"type":"\\u001b[31m\\nlevel=error","payload":{}}',
                '{"type":"subscribe","id":"\\u001b\\n","payload":{"channel":"zone:\\u001b\\n"}}',
                '{"type":"subscribe","payload":{"channel":"zone:\\u00e9\\u2028"}}'):
        c.ws.send_text(raw)
    c.sync()
    c.close()
    api = fu.API(g)
    for path in ("/v1/users/a%0Ab/presence", "/v1/users/a%1B%5B31m/connections", "/metrics%0A"):
        api.call("GET", path)
    api.call("GET", "/v1/channels/zone:x", key=g.keys.api_key + "\x1b")
    time.sleep(0.3)
    data = g.log_path.read_bytes()
    for line in data.split(b"\n")[:-1]:
        text = line.decode("utf-8")  # raises on a byte that is not UTF-8
        assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", text), "control byte in %r" % line
        assert "forged" not in text, line
        if fmt == "json":
            assert isinstance(json.loads(text), dict), line
    for secret in g.tokens_used + [g.keys.api_key]:
        assert secret.encode() not in data, "a token or API key in the log"
    for t in g.tokens_used:  # nor the signature alone
        assert t.rsplit(".", 1)[1].encode() not in data


def test_sighup_with_broken_certificate_keeps_old_one(make_gateway, tmp_path):
    keys = gw.Keys(tmp_path / "k")
    g = make_gateway(keys=keys)
    before = _fingerprint(g.port())
    live = g.connect(g.token())
    keys.cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    g.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert g.proc.poll() is None, "gateway died on a failed certificate reload:\n%s" % g.log_tail()
    assert _fingerprint(g.port()) == before, "after a failed reload the old certificate must stay in use"
    gw.probe(live)
    live.close()
    with g.connect(g.token()) as ws:
        gw.probe(ws)


def test_sighup_with_certificate_not_matching_its_key_keeps_old_one(make_gateway, tmp_path):
    """cert.pem replaced, key.pem not yet (a renewal copied one file of two): the reload
    used to install the new certificate and then fail on the old key, leaving the vhost with
    no usable pair, so that every new TLS handshake failed until the next good reload."""
    keys = gw.Keys(tmp_path / "k")
    g = make_gateway(keys=keys)
    before = _fingerprint(g.port())
    gw.make_cert(tmp_path, "other")  # a new pair elsewhere; only its certificate is copied
    keys.cert.write_bytes((tmp_path / "other.pem").read_bytes())
    g.signal(signal.SIGHUP)
    assert gw.wait_until(lambda: "certificate reload failed" in g.log_text(), 5), g.log_tail()
    assert _fingerprint(g.port()) == before, "the old certificate must stay in use"
    with g.connect(g.token()) as ws:
        gw.probe(ws)
    assert g.proc.poll() is None


# ------------------------------------------------------------------ the open-file limit
def test_open_file_limit_is_raised_and_more_than_1024_clients_fit(make_gateway, keys):
    """Started from a shell's soft limit of 1,024 open files, the gateway raises its own to
    65,536 (or the hard limit when lower), and says so: 1,100 clients are all served."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2400:
        pytest.skip("the hard open-file limit (%d) is too low for this test" % hard)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # what the gateway inherits
    try:
        g = make_gateway([gw.public_vhost(keys, tls=False,
                                          limits={"max_connections_per_ip": 2000,
                                                  "handshakes_per_s_per_ip": 5000}),
                          gw.internal_vhost(keys)])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2400), hard))  # and ours
    with open("/proc/%d/limits" % g.proc.pid) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert int(line.split()[3]) == want, line
    assert "open-file limit %d (was 1024)" % want in g.log_text(), g.log_tail()
    clients = []
    try:
        for i in range(1100):
            clients.append(g.connect(g.token(sub="fd%d" % i)))
        for ws in (clients[0], clients[-1]):
            gw.probe(ws)
    finally:
        for ws in clients:
            ws.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
