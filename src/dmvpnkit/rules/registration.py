"""RFC 2332 5.2.0.1 and 5.2.3: what a Registration Request holds, and how often it comes."""

from __future__ import annotations

import itertools
import statistics

from ..capture.timeline import Event, Timeline
from .base import Context, Verdict, failed, none_of, passed, rule, sent, skipped, view
from .exchanges import _originated

REFRESH_SLACK = 0.5     # the refresh interval may be off a third of the holding time by half of it
MIN_REFRESHES = 2       # one gap may be a re-registration after an event (a restart, a new address)


@rule("registration-holding-time", "rfc2332", "5.2.0.1", "MUST",
      """"Holding Time: The Holding Time field specifies the number of seconds for which the
      NHRP information specified in the CIE is considered to be valid." (5.2.0.1): every
      Registration Request holds a CIE, with a holding time (the configured one, where known).""",
      roles=("client",))
def holding_time(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    want = ctx.holdtime

    def bad(e: Event) -> bool:
        assert e.nhrp is not None
        holds = {c.holding_time for c in e.nhrp.cies}
        return not holds or (holds != {want} if want is not None else 0 in holds)

    return none_of(v, sent(v, ctx, "registration-request"), f"Registration Requests sent by {ctx.who}",
                   f"a Registration Request without a CIE holding {want} s" if want is not None
                   else "a Registration Request without a CIE or with a holding time of 0", bad,
                   lambda e: f"holding times {[c.holding_time for c in e.nhrp.cies] if e.nhrp else []}")


@rule("registration-refresh-interval", "rfc2332", "5.2.3", "SHOULD",
      """"It is recommended that the NHRP Registration Request packet be sent at an interval
      equal to one-third of the Holding Time specified therein." (5.2.3)""", roles=("client",))
def refresh_interval(tl: Timeline, ctx: Context) -> Verdict:
    """The median gap between a station's successive registrations (each Request ID once)
    with the same NHS, within half of a third of the holding time either way. A gap
    longer than the holding time is a lapse (a restart, a cut), not a refresh."""
    v = view(tl, ctx)
    expected = f"{ctx.who} re-registering about every third of the holding time"
    firsts: dict[tuple[str, str, str], dict[int, Event]] = {}
    for e in _originated(v, ctx):
        assert e.nhrp is not None
        if e.nhrp.op == "registration-request":
            firsts.setdefault((e.dst, e.nhrp.src_proto, e.nhrp.dst_proto), {}).setdefault(e.nhrp.request_id, e)
    gaps: list[tuple[float, int, Event, Event]] = []
    for reqs in firsts.values():
        seq = sorted(reqs.values(), key=lambda e: e.ts)
        for a, b in itertools.pairwise(seq):
            hold = a.nhrp.cies[0].holding_time if a.nhrp is not None and a.nhrp.cies else 0
            if hold and b.ts - a.ts <= hold:
                gaps.append((b.ts - a.ts, hold, a, b))
    if len(gaps) < MIN_REFRESHES:
        return skipped(expected, f"{len(gaps)} refresh(es) of a registration of {ctx.who} in the capture, "
                                 f"fewer than the {MIN_REFRESHES} an interval is judged on", v)
    gap = statistics.median(g for g, _, _, _ in gaps)
    held = float(statistics.median(h for _, h, _, _ in gaps))
    events = [x for g in gaps for x in g[2:]]
    observed = f"median interval {gap:.1f} s over {len(gaps)} refreshes, holding time {held:g} s"
    if abs(gap - held / 3) > held / 3 * REFRESH_SLACK:
        worst = max(gaps, key=lambda g: abs(g[0] - held / 3))
        return failed(expected, observed, v, worst[3], events)
    return passed(expected, observed, events)
