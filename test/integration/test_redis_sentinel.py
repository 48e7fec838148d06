"""The redis store behind Redis Sentinel: a gateway asks the sentinels where the master
is, follows a failover (the master SIGKILLed, its replica promoted) with no restart, also
with a password_file, an ACL user on the master and a password (and ACL user) on the
sentinels; a sentinel that refuses the gateway's AUTH, or wants one it is not given, is
left for the next one and said in the log, without the password; a replica a sentinel
names is left once ROLE says so, a master demoted under it at its first READONLY; a
SENTINEL FAILOVER of a healthy master is followed at the sentinel's +switch-master (and a
lost subscription made again, a silent sentinel's left for the next and not asked
first); a sentinel's name is looked up again after a failed attempt, also one that did
not resolve at start, and its addresses are tried in turn; TLS to the sentinels and masters, each
certificate checked for the address used; and --check refuses a sentinel configuration
it could not use, as "file: key: reason".

Real processes on loopback: a master, its replica (replicaof) and one sentinel (quorum 1,
down-after-milliseconds 1000, failover-timeout 3000), a second one where said."""
import contextlib
import re
import socket
import threading
import time
from pathlib import Path

import pytest

import gw
import redisfix as rf
from test_flow_util import ALL, API, Client, flow_vhosts, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")

MASTER = "pavilion"


class Sentinel(rf.RedisServer):
    """redis-server --sentinel watching one master: it rewrites its own file.  password
    (and master_user): what it authenticates to the master with; requirepass: its own
    password; users: ACL lines of its own ("name on >pw +@all")."""

    def __init__(self, workdir, master, password=None, master_user=None, requirepass=None,
                 users=(), tls=None):
        super().__init__(workdir, tls=tls)
        self.requirepass = requirepass
        self.conf = self.dir / ("sentinel-%d.conf" % self.port)
        self.conf.write_text(
            self._port_lines() + "bind 127.0.0.1\ndir %s\n"
            "sentinel monitor %s 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 3000\n"
            % (self.dir, MASTER, master.port, MASTER, MASTER)
            + ("sentinel auth-pass %s %s\n" % (MASTER, password) if password else "")
            + ("sentinel auth-user %s %s\n" % (MASTER, master_user) if master_user else "")
            + ("requirepass %s\n" % requirepass if requirepass else "")
            + "".join("user %s\n" % u for u in users))

    def _port_lines(self):
        """A plain port, or (tls) a TLS port only, speaking TLS to the servers too."""
        t = self.tls
        if not t:
            return "port %d\n" % self.port
        return ("port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\n"
                "tls-ca-cert-file %s\ntls-auth-clients %s\ntls-replication yes\n"
                % (self.port, t["cert"], t["key"], t["ca"],
                   "yes" if t.get("auth_clients") else "no"))

    def client(self, db=0):
        """The fixture's own questions: with the sentinel's password, if it has one."""
        return rf.RespClient(self.port, password=self.requirepass, host=self.host,
                             tls=self._client_tls())

    def start(self, timeout=10.0):
        self.extra = []
        self._log = open(self.log_path, "ab")
        self.proc = rf.subprocess.Popen([rf.REDIS_SERVER, str(self.conf), "--sentinel"],
                                        stdin=rf.subprocess.DEVNULL, stdout=self._log,
                                        stderr=self._log)
        rf.wait_until(self._answers, timeout, what="sentinel up")
        return self

    def _answers(self):
        try:
            return self.call("PING") == "PONG"
        except OSError:
            return False

    def master_port(self):
        addr = self.call("SENTINEL", "get-master-addr-by-name", MASTER)
        return int(addr[1]) if addr else None

    def knows_a_replica(self):
        return any("s_down" not in dict(zip(r[::2], r[1::2])).get("flags", "")
                   for r in self.call("SENTINEL", "replicas", MASTER))


def call(server, *args, password=None, user=None):
    c = rf.RespClient(server.port, password=password, user=user, tls=server._client_tls())
    try:
        return c.call(*args)
    finally:
        c.close()


def replication_up(replica, password=None, user=None):
    return "master_link_status:up" in call(replica, "INFO", "replication", password=password,
                                           user=user)


def server_auth(password, user):
    """redis-server arguments: the default user's password, or (user) the default user
    off and an ACL user of its own, which the replica also replicates with."""
    if not password:
        return []
    if not user:
        return ["--requirepass", password, "--masterauth", password]
    return ["--user", "default", "off", "--user", user, "on", ">" + password, "~*", "&*",
            "+@all", "--masteruser", user, "--masterauth", password]


def start_cluster(tmp_path, password=None, user=None, tls=None, **sentinel):
    """A master, its replica and a sentinel watching them, each killed by the caller.
    password (and user): the servers'; tls: {"master": .., "replica": .., "sentinel": ..},
    each a RedisServer tls (TLS ports only, replication over TLS); sentinel: Sentinel's own
    settings."""
    auth = server_auth(password, user)
    tls = tls or {}
    auth += ["--tls-replication", "yes"] if tls else []
    started = [rf.RedisServer(tmp_path / "master", extra=auth, tls=tls.get("master")).start()]
    master = started[0]
    try:
        started.append(rf.RedisServer(tmp_path / "replica", tls=tls.get("replica"), extra=auth + [
            "--replicaof", "127.0.0.1", str(master.port)]).start())
        rf.wait_until(lambda: replication_up(started[1], password, user), 10,
                      what="replica in sync")
        started.append(Sentinel(tmp_path / "sentinel", master, password, user,
                                tls=tls.get("sentinel"), **sentinel).start())
        rf.wait_until(started[2].knows_a_replica, 20, step=0.1,
                      what="sentinel sees the replica")
    except BaseException:
        for p in started:
            p.kill()
        raise
    return started


@pytest.fixture
def cluster(tmp_path):
    started = start_cluster(tmp_path)
    yield started
    for p in reversed(started):
        p.kill()


