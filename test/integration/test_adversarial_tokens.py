"""Hostile tokens: algorithm confusion, kid tricks, the claims matrix, and the token life
cycle (renewal, expiry, revocation). A refused token still upgrades, then gets error 1001
and close 4001 (DESIGN section 2); a neighbour connected before stays served."""
import hashlib
import hmac
import json
import time

import pytest

import gw
from test_adversarial_util import API, check_neighbour, neighbour, settle, uid
from test_flow_util import FULL_PLUGINS
from wsclient import HandshakeRefused

ISS, AUD = "pavilion", "gateway"
PLUGINS = dict(FULL_PLUGINS, example={"greeting": "hi"})


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    g = make_module_gateway([
        gw.public_vhost(keys, "public", tls=False, plugins=PLUGINS,
                        auth={"issuer": ISS, "audience": AUD, "leeway_s": 30}),
        gw.public_vhost(keys, "rs", alg="RS256", tls=False, plugins=PLUGINS),
        gw.public_vhost(keys, "short", tls=False, plugins=PLUGINS, auth={"leeway_s": 0}),
        gw.internal_vhost(keys),
    ])
    yield g
    settle(g)


def now():
    return int(time.time())


def rejected(g, token, vhost="public"):
    """The token is refused the DESIGN way: 101, error 1001, close 4001; a neighbour on the
    same vhost (connected before) is still served."""
    nb = neighbour(g, vhost=vhost)
    try:
        try:
            ws = g.connect(g.note_token(token), vhost=vhost)
        except HandshakeRefused as e:
            pytest.fail("a bad token must still be upgraded (101), then error 1001; got HTTP %s" % e.status)
        with ws:
            err = gw.expect_auth_rejected(ws)
        check_neighbour(nb, "a refused token")
        return err
    finally:
        nb.close()


def accepted(g, token, vhost="public"):
    with g.connect(g.note_token(token), vhost=vhost) as ws:
        gw.probe(ws)


def hs(g, claims, key=None, alg="HS256", header=None):
    return gw.mint(claims, g.keys.hs_secret if key is None else key, alg, header)


def good_claims(**over):
    over.setdefault("sub", uid("tok"))
    return gw.claims(iss=ISS, aud=AUD, **over)


# ------------------------------------------------------------------ algorithm confusion
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_refused(g, alg):
    rejected(g, gw.mint(good_claims(), None, alg))


@pytest.mark.parametrize("alg", ["none", "None"])
def test_alg_none_refused_on_rs256_vhost(g, alg):
    rejected(g, gw.mint(gw.claims(sub=uid("tok")), None, alg), vhost="rs")


def test_alg_none_with_a_signature_part_refused(g):
    t = gw.mint(good_claims(), None, "none")
    rejected(g, t + gw.b64u(b"anything"))


@pytest.mark.parametrize("pem", ["as-is", "no-trailing-newline"])
def test_hs256_signed_with_rs_public_key_refused(g, pem):
    """The classic RS→HS confusion: HMAC keyed with the vhost's RSA public key PEM."""
    key = g.keys.rsa_pub_pem if pem == "as-is" else g.keys.rsa_pub_pem.rstrip(b"\n")
    rejected(g, gw.mint(gw.claims(sub=uid("tok")), key, "HS256"), vhost="rs")


def test_lowercase_alg_hs256_refused(g):
    """libjwt compares alg case-insensitively; the gateway pins the exact name."""
    rejected(g, hs(g, good_claims(), alg="HS256", header={"alg": "hs256"}))


def test_rs256_token_on_hs256_vhost_refused(g):
    rejected(g, gw.mint(good_claims(), g.keys.rsa, "RS256"))


# ------------------------------------------------------------------ kid tricks
# A kid that named a key file would make the token's own header pick the key; each token
# below is signed with what that file (or an empty key) holds. kid is ignored: all refused.
def _passwd():
    try:
        with open("/etc/passwd", "rb") as f:
            return f.read()
    except OSError:
        return b""


KIDS = [
    ("../../etc/passwd", _passwd),
    ("../../../../../../etc/passwd", _passwd),
    ("/dev/null", lambda: b""),
    ("../../../../../../dev/null", lambda: b""),
    ("", lambda: b""),
    ("a\u0000b", lambda: b""),
    ("\u0000", lambda: b""),
    ("/etc/passwd\u0000.pem", _passwd),
]


@pytest.mark.parametrize("kid,key", KIDS, ids=["passwd-rel", "passwd-deep", "devnull", "devnull-rel",
                                               "empty", "nul-inside", "nul-only", "nul-suffix"])
