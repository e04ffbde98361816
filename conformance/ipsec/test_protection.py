"""IPsec-protected DMVPN: what the NBMA network may see, and when SAs exist.

Only with `--ipsec`. The captures are decrypted with the nodes' own keys (the tap
logs `ip xfrm`), so a case can tell a packet that crossed the NBMA network inside
ESP from one that crossed it in the clear, and still read the NHRP inside.
"""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_all
from dmvpnkit.rules import Context, enforce, ipsec

from ..conftest import bringup, hairpin, nbma, tunnel

PROTECTED = Context(ipsec=True)     # --ipsec: every station's GRE must be in ESP

pytestmark = pytest.mark.topology("hub_2spoke")


@pytest.fixture(scope="module")
def redirected(lab):
    return hairpin(lab, "ipsec_phase3")


@pytest.mark.phases(1, 2, 3)
@pytest.mark.spec("dmvpn-ipsec", "confidentiality", "MUST")
def test_no_nhrp_in_cleartext_at_bring_up(lab) -> None:
    """Every NHRP packet of bring-up crosses the NBMA network inside ESP: none in the
    clear, and the registrations are seen (decrypted) inside it."""
    tl = bringup(lab)
    enforce(ipsec.no_cleartext, tl, PROTECTED)
    for spoke in ("spoke1", "spoke2"):
        expect(tl, f"{spoke}'s Registration Request inside ESP at hub1", node="hub1",
               op="registration-request", src_proto=tunnel(lab, spoke), esp=True)


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-ipsec", "confidentiality", "MUST")
def test_no_overlay_data_in_cleartext(redirected) -> None:
    """Overlay traffic (via the hub, then spoke to spoke) and the NHRP that redirects it
    cross the NBMA network only inside ESP."""
    tl = redirected["timeline"]
    enforce(ipsec.no_cleartext, tl, PROTECTED)
    expect_all(tl, "ICMP between the LAN hosts inside ESP", at_least=10, node="spoke2", data="icmp type 8",
               esp=True)
    expect(tl, "the Traffic Indication inside ESP", node="spoke1", op="traffic-indication", esp=True)


@pytest.mark.phases(1, 2, 3)
@pytest.mark.spec("dmvpn-ipsec", "hub-spoke-sa", "MUST")
def test_hub_spoke_sa_is_up_before_registration_completes(lab) -> None:
    """IKE between spoke and hub completes before the spoke's registration does: the
    first Registration Reply the spoke receives comes inside ESP, after IKE_AUTH."""
    tl = bringup(lab)
    for spoke in ("spoke1", "spoke2"):
        reply = expect(tl, f"a Registration Reply at {spoke}", node=spoke, op="registration-reply",
                       direction="in")
        assert reply.esp, f"{spoke}'s first Registration Reply was not in ESP:\n{reply}"
        expect(tl, f"IKE_AUTH between {spoke} and hub1 before the reply", node=spoke, data="ike",
               before=reply.ts, pred=lambda e: "IKE_AUTH" in e.data)
    for spoke in ("spoke1", "spoke2"):
        up = lab.driver.ipsec.established(spoke)
        assert nbma(lab, "hub1") in up, f"{spoke} has no IKE SA with hub1: {lab.driver.ipsec.sas(spoke)}"
        child = up[nbma(lab, "hub1")].children[0]
        assert (child.mode, child.protocol) == ("TRANSPORT", "ESP"), child


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-ipsec", "spoke-spoke-sa", "MUST")
def test_shortcut_gets_its_own_sa(redirected, lab) -> None:
    """Resolving a shortcut brings up an SA between the two spokes, each proving the
    identity NHRP gave it (its tunnel address), and the later data uses it."""
    tl = redirected["timeline"]
    up = lab.driver.ipsec.established("spoke1")
    sa = up.get(nbma(lab, "spoke2"))
    assert sa is not None, f"spoke1 has no IKE SA with spoke2: {lab.driver.ipsec.sas('spoke1')}"
    assert sa.remote_id == tunnel(lab, "spoke2"), f"spoke2 authenticated as {sa.remote_id!r}: {sa}"
    expect_all(tl, "data from spoke1 arriving at spoke2 directly, inside ESP", at_least=10, node="spoke2",
               data="icmp type 8", src=nbma(lab, "spoke1"), esp=True)
