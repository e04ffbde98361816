"""DMVPN phase 2: a spoke resolves the far spoke its route points at, then goes direct."""

from __future__ import annotations

import pytest

from ..conftest import seen
from ..wire import show

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(2)]


@pytest.mark.spec("dmvpn-phase2", "next-hop-resolution", "MUST")
def test_spoke_resolves_its_route_next_hop(lab, capture) -> None:
    """In phase 2 the route to the far spoke's LAN keeps the far spoke as next hop; the
    spoke resolves that next hop with a Resolution Request and sends data directly."""
    out = lab.net.run("spoke1_h", ["ping", "-n", "-c", "10", "-i", "0.3", "10.1.2.10"], check=False).stdout
    fs = seen(capture)
    reqs = [f for f in fs if f.nhrp and f.nhrp.op == "resolution-request" and f.node == "spoke1"
            and f.nhrp.dst_proto == "10.255.0.12"]
    assert reqs, (f"spoke1 never resolved its next hop 10.255.0.12; ping said:\n{out}\n"
                  f"captured:\n{show(fs)}")
    direct = [f for f in fs if f.node == "spoke2" and f.data.startswith("icmp type 8")
              and f.src == str(lab.topo.nodes["spoke1"].nbma)]
    assert direct, f"no data went spoke to spoke:\n{show(fs)}"
