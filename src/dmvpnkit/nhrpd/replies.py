"""Extensions in replies (5.3): what a responder returns of the request's
extensions, and the Responder Address CIE naming us."""

from __future__ import annotations

from .codec import Cie, Extension, NatAddress, Op, Packet, ResponderAddress, UnknownExtension
from .faults import Fault
from .state import State


def responder_cie(state: State) -> Cie:
    return Cie(0, state.family.host, state.config.mtu, state.config.holdtime, 0, state.nbma, state.proto)


def own_nat_cies(state: State) -> tuple[Cie, ...]:
    """Where we are seen, for a NAT extension of ours: only if an NHS told us (FRR)."""
    return (Cie(0, state.family.host, state.config.mtu, 0, 0, state.nat_nbma, state.proto),) if state.nat_nbma else ()


def extensions(state: State, src_nbma: str, pkt: Packet) -> tuple[Extension, ...]:
    """The request's extensions as a responder returns them (5.3)."""
    out: list[Extension] = []
    for ext in pkt.extensions:
        if isinstance(ext, ResponderAddress) and not state.has(Fault.NO_RESPONDER_EXTENSION):
            # 5.3.1: "If an NHS is generating a "reply" ... the NHS SHALL include
            # this extension, containing its protocol address".
            out.append(ResponderAddress((responder_cie(state),), ext.compulsory))
        elif isinstance(ext, NatAddress) and state.config.nat_extension:
            if not state.has(Fault.DROP_NAT_EXTENSION):
                out.append(_nat(state, src_nbma, pkt, ext))
        elif isinstance(ext, UnknownExtension):
            # 5.3: an ignored extension in a request "MUST be returned, unchanged,
            # in the corresponding "reply"".
            if not state.has(Fault.DROP_UNKNOWN_EXTENSION):
                out.append(ext)
        else:
            # Transit records: "The responding NHS ... SHALL NOT update this
            # extension" (5.3.2); vendor data and the rest go back as they came.
            out.append(ext)
    return state.close(out)


def _nat(state: State, src_nbma: str, pkt: Packet, ext: NatAddress) -> NatAddress:
    if pkt.op_type == Op.REGISTRATION_REQUEST:
        # FRR/Cisco: the request's CIEs, then, when the source is NATed, one CIE
        # with the address we see it at for its protocol address.
        if src_nbma != pkt.src_nbma and pkt.src_proto:
            return NatAddress((*ext.cies, Cie(0, state.family.host, state.config.mtu, 0, 0, src_nbma,
                                              pkt.src_proto)), ext.compulsory)
        return ext
    # A responder tells where *it* is seen, if an NHS told it (FRR).
    return NatAddress(own_nat_cies(state), ext.compulsory)
