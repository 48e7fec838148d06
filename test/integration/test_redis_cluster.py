"""Several gateway processes on one Redis are one gateway (the redis backend, DESIGN 7.2):
publications, notifications, presence, caps, revocation and counts across 3 nodes, and
two processes sharing one listen address with reuse_port.

Each module test runs against the module's own redis-server (conftest.py's `redis`, on a free
loopback port) and 3 gateways with distinct ports, one namespace, one Redis."""
import socket
import threading
import time

import pytest

import gw
import redisfix as rf
import wsclient
from test_flow_util import ALL, API, Client, flow_vhosts, metric, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")


@pytest.fixture(scope="module")
def nodes(redis, make_module_gateway, keys):
    return rf.Nodes(make_module_gateway, keys, redis, n=3,
                    public_over={"limits": {"max_connections_per_user": 4}}).start()


def C(node, sub=None):
    return Client(node, sub, **ALL)


def opened(*clients):
    """Each connection is open: counted, its user channel live (the store answers later;
    a connection's first answer comes after that)."""
    for c in clients:
        c.sync()
    return list(clients)


def updates(nodes, c, user):
    """The status_updates about user that c got from everything every node did before now."""
    nodes.settle()
    c.sync()
    return c.take("status_update", userId=user)


close = rf.close_to_eof


def statuses(msgs):
    return [m["payload"]["status"] for m in msgs]


