"""Token revocation on the redis backend, across 2 nodes on one Redis: a revocation made
through one node refuses the old token at the other, at the handshake and at a renewal, and
after that node restarts; it is one key per user, with the revocation's seconds as its TTL,
gone at its end.  Every node hears a revocation from the broker and keeps a copy: a Redis
that restarts empty gets it back from any of them (the node it went through gone or not),
and each refuses the old token from its own copy before that.  (One node, either store:
test_flow_revoke.py.)"""
import signal
import time

import pytest

import gw
import redisfix as rf
from test_flow_revoke import accepted, refused_at_handshake, refused_at_renewal, revoke
from test_flow_util import API, Client, flow_vhosts, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of the test's own, for a test that restarts it empty."""
    r = rf.RedisServer(tmp_path / "redis").start()
    yield r
    r.kill()


@pytest.fixture(scope="module")
def nodes(redis, make_module_gateway, keys):
    return rf.Nodes(make_module_gateway, keys, redis, n=2).start()


def key_of(user):
    return "pav:{u:default:%s}:revoked" % user


def test_revocation_through_one_node_refuses_the_old_token_at_the_other(nodes, redis):
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    with Client(nodes[1], alice, token=old) as c:
        c.sync()
        revoke(nodes.api(0), alice, "?revoke_s=60", closed=1)
        gw.expect_error(c.ws, 1001)
        assert c.wait_close(5).code == 4001
    refused_at_handshake(nodes[1], old)
    refused_at_handshake(nodes[0], old)
    accepted(nodes[1], nodes[1].token(sub=alice, iat=int(time.time()) + 1), alice)
    ttl = redis.call("TTL", key_of(alice))
    assert 0 < ttl <= 60, ttl
    made = redis.keys("*revoked*")
    assert key_of(alice) in made and all(k.startswith("pav:") for k in made), made


def test_renewal_at_the_other_node_is_refused_and_the_connection_stays(nodes):
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    revoke(nodes.api(0), alice, "?revoke_s=60")
    refused_at_renewal(nodes[1], old, alice)


def test_revocation_outlives_a_node_restart_and_ends_with_its_key(nodes, redis):
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    revoke(nodes.api(0), alice, "?revoke_s=3")
    assert nodes[1].stop() == 0
    nodes[1].start()
    refused_at_handshake(nodes[1], old)
    rf.wait_until(lambda: not redis.call("EXISTS", key_of(alice)), 5, what="the key's end")
    accepted(nodes[1], old, alice)


def test_without_revoke_s_no_key_is_made(nodes, redis):
    alice = uid("alice")
    revoke(nodes.api(0), alice, "", closed=0)
    assert not redis.call("EXISTS", key_of(alice))


REFUSED = "Redis refuses SUBSCRIBE pav:revoked"


def test_a_node_refused_the_revocation_channel_stays_unready_until_allowed(
        make_gateway, keys, tmp_path):
    """An ACL user whose channels leave out pav:revoked: Redis refuses the node's SUBSCRIBE.
    The node says so once, stays connected (it heartbeats) but unready, since it would
    miss revocations, and tries again each second; once the ACL allows the channel it is
    subscribed and ready, and hears the revocations made through it."""
    acl = tmp_path / "users.acl"
    acl.write_text("user default on nopass ~* &* +@all\n"
                   "user gw on >pw ~pav:* resetchannels &pav:p:* &pav:f:* &pav:probe:* "
                   "+@all\n")
    redis = rf.RedisServer(tmp_path / "redis", extra=["--aclfile", str(acl)]).start()
    try:
        g = make_gateway(flow_vhosts(keys), store=rf.redis_store(
            "redis://gw:pw@%s" % redis.url[len("redis://"):]))
        assert API(g).get("/readyz").status == 503
        rf.wait_until(lambda: REFUSED in g.log_text(), 5, what="the refusal said")
        node = rf.node_id(g)
        first = redis.call("ZSCORE", "pav:nodes", node)
        rf.wait_until(lambda: redis.call("ZSCORE", "pav:nodes", node) != first, 5,
                      what="a later heartbeat")
        assert API(g).get("/readyz").status == 503
        redis.call("ACL", "SETUSER", "gw", "&pav:revoked")
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, 5, what="/readyz 200")
        assert g.log_text().count(REFUSED) == 1, g.log_tail()
        assert "shard 0: subscribed to pav:revoked" in g.log_text(), g.log_tail()
        alice = uid("alice")
        old = g.token(sub=alice)
        revoke(API(g), alice, "?revoke_s=60")
        redis.call("DEL", key_of(alice))
        refused_at_handshake(g, old)  # from the copy it heard
    finally:
        redis.kill()


