"""History and recovery (channel offsets and epochs, subscribe with `recover`, the history
API) on the memory backend. The same behaviour on the redis backend is in test_redis_*.py."""
import threading
import time

import pytest

import gw
from test_adversarial_util import SANITIZED, rss_kb
from test_flow_util import API, Client, flow_vhosts, metric, ticks, uid

HISTORY = {"zone": {"size": 200, "ttl_s": 60}, "chat": {"size": 5, "ttl_s": 60}}


def history_gateway(make, keys, **top):
    return make(flow_vhosts(keys, history=HISTORY), **top)


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    return history_gateway(make_module_gateway, keys)


def publish_n(api, channel, n, start=0):
    return [api.publish(channel, "tick", {"n": start + i}).json for i in range(n)]


def test_publications_on_a_history_channel_carry_offsets_and_the_answer_an_epoch(g, api):
    z = "zone:" + uid("z")
    with Client(g, zones=["*"]) as c:
        ack = c.subscribe(z)["payload"]
        assert ack["channel"] == z and ack["offset"] == 0 and isinstance(ack["epoch"], str), ack
        answers = publish_n(api, z, 3)
        assert [a["offset"] for a in answers] == [1, 2, 3], answers
        assert {a["epoch"] for a in answers} == {ack["epoch"]}, answers
        got = ticks(c, z, 3)
        assert [m["offset"] for m in got] == [1, 2, 3], got
        assert [m["payload"]["n"] for m in got] == [0, 1, 2], got


def test_channels_without_history_have_no_offset_member_and_no_epoch(g, api):
    ch = "channel:" + uid("c")
    with Client(g, channels=["*"]) as c:
        ack = c.subscribe(ch)["payload"]
        assert "epoch" not in ack and "offset" not in ack, ack
        r = api.publish(ch, "tick", {"n": 1}).json
        assert "epoch" not in r, r
        m = c.wait_for("tick")
        assert "offset" not in m, m


def test_reconnect_after_n_publications_recovers_exactly_the_missed_ones(g, api):
    z = "zone:" + uid("z")
    with Client(g, zones=["*"]) as c:
        ack = c.subscribe(z)["payload"]
        publish_n(api, z, 2)
        seen = ticks(c, z, 2)
        pos = {"offset": seen[-1]["offset"], "epoch": ack["epoch"]}
    publish_n(api, z, 7, start=2)
    with Client(g, zones=["*"]) as c2:
        ack2 = c2.subscribe(z, recover=pos)["payload"]
        assert ack2["recovered"] is True and ack2["epoch"] == ack["epoch"], ack2
        assert ack2["offset"] == 9, ack2
        got = ticks(c2, z, 7)
        assert [m["offset"] for m in got] == list(range(3, 10)), got
        assert [m["payload"]["n"] for m in got] == list(range(2, 9)), got
        c2.sync()
        assert not c2.take("tick"), "a recovered publication arrived twice"


def test_recovered_publications_count_as_messages_out(g, api):
    """A recovery's replay sends publications as a live fan-out does: /metrics counts them
    under their type (before, pavilion_messages_out_total missed every replayed one)."""
    z = "zone:" + uid("z")
    kind = "replayed-" + uid("t")[-6:]
    with Client(g, zones=["*"]) as c:
        ack = c.subscribe(z)["payload"]
        api.publish(z, kind, {"n": 0})
        pos = {"offset": c.wait_for(kind)["offset"], "epoch": ack["epoch"]}
    for i in range(5):
        api.publish(z, kind, {"n": i + 1})
    before = metric(api.metrics(), "pavilion_messages_out_total", type=kind)
    with Client(g, zones=["*"]) as c2:
        assert c2.subscribe(z, recover=pos)["payload"]["recovered"] is True
        got = [c2.wait_for(kind)["payload"]["n"] for _ in range(5)]
        assert got == [1, 2, 3, 4, 5], got
    after = metric(api.metrics(), "pavilion_messages_out_total", type=kind)
    assert after - before == 5, "%r replayed publications counted, 5 sent" % (after - before)


