"""RFC 2332 5.1: the fixed header of every NHRP packet a station sends."""

from __future__ import annotations

from collections.abc import Callable

from ..capture.timeline import Event, Timeline
from .base import Context, Verdict, none_of, rule, sent, view

AFN_IPV4 = 1
PRO_LEN = {0x0800: 4, 0x86DD: 16}       # protocol type -> its address length


def _sent(tl: Timeline, ctx: Context, forbidden: str, bad: Callable[[Event], object],
          detail: Callable[[Event], str] | None = None) -> Verdict:
    v = view(tl, ctx)
    return none_of(v, sent(v, ctx), f"NHRP packets sent by {ctx.who}", forbidden, bad, detail)


@rule("header-decodes", "rfc2332", "5.1", "MUST",
      """Every NHRP packet has the layout of 5.1 and 5.2: fixed header, mandatory part, CIEs
      and extensions within ar$pktsz.""")
def decodes(tl: Timeline, ctx: Context) -> Verdict:
    return _sent(tl, ctx, "a packet that does not decode", lambda e: e.nhrp is None, lambda e: e.error)


@rule("header-version", "rfc2332", "5.1", "MUST",
      """"ar$op.version ... A value of 0x01 is used for NHRP version 1" (5.1).""")
def version(tl: Timeline, ctx: Context) -> Verdict:
    return _sent(tl, ctx, "a packet with ar$op.version other than 1",
                 lambda e: e.nhrp is not None and e.nhrp.version != 1,
                 lambda e: f"version {e.nhrp.version if e.nhrp else '?'}")


@rule("header-checksum", "rfc2332", "5.1", "MUST",
      """"ar$chksum: The standard IP checksum over the entire NHRP packet starting at the
      fixed header" (5.1).""")
def checksum(tl: Timeline, ctx: Context) -> Verdict:
    return _sent(tl, ctx, "a packet whose ar$chksum is wrong",
                 lambda e: e.nhrp is not None and not e.nhrp.chksum_ok,
                 lambda e: f"ar$chksum 0x{e.nhrp.chksum if e.nhrp else 0:04x}")


@rule("header-pktsz", "rfc2332", "5.1", "MUST",
      """"ar$pktsz: The total length of the NHRP packet, in octets (excluding link layer
      encapsulation)" (5.1).""")
def pktsz(tl: Timeline, ctx: Context) -> Verdict:
    return _sent(tl, ctx, "a packet whose ar$pktsz differs from its length on the wire",
                 lambda e: e.nhrp is not None and e.nhrp.pktsz != len(e.raw),
                 lambda e: f"ar$pktsz {e.nhrp.pktsz if e.nhrp else '?'}, {len(e.raw)} bytes")


def _families_wrong(e: Event) -> bool:
    """ar$afn 1 (the NBMA network here is IPv4) with a 4-byte ar$shtl; ar$pro.type a
    protocol whose address length the source and destination protocol addresses have
    (or are absent)."""
    m = e.nhrp
    if m is None:
        return False
    want = PRO_LEN.get(m.pro_type)
    spl, dpl = (e.raw[20], e.raw[21]) if len(e.raw) >= 22 else (0, 0)
    return m.afn != AFN_IPV4 or m.shtl & 0x3F != 4 or want is None or spl not in (0, want) or dpl not in (0, want)


@rule("header-address-family", "rfc2332", "5.1", "MUST",
      """ar$afn names the NBMA address family (1 = IPv4) and ar$pro.type the protocol
      (0x0800 = IPv4); the address lengths follow (ar$shtl = 4, protocol addresses of
      ar$pro.type's length).""")
def address_family(tl: Timeline, ctx: Context) -> Verdict:
    return _sent(tl, ctx, "a packet whose ar$afn/ar$pro.type/ar$shtl do not describe its addresses",
                 _families_wrong,
                 lambda e: (f"afn {e.nhrp.afn}, pro_type 0x{e.nhrp.pro_type:04x}, shtl {e.nhrp.shtl & 0x3F}"
                            if e.nhrp else ""))


@rule("header-hopcnt", "rfc2332", "5.1", "MUST",
      """"ar$hopcnt: The Hop count indicates the maximum number of NHSs that an NHRP packet is
      allowed to traverse before being discarded" (5.1): a sender never starts at 0.""")
def hopcnt(tl: Timeline, ctx: Context) -> Verdict:
    return _sent(tl, ctx, "a packet sent with ar$hopcnt 0", lambda e: e.nhrp is not None and e.nhrp.hopcnt == 0)
