"""The redis backend on two sharded Redis servers ("shards": [url, url]): users and channels
spread over both by hash, and two gateways on them are still one gateway — publications,
presence, caps, revocation, counts, and the reaping of a killed node on both shards."""
import signal
import time

import pytest

import gw
import redisfix as rf
from test_flow_util import ALL, FULL_PLUGINS, Client, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")

TTL = 3


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rs = [rf.RedisServer(tmp_path_factory.mktemp("redis")).start() for _ in range(2)]
    yield rs
    for r in rs:
        r.kill()


def make_nodes(factory, keys, shards, n=2, plugins=None):
    nodes = rf.Nodes(factory, keys, shards[0], n=n, plugins=plugins,
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



def kill_settled(ns, dead, obs):
    """Once the nodes settled and obs saw everything so far (its inbox emptied), dead is
    killed (SIGKILL, no goodbye); returns when, on the monotonic clock."""
    ns.settle()
    obs.sync()
    obs.inbox.clear()
    dead.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    dead.proc.wait(10)
    return killed

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


def test_a_revocation_on_either_shard_is_heard_by_every_node(nodes, shards):
    """A revocation is published on its user's shard, where its key is: the other node
    hears it on both shards and refuses the old token from its copy once the key is
    gone."""
    from test_flow_revoke import refused_at_handshake, revoke
    from test_redis_revoke import key_of
    on = {}
    for _ in range(40):
        if len(on) == 2:
            break
        user = uid("alice")
        old = nodes[1].token(sub=user)
        with Client(nodes[1], user, token=old) as c:
            c.sync()
            revoke(nodes.api(0), user, "?revoke_s=60", closed=1)
            gw.expect_error(c.ws, 1001)  # after it, node 1 has heard the revocation
            assert c.wait_close(5).code == 4001
        held = [i for i, r in enumerate(shards) if r.call("EXISTS", key_of(user))]
        assert len(held) == 1, held
        on.setdefault(held[0], (user, old))
    assert len(on) == 2, on
    for i, (user, old) in on.items():
        shards[i].call("DEL", key_of(user))
        refused_at_handshake(nodes[1], old)


def test_a_shard_restarted_empty_gets_back_only_its_own_revocations(
        make_gateway, keys, tmp_path):
    """The node keeps one revocation, on one shard; the other shard restarts empty: its
    write-back holds none of the first shard's records (and so says nothing), the first
    shard's key is left as it was."""
    from test_flow_revoke import revoke
    from test_redis_revoke import key_of
    own = [rf.RedisServer(tmp_path / ("redis%d" % i)).start() for i in range(2)]
    try:
        ns = make_nodes(make_gateway, keys, own, n=1)
        user = uid("alice")
        revoke(ns.api(0), user, "?revoke_s=60")
        held = [i for i, r in enumerate(own) if r.call("EXISTS", key_of(user))]
        assert len(held) == 1, held
        other = own[1 - held[0]]
        other.kill()
        rf.wait_until(lambda: ns.api(0).get("/readyz").status == 503, 5, what="/readyz 503")
        other.start()
        rf.wait_until(lambda: ns.api(0).get("/readyz").status == 200, 10, what="/readyz 200")
        assert "token revocations written back" not in ns[0].log_text(), ns[0].log_tail()
        assert not other.call("EXISTS", key_of(user))
        assert own[held[0]].call("EXISTS", key_of(user)) == 1
    finally:
        for r in own:
            r.kill()


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
    killed = kill_settled(ns, dead, obs)
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


def shard_index(n, ns, name):
    """As pav_rb_shard_of: FNV-1a over "ns\\x1fname", modulo the shards."""
    h = 2166136261
    for ch in (ns + "\x1f" + name).encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h % n


def shard_holding(shards, prefix):
    held = [i for i, r in enumerate(shards) if r.keys(prefix + "*")]
    assert len(held) == 1, (prefix, held)
    return held[0]


def test_a_killed_node_user_is_weighed_without_its_members_on_another_shard(
        make_gateway, keys, shards):
    """max_broadcast 2; zone z (on one shard) has an observer on the live node and users k
    and x on the node that is killed; k's keys are on the other shard.  The shard of z is
    reaped late (another reaper holds its lock).  The reaper of k's shard used to weigh
    k's offline against z's count with the dead node's members still in it (3, over the
    limit: dropped); it now removes the dead node's members from every shard first, so
    the observer is told k went offline."""
    plugins = dict(FULL_PLUGINS)
    plugins["presence"] = {"max_broadcast": 2}
    ns = make_nodes(make_gateway, keys, shards, plugins=plugins)
    dead, live = ns[0], ns[1]
    dead_id = rf.node_id(dead)
    k = C(dead)
    ks = shard_holding(shards, "pav:{u:default:%s}" % k.sub)
    z = next(z for z in ("zone:" + uid("z") for _ in range(64))
             if shard_index(len(shards), "default", z) != ks)
    k.subscribe(z)
    zs = shard_holding(shards, "pav:{c:default:%s}" % z)
    assert zs != ks
    x = C(dead)
    x.subscribe(z)
    obs = C(live)
    obs.subscribe(z)
    killed = kill_settled(ns, dead, obs)
    # someone else's reaper, slow on z's shard
    assert shards[zs].call("SET", "pav:reap:" + dead_id, "other", "NX", "PX", "30000")
    left = killed + TTL + 3 - time.monotonic()
    m = obs.wait_for("status_update", timeout=left, userId=k.sub)
    assert m["payload"]["status"] == "offline", m
    rf.wait_until(lambda: live_api_presence(ns, k.sub) == "offline", 5, what="k offline")
    obs.close()


def live_api_presence(ns, user):
    return ns.api(1).presence(user)["status"]
