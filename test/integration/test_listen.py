"""A vhost listens on the address it is configured with, and nowhere else."""
import base64
import fcntl
import os
import re
import socket
import ssl
import struct
import time

import pytest

import gw
import test_flow_util as fu


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


def test_an_interface_name_listens_on_its_address(make_gateway, keys):
    """"lo:P": lws binds the interface's IPv4 address."""
    port = gw.free_port()
    g = make_gateway([gw.public_vhost(keys, tls=False, listen="lo:%d" % port),
                      gw.internal_vhost(keys)])
    assert reachable("127.0.0.1", port)
    with g.connect(g.token()) as ws:
        gw.probe(ws)


def test_a_host_name_is_refused_at_check_not_at_the_bind(binary, keys, tmp_path):
    """"localhost:P" used to pass --check and then fail to bind: lws resolves no names."""
    port = gw.free_port()
    p = gw.write_json(tmp_path / "gateway.json",
                      gw.base_config(keys, [gw.public_vhost(keys, tls=False,
                                                            listen="localhost:%d" % port),
                                            gw.internal_vhost(keys)]))
    gw.refused_everywhere(p, "vhosts[0].listen: \"localhost\" is neither an IP address nor "
                             "a network interface of this host")


@pytest.mark.parametrize("first,second", [("127.0.0.1", "lo"), ("lo", "127.0.0.1")])
def test_an_interface_and_its_address_on_one_port_are_refused_at_check(
        binary, keys, tmp_path, first, second):
    """"lo:P" beside "127.0.0.1:P" used to pass --check (compared as text) and then fail at
    the second bind."""
    port = gw.free_port()
    a = gw.public_vhost(keys, "a", tls=False, listen="%s:%d" % (first, port))
    b = gw.public_vhost(keys, "b", tls=False, listen="%s:%d" % (second, port))
    a["hostnames"], b["hostnames"] = ["a.test"], ["b.test"]
    p = gw.write_json(tmp_path / "gateway.json",
                      gw.base_config(keys, [a, b, gw.internal_vhost(keys)]))
    gw.refused_everywhere(p, "vhosts[1].listen: \"%s\" and vhost \"a\"'s \"%s\" (%s) can bind "
                             "the same address on port %d; vhosts on one port share it only "
                             "with the same \"listen\"" % (second, first, p, port))


def test_one_address_written_two_ways_is_one_shared_listener(make_gateway, keys):
    """"[::1]" and "[0:0:0:0:0:0:0:1]" are one listen: lws shares a listener between vhosts
    whose addresses read the same, so the gateway keeps one spelling (it used to bind the
    second and fail)."""
    port = gw.free_port()
    a = gw.public_vhost(keys, "a", tls=False, listen="[::1]:%d" % port)
    b = gw.public_vhost(keys, "b", tls=False, listen="[0:0:0:0:0:0:0:1]:%d" % port)
    a["hostnames"], b["hostnames"] = ["a.test"], ["b.test"]
    g = make_gateway([a, b, gw.internal_vhost(keys)])
    for name in ("a", "b"):
        assert "vhost %s listening on ::1:%d" % (name, port) in g.log_text(), g.log_tail()
    assert reachable("::1", port)


