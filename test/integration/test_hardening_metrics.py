"""/metrics cannot be written by clients: a client message type is counted under its name
only when a handler is registered for it (or it is the gateway's own), anything else as
"other"; every label value is escaped as the Prometheus text format says."""
import re

import test_flow_util as fu
from test_flow_util import Client, metric, parse_metrics, uid

INJECT = 'x"} 1\nfake_admin_up 1\n#'
# a sample line of the text exposition format: name, optional {labels}, value
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? '
                    r'[-+0-9.eE]+|[-+]?Inf|NaN$')


def assert_well_formed(text):
    for line in text.split("\n"):
        if line and not line.startswith("#"):
            assert SAMPLE.match(line), "not an exposition sample line: %r" % line


def type_labels(text, name):
    return set(re.findall(r'^%s\{type="((?:[^"\\]|\\.)*)"\}' % name, text, re.M))


def test_client_type_cannot_add_lines_to_metrics(g, api):
    with Client(g) as c:
        c.err(INJECT, {}, 1002)
        c.sync()
    text = api.metrics_text()
    assert not any(l.startswith("fake_admin_up") for l in text.split("\n")), \
        "a client added a line to /metrics:\n%s" % text
    assert_well_formed(text)


def test_unregistered_client_types_count_as_other(g, api):
    """60 junk types: none becomes a label (before, they took the 48 slots)."""
    before_text = api.metrics_text()
    before = parse_metrics(before_text)
    with Client(g) as c:
        for i in range(60):
            c.send("junk-%d" % i, {})
        c.ok("subscribe", {"channel": "user"})
        c.sync()
    text = api.metrics_text()
    after = parse_metrics(text)
    labels = type_labels(text, "pavilion_messages_in_total")
    assert not [t for t in labels if t.startswith("junk")], labels
    assert labels - type_labels(before_text, "pavilion_messages_in_total") <= {"subscribe", "heartbeat_ack"}
    d = lambda t: metric(after, "pavilion_messages_in_total", type=t) - \
        metric(before, "pavilion_messages_in_total", type=t)  # noqa: E731
    assert d("other") == 60, d("other")
    assert d("subscribe") == 1 and d("heartbeat_ack") == 1, (d("subscribe"), d("heartbeat_ack"))
    assert_well_formed(text)


def test_label_values_escaped(g, api):
    """Outgoing types come from the backend too: quote, backslash and newline are escaped."""
    with Client(g, zones=["*"]) as c:
        c.subscribe("zone:esc")
        c.sync()
        api.publish("zone:esc", 'q"b\\s\nn', {"a": 1})
        c.wait_for('q"b\\s\nn')
    text = api.metrics_text()
    assert 'pavilion_messages_out_total{type="q\\"b\\\\s\\nn"} 1' in text.split("\n"), text
    assert_well_formed(text)


def test_published_types_do_not_push_client_types_into_other(make_gateway, keys):
    """The backend may publish any number of types: they fill the outgoing labels only, and a
    client type the gateway handles is still counted by its name (before, both directions
    shared 48 labels, and after 48 published types `subscribe` counted as "other")."""
    g = make_gateway(fu.flow_vhosts(keys))
    api = fu.API(g)
    with Client(g, zones=["*"]) as reader:
        reader.subscribe("zone:types")
        for i in range(50):
            api.publish("zone:types", "backend-type-%d" % i, {})
            api.publish("zone:nobody-listens", "unheard-%d" % i, {})
        reader.wait_for("backend-type-49")
    with Client(g, zones=["*"]) as c:
        c.subscribe("zone:" + uid("z"))
        c.ok("presence", {"status": "busy"})
        c.sync()
    text = api.metrics_text()
    m = parse_metrics(text)
    assert_well_formed(text)
    assert metric(m, "pavilion_messages_in_total", type="subscribe") == 2, text
    assert metric(m, "pavilion_messages_in_total", type="presence") == 1, text
    assert metric(m, "pavilion_messages_in_total", type="other") == 0, text
    assert not type_labels(text, "pavilion_messages_in_total") & {"backend-type-0", "other"}
    # a publication that reached nobody takes no label
    assert not [t for t in type_labels(text, "pavilion_messages_out_total") if t.startswith("unheard")]
