"""A spoke whose IKE fails (another pre-shared key) stays out; the rest is untouched."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_all, expect_none
from dmvpnkit.labs.vici import Initiator

from ..conftest import _capture, bringup, nbma, ping, tunnel, wait_quietly

pytestmark = [pytest.mark.topology("hub_2spoke", wrong_psk="spoke2"), pytest.mark.phases(1, 2, 3)]


@pytest.mark.spec("dmvpn-ipsec", "ike-failure", "MUST")
def test_spoke_with_failed_ike_is_not_registered(lab) -> None:
    """spoke2 cannot authenticate: no SA with the hub, no binding at the hub, and none of
    its NHRP reaches the hub, encrypted or in the clear."""
    # The lab is up once spoke1 registers; spoke2 tries IKE for its first registration,
    # which a loaded machine may start later. A spoke registers at least every third of
    # its holding time, so that long bounds the wait.
    wait_quietly("spoke2 to try IKE with hub1", lambda: lab.bringup.timeline(stop=False).where(
        node="hub1", data="ike", src=nbma(lab, "spoke2")), timeout=lab.topo.dmvpn.holdtime / 3)
    tl = bringup(lab)
    expect_all(tl, "spoke2 trying IKE with hub1", node="hub1", data="ike", src=nbma(lab, "spoke2"))
    assert nbma(lab, "hub1") not in lab.driver.ipsec.established("spoke2"), lab.driver.ipsec.sas("spoke2")
    assert tunnel(lab, "spoke2") not in {e.protocol for e in lab.driver.cache("hub1")}, lab.driver.cache("hub1")
    expect_none(tl, "NHRP from spoke2 reaching hub1", node="hub1", src=nbma(lab, "spoke2"),
                pred=lambda e: e.nhrp is not None or e.gre)


@pytest.mark.spec("dmvpn-ipsec", "ike-failure", "MUST")
def test_other_spokes_are_untouched(lab) -> None:
    """spoke1 registered over its SA and reaches the hub's LAN, its traffic protected; and
    when spoke2 tries IKE once more (and fails once more), spoke1's SA is left alone: no
    IKE between spoke1 and hub1 after it, and spoke1's traffic stays in the ESP SA it had."""
    assert tunnel(lab, "spoke1") in {e.protocol for e in lab.driver.cache("hub1") if e.type == "dynamic"}
    sa = lab.driver.ipsec.established("spoke1").get(nbma(lab, "hub1"))
    assert sa is not None, lab.driver.ipsec.sas("spoke1")
    spis = {int(c.spi_out, 16) for c in sa.children if c.state == "INSTALLED"}
    spoke2 = Initiator(**lab.driver.ipsec.vici_config("spoke2"))
    with _capture(lab, "ike_failure_again") as cap:
        failed = spoke2.attempt(nbma(lab, "hub1"), tunnel(lab, "hub1"))
        result = ping(lab, "spoke1_h", tunnel(lab, "hub1"), 5, 0.2)
        tl = cap.timeline()
    assert failed is not None, "spoke2's IKE with hub1 succeeded: the lab's wrong key did not take"
    expect(tl, "spoke2's IKE_AUTH at hub1", lambda e: " IKE_AUTH " in e.data, node="hub1", data="ike",
           src=nbma(lab, "spoke2"))
    expect_none(tl, "IKE between spoke1 and hub1 once spoke2 failed", lambda e: nbma(lab, "spoke1") in (e.src, e.dst),
                node="hub1", data="ike")
    assert result.lossless, result
    expect_all(tl, f"spoke1's pings at hub1 in the ESP SA it had (SPI {', '.join(f'0x{s:08x}' for s in spis)})",
               lambda e: e.esp in spis, at_least=5, node="hub1", data="icmp type 8", src=nbma(lab, "spoke1"))
