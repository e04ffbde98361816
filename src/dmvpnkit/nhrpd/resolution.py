"""Resolution (5.2.1, 5.2.2): a spoke resolving an address through its NHS and
installing the shortcut the reply offers; answering Resolution Requests for our own
address and LAN prefixes; a hub passing requests and replies on as a transit NHS."""

from __future__ import annotations

from dataclasses import replace

from . import error_indication, replies, transit
from .codec import (
    FLAG_A,
    FLAG_D,
    FLAG_NAT,
    FLAG_Q,
    FLAG_S,
    Cie,
    CieCode,
    ErrorCode,
    Extension,
    ForwardTransit,
    NatAddress,
    Op,
    Packet,
    ResponderAddress,
    ReverseTransit,
)
from .events import MapNeighbor
from .faults import Fault
from .state import (
    ANY_HOST,
    ORIGINATED_HOPCNT,
    RETRY_CAP,
    PendingResolution,
    State,
    nat_seen,
)

RESOLUTION_GIVE_UP = 30.0   # a Resolution Request unanswered this long is dropped (FRR)
IMPATIENCE = 0.1            # seconds: Fault.IMPATIENT_RESOLUTION's idea of a late reply

# -- the requester ------------------------------------------------------------------


def resolve(state: State, target: str, reason: str) -> None:
    if state.config.role != "spoke":
        state.log("debug", "only spokes resolve", target=target)
        return
    ip = state.family.address(target)
    if ip is None:
        state.log("error", f"resolve: not an IPv{state.family.version} address", target=target)
        return
    if ip.version == 6 and state.has(Fault.NO_IPV6_RESOLUTION):
        state.log("info", "IPv6 destination not resolved (fault)", target=target)
        return
    target = str(ip)
    if state.own_prefix(target) is not None:
        return
    if (b := state.bindings.get(target)) is not None:
        # The kernel asks for an address we hold a binding for: its neighbour entry is
        # gone (another daemon's, or an entry that failed before we mapped it). Map it
        # again; resolving it would only replace the binding we trust.
        state.log("debug", "already bound: mapping it again", target=target, nbma=b.nbma)
        state.out.append(MapNeighbor(target, b.nbma))
        return
    if any(n.protocol == target for n in state.nhs):
        # An NHS's own address is learnt by registering with it, never resolved: a
        # binding from a reply would expire and take the NHS's neighbour with it.
        state.log("debug", "an NHS: bound when it answers our registration", target=target)
        return
    if any(ip in s.prefix for s in state.shortcuts.values()):
        state.log("debug", "already resolved", target=target)
        return
    if any(r.target == target for r in state.resolutions.values()):
        state.log("debug", "resolution already pending", target=target)
        return
    nhs = state.nhs_up()
    if nhs is None:
        return
    rid = state.next_request_id()
    exts: list[Extension] = [ForwardTransit(), ReverseTransit(), ResponderAddress()]
    flags = FLAG_Q | FLAG_A | FLAG_S      # as FRR: a router, authoritative, stable
    if state.nat_extension():
        flags |= FLAG_NAT
        exts.append(NatAddress(replies.own_nat_cies(state)))
    # 5.2.1: the CIE offers our own binding, with the holding time it may be cached for.
    pkt = Packet(Op.RESOLUTION_REQUEST, state.nbma, state.proto, target, flags, rid,
                 (Cie(0, ANY_HOST if state.config.unique else state.family.host, state.config.mtu,
                      state.config.holdtime),),
                 state.close(exts), state.hopcnt(ORIGINATED_HOPCNT))
    state.resolutions[rid] = PendingResolution(target, pkt, nhs.config.nbma, state.now)
    state.log("info", "resolving", target=target, via_nhs=nhs.config.nbma, request_id=rid, reason=reason)
    _send(state, rid)


def _send(state: State, rid: int) -> None:
    r = state.resolutions[rid]
    r.last_sent = state.now
    state.send(r.dst_nbma, r.packet)
    state.set_timer(("resolve", rid), state.now + r.interval)
    r.interval = min(r.interval * 2, RETRY_CAP)


def timer(state: State, rid: int) -> None:
    r = state.resolutions.get(rid)
    if r is None:
        return
    if state.now - r.first_sent >= RESOLUTION_GIVE_UP:
        del state.resolutions[rid]
        state.log("warning", "resolution unanswered: given up", target=r.target, request_id=rid)
        return
    if state.has(Fault.NEW_REQUEST_ID_ON_RESEND):
        del state.resolutions[rid]
        rid = state.next_request_id()
        r.packet = replace(r.packet, request_id=rid)
        state.resolutions[rid] = r
    _send(state, rid)      # 5.2.0.1: the same Request ID on resend


