"""The redis store over TLS (`rediss://`): two nodes share a Redis that listens on a TLS port
only, with large replies read across many records and a restart of Redis; a certificate that
does not verify (unknown issuer, another host), a missing client certificate or a Redis that
does not speak TLS leaves the node unready and says why; --check reads the TLS files and refuses bad ones as "store: key: ..."."""
import pytest

import gw
import redisfix as rf
from test_flow_util import ALL, API, Client, flow_vhosts, ticks, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")


@pytest.fixture
def certs(tmp_path):
    """The server's certificate (localhost, 127.0.0.1), another one for another host, and a
    client's; each self-signed, so each is its own CA."""
    d = tmp_path / "certs"
    d.mkdir()
    server = gw.make_cert(d, "server")
    other = gw.make_cert(d, "other", cn="other.test", san="DNS:other.test")
    client = gw.make_cert(d, "client", cn="pavilion-gateway", san="DNS:pavilion-gateway")
    return {"server": server, "other": other, "client": client}


def tls_redis(tmp_path, certs, auth_clients=False, cert="server"):
    c, k = certs[cert]
    return rf.RedisServer(tmp_path / "redis", tls={
        "cert": c, "key": k, "ca": certs["client"][0], "auth_clients": auth_clients,
        "client_cert": certs["client"][0], "client_key": certs["client"][1]}).start()


def tls_store(redis, ca, client=None, **over):
    st = rf.redis_store(redis.url, tls_ca_file=str(ca), **over)
    if client:
        st["tls_cert_file"], st["tls_key_file"] = str(client[0]), str(client[1])
    return st


def unready_saying(make_gateway, keys, store, *needles):
    """A gateway on this store never registers, stays alive and unready, and logs needles."""
    g = make_gateway(flow_vhosts(keys), start=False, store=store)
    with pytest.raises(AssertionError, match="never registered"):
        g.start(timeout=3)
    assert g.proc.poll() is None, "a TLS failure must not stop the gateway"
    assert API(g).get("/readyz").status == 503
    log = g.log_text()
    for n in needles:
        assert n in log, "%r not in:\n%s" % (n, g.log_tail())
    return g


def test_two_nodes_share_a_redis_over_tls(make_gateway, keys, tmp_path, certs):
    redis = tls_redis(tmp_path, certs)
    try:
        nodes = rf.Nodes(make_gateway, keys, redis, n=2,
                         store={"tls_ca_file": str(certs["server"][0]),
                                "command_timeout_ms": 500},
                         public_over={"history": {"zone": {"size": 20, "ttl_s": 60}}}).start()
        for g in nodes.gws:
            assert "connected to 127.0.0.1:%d (TLS)" % redis.port in g.log_text(), g.log_tail()
        z = "zone:" + uid("z")
        a, b = Client(nodes[0], **ALL), Client(nodes[1], **ALL)
        epoch = a.subscribe(z)["payload"]["epoch"]
        b.subscribe(z)
        big = "x" * 40000  # ten of them: one reply of ~400 KB, many TLS records
        for i in range(10):
            nodes.api(i % 2).publish(z, "tick", {"n": i, "big": big})
        for c in (a, b):
            got = ticks(c, z, 10)
            assert [m["payload"]["n"] for m in got] == list(range(10)), got
        with Client(nodes[1], **ALL) as late:
            ack = late.subscribe(z, recover={"offset": 0, "epoch": epoch})["payload"]
            assert ack["recovered"] is True and ack["offset"] == 10, ack
            got = ticks(late, z, 10)
            assert [m["offset"] for m in got] == list(range(1, 11)), got
            assert all(m["payload"]["big"] == big for m in got)
        # Redis restarted (empty): the nodes come back over TLS, new connections and all
        redis.restart_empty()
        for c in (a, b):
            c.wait_for("resync", timeout=10)
        rf.wait_until(lambda: all(nodes.api(i).get("/readyz").status == 200 for i in range(2)),
                      10, what="/readyz 200 after the restart")
        r = nodes.api(1).publish(z, "tick", {"n": 10}).json
        assert r["recipients"] == 2 and r["offset"] == 1, r
        for c in (a, b):
            assert c.wait_for("tick", timeout=5, n=10)["offset"] == 1
        a.close()
        b.close()
    finally:
        redis.kill()


