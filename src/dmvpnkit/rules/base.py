"""What a passive rule is: a spec reference, and a function of a timeline that returns
a verdict with the packets it rests on.

A rule judges one station (`Context.station`, its NBMA address) or, without one,
every station in the timeline. It sees each packet once: captures taken at both
ends hold a packet twice (the sender's copy and the receiver's), and `view` keeps
one copy, the sender's where there is one. Missing evidence (no packet of the kind
the rule is about, only one direction captured, ESP without keys) is SKIP with the
reason, never PASS.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..capture.expect import ExpectationFailed, forbidding
from ..capture.timeline import OPAQUE_ESP, Event, Timeline

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
COPY_WINDOW = 0.5       # s: one packet seen at two capture points (resends come >= 1 s apart)
SHOWN_FRAMES = 8        # frames named in a headline


@dataclass(frozen=True)
class Spec:
    doc: str                    # rfc2332, dmvpn-phase3, dmvpn-ipsec
    section: str
    level: str                  # MUST, SHOULD, MAY
    requirement: str            # the sentence, quoted where it is the spec's own


@dataclass(frozen=True)
class Context:
    """Whom a rule judges and what is known beyond the packets."""
    station: str | None = None          # NBMA address; None: every station in the timeline
    name: str = ""                      # how reports call it
    role: str = ""                      # "nhs", "client", or "" when not known
    holdtime: int | None = None         # the configured hold time, when known (a lab's)
    ipsec: bool | None = None           # GRE must be in ESP; None: where the station uses ESP at all
    own: bool = False                   # the timeline is the station's own capture: what is not in it never reached it

    @property
    def who(self) -> str:
        if self.station is None:
            return "any station"
        return f"{self.name} ({self.station})" if self.name and self.name != self.station else self.station


@dataclass(frozen=True)
class Verdict:
    outcome: str                        # PASS, FAIL or SKIP
    expected: str
    observed: str
    events: tuple[Event, ...] = ()      # the packets the verdict rests on
    mark: Event | None = None           # the offending one
    timeline: Timeline | None = None    # what to show around it
    rule: str = ""

    @property
    def frames(self) -> list[str]:
        return [e.ref for e in self.events if e.ref]

    @property
    def headline(self) -> str:
        at = self.frames if self.mark is None or not self.mark.ref else [self.mark.ref]
        shown = ", ".join(at[:SHOWN_FRAMES]) + (f" and {len(at) - SHOWN_FRAMES} more" if len(at) > SHOWN_FRAMES else "")
        where = f" [{shown}]" if shown and self.outcome == FAIL else ""
        return f"expected: {self.expected}; observed: {self.observed}{where}"


@dataclass(frozen=True)
class Rule:
    name: str
    spec: Spec
    check: Callable[[Timeline, Context], Verdict] = field(repr=False)
    roles: tuple[str, ...] = ("nhs", "client")     # whom it applies to ("" role: every rule)

    def __call__(self, tl: Timeline, ctx: Context | None = None) -> Verdict:
        """The verdict on `ctx.station`; without one, on every station that sent a packet
        in `tl`: FAIL at the first that fails, else PASS if any passed, else SKIP."""
        ctx = ctx or Context()
        if ctx.station is not None:
            return dataclasses.replace(self.check(tl, ctx), rule=self.name)
        verdicts = [self.check(tl, dataclasses.replace(ctx, station=s, name=tl.names.get(s, s)))
                    for s in stations(tl)]
        v = combine(verdicts, f"{self.name} on every station", "no station sent a packet in the capture")
        return dataclasses.replace(v, rule=self.name)

    def applies_to(self, role: str) -> bool:
        return not role or role in self.roles


REGISTRY: dict[str, Rule] = {}


def rule(name: str, doc: str, section: str, level: str, requirement: str,
         roles: tuple[str, ...] = ("nhs", "client")) -> Callable[[Callable[[Timeline, Context], Verdict]], Rule]:
    """Register `fn` as the passive rule `name`."""
    def wrap(fn: Callable[[Timeline, Context], Verdict]) -> Rule:
        if name in REGISTRY:
            raise ValueError(f"rule {name!r} registered twice")
        r = REGISTRY[name] = Rule(name, Spec(doc, section, level, " ".join(requirement.split())), fn, roles)
        return r
    return wrap


def enforce(r: Rule, tl: Timeline, ctx: Context | None = None, *,
            absent: Callable[[str], object] | None = None) -> Verdict:
    """For the suite's cases: the verdict when it is PASS, else ExpectationFailed. In a
    lab the scenario makes the evidence, so evidence missing is the case's FAIL too,
    unless the case passes `absent` (pytest.skip): the scenario may rightly not make it
    (a resend where every first attempt got through), and that is the case's SKIP."""
    v = r(tl, ctx)
    if v.outcome == PASS:
        return v
    if v.outcome == SKIP and absent is not None:
        absent(f"{v.expected}: nothing to judge, {v.observed}")
        return v
    raise ExpectationFailed(v.expected, v.observed + (f" [{', '.join(v.frames[:SHOWN_FRAMES])}]" if v.frames else ""),
                            v.timeline if v.timeline is not None else tl, mark=v.mark)


