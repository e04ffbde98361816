"""Fault: loss on a spoke's uplink (netem). Unanswered requests are resent unchanged,
and registration gets through as soon as an attempt does.

A node's capture sees its own packets only after its own netem (dropped ones never),
so loss is put where the resending station's capture still sees all it sends: on what
is sent *to* it (`direction="in"`), or on the far end's uplink.
"""

from __future__ import annotations


import pytest

from dmvpnkit.labs.faults import Faults
from dmvpnkit.rules import Context, enforce, exchanges

from ..conftest import arp_pinned, lan_host, nbma, needs_netem, ping, wait_quietly

# A refresh (hold time / 3 = 120 s) later than everything this module waits for, so
# only a retry, never a refresh, can rescue an unanswered registration.
HOLD = 360
RESEND_WINDOW = 8.0         # s: 4x the slowest first resend known (FRR's, 2 s; nhrpd's 1 s)
LOSS = 30                   # percent, each way
UNDER_LOSS = 30.0           # s of 30 % loss: five attempts on a 1-2-4-8-16 s backoff
AFTER_LIFT = 66.0           # s: the longest backoff FRR and Cisco use (64 s), and slack
pytestmark = pytest.mark.topology("hub_2spoke", holdtime=HOLD)


def registrations(tl, node: str, after: float):
    return tl.where(node=node, op="registration-request", direction="out", after=after)


def registered(tl, spoke: str, after: float) -> bool:
    """A Registration Request `spoke` sent after `after` drew a successful reply that reached it."""
    return any(p.request.ts > after and p.reply is not None and p.reply.nhrp.cies
               and p.reply.nhrp.cies[0].code == 0
               for p in tl.pairs() if p.request.node == spoke and p.request.nhrp.op == "registration-request")


@pytest.fixture(scope="module")
def unanswered_registration(lab, scenario_capture):
    """spoke2 registers afresh (its daemon restarted) while every reply to it is lost."""
    faults = Faults(lab)
    cap = scenario_capture("unanswered_registration")
    with needs_netem(), arp_pinned(lab, "spoke2"), faults.impair("spoke2", loss=100, direction="in") as cut:
        started = faults.restart_daemon("spoke2").lifted
        wait_quietly("spoke2 to resend its Registration Request", lambda: len(
            registrations(cap.timeline(stop=False), "spoke2", started)) >= 2, RESEND_WINDOW, interval=0.5)
    tl = cap.timeline()
    if tl.where(node="spoke2", op="registration-reply", direction="in", after=cut.mark, before=cut.lifted):
        raise RuntimeError("a Registration Reply reached spoke2 through 100 % loss: the impairment "
                           f"did not take effect\n{tl.format()}")
    return {"started": started, "timeline": tl}


def resender(lab, tl, node: str):
    """The resend rule on what `node` itself sent and got (its own capture): the hub's
    copy of a reply that the loss ate would count as an answer."""
    return tl.where(node=node), Context(station=nbma(lab, node), name=node, role="client", own=True)


@pytest.mark.spec("rfc2332", "5.2.0.1", "MUST")
def test_resent_registration_keeps_its_request_id(unanswered_registration, lab) -> None:
    """"The same value MUST be used when resending a "request", i.e., when a "reply" has
    not been received for a "request" and a retry timer has expired" (5.2.0.1): spoke2's
    first resend of its unanswered Registration Request carries the same Request ID
    (judged from the restarted daemon's start on: the old one's requests are not its own)."""
    tl, ctx = resender(lab, unanswered_registration["timeline"], "spoke2")
    enforce(exchanges.resend_keeps_request_id, tl.where(after=unanswered_registration["started"]), ctx,
            absent=pytest.skip)


