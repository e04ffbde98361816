"""The ``*-once`` fault switches: each spoils the first Registration Reply a hub sends
(per daemon run) in one way that a capture of every packet sent can see, and in no
other. The spoke drops the spoiled reply (or, for the NAK, is refused) and its own
resend a second later (``state.RETRY_FIRST``) is answered normally, so the lab still
converges and only the case about that one requirement fails.

``FIRST_REQUEST``: the same for the first Registration Request a spoke sends (to its
first NHS; resends too until that NHS answers, so a request lost at bring-up does not
take the defect with it). What is spoiled is what is sent, not the request kept for
resending (``Nhs.packet``): the hub answers it, and where the spoke drops the answer
(it does not match its request), the resend a second later is the request unspoiled,
with the same ID."""

from __future__ import annotations

from dataclasses import replace

from .codec import FIXED_LEN, PRO_IPV4, PRO_IPV6, Packet, checksum
from .faults import Fault

# The switches that act on the first Registration Reply (see ``State.first_reply``);
# REFUSE_REGISTRATION_ONCE acts on its CIEs, REPLY_FROM_TUNNEL_ADDRESS_ONCE on its
# outer source, IPSEC_REGISTER_IN_CLEAR_ONCE on its protection (``Send.clear``), the
# others on its bytes (``mangle``).
ONCE = frozenset({Fault.BAD_CHECKSUM_ONCE, Fault.GARBLED_ONCE, Fault.PKTSZ_PADDING_ONCE,
                  Fault.WRONG_VERSION_ONCE, Fault.WRONG_AFN_ONCE, Fault.WRONG_PRO_TYPE_ONCE, Fault.ZERO_HOPCNT_ONCE,
                  Fault.REFUSE_REGISTRATION_ONCE, Fault.REPLY_FROM_TUNNEL_ADDRESS_ONCE,
                  Fault.IPSEC_REGISTER_IN_CLEAR_ONCE})
# The switches that act on the first Registration Request (see ``State.first_request``),
# on its fields (``rewrite``) or its protection.
FIRST_REQUEST = frozenset({Fault.ZERO_HOLDTIME_ONCE, Fault.NBMA_AS_PROTOCOL_ONCE,
                           Fault.IPSEC_REGISTER_IN_CLEAR_ONCE})
WRONG_AFN = 2               # IANA address family 2 (IPv6), with 4-byte IPv4 addresses
WRONG_VERSION = 2
PADDING = b"\x00" * 4       # octets after ar$pktsz: the checksum covers ar$pktsz octets only
END_OF_EXTENSIONS = b"\x80\x00\x00\x00"     # compulsory, type 0, length 0 (5.3.0)


def _rechecksum(data: bytearray) -> None:
    data[12:14] = b"\x00\x00"
    data[12:14] = checksum(bytes(data)).to_bytes(2, "big")


def _garble(data: bytearray) -> None:
    """Fields that do not add up, checksum intact: the End extension claims 4 octets
    that are not there (past ar$pktsz); without extensions, ar$extoff points past it."""
    if data[14:16] != b"\x00\x00" and data[-4:] == END_OF_EXTENSIONS:
        data[-2:] = (4).to_bytes(2, "big")
    else:
        data[14:16] = (len(data) + 4).to_bytes(2, "big")


def mangle(data: bytes, once: frozenset[Fault]) -> bytes:
    """``data`` (an encoded packet, ar$pktsz octets) with the defects of ``once``."""
    if not once & ONCE:
        return data
    out = bytearray(data)
    if Fault.WRONG_AFN_ONCE in once:
        out[0:2] = WRONG_AFN.to_bytes(2, "big")
    if Fault.WRONG_PRO_TYPE_ONCE in once:       # the addresses stay as they are
        other = PRO_IPV4 if int.from_bytes(out[2:4], "big") == PRO_IPV6 else PRO_IPV6
        out[2:4] = other.to_bytes(2, "big")
    if Fault.ZERO_HOPCNT_ONCE in once:
        out[9] = 0
    if Fault.WRONG_VERSION_ONCE in once:
        out[16] = WRONG_VERSION
    if Fault.GARBLED_ONCE in once and len(out) >= FIXED_LEN:
        _garble(out)
    _rechecksum(out)
    if Fault.BAD_CHECKSUM_ONCE in once:
        out[13] ^= 0xFF         # as BAD_CHECKSUM: the sum is off by 1..255, never right
    if Fault.PKTSZ_PADDING_ONCE in once:
        out += PADDING
    return bytes(out)


def rewrite(pkt: Packet, once: frozenset[Fault], nbma: str) -> Packet:
    """``pkt`` with the field defects of ``once``; ``nbma``: the sender's NBMA address."""
    if Fault.ZERO_HOLDTIME_ONCE in once:
        # The NHS takes 0 as "its default" (as ours does); 5.2.0.1 asks for the time.
        pkt = replace(pkt, cies=tuple(replace(c, holding_time=0) for c in pkt.cies))
    if Fault.NBMA_AS_PROTOCOL_ONCE in once:
        # The NHS binds that address (to where it came from) and answers for it; the
        # spoke matches the answer on ar$src_proto and drops it.
        pkt = replace(pkt, src_proto=nbma)
    return pkt
