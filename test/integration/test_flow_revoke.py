"""Token revocation through the internal API: DELETE /v1/users/{id}/connections?revoke_s=N
closes the user's connections and, for N seconds, refuses the tokens issued until then, at
the handshake and at a renewal.  Without revoke_s nothing is recorded.  On one gateway, on
either store (PAVILION_STORE=redis); across nodes: test_redis_revoke.py.  The memory
store's bound on its records: on that store only."""
import http.client
import time

import pytest

import gw
from test_flow_api import assert_error
from test_flow_util import API, Client, flow_vhosts, metric, uid


def revoke(api, user, query="?revoke_s=60", closed=None):
    r = api.call("DELETE", "/v1/users/%s/connections%s" % (user, query))
    assert r.status == 200 and set(r.json) == {"closed"}, r
    if closed is not None:
        assert r.json["closed"] == closed, r
    return r


def refused_at_handshake(g, token):
    """The upgrade completes, then error 1001 "token revoked" and close 4001."""
    ws = g.connect(token)
    try:
        m = gw.expect_error(ws, 1001)
        assert m["payload"]["message"] == "token revoked", m
        cl = ws.wait_close(5)
        assert cl.code == 4001, "expected close 4001, got %r" % cl
    finally:
        ws.close()


def accepted(g, token, sub):
    with Client(g, sub, token=token) as c:
        c.sync()


def refused_at_renewal(g, token, sub):
    """On a connection opened with a fresh token, a renewal with token is refused as
    revoked, and the connection is still served."""
    with Client(g, sub, token=g.token(sub=sub, iat=int(time.time()) + 1)) as c:
        c.sync()
        m = c.err("auth", {"token": token}, 1001)
        assert m["payload"]["message"] == "token revoked", m
        c.sync()


def test_old_token_is_refused_at_the_handshake_after_a_revocation(g, api):
    alice = uid("alice")
    old = g.token(sub=alice)
    with Client(g, alice, token=old) as c:
        c.sync()
        revoke(api, alice, closed=1)
        m = gw.expect_error(c.ws, 1001)
        assert m["payload"]["message"] == "connection revoked", m
        assert c.wait_close(5).code == 4001
    before = api.metrics()
    refused_at_handshake(g, old)
    after = api.metrics()
    # counted as a token that does not verify is: a failure, no connection
    assert metric(after, "pavilion_auth_failures_total") == \
        metric(before, "pavilion_auth_failures_total") + 1
    assert metric(after, "pavilion_connections_total") == \
        metric(before, "pavilion_connections_total")
    assert api.presence(alice).get("connections") == 0


def test_token_issued_after_the_revocation_is_accepted(g, api):
    alice = uid("alice")
    before = g.token(sub=alice)  # iat: the second of the call, or one before it
    revoke(api, alice, closed=0)
    accepted(g, g.token(sub=alice, iat=int(time.time()) + 1), alice)
    refused_at_handshake(g, before)


def test_token_without_iat_is_refused(g, api):
    alice = uid("alice")
    revoke(api, alice)
    refused_at_handshake(g, g.token(sub=alice, iat=None))
    # another user's tokens are untouched, with or without iat
    bob = uid("bob")
    accepted(g, g.token(sub=bob, iat=None), bob)


def test_renewal_with_an_old_token_is_refused_and_the_connection_stays(g, api):
    alice = uid("alice")
    old = g.token(sub=alice)
    revoke(api, alice)
    with Client(g, alice, token=g.token(sub=alice, iat=int(time.time()) + 1)) as c:
        c.sync()
        m = c.err("auth", {"token": old}, 1001)
        assert m["payload"]["message"] == "token revoked", m
        c.sync()  # still open, still served
        c.ok("auth", {"token": g.token(sub=alice, iat=int(time.time()) + 1)})
        c.sync()


def test_revocation_ends_after_its_seconds(g, api):
    alice = uid("alice")
    old = g.token(sub=alice)
    revoke(api, alice, "?revoke_s=2")
    refused_at_handshake(g, old)
    time.sleep(2.2)
    accepted(g, old, alice)


def test_a_second_revocation_replaces_the_first(g, api):
    alice = uid("alice")
    old = g.token(sub=alice)
    revoke(api, alice, "?revoke_s=600")
    time.sleep(1.1)
    between = g.token(sub=alice, iat=int(time.time()))
    accepted(g, between, alice)  # issued after the first
    revoke(api, alice, "?revoke_s=2")
    refused_at_handshake(g, between)  # the second's time
    refused_at_handshake(g, old)
    time.sleep(2.2)  # the second's seconds, not the first's
    accepted(g, old, alice)
    accepted(g, between, alice)


