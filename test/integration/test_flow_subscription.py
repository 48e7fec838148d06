"""subscribe/unsubscribe: channel grammar, access control (claims, "*", subscription
tokens, user:<other>), max_subscriptions, idempotence, delivery with "channel", the own
user channel kept."""
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
