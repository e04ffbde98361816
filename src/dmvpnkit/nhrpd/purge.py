"""Purge (5.2.5, 5.2.6): withdrawing our own registration, acting on and answering
Purge Requests, matching Purge Replies."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from . import error_indication
from .codec import FLAG_N, Cie, Op, Packet
from .faults import Fault
from .state import ORIGINATED_HOPCNT, Nhs, State


def withdraw(state: State, nhs: Nhs, no_reply: bool) -> None:
    """Purge our registration with ``nhs`` (a reply asked for unless ``no_reply``)."""
    rid = state.next_request_id()
    pkt = Packet(Op.PURGE_REQUEST, state.nbma, state.proto, nhs.protocol or state.proto,
                 FLAG_N if no_reply else 0, rid, (Cie(0, state.family.host, 0, 0, 0, "", state.proto),),
                 state.close(()), state.hopcnt(ORIGINATED_HOPCNT))
    if not no_reply:
        state.purges.add(rid)
    state.send(nhs.config.nbma, pkt)
    state.log("info", "purging our registration", nhs=nhs.config.nbma, request_id=rid)


def request_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    if state.has(Fault.IGNORE_PURGE):
        state.log("info", "Purge Request ignored (fault)", src=src_nbma)
        return
    if error_indication.unknown_compulsory(state, src_nbma, pkt, data):
        return
    # 5.2.5: "When a station receives an NHRP Purge Request, it MUST discard any
    # previously cached information that matches the information in the CIEs."
    for cie in pkt.cies or (Cie(0, state.family.host, 0, 0, 0, "", pkt.src_proto),):
        _discard(state, src_nbma, pkt, cie)
    if pkt.flags & FLAG_N:
        return
    if state.has(Fault.NO_PURGE_REPLY):
        state.log("info", "Purge Reply suppressed (fault)", request_id=pkt.request_id)
        return
    # 5.2.6: "formed from an NHRP Purge Request by merely changing the type code in
    # the request to 6"; 5.2.5: returned "even if the station does not have a
    # matching cache entry assuming that the "N" bit is off".
    reply = replace(pkt, op_type=Op.PURGE_REPLY, request_id=state.reply_id(pkt.request_id),
                    hopcnt=state.hopcnt(ORIGINATED_HOPCNT), extensions=state.close(pkt.extensions))
    state.send(src_nbma, reply)


def _discard(state: State, src_nbma: str, pkt: Packet, cie: Cie) -> None:
    """The bindings and shortcuts one CIE of a Purge Request covers."""
    proto = cie.client_proto or pkt.src_proto
    net = state.family.network(f"{proto}/{state.family.host_len(cie.prefix_length)}")
    if net is None:
        return
    for b in [b for b in state.bindings.values() if ipaddress.ip_address(b.protocol) in net]:
        if b.type != "dynamic":
            continue
        if state.config.role == "hub" and pkt.src_proto != b.protocol \
                and src_nbma != b.nbma and pkt.src_nbma != b.claimed_nbma:
            state.log("warning", "Purge Request for another station's binding ignored",
                      protocol=b.protocol, src=src_nbma)
            continue
        state.unbind(b.protocol, "purged")
    for s in [s for s in state.shortcuts.values() if s.prefix.overlaps(net)]:
        state.drop_shortcut(s.prefix, "purged")


def reply_in(state: State, src_nbma: str, pkt: Packet, data: bytes) -> None:
    if pkt.request_id in state.purges:
        state.purges.discard(pkt.request_id)
        state.log("info", "purge acknowledged", src=src_nbma, request_id=pkt.request_id)
    else:
        state.log("info", "Purge Reply matches no request: dropped", src=src_nbma,
                  request_id=pkt.request_id)
