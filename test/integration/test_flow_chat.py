"""Chat: chat_message published to chat:<room> through the API, and client send
(plugins.chat.client_send) with the server-filled id/sender/createdAt."""
import pytest

import gw
from test_flow_util import FULL_PLUGINS, API, Client, flow_vhosts, uid


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    vh = flow_vhosts(keys)
    vh.append(gw.public_vhost(keys, "chatty", tls=False,
                              plugins=dict(FULL_PLUGINS, chat={"client_send": True})))
    return make_module_gateway(vh)


def chat_payload(room, content="hello room", **kw):
    p = {"id": uid("msg"), "roomId": room,
         "sender": {"id": "bob", "username": "Bob", "profilePhoto": "https://x.example/bob.png"},
         "content": content, "createdAt": "2026-11-25T12:00:00.000Z",
         "attachments": [{"type": "image", "url": "https://x.example/a.png"}]}
    p.update(kw)
    return p


def test_published_chat_message_reaches_room_subscribers_intact(g, api):
    room = uid("room")
    with Client(g, chats=[room]) as m1, Client(g, chats=[room]) as m2, Client(g, chats=["*"]) as outsider:
        m1.subscribe("chat:" + room)
        m2.subscribe("chat:" + room)
        outsider.subscribe("chat:" + uid("otherroom"))
        payload = chat_payload(room, "caf\u00e9 \u2615 <b>&amp;</b> \"quoted\"\nline2")
        r = api.publish("chat:" + room, "chat_message", payload)
        assert r.json.get("channel") == "chat:" + room and r.json.get("recipients") == 2, r
        assert isinstance(r.json.get("offset"), int), r
        for c in (m1, m2):
            m = c.wait_for("chat_message")
            assert m["payload"] == payload, "payload changed in transit:\n%r\n%r" % (payload, m["payload"])
            assert m.get("channel") == "chat:" + room, m
            c.sync()
            assert not c.take("chat_message"), "delivered twice"
        outsider.sync()
        assert not outsider.take("chat_message"), outsider.inbox


def test_published_chat_message_without_attachments_gets_an_empty_array(g, api):
    room = uid("room")
    with Client(g, chats=[room]) as m:
        m.subscribe("chat:" + room)
        payload = chat_payload(room)
        del payload["attachments"]
        api.publish("chat:" + room, "chat_message", payload)
        got = m.wait_for("chat_message")["payload"]
        assert got == dict(payload, attachments=[]), got


def test_published_chat_message_room_mismatch_400(g, api):
    room = uid("room")
    r = api.publish("chat:" + room, "chat_message", chat_payload("another-room"), expect=None)
    assert r.status == 400 and isinstance(r.json, dict) and "error" in r.json, r


def test_published_chat_message_to_non_chat_channel_400(g, api):
    room = uid("room")
    r = api.publish("zone:" + room, "chat_message", chat_payload(room), expect=None)
    assert r.status == 400, r


@pytest.mark.parametrize("drop", ["id", "roomId", "content", "sender", "createdAt"])
def test_published_chat_message_missing_field_400(g, api, drop):
    room = uid("room")
    p = chat_payload(room)
    del p[drop]
    r = api.publish("chat:" + room, "chat_message", p, expect=None)
    assert r.status == 400, "chat_message without %s: %r" % (drop, r)


def test_client_chat_message_refused_without_client_send(g, api):
    room = uid("room")
    with Client(g, chats=[room]) as a, Client(g, chats=[room]) as b:
        a.subscribe("chat:" + room)
        b.subscribe("chat:" + room)
        m = a.request("chat_message", {"roomId": room, "content": "hi"})
        assert m["type"] == "error" and m["payload"]["code"] in (1002, 1004), m
        b.sync()
        assert not b.take("chat_message"), "client send is off but the message was delivered"


