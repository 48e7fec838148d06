"""/metrics counts connections, messages in and out by type, errors by code and auth
failures: read before and after some traffic and compare. One gateway for this module
only, so the deltas are exactly this traffic."""
import time

import gw
from test_flow_util import Client, metric, uid


def settle(api, fn, want, timeout=3.0):
    """Poll /metrics until fn(metrics) == want (closes are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        m = api.metrics()
        if fn(m) == want or time.monotonic() > deadline:
            return fn(m)
        time.sleep(0.05)


def test_metrics_is_prometheus_text(api):
    r = api.call("GET", "/metrics", key=None)
    assert r.status == 200 and r.headers.get("content-type", "").startswith("text/plain"), r
    for name in ("pavilion_connections", "pavilion_messages_in_total", "pavilion_messages_out_total",
                 "pavilion_errors_total", "pavilion_auth_failures_total"):
        assert "# TYPE %s " % name in r.text, "no %s in /metrics:\n%s" % (name, r.text[:2000])


def test_metrics_count_connections(g, api):
    before = metric(api.metrics(), "pavilion_connections")
    cs = [Client(g) for _ in range(3)]
    for c in cs:
        c.sync()
    assert metric(api.metrics(), "pavilion_connections") == before + 3
    cs[0].close()
    got = settle(api, lambda m: metric(m, "pavilion_connections"), before + 2)
    assert got == before + 2, "gauge after one close: %r (expected %r)" % (got, before + 2)
    for c in cs[1:]:
        c.close()
    got = settle(api, lambda m: metric(m, "pavilion_connections"), before)
    assert got == before, got


def test_metrics_count_messages_in_by_type(g, api):
    before = api.metrics()
    with Client(g, zones=["*"]) as c:
        c.subscribe("zone:" + uid("z"))
        c.subscribe("zone:" + uid("z"))
        c.ok("unsubscribe", {"channel": "zone:x"})
        for s in ("busy", "away", "online"):
            c.ok("presence", {"status": s})
        c.sync()
    after = api.metrics()
    d = lambda t: metric(after, "pavilion_messages_in_total", type=t) - \
        metric(before, "pavilion_messages_in_total", type=t)  # noqa: E731
    assert d("subscribe") == 2, "subscribe in: %r" % d("subscribe")
    assert d("unsubscribe") == 1
    assert d("presence") == 3, "presence in: %r" % d("presence")
    assert d("heartbeat_ack") == 1


def test_metrics_count_messages_out_by_type(g, api):
    z = "zone:" + uid("z")
    user = uid()
    with Client(g, user, zones=["*"]) as a, Client(g, user, zones=["*"]) as b:
        a.subscribe(z)
        b.subscribe(z)
        a.sync(), b.sync()
        before = api.metrics()
        api.publish(z, "flow_metric_probe", {"n": 1})
        api.notify(user, {"type": "t", "content": "c"})
        for c in (a, b):
            c.wait_for("flow_metric_probe")
            c.wait_for("notification")
        a.err("subscribe", {"channel": "zone:a b"}, 1003)
        after = api.metrics()
    d = lambda t: metric(after, "pavilion_messages_out_total", type=t) - \
        metric(before, "pavilion_messages_out_total", type=t)  # noqa: E731
    assert d("flow_metric_probe") == 2, "published type out: %r" % d("flow_metric_probe")
    assert d("notification") == 2, "notification out: %r" % d("notification")
    assert d("error") == 1, "error out: %r" % d("error")


def test_metrics_count_errors_by_code(g, api):
    before = api.metrics()
    with Client(g) as c:
        c.err("subscribe", {"channel": "zone:" + uid("z")}, 1004)
        c.err("subscribe", {"channel": "user:" + uid("other")}, 1004)
        c.err("subscribe", {"channel": "nope"}, 1003)
        c.err("presence", {"status": "sleepy"}, 1002)
        c.ws.send_text("not json")
        gw.expect_error(c.ws, 1002)
    after = api.metrics()
    d = lambda code: metric(after, "pavilion_errors_total", code=code) - \
        metric(before, "pavilion_errors_total", code=code)  # noqa: E731
    assert (d(1004), d(1003), d(1002)) == (2, 1, 2), "errors by code 1004/1003/1002: %r" % (
        (d(1004), d(1003), d(1002)),)


def test_metrics_count_auth_failures(g, api):
    before = api.metrics()
    for bad in (gw.mint(gw.claims(sub="x"), b"wrong-key"), gw.mint(gw.claims(sub="x", ttl=-600), g.keys.hs_secret)):
        ws = g.connect(bad)
        gw.expect_auth_rejected(ws)
        ws.close()
    after = api.metrics()
    assert metric(after, "pavilion_auth_failures_total") - metric(before, "pavilion_auth_failures_total") == 2
    assert metric(after, "pavilion_errors_total", code=1001) - metric(before, "pavilion_errors_total", code=1001) == 2
    want = metric(before, "pavilion_connections")
    assert settle(api, lambda m: metric(m, "pavilion_connections"), want) == want, \
        "refused connections must not stay in the gauge"
