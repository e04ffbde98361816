"""Fault: the NHRP daemon of a spoke or of the hub restarts."""

from __future__ import annotations


import pytest

from dmvpnkit.capture import expect, expect_reply
from dmvpnkit.labs.faults import Faults

from ..conftest import lan_host, ping, tunnel, wait_quietly

HOLD = 15
pytestmark = pytest.mark.topology("hub_2spoke", holdtime=HOLD)


@pytest.fixture(scope="module")
def restarts(lab, scenario_capture):
    faults = Faults(lab)
    cap = scenario_capture("daemon_restart")
    out: dict = {}
    if lab.phase == 3:
        ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 5, 0.5)        # shortcut spoke1 -> spoke2
    # Before the start, not the stop: a refresh sent while the old daemon was being
    # stopped is no registration "again".
    out["t_spoke"] = faults.restart_daemon("spoke2").lifted
    if lab.phase == 3:
        ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 5, 0.5)
        out["after_spoke"] = ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 10, 0.1)
    out["t_hub"] = faults.restart_daemon("hub1").mark
    want = {tunnel(lab, s.name) for s in lab.topo.spokes}
    # spokes refresh every hold/3; the restarted hub relearns them by then
    wait_quietly("hub1 to relearn every spoke", lambda: want <= {
        e.protocol for e in lab.driver.cache("hub1") if e.type == "dynamic"}, HOLD / 3 * 1.5 + 5)
    out["hub_cache"] = lab.driver.cache("hub1")
    out["timeline"] = cap.timeline()
    return out


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_restarted_spoke_registers_again(restarts) -> None:
    """A spoke whose NHRP daemon restarted registers with its NHS again, successfully."""
    tl = restarts["timeline"]
    req = expect(tl, "spoke2 registering after its restart", node="spoke2", op="registration-request",
                 direction="out", after=restarts["t_spoke"])
    reply = expect_reply(tl, req)
    assert reply.nhrp.cies and reply.nhrp.cies[0].code == 0, reply


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_restarted_hub_relearns_every_spoke(restarts, lab) -> None:
    """After the hub's daemon restarts its cache is rebuilt from the spokes'
    registrations within one refresh period (hold time / 3, with slack)."""
    have = {e.protocol for e in restarts["hub_cache"] if e.type == "dynamic"}
    missing = {tunnel(lab, s.name) for s in lab.topo.spokes} - have
    tl = restarts["timeline"].where(op="registration-request", node="hub1", after=restarts["t_hub"])
    assert not missing, f"hub1 lost {sorted(missing)} after its restart; registrations since:\n{tl.format()}"


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_traffic_survives_a_far_spoke_restart(restarts) -> None:
    """When the far end of a shortcut restarts, traffic to it recovers: no stale entry
    keeps blackholing it."""
    assert restarts["after_spoke"].lossless, restarts["after_spoke"]