@pytest.fixture(scope="module")
def unanswered_resolution(lab, scenario_capture):
    """spoke1 resolves spoke2's LAN while nothing spoke2 sends gets out."""
    target = lan_host(lab, "spoke2")
    cap = scenario_capture("unanswered_resolution")
    with needs_netem(), Faults(lab).impair("spoke2", loss=100, direction="out") as cut:
        # Phase 3: the hairpin makes the hub send a Traffic Indication; phase 2: the
        # route via spoke2's tunnel address makes spoke1 resolve it.
        ping(lab, "spoke1_h", target, 4, 0.5)
        wait_quietly("spoke1 to resend its Resolution Request", lambda: len(cap.timeline(stop=False).where(
            node="spoke1", op="resolution-request", direction="out", after=cut.mark)) >= 2, RESEND_WINDOW, interval=0.5)
    return {"mark": cut.mark, "timeline": cap.timeline()}


@pytest.mark.phases(2, 3)
@pytest.mark.spec("rfc2332", "5.2.0.1", "MUST")
def test_resent_resolution_keeps_its_request_id(unanswered_resolution, lab) -> None:
    """"The same value MUST be used when resending a "request"" (5.2.0.1): spoke1's first
    resend of a Resolution Request that spoke2 never answered carries its Request ID."""
    tl = unanswered_resolution["timeline"]
    reqs = tl.where(node="spoke1", op="resolution-request", direction="out", after=unanswered_resolution["mark"])
    if not reqs:
        pytest.fail(f"spoke1 sent no Resolution Request for spoke2's LAN:\n{tl.format()}", pytrace=False)
    own, ctx = resender(lab, tl, "spoke1")
    enforce(exchanges.resend_keeps_request_id, own.where(after=unanswered_resolution["mark"]), ctx,
            absent=pytest.skip)


@pytest.fixture(scope="module")
def lossy_registration(lab, scenario_capture):
    """spoke2 registers afresh with 30 % loss each way on its uplink, its first attempt
    lost for sure (100 % loss toward it until the hub has seen that attempt); then, if
    it is not registered yet, the loss is lifted and its next retry must do it."""
    faults = Faults(lab)
    cap = scenario_capture("lossy_registration")
    out: dict = {}
    with needs_netem(), arp_pinned(lab, "spoke2"):
        with faults.impair("spoke2", loss=100, direction="in") as cut:
            faults.restart_daemon("spoke2")
            wait_quietly("hub1 to answer spoke2's first attempt", lambda: cap.timeline(stop=False).where(
                node="hub1", op="registration-reply", direction="out", dst=nbma(lab, "spoke2"), after=cut.mark), 10, interval=0.5)
        out["mark"] = cut.mark
        with faults.impair("spoke2", loss=LOSS) as lossy:
            out["under_loss"] = wait_quietly("spoke2 to register through the loss", lambda: registered(
                cap.timeline(stop=False), "spoke2", cut.mark), UNDER_LOSS, interval=0.5)
    out["lifted"] = lossy.lifted
    if not out["under_loss"]:
        wait_quietly("spoke2 to register once the loss is lifted", lambda: registered(
            cap.timeline(stop=False), "spoke2", cut.mark), AFTER_LIFT, interval=0.5)
    out["timeline"] = cap.timeline()
    return out


@pytest.mark.spec("dmvpn-phase1", "registration", "MUST")
def test_registration_converges_under_loss(lossy_registration, measure) -> None:
    """A spoke retries an unanswered registration on a backoff schedule (FRR and Cisco:
    doubling, at most 64 s apart) until it is registered: with 30 % loss each way on its
    uplink it registers through the loss, or at the latest on the first retry after the
    loss is lifted, well before its refresh interval (hold time / 3) is due."""
    tl, mark = lossy_registration["timeline"], lossy_registration["mark"]
    attempts = registrations(tl, "spoke2", mark)
    measure("attempts", len(attempts))
    ok = [p for p in tl.pairs() if p.request.node == "spoke2" and p.request.ts > mark and p.reply is not None
          and p.request.nhrp.op == "registration-request" and p.reply.nhrp.cies and p.reply.nhrp.cies[0].code == 0]
    assert ok, (f"spoke2 did not register: {UNDER_LOSS:.0f} s of {LOSS} % loss and {AFTER_LIFT:.0f} s after "
                f"it was lifted; its attempts since its restart: {len(attempts)}\n{attempts.format()}")
    measure("registered_after_s", round(ok[0].reply.ts - mark, 2))
    measure("through_the_loss", 1.0 if lossy_registration["under_loss"] else 0.0)
