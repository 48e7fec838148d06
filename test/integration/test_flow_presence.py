"""Presence: the presence message, automatic online/offline, status_update routing
(shared zone:/channel:/chat: subscriptions and the user's other connections), once per
connection, unchanged status not re-sent, join announcements, the presence snapshot."""
import time
from datetime import datetime, timezone

import pytest

import gw
from test_flow_util import ALL, Client, flow_vhosts, uid


def C(g, sub=None):
    return Client(g, sub, **ALL)


def updates(c, user=None):
    """Sync, then take the status_updates (about `user` when given)."""
    c.sync()
    return c.take("status_update", **({"userId": user} if user else {}))


def check_update(m, user, status):
    assert m.get("type") == "status_update", m
    p = m.get("payload")
    assert isinstance(p, dict) and p.get("userId") == user and p.get("status") == status, \
        "expected status_update %s=%s, got %r" % (user, status, m)
    assert isinstance(p.get("lastActive"), str) and p["lastActive"], "status_update without lastActive: %r" % m


def wait_presence(api, user, status, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        p = api.presence(user)
        if p.get("status") == status or time.monotonic() > deadline:
            return p
        time.sleep(0.05)


def test_zone_member_sees_status_update_stranger_does_not(g, api):
    zone, elsewhere = "zone:" + uid("z"), "zone:" + uid("z")
    with C(g) as alice, C(g) as bob, C(g) as carol:
        alice.subscribe(zone)
        bob.subscribe(zone)
        carol.subscribe(elsewhere)
        for c in (alice, bob, carol):
            c.sync()
            c.inbox.clear()
        alice.ok("presence", {"status": "busy"})
        got = updates(bob, alice.sub)
        assert len(got) == 1, "zone member should get one status_update, got %r" % got
        check_update(got[0], alice.sub, "busy")
        assert got[0].get("payload", {}).get("lastActive"), got
        assert updates(carol) == [], "stranger got a status_update: %r" % carol.inbox


def test_status_update_reaches_users_other_connections(g, api):
    user = uid("alice")
    with C(g, user) as a1, C(g, user) as a2:
        a1.sync(), a2.sync()
        a2.inbox.clear()
        a1.ok("presence", {"status": "away"})
        got = updates(a2, user)
        assert len(got) == 1, "other device should get one status_update, got %r" % got
        check_update(got[0], user, "away")


def test_unchanged_status_not_resent(g, api):
    zone = "zone:" + uid("z")
    with C(g) as alice, C(g) as bob:
        alice.subscribe(zone)
        bob.subscribe(zone)
        alice.ok("presence", {"status": "busy"})
        assert len(updates(bob, alice.sub)) == 1
        alice.ok("presence", {"status": "busy"})
        assert updates(bob, alice.sub) == [], "unchanged status re-sent: %r" % bob.inbox
        alice.ok("presence", {"status": "online"})
        got = updates(bob, alice.sub)
        assert len(got) == 1 and got[0]["payload"]["status"] == "online", got


def test_one_copy_across_two_shared_channels(g, api):
    z, ch = "zone:" + uid("z"), "channel:" + uid("c")
    with C(g) as alice, C(g) as bob:
        for c in (alice, bob):
            c.subscribe(z)
            c.subscribe(ch)
        bob.sync()
        bob.inbox.clear()
        alice.ok("presence", {"status": "away"})
        got = updates(bob, alice.sub)
        assert len(got) == 1, "status_update through two shared channels must arrive once: %r" % got
        # it went to alice's own channel and both shared ones: no one channel to name
        assert "channel" not in got[0], got


def test_one_copy_for_own_device_sharing_a_channel(g, api):
    """The other device is reachable as 'own connection' and through a shared zone."""
    user, z = uid("alice"), "zone:" + uid("z")
    with C(g, user) as a1, C(g, user) as a2:
        a1.subscribe(z)
        a2.subscribe(z)
        a2.sync()
        a2.inbox.clear()
        a1.ok("presence", {"status": "busy"})
        got = updates(a2, user)
        assert len(got) == 1, "expected one status_update, got %r" % got


def test_publish_status_update_through_two_routes_delivers_once(g, api):
    """A status_update published to a channel bob is in twice over (two connections of
    bob each get one copy; a connection never gets two)."""
    z = "zone:" + uid("z")
    bob = uid("bob")
    with C(g, bob) as b1, C(g, bob) as b2:
        b1.subscribe(z)
        b1.subscribe(z)
        b2.subscribe(z)
        for c in (b1, b2):
            c.sync()
            c.inbox.clear()
        payload = {"userId": "someone", "status": "busy", "lastActive": "2026-01-01T00:00:00.000Z"}
        r = api.publish(z, "status_update", payload)
        assert r.json.get("recipients") == 2, r
        for c in (b1, b2):
            got = updates(c, "someone")
            assert len(got) == 1 and got[0]["payload"] == payload and got[0].get("channel") == z, got


def test_first_connection_online_last_close_offline(g, api):
    user, z = uid("alice"), "zone:" + uid("z")
    with C(g) as bob:
        bob.subscribe(z)
        a1 = C(g, user)
        a1.subscribe(z)
        p = api.presence(user)
        assert p.get("userId") == user and p.get("status") == "online" and p.get("connections") == 1, p
        a2 = C(g, user)
        a2.subscribe(z)  # still shares the zone with bob after a1 leaves
        assert api.presence(user).get("connections") == 2
        a1.close()
        a2.sync()
        p = api.presence(user)
        assert p["status"] == "online" and p.get("connections") == 1, "one device left: %r" % p
        bob.sync()
        bob.take("status_update")
        before = datetime.now(timezone.utc)
        a2.close()
        p = wait_presence(api, user, "offline")
        assert p.get("status") == "offline" and p.get("connections") == 0, p
        la = p.get("lastActive")
        assert isinstance(la, str) and gw.TS_RE.match(la), "lastActive should be RFC 3339 ms UTC: %r" % p
        la_dt = datetime.strptime(la, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        assert abs((la_dt - before).total_seconds()) < 5, "lastActive %s is not the close time" % la
        m = bob.wait_for("status_update", userId=user)
        check_update(m, user, "offline")
        assert m["payload"]["lastActive"] == la, (m, p)


def test_status_set_stays_while_connected_and_a_new_session_starts_online(g, api):
    """The status a user set stays while it has a connection: another opening or
    closing leaves it (both stores; with Redis also across a node taken for dead, see
    test_redis_failover.py).  After its last close, a first connection is online."""
    user = uid("alice")
    a1 = C(g, user)
    a1.ok("presence", {"status": "busy"})
    a2 = C(g, user)
    a1.close()
    a2.sync()
    p = api.presence(user)
    assert p["status"] == "busy" and p["connections"] == 1, p
    a2.close()
    p = wait_presence(api, user, "offline")
    assert p["connections"] == 0, p
    with C(g, user) as a3:
        a3.sync()
        p = api.presence(user)
        assert p["status"] == "online" and p["connections"] == 1, p


def test_last_close_after_offline_by_hand_moves_last_active_unannounced(g, api):
    """A user who set "offline" and kept the connection was active until it closed: the
    close leaves the status (nothing announced: it did not change) and sets lastActive."""
    user, z = uid("alice"), "zone:" + uid("z")
    with C(g) as bob:
        bob.subscribe(z)
        a = C(g, user)
        a.subscribe(z)
        a.ok("presence", {"status": "offline"})
        set_by_hand = api.presence(user)["lastActive"]
        bob.wait_for("status_update", userId=user, status="offline")
        updates(bob, user)  # the join's "online", if it came after
        time.sleep(1.1)
        a.close()
        deadline = time.monotonic() + 3
        while api.presence(user)["connections"] and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        p = api.presence(user)
        assert p["status"] == "offline" and p["connections"] == 0, p
        assert p["lastActive"] > set_by_hand, (set_by_hand, p)
        assert not updates(bob, user), "an unchanged status was announced"


def test_first_join_announces_status_to_channel(g, api):
    z = "zone:" + uid("z")
    user = uid("alice")
    with C(g) as bob:
        bob.subscribe(z)
        bob.sync()
        bob.inbox.clear()
        with C(g, user) as a1, C(g, user) as a2:
            a1.ok("presence", {"status": "away"})
            assert updates(bob) == [], "bob shares nothing with alice yet: %r" % bob.inbox
            a1.subscribe(z)
            got = updates(bob, user)
            assert len(got) == 1, "alice joining the zone should announce her status once: %r" % got
            check_update(got[0], user, "away")
            assert got[0].get("channel") == z, "a join announcement names its channel: %r" % got
            a2.subscribe(z)  # not her first connection in the zone
            assert updates(bob, user) == [], "second device joining re-announced: %r" % bob.inbox


def test_presence_snapshot_one_update_per_distinct_user(g, api):
    z = "zone:" + uid("z")
    alice, bob = uid("alice"), uid("bob")
    with C(g, alice) as a, C(g, bob) as b1, C(g, bob) as b2, C(g) as carol:
        a.ok("presence", {"status": "busy"})
        for c in (a, b1, b2):
            c.subscribe(z)
        carol.sync()
        carol.inbox.clear()
        carol.subscribe(z, presence=True)
        got = updates(carol)
        by_user = {}
        for m in got:
            by_user.setdefault(m["payload"]["userId"], []).append(m)
        assert len(by_user.get(alice, [])) == 1 and by_user[alice][0]["payload"]["status"] == "busy", got
        assert len(by_user.get(bob, [])) == 1 and by_user[bob][0]["payload"]["status"] == "online", got
        assert set(by_user) <= {alice, bob, carol.sub}, "snapshot names users not in the zone: %r" % got
        assert all(len(v) == 1 for v in by_user.values()), "a user appears twice: %r" % got
        assert all(m.get("channel") == z for m in got), "snapshot updates carry their channel: %r" % got


def test_subscribe_without_presence_parameter_sends_no_snapshot(g, api):
    z = "zone:" + uid("z")
    with C(g) as a, C(g) as carol:
        a.subscribe(z)
        carol.sync()
        carol.subscribe(z)
        assert updates(carol, a.sub) == [], "no snapshot was asked for: %r" % carol.inbox


@pytest.mark.parametrize("status", ["online", "offline", "busy", "away"])
def test_valid_statuses_accepted(g, api, status):
    with C(g) as c:
        c.ok("presence", {"status": status})
        assert api.presence(c.sub).get("status") == status


@pytest.mark.parametrize("payload", [{"status": "sleeping"}, {"status": ""}, {"status": 1}, {},
                                     {"status": "ONLINE"}])
def test_invalid_status_1002(g, api, payload):
    with C(g) as c:
        c.err("presence", payload, 1002)
        c.sync()
        assert api.presence(c.sub).get("status") == "online"


def test_presence_snapshot_on_resubscribe(g, api):
    """subscribe with presence: true to a channel the connection is already in (an
    idempotent success) is still followed by the snapshot."""
    z = "zone:" + uid("z")
    with C(g) as a, C(g) as carol:
        a.ok("presence", {"status": "away"})
        a.subscribe(z)
        carol.subscribe(z)
        carol.sync()
        carol.inbox.clear()
        carol.subscribe(z, presence=True)
        got = updates(carol, a.sub)
        assert len(got) == 1 and got[0]["payload"]["status"] == "away", \
            "expected a snapshot status_update for %s, got %r" % (a.sub, got)


def test_unsubscribed_member_no_longer_gets_status_updates(g, api):
    z = "zone:" + uid("z")
    with C(g) as alice, C(g) as bob:
        alice.subscribe(z)
        bob.subscribe(z)
        bob.ok("unsubscribe", {"channel": z})
        bob.sync()
        bob.inbox.clear()
        alice.ok("presence", {"status": "busy"})
        assert updates(bob, alice.sub) == [], "bob left the zone: %r" % bob.inbox


def test_member_whose_renewal_revoked_the_zone_shares_no_status_through_it(g, api):
    """A subscription a token renewal revokes is left as an unsubscribe leaves it: the
    zone no longer carries status_updates to or from that connection."""
    z = "zone:" + uid("z")
    with C(g) as alice, C(g) as bob:
        alice.subscribe(z)
        bob.subscribe(z)
        bob.ok("auth", {"token": g.token(sub=bob.sub)})  # no zones any more
        bob.wait_for("error", code=1004, channel=z)
        for c in (alice, bob):
            c.sync()
            c.inbox.clear()
        alice.ok("presence", {"status": "busy"})
        assert updates(bob, alice.sub) == [], "bob's zone was revoked: %r" % bob.inbox
        bob.ok("presence", {"status": "away"})
        assert updates(alice, bob.sub) == [], "bob's zone was revoked: %r" % alice.inbox


def test_presence_snapshot_larger_than_the_outbound_queue_arrives_whole(make_gateway, keys):
    """A snapshot is what the client asked for, not a backlog it failed to read: with the
    smallest outbound queue (4 KiB), 24 users of long ids (about 7 kB of status_updates)
    still arrive, as the first 1000 users of 64-character ids (about 290 kB) do with the
    default 256 KiB."""
    g = make_gateway(flow_vhosts(keys, limits={"outbound_queue_bytes": 4096}))
    z = "zone:" + uid("z" * 40)
    members = [C(g, uid("m" * 48)) for _ in range(24)]
    try:
        for m in members:
            m.subscribe(z)
        with C(g) as carol:
            carol.subscribe(z, presence=True)
            got = {m["payload"]["userId"] for m in updates(carol)}
            assert got >= {m.sub for m in members}, \
                "snapshot of %d users: got %d" % (len(members), len(got))
    finally:
        for m in members:
            m.close()
