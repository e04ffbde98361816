"""The NHRP node as a sans-IO engine: events in, actions out, no sockets, no clock.

    engine = Engine(config, now=clock())
    actions = engine.handle(Start())
    ...
    actions = engine.tick(clock())          # whenever next_deadline() has passed
    actions = engine.handle(PacketIn(src, data), now=clock())

Time moves only through ``tick(now)`` (which also fires due timers) or the optional
``now`` of ``handle`` (which only sets the clock). ``handle`` never raises on what a
peer sends: malformed input becomes a ``Log`` and, where RFC 2332 asks for one, an
Error Indication.

Roles. A *spoke* (NHC) registers with its NHSs (5.2.3), resolves addresses through
them (5.2.1) and answers Resolution Requests for its own address and LAN prefixes.
A *hub* (NHS) keeps the registrations (5.2.3/5.2.4), relays Resolution Requests and
Replies between spokes as a transit NHS (5.3.2/5.3.3) and sends Traffic Indications
(Cisco/FRR DMVPN phase 3) for hairpinned traffic.

Where FRR and the RFC differ, the RFC wins and the FRR habit is noted; where the RFC
is silent, FRR's habit is followed (e.g. the NAT extension's layout, replies
routed back through the hub).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from .codec import (
    FLAG_A,
    FLAG_D,
    FLAG_N,
    FLAG_NAT,
    FLAG_Q,
    FLAG_S,
    FLAG_U_REGISTRATION,
    Authentication,
    Cie,
    CieCode,
    CodecError,
    EncodeError,
    End,
    ErrorCode,
    Extension,
    ForwardTransit,
    NatAddress,
    Op,
    Packet,
    ResponderAddress,
    ReverseTransit,
    UnknownExtension,
    checksum_ok,
    decode,
    encode,
    peek,
)
from .config import Config, NhsConfig
from .events import (
    Action,
    AddRoute,
    DelRoute,
    Event,
    Hairpin,
    Log,
    LogLevel,
    MapNeighbor,
    NbmaChanged,
    PacketIn,
    Resolve,
    Send,
    Start,
    Stop,
    UnmapNeighbor,
)
from .faults import Fault

HOST = 32
ANY_HOST = 0xFF             # CIE prefix length "the whole address" (5.2.1 with U set)
ORIGINATED_HOPCNT = 64      # as FRR; 5.1 leaves the value to the sender
NEIGHBOUR_HOPCNT = 1        # registrations and indications go one hop (as FRR)
RETRY_FIRST = 1.0           # seconds; doubles on each unanswered retry ...
RETRY_CAP = 64.0            # ... up to this (FRR's nhrp_reg_timeout)
NHS_DOWN_AFTER = 16.0       # an NHS counts as down once the backoff reaches this (FRR)
RESOLUTION_GIVE_UP = 30.0   # a Resolution Request unanswered this long is dropped (FRR)
IMPATIENCE = 0.1            # seconds: Fault.IMPATIENT_RESOLUTION's idea of a late reply
INDICATION_INTERVAL = 15.0  # at most one Traffic Indication per (src /24, dst /24) per this
INDICATION_PAYLOAD = 128    # bytes of the triggering packet carried (NFLOG range as FRR's docs)
ERRORED_PACKET_MAX = 1400   # bytes of the offending packet an Error Indication carries
REQUEST_ID_MAX = 0xFFFFFFFF

Address = ipaddress.IPv4Address
Network = ipaddress.IPv4Network


@dataclass(slots=True)
class _Binding:
    """A cache entry: protocol address -> NBMA address (5.2.0.1 "binding")."""

    protocol: str
    nbma: str                   # where we send (post-NAT where known)
    claimed_nbma: str           # what the station said its NBMA address is
    type: str                   # "dynamic" | "nhs"
    expires: float | None       # None: until withdrawn (or IGNORE_HOLDTIME)
    unique: bool = False        # 5.2.3: the registration had the U bit


@dataclass(slots=True)
class _Nhs:
    config: NhsConfig
    protocol: str               # configured or learned; "" while unknown
    up: bool = False
    request_id: int | None = None   # outstanding Registration Request
    packet: Packet | None = None    # ... resent unchanged until answered (5.2.0.1)
    interval: float = RETRY_FIRST


@dataclass(slots=True)
class _Resolution:
    target: str
    packet: Packet
    dst_nbma: str
    first_sent: float
    interval: float = RETRY_FIRST
    last_sent: float = 0.0


@dataclass(slots=True)
class _Shortcut:
    prefix: Network
    via: str
    expires: float | None


def _host_len(plen: int) -> int:
    """CIE prefix lengths 0 and >= 32 (0xFF) mean the whole address (5.2.0.1)."""
    return HOST if plen == 0 or plen >= HOST else plen


def _ipv4(text: str) -> Address | None:
    try:
        return Address(text)
    except ValueError:
        return None


def _inner_addresses(packet: bytes) -> tuple[str, str] | None:
    """(source, destination) of an IPv4 packet, None if it is not one."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    return str(Address(packet[12:16])), str(Address(packet[16:20]))


