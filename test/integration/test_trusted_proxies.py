"""trusted_proxies: connections from those addresses (a TLS-terminating proxy, a load
balancer) are counted against the per-IP limits by the client address of X-Forwarded-For,
or of Forwarded (RFC 7239) with trusted_proxies_header "forwarded", the rightmost one that
is not a trusted proxy, and logged with it. The other header is not read. Without the
setting, or from another address, the headers are ignored: a client cannot pick its own
address."""
import contextlib
import os

import pytest

import gw
from test_adversarial_util import (HandshakeRefused, closed_within, raw_upgrade, tcp,
                                   upgrade_status)

LIMIT = 2
FAR = LIMIT + 16  # sockets from one address past which the next is closed at accept


def proxied_gateway(make_gateway, keys, proxies, header=None):
    extra = {"trusted_proxies": proxies} if proxies else {}
    if header:
        extra["trusted_proxies_header"] = header
    return make_gateway([gw.public_vhost(keys, tls=False,
                                         limits={"max_connections_per_ip": LIMIT,
                                                 "handshakes_per_s_per_ip": 1000},
                                         **extra)])


@contextlib.contextmanager
def holding(g, n, xff, src="127.0.0.1", headers=None):
    """n upgraded connections through src, each with this X-Forwarded-For (None: no
    header) and these other headers, open for the block."""
    headers = dict(headers or {})
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    held = []
    try:
        for _ in range(n):
            held.append(raw_upgrade(g.port(), token=g.token(), src=src, headers=headers))
        yield held
    finally:
        for ws in held:
            ws.close()


def status(g, xff, src="127.0.0.1", headers=None):
    headers = dict(headers or {})
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    return upgrade_status(g.port(), token=g.token(), src=src, headers=headers)


def fwd(value):
    return {"Forwarded": value}


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


def held_by_gateway(g, socks):
    """How many of our sockets the gateway has accepted and holds open: their other end is
    one of its file descriptors (one still in the listen queue has none, one closed at
    accept is gone)."""
    pid = g.proc.pid
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = {s.getsockname()[1] for s in socks}
    n = 0
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            local, remote, inode = line.split()[1], line.split()[2], line.split()[9]
            if int(local.split(":")[1], 16) == g.port() and \
                    int(remote.split(":")[1], 16) in ports and inode in inodes:
                n += 1
    return n


def upgrade_on(g, sock, xff):
    """The status of an upgrade sent on sock (None: closed without an answer); a 101 is
    kept open, so that its count stays."""
    try:
        raw_upgrade(g.port(), token=g.token(), headers={"X-Forwarded-For": xff}, sock=sock)
        return 101
    except HandshakeRefused as e:
        return e.status


def test_a_trusted_proxy_is_not_refused_at_accept(make_gateway, keys):
    """Past max_connections_per_ip + 16 sockets open from one address, the next are closed
    at accept, before any request.  A trusted proxy's sockets are not counted at accept
    (each is counted by the client its request names): FAR + 4 of them, open before any
    request, all reach the gateway, and each client they name is upgraded.  The same from
    an untrusted address: the limit's 101s, then 429s, and the last 4 closed at accept."""
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"])
    n = FAR + 4
    clients = ["203.0.113.%d" % (i + 1) for i in range(n)]
    socks = [tcp(g.port(), src="127.0.0.1") for _ in range(n)]
    try:
        # every one accepted and kept, before the first request
        assert gw.wait_until(lambda: held_by_gateway(g, socks) == n, 5), \
            "%d of %d held" % (held_by_gateway(g, socks), n)
        assert [upgrade_on(g, s, c) for s, c in zip(socks, clients)] == [101] * n
    finally:
        for s in socks:
            s.close()
    assert "peer=127.0.0.1: connection closed at accept" not in g.log_text()
    socks = [tcp(g.port(), src="127.0.0.2") for _ in range(n)]
    try:
        # accepted in order: the last closed, every one before it was accepted
        assert all(closed_within(s, 5) is not None for s in socks[FAR:])
        assert [upgrade_on(g, s, c) for s, c in zip(socks[:FAR], clients)] == \
            [101] * LIMIT + [429] * (FAR - LIMIT)
    finally:
        for s in socks:
            s.close()
    assert "peer=127.0.0.2: connection closed at accept (per-IP limit)" in g.log_text()


# ------------------------------------------------------------------ Forwarded (RFC 7239)
def test_forwarded_clients_behind_a_trusted_proxy_are_counted_apart(make_gateway, keys):
    g = proxied_gateway(make_gateway, keys, ["127.0.0.0/8"], "forwarded")
    with contextlib.ExitStack() as stack:
        stack.enter_context(holding(g, LIMIT, None, headers=fwd("for=203.0.113.1")))
        stack.enter_context(holding(g, LIMIT, None, headers=fwd('for="[2001:db8::1]:443"')))
        assert status(g, None, headers=fwd("for=203.0.113.1")) == 429
        assert status(g, None, headers=fwd("for=203.0.113.9")) == 101
        # the same client in other forms: a port, a quoted string, other parameters
        assert status(g, None, headers=fwd('for="203.0.113.1:5000";proto=http')) == 429
        assert status(g, None, headers=fwd('FOR="[2001:DB8::1]"')) == 429
        # a chain: the proxy next to us is trusted, the one before is the client
        assert status(g, None, headers=fwd("for=203.0.113.1, for=127.0.0.5")) == 429
        # what the client wrote itself is left of its own address
        assert status(g, None, headers=fwd("for=198.51.100.1, for=203.0.113.1")) == 429
        assert status(g, None, headers=fwd("for=203.0.113.1, for=198.51.100.1")) == 101


