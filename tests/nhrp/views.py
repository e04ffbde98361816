"""A scapy dissection seen as the model's Message, built from the layer's fields only."""

from __future__ import annotations

from typing import Any

from scapy.compat import raw
from scapy.packet import Packet
from scapy.utils import checksum

from dmvpnkit.nhrp.layer import NHRP, NHRPCIE
from dmvpnkit.nhrp.model import Cie, Extension, Message


def _text(addr: Any) -> str:
    # The layer dissects 4/16-byte addresses to text and keeps other lengths as bytes.
    return addr if isinstance(addr, str) else bytes(addr).hex()


def _cie(c: NHRPCIE) -> Cie:
    return Cie(c.code, c.prefix_len, c.mtu, c.holding_time, c.preference, _text(c.client_nbma),
               c.client_nbma_sub.hex(), _text(c.client_proto), c.unused, c.cli_addr_tl,
               c.cli_saddr_tl)


def _extension(e: Packet) -> Extension:
    # The layer's class for the type decides (Raw-typed unknowns have no cies field).
    cies = tuple(_cie(c) for c in e.cies) if "cies" in e.fields else ()
    return Extension(e.type, bool(e.compulsory), raw(e)[4:], cies)


def scapy_view(d: NHRP) -> Message:
    """The Message the scapy dissection describes, built from its fields alone."""
    body = d.payload
    op = d.op_type
    if op == 7:
        extra: dict[str, Any] = {"flags": body.unused, "request_id": 0, "cies": (),
                                 "error_code": body.error_code, "error_offset": body.error_offset,
                                 "inner": raw(body.errored_packet)}
    elif op == 8:
        extra = {"flags": body.unused, "request_id": 0, "cies": (),
                 "traffic_code": body.traffic_code, "inner": raw(body.packet)}
    else:
        extra = {"flags": int(body.flags), "request_id": body.request_id,
                 "cies": tuple(_cie(c) for c in body.cies)}
    return Message(
        afn=d.afn, pro_type=d.pro_type, pro_snap=d.pro_snap, hopcnt=d.hopcnt, pktsz=d.pktsz,
        chksum=d.chksum, extoff=d.extoff, version=d.version, op_type=op,
        src_nbma=_text(body.src_nbma), src_nbma_sub=body.src_nbma_sub.hex(),
        src_proto=_text(body.src_proto), dst_proto=_text(body.dst_proto),
        extensions=tuple(_extension(e) for e in body.extensions),
        chksum_ok=checksum(raw(d)[:d.pktsz]) == 0, shtl=d.shtl, sstl=d.sstl, **extra)