def upgrade_status(port, host, path, addr="127.0.0.1"):
    """The status line a WebSocket upgrade to addr:port with this Host and path gets."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((addr, port), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host, key)).encode())
        return s.recv(4096).decode(errors="replace").split("\r\n")[0]


@pytest.mark.parametrize("how", ["reuse_port", "interface", "one_port"])
def test_an_upgrade_for_another_listeners_vhost_is_refused(make_gateway, keys, how):
    """lws picks the vhost by Host among the vhosts of a port (all "reuse_port" vhosts count
    as one port): a client of listener a asking for b's hostname and path used to be upgraded
    by vhost b, with b's auth. Now 404; each vhost still serves its own listener.  With a on
    "lo:P", the address lws bound for it is remembered after its first upgrade: later ones
    still pass, and one through b's port is still refused."""
    reuse_port = how != "one_port"
    if reuse_port:
        pa, pb = gw.free_port(), gw.free_port()
        la, lb = "127.0.0.1:%d" % pa, "127.0.0.1:%d" % pb
        if how == "interface":
            la = "lo:%d" % pa
        addr_a, addr_b = "127.0.0.1", "127.0.0.1"
    else:  # one port, two addresses
        pa = pb = gw.free_port()
        la, lb = "127.0.0.1:%d" % pa, "127.0.0.2:%d" % pb
        addr_a, addr_b = "127.0.0.1", "127.0.0.2"
    a = gw.public_vhost(keys, "a", tls=False, listen=la, reuse_port=reuse_port,
                        websocket={"path": "/a"})
    b = gw.public_vhost(keys, "b", tls=False, listen=lb, reuse_port=reuse_port,
                        websocket={"path": "/b"})
    a["hostnames"], b["hostnames"] = ["a.test"], ["b.test"]
    g = make_gateway([a, b, gw.internal_vhost(keys)])
    ta, tb = g.token(vhost="a"), g.token(vhost="b")
    assert upgrade_status(pa, "a.test", "/a?token=" + ta, addr_a).startswith("HTTP/1.1 101")
    assert upgrade_status(pb, "b.test", "/b?token=" + tb, addr_b).startswith("HTTP/1.1 101")
    assert upgrade_status(pa, "b.test", "/b?token=" + tb, addr_a) == "HTTP/1.1 404 Not Found"
    assert upgrade_status(pb, "a.test", "/a?token=" + ta, addr_b) == "HTTP/1.1 404 Not Found"
    assert upgrade_status(pa, "a.test", "/a?token=" + ta, addr_a).startswith("HTTP/1.1 101")
    assert "an upgrade came in through another listener: 404" in g.log_text(), g.log_tail()


