"""The redis backend when things fail: a node killed with SIGKILL (its users go offline, its
caps free up, none of its keys stay), Redis unreachable and back (with its data,
restarted empty, and at a new address of its host name), and a pub/sub connection killed
or cut for its output buffer.

Every test starts its own redis-server on a free loopback port and 2 gateways on it."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import gw
import redisfix as rf
import wsclient
from test_adversarial_util import rss_kb
from test_flow_util import ALL, API, FULL_PLUGINS, Client, settle, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")


@pytest.fixture
def redis(tmp_path):
    r = rf.RedisServer(tmp_path / "redis").start()
    yield r
    r.kill()


def recv_until(ws, pred, timeout):
    deadline = time.monotonic() + timeout
    while True:
        m = ws.recv_json(max(0.0, deadline - time.monotonic()), skip=())
        if pred(m):
            return m


# ------------------------------------------------------------------ 5. kill -9
def test_killed_node_users_go_offline_caps_free_up_and_its_keys_are_reaped(
        make_gateway, keys, redis):
    ttl = 4
    nodes = rf.Nodes(make_gateway, keys, redis, n=2, store={"node_ttl_s": ttl},
                     public_over={"limits": {"max_connections_per_ip": 5000,
                                             "handshakes_per_s_per_ip": 100000,
                                             "max_connections_per_user": 2}}).start()
    dead, live = nodes[0], nodes[1]
    dead_id = rf.node_id(dead)
    zones = ["zone:" + uid("z") for _ in range(10)]
    users = [uid("k") for _ in range(1000)]
    socks = []
    for i, u in enumerate(users):
        ws = dead.connect(dead.token(sub=u, **ALL))
        ws.send_json({"type": "subscribe", "id": "s", "payload": {"channel": zones[i % 10]}})
        socks.append(ws)
    for ws in socks:
        m = recv_until(ws, lambda m: m.get("id") == "s", 30)
        assert m["type"] == "ack", m
    capped = uid("cap")
    held = [Client(dead, capped) for _ in range(2)]
    for c in held:
        c.sync()
    over = live.connect(live.token(sub=capped))
    gw.expect_error(over, 1005)
    assert over.wait_close(5).code == 4029, "the cap counts the other node's connections"
    nodes.settle()
    obs = Client(live, **ALL)
    for z in zones:
        obs.subscribe(z)
    obs.sync()
    obs.inbox.clear()
    for u in users[:3]:
        assert API(live).presence(u)["status"] == "online"

    dead.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    dead.proc.wait(10)
    last_hb = int(redis.call("ZSCORE", "pav:nodes", dead_id))
    gone = {}
    while len(gone) < len(users):
        left = killed + ttl + 2 - time.monotonic()
        assert left > 0, "only %d of %d users went offline within node_ttl_s + 2 s" % (
            len(gone), len(users))
        m = obs.wait_for("status_update", timeout=left, status="offline")
        gone[m["payload"]["userId"]] = m["payload"]["lastActive"]
    assert set(gone) == set(users)
    late = [u for u, t in gone.items() if gw.time_ms(t) > last_hb]
    assert not late, "lastActive later than the node's last heartbeat: %r" % late[:5]
    obs.sync()
    assert not obs.take("status_update", status="offline"), "an offline came twice"
    for u in users[:3]:
        p = API(live).presence(u)
        assert p["status"] == "offline" and p["connections"] == 0, p
    # the capped user's connections stopped counting
    back = [Client(live, capped) for _ in range(2)]
    for c in back:
        c.sync()
    assert API(live).presence(capped)["connections"] == 2
    # and nothing of the dead node is left
    rf.wait_until(lambda: redis.call("ZSCORE", "pav:nodes", dead_id) is None, 10,
                  what="the dead node leaving pav:nodes")
    left_keys = [k for k in redis.keys() if dead_id in k]
    assert not left_keys, left_keys
    for k in redis.keys("pav:{u:*}:conns") + redis.keys("pav:{u:*}:chans") + \
            redis.keys("pav:{c:*}:n"):
        fields = redis.call("HKEYS", k)
        assert not [f for f in fields if dead_id in f], (k, fields)
    for c in back + [obs]:
        c.close()
    for ws in socks:
        ws.sock.close()


def test_killed_node_user_is_announced_in_a_channel_within_max_broadcast_without_it(
        make_gateway, keys, redis):
    """max_broadcast 2; a zone with an observer on each of two nodes and user k on a third.
    Killing k's node leaves the zone 2 subscribers, within the limit: both observers get
    k's offline, as they do when k closes cleanly.  The reaper removes the dead node's
    channel counts before it announces any of its users, so the announcement is weighed
    without the members that died with it (weighed with them, it was over the limit and
    dropped)."""
    ttl = 2
    plugins = dict(FULL_PLUGINS)
    plugins["presence"] = {"max_broadcast": 2}
    nodes = rf.Nodes(make_gateway, keys, redis, n=3, plugins=plugins,
                     store={"node_ttl_s": ttl}).start()
    z = "zone:" + uid("z")
    obs = [Client(nodes[i], **ALL) for i in range(2)]
    for c in obs:
        c.subscribe(z)
    k = Client(nodes[2], **ALL)
    k.subscribe(z)
    nodes.settle()
    for c in obs:
        c.sync()
        c.inbox.clear()
    nodes[2].proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    nodes[2].proc.wait(10)
    for c in obs:
        left = max(0.1, killed + ttl + 2 - time.monotonic())
        m = c.wait_for("status_update", timeout=left, userId=k.sub)
        assert m["payload"]["status"] == "offline", m
    for i in range(2):
        settle(nodes[i])
    assert nodes.api(0).get("/v1/channels/" + z).json["subscribers"] == 2
    for c in obs:
        c.sync()
        assert not c.take("status_update", userId=k.sub), "an offline came twice"
        c.close()


def test_killed_node_user_is_offline_even_when_its_reaper_dies_mid_way(
        make_gateway, keys, redis):
    """Node 0 is killed with user u's only connection.  A reaper (played here with the
    backend's own script) takes the lock, pops the dead node's users and dies before
    setting any of them offline; its lock expires and node 1 reaps the rest.  u used to
    stay "online" with no connection for the 30 days of its record: the reap step sets
    it offline itself, in the step that pops it (node 1's announcement is owed by the
    reaper that died, and lost with it)."""
    ttl = 2
    nodes = rf.Nodes(make_gateway, keys, redis, n=2, store={"node_ttl_s": ttl}).start()
    z = "zone:" + uid("z")
    u = Client(nodes[0], **ALL)
    u.subscribe(z)
    u.ok("presence", {"status": "busy"})
    nodes.settle()
    dead = rf.node_id(nodes[0])
    lock = "pav:reap:" + dead
    nodes[0].proc.send_signal(signal.SIGKILL)
    nodes[0].proc.wait(10)
    assert redis.call("SET", lock, "doomed", "NX", "PX", "30000") == "OK"
    rf.wait_until(lambda: not redis.call("EXISTS", "pav:{n:%s}:alive" % dead), ttl + 2,
                  what="node 0's alive key gone")
    reap = rf.lua_script("reap")
    popped = []
    while not popped:
        state, users = redis.call("EVAL", reap, 1, "pav:nodes", dead, 500, 30000, "u",
                                   2592000000)
        assert state == 0, state
        popped = users
    assert [e[1] for e in popped] == [u.sub]
    redis.call("PEXPIRE", lock, 100)  # the reaper died: its lock runs out
    rf.wait_until(lambda: not redis.call("ZSCORE", "pav:nodes", dead), 10,
                  what="node 0 reaped by node 1")
    settle(nodes[1])
    p = nodes.api(1).presence(u.sub)
    assert p["status"] == "offline" and p["connections"] == 0, p


def _node_0_taken_for_dead_and_back(make_gateway, keys, redis, status=None):
    """u connected on node 0 (having set `status`, when given), an observer on node 1, both
    in one zone.  Node 0 is held (SIGSTOP) longer than node_ttl_s: node 1 reaps it and the
    observer is told u went offline; then node 0 resumes and resyncs u.  Returns (nodes, u,
    observer, the status_update the observer got after the offline one)."""
    ttl = 2
    nodes = rf.Nodes(make_gateway, keys, redis, n=2, store={"node_ttl_s": ttl}).start()
    z = "zone:" + uid("z")
    a = Client(nodes[0], **ALL)
    a.subscribe(z)
    obs = Client(nodes[1], **ALL)
    obs.subscribe(z)
    if status:
        a.ok("presence", {"status": status})
        obs.wait_for("status_update", timeout=5, userId=a.sub, status=status)
    nodes.settle()
    obs.sync()
    obs.inbox.clear()
    nodes[0].proc.send_signal(signal.SIGSTOP)
    try:
        m = obs.wait_for("status_update", timeout=ttl + 4, userId=a.sub)
        assert m["payload"]["status"] == "offline", m
    finally:
        nodes[0].proc.send_signal(signal.SIGCONT)
    back = obs.wait_for("status_update", timeout=10, userId=a.sub)
    a.wait_for("resync", timeout=10)
    nodes.settle()
    return nodes, a, obs, back


def test_node_taken_for_dead_that_comes_back_announces_its_users_online(
        make_gateway, keys, redis):
    """Node 0 comes back with u's connection open and registers everything again; u is
    online again in the store, and the observer that was told offline is told online (it
    was restored without a word, leaving the observer with offline for good)."""
    nodes, a, obs, back = _node_0_taken_for_dead_and_back(make_gateway, keys, redis)
    assert back["payload"]["status"] == "online", back
    p = nodes.api(1).presence(a.sub)
    assert p["status"] == "online" and p["connections"] == 1, p
    obs.sync()
    assert not obs.take("status_update", userId=a.sub), "announced twice"
    a.close()
    obs.close()


def test_node_taken_for_dead_that_comes_back_restores_the_status_its_user_set(
        make_gateway, keys, redis):
    """As above, but u had set "away" through its only connection, on node 0.  The reaper
    sets u offline; when node 0 comes back, u is connected all along and the status it
    chose is what it gets again (it came back "online", the "away" lost): the store keeps
    the chosen status beside the presence record, and the reaper leaves it."""
    nodes, a, obs, back = _node_0_taken_for_dead_and_back(make_gateway, keys, redis,
                                                          status="away")
    assert back["payload"]["status"] == "away", back
    p = nodes.api(1).presence(a.sub)
    assert p["status"] == "away" and p["connections"] == 1, p
    # a new session after the last close starts "online", as always
    a.close()
    nodes.settle()
    assert nodes.api(1).presence(a.sub)["status"] == "offline"
    with Client(nodes[1], a.sub, **ALL) as again:
        again.sync()
        nodes.settle()
        assert nodes.api(0).presence(a.sub)["status"] == "online"
    obs.close()


def test_since_replays_a_notification_that_entered_the_inbox_after_a_newer_one(
        make_gateway, keys, redis):
    """A notification is staged by node 0 (played here with the backend's own script),
    which dies before publishing it: it enters the inbox 10 s later, with the createdAt
    of its staging.  Meanwhile n2, created after it, was delivered through node 1.  A
    client that saw n2 and asks again with since = n2's createdAt used to miss the
    orphan for good (created before since, never delivered live): a catch-up replay
    also holds what entered the inbox after the newest notification created by since."""
    nodes = rf.Nodes(make_gateway, keys, redis, n=2).start()
    user = uid("n")
    U = "pav:{u:default:%s}" % user
    inbox = [U + ":" + k for k in ("inbox", "inbox:t", "read", "inbox:new", "inbox:s",
                                   "inbox:c", "inbox:seq")]
    orphan = "n%016x" % int.from_bytes(os.urandom(8), "big")
    created = redis.call("EVAL", rf.lua_script("inbox_add"), 7, *inbox, orphan,
                         '{"id":"%s","type":"t","content":"orphan"}' % orphan,
                         500, 2592000000)
    assert created
    time.sleep(0.01)
    with Client(nodes[1], user, **ALL) as c:
        c.sync()
        nodes.api(1).notify(user, {"type": "t", "content": "n2"})
        n2 = c.wait_for("notification", timeout=5)["payload"]
        assert n2["content"] == "n2"
    time.sleep(10.5)
    with Client(nodes[0], user, **ALL) as c:
        c.sync()
        c.subscribe("user", since=n2["createdAt"])
        c.sync()
        got = [m["payload"]["id"] for m in c.take("notification")]
    assert orphan in [n["id"] for n in nodes.api(0).inbox(user)["notifications"]]
    assert orphan in got, got


# ------------------------------------------------------------------ 6. Redis unreachable
def outage_nodes(make_gateway, keys, redis, start=True, **store):
    st = {"command_timeout_ms": 500}
    st.update(store)
    nodes = rf.Nodes(make_gateway, keys, redis, n=2, store=st,
                     public_over={"websocket": {"heartbeat_interval_s": 1,
                                                "idle_timeout_s": 60},
                                  "history": {"zone": {"size": 20, "ttl_s": 60}}})
    return nodes.start() if start else nodes


def wait_ready(nodes, status, timeout):
    for i in range(len(nodes)):
        rf.wait_until(lambda: nodes.api(i).get("/readyz").status == status, timeout,
                      what="/readyz %d on node %d" % (status, i))


def check_unavailable(nodes, a, z):
    """While the store is unreachable: every way in answers so, and nothing else changes."""
    g = nodes[0]
    with pytest.raises(wsclient.HandshakeRefused) as e:
        g.connect(g.token(sub=uid("late")))
    assert e.value.status == 503
    r = nodes.api(0).post("/v1/publish", {"channel": z, "type": "t", "payload": {}})
    assert r.status == 503 and r.json["error"]["code"] == "store_unavailable", r
    r = nodes.api(1).post("/v1/notifications",
                          {"userId": a.sub, "notification": {"type": "t", "content": "c"}})
    assert r.status == 503 and r.json["error"]["code"] == "store_unavailable", r
    for type, payload in (("subscribe", {"channel": "zone:" + uid("z")}),
                          ("presence", {"status": "busy"}),
                          ("mark_read", {"notificationId": "n0123456789abcdef"})):
        m = a.request(type, payload)
        assert m["type"] == "error" and m["payload"]["code"] == 2000, (type, m)
    # open connections keep their heartbeat (1 s) and stay served
    for _ in range(2):
        recv_until(a.ws, lambda m: m["type"] == "heartbeat", 3)
    a.ok("heartbeat_ack")


def test_redis_stopped_then_back_with_its_data(make_gateway, keys, redis):
    nodes = outage_nodes(make_gateway, keys, redis)
    z = "zone:" + uid("z")
    a, b = Client(nodes[0], **ALL), Client(nodes[1], **ALL)
    a.subscribe(z)
    b.subscribe(z)
    epoch = nodes.api(0).publish(z, "tick", {"n": 1}).json["epoch"]
    for c in (a, b):
        c.wait_for("tick")
    rss0 = rss_kb(nodes[0])
    redis.freeze()
    try:
        t0 = time.monotonic()
        rf.wait_until(lambda: nodes.api(0).get("/readyz").status == 503, 3, step=0.02,
                      what="/readyz 503")
        took = time.monotonic() - t0
        assert took <= 0.5 + 0.4, "/readyz answered 503 %.2f s after Redis stopped" % took
        check_unavailable(nodes, a, z)
        # memory stays bounded: calls are refused, not queued
        api = nodes.api(0)
        for i in range(1000):
            api.post("/v1/publish", {"channel": z, "type": "t", "payload": {"i": i}})
            a.send("presence", {"status": "busy"}, id="x%d" % i)
        for i in range(1000):
            m = recv_until(a.ws, lambda m: m.get("id") == "x%d" % i, 5)
            assert m["type"] == "error" and m["payload"]["code"] == 2000, m
        grown = rss_kb(nodes[0]) - rss0
        # (a sanitizer's quarantine keeps what is freed: no measure there)
        assert grown < 16 * 1024 or os.environ.get("PAVILION_SANITIZED"), \
            "gateway grew %d KiB while Redis was down" % grown
    finally:
        redis.thaw()
    wait_ready(nodes, 200, 10)
    for c in (a, b):
        c.wait_for("resync", timeout=10)
    r = nodes.api(1).publish(z, "tick", {"n": 2})
    assert r.json["epoch"] == epoch and r.json["offset"] == 2 and r.json["recipients"] == 2, r
    for c in (a, b):
        m = c.wait_for("tick", timeout=5, n=2)
        assert m["offset"] == 2, m
    nodes.settle()
    p = nodes.api(1).presence(a.sub)
    assert p["status"] == "online" and p["connections"] == 1, p
    assert nodes.api(0).get("/v1/channels/" + z).json["subscribers"] == 2
    a.close()
    b.close()


def test_repeats_of_a_subscribe_the_store_fails_are_not_acked(make_gateway, keys, redis):
    """Subscribes of one channel sent before the first is answered wait for that answer:
    when Redis stops under the first (it times out: 2000), its repeats get 2000 too; they
    used to be acked at once, telling the client it was in a channel it was not in."""
    nodes = outage_nodes(make_gateway, keys, redis)
    a = Client(nodes[0], **ALL)
    a.sync()
    z = "zone:" + uid("z")
    redis.freeze()
    try:
        for i in range(5):
            a.send("subscribe", {"channel": z}, id="s%d" % i)
        answers = [recv_until(a.ws, lambda m, i=i: m.get("id") == "s%d" % i, 5)
                   for i in range(5)]
    finally:
        redis.thaw()
    first = answers[0]
    assert first["type"] == "error" and first["payload"]["code"] == 2000, first
    for m in answers[1:]:
        assert m["type"] == "error" and m["payload"]["code"] == 2000, \
            "a repeat of a failed subscribe was answered %r" % m
    wait_ready(nodes, 200, 10)
    assert a.subscribe(z)["payload"]["channel"] == z
    a.close()


def test_redis_restarted_empty_rebuilds_the_state_and_starts_a_new_epoch(
        make_gateway, keys, redis):
    nodes = outage_nodes(make_gateway, keys, redis)
    z = "zone:" + uid("z")
    a, b = Client(nodes[0], **ALL), Client(nodes[1], **ALL)
    a.subscribe(z)
    b.subscribe(z)
    b.ok("presence", {"status": "away"})
    old = nodes.api(0).publish(z, "tick", {"n": 1}).json
    for c in (a, b):
        c.wait_for("tick")
    redis.kill()
    wait_ready(nodes, 503, 3)
    check_unavailable(nodes, a, z)
    redis.start()
    wait_ready(nodes, 200, 10)
    for c in (a, b):
        c.wait_for("resync", timeout=10)
    nodes.settle()
    # what the nodes hold is registered again: counts, connections, presence
    assert nodes.api(1).get("/v1/channels/" + z).json["subscribers"] == 2
    pa, pb = nodes.api(1).presence(a.sub), nodes.api(0).presence(b.sub)
    assert pa["status"] == "online" and pa["connections"] == 1, pa
    assert pb["status"] == "away" and pb["connections"] == 1, pb
    # the history was lost with Redis' data: a new epoch, offsets from 1
    r = nodes.api(1).publish(z, "tick", {"n": 2}).json
    assert r["epoch"] != old["epoch"] and r["offset"] == 1 and r["recipients"] == 2, r
    for c in (a, b):
        assert c.wait_for("tick", timeout=5, n=2)["offset"] == 1
    with Client(nodes[1], **ALL) as c:
        ack = c.subscribe(z, recover={"offset": old["offset"], "epoch": old["epoch"]})
        assert ack["payload"]["recovered"] is False, ack
        assert ack["payload"]["epoch"] == r["epoch"], ack
    # a user whose last connection closed while Redis was gone is settled offline
    a.close()
    nodes.settle()
    assert nodes.api(1).presence(a.sub)["status"] == "offline"
    b.close()


def restart_empty_node_1_first(nodes, redis, ca, cb, while_held=None):
    """Once the nodes settled, Redis restarts empty while node 0 is held (SIGSTOP), so
    node 1 writes its registry first (its client cb gets resync); while_held() runs then.
    Node 0 resumes and rebuilds too (ca gets resync), and the nodes settle."""
    nodes.settle()
    redis.kill()
    wait_ready(nodes, 503, 3)
    nodes[0].proc.send_signal(signal.SIGSTOP)
    try:
        redis.start()
        rf.wait_until(lambda: nodes.api(1).get("/readyz").status == 200, 10, what="node 1")
        cb.wait_for("resync", timeout=10)
        if while_held:
            while_held()
    finally:
        nodes[0].proc.send_signal(signal.SIGCONT)
    wait_ready(nodes, 200, 10)
    ca.wait_for("resync", timeout=10)
    nodes.settle()

def test_redis_restarted_empty_restores_the_status_set_through_another_node(
        make_gateway, keys, redis):
    """User u has a connection on node 1 (its first: node 1 saw u online) and one on node
    0, through which u sets "away".  Redis restarts empty; node 1 writes its registry
    again first (node 0 held a second longer).  Each node keeps the status of its users
    for that rebuild, and node 1 kept the one it had seen itself, so u came back "online".
    An applied status now reaches every node holding the user, on the user's feed: u is
    "away" again whichever node is first."""
    nodes = outage_nodes(make_gateway, keys, redis)
    u = uid("s")
    cb = Client(nodes[1], u, **ALL)
    cb.sync()
    ca = Client(nodes[0], u, **ALL)
    ca.sync()
    ca.ok("presence", {"status": "away"})
    cb.wait_for("status_update", timeout=5, status="away")
    restart_empty_node_1_first(nodes, redis, ca, cb)
    p = nodes.api(1).presence(u)
    assert p["status"] == "away" and p["connections"] == 2, p
    ca.close()
    cb.close()


def test_redis_restarted_empty_restores_a_status_set_before_the_other_node_saw_the_user(
        make_gateway, keys, redis):
    """u sets "away" through its only connection, on node 0 (no other node holds u, so
    the change goes to no feed), then connects on node 1 too.  Redis restarts empty and
    node 1 writes its registry first (node 0 held): node 1 had never heard u's status
    and restored "online".  A node learns the stored status when it counts a connection
    of a user, so u is "away" again."""
    nodes = outage_nodes(make_gateway, keys, redis)
    u = uid("s")
    ca = Client(nodes[0], u, **ALL)
    ca.sync()
    ca.ok("presence", {"status": "away"})
    cb = Client(nodes[1], u, **ALL)
    cb.sync()

    def node_1_alone():
        settle(nodes[1])
        p = nodes.api(1).presence(u)
        assert p["status"] == "away" and p["connections"] == 1, p

    restart_empty_node_1_first(nodes, redis, ca, cb, node_1_alone)
    p = nodes.api(1).presence(u)
    assert p["status"] == "away" and p["connections"] == 2, p
    ca.close()
    cb.close()


def test_since_on_the_user_channel_during_the_outage_is_2000_not_a_lost_replay(
        make_gateway, keys, redis):
    """The user channel is subscribed already, so a subscribe to it asks the store nothing
    and the `since` replay is read only after the ack: while Redis is unreachable that read
    failed unseen (acked, no replay, no error).  It is answered error 2000 with its id, and
    the same subscribe once Redis is back replays what the user missed."""
    nodes = outage_nodes(make_gateway, keys, redis)
    u = uid("n")
    nodes.api(1).notify(u, {"type": "t", "content": "missed"})
    c = Client(nodes[0], u, **ALL)
    c.sync()
    since = {"channel": "user", "parameters": {"since": "2020-01-01T00:00:00Z"}}
    redis.freeze()
    try:
        wait_ready(nodes, 503, 3)
        m = c.request("subscribe", since)
    finally:
        redis.thaw()
    assert m["type"] == "error" and m["payload"]["code"] == 2000, m
    wait_ready(nodes, 200, 10)
    c.ok("subscribe", since)
    n = c.wait_for("notification", timeout=5)
    assert n["payload"]["content"] == "missed", n
    c.close()


def test_connection_closed_during_the_outage_goes_offline_once_redis_is_back(
        make_gateway, keys, redis):
    """The store could not remove it: once the node is back, it writes its registry again
    and settles that user (no connection left anywhere: offline, announced).  The observer
    is on the same node, whose feed is live again before it settles anything; another
    node's clients may miss the announcement while their node is still reconnecting, and
    get resync for it."""
    nodes = outage_nodes(make_gateway, keys, redis)
    z = "zone:" + uid("z")
    a, o = Client(nodes[0], **ALL), Client(nodes[0], **ALL)
    a.subscribe(z)
    o.subscribe(z)
    nodes.settle()
    o.sync()
    o.inbox.clear()
    redis.freeze()
    try:
        wait_ready(nodes, 503, 3)
        rf.close_to_eof(a)
    finally:
        redis.thaw()
    wait_ready(nodes, 200, 10)
    m = o.wait_for("status_update", timeout=10, userId=a.sub)
    assert m["payload"]["status"] == "offline", m
    o.wait_for("resync", timeout=10)
    nodes.settle()
    p = nodes.api(1).presence(a.sub)
    assert p["status"] == "offline" and p["connections"] == 0, p
    assert nodes.api(1).get("/v1/channels/" + z).json["subscribers"] == 1
    o.close()


def test_redis_stopped_longer_than_node_ttl_takes_no_node_for_dead(make_gateway, keys, redis):
    """Every alive key expires while Redis is stopped: the node that is back first must
    not reap the others before they had node_ttl_s to come back and heartbeat.  Node 2 is
    held (SIGSTOP) until 1.5 s after node 1 is back."""
    ttl = 2
    nodes = outage_nodes(make_gateway, keys, redis, node_ttl_s=ttl, command_timeout_ms=300)
    z = "zone:" + uid("z")
    a, b = Client(nodes[0], **ALL), Client(nodes[1], **ALL)
    a.subscribe(z)
    b.subscribe(z)
    nodes.settle()
    for c in (a, b):
        c.sync()
        c.inbox.clear()
    redis.freeze()
    try:
        wait_ready(nodes, 503, 3)
        nodes[1].proc.send_signal(signal.SIGSTOP)
        time.sleep(ttl + 1.5)
    finally:
        redis.thaw()
    try:
        rf.wait_until(lambda: nodes.api(0).get("/readyz").status == 200, 10, what="node 1")
        time.sleep(1.5)
    finally:
        nodes[1].proc.send_signal(signal.SIGCONT)
    wait_ready(nodes, 200, 10)
    for c in (a, b):
        c.wait_for("resync", timeout=10)
    time.sleep(ttl + 2)  # past the grace: a reaper would have struck by now
    nodes.settle()
    for c, other in ((a, b), (b, a)):
        c.sync()
        assert not c.take("status_update", userId=other.sub, status="offline"), \
            "%s was taken for dead" % other.sub
        p = nodes.api(0).presence(other.sub)
        assert p["status"] == "online" and p["connections"] == 1, p
    a.close()
    b.close()


def test_a_node_started_just_after_an_outage_takes_no_node_for_dead(make_gateway, keys, redis):
    """Redis is away longer than node_ttl_s, so every node's heartbeat has expired; node 1
    is still in its reconnect backoff (held) when Redis is back and a new node starts. The
    new node must give the others node_ttl_s before it reaps anyone: node 1's user stays
    online, and no client is told otherwise."""
    ttl = 2
    nodes = rf.Nodes(make_gateway, keys, redis, n=3,
                     store={"node_ttl_s": ttl, "command_timeout_ms": 300})
    late = nodes.gws.pop()
    nodes.start()
    z = "zone:" + uid("z")
    a, b = Client(nodes[0], **ALL), Client(nodes[1], **ALL)
    a.subscribe(z)
    b.subscribe(z)
    nodes.settle()
    b.sync()
    b.inbox.clear()
    redis.freeze()
    try:
        wait_ready(nodes, 503, 3)
        nodes[0].proc.send_signal(signal.SIGSTOP)
        time.sleep(ttl + 1)
    finally:
        redis.thaw()
    try:
        late.start()  # registered: it is up, and would reap from now on
        time.sleep(1.5)
        during = API(late).presence(a.sub)
    finally:
        nodes[0].proc.send_signal(signal.SIGCONT)
    assert during["status"] == "online" and during["connections"] == 1, during
    assert "reap" not in late.log_text(), late.log_tail()
    wait_ready(nodes, 200, 10)
    time.sleep(ttl + 1)
    settle(late)
    b.sync()
    assert not b.take("status_update", userId=a.sub, status="offline"), \
        "%s was taken for dead" % a.sub
    p = API(late).presence(a.sub)
    assert p["status"] == "online" and p["connections"] == 1, p
    a.close()
    b.close()


@pytest.mark.skipif(not rf.mount_namespace_available(),
                    reason="needs a mount namespace (root) for a private /etc/hosts")
def test_redis_given_by_name_is_found_at_its_new_address(make_gateway, keys, tmp_path):
    """The gateway runs with its own /etc/hosts (a bind mount in a mount namespace of its
    own). Redis moves from 127.0.0.1 to 127.0.0.2 and the file says so: the node finds it
    there, and what its clients hold is registered again."""
    name = "redis.pavilion.test"
    hosts = tmp_path / "hosts"
    system = Path("/etc/hosts").read_text()
    hosts.write_text(system + "\n127.0.0.1 %s\n" % name)
    old = rf.RedisServer(tmp_path / "old").start()
    new = rf.RedisServer(tmp_path / "new", port=old.port, host="127.0.0.2")
    try:
        nodes = outage_nodes(make_gateway, keys, old, start=False)
        for g in nodes.gws:
            g.config["store"]["url"] = "redis://%s:%d" % (name, old.port)
            g.write_config()
            rf.own_etc(g, hosts=hosts)
        nodes.start()
        z = "zone:" + uid("z")
        a = Client(nodes[0], **ALL)
        a.subscribe(z)
        nodes.api(1).publish(z, "tick", {"n": 1})
        a.wait_for("tick")
        hosts.write_text(system + "\n127.0.0.2 %s\n" % name)  # same inode: the mount sees it
        new.start()
        old.kill()
        wait_ready(nodes, 200, 10)
        for g in nodes.gws:
            assert "%s now resolves to 127.0.0.2 (was 127.0.0.1)" % name in g.log_text(), \
                g.log_tail()
        a.wait_for("resync", timeout=10)
        nodes.settle()
        assert new.call("ZCARD", "pav:nodes") == 2
        assert nodes.api(1).get("/v1/channels/" + z).json["subscribers"] == 1
        r = nodes.api(1).publish(z, "tick", {"n": 2}).json
        assert r["recipients"] == 1, r
        assert a.wait_for("tick", timeout=5, n=2)["offset"] == 1  # Redis came empty
        a.close()
    finally:
        new.kill()
        old.kill()


# ------------------------------------------------------------------ 7. pub/sub cut
def test_killed_pubsub_connection_is_replaced_and_clients_resync(make_gateway, keys, redis):
    nodes = rf.Nodes(make_gateway, keys, redis, n=2).start()
    z = "zone:" + uid("z")
    a, b = Client(nodes[0], **ALL), Client(nodes[1], **ALL)
    a.subscribe(z)
    b.subscribe(z)
    assert redis.call("CLIENT", "KILL", "TYPE", "pubsub") >= 2
    for c in (a, b):
        c.wait_for("resync", timeout=10)
    nodes.api(0).publish(z, "tick", {"n": 1})
    for c in (a, b):
        c.wait_for("tick", timeout=5)
    a.close()
    b.close()


def test_pubsub_output_buffer_limit_cut_is_replaced_and_clients_resync(
        make_gateway, keys, redis):
    nodes = rf.Nodes(make_gateway, keys, redis, n=2).start()
    z = "zone:" + uid("z")
    a, b = Client(nodes[0], **ALL), Client(nodes[1], **ALL)
    a.subscribe(z)
    b.subscribe(z)
    redis.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 2048 1024 1")
    try:
        # past Redis' 16 KiB reply buffer, so that the list (and its limit) holds it
        nodes.api(0).publish(z, "big", {"blob": "x" * 40000})
        for c in (a, b):
            c.wait_for("resync", timeout=10)
    finally:
        redis.call("CONFIG", "SET", "client-output-buffer-limit", "pubsub 33554432 8388608 60")
    nodes.api(1).publish(z, "tick", {"n": 1})
    for c in (a, b):
        c.wait_for("tick", timeout=5)
    a.close()
    b.close()


def test_renewal_while_redis_is_unreachable_is_taken_unchecked(make_gateway, keys, redis):
    """A renewal asks the store whether the token was revoked.  While Redis is unreachable
    the session goes on with the new token (it was opened with a token the store checked):
    refusing it would close every client at its token's exp for as long as the outage
    lasts, with new handshakes refused meanwhile.  (It was answered 2000.)"""
    nodes = outage_nodes(make_gateway, keys, redis)
    u = uid("r")
    c = Client(nodes[0], u, **ALL)
    c.sync()
    redis.freeze()
    try:
        wait_ready(nodes, 503, 5)
        c.ok("auth", {"token": nodes[0].token(sub=u, ttl=600)})
        c.ok("heartbeat_ack")
    finally:
        redis.thaw()
    assert "renewal not checked for revocation" in nodes[0].log_text()
    c.close()