@pytest.mark.parametrize("case", ["unknown_issuer", "another_host"])
def test_a_server_certificate_that_does_not_verify_keeps_the_node_unready(
        make_gateway, keys, tmp_path, certs, case):
    if case == "unknown_issuer":  # the gateway trusts another certificate
        redis, ca, why = tls_redis(tmp_path, certs), certs["other"][0], "self-signed certificate"
    else:  # a valid certificate, for other.test: not for 127.0.0.1
        redis, ca, why = tls_redis(tmp_path, certs, cert="other"), certs["other"][0], \
            "IP address mismatch"
    try:
        unready_saying(make_gateway, keys, tls_store(redis, ca),
                       "TLS: the server's certificate: %s" % why)
    finally:
        redis.kill()


def test_a_rediss_url_to_a_plain_redis_says_so(make_gateway, keys, tmp_path, certs):
    """A plain Redis waits for the end of a line that a ClientHello never sends: the handshake
    runs into the connect deadline, and the log names the likely cause."""
    redis = rf.RedisServer(tmp_path / "redis").start()
    try:
        store = rf.redis_store("rediss://127.0.0.1:%d" % redis.port,
                               tls_ca_file=str(certs["server"][0]), command_timeout_ms=500)
        unready_saying(make_gateway, keys, store,
                       "TLS handshake timed out (does the server speak TLS?)")
    finally:
        redis.kill()


def test_a_server_that_asks_for_a_client_certificate(make_gateway, keys, tmp_path, certs):
    redis = tls_redis(tmp_path, certs, auth_clients=True)
    try:
        unready_saying(make_gateway, keys, tls_store(redis, certs["server"][0]), "TLS: ")
        g = make_gateway(flow_vhosts(keys),
                         store=tls_store(redis, certs["server"][0], client=certs["client"]))
        with Client(g, **ALL) as c:
            z = "zone:" + uid("z")
            c.subscribe(z)
            API(g).publish(z, "tick", {"n": 1})
            c.wait_for("tick", n=1)
    finally:
        redis.kill()


# ------------------------------------------------------------------ --check
def store_config(tmp_path, keys, store):
    return gw.Gateway(tmp_path / "g", keys,
                      gw.base_config(keys, flow_vhosts(keys), store=store)).conf_path


def test_check_reads_the_tls_files_and_connects_nothing(tmp_path, keys, certs):
    port = gw.free_port()  # nothing listens there
    p = store_config(tmp_path, keys, {"backend": "redis", "url": "rediss://127.0.0.1:%d" % port,
                                      "tls_ca_file": str(certs["server"][0]),
                                      "tls_cert_file": str(certs["client"][0]),
                                      "tls_key_file": str(certs["client"][1])})
    r = gw.check_config(p)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr


def test_check_refuses_bad_tls_settings(tmp_path, keys, certs):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    url = "rediss://127.0.0.1:6379"
    ca, client, other = str(certs["server"][0]), certs["client"], certs["other"]
    cases = [
        ({"url": "redis://127.0.0.1:6379", "tls_ca_file": ca},
         "tls_ca_file", "only with a rediss:// URL"),
        ({"url": url, "tls_cert_file": str(client[0])},
         "tls_key_file", 'required with "tls_cert_file"'),
        ({"url": url, "tls_ca_file": str(junk)}, "tls_ca_file: %s" % junk,
         "no usable PEM certificates"),
        ({"url": url, "tls_cert_file": str(junk), "tls_key_file": str(client[1])},
         "tls_cert_file: %s" % junk, "not a usable PEM certificate chain"),
        ({"url": url, "tls_cert_file": str(client[0]), "tls_key_file": str(other[1])},
         "tls_key_file: %s" % other[1], "mismatch"),  # OpenSSL's "key values mismatch"
        ({"url": url, "tls_ca_file": str(tmp_path / "missing.pem")}, "tls_ca_file",
         "cannot read"),
    ]
    for i, (store, key, why) in enumerate(cases):
        d = tmp_path / ("c%d" % i)
        d.mkdir()
        p = store_config(d, keys, dict(store, backend="redis"))
        r = gw.check_config(p)
        assert r.returncode == 1, (store, r.stdout)
        assert "store" in r.stderr and key in r.stderr and why in r.stderr, (store, r.stderr)
        assert "Traceback" not in r.stderr
