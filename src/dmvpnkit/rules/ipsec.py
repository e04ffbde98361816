"""With IPsec: nothing GRE (NHRP or overlay data) crosses the NBMA network in the clear."""

from __future__ import annotations

from ..capture.timeline import Event, Timeline
from .base import Context, Verdict, failed, passed, rule, skipped, view


def _esp(e: Event) -> bool:
    return bool(e.esp) or e.data.startswith("esp")


def cleartext_gre(e: Event) -> bool:
    """GRE (NHRP or overlay data) that crossed the NBMA network outside ESP."""
    return e.gre and not e.esp


@rule("ipsec-no-cleartext-gre", "dmvpn-ipsec", "confidentiality", "MUST",
      """Every NHRP packet and all overlay traffic crosses the NBMA network inside ESP: none in
      the clear.""")
def no_cleartext(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    mine = [e for e in v.events if e.src == ctx.station and (e.gre or _esp(e))]
    expected = f"no GRE in the clear from {ctx.who}"
    protected = ctx.ipsec if ctx.ipsec is not None else any(_esp(e) for e in v.events)
    if not protected:
        return skipped(expected, f"no ESP to or from {ctx.who}: not protected by IPsec", v)
    if not mine:
        return skipped(expected, f"no GRE or ESP sent by {ctx.who} in the capture", v)
    bad = [e for e in mine if cleartext_gre(e)]
    if bad:
        return failed(expected, f"{len(bad)} of {len(mine)} in the clear, the first {bad[0].what}", v, bad[0], bad)
    return passed(expected, f"{len(mine)} packets, all in ESP", mine)
