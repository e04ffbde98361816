"""A spoke behind NAT: registration through the NAT box, the hub's binding, shortcuts."""

from __future__ import annotations

import pytest

from ..conftest import seen
from ..wire import frames, show

pytestmark = [pytest.mark.topology("spoke_nat"), pytest.mark.phases(3)]


def nat_public(lab) -> str:
    nat = lab.topo.nodes["nat1"]
    return str(nat.iface(nat.public_iface).address.ip)


@pytest.mark.spec("dmvpn-phase3", "nat", "MUST")
def test_registration_crosses_the_nat(lab) -> None:
    """The hub receives spoke2's Registration Request from the NAT box's public address and
    answers it there (NAT-Traversal of DMVPN)."""
    lab.bringup.stop()
    fs = frames(lab.bringup.dir)
    reqs = [f for f in fs if f.nhrp and f.nhrp.op == "registration-request" and f.node == "hub1"
            and f.nhrp.src_proto == str(lab.topo.nodes["spoke2"].tunnel)]
    assert reqs and {f.src for f in reqs} == {nat_public(lab)}, show(fs)
    assert any(f.nhrp and f.nhrp.op == "registration-reply" and f.node == "hub1" and f.dst == nat_public(lab)
               for f in fs), show(fs)


@pytest.mark.spec("dmvpn-phase3", "nat", "MUST")
def test_hub_binds_the_post_nat_address(lab) -> None:
    """The hub maps spoke2's tunnel address to the address it can reach: the NAT's public
    address, not the private one spoke2 claims."""
    entry = next((e for e in lab.driver.cache("hub1") if e.protocol == str(lab.topo.nodes["spoke2"].tunnel)), None)
    assert entry is not None, lab.driver.cache("hub1")
    assert entry.nbma == nat_public(lab), entry
    assert entry.claimed_nbma == str(lab.topo.nodes["spoke2"].nbma), entry


@pytest.mark.spec("dmvpn-phase3", "nat", "SHOULD")
def test_shortcut_to_a_natted_spoke_carries_traffic(lab, capture) -> None:
    """A shortcut from a public spoke to a spoke behind NAT uses the NAT's public address
    and carries traffic without loss once installed."""
    lab.net.run("spoke1_h", ["ping", "-n", "-c", "5", "-i", "0.5", "10.1.2.10"], check=False)
    later = lab.net.run("spoke1_h", ["ping", "-n", "-c", "10", "-i", "0.1", "10.1.2.10"], check=False).stdout
    fs = seen(capture)
    assert " 0% packet loss" in later, f"{later}\n{show(fs)}"
    direct = [f for f in fs if f.node == "spoke1" and f.data.startswith("icmp type 8") and f.dst == nat_public(lab)]
    assert direct, f"no data sent from spoke1 straight to the NAT's public address:\n{show(fs)}"
