"""A spoke behind NAT: registration through the NAT box, the hub's binding, shortcuts."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_all, expect_none

from ..conftest import bringup, lan_host, nat_public, nbma, ping, settle_shortcut, tunnel

pytestmark = [pytest.mark.topology("spoke_nat"), pytest.mark.phases(3)]


@pytest.mark.spec("dmvpn-phase3", "nat", "MUST")
def test_registration_crosses_the_nat(lab) -> None:
    """The hub receives spoke2's Registration Request from the NAT box's public address and
    answers it there (NAT-Traversal of DMVPN)."""
    tl = bringup(lab)
    reqs = expect_all(tl, "spoke2's Registration Requests at hub1", node="hub1", op="registration-request",
                      src_proto=tunnel(lab, "spoke2"))
    expect_none(reqs, "spoke2's registration arriving from elsewhere than the NAT",
                lambda e: e.src != nat_public(lab))
    expect(tl, "hub1's Registration Reply to the NAT's public address", node="hub1", op="registration-reply",
           dst=nat_public(lab))


@pytest.mark.spec("dmvpn-phase3", "nat", "MUST")
def test_hub_binds_the_post_nat_address(lab) -> None:
    """The hub maps spoke2's tunnel address to the address it can reach: the NAT's public
    address, not the private one spoke2 claims."""
    entry = next((e for e in lab.driver.cache("hub1") if e.protocol == tunnel(lab, "spoke2")), None)
    assert entry is not None, lab.driver.cache("hub1")
    assert entry.nbma == nat_public(lab), entry
    assert entry.claimed_nbma == nbma(lab, "spoke2"), entry


@pytest.mark.spec("dmvpn-phase3", "nat", "MUST")
def test_registration_reply_reports_the_post_nat_address(lab) -> None:
    """The hub tells a NATed spoke the address it sees it at: a Cisco NAT address
    extension (type 9) in the Registration Reply whose CIE holds the NAT's public
    address for spoke2's tunnel address."""
    reply = expect(bringup(lab), "a Registration Reply at spoke2", node="spoke2", op="registration-reply")
    nat_ext = [x for x in reply.nhrp.extensions if x.type == 9]
    assert nat_ext, f"no NAT address extension in the reply:\n{reply}\n{reply.nhrp.extensions}"
    assert any(c.client_nbma == nat_public(lab) for c in nat_ext[0].cies), nat_ext[0]


@pytest.mark.spec("dmvpn-phase3", "nat", "SHOULD")
def test_shortcut_to_a_natted_spoke_carries_traffic(lab, capture) -> None:
    """A shortcut from a public spoke to a spoke behind NAT uses the NAT's public address
    and carries traffic without loss once installed."""
    ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 5, 0.5)
    # The hairpin gives both spokes a Traffic Indication. Until both hold their
    # shortcut, which spoke sends straight first is a race, and whether the NAT has
    # a mapping for spoke1's packets depends on it: measure once both are installed.
    settle_shortcut(lab, "spoke1", "spoke2")
    settle_shortcut(lab, "spoke2", "spoke1")
    later = ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 10, 0.1)
    tl = capture.timeline()
    assert later.lossless, f"{later}\n{tl}"
    expect(tl, "data sent from spoke1 straight to the NAT's public address", node="spoke1",
           data="icmp type 8", dst=nat_public(lab))
