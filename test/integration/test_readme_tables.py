"""The README's tables are the binary's: every documented configuration key, limit, plugin
option, internal API call, metric, close code and API error code is checked against
`pavilion-gateway --check`, a running gateway or the source, and every key, route, metric
and code the source has is looked for in the README.  A row added to one side and not the
other fails here.

PAVILION_README=FILE reads another copy of the README (to see these tests fail on one with
a row removed).
"""
import copy
import json
import os
import re
from pathlib import Path

import pytest

import gw
import test_flow_util as fu

README = Path(os.environ.get("PAVILION_README", gw.REPO / "README.md"))
PROTOCOL = gw.REPO / "docs" / "protocol.md"
SRC = gw.REPO / "src"
LWS_CLOSE_H = Path("/usr/include/libwebsockets/lws-ws-close.h")

# a row of the Limits table that names no configuration key
LIMIT_ROWS_NOT_KEYS = {"id"}


# ------------------------------------------------------------------ reading the tables
def split_row(line):
    cells = re.split(r"(?<!\\)\|", line.strip())
    return [c.strip().replace("\\|", "|") for c in cells[1:-1]]


def tables(text):
    """Every Markdown table of text: [(header cells, [row cells])]."""
    out, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if (lines[i].startswith("|") and i + 1 < len(lines)
                and re.fullmatch(r"\|(\s*-+\s*\|)+", lines[i + 1].strip())):
            header, rows = split_row(lines[i]), []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(split_row(lines[i]))
                i += 1
            out.append((header, rows))
        else:
            i += 1
    return out


def tables_with(path, header):
    return [rows for h, rows in tables(path.read_text()) if h == header]


def the_table(path, header, least):
    found = tables_with(path, header)
    assert len(found) == 1, "%s: %d tables with header %r" % (path.name, len(found), header)
    assert len(found[0]) >= least, "%s: table %r has only %d rows" % (path.name, header,
                                                                     len(found[0]))
    return found[0]


def ticked(cell):
    return re.findall(r"`([^`]+)`", cell)


def config_rows():
    """(key, type cell, default cell, table) for each key of the two configuration tables
    (`limits.*` and `vhosts[]` stand for other tables)."""
    found = tables_with(README, ["key", "type", "default", "meaning"])
    assert len(found) == 2, "expected the top-level and the per-vhost table, found %d" % len(found)
    out = []
    for table, rows in zip(("top", "vhost"), found):
        for cells in rows:
            for key in ticked(cells[0]):
                if key not in ("limits.*", "vhosts[]"):
                    out.append((key, cells[1], cells[2], table))
    return out


def limit_rows():
    """(key, default cell) of each row of the Limits table that is a `limits` key."""
    out = []
    for cells in the_table(README, ["limit", "default", "what a client sees when it hits it"], 15):
        names = re.split(r"\s*/\s*", cells[0])
        if not all(re.fullmatch(r"`\w+`", n) for n in names):
            continue
        keys = [n.strip("`") for n in names]
        if set(keys) <= LIMIT_ROWS_NOT_KEYS:
            continue
        defaults = re.split(r"\s*/\s*", cells[1])
        for i, k in enumerate(keys):
            out.append((k, defaults[min(i, len(defaults) - 1)]))
    return out


def leading_int(cell):
    m = re.match(r"(\d[\d,]*)", cell)
    return int(m.group(1).replace(",", "")) if m else None


# ------------------------------------------------------------------ reading the source
def c_defines(path):
    """#define NAME <arithmetic> of a header, evaluated."""
    out = {}
    text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
    for name, expr in re.findall(r"^#define (\w+) (.+)", text, re.M):
        expr = expr.strip()
        if re.fullmatch(r"[\d\s()*+LlUu-]+", expr):
            out[name] = eval(re.sub(r"(\d)[LlUu]+", r"\1", expr))  # digits and operators only
        elif re.fullmatch(r'"[^"]*"', expr):
            out[name] = expr.strip('"')
    return out


