"""subscribe/unsubscribe: channel grammar, access control (claims, "*", subscription
tokens, user:<other>), max_subscriptions, idempotence, delivery with "channel", the own
user channel kept, and what a token renewal (`auth`) takes away."""
import time

import pytest

import gw
from test_flow_util import FULL_PLUGINS, Client, flow_vhosts, uid


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    vh = flow_vhosts(keys)
    open_plugins = dict(FULL_PLUGINS, subscription={"policy": "open"})
    vh.append(gw.public_vhost(keys, "open", tls=False, plugins=open_plugins))
    vh.append(gw.public_vhost(keys, "small", tls=False, plugins=dict(FULL_PLUGINS),
                              limits={"max_subscriptions": 3}))
    return make_module_gateway(vh)


def delivered(api, c, channel):
    """Publish a marker to channel; True when c receives it (with the right "channel")."""
    marker = uid("m")
    api.publish(channel, "flow_marker", {"marker": marker})
    c.sync()
    got = c.take("flow_marker", marker=marker)
    for m in got:
        assert m.get("channel") == channel, "delivered without the right top-level channel: %r" % m
    assert len(got) <= 1, "marker delivered %d times: %r" % (len(got), got)
    return bool(got)


# ------------------------------------------------------------------ claims
@pytest.mark.parametrize("kind,claim", [("zone", "zones"), ("channel", "channels"), ("chat", "chats")])
def test_claim_array_allows_listed_id(g, api, kind, claim):
    ok = uid("id")
    with Client(g, **{claim: ["other", ok]}) as c:
        ack = c.subscribe("%s:%s" % (kind, ok))
        assert ack["payload"].get("channel") == "%s:%s" % (kind, ok), ack
        assert delivered(api, c, "%s:%s" % (kind, ok))


def test_subscribe_with_an_empty_id_is_acked_with_it(g, api):
    """"" is an id (the contract bounds ids at 64 characters, with no floor): the ack the
    store's answer releases echoes it, and a refusal carries it too."""
    ok = uid("id")
    with Client(g, zones=[ok]) as c:
        c.send("subscribe", {"channel": "zone:" + ok}, id="")
        c.send("subscribe", {"channel": "zone:not-" + ok}, id="")
        answers = []
        deadline = time.monotonic() + 3
        while len(answers) < 2 and time.monotonic() < deadline:
            m = c._recv(max(0.0, deadline - time.monotonic()))
            if m["type"] in ("ack", "error"):
                answers.append(m)
        assert [(m["type"], m.get("id")) for m in answers] == [("ack", ""), ("error", "")], answers
        assert answers[0]["payload"].get("channel") == "zone:" + ok, answers
        assert answers[1]["payload"].get("code") == 1004, answers
        assert delivered(api, c, "zone:" + ok)


@pytest.mark.parametrize("kind,claim", [("zone", "zones"), ("channel", "channels"), ("chat", "chats")])
def test_claim_array_denies_unlisted_id_1004(g, api, kind, claim):
    chan = "%s:%s" % (kind, uid("id"))
    with Client(g, **{claim: ["something-else"]}) as c:
        c.err("subscribe", {"channel": chan}, 1004)
        c.sync()  # the connection stays open
        assert not delivered(api, c, chan), "denied subscription still delivers"


@pytest.mark.parametrize("kind,claim", [("zone", "zones"), ("channel", "channels"), ("chat", "chats")])
def test_claim_star_allows_any_id(g, api, kind, claim):
    chan = "%s:%s" % (kind, uid("id"))
    with Client(g, **{claim: ["*"]}) as c:
        c.subscribe(chan)
        assert delivered(api, c, chan)


@pytest.mark.parametrize("kind", ["zone", "channel", "chat"])
def test_missing_claim_denies_1004(g, kind):
    with Client(g) as c:
        c.err("subscribe", {"channel": "%s:%s" % (kind, uid("id"))}, 1004)
        c.sync()


