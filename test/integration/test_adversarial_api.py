"""Hostile input on the internal API: encoded traversal and NUL in path ids, a stalled
body, an endless chunked body, many requests on one keep-alive connection, a pipelined
request with a body. The API answers
4xx or closes, and a WebSocket neighbour and the API itself keep working."""
import time

import pytest

import gw
from test_adversarial_util import (API, check_neighbour, closed_within, neighbour, pipeline_a_body, read_head,
                                   settle, tcp)
from test_flow_util import FULL_PLUGINS

PLUGINS = dict(FULL_PLUGINS, example={"greeting": "hi"})


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    g = make_module_gateway([
        gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS, limits={"handshake_timeout_s": 2}),
        dict(gw.internal_vhost(keys), limits={"handshake_timeout_s": 2}),
    ])
    yield g
    settle(g)


def api_alive(api):
    r = api.get("/healthz")
    assert r.status == 200, r
    r = api.publish("zone:alive", "t", {"a": 1})
    assert r.status == 202, r


@pytest.mark.parametrize("path", [
    "/v1/users/..%2f..%2fetc%2fpasswd/presence",
    "/v1/users/../../etc/passwd/presence",
    "/v1/users/a%00b/presence",
    "/v1/users/%00/notifications",
    "/v1/users/" + "a" * 65 + "/presence",
    "/v1/users/%C3%A9/presence",
    "/v1/users/%ff%fe/presence",
    "/v1/users/a%2fb/connections",
    "/v1/channels/zone:a%00b",
    "/v1/channels/zone:..%2f..",
    "/v1/channels/" + "zone:" + "z" * 2000,
])
def test_hostile_path_ids_refused(g, api, path):
    """400/404 — or, for what libwebsockets refuses to URL-decode (%00), a closed connection."""
    nb = neighbour(g)
    method = "DELETE" if path.endswith("/connections") else "GET"
    s = tcp(g.port("internal"))
    s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % (method, path, g.keys.api_key)).encode())
    status, _, _ = read_head(s, 3)
    s.close()
    assert status in (400, 404) or (status is None and "%00" in path), \
        "%s %s: expected 400/404, got %r" % (method, path, status)
    check_neighbour(nb, "a hostile API path")
    api_alive(api)
    nb.close()


def test_publish_channel_with_escaped_nul_400(g, api):
    r = api.call("POST", "/v1/publish",
                 raw=b'{"channel":"zone:a\\u0000b","type":"t","payload":{}}')
    assert r.status == 400, r
    api_alive(api)


def test_publish_with_a_repeated_key_400(g, api):
    """Two "channel"s: json-c would keep the last; the API refuses the body instead."""
    r = api.call("POST", "/v1/publish",
                 raw=b'{"channel":"zone:a","type":"t","payload":{},"channel":"zone:b"}')
    assert r.status == 400 and "duplicate key" in r.text, r
    r = api.call("POST", "/v1/publish",
                 raw=b'{"channel":"zone:a","type":"t","payload":{"x":1,"x":2}}')
    assert r.status == 400 and "duplicate key" in r.text, r
    r = api.call("POST", "/v1/publish", raw=b'{"channel":"zone:a","type":"t","payload":{"x":1}}')
    assert r.status == 202, r  # the control: the same body without the repeat
    api_alive(api)


def test_stalled_body_does_not_block_the_api(g, api):
    """Content-Length 1000, 10 bytes sent, then nothing: other API calls and the WebSocket
    side are served meanwhile; the stalled request ends with an error or a close."""
    nb = neighbour(g)
    s = tcp(g.port("internal"))
    s.sendall(("POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"channel\"" % g.keys.api_key).encode())
    time.sleep(0.3)
    api_alive(api)
    check_neighbour(nb, "a stalled API body")
    s.close()
    nb.close()


def test_post_without_content_length_is_answered_at_once(g, api):
    """What `curl -X POST` sends: no Content-Length, so no body; lws 4.1.6 reports no body
    completion for it, and the request waited for the 10 s timeout, unanswered."""
    s = tcp(g.port("internal"))
    try:
        s.sendall(("POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\n\r\n" % g.keys.api_key).encode())
        t0 = time.monotonic()
        status, _, rest = read_head(s, 3)
        assert status == 400 and time.monotonic() - t0 < 1.0, (status, rest)
        assert closed_within(s, 3) is not None
    finally:
        s.close()


