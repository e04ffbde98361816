"""Differential tests: nhrpd's codec against the scapy-side model, both ways, and
every packet the engine sends in the scenarios read by the model."""

from __future__ import annotations

from hypothesis import given, settings
from scapy.layers.inet import ICMP, IP

from dmvpnkit.nhrp import build
from dmvpnkit.nhrp.layer import NHRPExtAuthentication, NHRPExtNATAddress, NHRPExtResponderAddress
from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.events import Hairpin, NbmaChanged, PacketIn, Resolve, Send, Stop

from .differential import assert_same
from .harness import SPOKES, Net, hub_config, spoke_config
from .strategies import packets


@settings(max_examples=300, deadline=None)
@given(packets())
def test_model_reads_what_we_encode(p: codec.Packet) -> None:
    assert_same(codec.encode(p))


def test_we_read_what_the_scapy_builders_build() -> None:
    ip = IP(src="10.1.1.10", dst="10.1.2.10") / ICMP()
    nat = NHRPExtNATAddress(cies=[build.cie("172.16.0.99", "10.255.0.11")])
    built = [
        build.registration_request("172.16.0.11", "10.255.0.11", "10.255.0.1", 5, 60, unique=True, nat=True,
                                   extensions=[NHRPExtResponderAddress(compulsory=1), nat]),
        build.registration_reply("172.16.0.11", "10.255.0.11", "10.255.0.1", 5, code=14),
        build.resolution_request("172.16.0.11", "10.255.0.11", "10.1.2.10", 6,
                                 extensions=[NHRPExtAuthentication(compulsory=1, auth_data=b"secret")]),
        build.resolution_reply("172.16.0.11", "10.255.0.11", "10.1.2.10", 6, "172.16.0.12", "10.255.0.12",
                               prefix_len=24),
        build.purge_request("172.16.0.11", "10.255.0.11", "10.255.0.1", 7, ["10.255.0.11"], no_reply=True),
        build.purge_reply("172.16.0.11", "10.255.0.11", "10.255.0.1", 7, ["10.255.0.11"]),
        build.traffic_indication(ip, "172.16.0.1", "10.255.0.1", "10.1.1.10"),
    ]
    built.append(build.error_indication(built[2], "172.16.0.1", "10.255.0.1", "10.255.0.11", 15, 9))
    for pkt in built:
        assert_same(bytes(pkt))
    auth = codec.decode(bytes(built[2])).extension(codec.Authentication)
    assert auth == codec.Authentication(b"secret", 1)


def _phase3_with_everything() -> list[bytes]:
    """Every packet sent in a run that exercises registration, renewal, NAT, redirect,
    resolution, purge, error indications and authentication."""
    out: list[bytes] = []
    for auth in (None, "cisco"):
        net = Net()
        net.add("hub1", hub_config(auth=auth))
        for name in SPOKES:
            net.add(name, spoke_config(name, auth=auth, unique=True))
        net.nat["172.16.0.13"] = "198.51.100.13"
        net.start()
        pkt = bytes(IP(src="10.1.1.10", dst="10.1.3.10") / ICMP())
        net.handle("hub1", Hairpin(pkt))
        net.handle("spoke3", Resolve("10.1.2.10"))
        net.run_for(70)
        net.handle("spoke2", NbmaChanged("172.16.0.22"))
        # Probes answered with Error Indications and NAKs.
        req = build.resolution_request("172.16.0.99", "10.255.0.99", "10.1.2.10", 42, hopcnt=0)
        out += [a.data for a in net.engine("hub1").handle(PacketIn("172.16.0.99", bytes(req)))
                if isinstance(a, Send)]
        out += [a.data for a in net.engine("hub1").handle(PacketIn("172.16.0.99", bytes(req)[:-3]))
                if isinstance(a, Send)]
        net.handle("spoke1", Stop())
        out += [w.data for w in net.wire]
    return out


def test_model_reads_every_packet_the_engine_sends() -> None:
    sent = _phase3_with_everything()
    kinds = {codec.decode(d).op_type for d in sent}
    assert kinds == set(range(1, 9)), kinds
    for data in sent:
        assert_same(data)