def test_a_gap_larger_than_the_history_is_not_recovered(g, api):
    room = uid("room")
    ch = "chat:" + room
    with Client(g, chats=[room]) as c:
        ack = c.subscribe(ch)["payload"]
    publish_n(api, ch, 8)  # chat history keeps 5
    with Client(g, chats=[room]) as c2:
        ack2 = c2.subscribe(ch, recover={"offset": 0, "epoch": ack["epoch"]})["payload"]
        assert ack2["recovered"] is False and ack2["offset"] == 8, ack2
        c2.sync()
        assert not c2.take("tick"), "an unrecovered subscription got a replay"


def test_a_wrong_epoch_is_not_recovered(g, api):
    z = "zone:" + uid("z")
    publish_n(api, z, 2)
    with Client(g, zones=["*"]) as c:
        ack = c.subscribe(z, recover={"offset": 1, "epoch": "not-the-epoch"})["payload"]
        assert ack["recovered"] is False and ack["offset"] == 2, ack
        c.sync()
        assert not c.take("tick"), ack


def test_recovery_at_the_newest_offset_is_recovered_with_nothing_to_send(g, api):
    z = "zone:" + uid("z")
    r = publish_n(api, z, 3)
    with Client(g, zones=["*"]) as c:
        ack = c.subscribe(z, recover={"offset": 3, "epoch": r[-1]["epoch"]})["payload"]
        assert ack["recovered"] is True and ack["offset"] == 3, ack
        c.sync()
        assert not c.take("tick"), ack


def test_malformed_recover_is_1002(g):
    z = "zone:" + uid("z")
    with Client(g, zones=["*"]) as c:
        for bad in ({"offset": "1", "epoch": "e"}, {"offset": -1, "epoch": "e"}, {"offset": 1},
                    {"epoch": "e"}, "x", [1]):
            c.err("subscribe", {"channel": z, "parameters": {"recover": bad}}, 1002)


def test_publications_racing_a_recovery_arrive_once_in_order(g, api):
    """A publisher keeps going while clients reconnect with `recover`: each client sees every
    offset after its position exactly once, in order (replayed ones before live ones)."""
    z = "zone:" + uid("race")
    first = api.publish(z, "tick", {"n": 0}).json
    epoch = first["epoch"]
    stop = threading.Event()
    sent = [1]

    def publisher():
        pub = API(g)
        while not stop.is_set() and sent[0] < 20000:  # bounded
            pub.publish(z, "tick", {"n": sent[0]})
            sent[0] += 1
            time.sleep(0.002)

    t = threading.Thread(target=publisher)
    t.start()
    try:
        for round_ in range(5):
            time.sleep(0.05)
            pos = max(1, sent[0] - 10)  # a little behind: part replay, part live
            with Client(g, zones=["*"]) as c:
                ack = c.subscribe(z, recover={"offset": pos, "epoch": epoch})["payload"]
                assert ack["recovered"] is True, (round_, ack)
                want = ack["offset"] - pos + 5  # the replay and a few live ones
                got = ticks(c, z, want)
                offs = [m["offset"] for m in got]
                assert offs == list(range(pos + 1, pos + 1 + want)), (round_, pos, offs)
    finally:
        stop.set()
        t.join(10)


def test_history_api_lists_publications_oldest_first(g, api):
    z = "zone:" + uid("z")
    publish_n(api, z, 4)
    r = api.get("/v1/channels/%s/history" % z)
    assert r.status == 200, r
    assert r.json["channel"] == z and r.json["offset"] == 4 and isinstance(r.json["epoch"], str), r
    pubs = r.json["publications"]
    assert [p["offset"] for p in pubs] == [1, 2, 3, 4], r
    assert all(p["type"] == "tick" and gw.TS_RE.match(p["timestamp"]) for p in pubs), r
    assert [p["payload"]["n"] for p in pubs] == [0, 1, 2, 3], r
    r = api.get("/v1/channels/%s/history?since=2&limit=1" % z)
    assert [p["offset"] for p in r.json["publications"]] == [3], r


