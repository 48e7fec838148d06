"""A vhost listens on the address it is configured with, and nowhere else."""
import socket

import pytest

import gw


def reachable(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("tls", [True, False])
def test_ipv4_listen_address_binds_only_that_address(make_gateway, keys, tls):
    g = make_gateway([gw.public_vhost(keys, tls=tls), gw.internal_vhost(keys)])
    for name in ("public", "internal"):
        port = g.port(name)
        assert reachable("127.0.0.1", port), name
        # another loopback address of this machine: refused unless the
        # socket was bound to every interface
        assert not reachable("127.0.0.2", port), "%s listens beyond 127.0.0.1" % name
        assert not reachable("::1", port), "%s listens on IPv6 too" % name
