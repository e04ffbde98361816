"""Multicast into the tunnel (`multicast` on): an mGRE interface cannot send it, so the
node copies each packet as unicast GRE to its multicast destinations, as FRR's
`ip nhrp map multicast` does. A hub's are its registered spokes (FRR's `dynamic`), a
spoke's its NHSs: routing protocols with multicast hellos (OSPF) run hub and spoke."""

from __future__ import annotations

from .events import SendData
from .faults import Fault
from .state import State

IPV4_MULTICAST = range(224, 240)        # first octet of 224.0.0.0/4


def destinations(state: State) -> list[str]:
    """NBMA addresses a multicast packet is copied to, in a stable order."""
    if state.config.role == "hub":
        nbmas = [b.nbma for b in state.bindings.values() if b.type == "dynamic"]
    else:
        nbmas = [nhs.config.nbma for nhs in state.nhs]
    out = list(dict.fromkeys(nbmas))
    return out[:1] if state.has(Fault.MULTICAST_FIRST_ONLY) else out


def replicate(state: State, packet: bytes) -> None:
    if not state.config.multicast:
        state.log("debug", "multicast packet ignored: multicast is off")
        return
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[16] not in IPV4_MULTICAST:
        state.log("info", "packet from the multicast group is not IPv4 multicast: ignored", head=packet[:20].hex())
        return
    for nbma in destinations(state):
        state.out.append(SendData(nbma, packet))
