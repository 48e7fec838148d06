"""The internal HTTP API: auth, each error status with its JSON error, publish,
DELETE connections, channel subscriber counts, health endpoints."""
import http.client
import json
import time

import pytest

import gw
from test_flow_util import API, Client, uid


def assert_error(r, status):
    assert r.status == status, "expected HTTP %d, got %r" % (status, r)
    ct = r.headers.get("content-type", "")
    assert ct.startswith("application/json"), "error content-type %r: %r" % (ct, r)
    e = r.json.get("error") if isinstance(r.json, dict) else None
    assert isinstance(e, dict) and isinstance(e.get("code"), str) and e["code"] \
        and isinstance(e.get("message"), str), "error body should be {error:{code,message}}: %r" % r
    return e


PUBLISH = {"channel": "zone:z1", "type": "announcement", "payload": {"x": 1}}
V1_CALLS = [
    ("POST", "/v1/publish", PUBLISH),
    ("POST", "/v1/notifications", {"userId": "u1", "notification": {"type": "t", "content": "c"}}),
    ("GET", "/v1/users/u1/notifications", None),
    ("GET", "/v1/users/u1/presence", None),
    ("DELETE", "/v1/users/u1/connections", None),
    ("GET", "/v1/channels/zone:z1", None),
]


# ------------------------------------------------------------------ 401
@pytest.mark.parametrize("method,path,body", V1_CALLS)
def test_v1_without_key_401(api, method, path, body):
    assert_error(api.call(method, path, body, key=None), 401)


@pytest.mark.parametrize("method,path,body", V1_CALLS)
def test_v1_with_wrong_key_401(api, method, path, body):
    assert_error(api.call(method, path, body, key="api-wrong-key"), 401)


@pytest.mark.parametrize("auth", ["Basic %s", "bearer-%s", "Bearer", "Bearer  %s x", "%s"])
def test_v1_malformed_authorization_401(api, auth):
    h = auth % api.key if "%s" in auth else auth
    r = api.call("GET", "/v1/users/u1/presence", key=None, headers={"Authorization": h})
    assert_error(r, 401)


def test_key_prefix_is_not_a_key_401(api):
    assert_error(api.call("GET", "/v1/users/u1/presence", key=api.key[:-1]), 401)
    assert_error(api.call("GET", "/v1/users/u1/presence", key=api.key + "x"), 401)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_and_metrics_need_no_key(api, path):
    r = api.call("GET", path, key=None)
    assert r.status == 200, r


# ------------------------------------------------------------------ 404 / 405
@pytest.mark.parametrize("path", ["/v1/nope", "/v2/publish", "/v1/users/u1", "/v1/users/u1/other",
                                  "/v1/channels", "/", "/v1"])
def test_unknown_path_404(api, path):
    assert_error(api.call("GET", path), 404)


@pytest.mark.parametrize("method,path", [("GET", "/v1/publish"), ("PUT", "/v1/publish"),
                                         ("GET", "/v1/notifications"),
                                         ("DELETE", "/v1/users/u1/notifications"),
                                         ("POST", "/v1/users/u1/presence"),
                                         ("GET", "/v1/users/u1/connections"),
                                         ("DELETE", "/v1/channels/zone:z1")])
def test_wrong_method_405(api, method, path):
    body = {"x": 1} if method in ("POST", "PUT") else None
    assert_error(api.call(method, path, body), 405)


# ------------------------------------------------------------------ 400
@pytest.mark.parametrize("raw", [b"{", b"not json", b"[1,2]", b"\"str\"", b"{} {}", b"{\"a\":1} x", b"",
                                 b"{\"channel\":\"zone:z1\",\"type\":\"t\",\"payload\":{\"a\":\"\xff\"}}"])
def test_publish_bad_json_400(api, raw):
    assert_error(api.call("POST", "/v1/publish", raw=raw), 400)


@pytest.mark.parametrize("body", [
    {"type": "t", "payload": {}},                                   # no channel
    {"channel": "zone:z1", "payload": {}},                          # no type
    {"channel": "zone:z1", "type": "t"},                            # no payload
    {"channel": 5, "type": "t", "payload": {}},
    {"channel": "zone:z1", "type": 5, "payload": {}},
    {"channel": "zone:z1", "type": "t", "payload": [1]},
    {"channel": "zone:z1", "type": "t", "payload": "s"},
    {"channel": "zone:a b", "type": "t", "payload": {}},            # channel grammar
    {"channel": "room:1", "type": "t", "payload": {}},
    {"channel": "user", "type": "t", "payload": {}},                # no own user on the API
    {"channel": "zone:" + "a" * 65, "type": "t", "payload": {}},
])
def test_publish_bad_shape_400(api, body):
    assert_error(api.post("/v1/publish", body), 400)