def schema_keys():
    """Every key config_schema.c's tables accept, dotted from the top ("vhosts" opens the
    vhost table, as the README's per-vhost table does)."""
    src = (SRC / "config_schema.c").read_text()
    fields = {}
    for name, body in re.findall(r"pav_cfg_field (\w+)\[\] = \{(.*?)\n\};", src, re.S):
        fields[name] = re.findall(r'PAV_CFG_\w+\(\s*"(\w+)"(?:,\s*(\w+_sec))?', body)
    kind = re.search(r"#define HISTORY_KIND\(name, k\)(.*?)\n\n", src, re.S).group(1)
    kind_keys = [(k, None) for k in re.findall(r'PAV_CFG_\w+\("(\w+)"', kind)]
    for name in re.findall(r"^HISTORY_KIND\((\w+),", src, re.M):
        fields[name + "_fields"] = kind_keys
    secs = dict(re.findall(r"pav_cfg_section (\w+_sec)\s*=\s*\{\s*\.fields = (\w+)", src))
    for name in re.findall(r"^HISTORY_KIND\((\w+),", src, re.M):
        secs[name + "_sec"] = name + "_fields"

    def walk(table, prefix, out):
        for key, sec in fields[table]:
            if sec:
                walk(secs[sec], prefix + key + ".", out)
            else:
                out.append(prefix + key)
        return out

    top = walk("top_fields", "", [])
    vhost = walk("vhost_fields", "", [])
    assert "vhosts" in top and len(top) >= 20 and len(vhost) >= 40, (top, vhost)
    return top, vhost


def close_codes_in_source():
    """The close codes the gateway sends: the numbers and lws names it passes, and 1007,
    which lws sends for it once told to check UTF-8."""
    names = dict(re.findall(r"(LWS_CLOSE_STATUS_\w+)\s*=\s*(\d+)", LWS_CLOSE_H.read_text()))
    codes = set()
    for f in SRC.glob("*.c"):
        text = f.read_text()
        codes |= {int(n) for n in re.findall(r"pav_conn_close\([^,]+,\s*(\d{4})", text)}
        codes |= {int(names[n]) for n in re.findall(r"\b(LWS_CLOSE_STATUS_\w+)", text)
                  if n in names}
        if "LWS_SERVER_OPTION_VALIDATE_UTF8" in text:
            codes.add(int(names["LWS_CLOSE_STATUS_INVALID_PAYLOAD"]))
    return codes


# ------------------------------------------------------------------ configurations
def minimal_public(keys):
    return {"name": "public", "listen": "127.0.0.1:%d" % gw.free_port(),
            "auth": {"algorithms": ["HS256"], "key_file": str(keys.hs_file)},
            "plugins": {"example": {}}}


def minimal_config(keys):
    return {"plugin_dirs": [str(gw.PLUGIN_DIR)], "log": {"level": "warn", "format": "text"},
            "vhosts": [minimal_public(keys), gw.internal_vhost(keys)]}


def redis_store(c, url="redis://127.0.0.1:6379/0"):
    c["store"] = {"backend": "redis", "url": url}


def drop_url(c):
    c["store"].pop("url")


def sentinel_store(c):
    c["store"] = {"backend": "redis",
                  "sentinel": {"addresses": ["127.0.0.1:26379"], "master": "pavilion"}}


def password_file(tmp):
    pw = tmp / "redis.pw"
    pw.write_text("secret\n")
    os.chmod(pw, 0o600)
    return pw


# what a key needs beside it to be valid at all
CONTEXT = {
    "store.url": [redis_store],
    "store.shards": [redis_store, drop_url],
    "store.sentinel": [redis_store, drop_url],
    "store.password_file": [redis_store],
    "store.node_ttl_s": [redis_store],
    "store.command_timeout_ms": [redis_store],
    "store.tls_ca_file": [lambda c: redis_store(c, "rediss://127.0.0.1:6380/0")],
    "store.tls_cert_file": [lambda c: redis_store(c, "rediss://127.0.0.1:6380/0")],
    "store.tls_key_file": [lambda c: redis_store(c, "rediss://127.0.0.1:6380/0")],
    "store.sentinel.tls": [sentinel_store],
    "store.sentinel.sentinel_password_file": [sentinel_store],
    "store.sentinel.sentinel_user": [sentinel_store],
    "store.sentinel.master_user": [sentinel_store],
}
VALUE_CONTEXT = {("store.backend", "redis"): [redis_store]}
# keys set together (the README gives them one row: "both or neither")
TOGETHER = {"store.tls_cert_file": "store.tls_key_file", "store.tls_key_file": "store.tls_cert_file",
            "tls.cert": "tls.key", "tls.key": "tls.cert",
            # a user needs the password it logs in with
            "store.sentinel.master_user": "store.password_file",
            "store.sentinel.sentinel_user": "store.sentinel.sentinel_password_file"}


