"""A step of the wall clock (NTP setting the time, `date -s`, a VM resumed) moves no
connection deadline: heartbeats, the idle timeout and the handshake deadline run on the
monotonic clock; only a token's expiry is wall-clock time. The gateway runs under
libfaketime with the monotonic clock left alone, and the test steps its wall clock."""
import os
import socket
import ssl
import time

import pytest

import gw
from wsclient import Closed

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
STEP_S = 2 * 3600
HS_TIMEOUT = 4


@pytest.fixture
def stepped(make_gateway, keys, tmp_path):
    """A gateway (heartbeat 1 s, idle timeout 30 s, handshake timeout 4 s) whose wall clock the test can step;
    returns (gateway, step(offset))."""
    assert os.path.exists(FAKETIME), "libfaketime is not installed (scripts/deps.sh)"
    stamp = tmp_path / "faketime"
    stamp.write_text("+0\n")
    g = make_gateway([gw.public_vhost(keys, websocket={"heartbeat_interval_s": 1,
                                                       "idle_timeout_s": 30},
                                      limits={"handshake_timeout_s": HS_TIMEOUT})],
                     start=False)
    asan = os.environ.get("ASAN_OPTIONS", "")
    g.prefix = ["env", "LD_PRELOAD=" + FAKETIME, "FAKETIME_TIMESTAMP_FILE=%s" % stamp,
                "FAKETIME_CACHE_DURATION=1", "FAKETIME_DONT_FAKE_MONOTONIC=1",
                "ASAN_OPTIONS=%s%sverify_asan_link_order=0" % (asan, ":" if asan else "")]
    g.start()

    def step(offset):
        stamp.write_text("%s\n" % offset)
        time.sleep(1.2)  # libfaketime reads the file again within a second

    return g, step


def heartbeats_for(ws, seconds):
    """Heartbeats received over the next `seconds` (answered, so the client is active);
    fails on any close."""
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            m = ws.recv_json(timeout=max(0.01, end - time.monotonic()), skip=())
        except TimeoutError:
            break
        if m["type"] == "heartbeat":
            n += 1
            ws.send_json({"type": "heartbeat_ack"})
    return n


@pytest.mark.parametrize("offset", ["+%d" % STEP_S, "-%d" % STEP_S], ids=["forward", "back"])
def test_wall_clock_step_keeps_heartbeats_and_connections(stepped, offset):
    """Forward two hours: every connection was closed 4000 (idle for two hours by the wall
    clock). Back two hours: the wheel waited for the wall clock to come back, and no
    heartbeat went out for the two hours."""
    g, step = stepped
    ws = g.connect(g.token(ttl=4 * 3600))
    try:
        assert heartbeats_for(ws, 2.5) >= 1
        step(offset)
        n = heartbeats_for(ws, 5)
        assert n >= 3, "%d heartbeats in 5 s after a %s s step of the wall clock" % (n, offset)
        gw.probe(ws)
    except Closed as c:
        pytest.fail("closed after a %s s step of the wall clock: %r\n%s"
                    % (offset, c, g.log_tail()))
    finally:
        ws.close()


def test_handshake_deadline_holds_after_the_wall_clock_steps_back(stepped):
    """handshake_timeout_s 4, the wall clock two hours back: 2 s idle after connecting,
    the TLS handshake, then a header byte every 0.5 s (as test_hardening_pool's trickle,
    where lws' own timers alone would give each phase 4 s). The deadline from accept still
    cuts it; with the wheel on the wall clock it was two hours away."""
    g, step = stepped
    step("-%d" % STEP_S)
    t0 = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", g.port()), 5)
    time.sleep(2)
    closed_at = None
    try:
        s = ssl._create_unverified_context().wrap_socket(raw, server_hostname="localhost")
        s.settimeout(0.5)
        s.sendall(b"GET /ws HTTP/1.1\r\n")
        for b in b"X-Slow: " + b"a" * 40:
            s.sendall(bytes([b]))
            try:
                if s.recv(1) == b"":
                    break
            except socket.timeout:
                pass
    except (OSError, ssl.SSLError):
        pass
    closed_at = time.monotonic() - t0
    raw.close()
    assert closed_at <= HS_TIMEOUT + 1, \
        "a trickling request was open %.1f s after connecting (handshake_timeout_s %d)" % (
            closed_at, HS_TIMEOUT)
