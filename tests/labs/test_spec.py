"""Topology specs: shipped files load, bad files fail with every error and its path."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path

import pytest

from dmvpnkit.labs import spec

TOPOLOGIES = Path(__file__).parents[2] / "topologies"


@pytest.mark.parametrize("path", sorted(TOPOLOGIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_topologies_load(path: Path) -> None:
    topo = spec.load(path)
    assert topo.hubs and topo.spokes
    for s in topo.spokes:
        assert s.nhs and all(h in topo.nodes for h in s.nhs)
        assert s.tunnel in topo.dmvpn.tunnel_prefix
    addrs = [i.address.ip for n in topo.nodes.values() for i in n.ifaces]
    assert len(addrs) == len(set(addrs)), "auto-assignment produced a duplicate address"


def test_hub_nspoke_takes_the_spoke_count() -> None:
    topo = spec.load(TOPOLOGIES / "hub_nspoke.yaml", {"spokes": "20"})
    assert len(topo.spokes) == 20
    assert topo.params == {"spokes": 20, "lan_hosts": True, "routing": "static"}
    assert len({s.lan for s in topo.spokes}) == 20
    assert spec.load(TOPOLOGIES / "hub_nspoke.yaml", {"spokes": "3", "lan_hosts": "false"}).lan_host("spoke1") is None


def test_nat_spoke_sits_behind_its_nat_box() -> None:
    topo = spec.load(TOPOLOGIES / "two_spokes_one_nat.yaml")
    nat = topo.nodes["nat1"]
    assert topo.nodes["spoke2"].nbma_iface == "nat1"
    assert topo.nodes["spoke2"].nbma in IPv4Network("192.168.0.0/16")
    assert nat.public_iface == "inet" and {i.peer for i in nat.ifaces} == {"inet", "spoke2", "spoke3"}


def test_explicit_addresses_are_kept() -> None:
    topo = spec.loads("""
name: x
hubs: {hub1: {nbma: 198.51.100.2/30, tunnel: 10.255.0.1, lan: 10.0.0.0/24}}
spokes: {spoke1: {}}
""")
    hub = topo.nodes["hub1"]
    assert hub.nbma == IPv4Address("198.51.100.2") and hub.gateway == IPv4Address("198.51.100.1")
    assert hub.tunnel == IPv4Address("10.255.0.1")
    assert topo.nodes["spoke1"].lan != hub.lan


BAD = """
name: bad
dmvpn: {holdtime: 0, colour: blue}
hubs:
  hub1: {lan: 10.1.1.0/24}
spokes:
  spoke1: {nhs: [hub9], lan: 10.1.1.0/24, tunnel: 10.255.0.1}
  spoke2: {behind: nat7, lan: 10.0.300.0/24}
  Spoke3: {}
