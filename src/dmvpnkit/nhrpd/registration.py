"""Registration (5.2.3, 5.2.4): the spoke (NHC) registering with its NHSs, and
the hub (NHS) keeping the registrations."""

from __future__ import annotations

from dataclasses import replace

from . import error_indication, replies
from .codec import (
    FLAG_NAT,
    FLAG_U_REGISTRATION,
    Cie,
    CieCode,
    Extension,
    ForwardTransit,
    NatAddress,
    Op,
    Packet,
    ResponderAddress,
    ReverseTransit,
)
from .faults import Fault
from .state import (
    ANY_HOST,
    NEIGHBOUR_HOPCNT,
    ORIGINATED_HOPCNT,
    RETRY_CAP,
    RETRY_FIRST,
    Nhs,
    State,
    nat_seen,
)

NHS_DOWN_AFTER = 16.0       # an NHS counts as down once the backoff reaches this (FRR)

# -- the spoke side ---------------------------------------------------------------------


def _request(state: State, nhs: Nhs) -> Packet:
    unique = state.config.unique or state.has(Fault.REGISTER_UNIQUE)
    flags = FLAG_U_REGISTRATION if unique else 0
    exts: list[Extension] = [ForwardTransit(), ReverseTransit(), ResponderAddress()]
    if state.nat_extension():
        flags |= FLAG_NAT
        # FRR's layout: the NHS as we know it (0.0.0.0 while its address is unknown).
        exts.append(NatAddress((Cie(0, state.family.host, state.config.mtu, 0, 0, nhs.config.nbma,
                                    nhs.protocol or state.family.unspecified),)))
    # 5.2.3: with U set "the prefix length MUST be 0xFF"; the NHC "uses its own
    # address as dst if the NHS is unknown" (FRR).
    # STALE_SOURCE_NBMA: sent from the new address (the kernel picks it), claiming the old one.
    src_nbma = state.config.nbma_address if state.has(Fault.STALE_SOURCE_NBMA) else state.nbma
    return Packet(Op.REGISTRATION_REQUEST, src_nbma, state.proto, nhs.protocol or state.proto,
                  flags, state.next_request_id(),
                  (Cie(0, ANY_HOST if unique else state.family.host, state.config.mtu, state.config.holdtime),),
                  state.close(exts), state.hopcnt(NEIGHBOUR_HOPCNT))


def register(state: State, i: int, fresh: bool) -> None:
    """Send NHS ``i`` a Registration Request: a new one if ``fresh`` (its backoff
    restarted) or none is outstanding, else the outstanding one again."""
    if i > 0 and state.has(Fault.REGISTER_FIRST_NHS_ONLY):
        return                          # 5.2.3 asks for every NHS that serves us (fault)
    nhs = state.nhs[i]
    if fresh or nhs.packet is None or state.has(Fault.NEW_REQUEST_ID_ON_RESEND):
        if nhs.request_id is not None:
            state.registrations.pop(nhs.request_id, None)
        nhs.packet = _request(state, nhs)
        nhs.request_id = nhs.packet.request_id
        state.registrations[nhs.request_id] = i
        if fresh:
            nhs.interval = RETRY_FIRST
    assert nhs.packet is not None
    state.send(nhs.config.nbma, nhs.packet, state.first_request() if i == 0 else frozenset())
    retry = state.config.holdtime / 3 if state.has(Fault.NO_REGISTRATION_RETRY) else nhs.interval
    state.set_timer(("register", i), state.now + retry)
    state.log("debug", "registration sent", nhs=nhs.config.nbma, request_id=nhs.request_id,
              retry_in=nhs.interval)
    nhs.interval = min(nhs.interval * 2, RETRY_CAP)


