"""CLI and configuration: --version, --check, include-dir merge, the token subcommand."""
import json
import os
import re
import socket
import time

import jwt
import pytest

import gw


def good_config(keys):
    return gw.base_config(keys, [gw.public_vhost(keys), gw.internal_vhost(keys)])


def assert_check_fails(r, path, *needles):
    assert r.returncode == 1, "--check should exit 1, got %d\nstdout:%s\nstderr:%s" % (
        r.returncode, r.stdout, r.stderr)
    assert path.name in r.stderr, "stderr should name the file %s:\n%s" % (path.name, r.stderr)
    for n in needles:
        assert n in r.stderr, "stderr should mention %r:\n%s" % (n, r.stderr)


def test_version_prints_name_and_version(binary):
    r = gw.run_binary(["--version"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert re.search(r"pavilion-gateway\S*\s+v?\d+\.\d+", out), out


def _build_option(name):
    opts = json.loads((gw.BUILD / "meson-info" / "intro-buildoptions.json").read_text())
    return next(o["value"] for o in opts if o["name"] == name)


def test_default_config_is_the_documented_one(binary):
    """README, the man page and the unit all say /etc/pavilion-gateway/gateway.json; a plain
    `meson setup` (prefix /usr/local) used to make it /usr/local/etc/pavilion-gateway/...
    Only a sysconfdir given as an absolute path moves it."""
    sysconf = _build_option("sysconfdir")
    want = (sysconf if sysconf.startswith("/") else "/etc") + "/pavilion-gateway/gateway.json"
    r = gw.run_binary(["--help"])
    assert r.returncode == 0 and "(default %s)" % want in r.stdout, r.stdout
    if not os.path.exists(want):  # else --check reads this machine's configuration
        r = gw.run_binary(["--check"])
        assert r.returncode == 1 and r.stderr.startswith(want + ": cannot read"), r.stderr


def test_check_accepts_good_config(binary, keys, tmp_path):
    p = gw.write_json(tmp_path / "gateway.json", good_config(keys))
    r = gw.check_config(p)
    assert r.returncode == 0, "good config rejected:\n%s" % r.stderr


def test_check_binds_nothing(binary, keys, tmp_path):
    """--check succeeds while the configured ports are taken by someone else."""
    c = good_config(keys)
    holders = []
    for v in c["vhosts"]:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(v["listen"].rsplit(":", 1)[1])))
        s.listen(1)
        holders.append(s)
    try:
        r = gw.check_config(gw.write_json(tmp_path / "gateway.json", c))
        assert r.returncode == 0, r.stderr
    finally:
        for s in holders:
            s.close()


def _mutations(keys, tmp_path):
    """(id, mutate(config), expected key path) for --check failures."""
    def vh(c):
        return c["vhosts"][0]
    return [
        ("unknown_top_level_key", lambda c: c.update(bogus=1), "bogus"),
        ("unknown_vhost_key", lambda c: vh(c).update(bogus=1), "vhosts[0].bogus"),
        ("wrong_type", lambda c: vh(c)["limits"].update(burst="twenty"), "vhosts[0].limits.burst"),
        ("negative_limit", lambda c: vh(c)["limits"].update(burst=-1), "vhosts[0].limits.burst"),
        ("missing_key_file", lambda c: vh(c)["auth"].update(key_file=str(tmp_path / "nope.key")),
         "vhosts[0].auth.key_file"),
        ("missing_certificate", lambda c: vh(c)["tls"].update(cert=str(tmp_path / "nope.pem")),
         "vhosts[0].tls.cert"),
        ("unknown_algorithm", lambda c: vh(c)["auth"].update(algorithms=["HS999"]),
         "vhosts[0].auth.algorithms"),
        ("max_lifetime_under_a_minute", lambda c: vh(c)["auth"].update(max_lifetime_s=59),
         "vhosts[0].auth.max_lifetime_s"),
        ("plugin_without_so", lambda c: vh(c)["plugins"].update(nosuchplugin={}),
         "vhosts[0].plugins.nosuchplugin"),
        ("plain_public_vhost_on_any_address",
         lambda c: (vh(c).pop("tls"), vh(c).update(listen="0.0.0.0:%d" % gw.free_port())), "vhosts[0]"),
        ("unknown_websocket_key", lambda c: vh(c)["websocket"].update(bogus=1), "vhosts[0].websocket.bogus"),
        ("wrong_type_top_level", lambda c: c.update(vhosts={}), "vhosts"),
    ]