def sentinel_store(sentinel, sen=None, **over):
    """sen: more of store.sentinel (or other addresses); over: more of store."""
    s = {"backend": "redis",
         "sentinel": {"addresses": ["127.0.0.1:%d" % sentinel.port], "master": MASTER}}
    s["sentinel"].update(sen or {})
    s.update(over)
    return s


def sentinel_gateway(make_gateway, keys, sentinel, **store):
    g = make_gateway(vhosts=flow_vhosts(keys), store=sentinel_store(sentinel, **store),
                     log={"level": "info", "format": "text"})
    rf.wait_until(lambda: API(g).get("/readyz").status == 200, 10, what="readyz")
    return g


def masters_taken(g):
    """The master ports the gateway logged taking from a sentinel, in order."""
    return [int(p) for p in re.findall(r"master %s is at 127\.0\.0\.1:(\d+)" % MASTER,
                                       g.log_text())]


def kill_master_and_follow(g, master, replica, subscriber=None):
    """SIGKILL the master: the gateway takes the promoted replica (the subscriber's
    connection told "resync") and is ready again."""
    master.kill()
    rf.wait_until(lambda: masters_taken(g)[-1:] == [replica.port], 20, step=0.1,
                  what="the gateway takes the promoted replica")
    if subscriber is not None:
        subscriber.wait_for("resync", timeout=15)
    rf.wait_until(lambda: API(g).get("/readyz").status == 200, 15, what="readyz")


def test_gateway_finds_the_master_through_the_sentinel_and_delivers(make_gateway, keys,
                                                                    cluster):
    master, replica, sentinel = cluster
    g = sentinel_gateway(make_gateway, keys, sentinel)
    assert masters_taken(g) == [master.port], g.log_tail()
    z = "zone:" + uid("z")
    a = Client(g, **ALL)
    a.subscribe(z)
    r = API(g).publish(z, "tick", {"n": 1})
    assert r.json["recipients"] == 1, r
    a.wait_for("tick", timeout=5, n=1)
    # the gateway's keys are on the master (and replicated), none written elsewhere
    assert master.keys("pav:*"), "nothing written to the master"
    a.close()


def test_killed_master_is_replaced_by_the_promoted_replica(make_gateway, keys, cluster):
    master, replica, sentinel = cluster
    g = sentinel_gateway(make_gateway, keys, sentinel, command_timeout_ms=500)
    z = "zone:" + uid("z")
    a = Client(g, **ALL)
    a.subscribe(z)
    API(g).publish(z, "tick", {"n": 1})
    a.wait_for("tick", timeout=5)
    master.kill()  # SIGKILL
    t0 = time.monotonic()
    rf.wait_until(lambda: sentinel.master_port() == replica.port, 20, step=0.1,
                  what="sentinel promotes the replica")
    # the subscriber of before is served again: resync, then live publications
    a.wait_for("resync", timeout=max(1.0, 20 - (time.monotonic() - t0)))
    rf.wait_until(lambda: API(g).get("/readyz").status == 200, 20 - (time.monotonic() - t0),
                  what="readyz after the failover")
    assert time.monotonic() - t0 < 20
    assert masters_taken(g)[-1] == replica.port, g.log_tail()
    assert replica.call("ROLE")[0] == "master"
    r = API(g).publish(z, "tick", {"n": 2})
    assert r.json["recipients"] == 1, r
    a.wait_for("tick", timeout=5, n=2)
    assert g.proc.poll() is None, g.log_tail()
    a.close()


def test_password_file_authenticates_at_every_master(make_gateway, keys, tmp_path):
    """password_file is the masters' password (the sentinels are asked without one)."""
    master, replica, sentinel = start_cluster(tmp_path, password="s3cret-sentinel")
    try:
        pw = tmp_path / "redis.pw"
        pw.write_text("s3cret-sentinel\n")
        g = sentinel_gateway(make_gateway, keys, sentinel, password_file=str(pw),
                             command_timeout_ms=500)
        assert masters_taken(g) == [master.port], g.log_tail()
        kill_master_and_follow(g, master, replica)
        assert call(replica, "ROLE", password="s3cret-sentinel")[0] == "master"
        assert "s3cret-sentinel" not in g.log_text()
    finally:
        for p in (sentinel, replica, master):
            p.kill()


def secret_file(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text + "\n")
    p.chmod(0o600)
    return str(p)


def unready_saying(make_gateway, keys, store, *needles, timeout=10):
    """A gateway on this store stays alive and unready until its log holds every needle."""
    g = make_gateway(vhosts=flow_vhosts(keys), store=store,
                     log={"level": "info", "format": "text"})
    rf.wait_until(lambda: all(n in g.log_text() for n in needles), timeout, step=0.1,
                  what="%r in the log" % (needles,))
    assert API(g).get("/readyz").status == 503
    assert g.proc.poll() is None, g.log_tail()
    return g


SENTINEL_PW = "s3cret-of-the-sentinel"


def test_a_sentinel_with_a_password_is_asked_with_it(make_gateway, keys, tmp_path):
    master, replica, sentinel = start_cluster(tmp_path, requirepass=SENTINEL_PW)
    try:
        g = sentinel_gateway(make_gateway, keys, sentinel, command_timeout_ms=500, sen={
            "sentinel_password_file": secret_file(tmp_path, "sentinel.pw", SENTINEL_PW)})
        assert masters_taken(g) == [master.port], g.log_tail()
        assert SENTINEL_PW not in g.log_text()
    finally:
        for p in (sentinel, replica, master):
            p.kill()


