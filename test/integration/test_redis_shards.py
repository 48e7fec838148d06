"""The redis backend on two sharded Redis servers ("shards": [url, url]): users and channels
spread over both by hash, and two gateways on them are still one gateway — publications,
presence, caps, revocation, counts, and the reaping of a killed node on both shards."""
import signal
import time

import pytest

import gw
import redisfix as rf
from test_flow_util import ALL, Client, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")

TTL = 3


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rs = [rf.RedisServer(tmp_path_factory.mktemp("redis")).start() for _ in range(2)]
    yield rs
    for r in rs:
        r.kill()


def make_nodes(factory, keys, shards, n=2):
    nodes = rf.Nodes(factory, keys, shards[0], n=n,
                     store={"shards": [r.url for r in shards], "node_ttl_s": TTL},
                     public_over={"limits": {"max_connections_per_user": 3}})
    for g in nodes.gws:
        g.config["store"].pop("url")
        g.write_config()
    return nodes.start()


@pytest.fixture(scope="module")
def nodes(shards, make_module_gateway, keys):
    return make_nodes(make_module_gateway, keys, shards)


def C(node, sub=None):
    c = Client(node, sub, **ALL)
    c.sync()
    return c


def test_users_and_channels_spread_over_both_shards(nodes, shards):
    cs = [C(nodes[i % 2]) for i in range(16)]
    try:
        zones = ["zone:" + uid("z") for _ in range(16)]
        for c, z in zip(cs, zones):
            c.subscribe(z)
        for r in shards:
            ks = r.keys()
            assert [k for k in ks if k.startswith("pav:{u:")], "no user on %d" % r.port
            assert [k for k in ks if k.startswith("pav:{c:default:zone:")], \
                "no channel on %d" % r.port
            assert r.call("ZCARD", "pav:nodes") == 2, "every node heartbeats on every shard"
    finally:
        for c in cs:
            c.close()


def test_publications_and_counts_across_shards(nodes):
    zones = ["zone:" + uid("z") for _ in range(8)]
    subs = [C(nodes[i % 2]) for i in range(4)]
    try:
        for c in subs:
            for z in zones:
                c.subscribe(z)
        for i, z in enumerate(zones):
            r = nodes.api(i % 2).publish(z, "tick", {"z": z})
            assert r.json["recipients"] == 4, r
            assert nodes.api((i + 1) % 2).get("/v1/channels/" + z).json["subscribers"] == 4
        for c in subs:
            got = sorted(c.wait_for("tick")["payload"]["z"] for _ in zones)
            assert got == sorted(zones), got
            c.sync()
            assert not c.take("tick")
    finally:
        for c in subs:
            c.close()


def test_presence_cap_and_revoke_across_shards(nodes):
    user = uid("u")
    z = "zone:" + uid("z")
    with C(nodes[1]) as o:
        o.subscribe(z)
        a, b = C(nodes[0], user), C(nodes[1], user)
        a.subscribe(z)
        b.subscribe(z)
        assert nodes.api(1).presence(user)["connections"] == 2
        c3 = C(nodes[0], user)
        c3.subscribe(z)  # whichever closes last announces offline to its channels
        over = nodes[1].connect(nodes[1].token(sub=user))
        gw.expect_error(over, 1005)
        assert over.wait_close(5).code == 4029
        a.ok("presence", {"status": "busy"})
        m = o.wait_for("status_update", userId=user, status="busy")
        assert m["payload"]["status"] == "busy"
        for c in (b, c3):
            c.wait_for("status_update", userId=user, status="busy")
        r = nodes.api(1).call("DELETE", "/v1/users/%s/connections" % user)
        assert r.status == 200 and r.json == {"closed": 3}, r
        for c in (a, b, c3):
            assert c.wait_close(5).code == 4001
        m = o.wait_for("status_update", timeout=5, userId=user, status="offline")
        nodes.settle()
        p = nodes.api(0).presence(user)
        assert p["status"] == "offline" and p["connections"] == 0, p


def test_a_killed_node_is_reaped_on_both_shards(make_gateway, keys, shards):
    ns = make_nodes(make_gateway, keys, shards)
    dead, live = ns[0], ns[1]
    dead_id = rf.node_id(dead)
    zones = ["zone:" + uid("z") for _ in range(6)]
    users = [uid("k") for _ in range(60)]
    cs = []
    for i, u in enumerate(users):
        c = C(dead, u)
        c.subscribe(zones[i % 6])
        cs.append(c)
    obs = C(live)
    for z in zones:
        obs.subscribe(z)
    ns.settle()
    obs.sync()
    obs.inbox.clear()
    dead.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    dead.proc.wait(10)
    gone = set()
    while len(gone) < len(users):
        left = killed + TTL + 2 - time.monotonic()
        assert left > 0, "%d of %d offline within node_ttl_s + 2 s" % (len(gone), len(users))
        gone.add(obs.wait_for("status_update", timeout=left, status="offline")
                 ["payload"]["userId"])
    assert gone == set(users)
    for r in shards:
        rf.wait_until(lambda: r.call("ZSCORE", "pav:nodes", dead_id) is None, 10,
                      what="reaped on %d" % r.port)
        assert not [k for k in r.keys() if dead_id in k], r.port
    obs.close()
    for c in cs:
        c.ws.sock.close()
