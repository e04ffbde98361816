"""FRR configs rendered from topologies, per phase and role (no lab needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmvpnkit.labs import spec
from dmvpnkit.labs.implementations import frr
from dmvpnkit.labs.implementations import nhrpd as nhrpd_driver
from dmvpnkit.labs.implementations.view import view

TOPO = Path(__file__).parents[2] / "topologies"


def lines(text: str) -> set[str]:
    return {ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("!")}


def sections(text: str) -> dict[int, str]:
    """Line number (1-based) -> the daemon whose section of frr.conf it is in (`! zebra` ...)."""
    owner, out = "", {}
    for i, ln in enumerate(text.splitlines(), 1):
        word = ln[2:].split(":")[0].strip() if ln.startswith("! ") else ""
        owner = word if word in frr.DAEMONS + sum(frr.ROUTING_DAEMONS.values(), ()) else owner
        out[i] = owner
    return out


@pytest.fixture(scope="module")
def hub2() -> spec.Topology:
    return spec.load(TOPO / "hub_2spoke.yaml")


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_hub(hub2: spec.Topology, phase: int) -> None:
    conf = frr.render(view(hub2, hub2.nodes["hub1"], phase))
    nhrp = lines(conf)
    assert {"interface gre1", "ip nhrp network-id 1", "ip nhrp holdtime 60", "ip nhrp map multicast dynamic",
            "tunnel source inet", "nhrp nflog-group 1"} <= nhrp
    assert ("ip nhrp redirect" in nhrp) == (phase == 3)
    assert not any("nhs" in ln for ln in nhrp)
    assert nhrp >= {"ip route 10.1.1.0/24 10.255.0.11", "ip route 10.1.2.0/24 10.255.0.12", "ip forwarding"}


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_spoke(hub2: spec.Topology, phase: int) -> None:
    conf = frr.render(view(hub2, hub2.nodes["spoke1"], phase))
    nhrp = static = lines(conf)
    assert {"ip nhrp nhs dynamic nbma 172.16.0.2", "ip nhrp registration no-unique"} <= nhrp
    assert ("ip nhrp shortcut" in nhrp) == (phase >= 2)
    assert "ip nhrp redirect" not in nhrp
    assert "ip route 10.0.0.0/12 10.255.0.1" in static      # summary via the hub, every phase
    far = "ip route 10.1.2.0/24 10.255.0.12 gre1 onlink"
    assert (far in static) == (phase == 2)
    assert not any("10.1.1.0/24" in ln for ln in static)        # never a route to its own LAN


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_dual_stack_adds_the_ipv6_side(phase: int) -> None:
    topo = spec.load(TOPO / "hub_2spoke.yaml", {"ipv6": "true"})
    hub, spoke = (lines(frr.render(view(topo, topo.nodes[n], phase))) for n in ("hub1", "spoke1"))
    assert {"ipv6 forwarding", "ipv6 nhrp network-id 1", "ipv6 nhrp holdtime 60", "ipv6 nhrp map multicast dynamic",
            "ipv6 route fd00:10:0:101::/64 fd00:255::11", "ipv6 route fd00:10:0:102::/64 fd00:255::12"} <= hub
    assert ("ipv6 nhrp redirect" in hub) == (phase == 3)
    assert {"ipv6 nhrp nhs dynamic nbma 172.16.0.2", "ipv6 nhrp registration no-unique",
            "ipv6 route fd00:10::/48 fd00:255::1", "ipv6 route fd00:255::/64 fd00:255::1"} <= spoke
    assert ("ipv6 nhrp shortcut" in spoke) == (phase >= 2)
    assert ("ipv6 route fd00:10:0:102::/64 fd00:255::12" in spoke) == (phase == 2)
    assert not [ln for ln in lines(frr.render(view(TOPO_V4, TOPO_V4.nodes["hub1"], phase))) if "ipv6" in ln]


TOPO_V4 = spec.load(TOPO / "hub_2spoke.yaml")


def test_dual_hub_prefers_the_first_nhs() -> None:
    topo = spec.load(TOPO / "dual_hub.yaml")
    conf = frr.render(view(topo, topo.nodes["spoke1"], 3))
    assert lines(conf) >= {"ip nhrp nhs dynamic nbma 172.16.0.2", "ip nhrp nhs dynamic nbma 172.16.0.6",
                           "ip route 10.0.0.0/12 10.255.0.1", "ip route 10.0.0.0/12 10.255.0.2 11"}


def test_nat_spoke_sources_gre_from_its_private_side() -> None:
    topo = spec.load(TOPO / "spoke_nat.yaml")
    assert "tunnel source nat1" in lines(frr.render(view(topo, topo.nodes["spoke2"], 3)))


@pytest.fixture(scope="module")
def bgp2() -> spec.Topology:
    return spec.load(TOPO / "hub_2spoke.yaml", {"routing": "bgp"})


@pytest.mark.parametrize("phase", [1, 3])
def test_bgp_hub_reflects_and_phase_3_summarises(bgp2: spec.Topology, phase: int) -> None:
    conf = lines(frr.render(view(bgp2, bgp2.nodes["hub1"], phase)))
    assert {"router bgp 65000", "neighbor SPOKES peer-group", "bgp listen range 10.255.0.0/16 peer-group SPOKES",
            "neighbor SPOKES route-reflector-client", "neighbor SPOKES next-hop-self force",
            "network 10.0.0.0/24"} <= conf
    assert ("aggregate-address 10.0.0.0/12 summary-only" in conf) is (phase == 3)
    assert not any(ln.startswith("ip route 10.1.") for ln in conf)      # the spokes' LANs come from BGP
    mutated = lines(frr.render(view(bgp2, bgp2.nodes["hub1"], phase),
                               {"bgp_summary_only": "no", "bgp_next_hop_self": "no"}))
    assert "neighbor SPOKES next-hop-self force" not in mutated
    assert ("aggregate-address 10.0.0.0/12" in mutated) is (phase == 3)


def test_bgp_spoke_peers_with_its_nhs_and_announces_its_lan(bgp2: spec.Topology) -> None:
    conf = lines(frr.render(view(bgp2, bgp2.nodes["spoke1"], 3)))
    assert {"router bgp 65000", "neighbor 10.255.0.1 remote-as 65000", "neighbor 10.255.0.1 activate",
            "network 10.1.1.0/24", "ip route 10.255.0.0/16 10.255.0.1", "ip nhrp shortcut"} <= conf
    assert not any(ln.startswith("ip route 10.0.0.0/12") for ln in conf)     # the summary comes from BGP
    assert "router bgp 65000" not in lines(frr.render(view(spec.load(TOPO / "hub_2spoke.yaml"),
                                                            bgp2.nodes["spoke1"], 3)))


def test_bgp_phase_2_keeps_the_far_spoke_as_next_hop_on_link(bgp2: spec.Topology) -> None:
    """Phase 2: the hub reflects unchanged (no next-hop-self), and a spoke has the whole
    tunnel prefix on-link, so zebra resolves a far spoke's next hop on the tunnel, not via
    the hub; `bgp_next_hop_self=yes` is the mutation that breaks it."""
    hub = lines(frr.render(view(bgp2, bgp2.nodes["hub1"], 2)))
    assert {"neighbor SPOKES route-reflector-client", "network 10.0.0.0/24"} <= hub
    assert "neighbor SPOKES next-hop-self force" not in hub
    assert not any(ln.startswith("aggregate-address") for ln in hub)
    mutated = lines(frr.render(view(bgp2, bgp2.nodes["hub1"], 2), {"bgp_next_hop_self": "yes"}))
    assert "neighbor SPOKES next-hop-self force" in mutated
    v = view(bgp2, bgp2.nodes["spoke1"], 2)
    spoke = lines(frr.render(v))
    assert "ip route 10.255.0.0/16 gre1" in spoke
    assert not any(ln.startswith("ip route 10.255.0.0/16 10.") for ln in spoke)
    assert nhrpd_driver.link_routes(v) == ["10.255.0.0/16"]
    assert nhrpd_driver.static_routes(v) == []


@pytest.fixture(scope="module")
def ospf2() -> spec.Topology:
    return spec.load(TOPO / "hub_2spoke.yaml", {"routing": "ospf"})


@pytest.mark.parametrize("phase", [1, 3])
def test_ospf_hub_is_point_to_multipoint_and_spokes_point_to_point(ospf2: spec.Topology, phase: int) -> None:
    hub, spoke = (frr.render(view(ospf2, ospf2.nodes[n], phase)) for n in ("hub1", "spoke1"))
    assert {"router ospf", "ospf router-id 10.255.0.1", "ip ospf network point-to-multipoint",
            "network 10.255.0.0/16 area 0", "network 10.0.0.0/24 area 0", "no passive-interface gre1",
            "ip ospf hello-interval 1", "ip ospf dead-interval 10",
            "ip nhrp map multicast dynamic", "nhrp multicast-nflog-group 2"} <= lines(hub)
    # A spoke's hellos are multicast too: nhrpd sends them to its NHS.
    assert {"ip ospf network point-to-point dmvpn", "ip nhrp map multicast 172.16.0.2", "network 10.1.1.0/24 area 0",
            "nhrp multicast-nflog-group 2"} <= lines(spoke)
    assert not any(ln.startswith(("ip route 10.1.", "ip route 10.0.0.0/12")) for ln in lines(spoke))
    assert not any(ln.startswith("distance") for ln in lines(spoke))
    assert "distance 5" in lines(frr.render(view(ospf2, ospf2.nodes["spoke1"], phase), {"ospf_distance": "5"}))
    spoke_rules = frr.node_rules(view(ospf2, ospf2.nodes["spoke1"], phase))
    assert spoke_rules == frr.MCAST_RULES
    assert frr.node_rules(view(spec.load(TOPO / "hub_2spoke.yaml"), ospf2.nodes["spoke1"], phase)) == []


def test_ospf_spoke_of_two_hubs_is_point_to_multipoint() -> None:
    topo = spec.load(TOPO / "dual_hub.yaml", {"routing": "ospf"})
    conf = lines(frr.render(view(topo, topo.nodes["spoke1"], 3)))
    assert {"ip ospf network point-to-multipoint", "ip nhrp map multicast 172.16.0.2",
            "ip nhrp map multicast 172.16.0.6"} <= conf


def test_ospf_phase_2_is_one_broadcast_network_with_the_hub_its_dr(ospf2: spec.Topology) -> None:
    """Phase 2: broadcast, the hub priority 255 and every spoke 0 (never DR); the tunnel is
    one subnet (nhrpd's driver gives the tunnel address the tunnel prefix's length), so no
    route to the tunnel prefix; `ospf_network=point-to-multipoint` is the mutation."""
    hub, spoke = (view(ospf2, ospf2.nodes[n], 2) for n in ("hub1", "spoke1"))
    assert hub.subnet and spoke.subnet and not view(ospf2, ospf2.nodes["spoke1"], 3).subnet
    assert {"ip ospf network broadcast", "ip ospf priority 255"} <= lines(frr.render(hub))
    conf = lines(frr.render(spoke))
    assert {"ip ospf network broadcast", "ip ospf priority 0", "network 10.1.1.0/24 area 0"} <= conf
    assert not any(ln.startswith("ip route 10.") for ln in conf)
    assert nhrpd_driver.tunnel_address(spoke) == ("10.255.0.11", 16)
    assert nhrpd_driver.tunnel_address(view(ospf2, ospf2.nodes["spoke1"], 3)) is None
    assert nhrpd_driver.link_routes(spoke) == nhrpd_driver.static_routes(spoke) == []
    mutated = lines(frr.render(spoke, {"ospf_network": "point-to-multipoint"}))
    assert "ip ospf network point-to-multipoint" in mutated and "ip ospf priority 0" not in mutated


def test_an_unknown_routing_names_the_key() -> None:
    with pytest.raises(spec.SpecError, match="dmvpn.routing"):
        spec.load(TOPO / "hub_2spoke.yaml", {"routing": "eigrp"})


def test_every_daemon_accepts_its_own_section(hub2: spec.Topology) -> None:
    """Each daemon reads the whole frr.conf: it may refuse the other daemons' lines,
    never one of its own section."""
    if not (frr.FRR_LIB / "nhrpd").exists():
        pytest.skip("FRR is not installed")
    import shutil
    import tempfile
    # FRR drops to user frr before reading its config: pytest's tmp_path (0700) would
    # make it read nothing and still exit 0.
    d = Path(tempfile.mkdtemp(prefix="dk-render-"))
    d.chmod(0o755)
    try:
        check_sections(d, hub2)
    finally:
        shutil.rmtree(d)


def check_sections(d: Path, hub2: spec.Topology) -> None:
    import re
    import subprocess
    bgp = spec.load(TOPO / "hub_2spoke.yaml", {"routing": "bgp"})
    ospf = spec.load(TOPO / "hub_2spoke.yaml", {"routing": "ospf"})
    dual = spec.load(TOPO / "hub_2spoke.yaml", {"ipv6": "true"})
    for topo, phase in ((hub2, 1), (hub2, 2), (hub2, 3), (bgp, 1), (bgp, 3), (ospf, 1), (ospf, 3), (dual, 2),
                        (dual, 3)):
        for node in ("hub1", "spoke1"):
            text = frr.render(view(topo, topo.nodes[node], phase))
            f = d / f"{node}{phase}{topo.dmvpn.routing}{'6' if topo.dmvpn.tunnel_prefix6 else ''}.conf"
            f.write_text(text)
            f.chmod(0o644)
            owner = sections(text)
            on = frr.daemons(topo.dmvpn.routing)
            assert set(owner.values()) >= set(on), owner
            for daemon in on:
                p = subprocess.run([str(frr.FRR_LIB / daemon), "-C", "-f", str(f)], capture_output=True, text=True)
                refused = [int(n) for n in re.findall(r"on config line (\d+)", p.stdout + p.stderr)]
                own = [n for n in refused if owner[n] == daemon]
                assert "failed to open" not in p.stderr, p.stderr
                assert p.returncode == 0 and refused and not own, (daemon, node, phase, own, p.stdout, p.stderr)


@pytest.mark.parametrize("routing", ["bgp", "ospf"])
def test_nhrpd_under_a_routing_protocol(routing: str) -> None:
    """nhrpd beside FRR's zebra: it follows the routes they install, hubs route the tunnel
    prefix on-link and spokes their NHSs; OSPF's hellos make a spoke copy multicast."""
    from dmvpnkit.labs.implementations import nhrpd
    topo = spec.load(TOPO / "hub_2spoke.yaml", {"routing": routing})
    hub, spoke = (view(topo, topo.nodes[n], 3) for n in ("hub1", "spoke1"))
    assert "--learn-routes" in nhrpd.argv(spoke, "python", "c", "s", "l")
    assert (nhrpd.link_routes(hub), nhrpd.link_routes(spoke)) == (["10.255.0.0/16"], ["10.255.0.1/32"])
    assert nhrpd.render(hub)["multicast"] and nhrpd.render(spoke)["multicast"] is (routing == "ospf")
    static = spec.load(TOPO / "hub_2spoke.yaml")
    plain = view(static, static.nodes["spoke1"], 3)
    assert "--learn-routes" not in nhrpd.argv(plain, "python", "c", "s", "l") and nhrpd.link_routes(plain) == []