def test_history_api_limit_0_lists_all_it_holds(g, api):
    z = "zone:" + uid("z")
    publish_n(api, z, 3)
    r = api.get("/v1/channels/%s/history?since=1&limit=0" % z)
    assert r.status == 200 and [p["offset"] for p in r.json["publications"]] == [2, 3], r


def test_history_api_validates_its_parameters_and_kind(g, api):
    z = "zone:" + uid("z")
    for q in ("?since=x", "?limit=-1", "?since=1.5", "?limit=abc"):
        r = api.get("/v1/channels/%s/history%s" % (z, q))
        assert r.status == 400 and r.json["error"]["code"] == "bad_request", (q, r)
    r = api.get("/v1/channels/channel:%s/history" % uid("c"))
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r
    r = api.get("/v1/channels/user:%s/history" % uid("u"))
    assert r.status == 404, r
    r = api.get("/v1/channels/nope/history")
    assert r.status == 400, r


def test_history_keeps_only_size_publications(g, api):
    room = uid("room")
    publish_n(api, "chat:" + room, 9)
    r = api.get("/v1/channels/chat:%s/history" % room)
    assert [p["offset"] for p in r.json["publications"]] == [5, 6, 7, 8, 9], r


def test_presence_announcements_are_not_kept_in_history(g, api):
    z = "zone:" + uid("z")
    with Client(g, zones=["*"]) as a:
        a.subscribe(z)
        with Client(g, zones=["*"]) as b:
            b.subscribe(z)  # b's status goes to a
            a.wait_for("status_update")
    r = api.get("/v1/channels/%s/history" % z)
    assert r.json["publications"] == [] and r.json["offset"] == 0, r


@pytest.mark.skipif(gw.STORE == "redis", reason="the history outlives the process in Redis "
                    "(a new epoch after Redis lost its data: test_redis_failover.py)")
def test_restarting_the_memory_store_starts_a_new_epoch(make_gateway, keys):
    g1 = history_gateway(make_gateway, keys)
    api = API(g1)
    z = "zone:" + uid("z")
    e1 = api.publish(z, "tick", {"n": 0}).json["epoch"]
    g1.stop()
    g1.start()
    api = API(g1)
    with Client(g1, zones=["*"]) as c:
        ack = c.subscribe(z, recover={"offset": 1, "epoch": e1})["payload"]
        assert ack["recovered"] is False and ack["epoch"] != e1 and ack["offset"] == 0, ack


def test_idle_history_expires_after_its_ttl(make_gateway, keys):
    g1 = make_gateway(flow_vhosts(keys, history={"zone": {"size": 10, "ttl_s": 1}}))
    api = API(g1)
    z = "zone:" + uid("z")
    e1 = api.publish(z, "tick", {"n": 0}).json["epoch"]
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        r = api.get("/v1/channels/%s/history" % z).json
        if not r["publications"]:
            break
        time.sleep(0.3)
    assert r["publications"] == [] and r["epoch"] != e1, r


@pytest.mark.skipif(gw.STORE == "redis", reason="the memory store's own memory (Redis keys "
                    "expire: test_redis_history.py)")
