"""The redis store's configuration: --check connects nothing and reports URL and password
file problems as "file: store: ..."; a password file authenticates every connection; a
wrong password leaves the gateway unready, not dead; a host name that does not resolve
yet is looked up until it does; a database number keeps two
gateways on one server apart (pub/sub included)."""
import time
from pathlib import Path

import pytest

import gw
import wsclient
import redisfix as rf
from test_flow_util import API, Client, flow_vhosts, uid
from test_adversarial_util import SANITIZED

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")


def config_file(tmp_path, keys, store):
    g = gw.Gateway(tmp_path / "g", keys, gw.base_config(keys, flow_vhosts(keys), store=store))
    return g


def test_check_connects_nothing(tmp_path, keys):
    port = gw.free_port()  # nothing listens there
    g = config_file(tmp_path, keys, {"backend": "redis", "url": "redis://127.0.0.1:%d/3" % port})
    r = gw.check_config(g.conf_path)
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr


@pytest.mark.parametrize("content,why", [("", "the first line is empty"),
                                         ("\nsecret\n", "the first line is empty")])
def test_check_refuses_an_empty_password_file(tmp_path, keys, content, why):
    pw = tmp_path / "redis.pw"
    pw.write_text(content)
    g = config_file(tmp_path, keys, {"backend": "redis", "url": "redis://127.0.0.1:6379",
                                     "password_file": str(pw)})
    r = gw.check_config(g.conf_path)
    assert r.returncode != 0, r.stdout
    assert "store: password_file:" in r.stderr and why in r.stderr, r.stderr


def test_check_bounds_a_password_file(tmp_path, keys):
    """The file is read whole, so it is bounded: 64 KiB, the first line the password (what
    follows it is not read for anything). It was read line by line, however large."""
    pw = tmp_path / "redis.pw"
    store = {"backend": "redis", "url": "redis://127.0.0.1:6379", "password_file": str(pw)}
    pw.write_bytes(b"secret\n" + b"#" * (65536 - 7))
    g = config_file(tmp_path, keys, store)
    r = gw.check_config(g.conf_path)
    assert r.returncode == 0, r.stderr
    pw.write_bytes(b"secret\n" + b"#" * (65536 - 6))
    r = gw.check_config(g.conf_path)
    assert r.returncode == 1, r.stdout
    assert "store: password_file: %s: larger than 65536 bytes" % pw in r.stderr, r.stderr


def test_check_refuses_history_max_bytes_with_redis(tmp_path, keys):
    """The budget bounds the memory store's history; Redis keeps each channel's own `size`.
    It was accepted with "redis" and ignored."""
    g = config_file(tmp_path, keys, {"backend": "redis", "url": "redis://127.0.0.1:6379",
                                     "history_max_bytes": 1 << 20})
    r = gw.check_config(g.conf_path)
    assert r.returncode == 1, r.stdout
    assert "store.history_max_bytes: only for \"backend\": \"memory\"" in r.stderr, r.stderr


def test_check_refuses_a_password_in_the_url_and_a_password_file(tmp_path, keys):
    """Both given, the file's won and the URL's was dropped without a word."""
    pw = tmp_path / "redis.pw"
    pw.write_text("secret\n")
    g = config_file(tmp_path, keys, {"backend": "redis", "url": "redis://:other@127.0.0.1:6379",
                                     "password_file": str(pw)})
    r = gw.check_config(g.conf_path)
    assert r.returncode == 1, r.stdout
    assert "store: url[0]: a password in the URL and a password_file" in r.stderr, r.stderr


@pytest.mark.parametrize("url", ["redis://127.0.0.1 :6379/0", "redis://redis\thost:6379",
                                 "redis://[::1 ]:6379", "redis://re\"dis:6379"])
def test_check_refuses_a_host_no_server_can_have(tmp_path, keys, url):
    """A stray space or tab in the host passed --check; the gateway then started and stayed
    unready forever, looking the name up at every retry."""
    g = config_file(tmp_path, keys, {"backend": "redis", "url": url})
    r = gw.check_config(g.conf_path)
    assert r.returncode == 1, r.stdout
    assert "store: url[0]: the host" in r.stderr, r.stderr


@pytest.mark.skipif(not rf.mount_namespace_available(),
                    reason="needs a mount namespace (root) for a private /etc/hosts")