def test_a_sentinel_that_refuses_the_password_is_left_for_the_next(make_gateway, keys,
                                                                  tmp_path):
    """The first sentinel has another password: its WRONGPASS is logged (not the password)
    and the second one, whose password the gateway has, gives the master."""
    master, replica, good = start_cluster(tmp_path, requirepass=SENTINEL_PW)
    other = Sentinel(tmp_path / "other", master, requirepass="not-" + SENTINEL_PW).start()
    try:
        g = sentinel_gateway(make_gateway, keys, good, sen={
            "addresses": ["127.0.0.1:%d" % other.port, "127.0.0.1:%d" % good.port],
            "sentinel_password_file": secret_file(tmp_path, "sentinel.pw", SENTINEL_PW)})
        log = g.log_text()
        assert masters_taken(g) == [master.port], g.log_tail()
        assert re.search(r"sentinel 127\.0\.0\.1:%d: AUTH refused \(sentinel_user, "
                         r"sentinel_password_file\): WRONGPASS" % other.port, log), g.log_tail()
        assert SENTINEL_PW not in log
    finally:
        for p in (other, good, replica, master):
            p.kill()


@pytest.mark.parametrize("case", ["wrong", "missing"])
def test_a_sentinel_password_wrong_or_missing_keeps_the_node_unready(make_gateway, keys,
                                                                    tmp_path, case):
    master, replica, sentinel = start_cluster(tmp_path, requirepass=SENTINEL_PW)
    try:
        over = {}
        if case == "wrong":
            over["sentinel_password_file"] = secret_file(tmp_path, "sentinel.pw", "nope-pw")
            why = "sentinel 127.0.0.1:%d: AUTH refused" % sentinel.port
        else:
            why = ("sentinel 127.0.0.1:%d: it asks for a password (NOAUTH): see "
                   "sentinel.sentinel_password_file" % sentinel.port)
        g = unready_saying(make_gateway, keys, sentinel_store(sentinel, sen=over),
            why, "no sentinel gave the address of master %s" % MASTER)
        assert "nope-pw" not in g.log_text()
        assert masters_taken(g) == []
    finally:
        for p in (sentinel, replica, master):
            p.kill()


def test_acl_users_on_the_master_and_the_sentinel_through_a_failover(make_gateway, keys,
                                                                     tmp_path):
    """The master's default user is off: only the ACL user gw may in, with password_file;
    the sentinel's user watcher is asked with sentinel_password_file.  Killed, the master
    is replaced by the promoted replica, reached with the same user."""
    master, replica, sentinel = start_cluster(
        tmp_path, password="gw-pw-1", user="gw", requirepass=SENTINEL_PW,
        users=["watcher on >watcher-pw-1 +sentinel|get-master-addr-by-name +subscribe "
               "&+switch-master"])
    try:
        g = sentinel_gateway(
            make_gateway, keys, sentinel, command_timeout_ms=500,
            password_file=secret_file(tmp_path, "redis.pw", "gw-pw-1"),
            sen={"master_user": "gw", "sentinel_user": "watcher",
                 "sentinel_password_file": secret_file(tmp_path, "sentinel.pw",
                                                       "watcher-pw-1")})
        assert masters_taken(g) == [master.port], g.log_tail()
        # the user's few rights cover the +switch-master subscription too
        rf.wait_until(lambda: "subscribed to +switch-master" in g.log_text(), 5,
                      what="the sentinel watched")
        z = "zone:" + uid("z")
        a = Client(g, **ALL)
        a.subscribe(z)
        kill_master_and_follow(g, master, replica, a)
        assert call(replica, "ROLE", password="gw-pw-1", user="gw")[0] == "master"
        assert "NOPERM" not in g.log_text(), g.log_tail()
        r = API(g).publish(z, "tick", {"n": 1})
        assert r.json["recipients"] == 1, r
        a.wait_for("tick", timeout=5, n=1)
        a.close()
        log = g.log_text()
        for pw in ("gw-pw-1", "watcher-pw-1", SENTINEL_PW):
            assert pw not in log
    finally:
        for p in (sentinel, replica, master):
            p.kill()


def test_a_master_acl_user_with_a_wrong_password_keeps_the_node_unready(make_gateway, keys,
                                                                        tmp_path):
    master, replica, sentinel = start_cluster(tmp_path, password="gw-pw-1", user="gw")
    try:
        g = unready_saying(make_gateway, keys, sentinel_store(
            sentinel, password_file=secret_file(tmp_path, "redis.pw", "nope-pw"),
            sen={"master_user": "gw"}), "WRONGPASS")
        assert masters_taken(g)[:1] == [master.port], g.log_tail()
        assert "nope-pw" not in g.log_text()
    finally:
        for p in (sentinel, replica, master):
            p.kill()

# ------------------------------------------------------------------ TLS
@pytest.fixture
def certs(tmp_path):
    """Self-signed certificates (each its own CA): "server" for localhost and 127.0.0.1,
    "other" for other.test only, "client" the gateway's; "bundle" holds the three, what
    the servers trust (their clients, each other)."""
    d = tmp_path / "certs"
    d.mkdir()
    out = {"server": gw.make_cert(d, "server"),
           "other": gw.make_cert(d, "other", cn="other.test", san="DNS:other.test"),
           "client": gw.make_cert(d, "client", cn="pavilion-gateway",
                                  san="DNS:pavilion-gateway")}
    out["bundle"] = d / "bundle.pem"
    out["bundle"].write_text("".join(out[n][0].read_text() for n in ("server", "other",
                                                                      "client")))
    return out


def server_tls(certs, name="server"):
    """A server's TLS settings: certificate `name`, client certificates asked for."""
    c, k = certs[name]
    return {"cert": c, "key": k, "ca": certs["bundle"], "auth_clients": True,
            "client_cert": certs["client"][0], "client_key": certs["client"][1]}


def tls_cluster(tmp_path, certs, master="server", sentinel="server", **kw):
    return start_cluster(tmp_path, tls={"master": server_tls(certs, master),
                                        "replica": server_tls(certs),
                                        "sentinel": server_tls(certs, sentinel)}, **kw)


