"""RFC 2332 5.2.3 / 5.2.4: Registration Request and Reply, seen during bring-up."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_all, expect_none, expect_reply
from dmvpnkit.rules import Context, enforce, exchanges, registration

from ..conftest import bringup, nbma

pytestmark = pytest.mark.topology("hub_2spoke")
U_BIT = 0x8000


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_spoke_registers_with_its_nhs(lab) -> None:
    """"The Registration Request packet is sent from a station to an NHS to notify the NHS
    of one or more addresses which may be reached through that station." (5.2.3)"""
    tl = bringup(lab)
    for spoke in lab.topo.spokes:
        req = expect(tl, f"a Registration Request from {spoke.name} at hub1", node="hub1",
                     op="registration-request", src=str(spoke.nbma), dst=nbma(lab, "hub1"))
        assert req.nhrp.src_proto == str(spoke.tunnel), req


@pytest.mark.spec("rfc2332", "5.2.0.1", "MUST")
def test_registration_cie_carries_the_hold_time(lab) -> None:
    """"Holding Time: The Holding Time field specifies the number of seconds for which the
    NHRP information specified in the CIE is considered to be valid." (5.2.0.1)"""
    enforce(registration.holding_time, bringup(lab), Context(holdtime=lab.topo.dmvpn.holdtime))


@pytest.mark.spec("rfc2332", "5.2.4", "MUST")
def test_registration_reply_echoes_request_id_and_succeeds(lab) -> None:
    """"The Request ID ... is copied from the Registration Request" and a CIE Code of 0
    means "Successful Registration" (5.2.4)."""
    tl = bringup(lab)
    for spoke in lab.topo.spokes:
        req = expect(tl, f"{spoke.name}'s Registration Request", node=spoke.name, op="registration-request")
        reply = expect_reply(tl, req)
        assert reply.nhrp.request_id == req.nhrp.request_id
        assert reply.nhrp.cies and all(c.code == 0 for c in reply.nhrp.cies), \
            f"registration refused:\n{reply}\n{reply.nhrp.cies}"


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_registration_unique_flag_follows_configuration(lab) -> None:
    """"U bit: This is the Uniqueness bit." Spokes are configured `registration no-unique`,
    so no Registration Request may claim a unique binding (5.2.3)."""
    tl = expect_all(bringup(lab), "Registration Requests", op="registration-request")
    expect_none(tl, "a Registration Request with the U bit set", lambda e: bool(e.nhrp.flags & U_BIT))


@pytest.mark.spec("rfc2332", "5.2.4", "MUST")
def test_registration_reply_goes_back_to_the_registering_nbma(lab) -> None:
    """"The Registration Reply is sent ... to the station which sent the Registration
    Request" (5.2.4): from the NHS's NBMA address to the spoke's."""
    tl = bringup(lab)
    for spoke in lab.topo.spokes:
        expect_all(tl, f"Registration Replies at {spoke.name} from hub1", node=spoke.name, op="registration-reply",
                   src=nbma(lab, "hub1"), dst=str(spoke.nbma))
    enforce(exchanges.reply_to_requester, tl, Context(station=nbma(lab, "hub1"), name="hub1", role="nhs"))