def test_a_host_name_that_does_not_resolve_yet_is_looked_up_until_it_does(
        tmp_path, keys, make_gateway):
    """The gateway's /etc/hosts lacks the name and its resolver asks a DNS server on a
    loopback port nobody listens on (a Redis container whose name is not in DNS yet): the
    gateway starts all the same, unready, and looks the name up at each retry. Once the
    name resolves it connects there and serves."""
    name = "redis.pavilion.test"
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text("127.0.0.1 localhost\n")
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    redis = rf.RedisServer(tmp_path / "redis", host="127.0.0.2").start()
    try:
        g = make_gateway(flow_vhosts(keys), start=False,
                         store={"backend": "redis", "url": "redis://%s:%d" % (name, redis.port)})
        rf.own_etc(g, hosts=hosts, **{"resolv.conf": resolv})
        g.store_address = "127.0.0.2"
        t0 = int(time.time() * 1000) - 5
        g.wait_registered = lambda *a, **k: None  # it cannot register yet
        g.start(timeout=5)
        assert API(g).get("/readyz").status == 503
        with pytest.raises(wsclient.HandshakeRefused) as e:
            g.connect(g.token(sub=uid("early")))
        assert e.value.status == 503
        log = g.log_text()
        assert "cannot resolve %s: " % name in log and "looking it up again" in log, log
        time.sleep(1.5)  # a retry or two without an address
        assert g.proc.poll() is None, g.log_tail()
        hosts.write_text("127.0.0.1 localhost\n127.0.0.2 %s\n" % name)  # same inode
        gw.Gateway.wait_registered(g, t0, timeout=15)
        assert API(g).get("/readyz").status == 200
        with Client(g, zones=["*"]) as c:
            c.subscribe("zone:" + uid("z"))
        log = g.log_text()
        assert "%s resolves to 127.0.0.2" % name in log, g.log_tail()
        assert "connected to %s:%d at 127.0.0.2" % (name, redis.port) in log, g.log_tail()
    finally:
        redis.kill()


@pytest.mark.skipif(not rf.mount_namespace_available(),
                    reason="needs a mount namespace (root) for a private /etc/hosts")
def test_each_address_of_a_host_name_is_tried_in_turn(tmp_path, keys, make_gateway):
    """The name stands for two addresses (the resolver keeps this file's order: 127.0.0.3,
    then 127.0.0.2) and Redis listens only on the second: the first connection is refused,
    the retry goes to the next address. Once connected there, a lost connection is retried
    where it was first."""
    name = "redis.pavilion.test"
    hosts = tmp_path / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() +
                     "\n127.0.0.3 %s\n127.0.0.2 %s\n" % (name, name))
    redis = rf.RedisServer(tmp_path / "redis", host="127.0.0.2").start()
    try:
        g = make_gateway(flow_vhosts(keys), start=False,
                         store={"backend": "redis", "url": "redis://%s:%d" % (name, redis.port)})
        rf.own_etc(g, hosts=hosts)
        g.store_address = "127.0.0.2"
        g.start(timeout=10)
        with Client(g, zones=["*"]) as c:
            c.subscribe("zone:" + uid("z"))
        assert API(g).get("/readyz").status == 200
        log = g.log_text()
        refused = "%s:%d at 127.0.0.3 unavailable" % (name, redis.port)
        connected = "connected to %s:%d at 127.0.0.2" % (name, redis.port)
        assert refused in log and connected in log, g.log_tail()
        assert log.index(refused) < log.index(connected), g.log_tail()
        mark = len(log)
        redis.call("CLIENT", "KILL", "TYPE", "normal")
        redis.call("CLIENT", "KILL", "TYPE", "pubsub")
        deadline = time.monotonic() + 10
        while connected not in g.log_text()[mark:] and time.monotonic() < deadline:
            time.sleep(0.05)
        again = g.log_text()[mark:]
        assert connected in again, g.log_tail()
        assert "at 127.0.0.3" not in again[:again.index(connected)], g.log_tail()
    finally:
        redis.kill()


def test_password_file_authenticates_and_a_wrong_one_stays_unready(make_gateway, keys, tmp_path):
    redis = rf.RedisServer(tmp_path / "redis", extra=["--requirepass", "s3cret pass"]).start()
    try:
        good, bad = tmp_path / "good.pw", tmp_path / "bad.pw"
        good.write_text("s3cret pass\n")
        bad.write_text("nope\n")
        g = make_gateway(flow_vhosts(keys), store={"backend": "redis", "url": redis.url,
                                                   "password_file": str(good)})
        with Client(g, zones=["*"]) as c:
            c.subscribe("zone:" + uid("z"))
        assert API(g).get("/readyz").status == 200
        g2 = make_gateway(flow_vhosts(keys), start=False,
                          store={"backend": "redis", "url": redis.url, "password_file": str(bad)})
        with pytest.raises(AssertionError, match="never registered"):
            g2.start(timeout=3)
        assert g2.proc.poll() is None, "a wrong password must not stop the gateway"
        assert API(g2).get("/readyz").status == 503
        assert "s3cret" not in g.log_text() + g2.log_text() and "nope" not in g2.log_text()
    finally:
        redis.kill()