@pytest.mark.parametrize("case", [m[0] for m in _mutations(None, None)])
def test_check_rejects_bad_config(binary, keys, tmp_path, case):
    _, mutate, key = next(m for m in _mutations(keys, tmp_path) if m[0] == case)
    c = gw.base_config(keys, [gw.public_vhost(keys)])
    mutate(c)
    p = gw.write_json(tmp_path / "gateway.json", c)
    assert_check_fails(gw.check_config(p), p, key)


def test_check_rejects_invalid_json(binary, tmp_path):
    p = tmp_path / "gateway.json"
    p.write_text('{"vhosts": [')
    r = gw.check_config(p)
    assert r.returncode == 1 and p.name in r.stderr, r.stderr


def test_check_accepts_plain_public_vhost_on_loopback(binary, keys, tmp_path):
    c = gw.base_config(keys, [gw.public_vhost(keys, tls=False)])
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", c))
    assert r.returncode == 0, r.stderr


def test_check_accepts_plain_public_vhost_on_any_address_when_terminated_upstream(binary, keys, tmp_path):
    v = gw.public_vhost(keys, tls=False, listen="0.0.0.0:%d" % gw.free_port())
    v["tls"] = {"terminated_upstream": True}
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", gw.base_config(keys, [v])))
    assert r.returncode == 0, r.stderr


def test_check_rejects_terminated_upstream_beside_a_certificate(binary, keys, tmp_path):
    """A proxy terminating TLS and the gateway serving it on the same vhost: one of the two
    is wrong, and the gateway served TLS, ignoring "terminated_upstream" without a word."""
    v = gw.public_vhost(keys)
    v["tls"]["terminated_upstream"] = True
    p = gw.write_json(tmp_path / "gateway.json", gw.base_config(keys, [v]))
    assert_check_fails(gw.check_config(p), p, "vhosts[0].tls.terminated_upstream: not with "
                                              "tls.cert")


def test_check_accepts_max_message_bytes_under_limits(binary, keys, tmp_path):
    v = gw.public_vhost(keys)
    del v["websocket"]["max_message_bytes"]
    v["limits"]["max_message_bytes"] = 4096
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", gw.base_config(keys, [v])))
    assert r.returncode == 0, r.stderr


def test_include_dir_vhosts_appended_and_log_replaced(make_gateway, keys):
    g = make_gateway(start=False, include="conf.d", log={"level": "info", "format": "text"})
    d = g.dir / "conf.d"
    d.mkdir()
    second = gw.public_vhost(keys, name="second", tls=False)
    gw.write_json(d / "10-extra.json", {"vhosts": [second], "log": {"level": "info", "format": "text"}})
    gw.write_json(d / "20-log.json", {"log": {"level": "info", "format": "json"}})
    r = gw.check_config(g.conf_path)
    assert r.returncode == 0, r.stderr
    g.start()
    port2 = int(second["listen"].rsplit(":", 1)[1])
    assert gw.wait_port(port2, 5), "second vhost from the drop-in is not listening"
    g.config["vhosts"].append(second)  # so g.connect/g.token know it
    with g.connect(g.token(vhost="second"), vhost="second") as ws:
        gw.probe(ws)
    time.sleep(0.2)
    lines = [l for l in g.log_text().splitlines() if l.strip()]
    assert lines, "no log lines at all"
    for l in lines:
        try:
            json.loads(l)
        except ValueError:
            pytest.fail("20-log.json set format json, but this line is not JSON: %r" % l)


