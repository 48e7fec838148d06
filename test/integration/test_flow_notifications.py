"""Notifications: created through the internal API, delivered to exactly the user's
connections, mark_read across devices and in the inbox listing, since-replay."""
import http.client
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

import gw
from test_flow_util import API, Client, flow_vhosts, uid


def note(content="hello", **kw):
    n = {"type": "like", "content": content}
    n.update(kw)
    return n


def test_notification_reaches_exactly_the_users_connections(g, api):
    alice, bob = uid("alice"), uid("bob")
    with Client(g, alice) as a1, Client(g, alice) as a2, Client(g, bob) as b:
        for c in (a1, a2, b):
            c.sync()  # open: its user channel is live (protocol.md §1)
        sender = {"id": bob, "username": "bob", "profilePhoto": "https://x.example/b.png"}
        ref = {"type": "post", "id": "p1"}
        r = api.notify(alice, note("liked your post", sender=sender, reference=ref))
        nid = r.json and r.json.get("id")
        assert isinstance(nid, str) and nid, r
        for c in (a1, a2):
            m = c.wait_for("notification")
            assert m.get("channel") == "user:" + alice, m
            p = m["payload"]
            assert p["id"] == nid and p["type"] == "like" and p["content"] == "liked your post", m
            assert p["isRead"] is False, m
            assert isinstance(p.get("createdAt"), str) and p["createdAt"], m
            assert p.get("sender") == sender and p.get("reference") == ref, m
            c.sync()
            assert not c.take("notification"), "%s got the notification twice" % c.sub
        b.sync()
        assert not b.take("notification"), "bob got alice's notification: %r" % b.inbox


def test_notification_created_is_listed_in_inbox(g, api):
    user = uid()
    ids = [api.notify(user, note("n%d" % i)).json["id"] for i in range(3)]
    box = api.inbox(user)
    assert box.get("userId") == user, box
    listed = [n["id"] for n in box["notifications"]]
    assert listed == ids, "inbox should list oldest first: %r vs %r" % (listed, ids)
    assert all(n["isRead"] is False for n in box["notifications"]), box
    lim = api.inbox(user, "?limit=2")
    assert len(lim["notifications"]) == 2, lim


def test_mark_read_reaches_other_device_and_inbox(g, api):
    alice = uid("alice")
    with Client(g, alice) as a1, Client(g, alice) as a2:
        for c in (a1, a2):
            c.sync()  # open: its user channel is live (protocol.md §1)
        nid = api.notify(alice, note()).json["id"]
        other = api.notify(alice, note("still unread")).json["id"]
        a1.wait_for("notification", id=nid)
        a2.wait_for("notification", id=nid)
        a1.ok("mark_read", {"notificationId": nid})
        m = a2.wait_for("notification_read")
        assert m["payload"] == {"notificationId": nid}, m
        a1.sync()
        assert not a1.take("notification_read"), "the marking connection should not get notification_read"
        box = api.inbox(alice)
        state = {n["id"]: n["isRead"] for n in box["notifications"]}
        assert state == {nid: True, other: False}, box
        unread = api.inbox(alice, "?unread=1")
        assert [n["id"] for n in unread["notifications"]] == [other], unread


def test_mark_read_unknown_id_is_1004(g, api):
    with Client(g) as c:
        c.err("mark_read", {"notificationId": "no-such-notification"}, 1004)
        c.sync()  # connection stays open


def test_mark_read_of_another_users_notification_is_1004(g, api):
    alice, bob = uid("alice"), uid("bob")
    nid = api.notify(alice, note()).json["id"]
    with Client(g, bob) as b:
        b.err("mark_read", {"notificationId": nid}, 1004)
    box = api.inbox(alice)
    assert [n["isRead"] for n in box["notifications"]] == [False], "bob marked alice's notification: %r" % box