def examples(keys, tmp):
    """A valid value of each key whose documented type is no range, enum or bool."""
    (tmp / "conf.d").mkdir(exist_ok=True)
    pw = password_file(tmp)
    return {
        "include": "conf.d",
        "plugin_dirs": [str(gw.PLUGIN_DIR)],
        "store.url": "redis://127.0.0.1:6379/0",
        "store.shards": ["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6380/0"],
        "store.sentinel": {"addresses": ["127.0.0.1:26379"], "master": "pavilion", "db": 0},
        "store.password_file": str(pw),
        "store.sentinel.master_user": "pavilion-gw",
        "store.sentinel.sentinel_user": "watcher",
        "store.sentinel.sentinel_password_file": str(pw),
        "store.tls_ca_file": str(keys.cert),
        "store.tls_cert_file": str(keys.cert),
        "store.tls_key_file": str(keys.cert_key),
        "name": "edge-1",
        "listen": "127.0.0.1:%d" % gw.free_port(),
        "hostnames": ["rt.example"],
        "namespace": "tenant_a",
        "tls.cert": str(keys.cert),
        "tls.key": str(keys.cert_key),
        "websocket.path": "/socket",
        "websocket.allowed_origins": ["https://pavilion.example"],
        "auth.algorithms": ["HS256", "HS512"],
        "auth.key_file": str(keys.hs_file),
        "auth.issuer": "pavilion",
        "auth.audience": "gateway",
        "trusted_proxies": ["10.0.0.0/8", "192.0.2.7"],
        "plugins": {"example": {}},
        "api.keys_file": str(keys.api_keys_file),
    }


def values_of_type(type_cell):
    """(accepted values, refused values) that the documented type itself gives, or None."""
    t = type_cell.strip()
    if t == "bool":
        return [True, False], ["yes"]
    m = re.fullmatch(r"(\d+)–(\d+)", t)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        return [lo, hi], [lo - 1, hi + 1]
    m = re.fullmatch(r"≥ (\d+)", t)
    if m:
        return [int(m.group(1))], [int(m.group(1)) - 1]
    words = re.split(r"\s*[|,]\s*", t)
    if len(words) > 1 and all(re.fullmatch(r"`[a-z-]+`", w) for w in words):
        return [w.strip("`") for w in words], ["bogus"]
    fields = re.findall(r'"(\w+)": (\d+)–(\d+)', t)
    if fields and t.startswith("`{"):
        lo = {k: int(a) for k, a, _ in fields}
        hi = {k: int(b) for k, _, b in fields}
        refused = [dict(hi, **{k: int(b) + 1}) for k, _, b in fields]
        return [lo, hi], refused
    return None


def target(c, key, table):
    """(the object that holds key's last part, that part)."""
    if table == "top":
        obj = c
    elif key.startswith("api."):
        obj = c["vhosts"][1]
    else:
        obj = c["vhosts"][0]
    *parents, leaf = key.split(".")
    for p in parents:
        obj = obj.setdefault(p, {})
    return obj, leaf


def config_with(keys, key, table, value, ex):
    c = minimal_config(keys)
    for fn in CONTEXT.get(key, []) + VALUE_CONTEXT.get((key, value if isinstance(value, str) else None), []):
        fn(c)
    obj, leaf = target(c, key, table)
    obj[leaf] = value
    if key in TOGETHER:
        other = TOGETHER[key]
        o, l2 = target(c, other, table)
        o[l2] = ex[other]
    return c


