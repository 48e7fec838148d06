"""Token revocation on the redis backend, across 2 nodes on one Redis: a revocation made
through one node refuses the old token at the other, at the handshake and at a renewal, and
after that node restarts; it is one key per user, with the revocation's seconds as its TTL,
gone at its end.  (One node, either store: test_flow_revoke.py.)"""
import time

import pytest

import gw
import redisfix as rf
from test_flow_revoke import accepted, refused_at_handshake, revoke
from test_flow_util import Client, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")


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
    with Client(nodes[1], alice, token=nodes[1].token(sub=alice, iat=int(time.time()) + 1)) as c:
        c.sync()
        m = c.err("auth", {"token": old}, 1001)
        assert m["payload"]["message"] == "token revoked", m
        c.sync()


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