def test_claim_of_one_kind_does_not_grant_another(g):
    with Client(g, zones=["*"], channels=["x1"]) as c:
        c.err("subscribe", {"channel": "channel:x2"}, 1004)
        c.err("subscribe", {"channel": "chat:x1"}, 1004)
        c.subscribe("zone:x1")


# ------------------------------------------------------------------ subscription tokens
def sub_token(g, sub, channel, **kw):
    return g.token(sub=sub, channel=channel, **kw)


def test_subscription_token_allows(g, api):
    with Client(g) as c:
        chan = "zone:" + uid("z")
        c.subscribe(chan, token=sub_token(g, c.sub, chan))
        assert delivered(api, c, chan)


def test_subscription_token_for_other_user_denied_1004(g):
    with Client(g) as c:
        chan = "zone:" + uid("z")
        c.err("subscribe", {"channel": chan, "parameters": {"token": sub_token(g, "someone-else", chan)}}, 1004)
        c.sync()


def test_subscription_token_for_other_channel_denied_1004(g):
    with Client(g) as c:
        chan = "zone:" + uid("z")
        c.err("subscribe", {"channel": chan, "parameters": {"token": sub_token(g, c.sub, "zone:other")}}, 1004)
        c.err("subscribe", {"channel": "channel:" + chan[5:],
                            "parameters": {"token": sub_token(g, c.sub, chan)}}, 1004)
        c.sync()


def test_subscription_token_expired_denied_1004(g):
    with Client(g) as c:
        chan = "zone:" + uid("z")
        c.err("subscribe", {"channel": chan, "parameters": {"token": sub_token(g, c.sub, chan, ttl=-600)}}, 1004)
        c.sync()


def test_subscription_token_bad_signature_denied_1004(g):
    with Client(g) as c:
        chan = "zone:" + uid("z")
        bad = sub_token(g, c.sub, chan, key=b"not-the-vhost-key")
        c.err("subscribe", {"channel": chan, "parameters": {"token": bad}}, 1004)
        good = sub_token(g, c.sub, chan)
        forged = good.rsplit(".", 1)[0] + "." + gw.b64u(b"\0" * 32)
        c.err("subscribe", {"channel": chan, "parameters": {"token": forged}}, 1004)
        c.sync()


# ------------------------------------------------------------------ user channels
def test_user_channel_of_other_user_denied_1004(g):
    with Client(g, zones=["*"]) as c:
        c.err("subscribe", {"channel": "user:" + uid("other")}, 1004)
        c.sync()


def test_user_channel_of_other_user_denied_even_with_open_policy(g):
    with Client(g, vhost="open") as c:
        c.err("subscribe", {"channel": "user:" + uid("other")}, 1004)


def test_own_user_channel_and_alias_canonical(g):
    with Client(g) as c:
        assert c.subscribe("user")["payload"].get("channel") == "user:" + c.sub
        assert c.subscribe("user:" + c.sub)["payload"].get("channel") == "user:" + c.sub


def test_auto_subscribed_to_own_user_channel(g, api):
    with Client(g) as c:
        c.sync()
        assert delivered(api, c, "user:" + c.sub)


def test_open_policy_allows_any_zone(g, api):
    with Client(g, vhost="open") as c:
        for kind in ("zone", "channel", "chat"):
            chan = "%s:%s" % (kind, uid("id"))
            c.subscribe(chan)


# ------------------------------------------------------------------ grammar
@pytest.mark.parametrize("channel", [
    "", "zone", "zone:", "zone: x", "zone:a b", "zone:a/b", "zone:a.b", "zone:a:b", "zone:\u00e9",
    "zone:" + "a" * 65, "room:1", "ZONE:1", "user:", "users", "chat:", "channel:", ":1", "zone:1\n",
])
def test_invalid_channel_grammar_1003(g, channel):
    with Client(g, zones=["*"], channels=["*"], chats=["*"]) as c:
        c.err("subscribe", {"channel": channel}, 1003)
        c.sync()