def check(tmp, c):
    return gw.check_config(gw.write_json(tmp / "gateway.json", c))


CONFIG_KEYS = [(k, table) for k, _, _, table in config_rows()]


def test_the_configuration_tables_have_their_rows():
    rows = config_rows()
    assert len([r for r in rows if r[3] == "top"]) >= 15, rows
    assert len([r for r in rows if r[3] == "vhost"]) >= 25, rows
    assert len(limit_rows()) >= 11, limit_rows()


@pytest.mark.parametrize("key", [k for k, _ in CONFIG_KEYS])
def test_a_documented_key_is_accepted_with_its_documented_values_and_an_unknown_one_beside_it_is_not(
        binary, keys, tmp_path, key):
    row = next(r for r in config_rows() if r[0] == key)
    _, type_cell, _, table = row
    ex = examples(keys, tmp_path)
    typed = values_of_type(type_cell)
    if typed:
        good, bad = typed
    else:
        assert key in ex, "README key %s (type %r): give the test a valid value of it" % (
            key, type_cell)
        good, bad = [ex[key]], []
    for v in good:
        r = check(tmp_path, config_with(keys, key, table, v, ex))
        assert r.returncode == 0, "README says %s: %r is valid; --check says:\n%s" % (
            key, v, r.stderr)
    for v in bad:
        r = check(tmp_path, config_with(keys, key, table, v, ex))
        assert r.returncode == 1 and key.rsplit(".", 1)[-1] in r.stderr, (
            "README's %s is %r, but --check took %r:\n%s" % (key, type_cell, v, r.stderr))
    c = config_with(keys, key, table, good[0], ex)
    obj, _ = target(c, key, table)
    obj["no_such_key"] = 1
    r = check(tmp_path, c)
    assert r.returncode == 1 and "no_such_key" in r.stderr, (key, r.stderr)


@pytest.mark.parametrize("key", [k for k, _ in limit_rows()])
def test_a_documented_limit_takes_its_documented_default_and_an_unknown_limit_is_refused(
        binary, keys, tmp_path, key):
    default = leading_int(dict(limit_rows())[key])
    assert default is not None, key
    c = minimal_config(keys)
    c["vhosts"][0]["limits"] = {key: default}
    r = check(tmp_path, c)
    assert r.returncode == 0, "limits.%s: %d (its README default) refused:\n%s" % (key, default,
                                                                                  r.stderr)
    c["vhosts"][0]["limits"]["no_such_limit"] = 1
    r = check(tmp_path, c)
    assert r.returncode == 1 and "limits.no_such_limit" in r.stderr, r.stderr


def documented(key, rows):
    """Whether the README documents key: as a row, or as a part its row's type names
    (store.sentinel's "addresses", history.zone's "size")."""
    if key in rows:
        return True
    parent, _, leaf = key.rpartition(".")
    return parent in rows and '"%s"' % leaf in rows[parent]


def test_every_key_of_the_schema_is_in_the_readme():
    top, vhost = schema_keys()
    rows = {t: {k: ty for k, ty, _, table in config_rows() if table == t} for t in ("top", "vhost")}
    limits = {k for k, _ in limit_rows()}
    missing = [k for k in top if k != "vhosts" and not documented(k, rows["top"])]
    for k in vhost:
        if k.startswith("limits."):
            if k[len("limits."):] not in limits:
                missing.append("vhosts[].limits table: " + k)
        elif not documented(k, rows["vhost"]):
            missing.append("vhosts[]." + k)
    assert not missing, "keys the configuration takes that the README does not list: %s" % missing


def test_every_key_of_the_readme_is_in_the_schema():
    top, vhost = schema_keys()
    known = set(top) | set(vhost)
    readme = [k for k, _, _, _ in config_rows()] + ["limits." + k for k, _ in limit_rows()]
    stray = [k for k in readme if k not in known and not any(s.startswith(k + ".") for s in known)]
    assert not stray, "README keys the configuration refuses: %s" % stray


# a default named apart from its key
DEFAULT_NAMES = {"api.max_body_bytes": "PAV_DEF_API_MAX_BODY", "websocket.path": "PAV_DEF_WS_PATH"}