def test_without_revoke_s_nothing_is_recorded(g, api):
    alice = uid("alice")
    old = g.token(sub=alice)
    with Client(g, alice, token=old) as c:
        c.sync()
        r = api.call("DELETE", "/v1/users/%s/connections" % alice)
        assert r.status == 200 and r.json == {"closed": 1}, r
        assert c.wait_close(5).code == 4001
    accepted(g, old, alice)


def test_other_query_parameters_are_ignored_as_elsewhere(g, api):
    alice = uid("alice")
    old = g.token(sub=alice)
    revoke(api, alice, "?x=1", closed=0)
    accepted(g, old, alice)


@pytest.mark.parametrize("query", [
    "?revoke_s=0", "?revoke_s=2592001", "?revoke_s=-1", "?revoke_s=1.5", "?revoke_s=abc",
    "?revoke_s=", "?revoke_s", "?revoke_s=10&revoke_s=10", "?revoke_s=10&revoke_s",
    "?revoke_s=99999999999999999999999",
])
def test_bad_revoke_s_is_400_and_changes_nothing(g, api, query):
    alice = uid("alice")
    old = g.token(sub=alice)
    with Client(g, alice, token=old) as c:
        c.sync()
        r = api.call("DELETE", "/v1/users/%s/connections%s" % (alice, query))
        e = assert_error(r, 400)
        assert e["code"] == "bad_request" and "revoke_s" in e["message"], r
        c.sync()  # not closed
    accepted(g, old, alice)


def test_largest_revoke_s_is_accepted(g, api):
    alice = uid("alice")
    # made first: one made after the call may fall in the next second,
    # which is after the revocation
    token = g.token(sub=alice)
    revoke(api, alice, "?revoke_s=2592000")
    refused_at_handshake(g, token)


MAX_REVOCATIONS = 100000  # PAV_MAX_KEPT_REVOCATIONS


def revoke_many(api, users):
    """DELETE ?revoke_s=600 for each user, on one kept-alive connection (a fresh one per
    call would take minutes for 100,000)."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    h = {"Authorization": "Bearer " + api.key}
    try:
        for u in users:
            conn.request("DELETE", "/v1/users/%s/connections?revoke_s=600" % u, headers=h)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (u, r.status, body)
    finally:
        conn.close()


@pytest.mark.skipif(gw.STORE == "redis", reason="the memory store's bound: Redis holds the "
                    "records there, in the operator's memory")
def test_memory_store_refuses_a_new_users_revocation_when_full(make_gateway, keys):
    g = make_gateway(flow_vhosts(keys), log={"level": "warn", "format": "text"})
    api = API(g)
    alice = uid("alice")
    alice_old = g.token(sub=alice)
    held = ["full-%d" % i for i in range(MAX_REVOCATIONS)]
    revoke_many(api, held[:1])
    first_done = time.time()
    revoke_many(api, held[1:])
    with Client(g, alice, token=alice_old) as c:
        c.sync()
        r = api.call("DELETE", "/v1/users/%s/connections?revoke_s=60" % alice)
        e = assert_error(r, 500)
        assert e["code"] == "internal_error", r
        assert "token revocations full" in e["message"] and \
            str(MAX_REVOCATIONS) in e["message"], r
        c.sync()  # nothing recorded, so nothing closed
        assert gw.wait_until(lambda: "token revocation of user %s is refused" % alice
                             in g.log_text()), g.log_tail()
        # the caller can still close the connections
        r = api.call("DELETE", "/v1/users/%s/connections" % alice)
        assert r.status == 200 and r.json == {"closed": 1}, r
        assert c.wait_close(5).code == 4001
    accepted(g, alice_old, alice)
    # a user held is replaced, full or not: a token issued after its first revocation,
    # and at or before the second, is refused from the second on
    token = g.token(sub=held[0], iat=int(first_done) + 1)
    assert gw.wait_until(lambda: time.time() >= int(first_done) + 2)
    with Client(g, held[0], token=token) as c:
        c.sync()
        revoke(api, held[0], "?revoke_s=600", closed=1)
        assert c.wait_close(5).code == 4001
    refused_at_handshake(g, token)