def reply_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    if pkt.src_proto != state.proto and state.config.role == "hub":
        nh = state.next_hop(pkt.src_proto)
        if nh is not None:
            transit.forward(state, src_nbma, pkt, data, nh)
        else:
            error_indication.send(state, src_nbma, data, ErrorCode.PROTOCOL_ADDRESS_UNREACHABLE,
                                  28 + (data[18] & 0x3F), f"no route to {pkt.src_proto}")
        return
    r = state.resolutions.get(pkt.request_id)
    if r is None or pkt.src_proto != state.proto or r.target != pkt.dst_proto:
        # 5.2.2: "If an unsolicited NHRP Resolution Reply packet is received, an Error
        # Indication of type Invalid NHRP Resolution Reply Received SHOULD be sent".
        error_indication.send(state, src_nbma, data, ErrorCode.INVALID_RESOLUTION_REPLY, 24,
                              f"unsolicited Resolution Reply, request ID {pkt.request_id}")
        if state.has(Fault.CACHE_UNSOLICITED_REPLY) and pkt.cies and pkt.cies[0].client_proto:
            offered = pkt.cies[0]
            nbma = offered.client_nbma or src_nbma
            state.bind(offered.client_proto, nbma, nbma, "dynamic", offered.holding_time or state.config.holdtime)
        return
    if state.has(Fault.IMPATIENT_RESOLUTION) and state.now - r.last_sent > IMPATIENCE:
        state.log("info", "Resolution Reply too late: dropped", request_id=pkt.request_id,
                  after=round(state.now - r.last_sent, 3))
        return
    del state.resolutions[pkt.request_id]
    state.cancel_timer(("resolve", pkt.request_id))
    cie = pkt.cies[0] if pkt.cies else None
    if cie is None or cie.code != 0:
        state.log("warning", "resolution refused (NAK)", target=r.target, code=cie.code if cie else None)
        return
    _shortcut(state, src_nbma, pkt, cie, r)


def _shortcut(state: State, src_nbma: str, pkt: Packet, cie: Cie, r: PendingResolution) -> None:
    """The binding and shortcut a positive Resolution Reply for ``r`` offers."""
    responder = pkt.extension(ResponderAddress)
    rcie = responder.cies[0] if responder and responder.cies else Cie()
    protocol = cie.client_proto or rcie.client_proto or pkt.dst_proto
    claimed = cie.client_nbma or rcie.client_nbma or src_nbma
    seen = nat_seen(pkt.extension(NatAddress), protocol)
    holding = cie.holding_time or state.config.holdtime
    prefix = state.family.network(f"{pkt.dst_proto}/{state.family.host_len(cie.prefix_length)}")
    if prefix is None:
        state.log("warning", "Resolution Reply for an address not of our family: ignored", target=pkt.dst_proto)
        return
    if protocol == state.proto or state.own_prefix(protocol) is not None:
        state.log("warning", "Resolution Reply points at ourselves: ignored", target=r.target)
        return
    old = state.bindings.get(protocol)
    if old is None or old.type == "dynamic":
        # The fault keeps the shortcut and the binding it rests on.
        state.bind(protocol, seen or claimed, claimed, "dynamic",
                   None if state.has(Fault.SHORTCUT_IGNORES_HOLDTIME) else holding)
    state.install_shortcut(prefix, protocol, holding, pkt.dst_proto)


# -- the responder (and the transit NHS) ----------------------------------------------


def request_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    plen = state.own_prefix(pkt.dst_proto)
    if plen is None and state.config.role == "hub":
        nh = state.next_hop(pkt.dst_proto)
        if nh is not None:
            transit.forward(state, src_nbma, pkt, data, nh)
            return
    if error_indication.unknown_compulsory(state, src_nbma, pkt, data):
        return
    if plen is None:
        # 5.2.2 NAK code 12: the responder has no binding for the address.
        state.log("info", "resolution for an unknown address: NAK", target=pkt.dst_proto,
                  src_proto=pkt.src_proto)
        _answer(state, src_nbma, pkt, Cie(CieCode.NO_BINDING_EXISTS, state.family.host))
        return
    # 5.2.2: the CIE names us and the prefix our binding covers.
    nbma = "" if state.has(Fault.REPLY_CIE_WITHOUT_NBMA) else state.nbma
    _answer(state, src_nbma, pkt, Cie(0, plen, state.config.mtu, state.config.holdtime, 0, nbma, state.proto))
    if state.config.role == "spoke" and pkt.flags & FLAG_S and pkt.src_proto \
            and pkt.src_proto != state.proto:
        _cache_requester(state, pkt)


def _answer(state: State, src_nbma: str, pkt: Packet, cie: Cie) -> None:
    # 5.2.2: Q and S "Copied from the NHRP Resolution Request"; A: the answer is
    # authoritative; D: our binding is stable (as FRR sets both).
    flags = pkt.flags & (FLAG_Q | FLAG_S) | (FLAG_A | FLAG_D if cie.code == 0 else 0)
    reply = Packet(Op.RESOLUTION_REPLY, pkt.src_nbma, pkt.src_proto, pkt.dst_proto, flags,
                   state.reply_id(pkt.request_id), (cie,),
                   replies.extensions(state, src_nbma, pkt), state.hopcnt(ORIGINATED_HOPCNT))
    state.send(state.toward(pkt.src_proto, src_nbma), reply)


def _cache_requester(state: State, pkt: Packet) -> None:
    """5.2.1 S bit: the requester's binding in its CIE is stable and may be cached
    (FRR caches it too, so the first reply is routed and later ones go direct)."""
    offered = pkt.cies[0] if pkt.cies else Cie()
    seen = nat_seen(pkt.extension(NatAddress), pkt.src_proto)
    claimed = offered.client_nbma or pkt.src_nbma
    old = state.bindings.get(pkt.src_proto)
    if old is not None and old.type != "dynamic":
        return
    state.bind(pkt.src_proto, seen or claimed, claimed, "dynamic",
               offered.holding_time or state.config.holdtime)