@pytest.mark.parametrize("payload", [
    {"userId": "u", "status": "busy"},                                   # no lastActive
    {"status": "busy", "lastActive": "2026-01-01T00:00:00.000Z"},        # no userId
    {"userId": "u", "status": 3, "lastActive": "2026-01-01T00:00:00.000Z"},
    {"userId": 7, "status": "busy", "lastActive": "2026-01-01T00:00:00.000Z"},
])
def test_publish_bad_status_update_400(api, payload):
    assert_error(api.post("/v1/publish", {"channel": "zone:z1", "type": "status_update", "payload": payload}), 400)


@pytest.mark.parametrize("payload", [
    {"type": "t", "content": "c", "isRead": False, "createdAt": "2026-01-01T00:00:00.000Z"},  # no id
    {"id": "n1", "content": "c", "isRead": False, "createdAt": "2026-01-01T00:00:00.000Z"},   # no type
    {"id": "n1", "type": "t", "content": 1, "isRead": False, "createdAt": "2026-01-01T00:00:00.000Z"},
])
def test_publish_bad_notification_400(api, payload):
    assert_error(api.post("/v1/publish", {"channel": "user:u1", "type": "notification", "payload": payload}), 400)


@pytest.mark.parametrize("body", [
    {"notification": {"type": "t", "content": "c"}},
    {"userId": "u1"},
    {"userId": "bad id", "notification": {"type": "t", "content": "c"}},
    {"userId": "", "notification": {"type": "t", "content": "c"}},
    {"userId": 5, "notification": {"type": "t", "content": "c"}},
    {"userId": "u1", "notification": {"type": "t", "content": "c", "sender": "bob"}},
    {"userId": "u1", "notification": {"type": "t", "content": "c", "reference": 5}},
])
def test_notification_bad_shape_400(api, body):
    assert_error(api.post("/v1/notifications", body), 400)


def test_bad_query_limit_400(api):
    assert_error(api.get("/v1/users/u1/notifications?limit=abc"), 400)


# ------------------------------------------------------------------ 413 / 415
def test_body_over_64k_413(api):
    big = {"channel": "zone:z1", "type": "t", "payload": {"pad": "x" * (65 * 1024)}}
    try:
        r = api.post("/v1/publish", big)
    except (BrokenPipeError, ConnectionResetError) as e:
        pytest.fail("no 413 answer for an oversized body (connection dropped: %r)" % e)
    assert_error(r, 413)


