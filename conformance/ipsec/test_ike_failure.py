"""A spoke whose IKE fails (another pre-shared key) stays out; the rest is untouched."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect_all, expect_none

from ..conftest import bringup, nbma, ping, tunnel

pytestmark = [pytest.mark.topology("hub_2spoke", wrong_psk="spoke2"), pytest.mark.phases(1, 2, 3)]


@pytest.mark.spec("dmvpn-ipsec", "ike-failure", "MUST")
def test_spoke_with_failed_ike_is_not_registered(lab) -> None:
    """spoke2 cannot authenticate: no SA with the hub, no binding at the hub, and none of
    its NHRP reaches the hub, encrypted or in the clear."""
    tl = bringup(lab)
    expect_all(tl, "spoke2 trying IKE with hub1", node="hub1", data="ike", src=nbma(lab, "spoke2"))
    assert nbma(lab, "hub1") not in lab.driver.ipsec.established("spoke2"), lab.driver.ipsec.sas("spoke2")
    assert tunnel(lab, "spoke2") not in {e.protocol for e in lab.driver.cache("hub1")}, lab.driver.cache("hub1")
    expect_none(tl, "NHRP from spoke2 reaching hub1", node="hub1", src=nbma(lab, "spoke2"),
                pred=lambda e: e.nhrp is not None or e.gre)


@pytest.mark.spec("dmvpn-ipsec", "ike-failure", "MUST")
def test_other_spokes_are_untouched(lab) -> None:
    """spoke1 registered over its SA and reaches the hub's LAN; its traffic is protected."""
    assert tunnel(lab, "spoke1") in {e.protocol for e in lab.driver.cache("hub1") if e.type == "dynamic"}
    assert nbma(lab, "hub1") in lab.driver.ipsec.established("spoke1"), lab.driver.ipsec.sas("spoke1")
    result = ping(lab, "spoke1_h", tunnel(lab, "hub1"), 5, 0.2)
    assert result.lossless, result