def test_include_dir_bad_key_names_dropin_file(binary, keys, tmp_path):
    c = good_config(keys)
    c["include"] = "conf.d"
    p = gw.write_json(tmp_path / "gateway.json", c)
    (tmp_path / "conf.d").mkdir()
    bad = gw.write_json(tmp_path / "conf.d" / "10-extra.json",
                        {"vhosts": [gw.public_vhost(keys, name="second", bogus_key=1)]})
    r = gw.check_config(p)
    assert r.returncode == 1, r.stderr
    assert bad.name in r.stderr and "bogus_key" in r.stderr, r.stderr


def test_dropin_vhost_errors_found_at_start_name_its_index_in_its_file(binary, keys, tmp_path):
    """Errors found after loading (keys, plugin options) name the vhost as its own file
    numbers it, as loading errors do: vhosts[0] of the drop-in, not of the merged list."""
    c = good_config(keys)
    c["include"] = "conf.d"
    p = gw.write_json(tmp_path / "gateway.json", c)
    (tmp_path / "conf.d").mkdir()
    bad = gw.write_json(tmp_path / "conf.d" / "10-extra.json",
                        {"vhosts": [gw.public_vhost(keys, name="second", port=gw.free_port(),
                                                    plugins={"example": {"greeting": 5}})]})
    r = gw.check_config(p)
    assert r.returncode == 1, r.stderr
    assert "%s: vhosts[0].plugins.example" % bad in r.stderr, r.stderr


def test_include_dir_ignores_non_json_files(binary, keys, tmp_path):
    c = good_config(keys)
    c["include"] = "conf.d"
    p = gw.write_json(tmp_path / "gateway.json", c)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "README").write_text("not json")
    (tmp_path / "conf.d" / "old.json.bak").write_text("{")
    r = gw.check_config(p)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------ token subcommand
def _token_cli(g, *args):
    r = gw.run_binary(["token", "--sub", "alice", "-c", g.conf_path] + list(args))
    assert r.returncode == 0, "token command failed: %s" % r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, "token should print exactly one line: %r" % r.stdout
    return g.note_token(lines[0].strip())


def test_token_cli_mints_working_token(make_gateway, keys):
    g = make_gateway([gw.public_vhost(keys)])
    t = _token_cli(g, "--vhost", "public", "--ttl", "60", "--claims", '{"zones":["1"]}')
    assert jwt.get_unverified_header(t)["alg"] == "HS256"
    c = jwt.decode(t, keys.hs_secret, algorithms=["HS256"], options={"verify_aud": False})
    assert c["sub"] == "alice" and c["zones"] == ["1"], c
    assert abs(c["exp"] - (time.time() + 60)) < 10, c
    with g.connect(t) as ws:
        gw.probe(ws)


def test_token_cli_default_vhost(make_gateway, keys):
    g = make_gateway([gw.public_vhost(keys)])
    t = _token_cli(g)
    jwt.decode(t, keys.hs_secret, algorithms=["HS256"], options={"verify_aud": False})
    with g.connect(t) as ws:
        gw.probe(ws)


def test_token_cli_token_passes_configured_issuer_and_audience(make_gateway, keys):
    g = make_gateway([gw.public_vhost(keys, auth={"issuer": "pavilion", "audience": "gateway"})])
    t = _token_cli(g, "--vhost", "public")
    with g.connect(t) as ws:
        gw.probe(ws)


def test_missing_config_file_fails(binary, tmp_path):
    p = tmp_path / "absent.json"
    r = gw.check_config(p)
    assert r.returncode == 1 and p.name in r.stderr, r.stderr


