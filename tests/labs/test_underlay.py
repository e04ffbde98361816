"""The underlay plan (what every backend's nodes get), the topology's link impairment,
and the backend registry (no lab needed; the lab tests run them for real)."""

from __future__ import annotations

from ipaddress import IPv4Interface
from pathlib import Path

import pytest

from dmvpnkit.labs import backend, spec, underlay
from dmvpnkit.labs.impairment import Impairment, ImpairmentError

TOPO = Path(__file__).parents[2] / "topologies"


def test_spoke_plan_has_addresses_route_and_mgre() -> None:
    topo = spec.load(TOPO / "hub_2spoke.yaml")
    steps = underlay.plan(topo, topo.nodes["spoke1"])
    assert underlay.Addr("inet", IPv4Interface("172.16.0.6/30")) in steps
    assert underlay.Mgre("gre1", "inet", 42) in steps
    assert underlay.Addr("gre1", IPv4Interface("10.255.0.11/32")) in steps
    # gre1 exists before its address and its sysctl are set
    assert steps.index(underlay.Mgre("gre1", "inet", 42)) < steps.index(
        underlay.Sysctl("net/ipv4/conf/gre1/send_redirects", "0"))
    assert underlay.Sysctl("net/ipv4/ip_forward", "1") in steps


@pytest.mark.parametrize("name", ["hub1", "spoke1", "spoke1_h", "inet"])
def test_ipv4_lab_turns_ipv6_off_on_each_interface_before_it_is_up(name: str) -> None:
    topo = spec.load(TOPO / "hub_2spoke.yaml")
    steps = underlay.plan(topo, topo.nodes[name])
    ups = [s for s in steps if isinstance(s, underlay.Up) and s.ifname != "lo"]
    assert ups
    for up in ups:
        off = underlay.Ipv6(up.ifname, False)
        assert off in steps and steps.index(off) < steps.index(up), (up, steps)
    assert f"sysctl -qw net.ipv6.conf.{ups[0].ifname}.disable_ipv6=1" in underlay.commands(steps)


def test_a_dual_stack_overlay_adds_the_ipv6_twins() -> None:
    topo = spec.load(TOPO / "hub_2spoke.yaml", {"ipv6": "true"})
    spoke = underlay.commands(underlay.plan(topo, topo.nodes["spoke1"]))
    assert "sysctl -qw net.ipv6.conf.all.forwarding=1" in spoke
    assert "ip addr add fd00:255::11/128 dev gre1 nodad" in spoke
    assert "ip addr add fd00:10:0:101::1/64 dev spoke1_h nodad" in spoke
    order = [spoke.index(c) for c in ("ip link add gre1 type gre key 42 ttl 64 dev inet",
                                      "sysctl -qw net.ipv6.conf.gre1.addr_gen_mode=1",
                                      "sysctl -qw net.ipv6.conf.gre1.disable_ipv6=0",
                                      "ip addr add fd00:255::11/128 dev gre1 nodad")]
    assert order == sorted(order)
    host = underlay.commands(underlay.plan(topo, topo.nodes["spoke1_h"]))
    assert "ip -6 route replace default via fd00:10:0:101::1" in host
    assert "sysctl -qw net.ipv6.conf.all.forwarding=0" in host
    only4 = spec.load(TOPO / "hub_2spoke.yaml")
    v4 = underlay.commands(underlay.plan(only4, only4.nodes["spoke1"]))
    assert "sysctl -qw net.ipv6.conf.gre1.disable_ipv6=0" in spoke
    assert not [c for c in v4 if "fd00" in c or "ipv6.conf.all" in c or "disable_ipv6=0" in c]


def test_lan_host_forwards_nothing_and_has_no_tunnel() -> None:
    topo = spec.load(TOPO / "hub_2spoke.yaml")
    steps = underlay.plan(topo, topo.nodes["spoke1_h"])
    assert underlay.Sysctl("net/ipv4/ip_forward", "0") in steps
    assert not [s for s in steps if isinstance(s, underlay.Mgre)]