def test_id_of_64_chars_and_full_alphabet_accepted(g):
    with Client(g, zones=["*"]) as c:
        c.subscribe("zone:" + "a" * 64)
        c.subscribe("zone:AZaz09_-")


def test_channel_not_a_string_1002(g):
    with Client(g, zones=["*"]) as c:
        c.err("subscribe", {"channel": 5}, 1002)
        c.err("subscribe", {}, 1002)


# ------------------------------------------------------------------ idempotence, unsubscribe
def test_subscribe_twice_is_success_and_delivers_once(g, api):
    chan = "zone:" + uid("z")
    with Client(g, zones=["*"]) as c:
        c.subscribe(chan)
        c.subscribe(chan)
        assert delivered(api, c, chan)  # asserts a single copy


def test_unsubscribe_unknown_is_success(g):
    with Client(g) as c:
        ack = c.ok("unsubscribe", {"channel": "zone:" + uid("never")})
        assert ack["payload"].get("channel", "").startswith("zone:"), ack


def test_unsubscribe_stops_delivery(g, api):
    chan = "channel:" + uid("c")
    with Client(g, channels=["*"]) as c:
        c.subscribe(chan)
        assert delivered(api, c, chan)
        c.ok("unsubscribe", {"channel": chan})
        assert not delivered(api, c, chan)


def test_own_user_channel_cannot_be_left_1003(g, api):
    """user (and its alias) is held for the connection's life: leaving it would take the
    connection out of revocation, presence and notifications."""
    with Client(g) as c:
        for name in ("user", "user:" + c.sub):
            m = c.err("unsubscribe", {"channel": name}, 1003)
            assert "user channel" in m["payload"]["message"], m
        c.ok("unsubscribe", {"channel": "zone:" + uid("never")})
        c.sync()
        assert delivered(api, c, "user:" + c.sub)
        r = api.call("DELETE", "/v1/users/%s/connections" % c.sub)
        assert r.status == 200 and r.json == {"closed": 1}, r
        gw.expect_error(c.ws, 1001)
        assert c.wait_close(5).code == 4001


def test_unsubscribe_invalid_channel_1003(g):
    with Client(g) as c:
        c.err("unsubscribe", {"channel": "zone:a b"}, 1003)


# ------------------------------------------------------------------ max_subscriptions
def test_max_subscriptions_1003_beyond(g):
    with Client(g, vhost="small", zones=["*"]) as c:
        for i in range(3):
            c.subscribe("zone:m%d" % i)
        c.err("subscribe", {"channel": "zone:m3"}, 1003)
        c.subscribe("zone:m1")  # already subscribed: still a success at the limit
        c.ok("unsubscribe", {"channel": "zone:m0"})
        c.subscribe("zone:m3")
        c.err("subscribe", {"channel": "zone:m4"}, 1003)
        c.sync()


@pytest.mark.parametrize("params", [[], "x", 5, {"token": 5}])
def test_bad_parameters_1002(g, params):
    with Client(g) as c:  # no claims: the subscription-token route is the one taken
        c.err("subscribe", {"channel": "zone:p1", "parameters": params}, 1002)
        c.sync()


# ------------------------------------------------------------------ renewal
def renew(g, c, **claims):
    """Renews c's token with these claims; the ack, with no error before it."""
    ack = c.ok("auth", {"token": g.token(sub=c.sub, **claims)})
    assert not c.take("error"), "an error came before the renewal's ack: %r" % c.inbox
    return ack


def revoked(c):
    """The channels of the "subscription revoked" errors c got (after a sync)."""
    c.sync()
    got = c.take("error")
    for m in got:
        p = m["payload"]
        assert p["code"] == 1004 and p["message"] == "subscription revoked", m
        assert "id" not in m, m
    return [m["payload"].get("channel") for m in got]