def tls_over(certs):
    """store keys for TLS behind sentinels: the CA, the client certificate."""
    return {"sen": {"tls": True}, "tls_ca_file": str(certs["server"][0]),
            "tls_cert_file": str(certs["client"][0]),
            "tls_key_file": str(certs["client"][1])}


def test_sentinel_and_master_over_tls_through_a_failover(make_gateway, keys, tmp_path, certs):
    """TLS ports only, client certificates asked for: the gateway asks the sentinel and
    speaks to the master over TLS (with a password on the sentinel too), and follows the
    failover to the promoted replica, over TLS."""
    master, replica, sentinel = tls_cluster(tmp_path, certs, requirepass=SENTINEL_PW)
    try:
        over = tls_over(certs)
        over["sen"]["sentinel_password_file"] = secret_file(tmp_path, "s.pw", SENTINEL_PW)
        g = sentinel_gateway(make_gateway, keys, sentinel, command_timeout_ms=500, **over)
        assert masters_taken(g) == [master.port], g.log_tail()
        assert "connected to 127.0.0.1:%d (TLS)" % master.port in g.log_text(), g.log_tail()
        z = "zone:" + uid("z")
        a = Client(g, **ALL)
        a.subscribe(z)
        kill_master_and_follow(g, master, replica, a)
        assert "connected to 127.0.0.1:%d (TLS)" % replica.port in g.log_text(), g.log_tail()
        r = API(g).publish(z, "tick", {"n": 1})
        assert r.json["recipients"] == 1, r
        a.wait_for("tick", timeout=5, n=1)
        a.close()
        assert SENTINEL_PW not in g.log_text()
    finally:
        for p in (sentinel, replica, master):
            p.kill()


@pytest.mark.parametrize("case", ["sentinel", "master"])
def test_a_certificate_not_for_the_address_used_keeps_the_node_unready(
        make_gateway, keys, tmp_path, certs, case):
    """The sentinel's certificate must name the sentinel's configured address, the
    master's the address the sentinel gave: a valid certificate of other.test is not
    taken for 127.0.0.1.  (The gateway trusts both certificates here.)"""
    master, replica, sentinel = tls_cluster(tmp_path, certs, **{case: "other"})
    try:
        over = tls_over(certs)
        over["tls_ca_file"] = str(certs["bundle"])
        over["command_timeout_ms"] = 500
        if case == "sentinel":
            why = "sentinel 127.0.0.1:%d: TLS: the server's certificate: IP address " \
                  "mismatch" % sentinel.port
        else:
            why = "TLS: the server's certificate: IP address mismatch"
        g = unready_saying(make_gateway, keys, sentinel_store(sentinel, **over), why)
        assert masters_taken(g) == ([] if case == "sentinel" else [master.port]), g.log_tail()
    finally:
        for p in (sentinel, replica, master):
            p.kill()


def test_sentinel_tls_against_plain_sentinels_says_so(make_gateway, keys, tmp_path, certs,
                                                      cluster):
    master, replica, sentinel = cluster
    over = tls_over(certs)
    over["command_timeout_ms"] = 500
    unready_saying(make_gateway, keys, sentinel_store(sentinel, **over),
                   "sentinel 127.0.0.1:%d: TLS handshake timed out (does the server speak "
                   "TLS?)" % sentinel.port)


def test_check_takes_the_tls_files_with_sentinel_tls(tmp_path, keys, certs):
    r = check(tmp_path, keys, {"backend": "redis", "sentinel": with_sentinel(tls=True),
                               "tls_ca_file": str(certs["server"][0]),
                               "tls_cert_file": str(certs["client"][0]),
                               "tls_key_file": str(certs["client"][1])})
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    r = check(tmp_path / "junk", keys, {"backend": "redis", "sentinel": with_sentinel(tls=True),
                                        "tls_ca_file": str(junk)})
    assert r.returncode == 1, r.stdout
    assert "tls_ca_file: %s: no usable PEM certificates" % junk in r.stderr, r.stderr



# ------------------------------------------------------------------ +switch-master
def failover(sentinel, timeout=15.0):
    """SENTINEL FAILOVER of a healthy master. A sentinel answers NOGOODSLAVE until it has
    a replica it may promote: one whose INFO it has read and that answered its last PING,
    which may come a moment after it first lists the replica."""
    def asked():
        try:
            return sentinel.call("SENTINEL", "FAILOVER", MASTER) == "OK"
        except rf.RedisError as e:
            if "NOGOODSLAVE" not in str(e):
                raise
            return False
    rf.wait_until(asked, timeout, step=0.2, what="a failover the sentinel takes")


def down_lines(g):
    """The store's "... down: why" lines, in order."""
    return [l for l in g.log_text().splitlines() if re.search(r"redis: \S+ down: ", l)]


def test_a_failover_is_noticed_at_the_sentinels_switch_master(make_gateway, keys, cluster):
    """SENTINEL FAILOVER of a healthy master: the gateway hears +switch-master on its
    subscription to the sentinel and moves to the promoted replica at once, before the
    old master's connection breaks (the sentinel kills its clients when it demotes it)
    or answers READONLY."""
    master, replica, sentinel = cluster
    g = sentinel_gateway(make_gateway, keys, sentinel)
    rf.wait_until(lambda: "sentinel 127.0.0.1:%d: subscribed to +switch-master"
                  % sentinel.port in g.log_text(), 5, what="the sentinel watched")
    z = "zone:" + uid("z")
    a = Client(g, **ALL)
    a.subscribe(z)
    failover(sentinel)
    rf.wait_until(lambda: masters_taken(g)[-1:] == [replica.port], 15, step=0.05,
                  what="the gateway takes the promoted replica")
    down = down_lines(g)
    assert down and ("down: sentinel 127.0.0.1:%d: +switch-master: master %s is now at "
                     "127.0.0.1:%d" % (sentinel.port, MASTER, replica.port)) in down[0], \
        g.log_tail()
    a.wait_for("resync", timeout=10)
    rf.wait_until(lambda: API(g).get("/readyz").status == 200, 10, what="readyz")
    r = API(g).publish(z, "tick", {"n": 1})
    assert r.json["recipients"] == 1, r
    a.wait_for("tick", timeout=5, n=1)
    a.close()
    assert replica.call("ROLE")[0] == "master"
    assert "READONLY" not in g.log_text(), g.log_tail()


