"""A transit NHS forwarding a request or reply: the hop count (5.1), loop
detection and the transit records (5.3.1-5.3.3), the NAT extension filled in."""

from __future__ import annotations

from dataclasses import replace

from . import error_indication, replies
from .codec import (
    Cie,
    ErrorCode,
    Extension,
    ForwardTransit,
    NatAddress,
    Op,
    Packet,
    ResponderAddress,
    ReverseTransit,
)
from .faults import Fault
from .state import State


def forward(state: State, src_nbma: str, pkt: Packet, data: bytes, next_hop: tuple[str, str]) -> None:
    if pkt.hopcnt == 0:
        # 5.1: "If an NHS receives an NHRP packet which it would normally forward ...
        # and that packet contains an ar$hopcnt set to zero then the NHS sends an
        # error indication message back ... and the NHS drops the packet in error".
        error_indication.send(state, src_nbma, data, ErrorCode.HOP_COUNT_EXCEEDED, 9,
                              "hop count 0 at a transit NHS")
        return
    is_reply = pkt.op_type == Op.RESOLUTION_REPLY
    record = ReverseTransit if is_reply else ForwardTransit
    for i, ext in enumerate(pkt.extensions):
        if not isinstance(ext, (ForwardTransit, ReverseTransit, ResponderAddress)):
            continue
        checked = isinstance(ext, record) or (is_reply and isinstance(ext, ResponderAddress))
        if checked and any(c.client_proto == state.proto for c in ext.cies):
            # 5.3.2/5.3.3: our Protocol Address in the record -> "NHRP Loop Detected";
            # 5.3.1: the same for our address as the Responder Address of a reply.
            error_indication.send(state, src_nbma, data, ErrorCode.LOOP_DETECTED, pkt.ext_offsets[i],
                                  f"own address in the {type(ext).__name__} extension")
            return
    out: list[Extension] = []
    for ext in pkt.extensions:
        if isinstance(ext, record) and not state.has(Fault.NO_TRANSIT_RECORD):
            # "Each NHS SHALL append to the extension a Forward Transit NHS element"
            out.append(record((*ext.cies, replies.responder_cie(state)), ext.compulsory))
        elif isinstance(ext, NatAddress) and state.config.nat_extension:
            if not state.has(Fault.DROP_NAT_EXTENSION):
                out.append(_nat(state, pkt, ext))
        else:
            # 5.3: a transit NHS "SHALL ignore" unknown extensions, copying them on.
            out.append(ext)
    hop = state.forwarded_hopcnt(pkt)
    state.log("debug", "forwarding", op_type=pkt.op_type, request_id=pkt.request_id,
              to=next_hop[1], via=next_hop[0], hopcnt=hop)
    state.send(next_hop[1], replace(pkt, hopcnt=hop, extensions=state.close(out)))


def _nat(state: State, pkt: Packet, ext: NatAddress) -> NatAddress:
    """FRR: an empty NAT extension is filled in with where we see the station the
    packet speaks for (the requester; for a reply, the CIE's station), if NATed."""
    if ext.cies:
        return ext
    proto = pkt.cies[0].client_proto if pkt.op_type == Op.RESOLUTION_REPLY and pkt.cies else \
        pkt.src_proto if pkt.op_type != Op.RESOLUTION_REPLY else ""
    b = state.bindings.get(proto) if proto else None
    if b is None or b.nbma == b.claimed_nbma:
        return ext
    return NatAddress((Cie(0, state.family.host, state.config.mtu, 0, 0, b.nbma, proto),), ext.compulsory)