# ------------------------------------------------------------ Redis restarted empty
def restart_empty(nodes, redis):
    """Kill Redis, see every node unready, start an empty one on the same port, and wait
    until every node is ready again (its write-back done)."""
    redis.kill()
    for i in range(len(nodes)):
        rf.wait_until(lambda: nodes.api(i).get("/readyz").status == 503, 5,
                      what="/readyz 503 on node %d" % i)
    redis.start()
    for i in range(len(nodes)):
        rf.wait_until(lambda: nodes.api(i).get("/readyz").status == 200, 10,
                      what="/readyz 200 on node %d" % i)


def test_revocation_survives_a_redis_restarted_empty(make_gateway, keys, own_redis):
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    alice = uid("alice")
    old = nodes[0].token(sub=alice)
    revoke(nodes.api(0), alice, "?revoke_s=60")
    restart_empty(nodes, own_redis)
    # written back, with what was left of its 60 s
    rf.wait_until(lambda: own_redis.call("EXISTS", key_of(alice)), 5, what="the key back")
    assert 0 < own_redis.call("PTTL", key_of(alice)) <= 60000
    assert "1 token revocations written back (0 held already)" in nodes[0].log_text(), \
        nodes[0].log_tail()
    refused_at_handshake(nodes[0], old)
    accepted(nodes[0], nodes[0].token(sub=alice, iat=int(time.time()) + 1), alice)
    refused_at_renewal(nodes[0], old, alice)


def test_revocation_through_one_node_survives_a_redis_restarted_empty_at_the_other(
        make_gateway, keys, own_redis):
    """Node 0, which the revocation went through, and node 1, which heard it, both write
    it back: node 1 refuses the old token, from its copy or from Redis."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=2).start()
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    revoke(nodes.api(0), alice, "?revoke_s=60")
    restart_empty(nodes, own_redis)
    refused_at_handshake(nodes[1], old)
    accepted(nodes[1], nodes[1].token(sub=alice, iat=int(time.time()) + 1), alice)
    refused_at_renewal(nodes[1], old, alice)


def revoke_heard(nodes, via, at, user, old):
    """Revokes user through node via while a connection of theirs with the old token is
    open on node at: once it is closed, node at has heard the revocation too (the broker
    publishes it before the close, on the same shard)."""
    with Client(nodes[at], user, token=old) as c:
        c.sync()
        revoke(nodes.api(via), user, "?revoke_s=60", closed=1)
        gw.expect_error(c.ws, 1001)
        assert c.wait_close(5).code == 4001


def test_every_node_refuses_from_its_own_copy_while_redis_lacks_the_key(
        make_gateway, keys, own_redis):
    """The key is deleted under a Redis that stays up: the node that only heard the
    revocation refuses the old token from its own copy, at the handshake and at a
    renewal."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=2).start()
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    revoke_heard(nodes, 0, 1, alice, old)
    own_redis.call("DEL", key_of(alice))
    refused_at_handshake(nodes[1], old)
    refused_at_renewal(nodes[1], old, alice)
    assert not own_redis.call("EXISTS", key_of(alice))