def _rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def test_subscribe_user_since_replays_newer_notifications_oldest_first(g, api):
    user = uid()
    old = api.notify(user, note("old")).json["id"]
    time.sleep(1.1)  # created strictly after `since` even at one-second resolution
    since = datetime.now(timezone.utc)
    time.sleep(0.05)
    new = [api.notify(user, note("new%d" % i)).json["id"] for i in range(3)]
    with Client(g, user) as c:
        c.subscribe("user", since=_rfc3339(since))
        c.sync()
        msgs = c.take("notification")
        got = [m["payload"]["id"] for m in msgs]
        assert got == new, "since-replay: expected %r (oldest first, not %s), got %r" % (new, old, got)
        assert all(m.get("channel") == "user:" + user for m in msgs), \
            "replayed notifications carry their channel: %r" % msgs


def test_subscribe_user_since_in_the_future_replays_nothing(g, api):
    user = uid()
    api.notify(user, note())
    with Client(g, user) as c:
        c.subscribe("user", since=_rfc3339(datetime.now(timezone.utc) + timedelta(hours=1)))
        c.sync()
        assert not c.take("notification"), c.inbox


def test_since_replay_larger_than_the_outbound_queue_arrives_whole(g, api):
    """The replay is what the client asked for, not a backlog it failed to read: an inbox
    of more than outbound_queue_bytes (256 KiB) is sent whole, as a recovery is."""
    user = uid()
    ids = [api.notify(user, note("%d:" % i + "x" * 60000)).json["id"] for i in range(6)]
    with Client(g, user) as c:
        c.subscribe("user", since="2000-01-01T00:00:00Z")
        c.sync()
        got = [m["payload"]["id"] for m in c.take("notification")]
        assert got == ids, "since-replay of %d notifications of 60 kB: got %d" % (len(ids), len(got))


def test_since_replay_of_more_than_10000_notifications_ends_with_the_newest(make_gateway, keys):
    """store.inbox_size may be up to 100000: a replay of such an inbox sends every
    notification after `since`, the newest included."""
    g = make_gateway(flow_vhosts(keys), store=dict(gw.default_store(), inbox_size=20000))
    api, user, n = API(g), uid(), 10005
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    headers = {"Authorization": "Bearer " + api.key, "Content-Type": "application/json"}
    try:
        for i in range(n):  # one kept-alive connection: 10005 requests in a few seconds
            body = {"userId": user, "notification": note(str(i))}
            conn.request("POST", "/v1/notifications", body=json.dumps(body), headers=headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 201, r.status
    finally:
        conn.close()
    with Client(g, user) as c:
        c.subscribe("user", since="2000-01-01T00:00:00Z")
        c.sync()
        got = [m["payload"]["content"] for m in c.take("notification")]
        assert got == [str(i) for i in range(n)], \
            "replay of %d: got %d, the last %r" % (n, len(got), got[-2:])


def test_notification_payload_shape_rejected_400(g, api):
    user = uid()
    for n in ({"content": "no type"}, {"type": "like"}, {"type": 5, "content": "x"}, "notanobject"):
        r = api.post("/v1/notifications", {"userId": user, "notification": n})
        assert r.status == 400, "notification %r: expected 400, got %r" % (n, r)
        assert isinstance(r.json, dict) and isinstance(r.json.get("error"), dict) \
            and isinstance(r.json["error"].get("code"), str), r


@pytest.mark.parametrize("payload", [{}, {"notificationId": 5}, {"notificationId": None}])
def test_mark_read_bad_shape_1002(g, payload):
    with Client(g) as c:
        c.err("mark_read", payload, 1002)
        c.sync()


def test_inbox_bounded_to_500_oldest_evicted(g, api):
    user = uid()
    ids = [api.notify(user, note("n%d" % i)).json["id"] for i in range(503)]
    box = api.inbox(user, "?limit=1000")
    listed = [n["id"] for n in box["notifications"]]
    assert len(listed) == 500, "inbox holds %d (bound 500)" % len(listed)
    assert listed == ids[3:], "the three oldest should be evicted, order kept"
    with Client(g, user) as c:
        c.err("mark_read", {"notificationId": ids[0]}, 1004)  # evicted: no longer in the inbox
        c.ok("mark_read", {"notificationId": ids[3]})
