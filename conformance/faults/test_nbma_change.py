"""Fault: a spoke's NBMA address changes (a new DHCP lease, a re-homed uplink)."""

from __future__ import annotations

import time

import pytest

from dmvpnkit.capture import expect, expect_none, expect_reply
from dmvpnkit.labs.faults import Faults

from ..conftest import lan_host, nbma, ping, tunnel, wait_quietly

pytestmark = pytest.mark.topology("hub_2spoke")


@pytest.fixture(scope="module")
def renumbered(lab, scenario_capture):
    """spoke1 moves to a new NBMA address while spoke2 (in phase 3) holds a shortcut to it;
    observed until the hub's binding follows (bounded by one registration period)."""
    if lab.phase == 3:
        ping(lab, "spoke2_h", lan_host(lab, "spoke1"), 5, 0.5)       # spoke2 -> spoke1 shortcut
    cap = scenario_capture("nbma_change")
    out: dict = {"old": nbma(lab, "spoke1")}
    with Faults(lab).nbma_change("spoke1") as change:
        new = change.address
        out["new"], out["t_change"] = str(new), change.mark
        hold = lab.topo.dmvpn.holdtime

        def moved() -> bool:
            e = next((e for e in lab.driver.cache("hub1") if e.protocol == tunnel(lab, "spoke1")), None)
            return e is not None and e.nbma == str(new)
        out["moved"] = wait_quietly("hub1's binding for spoke1 to move", moved, hold)
        out["cache"] = lab.driver.cache("hub1")
        if lab.phase == 3:
            out["t_traffic"] = time.time()
            ping(lab, "spoke2_h", lan_host(lab, "spoke1"), 5, 0.5)
            out["later"] = ping(lab, "spoke2_h", lan_host(lab, "spoke1"), 10, 0.1)
        out["timeline"] = cap.timeline()
    return out


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_spoke_reregisters_from_its_new_address(renumbered) -> None:
    """A station whose NBMA address changed registers again, its Registration Request
    carrying the new address as Source NBMA Address, and the NHS accepts it."""
    tl = renumbered["timeline"]
    req = expect(tl, f"spoke1 registering from its new address {renumbered['new']}", node="spoke1",
                 op="registration-request", direction="out", src=renumbered["new"],
                 src_nbma=renumbered["new"], after=renumbered["t_change"])
    reply = expect_reply(tl, req)
    assert reply.nhrp.cies and reply.nhrp.cies[0].code == 0, reply


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_hub_binding_moves_to_the_new_address(renumbered) -> None:
    """The NHS's binding for the spoke's tunnel address follows the new NBMA address
    within one registration period (the hold time)."""
    assert renumbered["moved"], f"hub1 still maps spoke1 to {renumbered['old']}: {renumbered['cache']}"


@pytest.mark.phases(3)
@pytest.mark.feature("purge-resolvers", role="hub")
@pytest.mark.spec("rfc2332", "5.2.5", "SHOULD")
def test_no_traffic_to_the_old_address(renumbered) -> None:
    """Shortcuts to the old NBMA address go away or are repaired: a Purge Request is
    "sent from an NHS to a station to cause it to delete previously cached information
    ... when the information may be no longer valid" (5.2.5). After the move, traffic
    from spoke2 to spoke1's LAN flows and none is sent to the old address."""
    tl = renumbered["timeline"]
    assert renumbered["later"].lossless, renumbered["later"]
    expect_none(tl, f"data sent to spoke1's old address {renumbered['old']}", node="spoke2", data="icmp",
                dst=renumbered["old"], after=renumbered["t_traffic"])