# ------------------------------------------------------------------ 1. publications
def test_publications_reach_every_node_once_in_one_order(nodes):
    """Three APIs publish to one channel at once: every subscriber on every node gets every
    publication once, all in the same order (Redis' order), each publisher's in its order."""
    z = "zone:" + uid("z")
    subs = [C(nodes[i % 3]) for i in range(6)]
    try:
        for c in subs:
            c.subscribe(z)
        per, answers = 25, [[] for _ in range(3)]

        def publish(i):
            api = nodes.api(i)
            for n in range(per):
                answers[i].append(api.publish(z, "tick", {"src": i, "n": n}).json)

        threads = [threading.Thread(target=publish, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        seen = []
        for c in subs:
            got = [c.wait_for("tick", timeout=10) for _ in range(3 * per)]
            assert all(m.get("channel") == z for m in got), got
            seq = [(m["payload"]["src"], m["payload"]["n"]) for m in got]
            assert len(set(seq)) == 3 * per, "a publication came twice: %r" % seq
            for i in range(3):
                assert [n for s, n in seq if s == i] == list(range(per)), seq
            c.sync()
            assert not c.take("tick"), "more than once: %r" % c.inbox
            seen.append(seq)
        assert all(s == seen[0] for s in seen), "nodes saw different orders"
        offsets = sorted(a["offset"] for ans in answers for a in ans)
        assert offsets == list(range(1, 3 * per + 1)), offsets
        assert all(a["recipients"] == 6 for ans in answers for a in ans), answers
    finally:
        for c in subs:
            c.close()


def test_presence_reach_over_several_channels_reaches_each_connection_once(nodes):
    z1, z2, z3 = ("zone:" + uid("z") for _ in range(3))
    with C(nodes[0]) as u, C(nodes[1]) as o, C(nodes[2]) as p:
        for z in (z1, z2, z3):
            u.subscribe(z)
        o.subscribe(z1)
        o.subscribe(z2)
        p.subscribe(z3)
        for c in (u, o, p):
            c.sync()
            c.inbox.clear()
        u.ok("presence", {"status": "busy"})
        got = updates(nodes, o, u.sub)
        assert statuses(got) == ["busy"], got
        assert statuses(updates(nodes, p, u.sub)) == ["busy"]
        assert not updates(nodes, u, u.sub), "the acting connection is left out"


# ------------------------------------------------------------------ 2. notifications
def note(text="hello"):
    return {"type": "like", "content": text}


def test_notification_reaches_every_node_and_mark_read_syncs_the_others(nodes):
    user = uid("n")
    cs = opened(*[Client(nodes[i], user) for i in range(3)])
    try:
        nid = nodes.api(1).notify(user, note()).json["id"]
        for c in cs:
            m = c.wait_for("notification", id=nid)
            assert m.get("channel") == "user:" + user and m["payload"]["isRead"] is False, m
            c.sync()
            assert not c.take("notification"), "delivered twice on one node"
        cs[0].ok("mark_read", {"notificationId": nid})
        for c in cs[1:]:
            m = c.wait_for("notification_read")
            assert m["payload"] == {"notificationId": nid}, m
        cs[0].sync()
        assert not cs[0].take("notification_read"), "the marking connection is left out"
        box = nodes.api(2).inbox(user)["notifications"]
        assert [(n["id"], n["isRead"]) for n in box] == [(nid, True)], box
    finally:
        for c in cs:
            c.close()


def test_inbox_holds_the_newest_500_across_nodes(nodes):
    user = uid("n")
    ids = [nodes.api(i % 3).notify(user, note(str(i))).json["id"] for i in range(520)]
    for i in range(3):
        box = nodes.api(i).inbox(user)["notifications"]
        assert [n["id"] for n in box] == ids[20:], "node %d: not the newest 500 in order" % i
        created = [n["createdAt"] for n in box]
        assert created == sorted(created), created


def test_since_replay_across_nodes_has_no_duplicate_and_no_gap(nodes):
    """Notifications keep coming through node 2 while a connection on node 1 subscribes to
    its user channel with since: from the ack on it gets the inbox after since, then what
    came live meanwhile, each once and in creation order; with what it got live before
    asking, nothing created after since is missing.  (A live one delivered before the
    replay was asked for may come again in it: the client drops it by id.)"""
    user = uid("n")
    api2 = nodes.api(1)
    api2.notify(user, note("before"))
    time.sleep(1.1)
    since_ms = int(time.time() * 1000)
    time.sleep(0.05)
    early = [api2.notify(user, note("early%d" % i)).json["id"] for i in range(20)]
    posted, stop = [], threading.Event()

    def keep_posting():
        i = 0
        while not stop.is_set() and i < 200:
            posted.append(api2.notify(user, note("live%d" % i)).json["id"])
            i += 1

    with Client(nodes[0], user) as c:
        c.sync()
        t = threading.Thread(target=keep_posting)
        t.start()
        try:
            since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since_ms / 1000)) + \
                ".%03dZ" % (since_ms % 1000)
            time.sleep(0.05)
            c.subscribe("user", since=since)
            before = [m["payload"]["id"] for m in c.take("notification")]
            time.sleep(0.3)
        finally:
            stop.set()
            t.join(30)
        want = early + posted
        after = []
        while set(before) | set(after) != set(want):
            after.append(c.wait_for("notification", timeout=10)["payload"]["id"])
        c.sync()
        after += [m["payload"]["id"] for m in c.take("notification")]
        assert len(after) == len(set(after)), "a notification came twice after the ack"
        assert after == [i for i in want if i in set(after)], "not in creation order"
        assert not set(before) - set(want)


# ------------------------------------------------------------------ 3. presence
def test_online_at_the_first_connection_anywhere_offline_at_the_last(nodes):
    z = "zone:" + uid("z")
    user = uid("p")
    with C(nodes[2]) as o:
        o.subscribe(z)
        o.sync()
        o.inbox.clear()
        a = C(nodes[0], user)
        a.subscribe(z)
        assert statuses(updates(nodes, o, user)) == ["online"], "the first connection anywhere"
        b = C(nodes[1], user)
        b.subscribe(z)
        p = nodes.api(2).presence(user)
        assert p["status"] == "online" and p["connections"] == 2, p
        close(a)
        assert not updates(nodes, o, user), "not the last connection: still online"
        assert nodes.api(0).presence(user)["connections"] == 1
        close(b)
        got = updates(nodes, o, user)
        assert statuses(got) == ["offline"], got
        p = nodes.api(0).presence(user)
        assert p["status"] == "offline" and p["connections"] == 0, p


def published_meanwhile(redis, action):
    """Run action(); every message published on the Redis server meanwhile (PSUBSCRIBE *)."""
    sub = redis.client()
    try:
        sub.call("PSUBSCRIBE", "*")
        action()
        sub.sock.settimeout(0.5)
        got = []
        try:
            while True:
                got.append(sub.read())  # ["pmessage", pattern, channel, message]
        except (socket.timeout, TimeoutError):
            return got
    finally:
        sub.close()


