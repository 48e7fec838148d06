"""Notifications: created through the internal API, delivered to exactly the user's
connections, mark_read across devices and in the inbox listing, since-replay."""
import http.client
import json
import signal
import threading
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
        assert not c.take("replay_incomplete"), "a replay that fits is not cut: %r" % c.inbox


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


# ---- a replay larger than a connection may hold: pages

PAD = "x" * 10000  # a notification of some 10 kB: about 25 of them fill 256 KiB


@pytest.fixture(scope="module")
def small(make_module_gateway, keys):
    """A gateway whose connections may hold 256 KiB of replays not yet sent (64 times an
    outbound_queue_bytes of 4096)."""
    return make_module_gateway(flow_vhosts(keys, limits={"outbound_queue_bytes": 4096}))


def _ms(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _shift(text, ms):
    return _rfc3339(_ms(text) + timedelta(milliseconds=ms))


def replay_round(c, since):
    """Subscribes c again to its user channel with `since`; what it got until a sync: the
    notifications before the replay_incomplete (the page), that message (None without
    one), and the notifications after it."""
    c.subscribe("user", since=since)
    c.sync()
    kinds = ("notification", "replay_incomplete")
    got = [m for m in c.inbox if m.get("type") in kinds]
    c.inbox = [m for m in c.inbox if m.get("type") not in kinds]
    cuts = [i for i, m in enumerate(got) if m["type"] == "replay_incomplete"]
    assert len(cuts) <= 1, "one replay_incomplete per replay: %r" % [m["payload"] for m in got]
    if not cuts:
        return got, None, []
    return got[:cuts[0]], got[cuts[0]], got[cuts[0] + 1:]


def ids_of(msgs):
    return [m["payload"]["id"] for m in msgs]


def test_since_replay_larger_than_a_connection_may_hold_comes_in_pages(small):
    """An inbox replay larger than what a connection may hold of replays not yet sent (64 x
    outbound_queue_bytes, 256 KiB here) closed the connection 4008, and a client that
    reconnected with the same `since` met the same 4008 forever.  It comes in pages: as much
    as fits, then replay_incomplete with the createdAt of the first notification not sent
    less 1 ms, on an open connection; subscribing again with that `since` brings the next
    page.  The union is every notification once after dropping by id, in createdAt order;
    only one of since's very millisecond may come again."""
    api, user = API(small), uid()
    ids = [api.notify(user, note("%d:" % i + PAD)).json["id"] for i in range(60)]
    created = {n["id"]: n["createdAt"] for n in api.inbox(user)["notifications"]}
    seen, since, pages = [], "2000-01-01T00:00:00.000Z", []
    with Client(small, user) as c:
        while since is not None:
            assert len(pages) < 10, "no end after %d pages: %r" % (len(pages), pages)
            page, cut, after = replay_round(c, since)
            got = ids_of(page)
            pages.append(len(got))
            assert not after, "nothing live was published: %r" % after
            assert len(set(got)) == len(got), "a page sent one twice: %r" % got
            again = [i for i in got if i in seen]
            assert all(created[i] == _shift(since, 1) for i in again), \
                "came again though created after since + 1 ms (%s): %r" % (since, again)
            seen += [i for i in got if i not in seen]
            if cut is None:
                break
            assert cut.get("channel") == "user:" + user, cut
            assert len(seen) < len(ids), "cut after the last one: %r" % cut
            assert cut["payload"] == {"since": _shift(created[ids[len(seen)]], -1)}, \
                "since of the first not sent (%s) less 1 ms: %r" % (created[ids[len(seen)]], cut)
            since = cut["payload"]["since"]
    assert len(pages) >= 3 and 0 < pages[0] < len(ids), "pages of %r" % pages
    assert seen == ids, "union of the pages: %d of %d, in order: %s" % (
        len(set(seen) & set(ids)), len(ids), seen == sorted(seen, key=ids.index))


def test_since_replay_that_fits_sends_no_replay_incomplete(small):
    api, user = API(small), uid()
    ids = [api.notify(user, note("%d:" % i + PAD)).json["id"] for i in range(10)]
    with Client(small, user) as c:
        page, cut, after = replay_round(c, "2000-01-01T00:00:00Z")
        assert ids_of(page) == ids and cut is None and not after, (ids_of(page), cut)


def test_live_notification_during_a_paged_replay_arrives_once(small):
    """A notification created while a paged replay is read and sent (from another thread)
    is held and sent after the page, or comes in a later page: in no round (a page, what
    follows it live) twice, and once in the union after dropping by id.  (One created
    between two pages is sent live and again in the next page: dropped by id.)"""
    api, user = API(small), uid()
    ids = [api.notify(user, note("%d:" % i + PAD)).json["id"] for i in range(60)]
    live = []
    t = threading.Thread(target=lambda: live.append(api.notify(user, note("live")).json["id"]))
    seen, since, rounds = [], "2000-01-01T00:00:00.000Z", 0
    with Client(small, user) as c:
        t.start()
        while since is not None:
            rounds += 1
            assert rounds < 10, "no end after %d rounds" % rounds
            page, cut, after = replay_round(c, since)
            if t.is_alive() or rounds == 1:
                t.join()
                c.sync()
                after += c.take("notification")
            got = ids_of(page) + ids_of(after)
            assert len(set(got)) == len(got), "round %d sent one twice: %r" % (rounds, got)
            seen += [i for i in got if i not in seen]
            since = cut and cut["payload"]["since"]
        assert rounds >= 3
        c.sync()
        assert not c.take("notification"), "more after the last page"
    assert sorted(seen) == sorted(ids + live) and len(seen) == len(ids) + 1, \
        "union: %d of %d, the live one %s" % (len(set(seen) & set(ids)), len(ids), live[0] in seen)
    assert [i for i in seen if i in ids] == ids, "the inbox's in createdAt order"


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



def stop(g):
    """SIGSTOP, and wait until the process is stopped."""
    g.proc.send_signal(signal.SIGSTOP)
    stat = "/proc/%d/stat" % g.proc.pid
    deadline = time.monotonic() + 5
    while open(stat).read().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, "gateway not stopped"
        time.sleep(0.001)


def test_live_notification_during_two_overlapping_since_replays_arrives_once(make_gateway, keys,
                                                                          store_server):
    """Two `since` subscribes of one connection whose replays overlap: a notification created
    while the second replay is read arrives once, after both replays, though the first ends
    before the second was read.  (Both shared one hold and the first replay's end ended it:
    the notification went out live, then again in the second replay.)

    On Redis the replay is read asynchronously; to make the overlap certain, the first read
    waits in Redis (SIGSTOP) until the node has taken it, the node is stopped while Redis
    answers it and a second node creates the notification, and the node goes on with the
    answer, the second subscribe and the notification waiting together: it takes the
    subscribe first (libev, the default event loop, runs what became ready last first), so
    the second catch-up starts before the first ends.  The memory store answers a replay
    in the subscribe that asked, so two never overlap there: the notification is created
    after the second replay, with the same result."""
    store = gw.default_store()
    g = make_gateway(flow_vhosts(keys), store=store)
    other = make_gateway(flow_vhosts(keys), store=store) if store_server else g
    api, user = API(other), uid()
    old = [api.notify(user, note("old%d" % i)).json["id"] for i in range(2)]
    sub = {"channel": "user", "parameters": {"since": "2000-01-01T00:00:00Z"}}
    with Client(g, user) as c:
        c.sync()
        if store_server:
            store_server.freeze()
        try:
            c.send("subscribe", sub, id="a")
            time.sleep(0.1)  # the node has read it and asked the store
            if store_server:
                stop(g)
        finally:
            if store_server:
                store_server.thaw()
        try:
            if store_server:
                live = api.notify(user, note("live")).json["id"]  # through the other node
            c.send("subscribe", sub, id="b")
            time.sleep(0.1)
        finally:
            if store_server:
                g.proc.send_signal(signal.SIGCONT)
        if not store_server:
            c.sync()
            live = api.notify(user, note("live")).json["id"]
        c.sync()
        answers = [(m.get("type"), m.get("id")) for m in c.inbox if m.get("id") in ("a", "b")]
        assert answers == [("ack", "a"), ("ack", "b")], c.inbox
        got = ids_of(c.take("notification"))
    assert got.count(live) == 1, "the live one %s came %d times: %r (old %r)" \
        % (live, got.count(live), got, old)
    assert got == old + old + [live], "both replays, then the live one: %r (old %r, live %s)" \
        % (got, old, live)


def test_notification_larger_than_a_page_is_a_page_of_its_own(make_gateway, keys):
    """With api.max_body_bytes above what a connection may hold of replays (64 x
    outbound_queue_bytes: 256 KiB here), one notification can be larger than a whole page.
    It goes out alone, as a page of its own, followed by replay_incomplete for the rest, and
    the connection stays open (the page end after it closed the connection 4008).  Before it
    and after it, the pages are as usual."""
    vh = flow_vhosts(keys, limits={"outbound_queue_bytes": 4096})
    vh[1]["api"]["max_body_bytes"] = 1 << 20
    g = make_gateway(vh)
    api, user = API(g), uid()
    big = "x" * 300000
    ids = [api.notify(user, note("0:" + PAD)).json["id"],
           api.notify(user, note("1:" + big)).json["id"],
           api.notify(user, note("2:" + PAD)).json["id"]]
    seen, since, pages = [], "2000-01-01T00:00:00.000Z", []
    with Client(g, user) as c:
        while since is not None:
            assert len(pages) < 5, "no end after %d pages: %r" % (len(pages), pages)
            page, cut, after = replay_round(c, since)
            pages.append(ids_of(page))
            assert not after, after
            seen += [i for i in ids_of(page) if i not in seen]
            since = cut and cut["payload"]["since"]
        c.sync()  # still open
    assert pages == [ids[:1], ids[1:2], ids[2:]], "pages %r of %r" % (pages, ids)
    assert seen == ids