def test_renewal_revokes_the_zone_the_new_token_drops(g, api):
    a, b = uid("za"), uid("zb")
    with Client(g, zones=[a, b]) as c:
        c.subscribe("zone:" + a)
        c.subscribe("zone:" + b)
        renew(g, c, zones=[a])
        assert revoked(c) == ["zone:" + b]
        assert not delivered(api, c, "zone:" + b)
        assert delivered(api, c, "zone:" + a)
        assert delivered(api, c, "user:" + c.sub)
        r = api.get("/v1/channels/zone:" + b)
        assert r.status == 200 and r.json == {"channel": "zone:" + b, "subscribers": 0}, r
        r = api.get("/v1/channels/zone:" + a)
        assert r.json == {"channel": "zone:" + a, "subscribers": 1}, r
        c.subscribe("zone:" + a)  # still subscribed: a repeat
        c.err("subscribe", {"channel": "zone:" + b}, 1004)  # the new claims rule


@pytest.mark.parametrize("kind,claim", [("channel", "channels"), ("chat", "chats")])
def test_renewal_revokes_channels_and_chats_the_new_token_drops(g, api, kind, claim):
    keep, drop = "%s:%s" % (kind, uid("k")), "%s:%s" % (kind, uid("d"))
    with Client(g, **{claim: [keep[len(kind) + 1:], drop[len(kind) + 1:]]}) as c:
        c.subscribe(keep)
        c.subscribe(drop)
        renew(g, c, **{claim: [keep[len(kind) + 1:]]})
        assert revoked(c) == [drop]
        assert not delivered(api, c, drop)
        assert delivered(api, c, keep)


def test_renewal_without_claims_revokes_every_claimed_channel_but_the_own(g, api):
    z, ch = "zone:" + uid("z"), "channel:" + uid("c")
    with Client(g, zones=["*"], channels=["*"]) as c:
        c.subscribe(z)
        c.subscribe(ch)
        c.subscribe("user")
        renew(g, c)
        assert sorted(revoked(c)) == sorted([z, ch])
        assert delivered(api, c, "user:" + c.sub)
        assert not delivered(api, c, z) and not delivered(api, c, ch)


def test_renewal_keeps_a_subscription_token_grant(g, api):
    chan = "zone:" + uid("z")
    with Client(g) as c:  # no zones claim: the subscription token is the only grant
        c.subscribe(chan, token=sub_token(g, c.sub, chan))
        renew(g, c)
        assert revoked(c) == []
        assert delivered(api, c, chan)


def test_renewal_with_star_zones_keeps_everything(g, api):
    a, b = "zone:" + uid("za"), "zone:" + uid("zb")
    with Client(g, zones=[a[5:], b[5:]]) as c:
        c.subscribe(a)
        c.subscribe(b)
        renew(g, c, zones=["*"])
        assert revoked(c) == []
        assert delivered(api, c, a) and delivered(api, c, b)


def test_renewal_under_the_open_policy_keeps_everything(g, api):
    chan = "zone:" + uid("z")
    with Client(g, vhost="open") as c:
        c.subscribe(chan)
        c.ok("auth", {"token": g.token(vhost="open", sub=c.sub)})
        assert revoked(c) == []
        assert delivered(api, c, chan)  # the same namespace as the API's


def test_refused_renewal_changes_nothing(g, api):
    a, b = "zone:" + uid("za"), "zone:" + uid("zb")
    with Client(g, zones=[a[5:], b[5:]]) as c:
        c.subscribe(a)
        c.subscribe(b)
        c.err("auth", {"token": g.token(sub=uid("other"))}, 1001)
        assert revoked(c) == []
        assert delivered(api, c, a) and delivered(api, c, b)
        renew(g, c, zones=[a[5:]])  # the old claims were still the ones in force
        assert revoked(c) == [b]


def read_until_answered(c, ids, timeout=5.0):
    """Every message c reads until each of ids is answered (ack or error), in order."""
    got, deadline = [], time.monotonic() + timeout
    while not all(any(m.get("id") == i for m in got) for i in ids):
        got.append(c._recv(max(0.0, deadline - time.monotonic())))
    return got