@pytest.mark.parametrize("mb", [1, 4, 15])
def test_body_of_megabytes_sent_whole_before_reading_gets_its_413(api, mb):
    """Python's http.client sends the whole body before it reads: an answer given at once
    and a close would reach it as a broken pipe. A body up to 16 MiB is read, dropped and
    answered 413, and the connection stays usable."""
    h = {"Authorization": "Bearer " + api.key, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    try:
        for _ in range(2):
            try:
                conn.request("POST", "/v1/publish", body=b" " * (mb << 20), headers=h)
                r = conn.getresponse()
            except (BrokenPipeError, ConnectionResetError) as e:
                pytest.fail("no 413 for a %d MiB body (connection dropped: %r)" % (mb, e))
            body = r.read()
            assert r.status == 413 and b"payload_too_large" in body, (r.status, body)
    finally:
        conn.close()


def test_body_just_under_64k_accepted(api):
    body = {"channel": "zone:" + uid("z"), "type": "t", "payload": {"pad": ""}}
    n = 64 * 1024 - len(json.dumps(body)) - 16
    body["payload"]["pad"] = "x" * n
    r = api.post("/v1/publish", body)
    assert r.status == 202, r


@pytest.mark.parametrize("ct", [None, "text/plain", "application/x-www-form-urlencoded",
                                "application/jsonx", "application/+json", "text/x+json",
                                "application/x/y+json", "application/json x"])
def test_post_without_json_content_type_415(api, ct):
    r = api.call("POST", "/v1/publish", raw=json.dumps(PUBLISH).encode(), content_type=ct)
    assert_error(r, 415)


@pytest.mark.parametrize("ct", ["application/json", "APPLICATION/JSON;charset=UTF-8",
                                "application/json\t; charset=utf-8", "application/json ;a=b",
                                "application/vnd.api+json", "application/merge-patch+JSON"])
def test_post_with_a_json_media_type_is_read(api, ct):
    """application/json, or any application/ type with the +json suffix (RFC 6839), with
    optional whitespace before its parameters (RFC 9110's OWS: a tab too)."""
    r = api.call("POST", "/v1/publish", raw=json.dumps(PUBLISH).encode(), content_type=ct)
    assert r.status == 202, r


def test_json_content_type_with_charset_accepted(api):
    r = api.call("POST", "/v1/publish", raw=json.dumps(PUBLISH).encode(),
                 content_type="application/json; charset=utf-8")
    assert r.status == 202, r


# ------------------------------------------------------------------ success paths
def test_publish_202_reports_channel_offset_recipients(g, api):
    z = "zone:" + uid("z")
    with Client(g, zones=["*"]) as a, Client(g, zones=["*"]) as b:
        a.subscribe(z)
        b.subscribe(z)
        r1 = api.publish(z, "announcement", {"n": 1})
        r2 = api.publish(z, "announcement", {"n": 2})
        for r in (r1, r2):
            assert r.headers.get("content-type", "").startswith("application/json"), r
            assert r.json.get("channel") == z and r.json.get("recipients") == 2, r
            assert isinstance(r.json.get("offset"), int), r
        assert r2.json["offset"] > r1.json["offset"], (r1, r2)
        for c in (a, b):
            got = [c.wait_for("announcement", n=1), c.wait_for("announcement", n=2)]
            assert all(m.get("channel") == z for m in got), got
    r = api.publish("zone:" + uid("empty"), "announcement", {})
    assert r.json.get("recipients") == 0, r


def test_publish_to_user_channel_reaches_that_user(g, api):
    alice, bob = uid("alice"), uid("bob")
    with Client(g, alice) as a, Client(g, bob) as b:
        a.sync()
        r = api.publish("user:" + alice, "account_changed", {"plan": "pro"})
        assert r.json.get("recipients") == 1, r
        m = a.wait_for("account_changed")
        assert m["payload"] == {"plan": "pro"} and m.get("channel") == "user:" + alice, m
        b.sync()
        assert not b.take("account_changed")


def test_delete_user_connections_closes_them_1001_4001(g, api):
    alice, bob = uid("alice"), uid("bob")
    a1, a2, b = Client(g, alice), Client(g, alice), Client(g, bob)
    try:
        for c in (a1, a2, b):
            c.sync()
        r = api.call("DELETE", "/v1/users/%s/connections" % alice)
        assert r.status == 200 and r.json == {"closed": 2}, r
        for c in (a1, a2):
            gw.expect_error(c.ws, 1001)
            cl = c.wait_close(5)
            assert cl.code == 4001, "expected close 4001, got %r" % cl
        b.sync()  # bob is untouched
        p = api.presence(alice)
        assert p.get("connections") == 0 and p.get("status") == "offline", p
        r = api.call("DELETE", "/v1/users/%s/connections" % alice)
        assert r.status == 200 and r.json == {"closed": 0}, r
    finally:
        for c in (a1, a2, b):
            c.close()


def test_channel_subscriber_count(g, api):
    z = "channel:" + uid("c")
    r = api.get("/v1/channels/" + z)
    assert r.status == 200 and r.json == {"channel": z, "subscribers": 0}, r
    with Client(g, channels=["*"]) as a, Client(g, channels=["*"]) as b, Client(g, channels=["*"]) as c:
        for x in (a, b, c):
            x.subscribe(z)
        assert api.get("/v1/channels/" + z).json == {"channel": z, "subscribers": 3}
        c.ok("unsubscribe", {"channel": z})
        assert api.get("/v1/channels/" + z).json == {"channel": z, "subscribers": 2}
        b.close()
        deadline = time.monotonic() + 3
        while api.get("/v1/channels/" + z).json.get("subscribers") != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.get("/v1/channels/" + z).json == {"channel": z, "subscribers": 1}


def test_channel_of_invalid_name_400(api):
    assert_error(api.get("/v1/channels/zone:a%20b"), 400)


def test_user_channel_subscriber_count_counts_connections(g, api):
    user = uid()
    with Client(g, user) as a, Client(g, user) as b:
        a.sync(), b.sync()
        r = api.get("/v1/channels/user:" + user)
        assert r.status == 200 and r.json == {"channel": "user:" + user, "subscribers": 2}, r


def test_inbox_limit_0_lists_the_whole_inbox(g, api):
    user = uid()
    for i in range(3):
        api.notify(user, {"type": "t", "content": str(i)})
    assert len(api.inbox(user, "?limit=0")["notifications"]) == 3
    assert_error(api.get("/v1/users/%s/notifications?limit=10001" % user), 400)


def test_inbox_limit_and_unread(g, api):
    user = uid()
    ids = [api.notify(user, {"type": "t", "content": str(i)}).json["id"] for i in range(5)]
    box = api.inbox(user, "?limit=3")
    assert len(box["notifications"]) == 3, box
    with Client(g, user) as c:
        c.ok("mark_read", {"notificationId": ids[0]})
    unread = api.inbox(user, "?unread=1")
    assert [n["id"] for n in unread["notifications"]] == ids[1:], unread
    for n in unread["notifications"]:
        assert n["isRead"] is False and n["type"] == "t" and isinstance(n.get("createdAt"), str), n
