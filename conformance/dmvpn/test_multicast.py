"""Multicast over the DMVPN: the hub replicates it to every registered spoke."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect_all

from ..conftest import tunnel, wait_quietly

pytestmark = pytest.mark.topology("hub_2spoke")
GROUP = "224.0.0.18"      # a link-local group, as routing protocols (VRRP here) use
# Copies may trail the ping: a hub that reads multicast from NFLOG with the kernel's
# defaults gets it in batches flushed once a second.
COPIES_WITHIN = 2.0         # s after the ping ends


@pytest.mark.feature("multicast", role="hub")
@pytest.mark.spec("dmvpn-phase1", "multicast", "MUST")
def test_hub_replicates_multicast_to_registered_spokes(lab, capture) -> None:
    """Multicast the hub sends into the tunnel reaches every registered spoke as a
    unicast GRE copy to its NBMA address (`map multicast dynamic`): how routing
    protocols run over a DMVPN."""
    lab.node("hub1").run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-I", "gre1", "-t", "1", GROUP],
                         check=False)
    copy = {"direction": "in", "data": f"icmp type 8 {tunnel(lab, 'hub1')}>{GROUP}"}
    wait_quietly("3 multicast copies at every spoke", lambda: all(
        len(capture.timeline(stop=False).where(node=s.name, **copy)) >= 3 for s in lab.topo.spokes), COPIES_WITHIN)
    tl = capture.timeline()
    for spoke in lab.topo.spokes:
        expect_all(tl, f"3 multicast copies delivered to {spoke.name}", at_least=3, node=spoke.name, **copy)


@pytest.mark.feature("multicast", role="hub")
@pytest.mark.spec("dmvpn-phase1", "multicast", "SHOULD")
def test_hub_copies_multicast_as_it_is_sent(lab, capture) -> None:
    """Each copy leaves as its packet is sent, not held for a batch: the copies of probes
    sent 0.5 s apart reach a spoke at least 0.25 s apart, so hellos and advertisements
    over the DMVPN keep their timing."""
    interval = 0.5
    lab.node("hub1").run(["ping", "-n", "-c", "3", "-i", str(interval), "-W", "1", "-I", "gre1", "-t", "1", GROUP],
                         check=False)
    copy = {"direction": "in", "data": f"icmp type 8 {tunnel(lab, 'hub1')}>{GROUP}"}
    wait_quietly("3 multicast copies at every spoke", lambda: all(
        len(capture.timeline(stop=False).where(node=s.name, **copy)) >= 3 for s in lab.topo.spokes), COPIES_WITHIN)
    tl = capture.timeline()
    for spoke in lab.topo.spokes:
        got = expect_all(tl, f"3 multicast copies delivered to {spoke.name}", at_least=3, node=spoke.name, **copy)
        ts = [e.ts for e in got.events]
        gaps = [round(b - a, 3) for a, b in zip(ts, ts[1:])]
        assert min(gaps) >= interval / 2, \
            f"copies at {spoke.name} {gaps} s apart, where their probes were {interval} s apart:\n{got}"