def test_history_channels_that_hold_nothing_cost_no_memory(make_gateway, keys):
    """Subscribing to and leaving fresh history channels of a large size, and reading the
    history of channels nobody published to, leave nothing behind: the gateway's resident
    memory stays flat (each used to cost a ring of `size` slots for `ttl_s`)."""
    g1 = make_gateway(flow_vhosts(keys, history={"zone": {"size": 10000, "ttl_s": 300}},
                                  limits={"messages_per_s": 100000, "burst": 100000}))
    api = API(g1)
    with Client(g1, zones=["*"]) as c:
        c.subscribe("zone:warm")
        api.get("/v1/channels/zone:warm/history")
        rss0 = rss_kb(g1)
        for i in range(2000):
            c.send("subscribe", {"channel": "zone:f%d" % i}, id="s%d" % i)
            c.send("unsubscribe", {"channel": "zone:f%d" % i}, id="u%d" % i)
            if i % 250 == 249:
                c.sync()
        c.sync()
        acks = [m for m in c.inbox if m["type"] == "ack"]
        assert len(acks) == 4000 and not c.take("error"), c.inbox[-3:]
        subscribed = rss_kb(g1) - rss0
        rss1 = rss_kb(g1)
        epoch = api.get("/v1/channels/zone:p0/history").json["epoch"]
        for i in range(3000):
            r = api.get("/v1/channels/zone:p%d/history" % i)
            assert r.status == 200 and r.json["offset"] == 0 and r.json["publications"] == [], r
        read = rss_kb(g1) - rss1
        # nothing was made: the same epoch, and a publication starts at offset 1 within it
        again = api.get("/v1/channels/zone:p0/history").json
        assert again["epoch"] == epoch, again
        pub = api.publish("zone:p0", "tick", {"n": 1}).json
        assert pub["offset"] == 1 and pub["epoch"] == epoch, pub
    print("RSS growth: %d KB for 2000 subscribe/unsubscribe pairs, %d KB for 3000 history reads"
          % (subscribed, read))
    if not SANITIZED:  # the sanitizer's quarantine holds what was freed
        assert subscribed < 4096 and read < 4096, (subscribed, read)


@pytest.mark.skipif(gw.STORE == "redis", reason="history_max_bytes is the memory store's")
def test_history_memory_is_bounded_by_history_max_bytes(make_gateway, keys):
    """One publication to each of 3000 channels of size 10000 with history_max_bytes 65536:
    rings, messages and the records that hold them stay within the budget."""
    g1 = make_gateway(flow_vhosts(keys, history={"zone": {"size": 10000, "ttl_s": 3600}}),
                      store={"backend": "memory", "history_max_bytes": 65536})
    api = API(g1)
    api.publish("zone:warm", "tick", {"n": 0})
    rss0 = rss_kb(g1)
    for i in range(0, 3000, 100):
        r = api.post("/v1/publish", {"publications": [
            {"channel": "zone:c%d" % j, "type": "tick", "payload": {"n": j}}
            for j in range(i, i + 100)]})
        assert r.status == 202, r
    grown = rss_kb(g1) - rss0
    newest = api.get("/v1/channels/zone:c2999/history").json
    assert newest["offset"] == 1 and len(newest["publications"]) == 1, newest
    print("RSS growth: %d KB for 3000 one-message history channels" % grown)
    if not SANITIZED:
        assert grown < 4096, grown


def test_vhosts_of_one_namespace_must_agree_on_history(tmp_path, keys):
    vh = flow_vhosts(keys, history=HISTORY)
    other = gw.public_vhost(keys, "other", tls=False, plugins={}, history={"zone": {"size": 3}})
    vh.append(other)
    cfg = gw.base_config(keys, vh)
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", cfg))
    assert r.returncode == 1 and "vhosts[2].history" in r.stderr and "same namespace" in r.stderr, r


def test_history_config_errors_name_file_and_key(tmp_path, keys):
    for bad, key in (({"zone": {"size": 0}}, "history.zone.size"),
                     ({"zone": {"ttl_s": 5}}, "history.zone.size"),
                     ({"user": {"size": 5}}, "history.user"),
                     ({"zone": {"size": 5, "ttl_s": "x"}}, "history.zone.ttl_s")):
        cfg = gw.base_config(keys, flow_vhosts(keys, history=bad))
        r = gw.check_config(gw.write_json(tmp_path / "gateway.json", cfg))
        assert r.returncode == 1 and ("vhosts[0]." + key) in r.stderr, (bad, r.stderr)