def test_documented_defaults_are_the_ones_in_pav_limits_h():
    defs = c_defines(SRC / "pav_limits.h")
    rows = [(k, d) for k, _, d, _ in config_rows()] + [(k, d) for k, d in limit_rows()]
    compared = []
    for key, cell in rows:
        name = DEFAULT_NAMES.get(key, "PAV_DEF_" + key.rsplit(".", 1)[-1].upper())
        n = leading_int(cell)
        if n is None and key not in DEFAULT_NAMES:
            continue
        assert name in defs, "README gives %s a default %r; pav_limits.h has no %s" % (key, cell,
                                                                                       name)
        want = n if n is not None else ticked(cell)[0]
        assert defs[name] == want, "README: %s defaults to %r, pav_limits.h: %s = %r" % (
            key, cell, name, defs[name])
        compared.append(key)
    assert len(compared) >= 20, compared


# ------------------------------------------------------------------ plugin options
def plugin_option_rows():
    return the_table(README, ["plugin", "option", "default", "meaning"], 3)


def option_value(cell):
    t = cell.strip()
    if t in ("true", "false"):
        return t == "true"
    if re.fullmatch(r"\d+", t):
        return int(t)
    return t.strip("`")


@pytest.mark.parametrize("plugin", [r[0] for r in plugin_option_rows()])
def test_a_documented_plugin_option_takes_its_default_and_an_unknown_option_is_refused(
        binary, keys, tmp_path, plugin):
    _, option, default, _ = next(r for r in plugin_option_rows() if r[0] == plugin)
    c = minimal_config(keys)
    opts = {} if option == "—" else {option.strip("`"): option_value(default)}
    c["vhosts"][0]["plugins"] = {plugin: opts}
    r = check(tmp_path, c)
    assert r.returncode == 0, "plugin %s with %r refused:\n%s" % (plugin, opts, r.stderr)
    opts["no_such_option"] = 1
    r = check(tmp_path, c)
    assert r.returncode == 1 and "no_such_option" in r.stderr, r.stderr


def test_every_plugin_and_option_of_the_source_is_in_the_options_table():
    rows = {(r[0], r[1].strip("`")) for r in plugin_option_rows()}
    source = set()
    for d in (gw.REPO / "plugins").glob("*/"):
        opts = {o for f in d.glob("*.c") for o in re.findall(r'strcmp\(key, "(\w+)"\)', f.read_text())}
        source |= {(d.name, o) for o in opts} or {(d.name, "—")}
    assert len(source) >= 5, source
    assert source == rows


# ------------------------------------------------------------------ defaults the gateway shows
@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    """Plain defaults: no websocket settings and no limits but the message rate on the public
    vhost, history on zones (for the history call)."""
    pub = minimal_public(keys)
    pub["plugins"] = dict(fu.FULL_PLUGINS, subscription={"policy": "open"})
    pub["history"] = {"zone": {"size": 10}}
    pub["limits"] = {"messages_per_s": 100000, "burst": 100000}  # 129 subscribes at once
    return make_module_gateway([pub, gw.internal_vhost(keys)])


def vhost_default(key):
    return leading_int(next(d for k, _, d, _ in config_rows() if k == key))


def limit_default(key):
    return leading_int(dict(limit_rows())[key])


def limit_answer(key):
    """The error message the Limits table quotes for key."""
    row = next(c for c in the_table(README, ["limit", "default", "what a client sees when it hits it"],
                                    15) if key in ticked(c[0]))
    return ticked(row[2])[-1]


def test_an_api_body_over_the_documented_default_is_413(g, api):
    n = vhost_default("api.max_body_bytes")
    base = {"channel": "zone:" + fu.uid(), "type": "t", "payload": {"pad": ""}}
    pad = n - len(json.dumps(base).encode())
    at = copy.deepcopy(base)
    at["payload"]["pad"] = "x" * pad
    assert len(json.dumps(at).encode()) == n
    assert api.post("/v1/publish", at).status == 202
    at["payload"]["pad"] += "x"
    r = api.post("/v1/publish", at)
    assert r.status == 413 and r.json["error"]["code"] == "payload_too_large", r