"""


def test_every_error_is_reported_at_once_with_its_path() -> None:
    with pytest.raises(spec.SpecError) as ei:
        spec.loads(BAD, source="bad.yaml")
    paths = {i.path for i in ei.value.issues}
    assert {"dmvpn.holdtime", "dmvpn.colour", "spokes.spoke1.nhs[0]", "spokes.spoke2.behind",
            "spokes.spoke2.lan", "spokes.Spoke3", "spokes.spoke1.tunnel", "lan"} <= paths, paths
    text = str(ei.value)
    assert "bad.yaml: spokes.spoke1.nhs[0]: no hub named 'hub9' (hint: hubs: hub1)" in text
    assert "duplicate address 10.255.0.1" in text and "overlap" in text


@pytest.mark.parametrize("text, path, words", [
    ("name: x\nspokes: {spoke1: {}}\n", "hubs", "at least one hub"),
    ("name: x\nhubs: {hub1: {}}\nspokes: {hub1: {}}\n", "spokes.hub1", "already used"),
    ("- a list\n", "<document>", "mapping"),
    ("name: x\nhubs: {hub1: {lan: 10.0.0.0/29}}\n", "hubs.hub1.lan", "too small"),
    ("name: [unclosed\n", "line 2", "invalid YAML"),
    ("name: x\nhubs: {hub1: {}}\nnats: {nat1: {}}\n", "nats.nat1", "nothing behind it"),
    ("name: x\naddressing: {nbma_pool: 172.16.0.0/31}\nhubs: {hub1: {}}\n", "hubs.hub1", "is exhausted"),
])
def test_bad_specs(text: str, path: str, words: str) -> None:
    with pytest.raises(spec.SpecError) as ei:
        spec.loads(text)
    assert any(i.path.startswith(path) and words in i.message for i in ei.value.issues), ei.value.issues


def test_template_parameters_are_checked(tmp_path: Path) -> None:
    with pytest.raises(spec.SpecError, match=r"params.spokez: unknown parameter \(hint: known: lan_hosts, routing, spokes\)"):
        spec.load(TOPOLOGIES / "hub_nspoke.yaml", {"spokez": "3"})
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: plain\nhubs: {hub1: {}}\n")          # no params document
    with pytest.raises(spec.SpecError, match="takes no parameters"):
        spec.load(plain, {"spokes": "3"})
    assert spec.load(TOPOLOGIES / "hub_2spoke.yaml", {"holdtime": "15"}).dmvpn.holdtime == 15
    broken = tmp_path / "t.yaml"
    broken.write_text("params: {n: 1}\n---\nname: {{ m }}\n")
    with pytest.raises(spec.SpecError, match="cannot render.*'m' is undefined"):
        spec.load(broken)
    with pytest.raises(spec.SpecError, match="cannot read"):
        spec.load(tmp_path / "missing.yaml")


def test_peers_get_an_nbma_and_a_tunnel_address_but_no_daemon() -> None:
    topo = spec.load(TOPOLOGIES / "hub_peer.yaml")
    peer = topo.nodes["peer1"]
    assert (peer.role, str(peer.tunnel), peer.is_dmvpn) == ("peer", "10.255.0.101", False)
    assert topo.nbma_names()[str(peer.nbma)] == "peer1"


def test_nbma_names_map_a_nat_to_its_public_address() -> None:
    topo = spec.load(TOPOLOGIES / "spoke_nat.yaml")
    nat = topo.nodes["nat1"]
    names = topo.nbma_names()
    assert names[str(nat.iface(nat.public_iface).address.ip)] == "nat1"
    assert names[str(topo.nodes["spoke2"].nbma)] == "spoke2"


def test_a_dual_stack_overlay_numbers_its_ipv6_addresses_as_the_ipv4_ones() -> None:
    topo = spec.load(TOPOLOGIES / "hub_2spoke.yaml", {"ipv6": "true"})
    hub, spoke2 = topo.nodes["hub1"], topo.nodes["spoke2"]
    assert topo.dmvpn.tunnel_prefix6 == IPv6Network("fd00:255::/64")
    assert (hub.tunnel6, spoke2.tunnel6) == (IPv6Address("fd00:255::1"), IPv6Address("fd00:255::12"))
    assert spoke2.lan6 == IPv6Network("fd00:10:0:102::/64") and topo.lan_summary6 == IPv6Network("fd00:10::/48")
    lan = spoke2.iface("spoke2_h")
    assert (lan.address.ip, lan.address6) == (IPv4Address("10.1.2.1"), IPv6Interface("fd00:10:0:102::1/64"))
    assert topo.nodes["spoke2_h"].iface("spoke2").address6 == IPv6Interface("fd00:10:0:102::10/64")
    assert spoke2.iface("inet").address6 is None                # the NBMA stays IPv4
    assert spec.load(TOPOLOGIES / "hub_2spoke.yaml").nodes["spoke2"].tunnel6 is None


@pytest.mark.parametrize(("text", "path", "words"), [
    ("dmvpn: {tunnel_prefix6: fd00:255::/120}", "dmvpn.tunnel_prefix6", "longer than /108"),
    ("dmvpn: {tunnel_prefix6: 10.0.0.0/8}", "dmvpn.tunnel_prefix6", "not an IPv6 prefix"),
    ("dmvpn: {tunnel_prefix6: fd00::/64}\naddressing: {lan6_pool: fd00::/56}", "addressing.lan6_pool",
     "longer than /48"),
    ("dmvpn: {tunnel_prefix6: fd00::/64, routing: bgp}", "dmvpn.tunnel_prefix6", "routed statically only"),
])
def test_bad_ipv6_addressing(text: str, path: str, words: str) -> None:
    with pytest.raises(spec.SpecError) as ei:
        spec.loads(f"name: x\n{text}\nhubs: {{hub1: {{}}}}\nspokes: {{spoke1: {{}}}}\n")
    assert any(i.path == path and words in i.message for i in ei.value.issues), ei.value


def test_dual_stack_lans_in_one_slash_24_are_refused() -> None:
    with pytest.raises(spec.SpecError) as ei:
        spec.loads("name: x\ndmvpn: {tunnel_prefix6: fd00::/64}\nhubs: {hub1: {lan: 10.0.0.0/28}}\n"
                   "spokes: {spoke1: {lan: 10.0.0.16/28}}\n")
    assert any(i.path == "spokes.spoke1.lan" and "share the IPv6 LAN" in i.message for i in ei.value.issues)