def test_a_user_sharing_no_channel_comes_and_goes_without_a_publication(nodes, redis):
    """A first connection's online and a last close's offline have no other connection of
    the user to reach: the status is stored (every node sees it), and nothing is published
    about the user (other tests' nodes may publish meanwhile: only this user's count)."""
    user = uid("p")

    def come_and_go():
        a = opened(C(nodes[0], user))[0]
        rf.wait_until(lambda: nodes.api(1).presence(user)["status"] == "online", what="online")
        close(a)
        rf.wait_until(lambda: nodes.api(2).presence(user)["connections"] == 0, what="closed")
        assert nodes.api(2).presence(user)["status"] == "offline"
        nodes.settle()

    nodes.settle()
    got = published_meanwhile(redis, come_and_go)
    assert [m for m in got if user in str(m)] == []
    # a user in a zone: both changes are published (to the zone), and seen so here
    z = "zone:" + uid("z")
    with C(nodes[2]) as o:
        o.subscribe(z)
        o.sync()
        o.inbox.clear()

        def in_a_zone():
            b = C(nodes[0], user)
            b.subscribe(z)
            assert statuses(updates(nodes, o, user)) == ["online"]
            close(b)
            assert statuses(updates(nodes, o, user)) == ["offline"]

        got = published_meanwhile(redis, in_a_zone)
        assert len([m for m in got if user in str(m)]) >= 2, got


def test_presence_snapshot_spans_nodes(nodes):
    z = "zone:" + uid("z")
    a, b = C(nodes[0]), C(nodes[1])
    try:
        a.subscribe(z)
        b.subscribe(z)
        b.ok("presence", {"status": "away"})
        with C(nodes[2]) as c:
            c.subscribe(z, presence=True)
            c.sync()
            snap = {}
            for m in c.take("status_update"):
                snap.setdefault(m["payload"]["userId"], []).append(m["payload"]["status"])
            assert snap.get(a.sub) == ["online"] and snap.get(b.sub) == ["away"], snap
    finally:
        a.close()
        b.close()