def test_a_lost_switch_master_subscription_is_made_again(make_gateway, keys, cluster):
    """The sentinel drops the subscription's connection: the gateway says so, stays up
    (the fallback: a failover is noticed when the master fails) and subscribes again."""
    master, replica, sentinel = cluster
    g = sentinel_gateway(make_gateway, keys, sentinel)
    rf.wait_until(lambda: g.log_text().count("subscribed to +switch-master") == 1, 5,
                  what="the sentinel watched")
    assert sentinel.call("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    rf.wait_until(lambda: "+switch-master subscription lost" in g.log_text(), 5,
                  what="the loss said")
    rf.wait_until(lambda: g.log_text().count("subscribed to +switch-master") == 2, 10,
                  what="subscribed again")
    assert API(g).get("/readyz").status == 200
    assert down_lines(g) == [], g.log_tail()
    # and it still works: a failover is noticed through it
    failover(sentinel)
    rf.wait_until(lambda: masters_taken(g)[-1:] == [replica.port], 15, step=0.05,
                  what="the gateway takes the promoted replica")
    assert "+switch-master: master %s is now at" % MASTER in down_lines(g)[0], g.log_tail()


class FakeSentinel:
    """A sentinel of our own on loopback: each SENTINEL get-master-addr-by-name is answered
    with the next of `ports` (the last one then for good), anything else with an error.
    host: the loopback address it listens on."""

    def __init__(self, ports, host="127.0.0.1"):
        self.ports = list(ports)
        self.asked = 0
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _answer(self, conn):
        f = conn.makefile("rb")
        while True:
            line = f.readline()
            if not line.startswith(b"*"):
                return
            args = []
            for _ in range(int(line[1:])):
                n = int(f.readline()[1:])
                args.append(f.read(n + 2)[:n].decode())
            if [a.lower() for a in args[:2]] == ["sentinel", "get-master-addr-by-name"]:
                port = str(self.ports[min(self.asked, len(self.ports) - 1)])
                self.asked += 1
                conn.sendall(b"*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n"
                             % (len(port), port.encode()))
            else:
                conn.sendall(b"-ERR not here\r\n")

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._answer(conn)
                except (OSError, ValueError):
                    pass

    def close(self):
        self.sock.close()


def gateway_asking(make_gateway, keys, *ports):
    """A gateway whose sentinels are these loopback ports, in this order, once ready."""
    g = make_gateway(vhosts=flow_vhosts(keys), log={"level": "info", "format": "text"},
                     store={"backend": "redis", "sentinel": {
                         "addresses": ["127.0.0.1:%d" % p for p in ports], "master": MASTER}})
    rf.wait_until(lambda: API(g).get("/readyz").status == 200, 15, what="readyz")
    return g


def test_a_watch_the_answering_sentinel_refuses_moves_to_the_next(make_gateway, keys,
                                                                   cluster):
    """The sentinel that named the master will not take the +switch-master subscription (a
    fake one, that answers only the question): the next try goes to the next sentinel,
    whose +switch-master is then followed."""
    master, replica, sentinel = cluster
    fake = FakeSentinel([master.port, replica.port])  # the second answer is the promoted one
    try:
        g = gateway_asking(make_gateway, keys, fake.port, sentinel.port)
        assert "sentinel 127.0.0.1:%d: master %s is at 127.0.0.1:%d" % (
            fake.port, MASTER, master.port) in g.log_text(), g.log_tail()
        rf.wait_until(lambda: "sentinel 127.0.0.1:%d: subscribed to +switch-master"
                      % sentinel.port in g.log_text(), 10, what="the next sentinel watched")
        assert "sentinel 127.0.0.1:%d: +switch-master subscription lost" % fake.port \
            in g.log_text(), g.log_tail()
        failover(sentinel)
        rf.wait_until(lambda: masters_taken(g)[-1:] == [replica.port], 15, step=0.05,
                      what="the gateway takes the promoted replica")
        assert "+switch-master: master %s is now at" % MASTER in down_lines(g)[0], g.log_tail()
    finally:
        fake.close()


@pytest.fixture
def two_sentinels(cluster, tmp_path):
    """The cluster with a second sentinel watching the same master."""
    master, replica, first = cluster
    second = Sentinel(tmp_path / "sentinel2", master).start()
    try:
        rf.wait_until(second.knows_a_replica, 20, step=0.1,
                      what="the second sentinel sees the replica")
        yield master, replica, first, second
    finally:
        second.kill()


def watched_port(g):
    """The port of the sentinel the gateway last subscribed to +switch-master on."""
    ports = re.findall(r"sentinel 127\.0\.0\.1:(\d+): subscribed to \+switch-master",
                       g.log_text())
    return int(ports[-1]) if ports else None


def lines_after(g, needle):
    """The log lines after the first one holding needle."""
    lines = g.log_text().splitlines()
    at = next(i for i, l in enumerate(lines) if needle in l)
    return lines[at + 1:]


@contextlib.contextmanager
def watch_moved_off_a_frozen_sentinel(g, first, second):
    """Stops (SIGSTOP) the sentinel the gateway's watch is on and waits until the watch
    is on the other one; yields (the stopped one, the other) and resumes the stopped one
    on the way out."""
    rf.wait_until(lambda: watched_port(g) is not None, 5, what="a sentinel watched")
    watched = first if watched_port(g) == first.port else second
    other = second if watched is first else first
    watched.freeze()
    try:
        rf.wait_until(lambda: watched_port(g) == other.port, 15,
                      what="the other sentinel watched")
        yield watched, other
    finally:
        watched.thaw()