def test_subscribe_on_its_way_when_a_renewal_revokes_it_is_not_acked(g, api, store_server):
    """A subscribe sent under claims that grant its channel, then an `auth` whose claims do
    not.  On Redis, frozen while the gateway reads both, the renewal is answered first (its
    store check was sent before the subscribe's second store call): the channel is revoked
    while the subscribe is on its way, and the subscribe's own answer is then 1004
    "subscription revoked" (it used to be an ack).  The memory store answers at once: the
    subscribe is acked before the renewal, which then revokes it.  Either way the client
    hears of the revocation once, is answered once per request, and is not subscribed."""
    z = "zone:" + uid("z")
    with Client(g, zones=[z[5:]]) as c:
        c.sync()
        if store_server:
            store_server.freeze()
        try:
            c.send("subscribe", {"channel": z}, id="s1")
            c.send("auth", {"token": g.token(sub=c.sub)}, id="a1")
            if store_server:
                time.sleep(0.3)  # both read while the store cannot answer
        finally:
            if store_server:
                store_server.thaw()
        got = read_until_answered(c, ["s1", "a1"])
        c.sync()
        got += c.inbox
        c.inbox = []
        sub = [m for m in got if m.get("id") == "s1"]
        auth = [m for m in got if m.get("id") == "a1"]
        notices = [m for m in got if m["type"] == "error" and "id" not in m]
        assert len(sub) == 1 and len(auth) == 1, got
        assert auth[0]["type"] == "ack", auth
        assert [m["payload"] for m in notices] == [
            {"code": 1004, "message": "subscription revoked", "channel": z}], got
        if store_server:  # on its way when revoked
            assert sub[0]["type"] == "error", "a revoked subscribe was acked: %r" % got
        if sub[0]["type"] == "error":
            assert sub[0]["payload"] == {"code": 1004, "message": "subscription revoked"}, sub
            assert got.index(sub[0]) > got.index(notices[0]), got
        else:  # done before the renewal, which revoked it
            assert got.index(sub[0]) < got.index(auth[0]) < got.index(notices[0]), got
        assert not delivered(api, c, z)
        r = api.get("/v1/channels/" + z)
        assert r.json == {"channel": z, "subscribers": 0}, r
        c.err("subscribe", {"channel": z}, 1004)
        c.sync()
        assert not [m for m in c.inbox if m.get("id") == "s1"], c.inbox


def test_token_grant_of_a_subscribe_the_store_failed_does_not_outlive_it(
        make_gateway, keys, store_server):
    """A subscription-token subscribe that Redis fails (frozen past command_timeout_ms:
    2000) leaves the channel, and the grant the plugin recorded for it goes too: a later
    subscribe of the channel under the claims is revoked by a renewal without them.  The
    stale grant used to keep it.  (The memory store does not fail.)"""
    if store_server is None:
        pytest.skip("needs a store that can fail: PAVILION_STORE=redis")
    from test_flow_util import API
    g = make_gateway(flow_vhosts(keys), store=dict(gw.default_store(), command_timeout_ms=300))
    api = API(g)
    z = "zone:" + uid("z")
    with Client(g) as c:  # no zones claim: the subscription token is the grant
        c.sync()
        store_server.freeze()
        try:
            m = c.request("subscribe", {"channel": z,
                                        "parameters": {"token": sub_token(g, c.sub, z)}})
        finally:
            store_server.thaw()
        assert m["type"] == "error" and m["payload"]["code"] == 2000, m
        assert gw.wait_until(lambda: api.get("/readyz").status == 200, 10), "store not back"
        renew(g, c, zones=[z[5:]])
        c.subscribe(z)  # granted by the claims now
        renew(g, c)
        c.sync()
        c.take("resync")  # the store came back
        assert revoked(c) == [z]
        assert not delivered(api, c, z)
