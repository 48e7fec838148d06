"""An ACL change under a running node: `ACL SETUSER ... resetchannels` that takes a channel
the node is subscribed to away from its Redis user makes Redis close the node's pub/sub
connection.  Its replacement subscribes the rest again and the node stays up (heartbeat,
publications fanned out through Redis); the channel refused decides what else happens:
the revocation channel leaves the node unready until it is allowed again, a publication
channel's local subscribers get "resync" once it is back.  Each refusal is logged once."""
import time

import pytest

import gw
import redisfix as rf
from test_flow_revoke import refused_at_handshake
from test_flow_util import FULL_PLUGINS, API, Client, flow_vhosts, uid
from test_redis_revoke import heard_by, key_of

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")

USER = "gw-acl"
ALL = {"zones": ["*"], "chats": ["*"]}


@pytest.fixture
def acl_redis(tmp_path):
    """A redis-server of the test's own whose user gw-acl may touch pav:* keys and
    channels (the default user stays: the test's own calls)."""
    r = rf.RedisServer(tmp_path / "redis").start()
    r.call("ACL", "SETUSER", USER, "on", ">s3cret", "~pav:*", "&pav:*", "+@all")
    yield r
    r.kill()


def acl_gateway(make_gateway, keys, redis):
    host = redis.url[len("redis://"):]
    vh = flow_vhosts(keys, plugins=dict(FULL_PLUGINS, chat={"client_send": True}),
                     history={"zone": {"size": 10}})
    return make_gateway(vh, store={
        "backend": "redis", "url": "redis://%s:s3cret@%s" % (USER, host)})


def allow_only(redis, *channels):
    """Leaves the node's user these channel patterns alone."""
    redis.call("ACL", "SETUSER", USER, "resetchannels", *["&" + c for c in channels])


def heartbeats(redis, g, n):
    """Waits until the node's score in pav:nodes has moved on n times (n heartbeats
    answered, so n ticks ran)."""
    node = rf.node_id(g)
    last = redis.call("ZSCORE", "pav:nodes", node)
    for _ in range(n):
        rf.wait_until(lambda: redis.call("ZSCORE", "pav:nodes", node) != last, 5,
                      what="a heartbeat")
        last = redis.call("ZSCORE", "pav:nodes", node)


def chatted(a, b, room, text):
    """a's chat_message reaches both a and b, subscribed to chat:room on one node:
    through Redis (PUBLISH, then back on the node's pub/sub connection)."""
    a.ok("chat_message", {"roomId": room, "content": text})
    for c in (a, b):
        assert c.wait_for("chat_message", timeout=5)["payload"]["content"] == text


def fanned_out(g, z, n):
    """A publication to z reaches both clients subscribed to it on g (through Redis)."""
    r = API(g).publish(z, "tick", {"n": n}).json
    assert r["recipients"] == 2, r


def test_the_revocation_channel_taken_away_leaves_the_node_up_and_unready(
        make_gateway, keys, acl_redis):
    g = acl_gateway(make_gateway, keys, acl_redis)
    room = uid("room")
    z = "chat:" + room
    with Client(g, **ALL) as a, Client(g, **ALL) as b:
        a.subscribe(z)
        b.subscribe(z)
        allow_only(acl_redis, "pav:p:*", "pav:f:*", "pav:probe:*")
        rf.wait_until(lambda: "pub/sub connection to" in g.log_text(), 5,
                      what="the pub/sub connection closed by Redis")
        rf.wait_until(lambda: API(g).get("/readyz").status == 503, 5, what="/readyz 503")
        # up all along: heartbeats (each tick also asks for pav:revoked again)
        heartbeats(acl_redis, g, 3)
        assert API(g).get("/readyz").status == 503
        chatted(a, b, room, "while refused")
        for c in (a, b):
            c.ok("heartbeat_ack")
        log = g.log_text()
        assert "NOPERM" in log and "down:" not in log, g.log_tail()
        assert log.count("Redis refuses SUBSCRIBE pav:revoked") == 1, g.log_tail()
        assert "subscribed to pav:revoked" not in log, g.log_tail()

        allow_only(acl_redis, "pav:*")
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, 5, what="/readyz 200")
        assert "shard 0: subscribed to pav:revoked" in g.log_text(), g.log_tail()
        # the revocation channel is heard again: the node keeps its own copy
        alice = uid("alice")
        old = g.token(sub=alice)
        now = int(time.time() * 1000)
        heard_by(g, acl_redis, "V1 default %s %d 60000" % (alice, now + 5000))
        assert not acl_redis.call("EXISTS", key_of(alice))
        refused_at_handshake(g, old)
        chatted(a, b, room, "allowed again")