def stations(tl: Timeline) -> list[str]:
    """The NBMA addresses that sent NHRP or GRE in `tl`, in order of appearance."""
    return list(dict.fromkeys(e.src for e in tl.events if e.nhrp is not None or e.error or e.gre or e.esp))


def combine(verdicts: list[Verdict], expected: str, none: str) -> Verdict:
    for v in verdicts:
        if v.outcome == FAIL:
            return v
    ok = [v for v in verdicts if v.outcome == PASS]
    if ok:
        return Verdict(PASS, ok[0].expected if len(ok) == 1 else expected,
                       "; ".join(v.observed for v in ok), tuple(e for v in ok for e in v.events))
    if verdicts:
        return Verdict(SKIP, expected, "; ".join(dict.fromkeys(v.observed for v in verdicts)))
    return Verdict(SKIP, expected, none)


# ---------------------------------------------------------------- verdicts

def passed(expected: str, observed: str, events: Iterable[Event]) -> Verdict:
    return Verdict(PASS, expected, observed, tuple(events))


def failed(expected: str, observed: str, tl: Timeline, bad: Event, events: Iterable[Event] = ()) -> Verdict:
    evs = tuple(events) or (bad,)
    return Verdict(FAIL, expected, observed, evs, bad, tl.around(bad.ts))


def skipped(expected: str, reason: str, tl: Timeline) -> Verdict:
    return Verdict(SKIP, expected, f"{reason}{_opaque(tl)}")


def _opaque(tl: Timeline) -> str:
    n = sum(1 for e in tl.events if e.data.startswith(OPAQUE_ESP))
    return f" ({n} ESP packet{'s' if n != 1 else ''} could not be opened: give the keys)" if n else ""


def none_of(tl: Timeline, events: Timeline, what: str, forbidden: str, bad: Callable[[Event], object],
            detail: Callable[[Event], str] | None = None) -> Verdict:
    """PASS when no event of `events` (`what`: "NHRP packets sent by X") is `bad`
    (`forbidden`: "a packet whose ar$chksum is wrong"), FAIL at the first that is;
    SKIP when `events` is empty."""
    expected = f"{forbidding(forbidden)} among the {what}"
    if not events:
        return skipped(expected, f"no {what} in the capture", tl)
    found = [e for e in events if bad(e)]
    if not found:
        return passed(expected, f"none of {len(events)}", events)
    first = found[0]
    more = f": {detail(first)}" if detail else ""
    return failed(expected, f"{len(found)} of {len(events)}, the first at {_at(tl, first)}{more}", tl, first, found)


def _at(tl: Timeline, e: Event) -> str:
    t0 = tl.events[0].ts if tl else e.ts
    return f"+{e.ts - t0:.3f} s ({e.src}>{e.dst} {e.what})"


# ---------------------------------------------------------------- what a rule sees

def _rank(e: Event) -> int:
    """Which copy of a packet to keep: the sender's own capture's first."""
    return {"out": 0, "?": 1}.get(e.direction, 2)


def _key(e: Event) -> tuple[str, str, bytes | str]:
    return (e.src, e.dst, e.raw if e.raw else e.what)


def view(tl: Timeline, ctx: Context) -> Timeline:
    """One copy of each packet to or from the station, the sender's copy where the
    sender's capture has it."""
    st = ctx.station
    keep: list[Event] = []
    last: dict[tuple[str, str, bytes | str], int] = {}
    for e in tl.events:
        if st is not None and e.src != st and e.dst != st:
            continue
        k = _key(e)
        i = last.get(k)
        if i is not None and e.ts - keep[i].ts <= COPY_WINDOW and (e.node, e.pcap) != (keep[i].node, keep[i].pcap):
            if _rank(e) < _rank(keep[i]):
                keep[i] = e
            continue
        last[k] = len(keep)
        keep.append(e)
    return Timeline(keep, tl.names)


def nhrp(tl: Timeline, *, sent_by: str | None = None, to: str | None = None, op: str | None = None) -> Timeline:
    """NHRP packets (undecodable ones included unless `op` is given)."""
    return Timeline((e for e in tl.events if (e.nhrp is not None or e.error)
                     and (sent_by is None or e.src == sent_by) and (to is None or e.dst == to)
                     and (op is None or (e.nhrp is not None and e.nhrp.op == op))), tl.names)


def sent(tl: Timeline, ctx: Context, op: str | None = None) -> Timeline:
    return nhrp(tl, sent_by=ctx.station, op=op)


def received(tl: Timeline, ctx: Context, op: str | None = None) -> Timeline:
    return nhrp(tl, to=ctx.station, op=op)


def one_way(tl: Timeline, ctx: Context) -> str:
    """Why replies cannot be judged: "" when the capture holds both directions, or is
    the station's own (a lab's, with every reply to it lost)."""
    if ctx.own:
        return ""
    if not any(e.dst == ctx.station for e in tl.events):
        return f"no packet to {ctx.who} in the capture (only one direction captured)"
    if not any(e.src == ctx.station for e in tl.events):
        return f"no packet from {ctx.who} in the capture (only one direction captured)"
    return ""