def test_a_silent_watched_sentinel_is_left_for_the_next(make_gateway, keys, two_sentinels):
    """The sentinel the watch is on is stopped (SIGSTOP: its connections stay open and
    nothing answers): the watch's check (its SUBSCRIBE again) goes unanswered, the gateway
    says so and subscribes to the other sentinel, whose SENTINEL FAILOVER it then follows
    at +switch-master, the old master healthy all along.  The sentinels are then asked
    from the one that announced the switch: the silent one, which had answered last
    before, is not waited for."""
    master, replica, first, second = two_sentinels
    g = gateway_asking(make_gateway, keys, first.port, second.port)
    with watch_moved_off_a_frozen_sentinel(g, first, second) as (watched, other):
        assert ("sentinel 127.0.0.1:%d: +switch-master subscription lost (its check "
                "unanswered" % watched.port) in g.log_text(), g.log_tail()
        assert API(g).get("/readyz").status == 200
        assert down_lines(g) == [], g.log_tail()
        failover(other)
        rf.wait_until(lambda: masters_taken(g)[-1:] == [replica.port], 20, step=0.05,
                      what="the gateway takes the promoted replica")
        down = down_lines(g)
        assert down and ("down: sentinel 127.0.0.1:%d: +switch-master: master %s is now at "
                         "127.0.0.1:%d" % (other.port, MASTER, replica.port)) in down[0], \
            g.log_tail()
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, 15, what="readyz")
        assert "READONLY" not in g.log_text(), g.log_tail()
        after = lines_after(g, "+switch-master: master %s is now at" % MASTER)
        asked = [l for l in after if re.search(r"redis: sentinel 127\.0\.0\.1:\d+: ", l)]
        assert asked and "sentinel 127.0.0.1:%d: master %s is at 127.0.0.1:%d" % (
            other.port, MASTER, replica.port) in asked[0], g.log_tail()


def test_after_a_lost_watch_the_next_sentinel_is_asked_first(make_gateway, keys,
                                                             two_sentinels):
    """The sentinel that named the master (and so is watched) is stopped, and the watch
    moves to the other one.  When the node then loses the master's connections, the
    sentinels are asked from the other one: the silent one is not waited for."""
    master, replica, first, second = two_sentinels
    g = gateway_asking(make_gateway, keys, first.port, second.port)
    with watch_moved_off_a_frozen_sentinel(g, first, second) as (watched, other):
        assert master.call("CLIENT", "KILL", "TYPE", "normal") >= 1
        rf.wait_until(lambda: down_lines(g), 10, what="the master's connection lost")
        rf.wait_until(lambda: "connected to" in "\n".join(
            lines_after(g, down_lines(g)[0])), 15, what="connected again")
        after = lines_after(g, down_lines(g)[0])
        assert not any("sentinel 127.0.0.1:%d: " % watched.port in l for l in after), \
            g.log_tail()
        assert masters_taken(g) == [master.port], g.log_tail()


@pytest.mark.skipif(not rf.mount_namespace_available(),
                    reason="needs a mount namespace (root) for a private /etc/hosts")
def test_a_sentinel_given_by_name_is_found_at_its_new_address(make_gateway, keys, cluster,
                                                              tmp_path):
    """The gateway runs with its own /etc/hosts (a bind mount in a mount namespace of its
    own), where the sentinel's name first stands for 127.0.0.2, where nothing listens: the
    node stays unready.  The file then says 127.0.0.1: the name is looked up again after
    the failed attempt, and the next one finds the sentinel there, and the master."""
    master, replica, sentinel = cluster
    name = "sentinel.pavilion.test"
    where = "%s:%d" % (name, sentinel.port)
    hosts = tmp_path / "hosts"
    system = Path("/etc/hosts").read_text()
    hosts.write_text(system + "\n127.0.0.2 %s\n" % name)
    g = make_gateway(vhosts=flow_vhosts(keys), start=False,
                     log={"level": "info", "format": "text"},
                     store=sentinel_store(sentinel, sen={"addresses": [where]}))
    rf.own_etc(g, hosts=hosts)
    g.start()
    rf.wait_until(lambda: "sentinel %s: Connection refused" % where in g.log_text(), 10,
                  what="the first address refused")
    assert API(g).get("/readyz").status == 503
    hosts.write_text(system + "\n127.0.0.1 %s\n" % name)  # same inode: the mount sees it
    rf.wait_until(lambda: API(g).get("/readyz").status == 200, 15, what="readyz")
    assert "sentinel %s now resolves to 127.0.0.1 (was 127.0.0.2)" % where in g.log_text(), \
        g.log_tail()
    assert masters_taken(g) == [master.port], g.log_tail()


@pytest.mark.skipif(not rf.mount_namespace_available(),
                    reason="needs a mount namespace (root) for a private /etc/hosts")
def test_a_sentinel_name_that_does_not_resolve_yet_is_looked_up_until_it_does(
        make_gateway, keys, cluster, tmp_path):
    """Two sentinels: an address where nothing listens, and a name that the gateway's own
    /etc/hosts lacks (its resolver asks a DNS server on a loopback port nobody listens
    on).  The gateway starts, unready, keeps the name and looks it up again after each
    attempt; once the file names it, the sentinel is asked there and names the master."""
    master, replica, sentinel = cluster
    name = "late-sentinel.pavilion.test"
    where = "%s:%d" % (name, sentinel.port)
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text("127.0.0.1 localhost\n")
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    dead = "127.0.0.1:%d" % gw.free_port()
    g = make_gateway(vhosts=flow_vhosts(keys), start=False,
                     log={"level": "info", "format": "text"},
                     store=sentinel_store(sentinel, sen={"addresses": [dead, where]}))
    rf.own_etc(g, hosts=hosts, **{"resolv.conf": resolv})
    g.start()
    rf.wait_until(lambda: "sentinel %s: Connection refused" % dead in g.log_text(), 10,
                  what="the first sentinel tried")
    rf.wait_until(lambda: g.log_text().count("no sentinel gave the address of master") >= 2,
                  10, what="two rounds of questions")
    assert API(g).get("/readyz").status == 503
    # warned about at start, once: each attempt on it since is information
    warned = [line for line in g.log_text().splitlines()
              if " warn " in line and name in line]
    assert len(warned) == 1 and "at each attempt on it" in warned[0], warned
    hosts.write_text("127.0.0.1 localhost\n127.0.0.1 %s\n" % name)  # same inode
    rf.wait_until(lambda: API(g).get("/readyz").status == 200, 20, what="readyz")
    log = g.log_text()
    assert "sentinel %s: cannot resolve it yet" % where in log, g.log_tail()
    assert "sentinel %s resolves to 127.0.0.1" % where in log, g.log_tail()
    assert masters_taken(g) == [master.port], g.log_tail()


