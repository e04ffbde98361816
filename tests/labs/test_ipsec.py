"""strongSwan configs rendered from topologies, the `ipsec:` section, the SA view
(no lab needed; the lab runs them in conformance/ipsec and tests/fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmvpnkit.labs import spec
from dmvpnkit.labs.ipsec import StrongswanDriver
from dmvpnkit.labs.vici import parse_sas
from dmvpnkit.labs.backends.netns import NetnsBackend

TOPO = Path(__file__).parents[2] / "topologies"


def rendered(tmp_path: Path, coupling: str, no_shunt: frozenset[str] = frozenset(), **params: str) -> dict:
    topo = spec.load(TOPO / "hub_2spoke.yaml", params or None)
    drv = StrongswanDriver(NetnsBackend("t", topo, tmp_path), tmp_path, topo.ipsec or spec.Ipsec(),
                           {"hub1": coupling, "spoke1": coupling, "spoke2": coupling}, no_shunt)
    drv.write_configs()
    return {n: {"swanctl": (tmp_path / "nodes" / n / "ipsec" / "swanctl" / "swanctl.conf").read_text(),
                "strongswan": (tmp_path / "nodes" / n / "ipsec" / "strongswan.conf").read_text()}
            for n in ("hub1", "spoke1", "spoke2")}


def test_trap_coupling_traps_gre_to_any_address(tmp_path: Path) -> None:
    conf = rendered(tmp_path, "trap")["spoke1"]["swanctl"]
    assert "remote_addrs = %any" in conf and "start_action = trap" in conf
    assert "mode = transport" in conf and "local_ts = dynamic[gre]" in conf
    assert "id = 10.255.0.11" in conf           # IKE identity = the tunnel address
    assert "gre-drop" not in conf


def test_vici_coupling_answers_only_and_drops_gre_without_sa(tmp_path: Path) -> None:
    confs = rendered(tmp_path, "vici", no_shunt=frozenset({"spoke2"}))
    spoke1 = confs["spoke1"]["swanctl"]
    gre_child = spoke1.split("children {", 1)[1].split("}", 1)[0]
    assert "start_action" not in gre_child, gre_child      # the NHRP daemon initiates
    assert "mode = drop" in spoke1 and "0.0.0.0/0[gre]" in spoke1
    assert "gre-drop" not in confs["spoke2"]["swanctl"]    # the fault switch's node


def test_every_node_has_its_own_socket_and_log(tmp_path: Path) -> None:
    confs = rendered(tmp_path, "trap")
    for node, c in confs.items():
        assert f"nodes/{node}/ipsec/charon.log" in c["strongswan"]
        assert "unix:///run/charon.vici" in c["strongswan"]  # /run is the node's own directory
        assert "kdf" in c["strongswan"].split("load =", 1)[1].splitlines()[0]


def test_wrong_psk_parameter_gives_one_node_another_key(tmp_path: Path) -> None:
    confs = rendered(tmp_path, "trap", wrong_psk="spoke2")
    keys = {n: c["swanctl"].split('secret = "', 1)[1].split('"', 1)[0] for n, c in confs.items()}
    assert keys["hub1"] == keys["spoke1"] != keys["spoke2"]


def test_ipsec_section_errors_name_the_key() -> None:
    bad = """
name: t
hubs: {hub1: {}}
spokes: {spoke1: {nhs: [hub1]}}
ipsec:
  psk: ''
  ike: x
  nodes: {spoke9: {psk: a}}
"""
    with pytest.raises(spec.SpecError) as e:
        spec.loads(bad)
    msg = str(e.value)
    assert "ipsec.psk" in msg and "ipsec.ike" in msg and "ipsec.nodes.spoke9" in msg


def test_list_sas_is_normalised() -> None:
    listing = [{"dmvpn": {
        "uniqueid": b"2", "state": b"ESTABLISHED", "local-host": b"172.16.0.6", "remote-host": b"172.16.0.10",
        "remote-id": b"10.255.0.12", "initiator": b"yes", "nat-any": b"no",
        "child-sas": {"gre-3": {"name": b"gre", "state": b"INSTALLED", "mode": b"TRANSPORT", "protocol": b"ESP",
                                "spi-in": b"c34602a4", "spi-out": b"c19cf286",
                                "local-ts": [b"172.16.0.6/32[gre]"], "remote-ts": [b"172.16.0.10/32[gre]"]}}}}]
    (sa,) = parse_sas(listing)
    assert (sa.name, sa.uniqueid, sa.state, sa.remote_host, sa.remote_id, sa.initiator, sa.nat_any, sa.up) == \
        ("dmvpn", "2", "ESTABLISHED", "172.16.0.10", "10.255.0.12", True, False, True)
    (child,) = sa.children
    assert (child.mode, child.protocol, child.encap, child.remote_ts) == \
        ("TRANSPORT", "ESP", False, ("172.16.0.10/32[gre]",))


def test_certificates_name_the_tunnel_address(tmp_path: Path) -> None:
    """`auth: cert`: pki makes a lab CA and a certificate per node whose subjectAltName is
    the node's IKE identity; the node with other credentials gets a rogue CA's."""
    from ipaddress import IPv4Address

    from cryptography import x509
    topo = spec.load(TOPO / "hub_2spoke.yaml", {"wrong_psk": "spoke2"})
    sa = spec.Ipsec(auth="cert", node_psk=topo.ipsec.node_psk)
    drv = StrongswanDriver(NetnsBackend("t", topo, tmp_path), tmp_path, sa,
                           {"hub1": "trap", "spoke1": "vici", "spoke2": "vici"})
    drv.write_configs()
    for node, ca in (("hub1", "lab CA"), ("spoke1", "lab CA"), ("spoke2", "rogue CA")):
        sw = tmp_path / "nodes" / node / "ipsec" / "swanctl"
        cert = x509.load_pem_x509_certificate((sw / "x509" / f"{node}.pem").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [IPv4Address(str(topo.nodes[node].tunnel))]
        assert ca in cert.issuer.rfc4514_string(), cert.issuer
        assert (sw / "private" / f"{node}.pem").exists() and (sw / "x509ca" / "lab.pem").exists()
        conf = (sw / "swanctl.conf").read_text()
        assert f"certs = {node}.pem" in conf and "auth = pubkey" in conf and "secrets" not in conf