def test_logs_name_the_client_of_forwarded(make_gateway, keys):
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"], "forwarded")
    with holding(g, 1, None, headers=fwd('for="[2001:DB8::8]:443";proto=https')):
        pass
    assert gw.wait_until(lambda: "peer=2001:db8::8" in g.log_text(), 5), g.log_tail()


@pytest.mark.parametrize("value", [
    "", "for=unknown", "for=_hidden", 'for="_hidden:_port"', "for=203.0.113.1:443",
    "for=[2001:db8::1]", 'for="203.0.113.1', "for=203.0.113.1,,for=203.0.113.2",
    "for=203.0.113.1;for=203.0.113.2", "for=203.0.113.1, proto=https",
    "for=203.0.113.1;x=" + "a" * 1100,
], ids=["empty", "unknown", "obfuscated", "obfuscated_port", "unquoted_port",
        "unquoted_v6", "open_quote", "empty_element", "for_twice", "element_without_for",
        "too_long"])
def test_without_a_usable_forwarded_the_proxy_counts_as_the_client(make_gateway, keys, value):
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"], "forwarded")
    with holding(g, LIMIT, None, headers=fwd(value)):
        assert status(g, None, headers=fwd(value)) == 429
        assert status(g, None) == 429
        assert status(g, None, headers=fwd("for=203.0.113.1")) == 101


def test_each_setting_reads_only_its_header(make_gateway, keys):
    """A proxy passes on the header it does not write as the client wrote it: only the
    one trusted_proxies_header names is read."""
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"])
    with holding(g, LIMIT, "203.0.113.1", headers=fwd("for=198.51.100.1")):
        assert status(g, "203.0.113.1") == 429
        assert status(g, None, headers=fwd("for=198.51.100.1")) == 101
    # (each address below is counted in one block only: a connection closed in one
    # block may still be counted when the next begins)
    f = proxied_gateway(make_gateway, keys, ["127.0.0.1"], "forwarded")
    with holding(f, LIMIT, "203.0.113.1", headers=fwd("for=198.51.100.1")):
        assert status(f, None, headers=fwd("for=198.51.100.1")) == 429
        assert status(f, "203.0.113.1", headers=fwd("for=198.51.100.9")) == 101
    with holding(f, LIMIT, "203.0.113.2"):  # X-Forwarded-For alone: the proxy's
        assert status(f, None) == 429
        assert status(f, "203.0.113.3", headers=fwd("for=198.51.100.3")) == 101


def test_forwarded_from_an_untrusted_address_is_ignored(make_gateway, keys):
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"], "forwarded")
    with holding(g, LIMIT, None, src="127.0.0.2", headers=fwd("for=203.0.113.1")):
        assert status(g, None, src="127.0.0.2", headers=fwd("for=203.0.113.2")) == 429


def test_forwarded_without_trusted_proxies_is_ignored(make_gateway, keys):
    g = proxied_gateway(make_gateway, keys, None, "forwarded")
    with holding(g, LIMIT, None, headers=fwd("for=203.0.113.1")):
        assert status(g, None, headers=fwd("for=203.0.113.2")) == 429


def test_only_the_first_forwarded_line_is_read(make_gateway, keys):
    """lws 4.1.6 shows the gateway the first line of a header it does not know (README,
    Known limitations): a second Forwarded line is not read, even when it is the
    proxy's and the first the client's."""
    g = proxied_gateway(make_gateway, keys, ["127.0.0.1"], "forwarded")
    # two keys that differ in case: two header lines of one name
    two = {"Forwarded": "for=203.0.113.1", "forwarded": "for=203.0.113.2"}
    with holding(g, LIMIT, None, headers=two):
        assert status(g, None, headers=fwd("for=203.0.113.1")) == 429
        assert status(g, None, headers=fwd("for=203.0.113.2")) == 101


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


def test_trusted_proxies_header_names_one_of_two(binary, keys, tmp_path):
    v = gw.public_vhost(keys, tls=False, trusted_proxies=["127.0.0.1"],
                        trusted_proxies_header="X-Real-IP")
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", gw.base_config(keys, [v])))
    assert r.returncode == 1, r.stdout
    assert ("vhosts[0].trusted_proxies_header: must be one of x-forwarded-for, forwarded"
            in r.stderr), r.stderr


def test_internal_vhost_refuses_trusted_proxies_header(binary, keys, tmp_path):
    v = gw.internal_vhost(keys)
    v["trusted_proxies_header"] = "forwarded"
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json",
                                      gw.base_config(keys, [gw.public_vhost(keys), v])))
    assert r.returncode == 1, r.stdout
    assert ("vhosts[1].trusted_proxies_header: not allowed on an internal vhost"
            in r.stderr), r.stderr
