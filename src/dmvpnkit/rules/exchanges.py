"""RFC 2332 5.2.0.1 and 5.2.4: requests and their replies, matched by Request ID and
source protocol address; transit NHSs and the hop count (5.1)."""

from __future__ import annotations

import struct

from ..capture.timeline import REPLY_OF, Event, Timeline
from ..nhrp.model import Op
from .base import (
    COPY_WINDOW,
    Context,
    Verdict,
    failed,
    nhrp,
    one_way,
    passed,
    received,
    rule,
    sent,
    skipped,
    view,
)

RESEND_WINDOW = 8.0     # s: a request younger than this at the end of the capture may yet be answered
RESEND_LIMIT = 70.0     # s: a request this long after an unanswered one with the same addresses is a new one
GRACE = 1.0             # s from the start of the capture: a reply there may answer a request before it
PURGE_NO_REPLY = 0x8000
REQUEST_OF = {v: k for k, v in REPLY_OF.items()}
Key = tuple[int, int, str]


def _key(e: Event, op: int | None = None) -> Key:
    assert e.nhrp is not None
    return (e.nhrp.op_type if op is None else op, e.nhrp.request_id, e.nhrp.src_proto)


def _errored(e: Event) -> Key | None:
    """The request an Error Indication is about: the errored packet's op and Request ID."""
    m = e.nhrp
    if m is None or m.op_type != Op.ERROR_INDICATION or len(m.inner) < 28:
        return None
    inner = m.inner
    spl, shl, ssl = inner[20], inner[18] & 0x3F, inner[19] & 0x3F
    src = inner[28 + shl + ssl:28 + shl + ssl + spl]
    return (inner[17], struct.unpack_from(">I", inner, 24)[0], ".".join(map(str, src)) if spl == 4 else src.hex())


def _requests(tl: Timeline) -> list[Event]:
    return [e for e in tl.events if e.nhrp is not None and e.nhrp.op_type in REPLY_OF
            and not (e.nhrp.op_type == Op.PURGE_REQUEST and e.nhrp.flags & PURGE_NO_REPLY)]


def _originated(v: Timeline, ctx: Context) -> list[Event]:
    """Requests the station sent of its own, not ones it forwards for another."""
    seen_in = {_key(e) for e in _requests(received(v, ctx))}
    return [e for e in _requests(sent(v, ctx)) if _key(e) not in seen_in]


def _answers(v: Timeline, ctx: Context) -> dict[Key, float]:
    """Request key -> when the first reply (or Error Indication about it) to the station was seen."""
    out: dict[Key, float] = {}
    for e in received(v, ctx):
        m = e.nhrp
        if m is None:
            continue
        k = (REQUEST_OF[Op(m.op_type)], m.request_id, m.src_proto) if m.op_type in REQUEST_OF else _errored(e)
        if k is not None:
            out.setdefault(k, e.ts)
    return out


def requests_by_key(tl: Timeline, ctx: Context, op: str) -> dict[Key, list[Event]]:
    out: dict[Key, list[Event]] = {}
    for e in received(tl, ctx, op):
        out.setdefault(_key(e), []).append(e)
    return out


def request_for(reply: Event, asked: dict[Key, list[Event]], op: int) -> Event | None:
    """The request `reply` answers, as the capture that saw the reply saw it where it did:
    across a NAT the two sides see other addresses; else the latest copy before the reply."""
    copies = [e for e in asked.get(_key(reply, op), []) if e.ts <= reply.ts + COPY_WINDOW]
    same = [e for e in copies if e.node == reply.node]
    return (same or copies)[-1] if copies else None


@rule("request-answered-or-resent", "rfc2332", "5.2.0.1", "SHOULD",
      """A request is answered, or its sender resends it: "when a "reply" has not been received
      for a "request" ... a retry is sent after an appropriate interval" (5.2.0.1).""")
