"""DMVPN NAT traversal: the Cisco NAT address extension (type 9) in Registration Replies."""

from __future__ import annotations

from ..capture.timeline import Event, Timeline
from ..nhrp.model import Op
from .base import Context, Verdict, failed, passed, rule, sent, skipped, view
from .exchanges import request_for, requests_by_key

NAT_EXT = 9


def _nat(e: Event) -> list[str] | None:
    """The NBMA addresses a NAT address extension's CIEs hold, or None without one."""
    assert e.nhrp is not None
    exts = [x for x in e.nhrp.extensions if x.type == NAT_EXT]
    return None if not exts else [c.client_nbma for x in exts for c in x.cies]


@rule("nat-extension", "dmvpn-phase3", "nat", "MUST",
      """The hub tells a NATed spoke the address it sees it at: a Cisco NAT address extension
      (type 9) in the Registration Reply whose CIE holds the address the request came from.""",
      roles=("nhs",))
def nat_extension(tl: Timeline, ctx: Context) -> Verdict:
    """Judged on registrations that crossed a NAT: the request, carrying a NAT extension
    (its sender handles NAT), came from another address than the NBMA address it claims;
    request and reply as one capture saw them."""
    v = view(tl, ctx)
    expected = f"every Registration Reply of {ctx.who} to a NATed client naming the address the request came from"
    asked = requests_by_key(v, ctx, "registration-request")
    judged: list[Event] = []
    for reply in sent(v, ctx, "registration-reply"):
        req = request_for(reply, asked, Op.REGISTRATION_REQUEST)
        if req is None or req.nhrp is None or req.src == req.nhrp.src_nbma or _nat(req) is None:
            continue
        held = _nat(reply)
        judged += [req, reply]
        if held is None:
            return failed(expected, f"{req.src} registered claiming {req.nhrp.src_nbma}; the reply holds no "
                                    "NAT address extension", v, reply, (req, reply))
        if req.src not in held:
            return failed(expected, f"the request came from {req.src}; the reply's NAT extension holds "
                                    f"{', '.join(held) or 'no address'}", v, reply, (req, reply))
    if not judged:
        return skipped(expected, f"no registration with {ctx.who} crossed a NAT in the capture", v)
    return passed(expected, f"{len(judged) // 2} replies to NATed clients with the post-NAT address", judged)