def test_chunked_body_is_refused_400_and_nothing_published(g, api):
    nb = neighbour(g, zones=["*"])
    z = "zone:chunked"
    nb.subscribe(z)
    body = b'{"channel":"zone:chunked","type":"t","payload":{}}'
    s = tcp(g.port("internal"))
    try:
        s.sendall(("POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % g.keys.api_key).encode() +
                  b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        status, _, rest = read_head(s, 3)
        s.settimeout(3)
        while b"}}" not in rest:
            chunk = s.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert status == 400 and b"Content-Length" in rest, (status, rest)
        assert closed_within(s, 3) is not None
    finally:
        s.close()
    nb.sync()
    assert not nb.take("t"), "a chunked publication was carried out"
    check_neighbour(nb, "a chunked body")


def test_endless_chunked_body_413_or_closed(g, api):
    nb = neighbour(g)
    s = tcp(g.port("internal"))
    s.sendall(("POST /v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % g.keys.api_key).encode())
    chunk = b"1000\r\n" + b" " * 0x1000 + b"\r\n"
    sent = 0
    try:
        for _ in range(64):  # 256 KiB, over the 64 KiB body limit
            s.sendall(chunk)
            sent += 1
    except OSError:
        pass
    try:
        status, _, _ = read_head(s, 3)
    except TimeoutError:
        status = "timeout"
    assert status in (400, 413, 411, None), "chunked body of %d KiB: got %r" % (sent * 4, status)
    s.close()
    check_neighbour(nb, "an endless chunked API body")
    api_alive(api)
    nb.close()


def test_many_requests_on_one_keepalive_connection(g, api):
    """500 pipelined GET /healthz on one connection: all answered (or the connection is
    closed), memory is not the client's to grow, and the API still works."""
    from test_adversarial_util import rss_kb
    rss0 = rss_kb(g)
    s = tcp(g.port("internal"))
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        s.sendall(req * 500)
    except OSError:
        pass
    got = b""
    deadline = time.monotonic() + 5
    s.settimeout(0.5)
    while time.monotonic() < deadline and got.count(b"HTTP/1.1 200") < 500:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        got += chunk
    s.close()
    assert got.count(b"HTTP/1.1 200") >= 1, got[:300]
    assert (rss_kb(g) - rss0) / 1024 < 32
    api_alive(api)


@pytest.mark.parametrize("second", ["post_healthz", "publish", "delete_with_body"])
def test_pipelined_request_with_a_body_answers_those_before_it_then_closes(g, api, second):
    """A request with a body pipelined behind another, in one write: lws 4.1.6 hands it
    its own head as its body, then repeats its completion without end (unguarded, the whole
    loop at 100 %, SIGTERM unheard). The request before it is answered (also when its answer
    waits for the store), that one is neither carried out nor answered, the connection
    closes, and everyone else is served."""
    pipeline_a_body(g, api, second)
    api_alive(api)


def test_idle_api_connection_closed(g, api):
    """An API connection that sends nothing is closed (the header timeout), not held forever."""
    s = tcp(g.port("internal"))
    took = closed_within(s, 5)
    s.close()
    assert took is not None, "an idle API connection is still open after 5 s (handshake_timeout_s 2)"
    api_alive(api)


def test_a_body_of_megabytes_is_read_whole(make_gateway, keys):
    """api.max_body_bytes may be up to 16 MiB: a 12 MiB publish, which lws hands over in
    thousands of chunks, is read into a buffer that doubles (growing it by each chunk
    copied the body so far each time: minutes on the ASan build) and answered."""
    iv = gw.internal_vhost(keys)
    iv["api"]["max_body_bytes"] = 16 << 20
    g = make_gateway([gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS), iv])
    r = API(g).publish("zone:big", "bulk", {"pad": "x" * (12 << 20)})
    assert r.json["recipients"] == 0, r