def test_a_node_that_finds_its_registration_gone_writes_its_revocations_back(
        make_gateway, keys, own_redis):
    """Under a Redis that stays up, the revocation's key and node 1's registration are
    deleted (as a reaper that took node 1 for dead would): node 1's next heartbeat finds
    its registration gone, registers again and writes back the revocation it heard."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=2).start()
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    revoke_heard(nodes, 0, 1, alice, old)
    own_redis.call("DEL", key_of(alice), "pav:{n:%s}:alive" % rf.node_id(nodes[1]))
    rf.wait_until(lambda: own_redis.call("EXISTS", key_of(alice)), 5, what="the key back")
    assert 0 < own_redis.call("PTTL", key_of(alice)) <= 60000
    log = nodes[1].log_text()
    assert "shard 0: this node's registration was lost" in log, nodes[1].log_tail()
    assert "shard 0: 1 token revocations written back (0 held already)" in log, \
        nodes[1].log_tail()
    assert "written back" not in nodes[0].log_text(), nodes[0].log_tail()
    rf.wait_until(lambda: nodes.api(1).get("/readyz").status == 200, 5, what="/readyz 200")
    refused_at_handshake(nodes[0], old)


DROPPED = "a malformed token revocation message dropped"


def heard_by(g, redis, *msgs):
    """Publishes msgs on the revocation channel, then a malformed one: once g has logged
    that one, it has read the others (one pub/sub connection, in order)."""
    before = g.log_text().count(DROPPED)
    for m in msgs + ("V1 bad",):
        redis.call("PUBLISH", "pav:revoked", m)
    rf.wait_until(lambda: g.log_text().count(DROPPED) == before + 1, 5,
                  what="the malformed message logged")


def test_a_heard_revocation_never_lowers_a_later_one_the_node_holds(nodes, redis):
    alice = uid("alice")
    now = int(time.time() * 1000)
    between = nodes[1].token(sub=alice, iat=now // 1000 + 2)
    heard_by(nodes[1], redis, "V1 default %s %d 60000" % (alice, now + 5000),
             "V1 default %s %d 60000" % (alice, now - 60000))
    assert not redis.call("EXISTS", key_of(alice))  # from the node's copy alone
    refused_at_handshake(nodes[1], between)


def test_a_malformed_revocation_message_is_logged_and_dropped(nodes, redis):
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    now = int(time.time() * 1000)
    bad = ["V1 default %s %d 0" % (alice, now), "V1 default %s -%d 60000" % (alice, now),
           "V1 default %s %d 60000 x" % (alice, now), "V1 default %s%%zz %d 60000" % (alice, now),
           "V1 default %s %d 60000" % ("a" * 65, now), "V1 default %s %d 60000\x00" % (alice, now),
           "V1 default %s %d 60000" % (alice + "x" * 600, now), "\xff\x00", ""]
    before = nodes[1].log_text().count(DROPPED)
    for m in bad:
        redis.call("PUBLISH", "pav:revoked", m)
    rf.wait_until(lambda: nodes[1].log_text().count(DROPPED) == before + len(bad), 5,
                  what="each malformed message logged")
    assert nodes.api(1).get("/readyz").status == 200
    accepted(nodes[1], old, alice)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_revocation_outlives_its_node_and_a_redis_restarted_empty(
        make_gateway, keys, own_redis, how):
    """The node the revocation went through is stopped, then Redis restarts empty: the
    other node, which heard it, refuses the old token, writes the key back, and a node
    started afterwards reads it from there."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=2).start()
    alice = uid("alice")
    old = nodes[1].token(sub=alice)
    revoke_heard(nodes, 0, 1, alice, old)
    if how == "SIGTERM":
        assert nodes[0].stop() == 0
    else:
        nodes[0].proc.kill()
        nodes[0].proc.wait(10)
    own_redis.kill()
    rf.wait_until(lambda: nodes.api(1).get("/readyz").status == 503, 5, what="/readyz 503")
    own_redis.start()
    rf.wait_until(lambda: nodes.api(1).get("/readyz").status == 200, 10, what="/readyz 200")
    assert own_redis.call("EXISTS", key_of(alice)) == 1
    assert 0 < own_redis.call("PTTL", key_of(alice)) <= 60000
    assert "1 token revocations written back (0 held already)" in nodes[1].log_text(), \
        nodes[1].log_tail()
    refused_at_handshake(nodes[1], old)
    accepted(nodes[1], nodes[1].token(sub=alice, iat=int(time.time()) + 1), alice)
    third = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    refused_at_handshake(third[0], old)


# ------------------------------------------------- a node that was not listening catches up
CAUGHT_UP = "shard 0: caught up on the token revocations Redis holds: "


def caught_up(g, n, bad=0, timeout=10):
    """Waits until g logged a catch-up that read n revocation keys (bad of them malformed),
    and returns that line.  It does not fail: the test's own checks say what is missing,
    and then assert the line."""
    line = CAUGHT_UP + "%d read (%d malformed skipped)" % (n, bad)
    gw.wait_until(lambda: line in g.log_text(), timeout)
    return line


def test_a_node_started_after_a_revocation_keeps_it_and_writes_it_back(
        make_gateway, keys, own_redis):
    """Node b starts after the revocation went through node a, so it never heard it: it
    reads it from its key once subscribed (ready at once: it reads the key at each check
    meanwhile).  Then a stops and Redis restarts empty: b writes the key back, and a node
    started afterwards refuses the old token."""
    a = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    alice = uid("alice")
    old = a[0].token(sub=alice)
    revoke(a.api(0), alice, "?revoke_s=60")
    b = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    line = caught_up(b[0], 1)
    refused_at_handshake(b[0], old)
    assert a[0].stop() == 0
    restart_empty(b, own_redis)
    assert own_redis.call("EXISTS", key_of(alice)) == 1
    assert 0 < own_redis.call("PTTL", key_of(alice)) <= 60000
    c = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    refused_at_handshake(c[0], old)
    log = b[0].log_text()
    assert line in log and "1 token revocations written back (0 held already)" in log, \
        b[0].log_tail()


