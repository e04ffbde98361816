"""FRR configs rendered from topologies, per phase and role (no lab needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmvpnkit.labs import frr, spec

TOPO = Path(__file__).parents[2] / "topologies"


def lines(text: str) -> set[str]:
    return {ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("!")}


@pytest.fixture(scope="module")
def hub2() -> spec.Topology:
    return spec.load(TOPO / "hub_2spoke.yaml")


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_hub(hub2: spec.Topology, phase: int) -> None:
    conf = frr.render(hub2, hub2.nodes["hub1"], phase)
    nhrp = lines(conf["nhrpd"])
    assert {"interface gre1", "ip nhrp network-id 1", "ip nhrp holdtime 60", "ip nhrp map multicast dynamic",
            "tunnel source inet", "nhrp nflog-group 1"} <= nhrp
    assert ("ip nhrp redirect" in nhrp) == (phase == 3)
    assert not any("nhs" in ln for ln in nhrp)
    assert lines(conf["staticd"]) >= {"ip route 10.1.1.0/24 10.255.0.11", "ip route 10.1.2.0/24 10.255.0.12"}


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_spoke(hub2: spec.Topology, phase: int) -> None:
    conf = frr.render(hub2, hub2.nodes["spoke1"], phase)
    nhrp, static = lines(conf["nhrpd"]), lines(conf["staticd"])
    assert {"ip nhrp nhs dynamic nbma 172.16.0.2", "ip nhrp registration no-unique"} <= nhrp
    assert ("ip nhrp shortcut" in nhrp) == (phase >= 2)
    assert "ip nhrp redirect" not in nhrp
    assert "ip route 10.0.0.0/12 10.255.0.1 1" in static      # summary via the hub, every phase
    far = "ip route 10.1.2.0/24 10.255.0.12 gre1 onlink"
    assert (far in static) == (phase == 2)
    assert not any("10.1.1.0/24" in ln for ln in static)        # never a route to its own LAN


def test_dual_hub_prefers_the_first_nhs() -> None:
    topo = spec.load(TOPO / "dual_hub.yaml")
    conf = frr.render(topo, topo.nodes["spoke1"], 3)
    assert lines(conf["nhrpd"]) >= {"ip nhrp nhs dynamic nbma 172.16.0.2", "ip nhrp nhs dynamic nbma 172.16.0.6"}
    assert lines(conf["staticd"]) >= {"ip route 10.0.0.0/12 10.255.0.1 1", "ip route 10.0.0.0/12 10.255.0.2 11"}


def test_nat_spoke_sources_gre_from_its_private_side() -> None:
    topo = spec.load(TOPO / "spoke_nat.yaml")
    assert "tunnel source nat1" in lines(frr.render(topo, topo.nodes["spoke2"], 3)["nhrpd"])


def test_rendered_configs_pass_nhrpd_syntax_check(tmp_path: Path, hub2: spec.Topology) -> None:
    if not (frr.FRR_LIB / "nhrpd").exists():
        pytest.skip("FRR is not installed")
    import subprocess
    for phase in (1, 2, 3):
        for node in ("hub1", "spoke1"):
            f = tmp_path / f"{node}{phase}.conf"
            f.write_text(frr.render(hub2, hub2.nodes[node], phase)["nhrpd"])
            p = subprocess.run([str(frr.FRR_LIB / "nhrpd"), "-C", "-f", str(f)], capture_output=True, text=True)
            assert p.returncode == 0, (node, phase, p.stdout, p.stderr)
