"""Per-vhost plugin sets, a missing plugin .so, and namespace isolation."""
import json
import shutil
import subprocess

import pytest

import gw
from test_flow_util import ALL, FULL_PLUGINS, API, Client, flow_vhosts, uid


# ------------------------------------------------------------------ plugin sets per vhost
@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    vh = flow_vhosts(keys)  # "public": all four
    vh.append(gw.public_vhost(keys, "subonly", tls=False, plugins={"subscription": {}}))
    vh.append(gw.public_vhost(keys, "nosub", tls=False, plugins={"notification": {}, "presence": {}}))
    vh.append(gw.public_vhost(keys, "nochat", tls=False,
                              plugins={"subscription": {}, "notification": {}, "presence": {}}))
    vh.append(gw.public_vhost(keys, "chatsend", tls=False,
                              plugins={"subscription": {}, "chat": {"client_send": True}}))
    return make_module_gateway(vh)


def test_full_vhost_serves_every_flow_type(g, api):
    with Client(g, **ALL) as c:
        c.subscribe("zone:" + uid("z"))
        c.ok("presence", {"status": "busy"})
        c.err("mark_read", {"notificationId": "nope"}, 1004)  # handled: permission, not format


def test_subscription_only_vhost(g, api):
    with Client(g, vhost="subonly", **ALL) as c:
        c.subscribe("zone:" + uid("z"))
        c.err("presence", {"status": "busy"}, 1002)
        c.err("mark_read", {"notificationId": "x"}, 1002)
        c.err("chat_message", {"roomId": "r", "content": "x"}, 1002)
        c.subscribe("chat:" + uid("r"))  # still working after the errors


def test_vhost_without_subscription_plugin(g, api):
    with Client(g, vhost="nosub", **ALL) as c:
        c.err("subscribe", {"channel": "zone:" + uid("z")}, 1002)
        c.err("unsubscribe", {"channel": "zone:x"}, 1002)
        c.ok("presence", {"status": "away"})
        c.err("mark_read", {"notificationId": "x"}, 1004)


def test_vhost_without_chat_plugin(g, api):
    with Client(g, vhost="nochat", **ALL) as c:
        c.subscribe("chat:" + uid("r"))
        c.err("chat_message", {"roomId": "r", "content": "x"}, 1002)
        c.ok("presence", {"status": "online"})


def test_vhost_without_presence_plugin(g, api):
    with Client(g, vhost="chatsend", **ALL) as c:
        room = uid("r")
        c.subscribe("chat:" + room)
        c.err("presence", {"status": "busy"}, 1002)
        c.ok("chat_message", {"roomId": room, "content": "still chatting"})
        c.wait_for("chat_message", content="still chatting")


def test_same_type_different_vhosts_behave_by_their_own_set(g, api):
    room = uid("r")
    with Client(g, vhost="chatsend", **ALL) as a, Client(g, **ALL) as b:
        a.subscribe("chat:" + room)
        b.subscribe("chat:" + room)
        a.ok("chat_message", {"roomId": room, "content": "from chatsend"})
        m = b.request("chat_message", {"roomId": room, "content": "from public"})
        assert m["type"] == "error", "public vhost has client_send off: %r" % m
        b.wait_for("chat_message", content="from chatsend")


# ------------------------------------------------------------------ missing .so
def _write(tmp_path, keys, plugins, plugin_dirs=None, name="gateway.json"):
    c = gw.base_config(keys, [gw.public_vhost(keys, tls=False, plugins=plugins)], plugin_dirs=plugin_dirs)
    p = tmp_path / name
    p.write_text(json.dumps(c))
    return p


def _dir_without(tmp_path, missing):
    d = tmp_path / ("plugins-without-" + missing)
    d.mkdir()
    for so in gw.PLUGIN_DIR.glob("*.so"):
        if so.stem != missing:
            shutil.copy(so, d / so.name)
    return d


