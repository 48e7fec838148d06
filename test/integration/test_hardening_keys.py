"""API key files: a line longer than the longest key the API accepts (256 characters) is
refused at start, at --check and at SIGHUP (the old keys stay), instead of being read as
two keys whose tail alone would be accepted.  Files of secrets that every user may read
are warned of."""
import os
import signal
import time

import gw
from test_flow_util import API

KEY_MAX = 256


def config(keys):
    return gw.base_config(keys, [gw.public_vhost(keys, tls=False), gw.internal_vhost(keys)])


def get_channel(g, key):
    """Status of an authenticated GET on the internal API with this key."""
    return API(g).get("/v1/channels/zone:k", key=key).status


def long_key_file(keys, head="h", tail_len=77):
    """1100 characters: read 1023 at a time before, the last 77 became a key of their own."""
    long_key = head * (1100 - tail_len) + "T" * tail_len
    keys.api_keys_file.write_text("# keys\n%s\n" % long_key)
    return long_key, long_key[1023:]


def test_long_key_line_refused_by_check(binary, tmp_path):
    keys = gw.Keys(tmp_path / "k")
    long_key_file(keys)
    p = gw.write_json(tmp_path / "gateway.json", config(keys))
    r = gw.check_config(p)
    assert r.returncode == 1, "--check accepted a 1100-character key:\n%s%s" % (r.stdout, r.stderr)
    assert "gateway.json: vhosts[1].api.keys_file: line 2: a key longer than 256 characters" \
        in r.stderr, r.stderr


def test_long_key_line_refused_at_start(binary, tmp_path):
    keys = gw.Keys(tmp_path / "k")
    long_key_file(keys)
    p = gw.write_json(tmp_path / "gateway.json", config(keys))
    err = gw.start_fails(p)
    assert "vhosts[1].api.keys_file: line 2: a key longer than 256 characters" in err, err


def test_key_of_the_longest_length_works_and_one_more_is_refused(binary, make_gateway, tmp_path):
    """The Authorization header copy takes a key of the full length."""
    keys = gw.Keys(tmp_path / "k")
    longest = "L" * KEY_MAX
    keys.api_keys_file.write_text(longest + "\n")
    g = make_gateway(config(keys)["vhosts"], keys=keys)
    assert get_channel(g, longest) == 200
    assert get_channel(g, longest[:-1]) == 401
    assert get_channel(g, longest + "L") == 401
    keys2 = gw.Keys(tmp_path / "k2")
    keys2.api_keys_file.write_text("L" * (KEY_MAX + 1) + "\n")
    r = gw.check_config(gw.write_json(tmp_path / "g2.json", config(keys2)))
    assert r.returncode == 1 and "line 1: a key longer than 256" in r.stderr, r.stderr


def test_long_key_line_refused_on_sighup_old_keys_stay(make_gateway, tmp_path):
    keys = gw.Keys(tmp_path / "k")
    g = make_gateway(config(keys)["vhosts"], keys=keys)
    old = keys.api_key
    assert get_channel(g, old) == 200
    new_short = "new-" + "n" * 20
    long_key = "h" * 1023 + "tail-of-a-long-key"
    keys.api_keys_file.write_text("%s\n%s\n" % (new_short, long_key))
    g.signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "API keys not reloaded" not in g.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = [l for l in g.log_text().splitlines() if "API keys not reloaded" in l]
    assert line, "no error line after SIGHUP:\n%s" % g.log_tail()
    assert "line 2: a key longer than 256 characters" in line[0] and str(keys.api_keys_file) in line[0], line
    assert long_key not in g.log_text(), "a key reached the log"
    assert get_channel(g, old) == 200, "the old key must stay"
    for k in (new_short, long_key[1023:], long_key[:1023]):
        assert get_channel(g, k) == 401, k


def test_hs_secret_shorter_than_its_hash_is_warned_of(binary, tmp_path):
    """RFC 7518 (3.2) asks an HS secret to be at least as long as the hash output. A
    shorter one still loads (deployments have them), but --check says so, naming the
    vhost and the length it wants; a secret long enough draws no such line."""
    keys = gw.Keys(tmp_path / "k")
    keys.hs_file.write_bytes(b"short\n")
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", config(keys)))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "vhosts[0].auth.key_file: the secret is 5 bytes, shorter than the 32" in out, out
    ok = gw.Keys(tmp_path / "k2")  # 40 bytes, HS256: 32 asked
    r = gw.check_config(gw.write_json(tmp_path / "g2.json", config(ok)))
    assert r.returncode == 0 and "shorter than" not in r.stdout + r.stderr, r


def test_secret_files_readable_by_every_user_are_warned_of(binary, tmp_path):
    """A TLS private key, an HS secret or an API keys file with the "others" read bit:
    --check and the start say so, naming the file, the key and the mode. 0640 (the
    packages' root:pavilion) draws no line, nor does a world-readable RS public key."""
    keys = gw.Keys(tmp_path / "k")
    os.chmod(keys.api_keys_file, 0o644)
    os.chmod(keys.hs_file, 0o604)
    os.chmod(keys.cert_key, 0o640)
    cfg = gw.base_config(keys, [gw.public_vhost(keys), gw.internal_vhost(keys)])
    r = gw.check_config(gw.write_json(tmp_path / "gateway.json", cfg))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert ("gateway.json: vhosts[1].api.keys_file: %s holds a secret and is readable by every "
            "user of the machine (mode 0644)" % keys.api_keys_file) in out, out
    assert "vhosts[0].auth.key_file: %s holds a secret" % keys.hs_file in out, out
    assert "(mode 0604)" in out, out
    assert "tls.key" not in out, out
    rs = gw.base_config(keys, [gw.public_vhost(keys, alg="RS256")])
    os.chmod(keys.rsa_pub_file, 0o644)
    r = gw.check_config(gw.write_json(tmp_path / "rs.json", rs))
    assert r.returncode == 0 and "holds a secret" not in r.stdout + r.stderr, r