def test_a_node_catches_up_again_once_its_feed_is_replaced(make_gateway, keys, own_redis):
    """A revocation made while the node's pub/sub connection is gone (here its key is
    written without a message, as one the node did not hear) is read once the replaced
    connection is subscribed again: the node refuses the old token from its own copy."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    first = caught_up(nodes[0], 0)
    alice = uid("alice")
    old = nodes[0].token(sub=alice)
    own_redis.call("SET", key_of(alice), int(time.time() * 1000), "PX", 60000)
    own_redis.call("CLIENT", "KILL", "TYPE", "pubsub")
    line = caught_up(nodes[0], 1)
    own_redis.call("DEL", key_of(alice))
    refused_at_handshake(nodes[0], old)
    log = nodes[0].log_text()
    assert first in log and line in log, nodes[0].log_tail()


MALFORMED = "shard 0: a malformed token revocation key skipped: "


def test_a_malformed_revocation_key_is_logged_and_skipped(make_gateway, keys, own_redis):
    """Keys under the revocation pattern that no node would write (a value that is no
    cut-off, no TTL or a longer one than a revocation takes, names outside the id grammar,
    another type) are logged and skipped; the good one beside them is kept, and is the
    only one written back once Redis restarts empty."""
    alice = uid("alice")
    now = int(time.time() * 1000)
    own_redis.call("SET", key_of(alice), now + 1000, "PX", 60000)
    for user, value in (("bob", "x"), ("carol", "-5"), ("dave", "%d.5" % now),
                        ("erin", " %d" % now)):
        own_redis.call("SET", key_of(uid(user)), value, "PX", 60000)
    own_redis.call("SET", key_of(uid("frank")), now)  # no TTL
    own_redis.call("SET", key_of(uid("grace")), now, "PX", 2592060000)  # 30 days + 1 min
    own_redis.call("SET", key_of("h" * 65), now, "PX", 60000)
    own_redis.call("SET", "pav:{u:bad ns:%s}:revoked" % uid("ivan"), now, "PX", 60000)
    own_redis.call("SET", "pav:{u:default:%s:x}:revoked" % uid("judy"), now, "PX", 60000)
    own_redis.call("HSET", key_of(uid("mallory")), "at", now)
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    line = caught_up(nodes[0], 1, bad=10)
    restart_empty(nodes, own_redis)
    assert own_redis.keys("*revoked*") == [key_of(alice)]
    log = nodes[0].log_text()
    assert line in log and MALFORMED in log, nodes[0].log_tail()
    assert "1 token revocations written back (0 held already)" in log, nodes[0].log_tail()


def test_a_node_catches_up_on_more_revocations_than_one_step_reads(
        make_gateway, keys, own_redis):
    """3,000 revocation keys (a step reads about 1,000) that no running node heard: a node
    started afterwards keeps every one, and writes every one back once Redis restarts
    empty."""
    users = [uid("u") for _ in range(3000)]
    at = int(time.time() * 1000)
    c = own_redis.client()
    try:
        for u in users:
            c.send("SET", key_of(u), at, "PX", 60000)
        assert all(c.read() == "OK" for _ in users)
    finally:
        c.close()
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    line = caught_up(nodes[0], 3000, timeout=30)
    restart_empty(nodes, own_redis)
    assert own_redis.keys(key_of("*")) == sorted(key_of(u) for u in users)
    log = nodes[0].log_text()
    assert line in log and "3000 token revocations written back (0 held already)" in log, \
        nodes[0].log_tail()


def test_write_back_keeps_a_later_revocation_redis_holds(make_gateway, keys, own_redis):
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    alice = uid("alice")
    revoke(nodes.api(0), alice, "?revoke_s=60")
    own_redis.kill()
    rf.wait_until(lambda: nodes.api(0).get("/readyz").status == 503, 5, what="/readyz 503")
    # another node's later revocation, made before this one is back (held meanwhile)
    later = str(int(time.time() * 1000) + 5000)
    nodes[0].proc.send_signal(signal.SIGSTOP)
    try:
        own_redis.start()
        own_redis.call("SET", key_of(alice), later, "EX", 30)
    finally:
        nodes[0].proc.send_signal(signal.SIGCONT)
    rf.wait_until(lambda: nodes.api(0).get("/readyz").status == 200, 10, what="/readyz 200")
    assert own_redis.call("GET", key_of(alice)) == later
    assert own_redis.call("TTL", key_of(alice)) <= 30
    assert "0 token revocations written back (1 held already)" in nodes[0].log_text(), \
        nodes[0].log_tail()


def test_a_write_back_that_fails_is_tried_again_and_the_node_waits_for_it(
        make_gateway, keys, own_redis):
    """A key Redis refuses to write (here: another type under the revocation's name) fails
    the write-back: the node says so once, stays unready, and tries again each second
    until it is written."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    alice = uid("alice")
    revoke(nodes.api(0), alice, "?revoke_s=60")
    own_redis.kill()
    rf.wait_until(lambda: nodes.api(0).get("/readyz").status == 503, 5, what="/readyz 503")
    nodes[0].proc.send_signal(signal.SIGSTOP)
    try:
        own_redis.start()
        own_redis.call("HSET", key_of(alice), "in", "the way")
    finally:
        nodes[0].proc.send_signal(signal.SIGCONT)
    rf.wait_until(lambda: "writing back the token revocations this node keeps failed"
                  in nodes[0].log_text(), 10, what="the failure said")
    time.sleep(2.5)  # two more tries, each failing: unready all along, said once
    assert nodes.api(0).get("/readyz").status == 503
    assert nodes[0].log_text().count("writing back the token revocations") == 1, \
        nodes[0].log_tail()
    own_redis.call("DEL", key_of(alice))
    rf.wait_until(lambda: nodes.api(0).get("/readyz").status == 200, 5, what="/readyz 200")
    assert own_redis.call("EXISTS", key_of(alice)) == 1
    assert "1 token revocations written back (0 held already, after failed tries)" \
        in nodes[0].log_text(), nodes[0].log_tail()


def test_a_call_redis_did_not_write_leaves_the_node_no_copy(make_gateway, keys, own_redis):
    """Redis holds a later cut-off (another node's, with a short N): the call's older one is
    not written ("the later stays, with its N"), so once that key ends the old token is
    accepted again, at this node too, and a Redis restarted empty gets nothing back."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    alice = uid("alice")
    old = nodes[0].token(sub=alice)
    later = str(int(time.time() * 1000) + 5000)
    own_redis.call("SET", key_of(alice), later, "PX", 4000)
    revoke(nodes.api(0), alice, "?revoke_s=60")
    assert own_redis.call("GET", key_of(alice)) == later
    refused_at_handshake(nodes[0], old)
    rf.wait_until(lambda: not own_redis.call("EXISTS", key_of(alice)), 10, what="the key's end")
    accepted(nodes[0], old, alice)
    restart_empty(nodes, own_redis)
    assert not own_redis.call("EXISTS", key_of(alice))
    accepted(nodes[0], old, alice)


def test_the_node_refuses_from_its_own_copy_while_redis_lacks_the_key(
        make_gateway, keys, own_redis):
    """Between Redis losing the key and the write-back, the node the revocation went through
    still refuses the old token (here the key is deleted under a Redis that stays up)."""
    nodes = rf.Nodes(make_gateway, keys, own_redis, n=1).start()
    alice = uid("alice")
    old = nodes[0].token(sub=alice)
    revoke(nodes.api(0), alice, "?revoke_s=60")
    own_redis.call("DEL", key_of(alice))
    refused_at_handshake(nodes[0], old)
    refused_at_renewal(nodes[0], old, alice)


def test_revocation_is_written_back_to_the_master_a_sentinel_failover_brings(
        make_gateway, keys, tmp_path):
    """The master is SIGKILLed and its replica promoted; that replica lacks the key (deleted
    on the master before: a replica promoted before it had it).  The node finds the new
    master through the sentinel and writes the revocation back there."""
    from test_redis_sentinel import sentinel_gateway, start_cluster
    started = start_cluster(tmp_path)
    try:
        master, replica, sentinel = started
        g = sentinel_gateway(make_gateway, keys, sentinel, command_timeout_ms=500)
        alice = uid("alice")
        old = g.token(sub=alice)
        revoke(API(g), alice, "?revoke_s=60")
        master.call("DEL", key_of(alice))
        rf.wait_until(lambda: not replica.call("EXISTS", key_of(alice)), 5,
                      what="the replica without the key")
        master.kill()
        rf.wait_until(lambda: sentinel.master_port() == replica.port, 20, step=0.1,
                      what="sentinel promotes the replica")
        rf.wait_until(lambda: API(g).get("/readyz").status == 200, 20,
                      what="readyz after the failover")
        assert replica.call("EXISTS", key_of(alice)) == 1
        assert 0 < replica.call("PTTL", key_of(alice)) <= 60000
        assert "1 token revocations written back" in g.log_text(), g.log_tail()
        refused_at_handshake(g, old)
        accepted(g, g.token(sub=alice, iat=int(time.time()) + 1), alice)
    finally:
        for p in reversed(started):
            p.kill()
