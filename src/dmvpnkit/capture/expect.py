"""Assertions on a timeline whose failure shows the packets around the miss.

A failed expectation is an AssertionError (pytest grades it FAIL) whose message holds
the slice of the timeline an engineer would open the pcap to look at.
"""

from __future__ import annotations

from typing import Any, Callable

from .timeline import Event, Timeline

Pred = Callable[[Event], bool]


class ExpectationFailed(AssertionError):
    def __init__(self, what: str, timeline: Timeline, mark: Event | None = None):
        self.what = what
        self.timeline = timeline
        self.mark = mark
        super().__init__(f"{what}\n{timeline.format(mark=mark)}")


def _desc(match: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in match.items()) or "any packet"


def expect(tl: Timeline, what: str, pred: Pred | None = None, **match: Any) -> Event:
    """The first event matching; fail with `what` and the timeline if none does."""
    found = tl.where(pred, **match)
    if not found:
        raise ExpectationFailed(f"expected {what}; no packet matched ({_desc(match)})", tl)
    return found[0]


def expect_all(tl: Timeline, what: str, pred: Pred | None = None, *, at_least: int = 1,
               **match: Any) -> Timeline:
    found = tl.where(pred, **match)
    if len(found) < at_least:
        raise ExpectationFailed(f"expected {what}: at least {at_least}, saw {len(found)} ({_desc(match)})", tl)
    return found


def expect_none(tl: Timeline, what: str, pred: Pred | None = None, **match: Any) -> None:
    found = tl.where(pred, **match)
    if found:
        raise ExpectationFailed(f"expected {what}; but {len(found)} packet(s) matched ({_desc(match)})",
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
    raise ExpectationFailed(what or f"expected a reply to {m.op} id={m.request_id} on {request.node}; none seen",
                            tl.around(request.ts), mark=request)