def test_nat_box_masquerades_on_its_public_side() -> None:
    topo = spec.load(TOPO / "spoke_nat.yaml")
    cmds = underlay.commands(underlay.plan(topo, topo.nodes["nat1"]))
    assert "iptables -t nat -A POSTROUTING -o inet -j MASQUERADE" in cmds


def test_commands_say_what_the_plan_does() -> None:
    topo = spec.load(TOPO / "hub_2spoke.yaml")
    cmds = underlay.commands(underlay.plan(topo, topo.nodes["hub1"]))
    assert cmds[:1] == ["sysctl -qw net.ipv4.ip_forward=1"]
    assert "ip link add gre1 type gre key 42 ttl 64 dev inet" in cmds
    assert "ip addr add 10.255.0.1/32 dev gre1" in cmds
    assert "ip route replace default via 172.16.0.1" in cmds
    assert cmds.index("ip link add gre1 type gre key 42 ttl 64 dev inet") < cmds.index("ip link set gre1 up")


def test_topology_impairment_lands_on_the_uplink_ends() -> None:
    topo = spec.loads("""
name: t
hubs: {hub1: {}}
spokes:
  spoke1: {impair: {delay: 75, loss: 1}}
  spoke2: {impair: {loss: 30, direction: in}}
""")
    up1, up2 = topo.link("spoke1", "inet"), topo.link("spoke2", "inet")
    assert up1.impair == {"spoke1": Impairment(delay=75, loss=1), "inet": Impairment(delay=75, loss=1)}
    assert up2.impair == {"inet": Impairment(loss=30)}      # what is sent to spoke2 only
    assert topo.link("hub1", "inet").impair == {}


@pytest.mark.parametrize("doc, where", [
    ("{delay: -1}", "spokes.spoke1.impair"),
    ("{loss: 130}", "spokes.spoke1.impair"),
    ("{jitter: 5}", "spokes.spoke1.impair"),
    ("{latency: 5}", "spokes.spoke1.impair.latency"),
    ("{delay: 5, direction: up}", "spokes.spoke1.impair.direction"),
])
def test_bad_impairment_names_the_key(doc: str, where: str) -> None:
    with pytest.raises(spec.SpecError) as e:
        spec.loads(f"name: t\nhubs: {{hub1: {{}}}}\nspokes:\n  spoke1: {{impair: {doc}}}\n")
    assert [i.path for i in e.value.issues] == [where], e.value


def test_impairment_checks_its_own_values() -> None:
    with pytest.raises(ImpairmentError, match="loss must be a percentage"):
        Impairment(loss=101)
    assert Impairment(delay=75, jitter=5, loss=30, rate=1000).describe() == \
        "delay 75 ms, jitter 5 ms, loss 30 %, rate 1000 kbit/s"
    assert Impairment().none and not Impairment(rate=1).none


def test_backends_are_found_by_entry_point() -> None:
    assert {"netns", "mininet", "clab"} <= set(backend.names())
    for name in ("netns", "mininet"):
        cls = backend.get(name)
        assert cls.name == name and cls.in_lab_kernel
    with pytest.raises(backend.BackendError, match="no lab backend 'nope'.*installed: clab, mininet, netns"):
        backend.get("nope")


def test_rules_go_in_one_iptables_restore(tmp_path) -> None:
    calls = []

    class Node:
        def run(self, argv, **kw):
            calls.append((list(argv), Path(argv[-1]).read_text()))

    underlay.add_rules(Node(), [["-A", "FORWARD", "-i", "gre1", "-j", "NFLOG", "--nflog-group", "1"],
                                ("-t", "nat", "-A", "POSTROUTING", "-o", "pub", "-j", "MASQUERADE"),
                                ["-A", "OUTPUT", "-d", "224.0.0.0/4", "-j", "DROP"]], tmp_path)
    assert [argv for argv, _ in calls] == [["iptables-legacy-restore", "--noflush", str(tmp_path / "iptables.rules")]]
    assert calls[0][1] == ("*filter\n-A FORWARD -i gre1 -j NFLOG --nflog-group 1\n-A OUTPUT -d 224.0.0.0/4 -j DROP\n"
                           "COMMIT\n*nat\n-A POSTROUTING -o pub -j MASQUERADE\nCOMMIT\n")
