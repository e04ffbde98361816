"""Error Indications (5.2.7): sending one for a packet in error, relaying and
receiving them; and the request with an unrecognised compulsory extension (5.3),
which is answered with one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .codec import ErrorCode, Op, Packet, UnknownExtension, peek
from .faults import Fault
from .state import ORIGINATED_HOPCNT, State

ERRORED_PACKET_MAX = 1400   # bytes of the offending packet an Error Indication carries


def send(state: State, dst_nbma: str, data: bytes, code: ErrorCode, offset: int, reason: str) -> None:
    """Drop ``data`` (from ``dst_nbma``) as in error, telling its source why."""
    hdr = peek(data)
    fields: dict[str, Any] = {"src": dst_nbma, "code": int(code), "offset": offset, "reason": reason,
                              "head": data[:32].hex()}
    if hdr is not None and hdr.op_type == Op.ERROR_INDICATION:
        # 5.2.7: "An NHRP Error Indication packet SHALL NEVER be generated in
        # response to another NHRP Error Indication packet."
        state.log("info", "bad Error Indication dropped (never answered)", **fields)
        return
    if state.has(Fault.NO_ERROR_INDICATION):
        state.log("info", "dropped; Error Indication suppressed (fault)", **fields)
        return
    state.log("info", "dropped; sending Error Indication", **fields)
    pktsz = hdr.pktsz if hdr is not None and 20 <= hdr.pktsz <= len(data) else len(data)
    # Source: the station that saw the error; destination: the errored packet's
    # source protocol address. "no extensions may be added to an NHRP Error Indication."
    ei = Packet(Op.ERROR_INDICATION, state.nbma, state.proto, hdr.src_proto if hdr else "",
                error_code=code, error_offset=offset, hopcnt=state.hopcnt(ORIGINATED_HOPCNT),
                payload=data[:min(pktsz, ERRORED_PACKET_MAX)])
    state.send(dst_nbma, ei)


def unknown_compulsory(state: State, src_nbma: str, pkt: Packet, data: bytes) -> bool:
    """5.3: an unrecognised extension with C set puts a request we answer "in
    error"; "the responder MUST return an NHRP Error Indication of type
    Unrecognized Extension". True if it did (the packet is then dropped)."""
    for i, ext in enumerate(pkt.extensions):
        if isinstance(ext, UnknownExtension) and ext.compulsory:
            send(state, src_nbma, data, ErrorCode.UNRECOGNIZED_EXTENSION, pkt.ext_offsets[i],
                 f"unrecognised compulsory extension type {ext.type}")
            return True
    return False


def indication_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    if state.config.role == "hub" and pkt.dst_proto and pkt.dst_proto != state.proto:
        _relay(state, pkt)
        return
    inner = peek(pkt.payload)
    fields: dict[str, Any] = {"src": src_nbma, "code": pkt.error_code, "offset": pkt.error_offset}
    if inner is not None:
        fields.update(errored_type=inner.op_type, errored_request_id=inner.request_id)
    state.log("warning", "Error Indication received", **fields)
    if inner is None or inner.src_proto != state.proto:
        return
    if inner.op_type == Op.REGISTRATION_REQUEST and inner.request_id in state.registrations:
        nhs = state.nhs[state.registrations.pop(inner.request_id)]
        nhs.request_id, nhs.packet = None, None     # the backoff timer sends a new one
    elif inner.op_type == Op.RESOLUTION_REQUEST and inner.request_id in state.resolutions:
        state.resolutions.pop(inner.request_id)
        state.cancel_timer(("resolve", inner.request_id))


def _relay(state: State, pkt: Packet) -> None:
    """A hub passes on an Error Indication for another station toward it."""
    if (pkt.src_nbma, pkt.src_proto) == (state.nbma, state.proto):
        # 5.2.7: an NHS seeing its own addresses as the source of a transiting
        # Error Indication "will quietly drop the packet".
        return
    nh = state.next_hop(pkt.dst_proto)
    if nh is None or pkt.hopcnt == 0:
        state.log("info", "Error Indication not forwarded", dst_proto=pkt.dst_proto, hopcnt=pkt.hopcnt)
        return
    state.send(nh[1], replace(pkt, hopcnt=state.forwarded_hopcnt(pkt), extensions=()))
