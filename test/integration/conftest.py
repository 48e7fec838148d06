"""Fixtures for the pavilion-gateway integration tests.

Run from the repo root:  /usr/bin/python3 -m pytest -q test/integration
Environment:
  PAVILION_BUILD         build dir (default <repo>/build): uses src/pavilion-gateway and plugins/*.so
                         (e.g. a -Dsanitize=true build: every gateway's stderr is checked for
                         sanitizer reports at teardown)
  PAVILION_NO_SNAPSHOT=1 run the build dir's files in place instead of a per-session copy
  PAVILION_FULL_INSTALL=1 the out-of-tree plugin test does a full `meson install` (slow)
  PAVILION_STORE=redis   every gateway runs on store.backend "redis" (one node each, a database
                         each) on one redis-server that this session starts

Helpers live in gw.py (keys, JWT minting, config, the Gateway process) and wsclient.py
(an RFC 6455 client over raw sockets).

A module's gateway is the fixture `g`: by default one made of test_flow_util.flow_vhosts (a
plain-ws public vhost with the flow plugins and an internal one); a module that needs other
vhosts defines its own `g`, and `api` is then the internal API of that one.
"""
import os
import shutil
import subprocess
import time

import pytest

import gw
import test_flow_util as fu

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds/installs the project (runs once per session)")
    # the gateway refuses group- or world-writable plugins and plugin directories: files the
    # tests make (plugins compiled at test time included) must not depend on the caller's umask
    os.umask(0o022)


@pytest.fixture(scope="session")
def binary(tmp_path_factory):
    """A snapshot of the built binary and plugins, so that a rebuild running at the same time
    (ninja relinking in place) cannot break the session. PAVILION_NO_SNAPSHOT=1 uses the build dir."""
    assert gw.BINARY.exists(), "gateway binary not built: %s (meson setup build && meson compile -C build)" % gw.BINARY
    if os.environ.get("PAVILION_NO_SNAPSHOT"):
        return gw.BINARY
    snap = tmp_path_factory.mktemp("snapshot")
    src_bin, src_plugins = gw.BINARY, gw.PLUGIN_DIR
    (snap / "plugins").mkdir()
    deadline = time.monotonic() + 30
    while True:
        try:
            shutil.copy2(src_bin, snap / "pavilion-gateway")
            for so in src_plugins.glob("*.so"):
                shutil.copy2(so, snap / "plugins" / so.name)
                os.chmod(snap / "plugins" / so.name, 0o755)  # whatever the build's umask was
            r = subprocess.run([str(snap / "pavilion-gateway"), "--version"], capture_output=True, timeout=10)
            if r.returncode == 0:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "could not snapshot a working %s" % src_bin
        time.sleep(1)
    gw.BINARY, gw.PLUGIN_DIR = snap / "pavilion-gateway", snap / "plugins"
    return gw.BINARY


@pytest.fixture(scope="session", autouse=True)
def store_server(tmp_path_factory):
    """PAVILION_STORE=redis: the redis-server every gateway's default store uses."""
    if gw.STORE != "redis":
        yield None
        return
    import redisfix
    r = redisfix.RedisServer(tmp_path_factory.mktemp("redis"),
                             extra=["--databases", str(gw.REDIS_DBS)]).start()
    gw.REDIS_PORT = r.port
    yield r
    r.kill()


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    """A redis-server of the module's own (test_redis_*); a module whose tests each need a
    fresh one defines its own."""
    import redisfix
    r = redisfix.RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield r
    r.kill()


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Shared, read-only key material. Tests that change keys make their own gw.Keys."""
    return gw.Keys(tmp_path_factory.mktemp("keys"))


def finish(g, expect_rc=0):
    """Stop a gateway; assert a clean exit and no sanitizer report."""
    time.sleep(0.1)  # let closes the test just sent land first (see test_sigterm_exits_promptly_*)
    rc = g.stop()
    log = g.log_text()
    for m in SANITIZER_MARKS:
        assert m not in log, "sanitizer report in gateway stderr:\n%s" % g.log_tail(80)
    if expect_rc is not None and rc is not None:
        assert rc == expect_rc, "gateway exited %r on SIGTERM (expected %r); stderr:\n%s" % (
            rc, expect_rc, g.log_tail())


class Factory:
    def __init__(self, base, keys):
        self.base, self.keys, self.made, self.n = base, keys, [], 0

    def __call__(self, vhosts=None, keys=None, start=True, **top):
        keys = keys or self.keys
        self.n += 1
        vhosts = vhosts if vhosts is not None else [gw.public_vhost(keys)]
        g = gw.Gateway(self.base / ("gw%d" % self.n), keys, gw.base_config(keys, vhosts, **top))
        self.made.append(g)
        return g.start() if start else g

    def close(self):
        errors = []
        for g in self.made:
            if g.proc is not None and g.proc.returncode is None:
                try:
                    finish(g)
                except AssertionError as e:
                    errors.append(str(e))
        assert not errors, "\n\n".join(errors)


@pytest.fixture
def make_gateway(binary, keys, tmp_path):
    """Factory: make_gateway(vhosts=[...], log={...}, keys=...) -> started gw.Gateway.
    Every gateway made is SIGTERMed at teardown and must exit 0 within 10 s."""
    f = Factory(tmp_path, keys)
    yield f
    f.close()


@pytest.fixture(scope="module")
def make_module_gateway(binary, keys, tmp_path_factory):
    f = Factory(tmp_path_factory.mktemp("gwmod"), keys)
    yield f
    f.close()


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    """The module's gateway (see the module docstring); modules override it."""
    return make_module_gateway(fu.flow_vhosts(keys))


@pytest.fixture(scope="module")
def api(g):
    """The internal API of the module's gateway `g`."""
    return fu.API(g)
