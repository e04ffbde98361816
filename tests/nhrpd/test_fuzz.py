"""Hostile input never raises out of Engine.handle, and what the engine sends in
answer is always a well-formed packet (at most one Error Indication, never one for
an Error Indication)."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP

from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.events import Hairpin, NbmaChanged, PacketIn, Resolve, Send, Stop
from dmvpnkit.nhrpd.faults import Fault

from .harness import HUB, SPOKES, Net, hub_config, rechecksum, spoke_config

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NODES = ("hub1", "spoke1", "spoke2")
# The switches that mishandle malformed input: still without raising.
MALFORMED_INPUT_FAULTS = [Fault.RUNT_PREFIXES_NEXT.value, Fault.ACCEPT_EXTOFF_PAST_PKTSZ.value]


def fresh(faults: list[str] | None = None) -> Net:
    net = Net()
    net.add("hub1", hub_config(auth=None, faults=faults or []))
    net.add("spoke1", spoke_config("spoke1", faults=faults or []))
    net.add("spoke2", spoke_config("spoke2", faults=faults or []))
    net.start()
    net.handle("spoke1", Resolve("10.1.2.10"))
    return net


@cache
def corpus() -> tuple[bytes, ...]:
    """Valid packets of every type, as the engines send them."""
    net = fresh()
    net.handle("hub1", Hairpin(bytes(IP(src="10.1.2.10", dst="10.1.1.10") / ICMP())))
    net.engine("hub1").handle(PacketIn("172.16.0.99", b"\x00\x01\x08\x00" + b"\x00" * 5 + b"\x40\x00\x30"
                                       + b"\x00" * 36))
    eis = [a.data for a in net.engine("hub1").handle(PacketIn("172.16.0.99", rechecksum(
        net.wire[0].data[:16] + b"\x02" + net.wire[0].data[17:]))) if isinstance(a, Send)]
    stopped = fresh()
    stopped.handle("spoke2", Stop())
    purges = [w.data for w in stopped.wire if w.data[17] in (codec.Op.PURGE_REQUEST, codec.Op.PURGE_REPLY)]
    return tuple(w.data for w in net.wire) + tuple(eis) + tuple(purges)


def check(input_data: bytes, acts: list) -> None:
    sent = [codec.decode(a.data) for a in acts if isinstance(a, Send)]
    for p in sent:
        assert p.chksum_ok
    # Ours about this input carry it as the errored packet (relayed ones carry their own).
    eis = [p for p in sent if p.op_type == codec.Op.ERROR_INDICATION and input_data.startswith(p.payload[:20])]
    assert len(eis) <= 1, eis                      # 5.2.7: never more than one
    if len(input_data) > 17 and input_data[17] == codec.Op.ERROR_INDICATION:
        assert not eis                             # 5.2.7: never for an Error Indication


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(NODES), st.sampled_from(("172.16.0.99", HUB["nbma"],
                                                                          SPOKES["spoke1"]["nbma"])))
def test_random_bytes(data: bytes, node: str, src: str) -> None:
    net = fresh()
    check(data, net.engine(node).handle(PacketIn(src, data)))


@FUZZ
@given(st.data(), st.sampled_from(NODES), st.booleans())
def test_mutated_valid_packets(data: st.DataObject, node: str, fix_checksum: bool) -> None:
    base = bytearray(data.draw(st.sampled_from(corpus())))
    for _ in range(data.draw(st.integers(1, 6))):
        base[data.draw(st.integers(0, len(base) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base) + 8))
    raw = bytes(base[:cut]) + (b"" if cut <= len(base) else data.draw(st.binary(min_size=8, max_size=8)))
    if fix_checksum and len(raw) >= 20:
        raw = rechecksum(raw)
    net = fresh()
    src = data.draw(st.sampled_from((HUB["nbma"], SPOKES["spoke1"]["nbma"], SPOKES["spoke2"]["nbma"])))
    check(raw, net.engine(node).handle(PacketIn(src, raw)))
    net.run_for(200)           # and the timers it may have started keep working


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(NODES), st.binary(max_size=80)), max_size=8))
def test_sequences_through_the_network(events: list[tuple[str, bytes]]) -> None:
    net = fresh()
    for node, payload in events:
        net.handle(node, Hairpin(payload))
        net.handle(node, Resolve(".".join(str(b) for b in (payload + b"\x0a\x01\x02\x03")[:4])))
        net.handle(node, PacketIn("172.16.0.99", payload))
    net.handle("spoke2", NbmaChanged("not-an-address"))
    net.run_for(500)
    errors = [log for n in net.nodes.values() for log in n.logs("error")]
    assert [log.message for log in errors] == ["NbmaChanged with an address that is not IPv4"], errors


@FUZZ
@given(st.lists(st.tuples(st.binary(max_size=24), st.sampled_from(corpus()), st.integers(0, 0xFFFF)),
                min_size=1, max_size=4), st.sampled_from(NODES), st.sampled_from(("172.16.0.99", HUB["nbma"])))
def test_malformed_input_switches_never_raise(probes: list[tuple[bytes, bytes, int]], node: str, src: str) -> None:
    """Runts (kept for the sender's next packet) and an ar$extoff anywhere (past
    ar$pktsz: read as no extensions), checksum intact: what is sent stays well-formed."""
    net = fresh(MALFORMED_INPUT_FAULTS)
    for junk, packet, extoff in probes:
        for data in (junk, rechecksum(packet[:14] + extoff.to_bytes(2, "big") + packet[16:])):
            check(data, net.engine(node).handle(PacketIn(src, data)))
    net.run_for(200)


def test_corpus_covers_every_type() -> None:
    assert {codec.decode(d).op_type for d in corpus()} == set(range(1, 9))
