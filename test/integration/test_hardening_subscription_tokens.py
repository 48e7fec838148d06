"""Connection tokens and subscription tokens are not interchangeable.

A subscription token (`payload.parameters.token` of a subscribe) carries a `channel` claim and
grants that one subscription. It must not open a session (error 1001, close 4001) nor renew
one (error 1001, the connection stays open); and a token without a `channel` claim (a
connection token) grants no subscription (1004).
"""
import pytest
import websockets

import gw
from test_adversarial_util import settle
from test_flow_util import FULL_PLUGINS, Client, flow_vhosts, uid
from test_hardening_util import run, ws_connect

WHY = "subscription token cannot open a session"


@pytest.fixture(scope="module")
def g(make_module_gateway, keys):
    g = make_module_gateway(flow_vhosts(keys, plugins=dict(FULL_PLUGINS)))
    yield g
    settle(g)


@pytest.mark.parametrize("claim", ["zone:lobby", ["zone:lobby"], ""], ids=["string", "array", "empty"])
def test_token_with_channel_claim_cannot_open_a_session(g, claim):
    sub = uid("st")
    with g.connect(g.token(sub=sub, channel=claim)) as ws:
        err = gw.expect_auth_rejected(ws)
        assert err["payload"]["message"] == WHY, err


def test_token_with_channel_claim_refused_as_a_strict_client_sees_it(g):
    async def attempt():
        async with ws_connect(g, token=g.token(sub=uid("st"), channel="zone:lobby")) as ws:
            first = await ws.recv()
            try:
                await ws.recv()
            except websockets.ConnectionClosed as e:
                return first, e, ws.close_code
        return first, None, None

    first, closed, code = run(attempt())
    assert '"code":1001' in first and WHY in first, first
    assert closed is not None and closed.rcvd is not None and closed.rcvd.code == 4001, closed
    assert code == 4001


def test_token_with_channel_claim_cannot_renew_a_session(g):
    with Client(g, sub=uid("st")) as c:
        c.sync()
        m = c.err("auth", {"token": g.token(sub=c.sub, channel="zone:lobby")}, 1001)
        assert m["payload"]["message"] == WHY, m
        c.sync()  # still open and served
        c.ok("auth", {"token": g.token(sub=c.sub)})  # a connection token still renews


def test_token_without_channel_claim_grants_no_subscription(g):
    """parameters.token must be a subscription token: a valid connection token of the same
    user (no `channel` claim) is refused with 1004; the right subscription token passes."""
    chan = "zone:" + uid("z")
    with Client(g, sub=uid("st")) as c:  # no zones claim: only the token route
        c.err("subscribe", {"channel": chan, "parameters": {"token": g.token(sub=c.sub)}}, 1004)
        c.ok("subscribe", {"channel": chan,
                           "parameters": {"token": g.token(sub=c.sub, channel=chan)}})