def test_nhrpd_dual_stack_config_has_its_ipv6_side() -> None:
    from dmvpnkit.nhrpd.config import Config
    topo = spec.load(TOPO / "hub_2spoke.yaml", {"ipv6": "true"})
    hub = Config.from_dict(nhrpd_driver.render(view(topo, topo.nodes["hub1"], 3))).ipv6
    spoke = Config.from_dict(nhrpd_driver.render(view(topo, topo.nodes["spoke1"], 3))).ipv6
    assert hub is not None and spoke is not None
    assert (hub.protocol_address, [(str(r.prefix), r.via) for r in hub.routes]) == (
        "fd00:255::1", [("fd00:10:0:101::/64", "fd00:255::11"), ("fd00:10:0:102::/64", "fd00:255::12")])
    assert (spoke.protocol_address, spoke.nhs[0].protocol, spoke.nhs[0].nbma) == ("fd00:255::11", "fd00:255::1",
                                                                                 "172.16.0.2")
    routes = nhrpd_driver.static_routes(view(topo, topo.nodes["spoke1"], 3))
    assert ("fd00:10::/48", "fd00:255::1", 20) in routes and ("10.0.0.0/12", "10.255.0.1", 20) in routes
    assert "ipv6" not in nhrpd_driver.render(view(TOPO_V4, TOPO_V4.nodes["spoke1"], 3))