@pytest.mark.skipif(not rf.mount_namespace_available(),
                    reason="needs a mount namespace (root) for a private /etc/hosts")
def test_each_address_of_a_sentinel_name_is_tried_in_turn(make_gateway, keys, cluster,
                                                          tmp_path):
    """The sentinel's name stands for two addresses (the resolver keeps the file's order:
    127.0.0.3, where nothing listens, then 127.0.0.2, where a fake sentinel does): the
    first is refused, and the next attempt on that sentinel goes to the second, which names
    the master."""
    master, replica, sentinel = cluster
    fake = FakeSentinel([master.port], host="127.0.0.2")
    try:
        name = "sentinel.pavilion.test"
        where = "%s:%d" % (name, fake.port)
        hosts = tmp_path / "hosts"
        hosts.write_text(Path("/etc/hosts").read_text() +
                         "\n127.0.0.3 %s\n127.0.0.2 %s\n" % (name, name))
        g = make_gateway(vhosts=flow_vhosts(keys), start=False,
                         log={"level": "info", "format": "text"},
                         store=sentinel_store(sentinel, sen={"addresses": [where]}))
        rf.own_etc(g, hosts=hosts)
        g.start()
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, 15, what="readyz")
        log = g.log_text()
        refused = "sentinel %s at 127.0.0.3: Connection refused" % where
        taken = "sentinel %s at 127.0.0.2: master %s is at" % (where, MASTER)
        assert refused in log and taken in log, g.log_tail()
        assert log.index(refused) < log.index(taken), g.log_tail()
        assert masters_taken(g) == [master.port], g.log_tail()
    finally:
        fake.close()


@pytest.mark.skipif(not rf.mount_namespace_available(),
                    reason="needs a mount namespace (root) for a private /etc/hosts")
def test_a_start_with_no_sentinel_that_resolves_fails(make_gateway, keys, tmp_path):
    """No sentinel name resolves at start: there is nothing to ask, and the start fails
    saying so."""
    hosts, resolv = tmp_path / "hosts", tmp_path / "resolv.conf"
    hosts.write_text("127.0.0.1 localhost\n")
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    g = make_gateway(vhosts=flow_vhosts(keys), start=False,
                     log={"level": "info", "format": "text"},
                     store={"backend": "redis", "sentinel": {
                         "addresses": ["nowhere.pavilion.test"], "master": MASTER}})
    rf.own_etc(g, hosts=hosts, **{"resolv.conf": resolv})
    with pytest.raises(AssertionError):
        g.start(timeout=10)
    assert g.proc.wait(10) != 0
    assert "no sentinel resolves" in g.log_text(), g.log_tail()


def test_a_replica_a_sentinel_names_is_not_taken(make_gateway, keys, cluster, tmp_path):
    """A sentinel's answer can be stale: ROLE is checked after connecting, and a replica
    makes the gateway ask again.  A server that is no sentinel is left for the next one."""
    master, replica, sentinel = cluster
    liar = rf.RedisServer(tmp_path / "liar").start()
    fake = FakeSentinel([replica.port, replica.port, master.port])
    try:
        g = gateway_asking(make_gateway, keys, liar.port, fake.port)
        log = g.log_text()
        assert masters_taken(g) == [replica.port, master.port], g.log_tail()
        assert "not the master (ROLE)" in log, g.log_tail()
        assert "sentinel 127.0.0.1:%d: no usable address" % liar.port in log, g.log_tail()
        assert fake.asked == 3
        assert master.keys("pav:*")
    finally:
        fake.close()
        liar.kill()


def test_a_master_demoted_under_the_gateway_is_left_at_its_first_readonly(
        make_gateway, keys, tmp_path):
    """A master turned replica keeps its clients; the gateway's next write is answered
    READONLY, and it asks the sentinels again."""
    old = rf.RedisServer(tmp_path / "old").start()
    new = rf.RedisServer(tmp_path / "new").start()
    fake = FakeSentinel([old.port, new.port])
    try:
        g = make_gateway(vhosts=flow_vhosts(keys), log={"level": "info", "format": "text"},
                         store={"backend": "redis", "sentinel": {
                             "addresses": ["127.0.0.1:%d" % fake.port], "master": MASTER}})
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, 10, what="readyz")
        z = "zone:" + uid("z")
        a = Client(g, **ALL)
        a.subscribe(z)
        old.call("REPLICAOF", "127.0.0.1", new.port)
        # the node's heartbeat (a script that writes) meets READONLY within a second or so
        rf.wait_until(lambda: masters_taken(g)[-1:] == [new.port], 15, step=0.1,
                      what="the gateway takes the new master")
        assert "READONLY" in g.log_text(), g.log_tail()
        a.wait_for("resync", timeout=10)
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, 10, what="readyz")
        API(g).publish(z, "tick", {"n": 1})
        a.wait_for("tick", timeout=5, n=1)
        a.close()
    finally:
        fake.close()
        new.kill()
        old.kill()


