"""What goes into the engine (events) and what comes out (actions): plain frozen
dataclasses, no behaviour. Addresses are dotted IPv4 text; prefixes are "a.b.c.d/n"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

# -- events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """The interface is up: a spoke registers with its NHSs. ``restarted``: this daemon
    ran before on this node (the lab's restart), which only fault switches act on."""

    restarted: bool = False


@dataclass(frozen=True, slots=True)
class PacketIn:
    """An NHRP packet (from its fixed header on) received from ``src_nbma``, the outer
    source address as seen here (post-NAT)."""

    src_nbma: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Hairpin:
    """Hub: an IPv4 packet that came in on the tunnel and went back out of it (NFLOG)."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class Multicast:
    """An IPv4 multicast packet sent into the tunnel (NFLOG): to be copied to each
    multicast destination (``multicast`` on)."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class Routes:
    """The routes into the tunnel that a routing protocol installed (BGP, OSPF beside
    this node): ``(prefix, via)`` pairs, the whole set, replacing the previous one. They
    count as configured routes: a hub finds the spoke behind a prefix by them."""

    routes: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Resolve:
    """Spoke: traffic for a protocol address with no mapping (a phase 2 next hop)."""

    target: str


@dataclass(frozen=True, slots=True)
class NbmaChanged:
    """This node's NBMA address is now ``address``."""

    address: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Shutting down: purge our registrations, withdraw what we installed."""


Event: TypeAlias = Start | PacketIn | Hairpin | Multicast | Routes | Resolve | NbmaChanged | Stop

# -- actions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` (an NHRP packet) to ``dst_nbma`` over GRE; from ``src`` when set,
    else from the tunnel's own NBMA address; ``clear``: without waiting for an SA (only
    fault switches set these two)."""

    dst_nbma: str
    data: bytes
    src: str = ""
    clear: bool = False


@dataclass(frozen=True, slots=True)
class SendData:
    """Send ``packet`` (an IPv4 packet, a multicast copy) to ``dst_nbma`` over GRE."""

    dst_nbma: str
    packet: bytes


@dataclass(frozen=True, slots=True)
class MapNeighbor:
    """Install (or change) the tunnel neighbour ``protocol`` -> ``nbma``."""

    protocol: str
    nbma: str


@dataclass(frozen=True, slots=True)
class UnmapNeighbor:
    protocol: str


@dataclass(frozen=True, slots=True)
class AddRoute:
    """A shortcut route: ``prefix`` via the far end's protocol (tunnel) address."""

    prefix: str
    via: str


@dataclass(frozen=True, slots=True)
class DelRoute:
    prefix: str


@dataclass(frozen=True, slots=True)
class FlushRoutes:
    """Delete every route on the tunnel but the connected one, the operator's too
    (only a fault switch asks for this)."""


LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Log:
    level: LogLevel
    message: str
    fields: dict[str, Any] = field(default_factory=dict)


Action: TypeAlias = Send | SendData | MapNeighbor | UnmapNeighbor | AddRoute | DelRoute | FlushRoutes | Log