def test_an_acl_user_authenticates_every_connection(make_gateway, keys, tmp_path):
    """Redis 6 ACL users: "redis://user:password@host" (or "redis://user@host" and the
    password in password_file) sends AUTH user password on the command and the pub/sub
    connection.  The user may touch only keys and channels under "pav:", and the default
    user is off.  A wrong user name leaves the gateway unready, and a name without a
    password is refused at --check."""
    acl = tmp_path / "users.acl"
    acl.write_text("user default off\nuser gw-1 on >s3cret ~pav:* &pav:* +@all\n")
    redis = rf.RedisServer(tmp_path / "redis", extra=["--aclfile", str(acl)]).start()
    host = redis.url[len("redis://"):]
    try:
        pw = tmp_path / "redis.pw"
        pw.write_text("s3cret\n")
        for store in ({"backend": "redis", "url": "redis://gw%%2D1:s3cret@%s/2" % host},
                      {"backend": "redis", "url": "redis://gw-1@%s" % host,
                       "password_file": str(pw)}):
            g = make_gateway(flow_vhosts(keys), store=store)
            z = "zone:" + uid("z")
            with Client(g, zones=["*"]) as c:
                c.subscribe(z)
                assert API(g).publish(z, "tick", {"n": 1}).json["recipients"] == 1
                assert c.wait_for("tick")["payload"] == {"n": 1}
            assert API(g).get("/readyz").status == 200
            assert "s3cret" not in g.log_text()
        g2 = make_gateway(flow_vhosts(keys), start=False,
                          store={"backend": "redis", "url": "redis://gw-2:s3cret@%s" % host})
        with pytest.raises(AssertionError, match="never registered"):
            g2.start(timeout=3)
        assert g2.proc.poll() is None and API(g2).get("/readyz").status == 503
        assert "s3cret" not in g2.log_text()
    finally:
        redis.kill()
    g3 = config_file(tmp_path, keys, {"backend": "redis", "url": "redis://gw-1@%s" % host})
    r = gw.check_config(g3.conf_path)
    assert r.returncode == 1, r.stdout
    assert "store: url[0]: the user name needs a password, in the URL or in password_file" \
        in r.stderr, r.stderr


def test_two_databases_of_one_server_are_two_gateways(make_gateway, keys, tmp_path):
    redis = rf.RedisServer(tmp_path / "redis").start()
    try:
        g1 = make_gateway(flow_vhosts(keys), store=rf.redis_store(redis.url + "/1"))
        g2 = make_gateway(flow_vhosts(keys), store=rf.redis_store(redis.url + "/2"))
        z = "zone:" + uid("z")
        with Client(g1, zones=["*"]) as a, Client(g2, zones=["*"]) as b:
            a.subscribe(z)
            b.subscribe(z)
            r = API(g1).publish(z, "tick", {"n": 1})
            assert r.json["recipients"] == 1, r
            a.wait_for("tick")
            b.sync()
            assert not b.take("tick"), "a publication crossed databases"
            assert API(g2).get("/v1/channels/" + z).json["subscribers"] == 1
    finally:
        redis.kill()


def memory_count(pid, needle):
    """How many times needle is in the process' writable memory (its heap among it)."""
    n = 0
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            f = line.split()
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            if not f[1].startswith("rw"):
                continue
            try:
                mem.seek(lo)
                n += mem.read(hi - lo).count(needle)
            except OSError:  # a mapping that cannot be read ([vvar] and the like)
                pass
    return n


@pytest.mark.skipif(SANITIZED, reason="a sanitized process maps terabytes of shadow memory, "
                    "and its quarantine keeps freed bytes (json-c's copies among them)")
def test_a_password_in_the_url_is_kept_once_by_the_client(make_gateway, keys, tmp_path):
    """Of a password written in store.url, the Redis client keeps the one copy it needs
    to authenticate each (re)connection: the configuration's URL forgets it once the
    client is made, so the gateway's writable memory holds it once, before and after a
    reconnect (which that copy authenticates)."""
    pw = "pw-" + uid("url")
    redis = rf.RedisServer(tmp_path / "redis", extra=["--requirepass", pw]).start()
    host = redis.url[len("redis://"):]
    try:
        g = make_gateway(flow_vhosts(keys), store={"backend": "redis",
                                                   "url": "redis://:%s@%s" % (pw, host)})
        z = "zone:" + uid("z")
        with Client(g, zones=["*"]) as c:
            c.subscribe(z)
            assert API(g).publish(z, "tick", {"n": 1}).json["recipients"] == 1
            c.wait_for("tick")
        assert memory_count(g.proc.pid, pw.encode()) == 1
        # that copy is enough for a reconnect
        redis.kill()
        rf.wait_until(lambda: API(g).get("/readyz").status == 503, what="unready")
        redis = rf.RedisServer(tmp_path / "redis", port=redis.port,
                               extra=["--requirepass", pw]).start()
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, what="ready again")
        assert memory_count(g.proc.pid, pw.encode()) == 1
        assert pw not in g.log_text()
    finally:
        redis.kill()