def check(tmp_path, keys, store):
    g = gw.Gateway(tmp_path / "g", keys, gw.base_config(keys, flow_vhosts(keys), store=store))
    return gw.check_config(g.conf_path)


def test_check_accepts_a_sentinel_store_and_connects_nothing(tmp_path, keys):
    r = check(tmp_path, keys, {"backend": "redis", "sentinel": {
        "addresses": ["127.0.0.1:%d" % gw.free_port(), "[::1]", "sentinel-2.internal:26380"],
        "master": "pav_master-1.a", "db": 3}})
    assert r.returncode == 0 and "configuration OK" in r.stdout, r.stderr


SENTINEL = {"addresses": ["127.0.0.1:26379"], "master": MASTER}


def with_sentinel(**over):
    s = dict(SENTINEL)
    s.update(over)
    return s


@pytest.mark.parametrize("store,why", [
    ({"url": "redis://127.0.0.1", "sentinel": SENTINEL},
     'store.url: give one of "url", "shards" or "sentinel"'),
    ({"shards": ["redis://127.0.0.1"], "sentinel": SENTINEL},
     'store.shards: give one of "url", "shards" or "sentinel"'),
    ({"sentinel": with_sentinel(addresses=[])}, "store.sentinel.addresses:"),
    ({"sentinel": with_sentinel(addresses="127.0.0.1:26379")}, "store.sentinel.addresses:"),
    ({"sentinel": with_sentinel(addresses=["127.0.0.1:0"])},
     "store.sentinel.addresses[0]: must be \"host:port\""),
    ({"sentinel": with_sentinel(addresses=["127.0.0.1:26379", "bad host:1"])},
     "store.sentinel.addresses[1]: must be \"host:port\""),
    ({"sentinel": with_sentinel(addresses=["[::1"])},
     "store.sentinel.addresses[0]: must be \"host:port\""),
    ({"sentinel": with_sentinel(addresses=["127.0.0.1:%d" % (26379 + i) for i in range(17)])},
     "store.sentinel.addresses: at most 16 sentinels"),
    ({"sentinel": with_sentinel(master="my master")},
     "store.sentinel.master: must be 1 to 64 letters"),
    ({"sentinel": with_sentinel(master="m" * 65)},
     "store.sentinel.master: must be 1 to 64 letters"),
    ({"sentinel": with_sentinel(master="")}, "store.sentinel.master:"),
    ({"sentinel": {"addresses": ["127.0.0.1"]}}, "store.sentinel.master: required"),
    ({"sentinel": {"master": MASTER}}, "store.sentinel.addresses: required"),
    ({"sentinel": with_sentinel(db=65536)}, "store.sentinel.db:"),
    ({"sentinel": with_sentinel(password="x")}, "store.sentinel.password:"),
    ({"sentinel": SENTINEL, "tls_ca_file": "ca.pem"},
     'store.tls_ca_file: only with a rediss:// URL (TLS) or "sentinel": {"tls": true}'),
    ({"sentinel": with_sentinel(tls=False), "tls_ca_file": "ca.pem"},
     'store.tls_ca_file: only with a rediss:// URL (TLS) or "sentinel": {"tls": true}'),
    ({"sentinel": with_sentinel(tls="yes")}, "store.sentinel.tls: must be"),
    ({"sentinel": with_sentinel(master_user="gw")},
     'store.sentinel.master_user: needs "password_file"'),
    ({"sentinel": with_sentinel(sentinel_user="watcher")},
     'store.sentinel.sentinel_user: needs "sentinel_password_file"'),
    ({"sentinel": with_sentinel(sentinel_user="u" * 128, sentinel_password_file="pw")},
     "store.sentinel.sentinel_user: must be an ACL user name of 1 to 127 bytes"),
    ({"sentinel": with_sentinel(sentinel_password_file="missing.pw")},
     "store.sentinel.sentinel_password_file: cannot read"),
])
def test_check_refuses_a_sentinel_store_it_cannot_use(tmp_path, keys, store, why):
    s = {"backend": "redis"}
    s.update(store)
    if "tls_ca_file" in s:
        (tmp_path / "ca.pem").write_text("x")
        s["tls_ca_file"] = str(tmp_path / "ca.pem")
    if s.get("sentinel", {}).get("sentinel_password_file") == "pw":
        s["sentinel"]["sentinel_password_file"] = secret_file(tmp_path, "pw", "x")
    r = check(tmp_path, keys, s)
    assert r.returncode == 1, r.stdout
    assert why in r.stderr and "gateway.json" in r.stderr, r.stderr


def test_check_reads_the_sentinel_password_file(tmp_path, keys):
    """The file is read at --check, as password_file is: an empty one is refused; one every
    user may read is a warning."""
    empty = tmp_path / "empty.pw"
    empty.write_text("\n")
    r = check(tmp_path / "a", keys, {"backend": "redis", "sentinel": with_sentinel(
        sentinel_password_file=str(empty))})
    assert r.returncode == 1, r.stdout
    assert "sentinel.sentinel_password_file: %s: the first line is empty" % empty in r.stderr, \
        r.stderr
    pw = tmp_path / "open.pw"
    pw.write_text("s3cret\n")
    pw.chmod(0o644)
    r = check(tmp_path / "b", keys, {"backend": "redis", "sentinel": with_sentinel(
        sentinel_password_file=str(pw), sentinel_user="watcher")})
    assert r.returncode == 0, r.stderr
    assert ("store.sentinel.sentinel_password_file: %s holds a secret and is readable by "
            "every user of the machine (mode 0644)" % pw) in r.stderr, r.stderr
    assert "s3cret" not in r.stderr + r.stdout


def test_check_refuses_sentinel_with_the_memory_store(tmp_path, keys):
    r = check(tmp_path, keys, {"backend": "memory", "sentinel": SENTINEL})
    assert r.returncode == 1, r.stdout
    assert 'store.sentinel: only for "backend": "redis"' in r.stderr, r.stderr
