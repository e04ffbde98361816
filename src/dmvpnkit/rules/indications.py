"""Traffic Indication (DMVPN phase 3's redirect) and Error Indication (RFC 2332 5.2.7)."""

from __future__ import annotations

import socket

from ..capture.timeline import Event, Timeline
from .base import Context, Verdict, failed, none_of, passed, rule, sent, skipped, view

# RFC 2332 5.2.7's error codes (nhrp.layer.ERROR_CODES names them)
ERROR_CODES = frozenset({1, 3, 6, 7, 8, 9, 10, 11, 15})
EI, TI = 7, 8
TRIGGER_WINDOW = 5.0    # s: a Traffic Indication follows its triggering packet within this
RATE_WINDOW = 1.0       # s: at most one Traffic Indication per flow and spoke in this


def _flow(inner: bytes) -> tuple[str, str] | None:
    """(source, destination) of the IPv4 packet a Traffic Indication carries."""
    if len(inner) < 20 or inner[0] >> 4 != 4 or (inner[0] & 0x0F) < 5:
        return None
    return socket.inet_ntoa(inner[12:16]), socket.inet_ntoa(inner[16:20])


def _tis(v: Timeline, ctx: Context) -> Timeline:
    return sent(v, ctx, "traffic-indication")


@rule("traffic-indication-shape", "dmvpn-phase3", "traffic-indication", "MUST",
      """The hub, forwarding a packet back out of the tunnel interface it came in on, sends
      the source spoke an NHRP Traffic Indication carrying the triggering packet: an IP
      packet that reached the hub, from the NBMA address the indication goes to.""", roles=("nhs",))
def traffic_indication_shape(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    tis = _tis(v, ctx)
    expected = f"every Traffic Indication {ctx.who} sent carrying a packet it got from the indication's destination"
    if not tis:
        return skipped(expected, f"no Traffic Indication sent by {ctx.who} in the capture", v)
    for e in tis:
        assert e.nhrp is not None
        flow = _flow(e.nhrp.inner)
        if flow is None:
            return failed(expected, f"{e.what}: carries no IPv4 packet ({len(e.nhrp.inner)} bytes "
                                    f"{e.nhrp.inner[:20].hex()})", v, e)
        pair = f" {flow[0]}>{flow[1]}"
        trigger = [d for d in v.events if d.gre and d.nhrp is None and not d.error and d.dst == ctx.station
                   and d.src == e.dst and 0 <= e.ts - d.ts <= TRIGGER_WINDOW and pair in f" {d.data}"]
        if not trigger:
            return failed(expected, f"{e.what}: about {flow[0]}>{flow[1]}, but no such packet came from "
                                    f"{e.dst} in the {TRIGGER_WINDOW:.0f} s before", v, e)
    return passed(expected, f"{len(tis)} Traffic Indications, each about a packet from its destination", tis)


@rule("traffic-indication-rate", "dmvpn-phase3", "traffic-indication", "SHOULD",
      """The hub rate-limits its redirects: at most one Traffic Indication a second to a spoke
      for the same flow, however many of the flow's packets hairpin.""", roles=("nhs",))
def traffic_indication_rate(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    tis = _tis(v, ctx)
    expected = f"at most one Traffic Indication from {ctx.who} per spoke and flow in {RATE_WINDOW:.0f} s"
    if not tis:
        return skipped(expected, f"no Traffic Indication sent by {ctx.who} in the capture", v)
    last: dict[tuple[str, tuple[str, str] | None], Event] = {}
    for e in tis:
        assert e.nhrp is not None
        k = (e.dst, _flow(e.nhrp.inner))
        prev = last.get(k)
        last[k] = e
        if prev is not None and e.ts - prev.ts < RATE_WINDOW:
            return failed(expected, f"two to {e.dst} about the same flow {e.ts - prev.ts:.3f} s apart", v, e,
                          (prev, e))
    return passed(expected, f"{len(tis)} Traffic Indications, {len(last)} spoke/flow pairs", tis)


def _ei_wrong(e: Event) -> str:
    m = e.nhrp
    assert m is not None
    if m.error_code not in ERROR_CODES:
        return f"error code {m.error_code} is none of 5.2.7's"
    if len(m.inner) < 20:
        return f"the errored packet is {len(m.inner)} bytes, shorter than a fixed header"
    if m.error_offset >= len(m.inner):
        return f"error offset {m.error_offset} lies past the {len(m.inner)}-byte errored packet"
    if m.extoff or m.extensions:
        return f"extensions at ar$extoff {m.extoff}"
    return ""


@rule("error-indication-format", "rfc2332", "5.2.7", "MUST",
      """An Error Indication carries one of 5.2.7's error codes, the packet in error (from
      its fixed header on), an Error Offset into that packet, and no extensions (5.2.7).""")
def error_indication_format(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    return none_of(v, sent(v, ctx, "error-indication"), f"Error Indications sent by {ctx.who}",
                   "an Error Indication of the wrong form", lambda e: bool(_ei_wrong(e)), _ei_wrong)


@rule("no-error-indication-about-error-indication", "rfc2332", "5.2.7", "MUST",
      """An Error Indication is about a request or reply: none is ever sent about an Error
      Indication, or two stations could trade them without end (5.2.7).""")
def no_error_about_error(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    return none_of(v, sent(v, ctx, "error-indication"), f"Error Indications sent by {ctx.who}",
                   "an Error Indication about an Error Indication",
                   lambda e: e.nhrp is not None and len(e.nhrp.inner) > 17 and e.nhrp.inner[17] == EI)
