"""RFC 2332 5.2.3 / 5.2.4: Registration Request and Reply, seen during bring-up."""

from __future__ import annotations

import pytest

from ..wire import frames, show

pytestmark = pytest.mark.topology("hub_2spoke")


def registrations(lab):
    lab.bringup.stop()          # flush: registration happened during bring-up
    return frames(lab.bringup.dir)


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_spoke_registers_with_its_nhs(lab) -> None:
    """"The Registration Request packet is sent from a station to an NHS to notify the NHS
    of one or more addresses which may be reached through that station." (5.2.3)"""
    fs = registrations(lab)
    hub = lab.topo.nodes["hub1"]
    for spoke in lab.topo.spokes:
        reqs = [f for f in fs if f.nhrp and f.nhrp.op == "registration-request" and f.node == "hub1"
                and f.src == str(spoke.nbma) and f.dst == str(hub.nbma)]
        assert reqs, f"no Registration Request from {spoke.name} reached hub1:\n{show(fs)}"
        assert reqs[0].nhrp.src_proto == str(spoke.tunnel), show(reqs)


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_registration_cie_carries_the_hold_time(lab) -> None:
    """"Holding Time: The Holding Time field specifies the number of seconds for which the
    NHRP information specified in the CIE is considered to be valid." (5.2.0.1)"""
    fs = [f for f in registrations(lab) if f.nhrp and f.nhrp.op == "registration-request"]
    assert fs, "no Registration Request captured"
    for f in fs:
        assert f.nhrp.cies, f"Registration Request without a CIE:\n{f}"
        assert {c.holding_time for c in f.nhrp.cies} == {lab.topo.dmvpn.holdtime}, show(fs)


@pytest.mark.spec("rfc2332", "5.2.4", "MUST")
def test_registration_reply_echoes_request_id_and_succeeds(lab) -> None:
    """"The Request ID ... is copied from the Registration Request" and a CIE Code of 0
    means "Successful Registration" (5.2.4)."""
    fs = registrations(lab)
    reqs = [f for f in fs if f.nhrp and f.nhrp.op == "registration-request" and f.node == "hub1"]
    assert reqs, show(fs)
    for req in reqs:
        replies = [f for f in fs if f.nhrp and f.nhrp.op == "registration-reply" and f.dst == req.src
                   and f.nhrp.request_id == req.nhrp.request_id and f.ts >= req.ts]
        assert replies, f"no Registration Reply with request ID {req.nhrp.request_id} to {req.src}:\n{show(fs)}"
        assert all(c.code == 0 for c in replies[0].nhrp.cies), f"registration refused:\n{replies[0]}"


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_registration_unique_flag_follows_configuration(lab) -> None:
    """"U bit: This is the Uniqueness bit." Spokes are configured `registration no-unique`,
    so no Registration Request may claim a unique binding (5.2.3, flags 0x8000)."""
    fs = [f for f in registrations(lab) if f.nhrp and f.nhrp.op == "registration-request"]
    assert fs, "no Registration Request captured"
    assert not [f for f in fs if f.nhrp.flags & 0x8000], show([f for f in fs if f.nhrp.flags & 0x8000])


@pytest.mark.spec("rfc2332", "5.2.4", "MUST")
def test_registration_reply_goes_back_to_the_registering_nbma(lab) -> None:
    """"The Registration Reply is sent ... to the station which sent the Registration
    Request" (5.2.4): from the NHS's NBMA address to the spoke's."""
    fs = registrations(lab)
    hub = str(lab.topo.nodes["hub1"].nbma)
    for spoke in lab.topo.spokes:
        got = [f for f in fs if f.nhrp and f.nhrp.op == "registration-reply" and f.node == spoke.name]
        assert got, f"{spoke.name} received no Registration Reply:\n{show(fs)}"
        assert {(f.src, f.dst) for f in got} == {(hub, str(spoke.nbma))}, show(got)
