"""Traffic Indications (Cisco/FRR DMVPN phase 3): a hub telling a spoke that its
traffic hairpins through the hub, the spoke resolving the destination."""

from __future__ import annotations

import ipaddress

from . import resolution
from .codec import Op, Packet
from .faults import Fault
from .state import NEIGHBOUR_HOPCNT, State

INDICATION_INTERVAL = 15.0  # at most one Traffic Indication per (src /24, dst /24) per this
AGGREGATE = {4: 24, 6: 64}  # ... or per (src /64, dst /64): the prefix length rate-limited as one
INDICATION_PAYLOAD = 128    # bytes of the triggering packet carried (NFLOG range as FRR's docs)


def _inner_addresses(packet: bytes, version: int) -> tuple[str, str] | None:
    """(source, destination) of an IP packet of `version`, None if it is not one."""
    if version == 4 and len(packet) >= 20 and packet[0] >> 4 == 4:
        return str(ipaddress.IPv4Address(packet[12:16])), str(ipaddress.IPv4Address(packet[16:20]))
    if version == 6 and len(packet) >= 40 and packet[0] >> 4 == 6:
        return str(ipaddress.IPv6Address(packet[8:24])), str(ipaddress.IPv6Address(packet[24:40]))
    return None


def _aggregate(addr: str, version: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``addr``'s /24 (/64): what the hub rate-limits Traffic Indications per."""
    return ipaddress.ip_network(f"{addr}/{AGGREGATE[version]}", strict=False)


def hairpin(state: State, packet: bytes) -> None:
    if state.config.role != "hub" or not state.config.redirect:
        state.log("debug", "hairpinned packet ignored: redirect is off")
        return
    if state.has(Fault.SKIP_TRAFFIC_INDICATION):
        state.log("info", "Traffic Indication skipped (fault)")
        return
    addrs = _inner_addresses(packet, state.family.version)
    if addrs is None:
        state.log("info", f"hairpinned packet is not IPv{state.family.version}: ignored", head=packet[:20].hex())
        return
    src, dst = addrs
    nh = state.next_hop(src)
    if nh is None:
        state.log("debug", "no spoke behind the hairpinned packet's source", src=src, dst=dst)
        return
    key = (_aggregate(src, state.family.version), _aggregate(dst, state.family.version))
    last = state.indications.get(key)
    if last is not None and state.now - last < INDICATION_INTERVAL:
        return
    state.indications = {k: t for k, t in state.indications.items()
                         if state.now - t < INDICATION_INTERVAL}
    state.indications[key] = state.now
    # As FRR: from the hub, to the packet's *source* (the spoke that must resolve),
    # carrying the packet; code 0 (redirect).
    carried = packet[:INDICATION_PAYLOAD]
    if state.has(Fault.TRAFFIC_INDICATION_ZERO_SOURCE):
        carried = carried[:12] + bytes(4) + carried[16:]
    ti = Packet(Op.TRAFFIC_INDICATION, state.nbma, state.proto, src,
                extensions=state.close(()), hopcnt=state.hopcnt(NEIGHBOUR_HOPCNT), payload=carried)
    state.log("info", "Traffic Indication sent", to=nh[1], src=src, dst=dst)
    state.send(nh[1], ti)


def indication_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    addrs = _inner_addresses(pkt.payload, state.family.version)
    if state.config.role != "spoke" or not state.config.shortcut or addrs is None:
        state.log("info", "Traffic Indication ignored", src=src_nbma, shortcut=state.config.shortcut,
                  role=state.config.role)
        return
    if state.has(Fault.IGNORE_TRAFFIC_INDICATION):
        state.log("info", "Traffic Indication ignored (fault)", src=src_nbma)
        return
    target = addrs[1]
    if state.has(Fault.RESOLVE_INDICATED_NETWORK):
        target = str(_aggregate(target, state.family.version).network_address)
    resolution.resolve(state, target, "traffic-indication")
