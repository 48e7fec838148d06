"""/metrics cannot be written by clients: a client message type is counted under its name
only when a handler is registered for it (or it is the gateway's own), anything else as
"other"; every label value is escaped as the Prometheus text format says."""
import re

from test_flow_util import Client, metric, parse_metrics

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
