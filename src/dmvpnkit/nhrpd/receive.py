"""Receiving a packet: the checks every packet passes (size, checksum, decoding,
authentication), then the handler for its operation type."""

from __future__ import annotations

from collections.abc import Callable

from . import error_indication, purge, registration, resolution, traffic_indication
from .codec import Authentication, CodecError, ErrorCode, Op, Packet, checksum_ok, decode, peek
from .faults import Fault
from .state import State


def packet_in(state: State, src_nbma: str, data: bytes) -> None:
    if state.has(Fault.RUNT_PREFIXES_NEXT):
        # As if NHRP came as a stream: a runt is the start of the sender's next packet.
        data = state.partial.pop(src_nbma, b"") + data
    if len(data) < 20:
        state.log("info", "runt packet dropped", src=src_nbma, size=len(data), head=data.hex())
        if state.has(Fault.RUNT_PREFIXES_NEXT):
            state.partial[src_nbma] = data
        return
    hdr = peek(data)
    assert hdr is not None
    checked = 20 <= hdr.pktsz <= len(data)
    if checked and not checksum_ok(data[:hdr.pktsz]) and not state.has(Fault.ACCEPT_BAD_CHECKSUM):
        # 5.1/5.2.7: a failed checksum is a Protocol Error; as FRR, no answer.
        state.log("info", "bad checksum: dropped", src=src_nbma, chksum=data[12:14].hex(),
                  op_type=hdr.op_type)
        return
    if checked and int.from_bytes(data[14:16], "big") > hdr.pktsz and state.has(Fault.ACCEPT_EXTOFF_PAST_PKTSZ):
        # 5: the Extensions Part is "ar$pktsz minus ar$extoff"; read here as none at all.
        data = data[:14] + b"\x00\x00" + data[16:]
    if hdr.version != 1 and state.has(Fault.ACCEPT_ANY_VERSION):
        data = data[:16] + b"\x01" + data[17:]
    try:
        pkt = decode(data)
    except CodecError as e:
        # 5.2.7 code 7: "A generic packet processing error has occurred (e.g.,
        # invalid version number, invalid protocol type, failed checksum, etc.)"
        error_indication.send(state, src_nbma, data, ErrorCode.PROTOCOL_ERROR, e.offset,
                              f"{e.field}: {e.detail}")
        return
    if not _authentic(state, src_nbma, pkt, data):
        return
    _ON_PACKET[pkt.op_type](state, src_nbma, pkt, data)


def _authentic(state: State, src_nbma: str, pkt: Packet, data: bytes) -> bool:
    if state.config.auth is None:
        return True
    want = state.config.auth.encode()
    for i, ext in enumerate(pkt.extensions):
        if isinstance(ext, Authentication):
            if ext.spi == 1 and ext.password == want:
                return True
            offset = pkt.ext_offsets[i]
            break
    else:
        offset = 14     # ar$extoff: where the missing extension should be
    if pkt.op_type == Op.ERROR_INDICATION and pkt.error_code == ErrorCode.AUTHENTICATION_FAILURE:
        state.log("info", "unauthenticated Error Indication dropped", src=src_nbma)
        return False
    # 5.3.4: "If a received packet fails the authentication test, the station SHALL
    # generate an Error Indication of type "Authentication Failure" and discard the packet."
    error_indication.send(state, src_nbma, data, ErrorCode.AUTHENTICATION_FAILURE, offset,
                          "authentication failed")
    return False


# Operation type -> its handler (decode accepts no other operation types).
_ON_PACKET: dict[int, Callable[[State, str, Packet, bytes], None]] = {
    Op.RESOLUTION_REQUEST: resolution.request_in,
    Op.RESOLUTION_REPLY: resolution.reply_in,
    Op.REGISTRATION_REQUEST: registration.request_in,
    Op.REGISTRATION_REPLY: registration.reply_in,
    Op.PURGE_REQUEST: purge.request_in,
    Op.PURGE_REPLY: purge.reply_in,
    Op.ERROR_INDICATION: error_indication.indication_in,
    Op.TRAFFIC_INDICATION: traffic_indication.indication_in,
}