def test_client_send_delivers_to_room_with_server_fields(g, api):
    room = uid("room")
    with Client(g, vhost="chatty", chats=[room], username="Alice A.", picture="https://x.example/a.png") as a, \
            Client(g, vhost="chatty", chats=[room]) as b, \
            Client(g, chats=[room]) as other_vhost, \
            Client(g, vhost="chatty", chats=["*"]) as outsider:
        for c in (a, b, other_vhost):
            c.subscribe("chat:" + room)
        att = [{"type": "file", "url": "https://x.example/f.pdf"}]
        a.ok("chat_message", {"roomId": room, "content": "hello all", "attachments": att})
        msgs = []
        for c in (a, b, other_vhost):
            m = c.wait_for("chat_message")
            msgs.append(m)
            p = m["payload"]
            assert m.get("channel") == "chat:" + room, m
            assert p.get("roomId") == room and p.get("content") == "hello all" and p.get("attachments") == att, m
            assert p.get("sender") == {"id": a.sub, "username": "Alice A.",
                                       "profilePhoto": "https://x.example/a.png"}, m
            assert isinstance(p.get("id"), str) and p["id"], m
            assert isinstance(p.get("createdAt"), str) and gw.TS_RE.match(p["createdAt"]), \
                "createdAt should be RFC 3339 UTC with ms: %r" % m
        assert len({m["payload"]["id"] for m in msgs}) == 1, "one message, one id: %r" % msgs
        outsider.sync()
        assert not outsider.take("chat_message")


def test_client_send_ids_are_unique(g, api):
    room = uid("room")
    with Client(g, vhost="chatty", chats=[room]) as a:
        a.subscribe("chat:" + room)
        a.ok("chat_message", {"roomId": room, "content": "one"})
        a.ok("chat_message", {"roomId": room, "content": "two"})
        a.sync()
        got = a.take("chat_message")
        assert [m["payload"]["content"] for m in got] == ["one", "two"], got
        assert got[0]["payload"]["id"] != got[1]["payload"]["id"], got


def test_client_send_to_room_not_subscribed_1004(g, api):
    room = uid("room")
    with Client(g, vhost="chatty", chats=[room]) as a, Client(g, vhost="chatty", chats=[room]) as b:
        b.subscribe("chat:" + room)
        a.err("chat_message", {"roomId": room, "content": "not a member"}, 1004)
        b.sync()
        assert not b.take("chat_message"), b.inbox
        a.sync()  # still open


def test_client_send_with_sender_1002(g, api):
    room = uid("room")
    with Client(g, vhost="chatty", chats=[room]) as a, Client(g, vhost="chatty", chats=[room]) as b:
        a.subscribe("chat:" + room)
        b.subscribe("chat:" + room)
        a.err("chat_message", {"roomId": room, "content": "spoof",
                               "sender": {"id": b.sub, "username": "b", "profilePhoto": ""}}, 1002)
        b.sync()
        assert not b.take("chat_message"), "spoofed message delivered: %r" % b.inbox


@pytest.mark.parametrize("payload", [{"content": "no room"}, {"roomId": "R"}, {"roomId": "R", "content": 5},
                                     {"roomId": "R", "content": "x", "attachments": "nope"}])
def test_client_send_bad_shape_1002(g, api, payload):
    with Client(g, vhost="chatty", chats=["*"]) as a:
        a.subscribe("chat:R")
        a.err("chat_message", payload, 1002)
        a.sync()


def test_a_renewed_tokens_claims_are_the_ones_later_messages_see(g):
    """The gateway keeps a connection's claims as text between loop turns and parses them
    when a plugin asks: each message, sent in a turn of its own, gets the sender's claims
    of the moment, before and after an `auth` renewal that changes them."""
    room = uid("room")

    def said(c, content):
        c.ok("chat_message", {"roomId": room, "content": content})
        m = c.wait_for("chat_message")
        assert m["payload"]["content"] == content, m
        return m["payload"]["sender"]["username"]

    with Client(g, vhost="chatty", chats=[room], username="Before") as a:
        a.subscribe("chat:" + room)
        assert said(a, "one") == "Before"
        assert said(a, "two") == "Before"
        a.ok("auth", {"token": g.token(vhost="chatty", sub=a.sub, chats=[room],
                                       username="After")})
        assert said(a, "three") == "After"
        assert said(a, "four") == "After"