def timer(state: State, i: int) -> None:
    nhs = state.nhs[i]
    if nhs.request_id is not None and nhs.up and nhs.interval >= NHS_DOWN_AFTER:
        _nhs_down(state, nhs)
    # Unanswered: resend the same request (5.2.0.1: "The same value MUST be used
    # when resending a "request""); answered (renewal time) or NAKed: a new one.
    register(state, i, fresh=False)


def _nhs_down(state: State, nhs: Nhs) -> None:
    nhs.up = False
    state.log("warning", "NHS not answering: down", nhs=nhs.config.nbma, protocol=nhs.protocol)
    if nhs.protocol and state.bindings.get(nhs.protocol, None) is not None:
        state.unbind(nhs.protocol, "NHS down")


def reply_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    i = state.registrations.get(pkt.request_id)
    if i == 0:
        state.requested = True          # the first NHS answered: no more first-request defects
    if i is None or pkt.src_proto != state.proto:
        # 5.2.0.1: a reply is matched by Request ID and source address.
        state.log("info", "Registration Reply matches no request: dropped", src=src_nbma,
                  request_id=pkt.request_id, src_proto=pkt.src_proto)
        return
    del state.registrations[pkt.request_id]
    nhs = state.nhs[i]
    nhs.request_id, nhs.packet = None, None
    codes = [c.code for c in pkt.cies]
    if not codes or any(codes):
        # 5.2.4: "If the Code field of a CIE ... has anything other than zero in it
        # then the NHRP Registration Reply is a NAK". Retry on the backoff timer.
        state.log("warning", "registration refused (NAK)", nhs=nhs.config.nbma, codes=codes)
        return
    responder = pkt.extension(ResponderAddress)
    rcie = responder.cies[0] if responder and responder.cies else None
    protocol = (rcie.client_proto if rcie and rcie.client_proto else
                pkt.dst_proto if pkt.dst_proto != state.proto else nhs.protocol)
    nat = pkt.extension(NatAddress)
    if nat is not None:
        seen = nat_seen(nat, state.proto)
        if seen and seen != state.nbma and seen != state.nat_nbma:
            state.log("info", "NAT detected: the NHS sees us at another address", nbma=state.nbma,
                      post_nat=seen)
        state.nat_nbma = seen if seen != state.nbma else ""
    was_up, nhs.up = nhs.up, True
    if protocol:
        if nhs.protocol and nhs.protocol != protocol:
            state.unbind(nhs.protocol, "NHS protocol address changed")
        nhs.protocol = protocol
        state.bind(protocol, nhs.config.nbma, rcie.client_nbma if rcie and rcie.client_nbma
                   else nhs.config.nbma, "nhs", None)
    if not was_up:
        state.log("info", "registered", nhs=nhs.config.nbma, protocol=protocol)
    nhs.interval = RETRY_FIRST
    if state.has(Fault.NO_RENEWAL):
        state.cancel_timer(("register", i))
    else:
        # 5.2.3: "It is recommended that the NHRP Registration Request packet be
        # sent at an interval equal to one-third of the Holding Time specified therein."
        state.set_timer(("register", i), state.now + state.config.holdtime / 3)


# -- the NHS side -----------------------------------------------------------------------


