"""trusted_proxies: connections from those addresses (a TLS-terminating proxy, a load
balancer) are counted against the per-IP limits by the client address of X-Forwarded-For,
the rightmost one that is not a trusted proxy, and logged with it. Without the setting, or
from another address, the header is ignored: a client cannot pick its own address."""
import contextlib

import pytest

import gw
from test_adversarial_util import raw_upgrade, upgrade_status

LIMIT = 2


def proxied_gateway(make_gateway, keys, proxies):
    extra = {"trusted_proxies": proxies} if proxies else {}
    return make_gateway([gw.public_vhost(keys, tls=False,
                                         limits={"max_connections_per_ip": LIMIT,
                                                 "handshakes_per_s_per_ip": 1000},
                                         **extra)])


@contextlib.contextmanager
def holding(g, n, xff, src="127.0.0.1"):
    """n upgraded connections through src, each with this X-Forwarded-For (None: no
    header), open for the block."""
    headers = {"X-Forwarded-For": xff} if xff is not None else None
    held = []
    try:
        for _ in range(n):
            held.append(raw_upgrade(g.port(), token=g.token(), src=src, headers=headers))
        yield held
    finally:
        for ws in held:
            ws.close()


def status(g, xff, src="127.0.0.1"):
    headers = {"X-Forwarded-For": xff} if xff is not None else None
    return upgrade_status(g.port(), token=g.token(), src=src, headers=headers)


def test_clients_behind_a_trusted_proxy_are_counted_apart(make_gateway, keys):
    """Every client here comes from 127.0.0.1 (the proxy). Each forwarded address gets its
    own max_connections_per_ip; the proxy's own count stays out of it."""
    g = proxied_gateway(make_gateway, keys, ["127.0.0.0/8"])
    with contextlib.ExitStack() as stack:
        for i in range(4):  # 8 connections from the proxy, limit 2
            stack.enter_context(holding(g, LIMIT, "203.0.113.%d" % (i + 1)))
        assert status(g, "203.0.113.1") == 429
        assert status(g, "203.0.113.9") == 101
        # a chain: the proxy next to us is trusted, the one before is the client
        assert status(g, "203.0.113.1, 127.0.0.5") == 429
        # what the client wrote itself is left of its own address
        assert status(g, "198.51.100.1, 203.0.113.1") == 429


def test_logs_name_the_forwarded_client(make_gateway, keys):
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"])
    with holding(g, 1, "2001:DB8::7"):
        pass
    assert gw.wait_until(lambda: "peer=2001:db8::7" in g.log_text(), 5), g.log_tail()


@pytest.mark.parametrize("xff", [None, "unknown", "203.0.113.1:443", "", "1.2.3.4,,5.6.7.8"])
def test_without_a_usable_list_the_proxy_counts_as_the_client(make_gateway, keys, xff):
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"])
    with holding(g, LIMIT, xff):
        assert status(g, xff) == 429
        assert status(g, "203.0.113.1") == 101


def test_header_from_an_untrusted_address_is_ignored(make_gateway, keys):
    """Only 127.0.0.1 is trusted: from 127.0.0.2 the header is the client's own word."""
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"])
    with holding(g, LIMIT, "203.0.113.1", src="127.0.0.2"):
        assert status(g, "203.0.113.2", src="127.0.0.2") == 429


def test_header_without_trusted_proxies_is_ignored(make_gateway, keys):
    g = proxied_gateway(make_gateway, keys, None)
    with holding(g, LIMIT, "203.0.113.1"):
        assert status(g, "203.0.113.2") == 429


def test_a_forwarded_client_closed_frees_its_count(make_gateway, keys):
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"])
    with holding(g, LIMIT, "203.0.113.1"):
        assert status(g, "203.0.113.1") == 429
    assert gw.wait_until(lambda: status(g, "203.0.113.1") == 101, 5)


@pytest.mark.parametrize("value,reason", [
    (["10.0.0.1/8"], "the address has bits set past the prefix length"),
    (["10.0.0.0/33"], "the prefix length must be 0 to 32"),
    (["proxy.example"], "not an IPv4 or IPv6 address"),
    ([], "must not be empty"),
])
def test_bad_ranges_are_refused(binary, keys, tmp_path, value, reason):
    v = gw.public_vhost(keys, tls=False, trusted_proxies=value)
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", gw.base_config(keys, [v])))
    assert r.returncode == 1, r.stdout
    assert "gateway.json: vhosts[0].trusted_proxies" in r.stderr, r.stderr
    assert reason in r.stderr, r.stderr


def test_internal_vhost_refuses_trusted_proxies(binary, keys, tmp_path):
    v = gw.internal_vhost(keys)
    v["trusted_proxies"] = ["127.0.0.1"]
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json",
                                      gw.base_config(keys, [gw.public_vhost(keys), v])))
    assert r.returncode == 1, r.stdout
    assert "vhosts[1].trusted_proxies: not allowed on an internal vhost" in r.stderr, r.stderr