def ipv4_of(name):
    """The IPv4 address of interface name (SIOCGIFADDR), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            r = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
        except OSError:
            return None
    return socket.inet_ntoa(r[20:24])


def other_interface():
    """An interface besides lo with an IPv4 address, as (name, address), or None."""
    for _, name in socket.if_nameindex():
        addr = ipv4_of(name) if name != "lo" else None
        if addr and not addr.startswith("127."):
            return name, addr
    return None


def test_two_interfaces_on_one_port_each_listen_on_their_own_address(make_gateway, keys):
    """"lo:P" beside "eth0:P" used to be refused at --check: two interface names on one port
    were taken to overlap without comparing their addresses.  Interfaces with no address in
    common now share the port, each vhost on its own listener."""
    other = other_interface()
    if not other:
        pytest.skip("no interface besides lo with an IPv4 address on this host")
    name, addr = other
    port = gw.free_port()
    a = gw.public_vhost(keys, "a", tls=False, listen="lo:%d" % port, websocket={"path": "/a"})
    b = gw.public_vhost(keys, "b", tls=False, listen="%s:%d" % (name, port),
                        websocket={"path": "/b"})
    b["tls"] = {"terminated_upstream": True}  # plain ws off loopback
    a["hostnames"], b["hostnames"] = ["a.test"], ["b.test"]
    g = make_gateway([a, b, gw.internal_vhost(keys)])
    ta, tb = g.token(vhost="a"), g.token(vhost="b")
    assert upgrade_status(port, "a.test", "/a?token=" + ta).startswith("HTTP/1.1 101")
    assert upgrade_status(port, "b.test", "/b?token=" + tb, addr).startswith("HTTP/1.1 101")
    assert upgrade_status(port, "b.test", "/b?token=" + tb) == "HTTP/1.1 404 Not Found"
    assert upgrade_status(port, "a.test", "/a?token=" + ta, addr) == "HTTP/1.1 404 Not Found"


def test_vhosts_on_one_port_at_two_addresses_need_hostnames(binary, keys, tmp_path):
    """lws gives a request to the vhost of its port whose name matches the Host, else to the
    port's first vhost, whatever listener it came through: without hostnames, every client of
    the second vhost used to get 404 from a config --check had passed."""
    port = gw.free_port()
    a = gw.public_vhost(keys, "a", tls=False, listen="127.0.0.1:%d" % port)
    b = gw.public_vhost(keys, "b", tls=False, listen="127.0.0.2:%d" % port)
    a["hostnames"] = ["a.test"]
    p = gw.write_json(tmp_path / "gateway.json",
                      gw.base_config(keys, [a, b, gw.internal_vhost(keys)]))
    gw.refused_everywhere(p, "vhosts[1].hostnames: vhost \"a\" (%s) listens on port %d too, "
                             "at \"127.0.0.1\": lws hands a request to the vhost of its port whose "
                             "hostname matches its Host, else to the port's first, whatever the "
                             "address; give both distinct, non-empty \"hostnames\"" % (p, port))


def reuse_port_pair(keys, hostnames):
    """A public and an internal vhost, both "reuse_port" (one process per core)."""
    pub = gw.public_vhost(keys, tls=False, reuse_port=True)
    internal = gw.internal_vhost(keys)
    internal["reuse_port"] = True
    if hostnames:  # the backend's Host is the internal listen's address
        pub["hostnames"], internal["hostnames"] = ["rt.test"], ["127.0.0.1"]
    return pub, internal


def test_reuse_port_vhosts_need_hostnames(binary, keys, tmp_path):
    """Every reuse_port vhost is one port to lws: without hostnames the internal API answered
    404 to every request (lws handed it to the public vhost, the first)."""
    p = gw.write_json(tmp_path / "gateway.json",
                      gw.base_config(keys, list(reuse_port_pair(keys, hostnames=False))))
    gw.refused_everywhere(p, "vhosts[1].hostnames: vhost \"public\" (%s) is \"reuse_port\" too, "
                             "which lws takes for one port: lws hands a request to the vhost of its "
                             "port whose hostname matches its Host, else to the port's first, "
                             "whatever the address; give both distinct, non-empty \"hostnames\""
                             % p)


def test_a_request_lws_moves_to_the_other_kind_of_vhost_is_refused_and_released(
        make_gateway, keys):
    """lws moves a request by its Host among the reuse_port vhosts, from the internal vhost to
    the public one and back.  Each kind kept its own record in the connection's opaque data,
    and the other kind's callback read it as its own: an API request moved to the public vhost
    crashed the gateway when it closed (SIGSEGV), and a public connection moved to the internal
    one left its record and request deadline behind.  Now both are refused, their records
    released by the kind that accepted them, and the gateway serves on and exits cleanly."""
    pub, internal = reuse_port_pair(keys, hostnames=True)
    pub["limits"]["handshake_timeout_s"] = 1
    g = make_gateway([pub, internal])
    pp, ip = g.port("public"), g.port("internal")
    for _ in range(3):
        # the internal listener, a Host no vhost has: lws hands it to the first, public
        assert gw.http("127.0.0.1", ip, "/healthz", {"Host": "nobody.test"})[0] == 404
        # the public listener, the internal vhost's Host
        assert upgrade_status(pp, "127.0.0.1:%d" % pp, "/ws?token=" + g.token()) in (
            "HTTP/1.1 404 Not Found", "HTTP/1.1 400 Bad Request")
    time.sleep(1.5)  # past the public vhost's request deadline
    assert gw.http("127.0.0.1", ip, "/healthz")[0] == 200  # Host: 127.0.0.1:P
    # the backend's own client (Host: 127.0.0.1:P), with its key
    assert fu.API(g).get("/v1/channels/zone:x").status == 200
    assert upgrade_status(pp, "rt.test", "/ws?token=" + g.token()).startswith("HTTP/1.1 101")
    assert "came in through another listener: 404" in g.log_text(), g.log_tail()


def test_hostnames_route_as_listed(make_gateway, keys, binary, tmp_path):
    """lws compares a Host with a port's names in order, each only up to the Host's length,
    and case by case.  "rt.test" used to go to a vhost listed before with "rt.test.example",
    "*.b.test" matched no Host at all (the port's first vhost took x.b.test), and a hostname
    written "C.Test" missed the Host "c.test".  Now names are kept in lower case, "*.x" is
    "x" to lws, and --check refuses an order lws would get wrong."""
    port = gw.free_port()

    def vhost(name, hostnames):
        v = gw.public_vhost(keys, name, tls=False, listen="127.0.0.1:%d" % port,
                            websocket={"path": "/" + name})
        v["hostnames"] = hostnames
        return v

    p = gw.write_json(tmp_path / "gateway.json",
                      gw.base_config(keys, [vhost("a", ["rt.test.example"]),
                                            vhost("b", ["rt.test"]), gw.internal_vhost(keys)]))
    gw.refused_everywhere(p, "vhosts[1].hostnames: a Host \"rt.test\" would go to vhost \"a\" "
                             "(%s), listed before: lws compares its \"rt.test.example\" with a "
                             "Host only up to the Host's length; list vhost \"b\" first" % p)
    g = make_gateway([vhost("b", ["rt.test"]), vhost("a", ["rt.test.example"]),
                      vhost("c", ["C.Test"]), vhost("w", ["*.w.test"]),
                      gw.internal_vhost(keys)])
    for host, name in (("rt.test", "b"), ("rt.test.example:%d" % port, "a"), ("c.test", "c"),
                       ("x.w.test", "w"), ("deep.x.w.test", "w")):
        tok = g.token(vhost=name)
        status = upgrade_status(port, host, "/%s?token=%s" % (name, tok))
        assert status.startswith("HTTP/1.1 101"), (host, status)
    # what no name is goes to the port's first vhost
    assert upgrade_status(port, "other.test", "/b?token=" + g.token(vhost="b")) \
        .startswith("HTTP/1.1 101")
    assert upgrade_status(port, "x.w.test", "/b?token=" + g.token(vhost="b")) \
        == "HTTP/1.1 404 Not Found"


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_wildcard_hostname_picks_its_certificate(make_gateway, keys, tmp_path, reuse_port):
    """SNI goes through the same lws lookup: "*.w.test" used to match no server name.  With
    "reuse_port" the two vhosts listen on two ports, and lws takes them for one: the name
    still picks the certificate, on either port."""
    pa = gw.free_port()
    pw = gw.free_port() if reuse_port else pa
    wcert, wkey = gw.make_cert(tmp_path, "w", cn="w.test", san="DNS:*.w.test")
    a = gw.public_vhost(keys, "a", listen="127.0.0.1:%d" % pa, websocket={"path": "/a"},
                        reuse_port=reuse_port)
    w = gw.public_vhost(keys, "w", listen="127.0.0.1:%d" % pw, websocket={"path": "/w"},
                        reuse_port=reuse_port)
    a["hostnames"], w["hostnames"] = ["a.test"], ["*.w.test"]
    w["tls"] = {"cert": str(wcert), "key": str(wkey)}
    make_gateway([a, w, gw.internal_vhost(keys)])
    want = ssl.PEM_cert_to_DER_cert(wcert.read_text())
    for port in {pa, pw}:
        assert gw.peer_cert_der(port, server_hostname="x.w.test") == want, port
        assert gw.peer_cert_der(port, server_hostname="a.test") != want, port


def test_a_host_naming_another_vhost_in_capitals_is_refused(make_gateway, keys):
    """lws compares hostnames byte for byte: "Host: B.TEST" missed vhost b and went to the
    port's first vhost, a, which upgraded it into its own namespace (same path, same keys);
    an API request for "IB.TEST" was answered by internal vhost ia.  Both are 404 now, with a
    log line naming the vhost the Host meant.  The first vhost still serves its own name in
    capitals: lws hands it there anyway."""
    port, api = gw.free_port(), gw.free_port()
    a = gw.public_vhost(keys, "a", tls=False, listen="127.0.0.1:%d" % port, namespace="na")
    b = gw.public_vhost(keys, "b", tls=False, listen="127.0.0.1:%d" % port, namespace="nb")
    a["hostnames"], b["hostnames"] = ["a.test"], ["b.test"]
    ia = dict(gw.internal_vhost(keys, "ia", port=api), namespace="na", hostnames=["ia.test"])
    ib = dict(gw.internal_vhost(keys, "ib", port=api), namespace="nb", hostnames=["ib.test"])
    g = make_gateway([a, b, ia, ib])
    tb = g.token(vhost="b")
    assert upgrade_status(port, "b.test", "/ws?token=" + tb).startswith("HTTP/1.1 101")
    assert upgrade_status(port, "B.TEST:%d" % port, "/ws?token=" + tb) == "HTTP/1.1 404 Not Found"
    assert upgrade_status(port, "A.Test", "/ws?token=" + g.token(vhost="a")) \
        .startswith("HTTP/1.1 101")
    auth = {"Authorization": "Bearer " + keys.api_key}
    for host, want in (("ib.test", 200), ("IB.TEST:%d" % api, 404), ("IA.test", 200)):
        st, body = gw.http("127.0.0.1", api, "/v1/channels/zone:x", dict(auth, Host=host))
        assert st == want, (host, st, body)
    log = g.log_text()
    assert "vhost a: an upgrade whose Host names vhost b: 404" in log, g.log_tail()
    assert "api: a request whose Host names vhost ib reached vhost ia: 404" in log, g.log_tail()



def test_hosts_naming_another_vhost_write_a_few_log_lines_not_one_each(make_gateway, keys):
    """Anyone who reaches the port can send such requests: 200 of them in well under a
    second write one line, and the next one after a second counts the rest."""
    port = gw.free_port()
    a = gw.public_vhost(keys, "a", tls=False, listen="127.0.0.1:%d" % port, namespace="na")
    b = gw.public_vhost(keys, "b", tls=False, listen="127.0.0.1:%d" % port, namespace="nb")
    a["hostnames"], b["hostnames"] = ["a.test"], ["b.test"]
    g = make_gateway([a, b])
    tb = g.token(vhost="b")
    lines = lambda: g.log_text().count("an upgrade whose Host names vhost b")  # noqa: E731
    t0 = time.monotonic()
    for _ in range(200):
        assert upgrade_status(port, "B.TEST", "/ws?token=" + tb) == "HTTP/1.1 404 Not Found"
    took = time.monotonic() - t0
    time.sleep(0.2)
    assert lines() <= int(took) + 2, "%d lines for 200 requests in %.1fs" % (lines(), took)
    time.sleep(1.1)
    assert upgrade_status(port, "B.TEST", "/ws?token=" + tb) == "HTTP/1.1 404 Not Found"
    assert gw.wait_until(lambda: re.search(r"Host names vhost b: 404; \d{2,} such", g.log_text()),
                         3), g.log_tail()

# ------------------------------------------------------------------ no interface list, no start
NO_NETLINK_C = r"""
/* Runs argv[1..] with socket(AF_NETLINK, ...) failing EAFNOSUPPORT, as
 * systemd's RestrictAddressFamilies= without AF_NETLINK makes it fail. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};

	if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return perror("seccomp"), 127;
	execv(argv[1], argv + 1);
	return perror("execv"), 127;
}
"""


def test_no_start_when_the_interfaces_cannot_be_listed(binary, keys, tmp_path):
    """lws 4.1.6 looks every listen address up with getifaddrs(), which needs a netlink
    socket; when that fails (the shipped unit's RestrictAddressFamilies lacked AF_NETLINK)
    it bound 0.0.0.0 while the log said 127.0.0.1: the loopback-only internal API was open
    to the network. The gateway now refuses to start."""
    import subprocess
    src, helper = tmp_path / "no_netlink.c", tmp_path / "no_netlink"
    src.write_text(NO_NETLINK_C)
    subprocess.run(["cc", "-o", str(helper), str(src)], check=True, capture_output=True)
    c = gw.base_config(keys, [gw.public_vhost(keys), gw.internal_vhost(keys)])
    p = gw.write_json(tmp_path / "gateway.json", c)
    port = int(c["vhosts"][1]["listen"].rsplit(":", 1)[1])
    proc = subprocess.Popen([str(helper), str(gw.BINARY), "-c", str(p)], stderr=subprocess.PIPE,
                            text=True)
    try:
        rc = proc.wait(10)
    except subprocess.TimeoutExpired:
        wide = reachable("127.0.0.2", port)
        proc.kill()
        proc.wait()
        raise AssertionError("started without the interface list (internal API on every "
                             "address: %s)" % wide)
    err = proc.stderr.read()
    assert rc != 0 and "getifaddrs" in err and "AF_NETLINK" in err, (rc, err)


def server_socket_of(pid, client):
    """The gateway's own socket for the client's connection, duplicated into this process
    (pidfd_getfd): the one whose peer is the client's local address. None until accepted."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        for name in os.listdir("/proc/%d/fd" % pid):
            try:
                if not os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(438, pidfd, int(name), 0)  # pidfd_getfd
            if fd < 0:
                continue
            s = socket.socket(fileno=fd)
            try:
                if s.type == socket.SOCK_STREAM and s.getpeername() == client.getsockname():
                    return s
            except OSError:
                pass
            s.close()
    finally:
        os.close(pidfd)
    return None


@pytest.mark.parametrize("reuse_port", [False, True])
def test_accepted_connections_do_not_wait_for_acks(make_gateway, keys, reuse_port):
    """Nagle is off on every accepted connection, as lws sets it on what its own listeners
    accept: a reuse_port vhost accepts its connections itself, and had it on."""
    g = make_gateway([gw.public_vhost(keys, tls=False, reuse_port=reuse_port),
                      gw.internal_vhost(keys)])
    c = socket.create_connection(("127.0.0.1", g.port("public")), timeout=5)
    try:
        found = []
        assert gw.wait_until(lambda: found.append(server_socket_of(g.proc.pid, c)) or found[-1],
                             5), "the gateway's socket for the connection was not found"
        s = found[-1]
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        s.close()
    finally:
        c.close()