def request_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    if state.config.role != "hub":
        state.log("info", "Registration Request at a spoke: dropped", src=src_nbma)
        return
    if error_indication.unknown_compulsory(state, src_nbma, pkt, data):
        return
    unique = bool(pkt.flags & FLAG_U_REGISTRATION)
    once = state.first_reply()          # the *-once switches spoil this reply if it is the first
    refuse = Fault.REFUSE_REGISTRATION_ONCE in once
    cies = tuple(_register_cie(state, src_nbma, pkt, c, unique, refuse) for c in pkt.cies)
    # 5.2.4: "formed from an NHRP Registration Request by changing the type code to
    # 4, updating the CIE Code field, and filling in the appropriate extensions".
    # A DMVPN spoke with `nhs dynamic` does not know our protocol address and puts its
    # own there; FRR and IOS hubs answer with theirs, and FRR spokes learn the NHS's
    # address from it (no route to the hub otherwise). Do the same for such requests.
    dst = state.proto if pkt.dst_proto == pkt.src_proto else pkt.dst_proto
    reply = replace(pkt, op_type=Op.REGISTRATION_REPLY, request_id=state.reply_id(pkt.request_id),
                    dst_proto=dst, cies=cies, hopcnt=state.hopcnt(ORIGINATED_HOPCNT),
                    extensions=replies.extensions(state, src_nbma, pkt))
    # 5.2.4: sent over "a direct NBMA level connection" to the NHC: where it came from.
    to = src_nbma
    if state.has(Fault.REPLY_TO_CLAIMED_NBMA) and pkt.src_nbma and pkt.extension(NatAddress) is not None:
        # A NATed NHC's pre-NAT address, unreachable from here (only NAT-aware NHCs,
        # ours in the lab, are answered there: the address is then a node's own).
        to = pkt.src_nbma
    if state.has(Fault.REPLY_TO_ANOTHER_SPOKE_ONCE) and not state.misdirected:
        other = next((b.nbma for b in state.bindings.values() if b.type == "dynamic" and b.nbma != src_nbma), None)
        if other is not None:
            state.misdirected = True
            to = other
    state.send(to, reply, once)


def _register_cie(state: State, src_nbma: str, pkt: Packet, cie: Cie, unique: bool,
                  refuse: bool = False) -> Cie:
    protocol = cie.client_proto or pkt.src_proto
    claimed = cie.client_nbma or pkt.src_nbma
    nbma = claimed if state.has(Fault.BIND_CLAIMED_NBMA) else src_nbma
    if state.has(Fault.KEEP_FIRST_NBMA):
        nbma = state.first_nbma.get(protocol, nbma)     # not where it registers from now
    holding = cie.holding_time or state.config.holdtime

    def nak(code: CieCode, why: str) -> Cie:
        state.log("warning", f"registration refused: {why}", protocol=protocol, nbma=nbma,
                  claimed_nbma=claimed, code=int(code))
        return replace(cie, code=code, holding_time=0)   # 5.2.0.1: 0 on a NAK

    if refuse:
        return nak(CieCode.INSUFFICIENT_RESOURCES, "refused once (fault switch)")
    if not protocol or not claimed:
        return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, "no protocol or NBMA address")
    if state.family.host_len(cie.prefix_length) != state.family.host:
        return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, "only host registrations are accepted")
    if protocol == state.proto:
        return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, "that is the NHS's own address")
    old = state.bindings.get(protocol)
    if old is not None and old.type != "dynamic":
        return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, f"a {old.type} entry holds the address")
    if (old is not None and old.unique and (old.claimed_nbma, old.nbma) != (claimed, nbma)
            and not state.has(Fault.ACCEPT_UNIQUE_CONFLICT)):
        # 5.2.3: "Any attempt to register a binding ... MUST be rejected with a Code
        # of "14 - Unique Internetworking Layer Address Already Registered" if the
        # replying NHS already has a cache entry for the protocol address and the
        # cache entry has the "uniqueness" bit set." (also for a request without U:
        # the unique binding stands until it expires or is purged)
        return nak(CieCode.UNIQUE_ALREADY_REGISTERED,
                   f"unique binding to {old.claimed_nbma} (seen at {old.nbma})")
    if old is None or (old.nbma, old.claimed_nbma) != (nbma, claimed):
        state.log("info", "registered", protocol=protocol, nbma=nbma, claimed_nbma=claimed,
                  holding_time=holding, unique=unique)
    state.bind(protocol, nbma, claimed, "dynamic", holding, unique)
    if state.has(Fault.KEEP_FIRST_NBMA):
        state.first_nbma.setdefault(protocol, nbma)     # for good: purges and expiry keep it
    return replace(cie, code=CieCode.SUCCESS)