def _run(args, timeout=10):
    try:
        return gw.run_binary(args, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("gateway kept running with a missing plugin (should refuse to start)")


@pytest.mark.parametrize("missing", ["chat", "notification", "presence", "subscription"])
def test_missing_plugin_so_fails_check_and_start(binary, keys, tmp_path, missing):
    d = _dir_without(tmp_path, missing)
    p = _write(tmp_path, keys, dict(FULL_PLUGINS), plugin_dirs=[d])
    r = _run(["--check", "-c", p])
    assert r.returncode == 1, "--check with %s.so missing: rc %r\n%s" % (missing, r.returncode, r.stderr)
    assert missing in r.stderr, "error should name the plugin %r:\n%s" % (missing, r.stderr)
    r = _run(["-c", p])
    assert r.returncode != 0, "start with %s.so missing exited 0" % missing
    assert missing in r.stderr, "start error should name the plugin %r:\n%s" % (missing, r.stderr)


def test_unknown_plugin_name_fails_check_and_start(binary, keys, tmp_path):
    p = _write(tmp_path, keys, dict(FULL_PLUGINS, nosuch={}))
    r = _run(["--check", "-c", p])
    assert r.returncode == 1 and "nosuch" in r.stderr, (r.returncode, r.stderr)
    r = _run(["-c", p])
    assert r.returncode != 0 and "nosuch" in r.stderr, (r.returncode, r.stderr)


def test_plugin_dir_without_unused_plugin_is_fine(binary, keys, tmp_path):
    d = _dir_without(tmp_path, "chat")
    plugins = {k: v for k, v in FULL_PLUGINS.items() if k != "chat"}
    p = _write(tmp_path, keys, plugins, plugin_dirs=[d])
    r = _run(["--check", "-c", p])
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ namespaces
@pytest.fixture(scope="module")
def ns(make_module_gateway, keys):
    a = flow_vhosts(keys, name="a1", internal="ia", namespace="tenant-a")
    a2 = gw.public_vhost(keys, "a2", tls=False, plugins=dict(FULL_PLUGINS), namespace="tenant-a")
    b = flow_vhosts(keys, name="b1", internal="ib", namespace="tenant-b")
    return make_module_gateway(a + [a2] + b)


def test_namespaces_isolate_channels(ns):
    z = "zone:" + uid("z")
    with Client(ns, vhost="a1", **ALL) as a1, Client(ns, vhost="a2", **ALL) as a2, \
            Client(ns, vhost="b1", **ALL) as b1:
        for c in (a1, a2, b1):
            c.subscribe(z)
        r = API(ns, "ia").publish(z, "announcement", {"t": "a"})
        assert r.json.get("recipients") == 2, r
        for c in (a1, a2):
            assert c.wait_for("announcement")["payload"] == {"t": "a"}
        b1.sync()
        assert not b1.take("announcement"), "tenant-b saw tenant-a's publication: %r" % b1.inbox
        assert API(ns, "ib").get("/v1/channels/" + z).json.get("subscribers") == 1
        assert API(ns, "ia").get("/v1/channels/" + z).json.get("subscribers") == 2


def test_namespaces_isolate_notifications(ns):
    user = uid("alice")
    with Client(ns, user, vhost="a1") as a1, Client(ns, user, vhost="a2") as a2, \
            Client(ns, user, vhost="b1") as b1:
        for c in (a1, a2, b1):
            c.sync()  # open: its user channel is live (protocol.md §1)
        nid = API(ns, "ia").notify(user, {"type": "t", "content": "for tenant a"}).json["id"]
        a1.wait_for("notification", id=nid)
        a2.wait_for("notification", id=nid)
        b1.sync()
        assert not b1.take("notification"), "tenant-b connection got tenant-a's notification"
        assert API(ns, "ib").inbox(user)["notifications"] == []
        assert [n["id"] for n in API(ns, "ia").inbox(user)["notifications"]] == [nid]
        b1.err("mark_read", {"notificationId": nid}, 1004)
        a2.ok("mark_read", {"notificationId": nid})
        a1.wait_for("notification_read")


def test_namespaces_isolate_presence(ns):
    z = "zone:" + uid("z")
    user = uid("alice")
    with Client(ns, user, vhost="a1", **ALL) as alice, Client(ns, vhost="a2", **ALL) as same_ns, \
            Client(ns, vhost="b1", **ALL) as other_ns:
        for c in (alice, same_ns, other_ns):
            c.subscribe(z)
        alice.ok("presence", {"status": "busy"})
        same_ns.wait_for("status_update", userId=user, status="busy")
        other_ns.sync()
        assert not other_ns.take("status_update", userId=user), other_ns.inbox
        assert API(ns, "ia").presence(user).get("status") == "busy"
        pb = API(ns, "ib").presence(user)
        assert pb.get("status") != "busy" and not pb.get("connections"), pb
