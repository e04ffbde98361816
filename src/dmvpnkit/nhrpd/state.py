"""What the engine's parts share: one ``State`` per node (its addresses, the clock,
the actions on their way out, the timers, the cache of bindings and shortcuts, the
NHSs and the requests awaiting a reply) and the plumbing every part uses to log,
send and set timers.

Timers are keyed ``(kind, argument)``: "register" (an NHS's index), "resolve" (a
Request ID), "expire" (a binding's protocol address), "shortcut" (a shortcut's
prefix). The engine dispatches a due timer on its kind.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from . import defects
from .codec import Authentication, EncodeError, End, Extension, NatAddress, Op, Packet, encode
from .config import Config, NhsConfig
from .events import Action, AddRoute, DelRoute, Log, LogLevel, MapNeighbor, Send, UnmapNeighbor
from .faults import Fault

ANY_HOST = 0xFF             # CIE prefix length "the whole address" (5.2.1 with U set)
ORIGINATED_HOPCNT = 64      # as FRR; 5.1 leaves the value to the sender
NEIGHBOUR_HOPCNT = 1        # registrations and indications go one hop (as FRR)
RETRY_FIRST = 1.0           # seconds; doubles on each unanswered retry ...
RETRY_CAP = 64.0            # ... up to this (FRR's nhrp_reg_timeout)
REQUEST_ID_MAX = 0xFFFFFFFF

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
TimerKey: TypeAlias = tuple[str, Any]


@dataclass(slots=True)
class Binding:
    """A cache entry: protocol address -> NBMA address (5.2.0.1 "binding")."""

    protocol: str
    nbma: str                   # where we send (post-NAT where known)
    claimed_nbma: str           # what the station said its NBMA address is
    type: str                   # "dynamic" | "nhs"
    expires: float | None       # None: until withdrawn (or IGNORE_HOLDTIME)
    unique: bool = False        # 5.2.3: the registration had the U bit


@dataclass(slots=True)
class Nhs:
    config: NhsConfig
    protocol: str               # configured or learned; "" while unknown
    up: bool = False
    request_id: int | None = None   # outstanding Registration Request
    packet: Packet | None = None    # ... resent unchanged until answered (5.2.0.1)
    interval: float = RETRY_FIRST


@dataclass(slots=True)
class PendingResolution:
    target: str
    packet: Packet
    dst_nbma: str
    first_sent: float
    interval: float = RETRY_FIRST
    last_sent: float = 0.0


@dataclass(slots=True)
class Shortcut:
    prefix: Network
    via: str
    expires: float | None
    route: Network              # the kernel route's prefix: `prefix` (but under a fault)


@dataclass(frozen=True, slots=True)
class Family:
    """The family of an engine's protocol addresses: IPv4, or IPv6 over the IPv4 NBMA.
    An address of the other family is no address here."""

    version: int                # 4 | 6

    @property
    def host(self) -> int:
        """A host's prefix length: 32 | 128."""
        return 32 if self.version == 4 else 128

    @property
    def unspecified(self) -> str:
        """The all-zeros address: what FRR puts for an NHS not yet known."""
        return "0.0.0.0" if self.version == 4 else "::"

    def host_len(self, plen: int) -> int:
        """CIE prefix lengths 0 and beyond a host's (0xFF) mean the whole address (5.2.0.1)."""
        return self.host if plen == 0 or plen >= self.host else plen

    def address(self, text: str) -> Address | None:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return None
        return ip if ip.version == self.version else None

    def network(self, text: str) -> Network | None:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None
        return net if net.version == self.version else None

    def host_route(self, addr: str) -> Network | None:
        return self.network(f"{addr}/{self.host}")


def nat_seen(nat: NatAddress | None, protocol: str) -> str:
    """The NBMA address a NAT extension says ``protocol`` is seen at ("" if none)."""
    if nat is None:
        return ""
    return next((c.client_nbma for c in nat.cies if c.client_proto == protocol and c.client_nbma), "")