def test_kid_tricks_refused(g, kid, key):
    rejected(g, hs(g, good_claims(), key=key(), header={"kid": kid}))


@pytest.mark.parametrize("kid", ["../../etc/passwd", "", "a\u0000b"])
def test_kid_tricks_on_rs256_vhost_refused(g, kid):
    rejected(g, gw.mint(gw.claims(sub=uid("tok")), b"", "HS256", header={"kid": kid}), vhost="rs")


def test_kid_is_ignored_for_a_correctly_signed_token(g):
    """kid plays no part: the right key still verifies whatever kid says."""
    accepted(g, hs(g, good_claims(), header={"kid": "../../etc/passwd"}))


# ------------------------------------------------------------------ claims matrix
CLAIMS = {
    "missing-exp": dict(exp=None),
    "exp-string": dict(exp="9999999999"),
    "exp-null-string": dict(exp="null"),
    "exp-bool": dict(exp=True),
    "exp-expired-beyond-leeway": dict(exp=-120),
    "nbf-future-beyond-leeway": dict(nbf=+120),
    "nbf-string": dict(nbf="0"),
    "iss-wrong": dict(iss="pavilion-evil"),
    "iss-missing": dict(iss=None),
    "iss-prefix": dict(iss="pavilio"),
    "aud-wrong": dict(aud="gateway2"),
    "aud-missing": dict(aud=None),
    "aud-array-without": dict(aud=["other", "gatewa"]),
    "sub-missing": dict(sub=None),
    "sub-empty": dict(sub=""),
    "sub-65-chars": dict(sub="a" * 65),
    "sub-space": dict(sub="al ice"),
    "sub-slash": dict(sub="../alice"),
    "sub-colon": dict(sub="user:alice"),
    "sub-unicode": dict(sub="al\u00efce"),
    "sub-nul": dict(sub="alice\u0000"),
    "sub-number": dict(sub=12345),
    "sub-array": dict(sub=["alice"]),
}


@pytest.mark.parametrize("case", sorted(CLAIMS))
def test_claims_matrix_refused(g, case):
    over = dict(CLAIMS[case])
    c = good_claims()
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        elif k in ("exp", "nbf") and isinstance(v, int) and not isinstance(v, bool):
            c[k] = now() + v
        else:
            c[k] = v
    rejected(g, hs(g, c))


def test_claims_matrix_control_accepted(g):
    """The matrix's base claims are good: each refusal above is the one changed claim."""
    accepted(g, hs(g, good_claims()))
    accepted(g, hs(g, good_claims(sub="a" * 64)))


def signed_raw(g, header_text, claims_text):
    """An HS256 token over the exact JSON texts given (gw.mint would re-serialize them)."""
    si = gw.b64u(header_text) + "." + gw.b64u(claims_text)
    return si + "." + gw.b64u(hmac.new(g.keys.hs_secret, si.encode(), hashlib.sha256).digest())


def test_a_repeated_claim_or_header_member_is_refused(g):
    """{"sub":"alice",...,"sub":"mallory"} correctly signed: which "sub" counts must not depend
    on a JSON reader's choice, so the token is refused; the same for the header's "alg"."""
    header = '{"alg":"HS256","typ":"JWT"}'
    text = json.dumps(good_claims(), separators=(",", ":"))
    accepted(g, signed_raw(g, header, text))  # the control: the same texts, no repeat
    rejected(g, signed_raw(g, header, text[:-1] + ',"sub":"mallory"}'))
    rejected(g, signed_raw(g, '{"alg":"none","alg":"HS256","typ":"JWT"}', text))



B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def respelled(part):
    """part (unpadded base64url, length 4k+2 or 4k+3) with its last character's spare bits
    set: it decodes to the same bytes."""
    spare = {2: 15, 3: 3}[len(part) % 4]
    v = B64URL.index(part[-1])
    assert v & spare == 0, "an encoder wrote spare bits: %r" % part
    return part[:-1] + B64URL[v | spare]


@pytest.mark.parametrize("vhost", ["public", "rs"])
def test_a_second_spelling_of_the_signature_is_refused(g, vhost):
    """Set spare bits in the signature's last character decode to the same signature, which
    verifies: one token would have many spellings (and a denylist of tokens a way around)."""
    token = g.token(vhost=vhost, sub=uid("spell"))
    head, sig = token.rsplit(".", 1)
    assert len(sig) % 4 in (2, 3), sig  # HS256: 43 characters, RS256 (2048 bits): 342
    accepted(g, token, vhost)
    assert "malformed" in rejected(g, head + "." + respelled(sig), vhost)["payload"]["message"]

