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

Layout. ``Engine`` (here) owns the lifecycle and dispatches: events by type
(``Engine._on_event``), due timers by kind (``Engine._on_timer``), received packets by
operation type (``receive``). What the parts share is one ``state.State``; the parts
are functions over it: ``registration``, ``resolution``, ``transit``, ``purge``,
``error_indication``, ``traffic_indication``, ``multicast``, and ``replies`` (extensions in replies).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, ClassVar

from . import multicast, purge, receive, registration, resolution, traffic_indication
from .codec import Op
from .config import Config, RouteConfig
from .events import (
    Action,
    AddRoute,
    DelRoute,
    Event,
    FlushRoutes,
    Hairpin,
    Log,
    MapNeighbor,
    Multicast,
    NbmaChanged,
    PacketIn,
    Resolve,
    Routes,
    Send,
    SendData,
    Start,
    Stop,
    UnmapNeighbor,
)
from .faults import Fault
from .state import Family, State


class Engine:
    """One NHRP node. See the module docstring for the contract."""

    def __init__(self, config: Config, now: float) -> None:
        self.config = config
        self._state = State(config, now)
        self._started = self._stopped = False

    # -- public API -----------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._state.now

    @property
    def nbma_address(self) -> str:
        return self._state.nbma

    def handle(self, event: Event, now: float | None = None) -> list[Action]:
        """Process one event; ``now`` (if given) moves the clock first, without
        firing timers (that is ``tick``'s job)."""
        if now is not None:
            self._state.now = max(self._state.now, now)
        if self._admitted(event):
            handler = self._on_event.get(type(event))
            if handler is None:
                self._state.log("error", "unknown event", event=repr(event))
            else:
                handler(self, event)
        return self._state.flush()

    def tick(self, now: float) -> list[Action]:
        """Move the clock to ``now`` and fire every timer due by then, in order."""
        state = self._state
        state.now = max(state.now, now)
        while state.timers:
            key, when = min(state.timers.items(), key=lambda kv: kv[1])
            if when > state.now:
                break
            del state.timers[key]
            kind, arg = key
            fire = self._on_timer.get(kind)
            if fire is not None:
                fire(state, arg)
        return state.flush()

    def next_deadline(self) -> float | None:
        return min(self._state.timers.values()) if self._state.timers else None

    def views(self) -> dict[str, list[dict[str, Any]]]:
        """State in the lab engine's normalised shape (labs.views): cache, nhs, shortcuts."""
        state, iface = self._state, self.config.interface
        cache = [{"protocol": state.proto, "nbma": state.nbma, "claimed_nbma": state.nbma,
                  "type": "local", "used": False, "interface": iface}]
        cache += [{"protocol": b.protocol, "nbma": b.nbma, "claimed_nbma": b.claimed_nbma,
                   "type": b.type, "used": False, "interface": iface}
                  for b in sorted(state.bindings.values(), key=lambda b: ipaddress.ip_address(b.protocol))]
        # The view's protocol says "registered" (labs.views), so not the configured
        # one before the NHS has answered: lab bring-up waits on it.
        nhs = [{"interface": iface, "fqdn": n.config.nbma, "nbma": n.config.nbma,
                "protocol": n.protocol if n.up else ""} for n in state.nhs]
        shortcuts = [{"prefix": str(s.prefix), "via": s.via, "type": "dynamic", "identity": ""}
                     for s in sorted(state.shortcuts.values(), key=lambda s: s.prefix)]
        return {"cache": cache, "nhs": nhs, "shortcuts": shortcuts}

    # -- lifecycle ------------------------------------------------------------------

    def _admitted(self, event: Event) -> bool:
        """Start always; once stopped only the Purge Replies our purges asked for;
        before Start nothing."""
        if isinstance(event, Start):
            return True
        if self._stopped:
            if isinstance(event, PacketIn) and event.data[17:18] == bytes([Op.PURGE_REPLY]):
                return True     # our purge, answered
            self._state.log("debug", "stopped: event ignored", event=type(event).__name__)
            return False
        if not self._started:
            self._state.log("debug", "not started: event ignored", event=type(event).__name__)
            return False
        return True

    def _start(self, event: Start) -> None:
        if self._started:
            self._state.log("debug", "already started")
            return
        self._started = True
        self._state.log("info", "started", role=self.config.role, protocol=self._state.proto,
                        nbma=self._state.nbma, restarted=event.restarted)
        if event.restarted and self._state.has(Fault.FLUSH_TUNNEL_ROUTES_ON_RESTART):
            self._state.out.append(FlushRoutes())
        if event.restarted and self._state.has(Fault.TRUST_SAVED_REGISTRATION):
            self._state.log("info", "restarted: registrations trusted, none sent (fault)")
            return
        for i in range(len(self._state.nhs)):
            registration.register(self._state, i, fresh=True)

    def _stop(self, event: Stop) -> None:
        state = self._state
        self._stopped = True
        for nhs in state.nhs:
            if nhs.up:
                # 5.2.5: a Purge Request "from an NHC to an NHS with which the NHC had
                # previously registered ... to invalidate its registration".
                purge.withdraw(state, nhs, no_reply=False)
        for prefix in list(state.shortcuts):
            state.drop_shortcut(prefix, "stopping")
        for protocol in list(state.bindings):
            state.unbind(protocol, "stopping")
        state.timers.clear()
        state.log("info", "stopped")

    def _nbma_changed(self, event: NbmaChanged) -> None:
        state, address = self._state, event.address
        if Family(4).address(address) is None:      # NBMA addresses are IPv4 in both families
            state.log("error", "NbmaChanged with an address that is not IPv4", address=address)
            return
        if address == state.nbma:
            return
        old, state.nbma = state.nbma, address
        state.nat_nbma = ""
        state.log("info", "NBMA address changed", old=old, new=address)
        for i, nhs in enumerate(state.nhs):
            if nhs.up:
                # The old binding would make a unique re-registration fail with code 14.
                purge.withdraw(state, nhs, no_reply=True)
            registration.register(state, i, fresh=True)

    # -- the other events -----------------------------------------------------------

    def _packet_in(self, event: PacketIn) -> None:
        receive.packet_in(self._state, event.src_nbma, bytes(event.data))

    def _hairpin(self, event: Hairpin) -> None:
        traffic_indication.hairpin(self._state, bytes(event.packet))

    def _multicast(self, event: Multicast) -> None:
        multicast.replicate(self._state, bytes(event.packet))

    def _routes(self, event: Routes) -> None:
        state, learned = self._state, []
        for prefix, via in event.routes:
            net = state.family.network(prefix)
            if net is None or state.family.address(via) is None:
                state.log("error", f"Routes with a route that is not IPv{state.family.version}", prefix=prefix,
                          via=via)
                continue
            learned.append(RouteConfig(net, via))
        state.routes = sorted((*state.config.routes, *learned), key=lambda r: -r.prefix.prefixlen)
        state.log("debug", "routes learned", routes=[f"{r.prefix} via {r.via}" for r in learned])

    def _resolve(self, event: Resolve) -> None:
        resolution.resolve(self._state, event.target, "resolve")

    # -- dispatch -------------------------------------------------------------------

    # Event type -> its handler (``handle`` admits the event first).
    _on_event: ClassVar[dict[type[Event], Callable[[Engine, Any], None]]] = {
        Start: _start,
        PacketIn: _packet_in,
        Hairpin: _hairpin,
        Multicast: _multicast,
        Routes: _routes,
        Resolve: _resolve,
        NbmaChanged: _nbma_changed,
        Stop: _stop,
    }

    # Timer kind -> its handler, given the timer's argument (see ``state``).
    _on_timer: ClassVar[dict[str, Callable[[State, Any], None]]] = {
        "register": registration.timer,         # an NHS's index
        "resolve": resolution.timer,            # a Request ID
        "expire": State.expire_binding,         # a binding's protocol address
        "shortcut": State.expire_shortcut,      # a shortcut's prefix
    }


__all__ = ["Action", "AddRoute", "DelRoute", "Engine", "Event", "FlushRoutes", "Hairpin", "Log", "MapNeighbor",
           "Multicast", "NbmaChanged", "PacketIn", "Resolve", "Routes", "Send", "SendData", "Start", "Stop", "UnmapNeighbor"]