class State:
    """One node's state and plumbing, shared by the engine's parts."""

    def __init__(self, config: Config, now: float) -> None:
        self.config = config
        self.now = now
        self.nbma = config.nbma_address
        self.proto = config.protocol_address
        self.family = Family(config.version)
        self.nat_nbma = ""                       # our post-NAT address, as an NHS reported it
        self.out: list[Action] = []
        self.timers: dict[TimerKey, float] = {}
        self.request_id = 0                      # the last one used
        self.bindings: dict[str, Binding] = {}
        self.nhs = [Nhs(n, n.protocol or "") for n in config.nhs]
        self.registrations: dict[int, int] = {}                  # request ID -> NHS index
        self.resolutions: dict[int, PendingResolution] = {}      # request ID -> pending resolution
        self.purges: set[int] = set()
        self.replied = False                     # a Registration Reply has been sent (defects.ONCE)
        self.requested = False                   # the first NHS has answered us (defects.FIRST_REQUEST)
        self.misdirected = False                 # a reply went to another spoke (REPLY_TO_ANOTHER_SPOKE_ONCE)
        self.first_nbma: dict[str, str] = {}     # protocol -> NBMA first bound (KEEP_FIRST_NBMA only)
        self.partial: dict[str, bytes] = {}      # NBMA -> a runt it sent (RUNT_PREFIXES_NEXT only)
        self.shortcuts: dict[Network, Shortcut] = {}
        self.indications: dict[tuple[Network, Network], float] = {}
        self.lan = sorted(config.lan_prefixes, key=lambda n: -n.prefixlen)
        self.routes = sorted(config.routes, key=lambda r: -r.prefix.prefixlen)     # and learned ones

    # -- plumbing -------------------------------------------------------------------

    def flush(self) -> list[Action]:
        out, self.out = self.out, []
        return out

    def log(self, level: LogLevel, message: str, **fields: Any) -> None:
        self.out.append(Log(level, message, fields))

    def has(self, fault: Fault) -> bool:
        return fault in self.config.faults

    def first_reply(self) -> frozenset[Fault]:
        """The ``*-once`` switches that are on, for the first Registration Reply we
        send; nothing for every later one."""
        if self.replied:
            return frozenset()
        self.replied = True
        return self.config.faults & defects.ONCE

    def first_request(self) -> frozenset[Fault]:
        """The first-request switches that are on, for what we send our first NHS until
        it answers (the first request, and its resends if that was lost: an NHS not yet
        up at bring-up sees the defect too, and the request stays one with its resends);
        nothing once it has (``registration.reply_in``)."""
        return frozenset() if self.requested else self.config.faults & defects.FIRST_REQUEST

    def next_request_id(self) -> int:
        # 5.2.0.1: "a value which, when coupled with the address of the source,
        # provides a unique identifier for the information contained in a request".
        self.request_id = self.request_id % REQUEST_ID_MAX + 1
        return self.request_id

    def reply_id(self, request_id: int) -> int:
        # 5.2.0.1: "This value is copied directly from an "request" packet into the
        # associated "reply"."
        return (request_id + 1) & REQUEST_ID_MAX if self.has(Fault.WRONG_REQUEST_ID) else request_id

    def hopcnt(self, value: int) -> int:
        return 0 if self.has(Fault.ZERO_HOPCNT) else value

    def forwarded_hopcnt(self, pkt: Packet) -> int:
        """The hop count a transit NHS passes ``pkt`` on with: one less (5.1)."""
        return pkt.hopcnt if self.has(Fault.NO_HOPCNT_DECREMENT) else pkt.hopcnt - 1

    def nat_extension(self) -> bool:
        """Whether the requests we originate carry the NAT extension."""
        return self.config.nat_extension and not self.has(Fault.DROP_NAT_EXTENSION)

    def close(self, extensions: Iterable[Extension]) -> tuple[Extension, ...]:
        """Our own authentication (regenerated at each hop, 5.3.4) and the End
        extension (5.3.0) after ``extensions``; nothing at all when there are none."""
        out: list[Extension] = [e for e in extensions if not isinstance(e, (End, Authentication))]
        if self.config.auth is not None:
            out.append(Authentication(self.config.auth.encode()))
        return (*out, End()) if out else ()

    def send(self, dst_nbma: str, pkt: Packet, once: frozenset[Fault] = frozenset()) -> None:
        """Encode ``pkt`` and send it; ``once``: the defects of the first Registration
        Reply (``first_reply``) or Request (``first_request``)."""
        pkt = dataclasses.replace(pkt, pro_type=self.config.pro_type)     # this engine's family, always
        try:
            data = encode(defects.rewrite(pkt, once, self.nbma))
        except EncodeError as e:        # our bug, never the peer's: say so and carry on
            self.log("error", "cannot encode a packet we built", field=e.field, error=str(e),
                     packet=repr(pkt))
            return
        data = defects.mangle(data, once)
        if self.has(Fault.BAD_CHECKSUM):
            # Flipping the low byte changes the sum by 1..255: never all-ones again.
            data = data[:13] + bytes([data[13] ^ 0xFF]) + data[14:]
        from_tunnel = Fault.REPLY_FROM_TUNNEL_ADDRESS_ONCE in once or (
            pkt.op_type == Op.TRAFFIC_INDICATION and self.has(Fault.TRAFFIC_INDICATION_FROM_TUNNEL_ADDRESS))
        src = self.proto if from_tunnel else ""
        self.out.append(Send(dst_nbma, data, src, Fault.IPSEC_REGISTER_IN_CLEAR_ONCE in once))

    def set_timer(self, key: TimerKey, when: float) -> None:
        self.timers[key] = when

    def cancel_timer(self, key: TimerKey) -> None:
        self.timers.pop(key, None)

    # -- addresses and routing ------------------------------------------------------

    def own_prefix(self, addr: str) -> int | None:
        """The prefix length to answer with if ``addr`` is ours: our tunnel address
        (a host) or an address in one of our LAN prefixes."""
        if addr == self.proto:
            return self.family.host
        ip = self.family.address(addr)
        if ip is None:
            return None
        return next((n.prefixlen for n in self.lan if ip in n), None)

    def next_hop(self, addr: str) -> tuple[str, str] | None:
        """(protocol, NBMA) of the station to forward toward ``addr``: a binding for
        the address itself, else the longest configured route whose ``via`` is bound."""
        b = self.bindings.get(addr)
        if b is not None:
            return b.protocol, b.nbma
        ip = self.family.address(addr)
        if ip is None:
            return None
        for r in self.routes:
            if ip in r.prefix:
                via = self.bindings.get(r.via)
                if via is not None:
                    return via.protocol, via.nbma
        return None

    def nhs_up(self) -> Nhs | None:
        return next((n for n in self.nhs if n.up), self.nhs[0] if self.nhs else None)

    def toward(self, addr: str, fallback: str) -> str:
        """NBMA address to send a packet for ``addr`` to: a hub sends it where the
        route points (else ``fallback``, the previous hop); a spoke uses a binding, or
        its NHS (FRR routes replies through the hub the same way)."""
        nh = self.next_hop(addr)
        if nh is not None:
            return nh[1]
        if self.config.role == "spoke":
            if any(n.config.nbma == fallback for n in self.nhs):
                return fallback
            nhs = self.nhs_up()
            if nhs is not None:
                return nhs.config.nbma
        return fallback

    # -- the cache: bindings and shortcuts -------------------------------------------

    def bind(self, protocol: str, nbma: str, claimed: str, kind: str, holding: int | None,
             unique: bool = False) -> None:
        old = self.bindings.get(protocol)
        expires = None if holding is None or self.has(Fault.IGNORE_HOLDTIME) else self.now + holding
        self.bindings[protocol] = Binding(protocol, nbma, claimed, kind, expires, unique)
        if old is None or old.nbma != nbma:
            self.out.append(MapNeighbor(protocol, nbma))
        if expires is None:
            self.cancel_timer(("expire", protocol))
        else:
            self.set_timer(("expire", protocol), expires)

    def unbind(self, protocol: str, reason: str) -> None:
        b = self.bindings.pop(protocol, None)
        self.cancel_timer(("expire", protocol))
        if b is None:
            return
        self.out.append(UnmapNeighbor(protocol))
        self.log("info", f"binding removed: {reason}", protocol=protocol, nbma=b.nbma, type=b.type)
        for s in [s for s in self.shortcuts.values() if s.via == protocol]:
            self.drop_shortcut(s.prefix, f"its next hop {protocol} went away")

    def expire_binding(self, protocol: str) -> None:
        b = self.bindings.get(protocol)
        if b is not None and b.expires is not None and b.expires <= self.now:
            # 5.2.0.1: "Cached information SHALL be discarded when the holding time expires."
            self.unbind(protocol, "holding time expired")

    def install_shortcut(self, prefix: Network, via: str, holding: int, target: str) -> None:
        """A shortcut to `prefix` (a Resolution Reply's, for `target`) via the far end `via`."""
        forever = self.has(Fault.IGNORE_HOLDTIME) or self.has(Fault.SHORTCUT_IGNORES_HOLDTIME)
        expires = None if forever else self.now + holding
        old = self.shortcuts.get(prefix)
        route = self.family.host_route(target) if self.has(Fault.SHORTCUT_HOST_ROUTE) else prefix
        route = route or prefix
        self.shortcuts[prefix] = Shortcut(prefix, via, expires, route)
        # A host route to the next hop itself says nothing the neighbour entry does not.
        if (old is None or old.via != via) and route != self.family.host_route(via):
            self.out.append(AddRoute(str(route), via))
        self.log("info", "shortcut installed", prefix=str(prefix), via=via, holding_time=holding)
        if expires is None:
            self.cancel_timer(("shortcut", prefix))
        else:
            # The engine cannot see traffic, so an idle shortcut ends at its holding time
            # (FRR: at the end of the holding time unless used).
            self.set_timer(("shortcut", prefix), expires)

    def drop_shortcut(self, prefix: Network, reason: str) -> None:
        s = self.shortcuts.pop(prefix, None)
        self.cancel_timer(("shortcut", prefix))
        if s is not None:
            if s.route != self.family.host_route(s.via):
                self.out.append(DelRoute(str(s.route)))
            self.log("info", f"shortcut removed: {reason}", prefix=str(prefix), via=s.via)

    def expire_shortcut(self, prefix: Network) -> None:
        s = self.shortcuts.get(prefix)
        if s is not None and s.expires is not None and s.expires <= self.now:
            self.drop_shortcut(prefix, "holding time expired")