def test_concurrent_opens_and_closes_on_two_nodes_never_reorder_online_and_offline(nodes):
    """Connections of one user come and go on two nodes at once: whatever the interleaving,
    the status every node ends up with is online while one is open and offline after the
    last closed, and the last announcement says the same."""
    z = "zone:" + uid("z")
    user = uid("p")

    def churn(node, rounds):
        for _ in range(rounds):
            c = C(node, user)
            c.subscribe(z)
            close(c)

    with C(nodes[2]) as o:
        o.subscribe(z)
        for _ in range(3):
            ts = [threading.Thread(target=churn, args=(nodes[i], 8)) for i in (0, 1)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            nodes.settle()
            for i in range(3):
                p = nodes.api(i).presence(user)
                assert p["status"] == "offline" and p["connections"] == 0, (i, p)
            got = updates(nodes, o, user)
            assert got and statuses(got)[-1] == "offline", statuses(got)
            last = C(nodes[0], user)
            last.subscribe(z)
            assert statuses(updates(nodes, o, user))[-1] == "online"
            assert nodes.api(1).presence(user)["status"] == "online"
            close(last)
            assert statuses(updates(nodes, o, user)) == ["offline"]


# ------------------------------------------------------------------ 4. caps, revoke, counts
def test_max_connections_per_user_counts_every_node(nodes):
    """8 concurrent opens over 3 nodes with a cap of 4 leave exactly 4 open."""
    user = uid("cap")
    results = [None] * 8

    def open_one(i):
        g = nodes[i % 3]
        ws = g.connect(g.token(sub=user))
        try:
            ws.send_json({"type": "heartbeat_ack", "id": "x"})
            while True:
                m = ws.recv_json(5)
                if m.get("type") == "ack":
                    results[i] = ("open", ws)
                    return
                if m.get("type") == "error":
                    assert m["payload"]["code"] == 1005, m
                    results[i] = ("refused", ws.wait_close(5).code)
                    return
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = ("failed", repr(e))

    ts = [threading.Thread(target=open_one, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    try:
        kinds = [r[0] for r in results]
        assert kinds.count("open") == 4 and kinds.count("refused") == 4, results
        assert all(r[1] == 4029 for r in results if r[0] == "refused"), results
        for i in range(3):
            assert nodes.api(i).presence(user)["connections"] == 4
    finally:
        for r in results:
            if r and r[0] == "open":
                r[1].close()


def test_delete_user_connections_closes_them_on_every_node(nodes):
    user, other = uid("rv"), uid("rv")
    cs = opened(*[Client(nodes[i], user) for i in (0, 1, 2, 2)])
    bystander = opened(Client(nodes[0], other))[0]
    try:
        r = nodes.api(1).call("DELETE", "/v1/users/%s/connections" % user)
        assert r.status == 200 and r.json == {"closed": 4}, r
        for c in cs:
            gw.expect_error(c.ws, 1001)
            assert c.wait_close(5).code == 4001
        bystander.sync()
        nodes.settle()
        p = nodes.api(0).presence(user)
        assert p["connections"] == 0 and p["status"] == "offline", p
        r = nodes.api(2).call("DELETE", "/v1/users/%s/connections" % user)
        assert r.status == 200 and r.json == {"closed": 0}, r
    finally:
        for c in cs + [bystander]:
            c.close()


def test_channel_subscribers_count_every_node(nodes):
    ch = "channel:" + uid("c")
    cs = [C(nodes[i]) for i in (0, 0, 1, 1, 1, 2)]
    try:
        for c in cs:
            c.subscribe(ch)
        for i in range(3):
            r = nodes.api(i).get("/v1/channels/" + ch)
            assert r.status == 200 and r.json == {"channel": ch, "subscribers": 6}, r
        close(cs[2])
        cs[5].ok("unsubscribe", {"channel": ch})
        nodes.settle()
        for i in range(3):
            assert nodes.api(i).get("/v1/channels/" + ch).json["subscribers"] == 4
        r = nodes.api(2).publish(ch, "tick", {})
        assert r.json["recipients"] == 4, r
    finally:
        for c in cs:
            c.close()


# ------------------------------------------------------------------ store semantics
def test_a_message_sent_right_after_connecting_does_not_overtake_the_open(nodes):
    """A presence set by a connection's first message is not undone by that connection's
    own automatic online: its input waits until the store counted it and on_open ran."""
    for _ in range(5):
        user = uid("p")
        g = nodes[0]
        ws = g.connect(g.token(sub=user, **ALL))
        ws.send_json({"type": "presence", "id": "p", "payload": {"status": "busy"}})
        while True:
            m = ws.recv_json(5)
            if m.get("id") == "p":
                assert m["type"] == "ack", m
                break
        nodes.settle()
        p = nodes.api(2).presence(user)
        assert p["status"] == "busy" and p["connections"] == 1, p
        ws.close()


def test_a_subscriber_after_the_last_one_left_gets_a_feed_of_its_own(nodes):
    """A subscribes and unsubscribes at once (its feed request still pending, then told to
    stop), B subscribes right then: B is acked and served, not failed with 2000."""
    for _ in range(10):
        z = "zone:" + uid("z")
        a, b = C(nodes[0]), C(nodes[0])
        try:
            a.send("subscribe", {"channel": z}, id="s")
            a.send("unsubscribe", {"channel": z}, id="u")
            b.send("subscribe", {"channel": z}, id="b")
            m = b.wait_for("ack", timeout=5)
            assert m.get("id") == "b" and m["payload"]["channel"] == z, m
            nodes.api(1).publish(z, "tick", {})
            assert b.wait_for("tick")["channel"] == z
        finally:
            a.close()
            b.close()


# ------------------------------------------------------------------ 8. reuse_port
def test_two_processes_share_one_listen_and_are_one_gateway(make_gateway, keys, redis):
    """reuse_port: two processes on one listen address; connections spread over both, and
    a publication through either reaches every connection."""
    port = gw.free_port()
    gws = []
    for _ in range(2):
        vh = flow_vhosts(keys)
        vh[0]["listen"] = "127.0.0.1:%d" % port
        vh[0]["reuse_port"] = True
        gws.append(make_gateway(vhosts=vh, start=False, store=rf.redis_store(redis.url)))
    for g in gws:
        g.start()
    rf.wait_until(lambda: all(API(g).get("/readyz").status == 200 for g in gws), 10,
                  what="both ready")
    z = "zone:" + uid("z")
    cs = [C(gws[0]) for _ in range(24)]  # gws[0].connect: the shared port
    try:
        for c in cs:
            c.subscribe(z)
        open_ = [metric(API(g).metrics(), "pavilion_connections") for g in gws]
        assert sum(open_) == 24 and min(open_) > 0, "connections not spread: %r" % open_
        for i, g in enumerate(gws):
            r = API(g).publish(z, "tick", {"via": i})
            assert r.json["recipients"] == 24, r
            for c in cs:
                assert c.wait_for("tick")["payload"] == {"via": i}
        for i, g in enumerate(gws):
            assert API(g).get("/v1/channels/" + z).json["subscribers"] == 24
    finally:
        for c in cs:
            c.close()


def test_one_config_for_every_process_with_both_vhosts_reuse_port(make_gateway, keys, redis):
    """The README's one process per core: both processes read one configuration whose public
    and internal vhosts are both "reuse_port", each with its hostnames (the internal one the
    address the backend puts in Host).  Every publication through the shared internal port,
    whichever process the kernel gives it to, reaches the subscribers of both; a client that
    sends the internal vhost's Host to the public port is refused.  Without hostnames the
    setup is refused at --check (test_listen.py); before that rule, every API request of it
    was answered 404 (lws handed it to the public vhost)."""
    pp, ip = gw.free_port(), gw.free_port()
    gws = []
    for _ in range(2):
        vh = flow_vhosts(keys)
        vh[0].update(listen="127.0.0.1:%d" % pp, reuse_port=True, hostnames=["rt.test"])
        vh[1].update(listen="127.0.0.1:%d" % ip, reuse_port=True, hostnames=["127.0.0.1"])
        gws.append(make_gateway(vhosts=vh, start=False, store=rf.redis_store(redis.url)))
    for g in gws:
        g.start()
    api = API(gws[0])  # the shared internal port: either process answers
    rf.wait_until(lambda: all(api.get("/readyz").status == 200 for _ in range(8)), 10,
                  what="ready")
    z = "zone:" + uid("z")
    host = {"Host": "rt.test:%d" % pp}
    cs = [Client(gws[0], headers=host, **ALL) for _ in range(16)]
    try:
        for c in cs:
            c.subscribe(z)
        for i in range(8):
            r = api.publish(z, "tick", {"n": i})
            assert r.json["recipients"] == 16, r
            for c in cs:
                assert c.wait_for("tick")["payload"] == {"n": i}
        assert api.get("/v1/channels/" + z).json["subscribers"] == 16
        with pytest.raises(wsclient.HandshakeRefused) as no:
            gws[0].connect(gws[0].token())  # Host: 127.0.0.1:P, the internal vhost's name
        assert no.value.status == 404
    finally:
        for c in cs:
            c.close()


def test_two_processes_share_one_tls_listen(make_gateway, keys, redis):
    """reuse_port with TLS: each process serves the connections the kernel gives it."""
    port = gw.free_port()
    gws = []
    for _ in range(2):
        vh = [gw.public_vhost(keys, port=port, reuse_port=True), gw.internal_vhost(keys)]
        gws.append(make_gateway(vhosts=vh, start=False, store=rf.redis_store(redis.url)))
    for g in gws:
        g.start()
    wss = [gws[0].connect(gws[0].token(sub=uid("t"))) for _ in range(16)]
    try:
        for ws in wss:
            gw.probe(ws)
        open_ = [metric(API(g).metrics(), "pavilion_connections") for g in gws]
        assert sum(open_) == 16 and min(open_) > 0, "connections not spread: %r" % open_
    finally:
        for ws in wss:
            ws.close()
