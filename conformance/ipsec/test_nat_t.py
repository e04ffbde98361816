"""IPsec for a spoke behind NAT: NAT-T (ESP in UDP 4500, RFC 3948)."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_none

from ..conftest import bringup, nat_public, tunnel

pytestmark = [pytest.mark.topology("spoke_nat"), pytest.mark.phases(3)]


@pytest.mark.spec("dmvpn-ipsec", "nat-t", "MUST")
def test_natted_spoke_uses_udp_encapsulation(lab) -> None:
    """IKE detects the NAT and both ends encapsulate ESP in UDP 4500: the hub receives
    spoke2's registration as ESP-in-UDP from the NAT's public address, and never raw ESP."""
    tl = bringup(lab)
    req = expect(tl, "spoke2's Registration Request at hub1", node="hub1", op="registration-request",
                 src_proto=tunnel(lab, "spoke2"))
    assert req.esp and req.encap.startswith("udp") and "4500" in req.encap, f"not ESP in UDP 4500:\n{req}"
    assert req.src == nat_public(lab), req
    expect_none(tl, "raw ESP between hub1 and the NAT", node="hub1", src=nat_public(lab), esp=True, encap=False)
    sa = lab.driver.ipsec.established("hub1").get(nat_public(lab))
    assert sa is not None and sa.nat_any and all(c.encap for c in sa.children), lab.driver.ipsec.sas("hub1")