# ------------------------------------------------------------------ life cycle
def _expiring(g, ttl=2):
    """A connection on the leeway-0 vhost whose token expires in 1..ttl s; (client, exp)."""
    from test_flow_util import Client
    exp = now() + ttl
    sub = uid("life")
    c = Client(g, sub=sub, vhost="short", token=g.note_token(gw.mint(gw.claims(sub=sub, exp=exp),
                                                                     g.keys.hs_secret)))
    c.sync()
    return c, exp


def test_no_renewal_expires_with_1001_and_4001_within_a_second(g):
    nb = neighbour(g, vhost="short")
    c, exp = _expiring(g)
    with c:
        err = c.wait_for("error", timeout=exp - time.time() + 3)
        t_err = time.time()
        assert err["payload"]["code"] == 1001 and "expired" in err["payload"]["message"], err
        closed = c.wait_close(3)
        t_close = time.time()
        assert closed.code == 4001, closed
        assert exp - 0.05 <= t_err <= exp + 1.25, "error 1001 at exp%+.2fs" % (t_err - exp)
        assert t_close <= exp + 1.5, "close 4001 at exp%+.2fs" % (t_close - exp)
    check_neighbour(nb, "a token expiry")
    nb.close()


def test_renewal_same_sub_outlives_first_token(g):
    nb = neighbour(g, vhost="short")
    c, exp = _expiring(g)
    with c:
        ack = c.ok("auth", {"token": g.note_token(gw.mint(gw.claims(sub=c.sub, ttl=60), g.keys.hs_secret))})
        assert ack["payload"]["for"] == "auth"
        time.sleep(max(0.0, exp + 1.5 - time.time()))
        c.sync()  # served past the first token's exp + leeway (0) + the 1 s the check may take
        assert not c.take("error"), c.inbox
    check_neighbour(nb, "a token renewal")
    nb.close()


def test_renewal_with_other_sub_refused_connection_stays(g):
    nb = neighbour(g, vhost="short")
    from test_flow_util import Client
    c = Client(g, sub=uid("life"), vhost="short", ttl=60)
    with c:
        other = g.note_token(gw.mint(gw.claims(sub=uid("other"), ttl=600), g.keys.hs_secret))
        c.err("auth", {"token": other}, 1001)
        c.sync()  # still open, still the old token
        gw.probe(c.ws)
    check_neighbour(nb, "a renewal for another user")
    nb.close()


def test_renewal_with_other_sub_does_not_extend_old_token(g):
    """A refused renewal changes nothing: the first token still expires on time."""
    c, exp = _expiring(g)
    with c:
        other = g.note_token(gw.mint(gw.claims(sub=uid("other"), ttl=600), g.keys.hs_secret))
        c.err("auth", {"token": other}, 1001)
        err = c.wait_for("error", timeout=exp - time.time() + 3)
        assert err["payload"]["code"] == 1001, err
        assert c.wait_close(3).code == 4001


@pytest.mark.parametrize("bad", ["alg-none", "bad-signature", "expired", "garbage"])
def test_renewal_with_bad_token_refused_connection_stays(g, bad):
    from test_flow_util import Client
    c = Client(g, sub=uid("life"), vhost="short", ttl=60)
    with c:
        cl = gw.claims(sub=c.sub, ttl=600)
        t = {"alg-none": lambda: gw.mint(cl, None, "none"),
             "bad-signature": lambda: gw.mint(cl, b"not-the-secret", "HS256"),
             "expired": lambda: gw.mint(gw.claims(sub=c.sub, exp=now() - 5), g.keys.hs_secret),
             "garbage": lambda: "x.y.z"}[bad]()
        c.err("auth", {"token": g.note_token(t)}, 1001)
        c.sync()


def test_revocation_through_api_closes_all_of_users_connections(g):
    api = API(g)
    nb = neighbour(g)
    sub = uid("rev")
    from test_flow_util import Client
    a, b = Client(g, sub=sub), Client(g, sub=sub)
    a.sync(), b.sync()
    r = api.call("DELETE", "/v1/users/%s/connections" % sub)
    assert r.status == 200 and r.json == {"closed": 2}, r
    for c in (a, b):
        err = c.wait_for("error", timeout=3)
        assert err["payload"]["code"] == 1001, err
        assert c.wait_close(3).code == 4001
        c.close()
    check_neighbour(nb, "a revocation of another user")
    nb.close()