def test_start_with_bad_config_exits_nonzero(binary, keys, tmp_path):
    c = gw.base_config(keys, [gw.public_vhost(keys, bogus=1)])
    p = gw.write_json(tmp_path / "gateway.json", c)
    r = gw.run_binary(["-c", p], timeout=10)
    assert r.returncode != 0 and "vhosts[0].bogus" in r.stderr, (r.returncode, r.stderr)


# ------------------------------------------------------------------ more --check cases
def _with(keys, tmp_path, mutate, vhosts=None):
    c = gw.base_config(keys, vhosts or [gw.public_vhost(keys)])
    mutate(c)
    return gw.write_json(tmp_path / "gateway.json", c)


def _vh(c):
    return c["vhosts"][0]


def _file(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


@pytest.mark.parametrize("case", [
    "empty_hs_key_file", "garbage_rs_key_file", "hs_secret_as_rs_key", "garbage_certificate",
    "certificate_key_mismatch", "unknown_log_level", "unknown_log_format", "unknown_store_backend",
    "duplicate_vhost_names", "same_listen_without_hostnames", "listen_without_port", "path_not_absolute",
    "algorithm_none", "empty_algorithms"])
def test_check_rejects(binary, keys, tmp_path, case):
    other = gw.make_cert(tmp_path, "other") if case == "certificate_key_mismatch" else None
    m = {
        "empty_hs_key_file": (lambda c: _vh(c)["auth"].update(key_file=_file(tmp_path, "e.key", b"")),
                              "vhosts[0].auth.key_file"),
        "garbage_rs_key_file": (lambda c: _vh(c)["auth"].update(
            algorithms=["RS256"], key_file=_file(tmp_path, "g.pem", b"-----BEGIN PUBLIC KEY-----\nnope\n")),
            "vhosts[0].auth.key_file"),
        "hs_secret_as_rs_key": (lambda c: _vh(c)["auth"].update(algorithms=["RS256"], key_file=str(keys.hs_file)),
                                "vhosts[0].auth.key_file"),
        "garbage_certificate": (lambda c: _vh(c)["tls"].update(cert=_file(tmp_path, "c.pem", b"garbage")),
                                "vhosts[0].tls"),
        "certificate_key_mismatch": (lambda c: _vh(c)["tls"].update(key=str(other[1]) if other else ""),
                                     "vhosts[0].tls"),
        "unknown_log_level": (lambda c: c["log"].update(level="chatty"), "log.level"),
        "unknown_log_format": (lambda c: c["log"].update(format="xml"), "log.format"),
        "unknown_store_backend": (lambda c: c["store"].update(backend="floppy"), "store.backend"),
        "duplicate_vhost_names": (lambda c: c["vhosts"].append(gw.public_vhost(keys, "public")), "vhosts[1]"),
        "same_listen_without_hostnames": (lambda c: c["vhosts"].append(
            gw.public_vhost(keys, "second", listen=_vh(c)["listen"])), "vhosts[1]"),
        "listen_without_port": (lambda c: _vh(c).update(listen="127.0.0.1"), "vhosts[0].listen"),
        "path_not_absolute": (lambda c: _vh(c)["websocket"].update(path="ws"), "vhosts[0].websocket.path"),
        "algorithm_none": (lambda c: _vh(c)["auth"].update(algorithms=["none"]), "vhosts[0].auth.algorithms"),
        "empty_algorithms": (lambda c: _vh(c)["auth"].update(algorithms=[]), "vhosts[0].auth.algorithms"),
    }[case]
    p = _with(keys, tmp_path, m[0])
    assert_check_fails(gw.check_config(p), p, m[1])


@pytest.mark.parametrize("value", ["yes", 1, None, ["true"]])
def test_check_rejects_allow_missing_origin_not_a_bool(binary, keys, tmp_path, value):
    p = _with(keys, tmp_path, lambda c: _vh(c)["websocket"].update(
        allowed_origins=["https://pavilion.network"], allow_missing_origin=value))
    assert_check_fails(gw.check_config(p), p,
                       "vhosts[0].websocket.allow_missing_origin: must be true or false")


def test_check_accepts_allow_missing_origin(binary, keys, tmp_path):
    p = _with(keys, tmp_path, lambda c: _vh(c)["websocket"].update(
        allowed_origins=["https://pavilion.network"], allow_missing_origin=True))
    r = gw.check_config(p)
    assert r.returncode == 0, r.stderr


def test_hs_key_file_without_trailing_newline(make_gateway, tmp_path):
    keys = gw.Keys(tmp_path / "k")
    keys.hs_file.write_bytes(keys.hs_secret)
    g = make_gateway(keys=keys)
    with g.connect(g.token()) as ws:
        gw.probe(ws)


def test_mixed_hs_and_rs_algorithms_with_pem_key(make_gateway, keys, tmp_path):
    """HS256 next to RS256 with a PEM key: either the config is refused, or HS256 tokens
    signed with the PEM (the confusion attack) are still rejected."""
    v = gw.public_vhost(keys, alg="RS256", auth={"algorithms": ["RS256", "HS256"]})
    p = gw.write_json(tmp_path / "gateway.json", gw.base_config(keys, [v]))
    if gw.check_config(p).returncode == 1:
        return
    g = make_gateway([v])
    with g.connect(g.token(alg="RS256")) as ws:
        gw.probe(ws)
    with g.connect(gw.mint(gw.claims(), keys.rsa_pub_pem, "HS256")) as ws:
        gw.expect_auth_rejected(ws)


def test_dropin_replaces_plugin_dirs(make_gateway, keys, tmp_path):
    """A drop-in's non-vhosts key replaces the main file's: a bogus plugin_dirs in the main
    file is replaced by the good one from conf.d."""
    g = make_gateway(start=False, include="conf.d", plugin_dirs=[tmp_path / "nonexistent"])
    (g.dir / "conf.d").mkdir()
    gw.write_json(g.dir / "conf.d" / "50-plugins.json", {"plugin_dirs": [str(gw.PLUGIN_DIR)]})
    g.start()
    with g.connect(g.token()) as ws:
        gw.probe(ws)


def test_token_cli_refuses_vhost_without_secret(make_gateway, keys):
    """An RS256 vhost holds only a public key: the token command cannot sign for it."""
    g = make_gateway([gw.public_vhost(keys), gw.public_vhost(keys, "rs", alg="RS256", tls=False)])
    r = gw.run_binary(["token", "--sub", "alice", "-c", g.conf_path, "--vhost", "rs"])
    assert r.returncode != 0 and not r.stdout.strip(), (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "no explanation on stderr"


@pytest.mark.parametrize("args", [["--claims", "{not json"], ["--claims", "[1]"], ["--vhost", "nosuch"],
                                  ["--ttl", "-5"], ["--ttl", "abc"],
                                  # each minted a token before: the rest of the text was ignored,
                                  # or exp overflowed into the past
                                  ["--ttl", "10x"], ["--ttl", "99999999999999999999"],
                                  ["--ttl", "9223372036854775000"],
                                  ["--claims", '{"zones": ["a"]} trailing'],
                                  ["--claims", '{"zones": ["a"], "zones": ["*"]}'],
                                  ["--claims", "{'zones': ['a']}"],
                                  ["stray-argument"]])
def test_token_cli_bad_arguments(make_gateway, keys, args):
    g = make_gateway(start=False)
    r = gw.run_binary(["token", "--sub", "alice", "-c", g.conf_path] + args)
    assert r.returncode != 0 and not r.stdout.strip(), (args, r.returncode, r.stdout, r.stderr)


def test_token_cli_bad_sub(make_gateway, keys):
    g = make_gateway(start=False)
    r = gw.run_binary(["token", "--sub", "al ice", "-c", g.conf_path])
    assert r.returncode != 0 and not r.stdout.strip(), (r.returncode, r.stdout, r.stderr)