def answered_or_resent(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    expected = f"every request {ctx.who} sent answered or resent"
    reqs = _originated(v, ctx)
    why = one_way(v, ctx) or ("" if reqs else f"no request sent by {ctx.who}")
    if why:
        return skipped(expected, why, v)
    answers, end = _answers(v, ctx), v.events[-1].ts
    copies: dict[Key, list[Event]] = {}
    for e in reqs:
        copies.setdefault(_key(e), []).append(e)
    judged = [c for c in copies.values() if end - c[0].ts >= RESEND_WINDOW or _key(c[0]) in answers]
    bad = [c[0] for c in judged if _key(c[0]) not in answers and len(c) == 1]
    if not judged:
        return skipped(expected, f"every request of {ctx.who} is younger than {RESEND_WINDOW:.0f} s at the "
                                 "end of the capture", v)
    if bad:
        return failed(expected, f"{len(bad)} of {len(judged)} requests neither answered nor resent within "
                                f"the {end - bad[0].ts:.1f} s the capture goes on, the first {bad[0].what}",
                      v, bad[0], bad)
    return passed(expected, f"{len(judged)} requests answered or resent", [c[0] for c in judged])


@rule("reply-echoes-request", "rfc2332", "5.2.0.1", "MUST",
      """"Request ID ... This value is copied directly from an "request" packet into the
      associated "reply"" (5.2.0.1), with the source protocol address: every reply a station
      sends answers a request it received.""")
def reply_echoes_request(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    expected = f"every reply {ctx.who} sent carrying the Request ID and source of a request it received"
    start = v.events[0].ts if v else 0.0
    replies = [e for e in sent(v, ctx) if e.nhrp is not None and e.nhrp.op_type in REQUEST_OF
               and e.ts - start >= GRACE]
    why = one_way(v, ctx) or ("" if replies else f"no reply sent by {ctx.who} after the first {GRACE:.0f} s")
    if why:
        return skipped(expected, why, v)
    asked: dict[Key, float] = {}
    for e in _requests(received(v, ctx)):
        asked.setdefault(_key(e), e.ts)
    for e in replies:
        assert e.nhrp is not None
        k = _key(e, REQUEST_OF[Op(e.nhrp.op_type)])
        if asked.get(k, e.ts + 1) > e.ts + COPY_WINDOW:
            return failed(expected, f"{e.what}: no {Op(k[0]).name.lower().replace('_', '-')} id={k[1]} from "
                                    f"{k[2] or '-'} reached {ctx.who} before it", v, e)
    return passed(expected, f"{len(replies)} replies, each echoing a request", replies)


@rule("registration-reply-to-requester", "rfc2332", "5.2.4", "MUST",
      """"The Registration Reply is sent ... to the station which sent the Registration Request"
      (5.2.4): to the NBMA address the request came from.""", roles=("nhs",))
def reply_to_requester(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    expected = f"every Registration Reply {ctx.who} sent going to the NBMA address its request came from"
    asked = requests_by_key(v, ctx, "registration-request")
    pairs = [(e, req) for e in sent(v, ctx, "registration-reply")
             if (req := request_for(e, asked, Op.REGISTRATION_REQUEST)) is not None]
    if not pairs:
        return skipped(expected, f"no Registration Request answered by {ctx.who} in the capture", v)
    for reply, req in pairs:
        if reply.dst != req.src:
            return failed(expected, f"the reply to {req.src}'s request id={_key(req)[1]} went to {reply.dst}",
                          v, reply, (req, reply))
    return passed(expected, f"{len(pairs)} replies, each to its requester", [x for p in pairs for x in p])


@rule("resend-keeps-request-id", "rfc2332", "5.2.0.1", "MUST",
      """"The same value MUST be used when resending a "request", i.e., when a "reply" has not
      been received for a "request" and a retry timer has expired" (5.2.0.1).""")
def resend_keeps_request_id(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    expected = f"{ctx.who} resending an unanswered request with its Request ID"
    why = one_way(v, ctx)
    if why:
        return skipped(expected, why, v)
    answers = _answers(v, ctx)
    last: dict[tuple[str, int, str, str], Event] = {}
    resends: list[Event] = []
    for e in _originated(v, ctx):
        assert e.nhrp is not None
        what = (e.dst, e.nhrp.op_type, e.nhrp.src_proto, e.nhrp.dst_proto)     # the same request to the same NHS
        prev = last.get(what)
        last[what] = e
        if prev is None or answers.get(_key(prev), e.ts + 1) <= e.ts or e.ts - prev.ts > RESEND_LIMIT:
            continue                # a new request: the previous one was answered, or is long gone
        if _key(e) != _key(prev):
            return failed(expected, f"id={_key(prev)[1]} unanswered, resent {e.ts - prev.ts:.1f} s later as "
                                    f"id={_key(e)[1]}", v, e, (prev, e))
        resends.append(e)
    if not resends:
        return skipped(expected, f"no unanswered request of {ctx.who} resent in the capture", v)
    return passed(expected, f"{len(resends)} resends, each with its request's ID", resends)


@rule("transit-hop-count", "rfc2332", "5.1", "MUST",
      """"Each NHS decrements the TTL as the NHRP packet transits the NHS." (5.1, ar$hopcnt)""",
      roles=("nhs",))
def transit_hop_count(tl: Timeline, ctx: Context) -> Verdict:
    v = view(tl, ctx)
    expected = f"ar$hopcnt one lower on every packet {ctx.who} forwards"
    came: dict[Key, Event] = {}
    pairs: list[tuple[Event, Event]] = []
    for e in nhrp(v):
        if e.nhrp is None or not 1 <= e.nhrp.op_type <= 6:
            continue
        if e.dst == ctx.station:
            came[_key(e)] = e
        elif (k := _key(e)) in came and came[k].src != e.dst:
            pairs.append((came.pop(k), e))
    if not pairs:
        return skipped(expected, f"no NHRP packet forwarded by {ctx.who} in the capture", v)
    for before, after in pairs:
        assert before.nhrp is not None and after.nhrp is not None
        if after.nhrp.hopcnt != before.nhrp.hopcnt - 1:
            return failed(expected, f"{after.nhrp.op} id={after.nhrp.request_id}: hop count {before.nhrp.hopcnt} "
                                    f"in, {after.nhrp.hopcnt} out", v, after, (before, after))
    return passed(expected, f"{len(pairs)} forwarded packets, each decremented", [x for p in pairs for x in p])