class Engine:
    """One NHRP node. See the module docstring for the contract."""

    def __init__(self, config: Config, now: float) -> None:
        self.config = config
        self._now = now
        self._nbma = config.nbma_address
        self._proto = config.protocol_address
        self._nat_nbma = ""                      # our post-NAT address, as an NHS reported it
        self._started = self._stopped = False
        self._out: list[Action] = []
        self._timers: dict[tuple[str, Any], float] = {}
        self._request_id = 0
        self._bindings: dict[str, _Binding] = {}
        self._nhs = [_Nhs(n, n.protocol or "") for n in config.nhs]
        self._registrations: dict[int, int] = {}         # request ID -> NHS index
        self._resolutions: dict[int, _Resolution] = {}   # request ID -> pending resolution
        self._purges: set[int] = set()
        self._shortcuts: dict[Network, _Shortcut] = {}
        self._indications: dict[tuple[Network, Network], float] = {}
        self._lan = sorted(config.lan_prefixes, key=lambda n: -n.prefixlen)
        self._routes = sorted(config.routes, key=lambda r: -r.prefix.prefixlen)

    # -- public API -----------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._now

    @property
    def nbma_address(self) -> str:
        return self._nbma

    def handle(self, event: Event, now: float | None = None) -> list[Action]:
        """Process one event; ``now`` (if given) moves the clock first, without
        firing timers (that is ``tick``'s job)."""
        if now is not None:
            self._now = max(self._now, now)
        if isinstance(event, Start):
            self._start()
        elif self._stopped:
            if isinstance(event, PacketIn) and event.data[17:18] == bytes([Op.PURGE_REPLY]):
                self._packet_in(event.src_nbma, bytes(event.data))     # our purge, answered
            else:
                self._log("debug", "stopped: event ignored", event=type(event).__name__)
        elif not self._started:
            self._log("debug", "not started: event ignored", event=type(event).__name__)
        elif isinstance(event, PacketIn):
            self._packet_in(event.src_nbma, bytes(event.data))
        elif isinstance(event, Hairpin):
            self._hairpin(bytes(event.packet))
        elif isinstance(event, Resolve):
            self._resolve(event.target, "resolve")
        elif isinstance(event, NbmaChanged):
            self._nbma_changed(event.address)
        elif isinstance(event, Stop):
            self._stop()
        else:
            self._log("error", "unknown event", event=repr(event))
        return self._flush()

    def tick(self, now: float) -> list[Action]:
        """Move the clock to ``now`` and fire every timer due by then, in order."""
        self._now = max(self._now, now)
        while self._timers:
            key, when = min(self._timers.items(), key=lambda kv: kv[1])
            if when > self._now:
                break
            del self._timers[key]
            self._fire(key)
        return self._flush()

    def next_deadline(self) -> float | None:
        return min(self._timers.values()) if self._timers else None

    def views(self) -> dict[str, list[dict[str, Any]]]:
        """State in the lab engine's normalised shape (labs.views): cache, nhs, shortcuts."""
        iface = self.config.interface
        cache = [{"protocol": self._proto, "nbma": self._nbma, "claimed_nbma": self._nbma,
                  "type": "local", "used": False, "interface": iface}]
        cache += [{"protocol": b.protocol, "nbma": b.nbma, "claimed_nbma": b.claimed_nbma,
                   "type": b.type, "used": False, "interface": iface}
                  for b in sorted(self._bindings.values(), key=lambda b: Address(b.protocol))]
        nhs = [{"interface": iface, "fqdn": n.config.nbma, "nbma": n.config.nbma,
                "protocol": n.protocol if n.up or n.config.protocol else ""} for n in self._nhs]
        shortcuts = [{"prefix": str(s.prefix), "via": s.via, "type": "dynamic", "identity": ""}
                     for s in sorted(self._shortcuts.values(), key=lambda s: s.prefix)]
        return {"cache": cache, "nhs": nhs, "shortcuts": shortcuts}

    # -- plumbing -------------------------------------------------------------------

    def _flush(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _log(self, level: LogLevel, message: str, **fields: Any) -> None:
        self._out.append(Log(level, message, fields))

    def _has(self, fault: Fault) -> bool:
        return fault in self.config.faults

    def _next_request_id(self) -> int:
        # 5.2.0.1: "a value which, when coupled with the address of the source,
        # provides a unique identifier for the information contained in a request".
        self._request_id = self._request_id % REQUEST_ID_MAX + 1
        return self._request_id

    def _reply_id(self, request_id: int) -> int:
        # 5.2.0.1: "This value is copied directly from an "request" packet into the
        # associated "reply"."
        return (request_id + 1) & REQUEST_ID_MAX if self._has(Fault.WRONG_REQUEST_ID) else request_id

    def _hopcnt(self, value: int) -> int:
        return 0 if self._has(Fault.ZERO_HOPCNT) else value

    def _close(self, extensions: Iterable[Extension]) -> tuple[Extension, ...]:
        """Our own authentication (regenerated at each hop, 5.3.4) and the End
        extension (5.3.0) after ``extensions``; nothing at all when there are none."""
        out: list[Extension] = [e for e in extensions if not isinstance(e, (End, Authentication))]
        if self.config.auth is not None:
            out.append(Authentication(self.config.auth.encode()))
        return (*out, End()) if out else ()

    def _send(self, dst_nbma: str, pkt: Packet) -> None:
        try:
            data = encode(pkt)
        except EncodeError as e:        # our bug, never the peer's: say so and carry on
            self._log("error", "cannot encode a packet we built", field=e.field, error=str(e),
                      packet=repr(pkt))
            return
        if self._has(Fault.BAD_CHECKSUM):
            # Flipping the low byte changes the sum by 1..255: never all-ones again.
            data = data[:13] + bytes([data[13] ^ 0xFF]) + data[14:]
        self._out.append(Send(dst_nbma, data))

    def _set_timer(self, key: tuple[str, Any], when: float) -> None:
        self._timers[key] = when

    def _cancel_timer(self, key: tuple[str, Any]) -> None:
        self._timers.pop(key, None)

    def _fire(self, key: tuple[str, Any]) -> None:
        kind, arg = key
        if kind == "register":
            self._register_timer(arg)
        elif kind == "resolve":
            self._resolve_timer(arg)
        elif kind == "expire":
            self._expire_binding(arg)
        elif kind == "shortcut":
            self._expire_shortcut(arg)

    # -- addresses and routing ------------------------------------------------------

    def _own_prefix(self, addr: str) -> int | None:
        """The prefix length to answer with if ``addr`` is ours: our tunnel address
        (a host) or an address in one of our LAN prefixes."""
        if addr == self._proto:
            return HOST
        ip = _ipv4(addr)
        if ip is None:
            return None
        return next((n.prefixlen for n in self._lan if ip in n), None)

    def _next_hop(self, addr: str) -> tuple[str, str] | None:
        """(protocol, NBMA) of the station to forward toward ``addr``: a binding for
        the address itself, else the longest configured route whose ``via`` is bound."""
        b = self._bindings.get(addr)
        if b is not None:
            return b.protocol, b.nbma
        ip = _ipv4(addr)
        if ip is None:
            return None
        for r in self._routes:
            if ip in r.prefix:
                via = self._bindings.get(r.via)
                if via is not None:
                    return via.protocol, via.nbma
        return None

    def _nhs_up(self) -> _Nhs | None:
        return next((n for n in self._nhs if n.up), self._nhs[0] if self._nhs else None)

    def _toward(self, addr: str, fallback: str) -> str:
        """NBMA address to send a packet for ``addr`` to: a hub sends it where the
        route points (else ``fallback``, the previous hop); a spoke uses a binding, or
        its NHS (FRR routes replies through the hub the same way)."""
        nh = self._next_hop(addr)
        if nh is not None:
            return nh[1]
        if self.config.role == "spoke":
            if any(n.config.nbma == fallback for n in self._nhs):
                return fallback
            nhs = self._nhs_up()
            if nhs is not None:
                return nhs.config.nbma
        return fallback

    # -- bindings (the cache) -------------------------------------------------------

    def _bind(self, protocol: str, nbma: str, claimed: str, kind: str, holding: int | None,
              unique: bool = False) -> None:
        old = self._bindings.get(protocol)
        expires = None if holding is None or self._has(Fault.IGNORE_HOLDTIME) else self._now + holding
        self._bindings[protocol] = _Binding(protocol, nbma, claimed, kind, expires, unique)
        if old is None or old.nbma != nbma:
            self._out.append(MapNeighbor(protocol, nbma))
        if expires is None:
            self._cancel_timer(("expire", protocol))
        else:
            self._set_timer(("expire", protocol), expires)

    def _unbind(self, protocol: str, reason: str) -> None:
        b = self._bindings.pop(protocol, None)
        self._cancel_timer(("expire", protocol))
        if b is None:
            return
        self._out.append(UnmapNeighbor(protocol))
        self._log("info", f"binding removed: {reason}", protocol=protocol, nbma=b.nbma, type=b.type)
        for s in [s for s in self._shortcuts.values() if s.via == protocol]:
            self._drop_shortcut(s.prefix, f"its next hop {protocol} went away")

    def _expire_binding(self, protocol: str) -> None:
        b = self._bindings.get(protocol)
        if b is not None and b.expires is not None and b.expires <= self._now:
            # 5.2.0.1: "Cached information SHALL be discarded when the holding time expires."
            self._unbind(protocol, "holding time expired")

    def _drop_shortcut(self, prefix: Network, reason: str) -> None:
        s = self._shortcuts.pop(prefix, None)
        self._cancel_timer(("shortcut", prefix))
        if s is not None:
            if s.prefix != Network(f"{s.via}/32"):
                self._out.append(DelRoute(str(prefix)))
            self._log("info", f"shortcut removed: {reason}", prefix=str(prefix), via=s.via)

    def _expire_shortcut(self, prefix: Network) -> None:
        s = self._shortcuts.get(prefix)
        if s is not None and s.expires is not None and s.expires <= self._now:
            self._drop_shortcut(prefix, "holding time expired")

    # -- lifecycle ------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            self._log("debug", "already started")
            return
        self._started = True
        self._log("info", "started", role=self.config.role, protocol=self._proto, nbma=self._nbma)
        for i in range(len(self._nhs)):
            self._register(i, fresh=True)

    def _stop(self) -> None:
        self._stopped = True
        for nhs in self._nhs:
            if nhs.up:
                # 5.2.5: a Purge Request "from an NHC to an NHS with which the NHC had
                # previously registered ... to invalidate its registration".
                self._purge_own(nhs, no_reply=False)
        for prefix in list(self._shortcuts):
            self._drop_shortcut(prefix, "stopping")
        for protocol in list(self._bindings):
            self._unbind(protocol, "stopping")
        self._timers.clear()
        self._log("info", "stopped")

    def _nbma_changed(self, address: str) -> None:
        if _ipv4(address) is None:
            self._log("error", "NbmaChanged with an address that is not IPv4", address=address)
            return
        if address == self._nbma:
            return
        old, self._nbma = self._nbma, address
        self._nat_nbma = ""
        self._log("info", "NBMA address changed", old=old, new=address)
        for i, nhs in enumerate(self._nhs):
            if nhs.up:
                # The old binding would make a unique re-registration fail with code 14.
                self._purge_own(nhs, no_reply=True)
            self._register(i, fresh=True)

    # -- registration: the spoke side (5.2.3, 5.2.4) --------------------------------

    def _registration_request(self, nhs: _Nhs) -> Packet:
        unique = self.config.unique or self._has(Fault.REGISTER_UNIQUE)
        flags = FLAG_U_REGISTRATION if unique else 0
        exts: list[Extension] = [ForwardTransit(), ReverseTransit(), ResponderAddress()]
        if self._nat_extension():
            flags |= FLAG_NAT
            # FRR's layout: the NHS as we know it (0.0.0.0 while its address is unknown).
            exts.append(NatAddress((Cie(0, HOST, self.config.mtu, 0, 0, nhs.config.nbma,
                                        nhs.protocol or "0.0.0.0"),)))
        # 5.2.3: with U set "the prefix length MUST be 0xFF"; the NHC "uses its own
        # address as dst if the NHS is unknown" (FRR).
        return Packet(Op.REGISTRATION_REQUEST, self._nbma, self._proto, nhs.protocol or self._proto,
                      flags, self._next_request_id(),
                      (Cie(0, ANY_HOST if unique else HOST, self.config.mtu, self.config.holdtime),),
                      self._close(exts), self._hopcnt(NEIGHBOUR_HOPCNT))

    def _nat_extension(self) -> bool:
        return self.config.nat_extension and not self._has(Fault.DROP_NAT_EXTENSION)

    def _register(self, i: int, fresh: bool) -> None:
        nhs = self._nhs[i]
        if fresh or nhs.packet is None or self._has(Fault.NEW_REQUEST_ID_ON_RESEND):
            if nhs.request_id is not None:
                self._registrations.pop(nhs.request_id, None)
            nhs.packet = self._registration_request(nhs)
            nhs.request_id = nhs.packet.request_id
            self._registrations[nhs.request_id] = i
            if fresh:
                nhs.interval = RETRY_FIRST
        assert nhs.packet is not None
        self._send(nhs.config.nbma, nhs.packet)
        retry = self.config.holdtime / 3 if self._has(Fault.NO_REGISTRATION_RETRY) else nhs.interval
        self._set_timer(("register", i), self._now + retry)
        self._log("debug", "registration sent", nhs=nhs.config.nbma, request_id=nhs.request_id,
                  retry_in=nhs.interval)
        nhs.interval = min(nhs.interval * 2, RETRY_CAP)

    def _register_timer(self, i: int) -> None:
        nhs = self._nhs[i]
        if nhs.request_id is not None and nhs.up and nhs.interval >= NHS_DOWN_AFTER:
            self._nhs_down(nhs)
        # Unanswered: resend the same request (5.2.0.1: "The same value MUST be used
        # when resending a "request""); answered (renewal time) or NAKed: a new one.
        self._register(i, fresh=False)

    def _nhs_down(self, nhs: _Nhs) -> None:
        nhs.up = False
        self._log("warning", "NHS not answering: down", nhs=nhs.config.nbma, protocol=nhs.protocol)
        if nhs.protocol and self._bindings.get(nhs.protocol, None) is not None:
            self._unbind(nhs.protocol, "NHS down")

    def _registration_reply_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        i = self._registrations.get(pkt.request_id)
        if i is None or pkt.src_proto != self._proto:
            # 5.2.0.1: a reply is matched by Request ID and source address.
            self._log("info", "Registration Reply matches no request: dropped", src=src_nbma,
                      request_id=pkt.request_id, src_proto=pkt.src_proto)
            return
        del self._registrations[pkt.request_id]
        nhs = self._nhs[i]
        nhs.request_id, nhs.packet = None, None
        codes = [c.code for c in pkt.cies]
        if not codes or any(codes):
            # 5.2.4: "If the Code field of a CIE ... has anything other than zero in it
            # then the NHRP Registration Reply is a NAK". Retry on the backoff timer.
            self._log("warning", "registration refused (NAK)", nhs=nhs.config.nbma, codes=codes)
            return
        responder = pkt.extension(ResponderAddress)
        rcie = responder.cies[0] if responder and responder.cies else None
        protocol = (rcie.client_proto if rcie and rcie.client_proto else
                    pkt.dst_proto if pkt.dst_proto != self._proto else nhs.protocol)
        nat = pkt.extension(NatAddress)
        if nat is not None:
            seen = next((c.client_nbma for c in nat.cies
                         if c.client_proto == self._proto and c.client_nbma), "")
            if seen and seen != self._nbma and seen != self._nat_nbma:
                self._log("info", "NAT detected: the NHS sees us at another address", nbma=self._nbma,
                          post_nat=seen)
            self._nat_nbma = seen if seen != self._nbma else ""
        was_up, nhs.up = nhs.up, True
        if protocol:
            if nhs.protocol and nhs.protocol != protocol:
                self._unbind(nhs.protocol, "NHS protocol address changed")
            nhs.protocol = protocol
            self._bind(protocol, nhs.config.nbma, rcie.client_nbma if rcie and rcie.client_nbma
                       else nhs.config.nbma, "nhs", None)
        if not was_up:
            self._log("info", "registered", nhs=nhs.config.nbma, protocol=protocol)
        nhs.interval = RETRY_FIRST
        if self._has(Fault.NO_RENEWAL):
            self._cancel_timer(("register", i))
        else:
            # 5.2.3: "It is recommended that the NHRP Registration Request packet be
            # sent at an interval equal to one-third of the Holding Time specified therein."
            self._set_timer(("register", i), self._now + self.config.holdtime / 3)

    def _purge_own(self, nhs: _Nhs, no_reply: bool) -> None:
        rid = self._next_request_id()
        pkt = Packet(Op.PURGE_REQUEST, self._nbma, self._proto, nhs.protocol or self._proto,
                     FLAG_N if no_reply else 0, rid, (Cie(0, HOST, 0, 0, 0, "", self._proto),),
                     self._close(()), self._hopcnt(ORIGINATED_HOPCNT))
        if not no_reply:
            self._purges.add(rid)
        self._send(nhs.config.nbma, pkt)
        self._log("info", "purging our registration", nhs=nhs.config.nbma, request_id=rid)

    # -- registration: the NHS side (5.2.3, 5.2.4) ----------------------------------

    def _registration_request_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        if self.config.role != "hub":
            self._log("info", "Registration Request at a spoke: dropped", src=src_nbma)
            return
        if self._unknown_compulsory(src_nbma, pkt, data):
            return
        unique = bool(pkt.flags & FLAG_U_REGISTRATION)
        cies = tuple(self._register_cie(src_nbma, pkt, c, unique) for c in pkt.cies)
        # 5.2.4: "formed from an NHRP Registration Request by changing the type code to
        # 4, updating the CIE Code field, and filling in the appropriate extensions".
        # A DMVPN spoke with `nhs dynamic` does not know our protocol address and puts its
        # own there; FRR and IOS hubs answer with theirs, and FRR spokes learn the NHS's
        # address from it (no route to the hub otherwise). Do the same for such requests.
        dst = self._proto if pkt.dst_proto == pkt.src_proto else pkt.dst_proto
        reply = replace(pkt, op_type=Op.REGISTRATION_REPLY, request_id=self._reply_id(pkt.request_id),
                        dst_proto=dst, cies=cies, hopcnt=self._hopcnt(ORIGINATED_HOPCNT),
                        extensions=self._reply_extensions(src_nbma, pkt))
        # 5.2.4: sent over "a direct NBMA level connection" to the NHC: where it came from.
        self._send(src_nbma, reply)

    def _register_cie(self, src_nbma: str, pkt: Packet, cie: Cie, unique: bool) -> Cie:
        protocol = cie.client_proto or pkt.src_proto
        claimed = cie.client_nbma or pkt.src_nbma
        nbma = claimed if self._has(Fault.BIND_CLAIMED_NBMA) else src_nbma
        holding = cie.holding_time or self.config.holdtime

        def nak(code: CieCode, why: str) -> Cie:
            self._log("warning", f"registration refused: {why}", protocol=protocol, nbma=nbma,
                      claimed_nbma=claimed, code=int(code))
            return replace(cie, code=code, holding_time=0)   # 5.2.0.1: 0 on a NAK

        if not protocol or not claimed:
            return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, "no protocol or NBMA address")
        if _host_len(cie.prefix_length) != HOST:
            return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, "only host registrations are accepted")
        if protocol == self._proto:
            return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, "that is the NHS's own address")
        old = self._bindings.get(protocol)
        if old is not None and old.type != "dynamic":
            return nak(CieCode.ADMINISTRATIVELY_PROHIBITED, f"a {old.type} entry holds the address")
        if (old is not None and old.unique and (old.claimed_nbma, old.nbma) != (claimed, nbma)
                and not self._has(Fault.ACCEPT_UNIQUE_CONFLICT)):
            # 5.2.3: "Any attempt to register a binding ... MUST be rejected with a Code
            # of "14 - Unique Internetworking Layer Address Already Registered" if the
            # replying NHS already has a cache entry for the protocol address and the
            # cache entry has the "uniqueness" bit set." (also for a request without U:
            # the unique binding stands until it expires or is purged)
            return nak(CieCode.UNIQUE_ALREADY_REGISTERED,
                       f"unique binding to {old.claimed_nbma} (seen at {old.nbma})")
        if old is None or (old.nbma, old.claimed_nbma) != (nbma, claimed):
            self._log("info", "registered", protocol=protocol, nbma=nbma, claimed_nbma=claimed,
                      holding_time=holding, unique=unique)
        self._bind(protocol, nbma, claimed, "dynamic", holding, unique)
        return replace(cie, code=CieCode.SUCCESS)

    # -- extensions in replies (5.3) ------------------------------------------------

    def _responder_cie(self) -> Cie:
        return Cie(0, HOST, self.config.mtu, self.config.holdtime, 0, self._nbma, self._proto)

    def _reply_extensions(self, src_nbma: str, pkt: Packet) -> tuple[Extension, ...]:
        """The request's extensions as a responder returns them (5.3)."""
        out: list[Extension] = []
        for ext in pkt.extensions:
            if isinstance(ext, ResponderAddress) and not self._has(Fault.NO_RESPONDER_EXTENSION):
                # 5.3.1: "If an NHS is generating a "reply" ... the NHS SHALL include
                # this extension, containing its protocol address".
                out.append(ResponderAddress((self._responder_cie(),), ext.compulsory))
            elif isinstance(ext, NatAddress) and self.config.nat_extension:
                if not self._has(Fault.DROP_NAT_EXTENSION):
                    out.append(self._nat_reply(src_nbma, pkt, ext))
            elif isinstance(ext, UnknownExtension):
                # 5.3: an ignored extension in a request "MUST be returned, unchanged,
                # in the corresponding "reply"".
                if not self._has(Fault.DROP_UNKNOWN_EXTENSION):
                    out.append(ext)
            else:
                # Transit records: "The responding NHS ... SHALL NOT update this
                # extension" (5.3.2); vendor data and the rest go back as they came.
                out.append(ext)
        return self._close(out)

    def _nat_reply(self, src_nbma: str, pkt: Packet, ext: NatAddress) -> NatAddress:
        if pkt.op_type == Op.REGISTRATION_REQUEST:
            # FRR/Cisco: the request's CIEs, then, when the source is NATed, one CIE
            # with the address we see it at for its protocol address.
            if src_nbma != pkt.src_nbma and pkt.src_proto:
                return NatAddress((*ext.cies, Cie(0, HOST, self.config.mtu, 0, 0, src_nbma,
                                                  pkt.src_proto)), ext.compulsory)
            return ext
        # A responder tells where *it* is seen, if an NHS told it (FRR).
        own = (Cie(0, HOST, self.config.mtu, 0, 0, self._nat_nbma, self._proto),) if self._nat_nbma else ()
        return NatAddress(own, ext.compulsory)

    def _unknown_compulsory(self, src_nbma: str, pkt: Packet, data: bytes) -> bool:
        """5.3: an unrecognised extension with C set puts a request we answer "in
        error"; "the responder MUST return an NHRP Error Indication of type
        Unrecognized Extension". True if it did (the packet is then dropped)."""
        for i, ext in enumerate(pkt.extensions):
            if isinstance(ext, UnknownExtension) and ext.compulsory:
                self._error(src_nbma, data, ErrorCode.UNRECOGNIZED_EXTENSION, pkt.ext_offsets[i],
                            f"unrecognised compulsory extension type {ext.type}")
                return True
        return False

    # -- Error Indications (5.2.7) --------------------------------------------------

    def _error(self, dst_nbma: str, data: bytes, code: ErrorCode, offset: int, reason: str) -> None:
        hdr = peek(data)
        fields: dict[str, Any] = {"src": dst_nbma, "code": int(code), "offset": offset, "reason": reason,
                                  "head": data[:32].hex()}
        if hdr is not None and hdr.op_type == Op.ERROR_INDICATION:
            # 5.2.7: "An NHRP Error Indication packet SHALL NEVER be generated in
            # response to another NHRP Error Indication packet."
            self._log("info", "bad Error Indication dropped (never answered)", **fields)
            return
        if self._has(Fault.NO_ERROR_INDICATION):
            self._log("info", "dropped; Error Indication suppressed (fault)", **fields)
            return
        self._log("info", "dropped; sending Error Indication", **fields)
        pktsz = hdr.pktsz if hdr is not None and 20 <= hdr.pktsz <= len(data) else len(data)
        # Source: the station that saw the error; destination: the errored packet's
        # source protocol address. "no extensions may be added to an NHRP Error Indication."
        ei = Packet(Op.ERROR_INDICATION, self._nbma, self._proto, hdr.src_proto if hdr else "",
                    error_code=code, error_offset=offset, hopcnt=self._hopcnt(ORIGINATED_HOPCNT),
                    payload=data[:min(pktsz, ERRORED_PACKET_MAX)])
        self._send(dst_nbma, ei)

    def _error_indication_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        if self.config.role == "hub" and pkt.dst_proto and pkt.dst_proto != self._proto:
            if (pkt.src_nbma, pkt.src_proto) == (self._nbma, self._proto):
                # 5.2.7: an NHS seeing its own addresses as the source of a transiting
                # Error Indication "will quietly drop the packet".
                return
            nh = self._next_hop(pkt.dst_proto)
            if nh is None or pkt.hopcnt == 0:
                self._log("info", "Error Indication not forwarded", dst_proto=pkt.dst_proto,
                          hopcnt=pkt.hopcnt)
                return
            hop = pkt.hopcnt if self._has(Fault.NO_HOPCNT_DECREMENT) else pkt.hopcnt - 1
            self._send(nh[1], replace(pkt, hopcnt=hop, extensions=()))
            return
        inner = peek(pkt.payload)
        fields: dict[str, Any] = {"src": src_nbma, "code": pkt.error_code, "offset": pkt.error_offset}
        if inner is not None:
            fields.update(errored_type=inner.op_type, errored_request_id=inner.request_id)
        self._log("warning", "Error Indication received", **fields)
        if inner is None or inner.src_proto != self._proto:
            return
        if inner.op_type == Op.REGISTRATION_REQUEST and inner.request_id in self._registrations:
            nhs = self._nhs[self._registrations.pop(inner.request_id)]
            nhs.request_id, nhs.packet = None, None     # the backoff timer sends a new one
        elif inner.op_type == Op.RESOLUTION_REQUEST and inner.request_id in self._resolutions:
            self._resolutions.pop(inner.request_id)
            self._cancel_timer(("resolve", inner.request_id))

    # -- receiving ------------------------------------------------------------------

    def _packet_in(self, src_nbma: str, data: bytes) -> None:
        if len(data) < 20:
            self._log("info", "runt packet dropped", src=src_nbma, size=len(data), head=data.hex())
            return
        hdr = peek(data)
        assert hdr is not None
        checked = 20 <= hdr.pktsz <= len(data)
        if checked and not checksum_ok(data[:hdr.pktsz]) and not self._has(Fault.ACCEPT_BAD_CHECKSUM):
            # 5.1/5.2.7: a failed checksum is a Protocol Error; as FRR, no answer.
            self._log("info", "bad checksum: dropped", src=src_nbma, chksum=data[12:14].hex(),
                      op_type=hdr.op_type)
            return
        if hdr.version != 1 and self._has(Fault.ACCEPT_ANY_VERSION):
            data = data[:16] + b"\x01" + data[17:]
        try:
            pkt = decode(data)
        except CodecError as e:
            # 5.2.7 code 7: "A generic packet processing error has occurred (e.g.,
            # invalid version number, invalid protocol type, failed checksum, etc.)"
            self._error(src_nbma, data, ErrorCode.PROTOCOL_ERROR, e.offset,
                        f"{e.field}: {e.detail}")
            return
        if not self._authentic(src_nbma, pkt, data):
            return
        handler = self._handlers[pkt.op_type]
        handler(self, src_nbma, pkt, data)

    def _authentic(self, src_nbma: str, pkt: Packet, data: bytes) -> bool:
        if self.config.auth is None:
            return True
        want = self.config.auth.encode()
        for i, ext in enumerate(pkt.extensions):
            if isinstance(ext, Authentication):
                if ext.spi == 1 and ext.password == want:
                    return True
                offset = pkt.ext_offsets[i]
                break
        else:
            offset = 14     # ar$extoff: where the missing extension should be
        if pkt.op_type == Op.ERROR_INDICATION and pkt.error_code == ErrorCode.AUTHENTICATION_FAILURE:
            self._log("info", "unauthenticated Error Indication dropped", src=src_nbma)
            return False
        # 5.3.4: "If a received packet fails the authentication test, the station SHALL
        # generate an Error Indication of type "Authentication Failure" and discard the packet."
        self._error(src_nbma, data, ErrorCode.AUTHENTICATION_FAILURE, offset, "authentication failed")
        return False

    # -- resolution (5.2.1, 5.2.2) --------------------------------------------------

    def _resolve(self, target: str, reason: str) -> None:
        if self.config.role != "spoke":
            self._log("debug", "only spokes resolve", target=target)
            return
        ip = _ipv4(target)
        if ip is None:
            self._log("error", "resolve: not an IPv4 address", target=target)
            return
        target = str(ip)
        if self._own_prefix(target) is not None:
            return
        covering = next((s for s in self._shortcuts.values() if ip in s.prefix), None)
        if covering is not None or target in self._bindings:
            self._log("debug", "already resolved", target=target)
            return
        if any(r.target == target for r in self._resolutions.values()):
            self._log("debug", "resolution already pending", target=target)
            return
        nhs = self._nhs_up()
        if nhs is None:
            return
        rid = self._next_request_id()
        exts: list[Extension] = [ForwardTransit(), ReverseTransit(), ResponderAddress()]
        flags = FLAG_Q | FLAG_A | FLAG_S      # as FRR: a router, authoritative, stable
        if self._nat_extension():
            flags |= FLAG_NAT
            own = (Cie(0, HOST, self.config.mtu, 0, 0, self._nat_nbma, self._proto),) if self._nat_nbma else ()
            exts.append(NatAddress(own))
        # 5.2.1: the CIE offers our own binding, with the holding time it may be cached for.
        pkt = Packet(Op.RESOLUTION_REQUEST, self._nbma, self._proto, target, flags, rid,
                     (Cie(0, ANY_HOST if self.config.unique else HOST, self.config.mtu,
                          self.config.holdtime),),
                     self._close(exts), self._hopcnt(ORIGINATED_HOPCNT))
        self._resolutions[rid] = _Resolution(target, pkt, nhs.config.nbma, self._now)
        self._log("info", "resolving", target=target, via_nhs=nhs.config.nbma, request_id=rid, reason=reason)
        self._send_resolution(rid)

    def _send_resolution(self, rid: int) -> None:
        r = self._resolutions[rid]
        r.last_sent = self._now
        self._send(r.dst_nbma, r.packet)
        self._set_timer(("resolve", rid), self._now + r.interval)
        r.interval = min(r.interval * 2, RETRY_CAP)

    def _resolve_timer(self, rid: int) -> None:
        r = self._resolutions.get(rid)
        if r is None:
            return
        if self._now - r.first_sent >= RESOLUTION_GIVE_UP:
            del self._resolutions[rid]
            self._log("warning", "resolution unanswered: given up", target=r.target, request_id=rid)
            return
        if self._has(Fault.NEW_REQUEST_ID_ON_RESEND):
            del self._resolutions[rid]
            rid = self._next_request_id()
            r.packet = replace(r.packet, request_id=rid)
            self._resolutions[rid] = r
        self._send_resolution(rid)      # 5.2.0.1: the same Request ID on resend

    def _resolution_request_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        plen = self._own_prefix(pkt.dst_proto)
        if plen is None and self.config.role == "hub":
            nh = self._next_hop(pkt.dst_proto)
            if nh is not None:
                self._forward(src_nbma, pkt, data, nh)
                return
        if self._unknown_compulsory(src_nbma, pkt, data):
            return
        if plen is None:
            # 5.2.2 NAK code 12: the responder has no binding for the address.
            self._log("info", "resolution for an unknown address: NAK", target=pkt.dst_proto,
                      src_proto=pkt.src_proto)
            self._answer_resolution(src_nbma, pkt, Cie(CieCode.NO_BINDING_EXISTS, HOST))
            return
        # 5.2.2: the CIE names us and the prefix our binding covers.
        self._answer_resolution(src_nbma, pkt, Cie(0, plen, self.config.mtu, self.config.holdtime, 0,
                                                   self._nbma, self._proto))
        if self.config.role == "spoke" and pkt.flags & FLAG_S and pkt.src_proto \
                and pkt.src_proto != self._proto:
            self._cache_requester(pkt)

    def _answer_resolution(self, src_nbma: str, pkt: Packet, cie: Cie) -> None:
        # 5.2.2: Q and S "Copied from the NHRP Resolution Request"; A: the answer is
        # authoritative; D: our binding is stable (as FRR sets both).
        flags = pkt.flags & (FLAG_Q | FLAG_S) | (FLAG_A | FLAG_D if cie.code == 0 else 0)
        reply = Packet(Op.RESOLUTION_REPLY, pkt.src_nbma, pkt.src_proto, pkt.dst_proto, flags,
                       self._reply_id(pkt.request_id), (cie,),
                       self._reply_extensions(src_nbma, pkt), self._hopcnt(ORIGINATED_HOPCNT))
        self._send(self._toward(pkt.src_proto, src_nbma), reply)

    def _cache_requester(self, pkt: Packet) -> None:
        """5.2.1 S bit: the requester's binding in its CIE is stable and may be cached
        (FRR caches it too, so the first reply is routed and later ones go direct)."""
        offered = pkt.cies[0] if pkt.cies else Cie()
        nat = pkt.extension(NatAddress)
        seen = next((c.client_nbma for c in nat.cies if c.client_proto == pkt.src_proto and c.client_nbma),
                    "") if nat else ""
        claimed = offered.client_nbma or pkt.src_nbma
        old = self._bindings.get(pkt.src_proto)
        if old is not None and old.type != "dynamic":
            return
        self._bind(pkt.src_proto, seen or claimed, claimed, "dynamic",
                   offered.holding_time or self.config.holdtime)

    def _resolution_reply_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        if pkt.src_proto != self._proto and self.config.role == "hub":
            nh = self._next_hop(pkt.src_proto)
            if nh is not None:
                self._forward(src_nbma, pkt, data, nh)
            else:
                self._error(src_nbma, data, ErrorCode.PROTOCOL_ADDRESS_UNREACHABLE,
                            28 + (data[18] & 0x3F), f"no route to {pkt.src_proto}")
            return
        r = self._resolutions.get(pkt.request_id)
        if r is None or pkt.src_proto != self._proto or r.target != pkt.dst_proto:
            # 5.2.2: "If an unsolicited NHRP Resolution Reply packet is received, an Error
            # Indication of type Invalid NHRP Resolution Reply Received SHOULD be sent".
            self._error(src_nbma, data, ErrorCode.INVALID_RESOLUTION_REPLY, 24,
                        f"unsolicited Resolution Reply, request ID {pkt.request_id}")
            return
        if self._has(Fault.IMPATIENT_RESOLUTION) and self._now - r.last_sent > IMPATIENCE:
            self._log("info", "Resolution Reply too late: dropped", request_id=pkt.request_id,
                      after=round(self._now - r.last_sent, 3))
            return
        del self._resolutions[pkt.request_id]
        self._cancel_timer(("resolve", pkt.request_id))
        cie = pkt.cies[0] if pkt.cies else None
        if cie is None or cie.code != 0:
            self._log("warning", "resolution refused (NAK)", target=r.target,
                      code=cie.code if cie else None)
            return
        responder = pkt.extension(ResponderAddress)
        rcie = responder.cies[0] if responder and responder.cies else Cie()
        protocol = cie.client_proto or rcie.client_proto or pkt.dst_proto
        claimed = cie.client_nbma or rcie.client_nbma or src_nbma
        nat = pkt.extension(NatAddress)
        seen = next((c.client_nbma for c in nat.cies if c.client_proto == protocol and c.client_nbma),
                    "") if nat else ""
        holding = cie.holding_time or self.config.holdtime
        prefix = Network(f"{pkt.dst_proto}/{_host_len(cie.prefix_length)}", strict=False)
        if protocol == self._proto or self._own_prefix(protocol) is not None:
            self._log("warning", "Resolution Reply points at ourselves: ignored", target=r.target)
            return
        old = self._bindings.get(protocol)
        if old is None or old.type == "dynamic":
            # The fault keeps the shortcut and the binding it rests on.
            self._bind(protocol, seen or claimed, claimed, "dynamic",
                       None if self._has(Fault.SHORTCUT_IGNORES_HOLDTIME) else holding)
        self._install_shortcut(prefix, protocol, holding)

    def _install_shortcut(self, prefix: Network, via: str, holding: int) -> None:
        forever = self._has(Fault.IGNORE_HOLDTIME) or self._has(Fault.SHORTCUT_IGNORES_HOLDTIME)
        expires = None if forever else self._now + holding
        old = self._shortcuts.get(prefix)
        self._shortcuts[prefix] = _Shortcut(prefix, via, expires)
        # A host route to the next hop itself says nothing the neighbour entry does not.
        if (old is None or old.via != via) and prefix != Network(f"{via}/32"):
            self._out.append(AddRoute(str(prefix), via))
        self._log("info", "shortcut installed", prefix=str(prefix), via=via, holding_time=holding)
        if expires is None:
            self._cancel_timer(("shortcut", prefix))
        else:
            # The engine cannot see traffic, so an idle shortcut ends at its holding time
            # (FRR: at the end of the holding time unless used).
            self._set_timer(("shortcut", prefix), expires)

    # -- transit (5.1 hop count, 5.3.2/5.3.3 transit records) ------------------------

    def _forward(self, src_nbma: str, pkt: Packet, data: bytes, next_hop: tuple[str, str]) -> None:
        if pkt.hopcnt == 0:
            # 5.1: "If an NHS receives an NHRP packet which it would normally forward ...
            # and that packet contains an ar$hopcnt set to zero then the NHS sends an
            # error indication message back ... and the NHS drops the packet in error".
            self._error(src_nbma, data, ErrorCode.HOP_COUNT_EXCEEDED, 9, "hop count 0 at a transit NHS")
            return
        is_reply = pkt.op_type == Op.RESOLUTION_REPLY
        record = ReverseTransit if is_reply else ForwardTransit
        for i, ext in enumerate(pkt.extensions):
            if not isinstance(ext, (ForwardTransit, ReverseTransit, ResponderAddress)):
                continue
            checked = isinstance(ext, record) or (is_reply and isinstance(ext, ResponderAddress))
            if checked and any(c.client_proto == self._proto for c in ext.cies):
                # 5.3.2/5.3.3: our Protocol Address in the record -> "NHRP Loop Detected";
                # 5.3.1: the same for our address as the Responder Address of a reply.
                self._error(src_nbma, data, ErrorCode.LOOP_DETECTED, pkt.ext_offsets[i],
                            f"own address in the {type(ext).__name__} extension")
                return
        out: list[Extension] = []
        for ext in pkt.extensions:
            if isinstance(ext, record) and not self._has(Fault.NO_TRANSIT_RECORD):
                # "Each NHS SHALL append to the extension a Forward Transit NHS element"
                out.append(record((*ext.cies, self._responder_cie()), ext.compulsory))
            elif isinstance(ext, NatAddress) and self.config.nat_extension:
                if not self._has(Fault.DROP_NAT_EXTENSION):
                    out.append(self._nat_transit(pkt, ext))
            else:
                # 5.3: a transit NHS "SHALL ignore" unknown extensions, copying them on.
                out.append(ext)
        hop = pkt.hopcnt if self._has(Fault.NO_HOPCNT_DECREMENT) else pkt.hopcnt - 1
        self._log("debug", "forwarding", op_type=pkt.op_type, request_id=pkt.request_id,
                  to=next_hop[1], via=next_hop[0], hopcnt=hop)
        self._send(next_hop[1], replace(pkt, hopcnt=hop, extensions=self._close(out)))

    def _nat_transit(self, pkt: Packet, ext: NatAddress) -> NatAddress:
        """FRR: an empty NAT extension is filled in with where we see the station the
        packet speaks for (the requester; for a reply, the CIE's station), if NATed."""
        if ext.cies:
            return ext
        proto = pkt.cies[0].client_proto if pkt.op_type == Op.RESOLUTION_REPLY and pkt.cies else \
            pkt.src_proto if pkt.op_type != Op.RESOLUTION_REPLY else ""
        b = self._bindings.get(proto) if proto else None
        if b is None or b.nbma == b.claimed_nbma:
            return ext
        return NatAddress((Cie(0, HOST, self.config.mtu, 0, 0, b.nbma, proto),), ext.compulsory)

    # -- purge (5.2.5, 5.2.6) -------------------------------------------------------

    def _purge_request_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        if self._has(Fault.IGNORE_PURGE):
            self._log("info", "Purge Request ignored (fault)", src=src_nbma)
            return
        if self._unknown_compulsory(src_nbma, pkt, data):
            return
        # 5.2.5: "When a station receives an NHRP Purge Request, it MUST discard any
        # previously cached information that matches the information in the CIEs."
        for cie in pkt.cies or (Cie(0, HOST, 0, 0, 0, "", pkt.src_proto),):
            proto = cie.client_proto or pkt.src_proto
            ip = _ipv4(proto)
            if ip is None:
                continue
            net = Network(f"{ip}/{_host_len(cie.prefix_length)}", strict=False)
            for b in [b for b in self._bindings.values() if Address(b.protocol) in net]:
                if b.type != "dynamic":
                    continue
                if self.config.role == "hub" and pkt.src_proto != b.protocol \
                        and src_nbma != b.nbma and pkt.src_nbma != b.claimed_nbma:
                    self._log("warning", "Purge Request for another station's binding ignored",
                              protocol=b.protocol, src=src_nbma)
                    continue
                self._unbind(b.protocol, "purged")
            for s in [s for s in self._shortcuts.values() if s.prefix.overlaps(net)]:
                self._drop_shortcut(s.prefix, "purged")
        if pkt.flags & FLAG_N:
            return
        if self._has(Fault.NO_PURGE_REPLY):
            self._log("info", "Purge Reply suppressed (fault)", request_id=pkt.request_id)
            return
        # 5.2.6: "formed from an NHRP Purge Request by merely changing the type code in
        # the request to 6"; 5.2.5: returned "even if the station does not have a
        # matching cache entry assuming that the "N" bit is off".
        reply = replace(pkt, op_type=Op.PURGE_REPLY, request_id=self._reply_id(pkt.request_id),
                        hopcnt=self._hopcnt(ORIGINATED_HOPCNT), extensions=self._close(pkt.extensions))
        self._send(src_nbma, reply)

    def _purge_reply_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        if pkt.request_id in self._purges:
            self._purges.discard(pkt.request_id)
            self._log("info", "purge acknowledged", src=src_nbma, request_id=pkt.request_id)
        else:
            self._log("info", "Purge Reply matches no request: dropped", src=src_nbma,
                      request_id=pkt.request_id)

    # -- Traffic Indication (Cisco/FRR DMVPN phase 3) -------------------------------

    def _hairpin(self, packet: bytes) -> None:
        if self.config.role != "hub" or not self.config.redirect:
            self._log("debug", "hairpinned packet ignored: redirect is off")
            return
        if self._has(Fault.SKIP_TRAFFIC_INDICATION):
            self._log("info", "Traffic Indication skipped (fault)")
            return
        addrs = _inner_addresses(packet)
        if addrs is None:
            self._log("info", "hairpinned packet is not IPv4: ignored", head=packet[:20].hex())
            return
        src, dst = addrs
        nh = self._next_hop(src)
        if nh is None:
            self._log("debug", "no spoke behind the hairpinned packet's source", src=src, dst=dst)
            return
        key = (Network(f"{src}/24", strict=False), Network(f"{dst}/24", strict=False))
        last = self._indications.get(key)
        if last is not None and self._now - last < INDICATION_INTERVAL:
            return
        self._indications = {k: t for k, t in self._indications.items()
                             if self._now - t < INDICATION_INTERVAL}
        self._indications[key] = self._now
        # As FRR: from the hub, to the packet's *source* (the spoke that must resolve),
        # carrying the packet; code 0 (redirect).
        ti = Packet(Op.TRAFFIC_INDICATION, self._nbma, self._proto, src,
                    extensions=self._close(()), hopcnt=self._hopcnt(NEIGHBOUR_HOPCNT),
                    payload=packet[:INDICATION_PAYLOAD])
        self._log("info", "Traffic Indication sent", to=nh[1], src=src, dst=dst)
        self._send(nh[1], ti)

    def _traffic_indication_in(self, src_nbma: str, pkt: Packet, data: bytes) -> None:
        addrs = _inner_addresses(pkt.payload)
        if self.config.role != "spoke" or not self.config.shortcut or addrs is None:
            self._log("info", "Traffic Indication ignored", src=src_nbma, shortcut=self.config.shortcut,
                      role=self.config.role)
            return
        if self._has(Fault.IGNORE_TRAFFIC_INDICATION):
            self._log("info", "Traffic Indication ignored (fault)", src=src_nbma)
            return
        self._resolve(addrs[1], "traffic-indication")

    # -- dispatch -------------------------------------------------------------------

    _handlers: ClassVar[dict[int, Callable[[Engine, str, Packet, bytes], None]]] = {
        Op.RESOLUTION_REQUEST: _resolution_request_in,
        Op.RESOLUTION_REPLY: _resolution_reply_in,
        Op.REGISTRATION_REQUEST: _registration_request_in,
        Op.REGISTRATION_REPLY: _registration_reply_in,
        Op.PURGE_REQUEST: _purge_request_in,
        Op.PURGE_REPLY: _purge_reply_in,
        Op.ERROR_INDICATION: _error_indication_in,
        Op.TRAFFIC_INDICATION: _traffic_indication_in,
    }


__all__ = ["Action", "AddRoute", "DelRoute", "Engine", "Event", "Hairpin", "Log", "MapNeighbor",
           "NbmaChanged", "PacketIn", "Resolve", "Send", "Start", "Stop", "UnmapNeighbor"]