def test_a_message_over_the_documented_default_size_is_closed_1009(g):
    n = vhost_default("websocket.max_message_bytes")
    assert n == limit_default("max_message_bytes")
    with g.connect(g.token()) as ws:
        ws.send_text("x" * n)  # read, and refused as no JSON: the connection stays
        gw.expect_error(ws, 1002)
        ws.send_text("x" * (n + 1))
        assert ws.wait_close(3.0).code == 1009


def test_json_nested_one_deeper_than_the_documented_default_is_1002(g):
    depth = limit_default("json_depth")

    def nested(d):  # the envelope, its payload and the parameters are three levels
        v = {}
        for _ in range(d - 3):
            v = {"a": v}
        return {"type": "subscribe", "id": "n", "payload": {"channel": "zone:d", "parameters": v}}
    with g.connect(g.token()) as ws:
        ws.send_json(nested(depth))
        assert ws.recv_json(3.0)["type"] == "ack"
        ws.send_json(nested(depth + 1))
        assert gw.expect_error(ws, 1002)["payload"]["message"] == limit_answer("json_depth")


def test_subscriptions_past_the_documented_default_are_1003(g):
    n = limit_default("max_subscriptions")
    with g.connect(g.token()) as ws:
        for i in range(n):
            ws.send_json({"type": "subscribe", "payload": {"channel": "zone:s%d" % i}})
        ws.send_json({"type": "subscribe", "id": "last", "payload": {"channel": "zone:over"}})
        err = gw.expect_error(ws, 1003, id="last")
        assert err["payload"]["message"] == limit_answer("max_subscriptions")


# ------------------------------------------------------------------ the internal API
def api_rows():
    return the_table(README, ["call", "answer"], 10)


def api_calls():
    """(method, path with placeholders, answer cell) of each call the API table documents."""
    out = []
    for call, answer in api_rows():
        for m, path in re.findall(r"`(GET|POST|DELETE) ([^`\s]+)`", call):
            out.append((m, path, answer))
    assert len(out) >= 10, out
    return out


def concrete(path):
    path = path.replace("{id}", fu.uid()).replace("{channel}", "zone:" + fu.uid())
    return re.sub(r"=[A-Z]\b", "=1", path)


def shape_keys(answer):
    """The top-level keys of the JSON the answer cell shows right after its status."""
    m = re.match(r"\d{3} `(\{.*?\})`", answer)
    if not m:
        return None
    shape, depth, top = m.group(1), 0, ""
    for ch in shape:  # the text at depth 1, nested objects and arrays left out
        depth += ch in "{["
        if depth == 1:
            top += ch
        depth -= ch in "}]"
    return re.findall(r'(?<![:\w])"(\w+)"(?=\s*[,:}])', top)


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _ in api_calls()])
def test_a_documented_call_is_routed_and_answers_its_documented_status_and_shape(api, method, path):
    answer = next(a for m, p, a in api_calls() if (m, p) == (method, path))
    if method == "POST":  # an empty object is checked, and refused, by the call itself
        r = api.post(concrete(path), {})
        assert r.status == 400 and r.json["error"]["code"] == "bad_request", r
        return
    r = api.call(method, concrete(path))
    status = re.match(r"(\d{3})\b", answer)
    assert r.status == (int(status.group(1)) if status else 200), (method, path, r)
    keys = shape_keys(answer)
    if keys:
        assert isinstance(r.json, dict) and sorted(r.json) == sorted(keys), (
            "README: %s %s answers %s; got %r" % (method, path, keys, r))


@pytest.mark.parametrize("path", sorted({p for _, p, _ in api_calls()}))
def test_a_documented_path_refuses_the_methods_it_does_not_list_with_405(api, path):
    listed = {m for m, p, _ in api_calls() if p.split("?")[0] == path.split("?")[0]}
    for m in sorted({"GET", "POST", "DELETE"} - listed):
        r = api.call(m, concrete(path), body={} if m == "POST" else None)
        assert r.status == 405, (m, path, r)


