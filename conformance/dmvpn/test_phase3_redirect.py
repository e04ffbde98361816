"""DMVPN phase 3: the hub redirects (Traffic Indication), the spoke resolves, traffic
goes direct."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect, expect_reply

from ..conftest import expect_direct, hairpin, nbma, route_via, tunnel

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(3)]


@pytest.fixture(scope="module")
def redirected(lab):
    return hairpin(lab, "phase3_redirect")


@pytest.mark.spec("dmvpn-phase3", "traffic-indication", "MUST")
def test_hub_sends_traffic_indication_for_hairpinned_traffic(redirected, lab) -> None:
    """The hub, forwarding a packet back out of the tunnel interface it came in on, sends
    the source spoke an NHRP Traffic Indication carrying the triggering packet."""
    ti = expect(redirected["timeline"], "a Traffic Indication at spoke1", node="spoke1",
                op="traffic-indication")
    assert ti.src == nbma(lab, "hub1"), ti
    inner = ti.nhrp.inner
    assert len(inner) >= 20 and inner[12:16] == bytes([10, 1, 1, 10]) and inner[16:20] == bytes([10, 1, 2, 10]), \
        f"Traffic Indication does not carry the triggering packet 10.1.1.10>10.1.2.10: {inner[:20].hex()}"


@pytest.mark.spec("dmvpn-phase3", "resolution", "MUST")
def test_spoke_resolves_after_the_indication(redirected) -> None:
    """On a Traffic Indication the spoke sends a Resolution Request for the destination
    and gets a Resolution Reply with the same request ID."""
    tl = redirected["timeline"]
    ti = expect(tl, "a Traffic Indication at spoke1", node="spoke1", op="traffic-indication")
    req = expect(tl, "spoke1's Resolution Request for 10.1.2.10 after the indication", node="spoke1",
                 op="resolution-request", direction="out", dst_proto="10.1.2.10", after=ti.ts)
    expect_reply(tl, req)


@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_later_data_bypasses_the_hub(redirected, lab) -> None:
    """Once the shortcut is installed, data between the spokes' LANs flows spoke to spoke:
    none of the later packets crosses the hub's NBMA interface."""
    assert redirected["later"].lossless, redirected["later"]
    expect_direct(lab, redirected["timeline"])


@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_shortcut_is_installed_on_the_spoke(redirected, lab) -> None:
    """The spoke installs a shortcut route for the resolved prefix via the far spoke: its
    kernel sends any host of that prefix there, not only the one resolved."""
    far = tunnel(lab, "spoke2")
    cuts = lab.driver.shortcuts("spoke1")
    assert any(c.prefix == "10.1.2.0/24" and c.via == far for c in cuts), cuts
    # An implementation may add a host route for the resolved 10.1.2.10 besides the prefix's.
    via = route_via(lab, "spoke1", "10.1.2.254")
    assert via == far, f"spoke1 routes 10.1.2.254 (in the resolved 10.1.2.0/24) via {via}, not via spoke2 ({far})"


@pytest.mark.spec("rfc2332", "5.2.2", "MUST")
def test_resolution_reply_names_the_far_spoke(redirected, lab) -> None:
    """"The Resolution Reply ... contains the NBMA address of the destination" in a CIE
    whose prefix covers the requested address (5.2.2)."""
    reply = expect(redirected["timeline"], "a Resolution Reply for 10.1.2.10 at spoke1", node="spoke1",
                   op="resolution-reply", dst_proto="10.1.2.10")
    cies = reply.nhrp.cies
    assert cies and cies[0].code == 0, f"negative or empty Resolution Reply:\n{reply}\n{cies}"
    assert cies[0].client_nbma == nbma(lab, "spoke2"), cies
    assert 24 <= cies[0].prefix_len <= 32, f"prefix /{cies[0].prefix_len} does not describe spoke2's LAN"