def test_a_publication_channel_taken_away_is_subscribed_again_once_allowed(
        make_gateway, keys, acl_redis):
    g = acl_gateway(make_gateway, keys, acl_redis)
    ok, gone = "zone:" + uid("ok"), "zone:" + uid("gone")
    feed = "pav:p:default:" + gone
    with Client(g, **ALL) as a, Client(g, **ALL) as b:
        for c in (a, b):
            c.subscribe(ok)
            c.subscribe(gone)
        allow_only(acl_redis, "pav:p:default:zone:ok*", "pav:p:default:user:*", "pav:f:*",
                   "pav:probe:*", "pav:revoked")
        rf.wait_until(lambda: "Redis refuses SUBSCRIBE %s" % feed in g.log_text(), 5,
                      what="the refusal logged")
        heartbeats(acl_redis, g, 2)
        assert API(g).get("/readyz").status == 200
        fanned_out(g, ok, 1)
        for c in (a, b):
            assert c.wait_for("tick", timeout=5)["payload"] == {"n": 1}
        log = g.log_text()
        assert log.count("Redis refuses SUBSCRIBE %s" % feed) == 1, g.log_tail()
        assert "down:" not in log, g.log_tail()

        allow_only(acl_redis, "pav:*")
        rf.wait_until(lambda: "subscribed to %s again" % feed in g.log_text(), 5,
                      what="the channel subscribed again")
        for c in (a, b):
            c.wait_for("resync", timeout=5)
        fanned_out(g, gone, 2)
        for c in (a, b):
            assert c.wait_for("tick", timeout=5)["payload"] == {"n": 2}


def test_the_fence_channel_taken_away_leaves_catch_ups_answered(make_gateway, keys, acl_redis):
    """Without its fence channel a recover read does not wait for a fence that would never
    come back: it is answered, and the node stays ready."""
    g = acl_gateway(make_gateway, keys, acl_redis)
    fence = "pav:f:" + rf.node_id(g)
    z = "zone:" + uid("z")
    with Client(g, **ALL) as a:
        epoch = a.subscribe(z)["payload"]["epoch"]
        allow_only(acl_redis, "pav:p:*", "pav:revoked", "pav:probe:*")
        rf.wait_until(lambda: "Redis refuses SUBSCRIBE %s" % fence in g.log_text(), 5,
                      what="the refusal logged")
        heartbeats(acl_redis, g, 2)
        assert API(g).get("/readyz").status == 200
        for n in (1, 2):
            API(g).publish(z, "tick", {"n": n})
        with Client(g, **ALL) as b:
            ack = b.subscribe(z, recover={"offset": 0, "epoch": epoch})["payload"]
            assert ack["recovered"] is True and ack["offset"] == 2, ack
        log = g.log_text()
        assert log.count("Redis refuses SUBSCRIBE %s" % fence) == 1, g.log_tail()
        assert "down:" not in log, g.log_tail()
        allow_only(acl_redis, "pav:*")
        rf.wait_until(lambda: "shard 0: subscribed to %s" % fence in g.log_text(), 5,
                      what="the fence channel subscribed again")