@pytest.mark.parametrize("path", ["/nope", "/v1/nope", "/v1/users/u1/nope", "/v1/channels/zone:x/nope",
                                  "/v1/users/u1/connections/more"])
def test_an_undocumented_path_is_404(api, path):
    for m in ("GET", "DELETE"):
        r = api.call(m, path)
        assert r.status == 404 and r.json["error"]["code"] == "not_found", (m, path, r)


def test_every_route_in_the_source_is_in_the_api_table():
    documented_paths = {p.split("?")[0] for _, p, _ in api_calls()}
    routes = []
    for f in (gw.REPO / "plugins").glob("*/*.c"):
        if f.parent.name == "example":  # the template, not installed
            continue
        text = f.read_text()
        routes += re.findall(r'register_route\(\s*\w+,\s*"(\w+)",\s*"([^"]+)"', text)
    assert len(routes) >= 3, routes
    missing = [r for r in routes if r[1] not in documented_paths
               or r[0] not in {m for m, p, _ in api_calls() if p.split("?")[0] == r[1]}]
    # the core's routes: every path literal of api.c's router is part of a documented path
    core = re.findall(r'"(/[a-z0-9/]*)"', (SRC / "api.c").read_text())
    assert len(core) >= 6, core
    missing += [p for p in core if not any(p in d for d in documented_paths)]
    assert not missing, "routes missing from the README's API table: %s" % missing


# ------------------------------------------------------------------ metrics and codes
def documented_metrics():
    row = next(a for c, a in api_rows() if "`GET /metrics`" in c)
    names = set(re.findall(r"`(pavilion_\w+)", row))
    assert len(names) >= 8, names
    return names


def test_the_documented_metrics_are_the_ones_the_source_writes_and_metrics_serves(api):
    source = set(re.findall(r'"(?:# HELP )?(pavilion_\w+)', (SRC / "metrics.c").read_text()))
    assert documented_metrics() == source
    families = set(re.findall(r"^# TYPE (pavilion_\w+)", api.metrics_text(), re.M))
    assert documented_metrics() == families


def test_the_readme_close_codes_are_the_ones_the_gateway_sends():
    readme = {int(c[0]) for c in the_table(README, ["close code", "when"], 8)}
    assert readme == close_codes_in_source()


def test_the_protocol_close_codes_are_the_ones_the_gateway_sends():
    doc = {int(c[0]) for c in the_table(PROTOCOL, ["close code", "when"], 8)}
    assert doc == close_codes_in_source()


def test_the_protocol_error_codes_are_the_plugin_abi_codes():
    doc = {int(c[0]) for c in the_table(PROTOCOL, ["code", "meaning"], 6)}
    enum = re.search(r"enum pav_error_code \{(.*?)\};",
                     (gw.REPO / "include" / "pavilion" / "plugin.h").read_text(), re.S).group(1)
    assert doc == {int(n) for n in re.findall(r"= (\d+)", enum)}


def api_slugs_in_source():
    """{status: code} of every error status the API's core answers or names a code for
    (plugins' routes answer through the same table)."""
    api = (SRC / "api.c").read_text()
    body = re.search(r"static const char \*slug\(int status\)\n\{(.*?)\n\}", api, re.S).group(1)
    out = {int(s): c for s, c in re.findall(r'case (\d{3}): return "(\w+)"', body)}
    other = re.search(r'default: return "(\w+)"', body).group(1)
    for status in re.findall(r"answer_error\(r, (\d{3})", api):
        out.setdefault(int(status), other)
    assert len(out) >= 8, out
    return out


def test_the_readme_api_error_codes_are_the_ones_the_api_answers():
    section = README.read_text().split("\n## Internal HTTP API\n")[1].split("\n## ")[0]
    readme = {int(s): c for s, c in re.findall(r"\b(\d{3})\s+\(`(\w+)`", section)}
    assert len(readme) >= 7, readme
    assert readme == api_slugs_in_source()


def test_the_protocol_api_error_codes_are_the_ones_the_api_answers():
    doc = {int(s): ticked(c)[0] for s, c in the_table(PROTOCOL, ["status", "code"], 7)}
    assert doc == api_slugs_in_source()
