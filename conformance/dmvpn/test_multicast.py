"""Multicast over the DMVPN: the hub replicates it to every registered spoke."""

from __future__ import annotations

from typing import Any

import pytest

from dmvpnkit.capture import Timeline, expect_all

from ..conftest import tunnel, wait_quietly

pytestmark = pytest.mark.topology("hub_2spoke")
GROUP = "224.0.0.18"      # a link-local group, as routing protocols (VRRP here) use
PROBES = 3
# Copies may trail the ping: a hub that reads multicast from NFLOG with the kernel's
# defaults gets it in batches flushed once a second.
COPIES_WITHIN = 2.0         # s after the ping ends


def copies(lab: Any, capture: Any, interval: float) -> dict[str, Timeline]:
    """hub1 pings GROUP out of the tunnel PROBES times, `interval` s apart: per spoke,
    the copies that reached it."""
    lab.node("hub1").run(["ping", "-n", "-c", str(PROBES), "-i", str(interval), "-W", "1", "-I", "gre1", "-t", "1",
                          GROUP], check=False)
    copy = {"direction": "in", "data": f"icmp type 8 {tunnel(lab, 'hub1')}>{GROUP}"}
    wait_quietly(f"{PROBES} multicast copies at every spoke", lambda: all(
        len(capture.timeline(stop=False).where(node=s.name, **copy)) >= PROBES for s in lab.topo.spokes),
        COPIES_WITHIN)
    tl = capture.timeline()
    return {s.name: expect_all(tl, f"{PROBES} multicast copies delivered to {s.name}", at_least=PROBES,
                               node=s.name, **copy) for s in lab.topo.spokes}


@pytest.mark.feature("multicast", role="hub")
@pytest.mark.spec("dmvpn-phase1", "multicast", "MUST")
def test_hub_replicates_multicast_to_registered_spokes(lab, capture) -> None:
    """Multicast the hub sends into the tunnel reaches every registered spoke as a
    unicast GRE copy to its NBMA address (`map multicast dynamic`): how routing
    protocols run over a DMVPN."""
    assert set(copies(lab, capture, 0.2)) == {s.name for s in lab.topo.spokes}


@pytest.mark.feature("multicast", role="hub")
@pytest.mark.spec("dmvpn-phase1", "multicast", "SHOULD")
def test_hub_copies_multicast_as_it_is_sent(lab, capture) -> None:
    """Each copy leaves as its packet is sent, not held for a batch: the copies of probes
    sent 0.5 s apart reach a spoke at least 0.25 s apart, so hellos and advertisements
    over the DMVPN keep their timing."""
    interval = 0.5
    for spoke, got in copies(lab, capture, interval).items():
        ts = [e.ts for e in got.events]
        gaps = [round(b - a, 3) for a, b in zip(ts, ts[1:])]
        assert min(gaps) >= interval / 2, \
            f"copies at {spoke} {gaps} s apart, where their probes were {interval} s apart:\n{got}"
