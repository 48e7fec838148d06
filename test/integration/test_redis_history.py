"""History and recovery on the redis backend (DESIGN 7.3) across 3 nodes on one Redis:
offsets and epochs one channel shares on every node, recovery on another node of what was
published through a third, publications racing a recovery, gaps, wrong epochs, the history
API on any node.  (A new epoch after Redis restarted empty: test_redis_failover.py.)"""
import threading

import pytest

import redisfix as rf
from test_flow_util import ALL, Client, ticks, uid

pytestmark = pytest.mark.skipif(not rf.redis_available(), reason="redis-server not installed")

SIZE = 50
HISTORY = {"zone": {"size": SIZE, "ttl_s": 120}, "chat": {"size": 5, "ttl_s": 120}}


@pytest.fixture(scope="module")
def nodes(redis, make_module_gateway, keys):
    return rf.Nodes(make_module_gateway, keys, redis, n=3,
                    public_over={"history": HISTORY}).start()


def C(node):
    return Client(node, **ALL)


def test_a_channel_has_one_epoch_and_one_offset_sequence_on_every_node(nodes):
    z = "zone:" + uid("z")
    cs = [C(nodes[i]) for i in range(3)]
    try:
        acks = [c.subscribe(z)["payload"] for c in cs]
        assert len({a["epoch"] for a in acks}) == 1 and all(a["offset"] == 0 for a in acks), acks
        answers = [nodes.api(i % 3).publish(z, "tick", {"n": i}).json for i in range(9)]
        assert [a["offset"] for a in answers] == list(range(1, 10)), answers
        assert {a["epoch"] for a in answers} == {acks[0]["epoch"]}, answers
        for c in cs:
            got = ticks(c, z, 9)
            assert [m["offset"] for m in got] == list(range(1, 10)), got
            assert [m["payload"]["n"] for m in got] == list(range(9)), got
        with C(nodes[1]) as late:
            ack = late.subscribe(z)["payload"]
            assert ack["offset"] == 9 and ack["epoch"] == acks[0]["epoch"], ack
    finally:
        for c in cs:
            c.close()


def test_recover_on_another_node_what_a_third_published(nodes):
    z = "zone:" + uid("z")
    with C(nodes[0]) as c:
        epoch = c.subscribe(z)["payload"]["epoch"]
        for i in range(3):
            nodes.api(1).publish(z, "tick", {"n": i})
        assert [m["offset"] for m in ticks(c, z, 3)] == [1, 2, 3]
    missed = [nodes.api(1).publish(z, "tick", {"n": i}).json["offset"] for i in range(3, 8)]
    assert missed == [4, 5, 6, 7, 8]
    with C(nodes[2]) as c:
        ack = c.subscribe(z, recover={"offset": 3, "epoch": epoch})["payload"]
        assert ack["recovered"] is True and ack["offset"] == 8 and ack["epoch"] == epoch, ack
        got = ticks(c, z, 5)
        assert [m["offset"] for m in got] == missed, got
        assert [m["payload"]["n"] for m in got] == [3, 4, 5, 6, 7], got
        nodes.api(0).publish(z, "tick", {"n": 8})
        assert ticks(c, z, 1)[0]["offset"] == 9
        c.sync()
        assert not c.take("tick"), "a publication twice"


def test_publications_racing_a_recovery_arrive_once_in_order(nodes):
    z = "zone:" + uid("z")
    api = nodes.api(1)
    with C(nodes[0]) as c:
        epoch = c.subscribe(z)["payload"]["epoch"]
    for i in range(10):
        api.publish(z, "tick", {"n": i})
    stop, sent = threading.Event(), []

    def keep_publishing():
        while not stop.is_set() and len(sent) < 30:
            sent.append(api.publish(z, "tick", {"n": 10 + len(sent)}).json["offset"])

    t = threading.Thread(target=keep_publishing)
    t.start()
    try:
        with C(nodes[2]) as c:
            ack = c.subscribe(z, recover={"offset": 2, "epoch": epoch})["payload"]
            assert ack["recovered"] is True, ack
            stop.set()
            t.join(30)
            last = 10 + len(sent)
            got = [m["offset"] for m in ticks(c, z, last - 2)]
            assert got == list(range(3, last + 1)), "gap, repeat or disorder: %r" % got
            c.sync()
            assert not c.take("tick")
    finally:
        stop.set()
        t.join(30)


def test_more_missed_than_the_history_holds_is_not_recovered(nodes):
    z = "zone:" + uid("z")
    with C(nodes[0]) as c:
        epoch = c.subscribe(z)["payload"]["epoch"]
    for i in range(SIZE + 5):
        nodes.api(1).publish(z, "tick", {"n": i})
    with C(nodes[2]) as c:
        ack = c.subscribe(z, recover={"offset": 2, "epoch": epoch})["payload"]
        assert ack["recovered"] is False and ack["offset"] == SIZE + 5, ack
        c.sync()
        assert not c.take("tick"), "nothing is replayed when not recovered"


def test_a_wrong_epoch_is_not_recovered(nodes):
    z = "zone:" + uid("z")
    nodes.api(0).publish(z, "tick", {"n": 0})
    with C(nodes[1]) as c:
        ack = c.subscribe(z, recover={"offset": 0, "epoch": "not-the-epoch"})["payload"]
        assert ack["recovered"] is False and ack["offset"] == 1, ack
        c.sync()
        assert not c.take("tick")


def test_history_api_on_any_node(nodes):
    ch = "chat:" + uid("c")
    answers = [nodes.api(0).publish(ch, "tick", {"n": i}).json for i in range(7)]
    for i in (1, 2):
        r = nodes.api(i).get("/v1/channels/%s/history?since=3" % ch)
        assert r.status == 200, r
        h = r.json
        assert h["channel"] == ch and h["epoch"] == answers[0]["epoch"] and h["offset"] == 7, h
        assert [p["offset"] for p in h["publications"]] == [4, 5, 6, 7], h
        assert [p["payload"]["n"] for p in h["publications"]] == [3, 4, 5, 6], h
        assert all(p["type"] == "tick" and p["timestamp"] for p in h["publications"]), h
    # only the newest 5 are held
    r = nodes.api(2).get("/v1/channels/%s/history" % ch).json
    assert [p["offset"] for p in r["publications"]] == [3, 4, 5, 6, 7], r
