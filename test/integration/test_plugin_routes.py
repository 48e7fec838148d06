"""Protocol behaviour lives in its plugin: the notification and presence API routes and the
payload checks of notification, status_update and chat_message exist only while the owning
plugin is enabled on a vhost of the internal vhost's namespace."""
import pytest

from test_flow_util import API, Client, flow_vhosts, uid


@pytest.fixture(scope="module")
def bare(make_module_gateway, keys):
    """Only the subscription plugin: no notification, chat or presence."""
    return make_module_gateway(flow_vhosts(keys, plugins={"subscription": {}}))


def test_notification_routes_answer_404_without_the_notification_plugin(bare):
    api = API(bare)
    r = api.post("/v1/notifications", {"userId": "alice", "notification": {"type": "t", "content": "c"}})
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r
    r = api.get("/v1/users/alice/notifications")
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r


def test_presence_route_answers_404_without_the_presence_plugin(bare):
    r = API(bare).get("/v1/users/alice/presence")
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r


def test_core_routes_stay_without_the_protocol_plugins(bare):
    api = API(bare)
    z = "zone:" + uid("z")
    with Client(bare, zones=["*"]) as c:
        c.subscribe(z)
        assert api.publish(z, "announcement", {"x": 1}).json["recipients"] == 1
        assert c.wait_for("announcement")["payload"] == {"x": 1}
    assert api.get("/v1/channels/%s" % z).status == 200
    assert API(bare).call("DELETE", "/v1/users/alice/connections").status == 200


def test_payload_shapes_are_checked_only_by_the_plugin_that_owns_the_type(bare, make_gateway, keys):
    odd = {"whatever": True}
    api = API(bare)
    for t, ch in (("notification", "user:alice"), ("status_update", "zone:z"),
                  ("chat_message", "chat:room")):
        assert api.publish(ch, t, odd).status == 202, t  # no owner: any object passes
    full = make_gateway(flow_vhosts(keys))
    api = API(full)
    for t, ch in (("notification", "user:alice"), ("status_update", "zone:z"),
                  ("chat_message", "chat:room")):
        r = api.publish(ch, t, odd, expect=None)
        assert r.status == 400 and r.json["error"]["code"] == "bad_request", (t, r)


def test_a_route_follows_the_plugin_not_the_vhost_that_enabled_it(make_gateway, keys):
    """The internal vhost of a namespace serves the routes of the plugins that some public vhost
    of that namespace enables; another namespace's plugins do not count."""
    import gw
    vh = flow_vhosts(keys, plugins={"subscription": {}}, namespace="a")
    vh.append(gw.public_vhost(keys, "b-public", tls=False, namespace="b",
                              plugins={"subscription": {}, "notification": {}}))
    g = make_gateway(vh)
    r = API(g).post("/v1/notifications", {"userId": "alice", "notification": {"type": "t", "content": "c"}})
    assert r.status == 404, r
