"""A spoke behind NAT: registration through the NAT box, the hub's binding, shortcuts."""

from __future__ import annotations

import time

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
    and carries traffic once installed, with nat1 in the state the implementations'
    own packets put it in: an unsolicited GRE packet to the NAT's public address gets
    through only if spoke2 has sent to spoke1's NBMA address through nat1 before (a
    Resolution Reply sent straight to the requester does that)."""
    # One probe, and no second before its reply: the hairpinned request gives spoke1
    # its Traffic Indication, the hairpinned reply gives spoke2 its one, so neither
    # spoke holds a shortcut while this probe's packets are in flight. With more
    # probes, a reply sent after spoke2's shortcut but before spoke1's would open
    # nat1's mapping, and the verdict would depend on which daemon was faster.
    ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 1, interval=5.0, wait=5.0)
    settle_shortcut(lab, "spoke1", "spoke2")
    settle_shortcut(lab, "spoke2", "spoke1")
    t_burst = time.time()
    later = ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 10, 0.1)
    tl = capture.timeline()
    opened = tl.where(node="spoke1", direction="in", src=nat_public(lab), gre=True, before=t_burst)
    assert later.lossless, (f"expected: every probe over the shortcut answered; observed: {later.received} "
                            f"of {later.count}, with {len(opened)} GRE packets from spoke2 through nat1 "
                            f"at spoke1 before the burst (what opens nat1's mapping)\n{later}\n{tl}")
    expect(tl, "data sent from spoke1 straight to the NAT's public address", node="spoke1",
           data="icmp type 8", dst=nat_public(lab))
