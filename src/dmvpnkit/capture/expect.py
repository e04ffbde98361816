"""Assertions on a timeline whose failure shows the packets around the miss.

A failed expectation is an AssertionError (pytest grades it FAIL) whose message holds
the slice of the timeline an engineer would open the pcap to look at.
"""

from __future__ import annotations

from typing import Any, Callable

from .timeline import Event, Timeline

Pred = Callable[[Event], bool]


class ExpectationFailed(AssertionError):
    """`headline` is the failure in one line, h2spec's way ("expected: ...; observed:
    ..."): the report, junit.xml and the terminal lead with it; the timeline follows."""

    def __init__(self, expected: str, observed: str, timeline: Timeline, mark: Event | None = None):
        self.expected = expected
        self.observed = observed
        self.timeline = timeline
        self.mark = mark
        super().__init__(f"{self.headline}\n{timeline.format(mark=mark)}")

    @property
    def headline(self) -> str:
        return f"expected: {self.expected}; observed: {self.observed}"


def _desc(match: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in match.items()) or "any packet"


def _among(tl: Timeline) -> str:
    """Where the search looked, in the ladder's terms (seconds from its first packet)."""
    if not tl:
        return "in an empty capture"
    t0 = tl.events[0].ts
    return f"among {_n(len(tl), 'packet')} from +0.000 to +{tl.events[-1].ts - t0:.3f} s"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def forbidding(what: str) -> str:
    """'a packet with ...' -> 'no packet with ...'; a phrase without an article is quoted."""
    for article in ("a ", "an "):
        if what.startswith(article):
            return "no " + what[len(article):]
    return f"none of: {what}"


def _at(tl: Timeline, e: Event) -> str:
    t0 = tl.events[0].ts if tl else e.ts
    arrow = {"out": "sent", "in": "received"}.get(e.direction, "seen")
    return f"at +{e.ts - t0:.3f} s, {arrow} by {e.node}: {e.src}>{e.dst} {e.what}"


def expect(tl: Timeline, what: str, pred: Pred | None = None, **match: Any) -> Event:
    """The first event matching; fail with `what` and the timeline if none does."""
    found = tl.where(pred, **match)
    if not found:
        raise ExpectationFailed(what, f"no packet matched ({_desc(match)}) {_among(tl)}", tl)
    return found[0]


def expect_all(tl: Timeline, what: str, pred: Pred | None = None, *, at_least: int = 1,
               **match: Any) -> Timeline:
    found = tl.where(pred, **match)
    if len(found) < at_least:
        raise ExpectationFailed(f"at least {at_least}: {what}",
                                f"{len(found)} matched ({_desc(match)}) {_among(tl)}", tl)
    return found


def expect_none(tl: Timeline, what: str, pred: Pred | None = None, **match: Any) -> None:
    """No event matching: `what` names the forbidden packet."""
    found = tl.where(pred, **match)
    if found:
        raise ExpectationFailed(forbidding(what), f"{_n(len(found), 'packet')}, the first {_at(tl, found[0])}",
                                tl.around(found[0].ts), mark=found[0])


def expect_reply(tl: Timeline, request: Event, what: str = "") -> Event:
    """The reply to `request` (or to a resend of it) as its sender saw it: same node,
    request ID and source protocol address."""
    assert request.nhrp is not None
    m = request.nhrp
    key = (m.op_type, m.request_id, m.src_proto)
    same = [p for p in tl.pairs() if p.request.node == request.node and p.request.ts <= request.ts
            and (q := p.request.nhrp) is not None and (q.op_type, q.request_id, q.src_proto) == key]
    if same and same[-1].reply is not None:
        return same[-1].reply
    raise ExpectationFailed(what or f"a reply to the {m.op} id={m.request_id} seen by {request.node}",
                            f"none after the request {_at(tl, request)}", tl.around(request.ts), mark=request)