def test_a_recovery_larger_than_the_outbound_queue_arrives_whole(make_gateway, keys):
    """Replayed history is the store's memory: it does not count against
    outbound_queue_bytes, so a client that was away long enough to miss more
    than its queue holds still recovers, instead of being closed 4008 again."""
    g1 = make_gateway(flow_vhosts(keys, history={"zone": {"size": 500, "ttl_s": 60}},
                                  limits={"outbound_queue_bytes": 8192}))
    api = API(g1)
    z = "zone:" + uid("z")
    first = api.publish(z, "tick", {"n": 0}).json
    body = "x" * 900
    for i in range(1, 61):  # ~60 KiB missed: 7x the queue
        api.publish(z, "tick", {"n": i, "body": body})
    with Client(g1, zones=["*"]) as c:
        ack = c.subscribe(z, recover={"offset": 1, "epoch": first["epoch"]})["payload"]
        assert ack["recovered"] is True and ack["offset"] == 61, ack
        got = ticks(c, z, 60)
        assert [m["payload"]["n"] for m in got] == list(range(1, 61)), got


def test_a_recovery_larger_than_a_connection_may_hold_is_refused_not_closed_4008(
        make_gateway, keys):
    """What a connection may hold unsent of its replays is bounded (64 x
    outbound_queue_bytes: 512 KiB here). A recovery larger than that would close the
    client 4008, and again at each reconnect with the same offset: it is answered
    `recovered: false` instead, with nothing replayed, and the connection stays. A
    recovery that fits still replays."""
    g1 = make_gateway(flow_vhosts(keys, history={"zone": {"size": 1000, "ttl_s": 60}},
                                  limits={"outbound_queue_bytes": 8192}))
    api = API(g1)
    z = "zone:" + uid("z")
    first = api.publish(z, "tick", {"n": 0}).json
    body = "x" * 1000
    for start in range(1, 701, 50):  # 700 publications of ~1 KiB: ~740 KB
        batch = [{"channel": z, "type": "tick", "payload": {"n": i, "body": body}}
                 for i in range(start, start + 50)]
        r = api.post("/v1/publish", {"publications": batch})
        assert r.status == 202, (r.status, r.body)
    with Client(g1, zones=["*"]) as c:
        ack = c.subscribe(z, recover={"offset": 1, "epoch": first["epoch"]})["payload"]
        assert ack["recovered"] is False and ack["offset"] == 701, ack
        api.publish(z, "tick", {"n": 701})
        got = ticks(c, z, 1)
        assert [m["payload"]["n"] for m in got] == [701], "replayed or lost: %r" % got[:3]
        # the connection is open and serves: a recovery that fits replays
        c.ok("unsubscribe", {"channel": z})
        ack = c.subscribe(z, recover={"offset": 400, "epoch": first["epoch"]})["payload"]
        assert ack["recovered"] is True and ack["offset"] == 702, ack
        got = ticks(c, z, 302)  # offsets 401..702 hold n 400..701
        assert [m["payload"]["n"] for m in got] == list(range(400, 702)), \
            [m["payload"]["n"] for m in got][:3]


def test_a_history_answer_of_many_write_chunks_arrives_whole(g, api):
    """~300 KB of history: the API writes it in many chunks; every byte arrives, in order."""
    z = "zone:" + uid("z")
    blob = "".join(chr(0x41 + i % 26) for i in range(2500))
    for i in range(120):
        api.publish(z, "tick", {"n": i, "blob": blob[i % 26:] + blob[:i % 26]})
    r = api.get("/v1/channels/%s/history?limit=200" % z)
    assert r.status == 200, r.status
    assert int(r.headers["content-length"]) == len(r.body) > 300000, (r.headers, len(r.body))
    pubs = r.json["publications"]
    assert [p["offset"] for p in pubs] == list(range(1, 121)), [p["offset"] for p in pubs][:5]
    assert all(p["payload"] == {"n": i, "blob": blob[i % 26:] + blob[:i % 26]}
               for i, p in enumerate(pubs)), "a publication came back changed"
