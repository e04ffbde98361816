"""A hand-driven NHRP station on a lab's NBMA network: the suite's probe.

It owns a raw GRE socket opened in its own namespace (`peers:` in the topology), so
what it sends leaves from its NBMA address like any spoke's packets, and everything
GRE that reaches it is read back and decoded. Crafted and malformed packets come
from `dmvpnkit.nhrp.build`.
"""

from __future__ import annotations

import itertools
import select
import socket
import struct
import time
from typing import Callable

from scapy.packet import Packet

from ..capture.timeline import gre_payload
from ..nhrp.model import DecodeError, Message, Op, decode
from .lab import Lab
from .vici import Initiator

GRE_KEY_PRESENT, GRE_NHRP = 0x2000, 0x2001
SA_FRESH = 2.0     # s an SA seen up is trusted before charon is asked again


class NhrpPeer:
    def __init__(self, lab: Lab, name: str):
        node = lab.topo.nodes[name]
        self.name = name
        self.nbma = str(node.nbma)
        self.proto = str(node.tunnel)
        self.key = lab.topo.dmvpn.gre_key
        self.sock = lab.node(name).socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
        self.sock.bind((self.nbma, 0))
        # Request IDs far from the daemons' own (FRR counts up from 1).
        self._ids = itertools.count(0x5EED0000)
        # In IPsec labs the peer brings up its SA before sending, as nhrpd does (VICI
        # coupling): with trap policies its first probe would be eaten by the acquire.
        self.initiator = Initiator(**lab.driver.ipsec.vici_config(name)) if lab.driver.ipsec is not None else None
        self.identities = {str(n.nbma): str(n.tunnel) for n in lab.topo.nodes.values() if n.tunnel}
        self._sa_seen: dict[str, float] = {}    # NBMA address -> when its SA was last confirmed

    def request_id(self) -> int:
        return next(self._ids)

    def send(self, nhrp: Packet | bytes, to: str) -> None:
        """Send NHRP bytes (well-formed or not) to an NBMA address, GRE-encapsulated."""
        if self.initiator is not None and time.monotonic() - self._sa_seen.get(to, -SA_FRESH) >= SA_FRESH:
            self.initiator.ensure(to, self.identities.get(to))
            self._sa_seen[to] = time.monotonic()
        gre = struct.pack(">HH", GRE_KEY_PRESENT if self.key is not None else 0, GRE_NHRP)
        if self.key is not None:
            gre += struct.pack(">I", self.key)
        self.sock.sendto(gre + bytes(nhrp), (to, 0))

    def receive(self, until: Callable[[Message], bool], timeout: float) -> Message | None:
        """The first NHRP message for which `until` holds, or None after `timeout` s.
        Undecodable packets are skipped here; the capture keeps them as evidence."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                break
            data = self.sock.recv(65535)
            gre = gre_payload(data[(data[0] & 0x0F) * 4:])
            if gre is None or gre[0] != GRE_NHRP:
                continue
            try:
                msg = decode(gre[1])
            except DecodeError:
                continue
            if until(msg):
                return msg
        return None

    def drain(self) -> None:
        while select.select([self.sock], [], [], 0)[0]:
            self.sock.recv(65535)

    def exchange(self, nhrp: Packet | bytes, to: str, timeout: float, retries: int = 0) -> Message | None:
        """Send a request; return the reply with its request ID, or an Error
        Indication about it, whichever comes first (None: silence). Unanswered, it is
        resent `retries` times, unchanged: "The same value MUST be used when resending
        a "request"" (RFC 2332 5.2.0.1)."""
        self.drain()
        rid = decode(bytes(nhrp)).request_id if isinstance(nhrp, Packet) else None
        for _ in range(retries + 1):
            self.send(nhrp, to)
            got = self.receive(lambda m: (m.op_type == Op.ERROR_INDICATION and about(m, rid))
                               or (m.op_type in (Op.RESOLUTION_REPLY, Op.REGISTRATION_REPLY, Op.PURGE_REPLY)
                                   and (rid is None or m.request_id == rid)), timeout)
            if got is not None:
                return got
        return None

    def close(self) -> None:
        self.sock.close()


INNER_REQUEST_ID = slice(24, 28)    # of the packet an Error Indication carries: fixed header (20), lengths and flags (4)


def about(ei: Message, request_id: int | None) -> bool:
    """Whether an Error Indication is about the request with `request_id`: the packet
    in error it carries (5.2.7) has that Request ID. Under load a hub may still be
    answering earlier packets; their indications are not this request's answer. One
    that carries too little to tell (or a request of unknown ID) counts."""
    inner = ei.inner[INNER_REQUEST_ID]
    return request_id is None or len(inner) < 4 or int.from_bytes(inner, "big") == request_id
