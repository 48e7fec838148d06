"""SIGTERM against hostile and well-behaved clients: every client gets close 1001 and the
process exits within the 10 s grace (DESIGN section 5) — promptly when the clients answer
the close, and still within 10 s when one never reads again."""
import signal
import subprocess
import threading
import time

import gw
from test_adversarial_util import Publisher, client_on, uid
from test_flow_util import FULL_PLUGINS

PLUGINS = dict(FULL_PLUGINS, example={"greeting": "hi"})


def _gateway(make_gateway, keys, **limits):
    return make_gateway([gw.public_vhost(keys, tls=False, plugins=PLUGINS, limits=limits),
                         gw.internal_vhost(keys)])


def _exit_time(g, timeout=15):
    t0 = time.monotonic()
    g.signal(signal.SIGTERM)
    try:
        g.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - t0


def test_sigterm_cooperative_clients_get_1001_and_gateway_exits_promptly(make_gateway, keys):
    """Clients that answer the close at once: all gone within milliseconds, so the process
    has no reason to wait for the grace period."""
    g = _gateway(make_gateway, keys)
    clients = [client_on(g, sub=uid("sd")) for _ in range(3)]
    for c in clients:
        c.sync()
    codes = []

    def read(c):
        try:
            codes.append(c.ws.wait_close(12).code)
        except Exception as e:  # noqa: BLE001
            codes.append(repr(e))

    ts = [threading.Thread(target=read, args=(c,), daemon=True) for c in clients]
    for t in ts:
        t.start()
    took = _exit_time(g)
    for t in ts:
        t.join(5)
    for c in clients:
        c.close()
    assert codes == [1001] * 3, codes
    assert took is not None and took < 2.0, \
        "the gateway took %s s to exit after SIGTERM although every client closed at once" % (
            "more than 15" if took is None else "%.2f" % took)


def test_sigterm_with_a_client_that_never_reads_exits_within_10s(make_gateway, keys):
    """A client that stopped reading (full socket buffers, close frame undeliverable) must not
    hold the process past the 10 s grace."""
    g = _gateway(make_gateway, keys, outbound_queue_bytes=16 * 1024 * 1024)
    chan = "zone:" + uid("sd")
    stuck = client_on(g, sub=uid("stuck"), rcvbuf=4096, zones=["*"])
    stuck.subscribe(chan)
    pub = Publisher(g)
    for i in range(200):  # ~3 MB: the kernel buffers fill, the rest waits in the gateway's queue
        pub.publish(chan, "bulk", {"i": i, "pad": "x" * 16000})
    pub.close()
    took = _exit_time(g)
    stuck.close()
    assert took is not None and took <= 10.0, \
        "the gateway took %s s to exit after SIGTERM with a client that does not read" % (
            "more than 15" if took is None else "%.2f" % took)
