"""The engine on Linux: NHRP over the mGRE interface, mappings and routes by netlink.

- NHRP packets travel over an AF_PACKET socket on the tunnel with protocol 0x2001:
  the kernel adds the GRE header (key included) and sends to the NBMA address given
  as the link-layer address, exactly as it does for FRR's nhrpd.
- `MapNeighbor` is a neighbour entry on the tunnel (protocol -> NBMA), `AddRoute` a
  route via the far end onlink: the kernel's own forwarding then goes spoke to spoke.
- Hairpinned traffic arrives from an NFLOG group (iptables rule on the hub), multicast
  sent into the tunnel from another; its copies leave by the same packet socket, as
  IPv4 (the kernel's GRE header then carries 0x0800).
- NBMA address changes come from netlink address events on the NBMA interface.
- With `learn_routes`, the kernel's routes into the tunnel (a routing protocol's, as
  FRR's zebra installs them) are handed to the engine as it changes them: re-read a
  moment after a route or nexthop notification, never on a timer (a hundred nodes
  polling their tables would starve a one-CPU lab kernel).
- A unix control socket answers `{"show": "cache"|"nhs"|"shortcuts"}` with JSON
  (`"family": 6`: the IPv6 side's).
- A dual-stack config (`ipv6`) runs a second engine for the IPv6 side over the same
  tunnel: NHRP packets go to the engine of their ar$pro.type, hairpinned packets and
  neighbour misses to the engine of their address family.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import selectors
import signal
import socket
import struct
import time
from ipaddress import IPv4Address, ip_address, ip_network
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from . import engine as eng
from .config import Config, ConfigError
from .faults import Fault
from .ipsec import IpsecConfig
from .ipsec import for_node as protection_for
from .nflog import Nflog

ETH_P_NHRP, ETH_P_IP = 0x2001, 0x0800
PRO_IPV6 = b"\x86\xdd"      # ar$pro.type of an IPv6 side's NHRP packet
GRE_KEY_PRESENT = 0x2000    # GRE flags: the key field follows (RFC 2890)
NUD_INCOMPLETE, NUD_PERMANENT = 0x01, 0x80
IFF_NOARP = 0x80
RTMGRP_NEIGH, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x4, 0x10, 0x40
RTNLGRP_NEXTHOP = 32
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP = 270, 1
RTPROT_KERNEL, RTM_F_CLONED = 2, 0x200
# A routing daemon installs its routes in a burst: one re-read this long after the
# first notification of a burst takes them all.
LEARN_AFTER = 0.25
log = logging.getLogger("nhrpd")


class Notifications:
    """Kernel notifications of some netlink groups on a plain socket, every pending one
    read at each wake-up. Not pyroute2's IPRoute: its reads run ahead into a buffer of
    its own, so a second notification of a burst (a neighbour miss right after another
    neighbour's change) waited there, unseen by select(), until the next one came (the
    miss's FAILED, a second later). pyroute2's marshal still decodes them."""

    def __init__(self, groups: int, *more: int) -> None:
        """`groups`: a legacy RTMGRP_* mask; `more`: RTNLGRP_* numbers beyond it (nexthops)."""
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, groups))
        for group in more:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        self.sock.setblocking(False)
        self.marshal = MarshalRtnl()
        self.lost = False           # the last drain() found that the kernel dropped some (ENOBUFS)

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> list[Any]:
        """Every pending notification, decoded."""
        got: list[Any] = []
        self.lost = False
        while True:
            try:
                got += self.marshal.parse(self.sock.recv(1 << 16))
            except BlockingIOError:
                return got
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    raise
                self.lost = True

    def close(self) -> None:
        self.sock.close()


def route_changes() -> Notifications:
    """That the kernel's IPv4 routes or nexthop objects changed: zebra may move a route
    to another next hop by replacing its nexthop object, which sends no route
    notification, only a nexthop one (a group pyroute2's bind cannot join)."""
    return Notifications(RTMGRP_IPV4_ROUTE, RTNLGRP_NEXTHOP)


class LinuxNode:
    def __init__(self, config: Config, control: Path, nbma_interface: str | None = None,
                 nflog_group: int | None = None, ipsec: IpsecConfig | None = None,
                 multicast_nflog_group: int | None = None, learn_routes: bool = False):
        self.config = config
        self.protection = protection_for(config, ipsec)
        self.nhs_identity = {n.nbma: n.protocol for n in config.nhs}
        self.mapped: dict[str, str] = {}        # protocol -> NBMA of installed neighbours
        self.engine = eng.Engine(config, time.monotonic())
        self.engine6 = eng.Engine(config.ipv6, time.monotonic()) if config.ipv6 is not None else None
        self.ipr = IPRoute()
        self.ifindex = self.ipr.link_lookup(ifname=config.interface)[0]
        self.nhrp = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_NHRP))
        self.nhrp.bind((config.interface, ETH_P_NHRP))
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.nhrp, selectors.EVENT_READ, self._on_nhrp)
        self.nflog = Nflog(nflog_group) if nflog_group is not None else None
        if self.nflog is not None:
            self.sel.register(self.nflog, selectors.EVENT_READ, self._on_nflog)
        self.mcast = (Nflog(multicast_nflog_group, batched=config.has(Fault.MULTICAST_BATCHED))
                      if multicast_nflog_group is not None else None)
        if self.mcast is not None:
            self.sel.register(self.mcast, selectors.EVENT_READ, self._on_multicast)
        self.nbma_interface = nbma_interface
        # Neighbour misses on the tunnel become Resolve events (phase 2: the route's next
        # hop is the far spoke): the kernel asks userspace for an address it cannot
        # resolve itself (app_solicit) and never tries ARP on the tunnel.
        # An mGRE interface comes up NOARP (neighbours resolve to 0.0.0.0 at once, no miss
        # is ever reported); clear that so the kernel asks us instead.
        self._sysctl({"app_solicit": "1", "ucast_solicit": "0", "mcast_solicit": "0"},
                     ("ipv4", "ipv6") if self.engine6 is not None else ("ipv4",))
        self.ipr.link("set", index=self.ifindex, flags=0, change=IFF_NOARP)
        self.learned: tuple[tuple[str, str], ...] = ()
        self.route_changes = route_changes() if learn_routes else None
        self.learn_due: float | None = 0.0 if learn_routes else None     # when to re-read routes
        if self.route_changes is not None:
            self.sel.register(self.route_changes, selectors.EVENT_READ, self._on_route_change)
        self.events = Notifications(RTMGRP_NEIGH | RTMGRP_IPV4_IFADDR)
        self.sel.register(self.events, selectors.EVENT_READ, self._on_netlink)
        # A marker that outlives the daemon (the lab removes only the socket) tells a
        # restart from a first start; only fault switches act on it.
        marker = control.with_name(control.name + ".ran")
        self.restarted = marker.exists()
        marker.touch()
        control.unlink(missing_ok=True)
        self.control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.control.bind(str(control))
        self.control.listen(8)
        self.sel.register(self.control, selectors.EVENT_READ, self._on_control)
        self.routes: set[str] = set()
        self.running = True
        self.stopping = False
        if self.protection is not None:
            self.protection.fail_closed(True)
            self.protection.watch()

    # ------------------------------------------------------------ loop
    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._stop())
        signal.signal(signal.SIGINT, lambda *_: self._stop())
        for engine in self.engines:
            self._apply(engine.handle(eng.Start(restarted=self.restarted)))
        while self.running:
            deadlines = [d for d in (*(x.next_deadline() for x in self.engines), self.learn_due) if d is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for key, _ in self.sel.select(timeout):
                try:
                    key.data()
                except OSError as e:        # one bad read must not take the node down
                    log.warning("I/O error: %s", e)
            if self.learn_due is not None and time.monotonic() >= self.learn_due:
                self.learn_due = None
                self._learn()
            self.engine_now()
        self.stopping = True
        for engine in self.engines:
            self._apply(engine.handle(eng.Stop()))
        self._cleanup()

    @property
    def engines(self) -> tuple[eng.Engine, ...]:
        return (self.engine,) if self.engine6 is None else (self.engine, self.engine6)

    def _engine(self, version: int) -> eng.Engine:
        """The engine of an address family; IPv4's for anything else (it logs and ignores it)."""
        return self.engine6 if version == 6 and self.engine6 is not None else self.engine

    def _stop(self) -> None:
        self.running = False

    # ------------------------------------------------------------ inputs
    def _on_nhrp(self) -> None:
        data, addr = self.nhrp.recvfrom(65535)
        # sockaddr_ll: (ifname, proto, pkttype, hatype, addr); the NBMA source is addr.
        src = str(IPv4Address(addr[4][:4])) if len(addr) > 4 and len(addr[4]) >= 4 else ""
        if len(addr) > 2 and addr[2] == socket.PACKET_OUTGOING:
            return
        self.engine_now()
        version = 6 if data[2:4] == PRO_IPV6 else 4     # ar$pro.type; a runt goes to IPv4's, which says so
        self._apply(self._engine(version).handle(eng.PacketIn(src_nbma=src, data=data)))

    def _on_nflog(self) -> None:
        assert self.nflog is not None
        for packet in self.nflog.packets():
            self.engine_now()
            self._apply(self._engine(packet[0] >> 4 if packet else 4).handle(eng.Hairpin(packet=packet)))

    def _on_multicast(self) -> None:
        assert self.mcast is not None
        for packet in self.mcast.packets():
            self.engine_now()
            self._apply(self.engine.handle(eng.Multicast(packet=packet)))

    def _sysctl(self, values: dict[str, str], families: tuple[str, ...]) -> None:
        for family in families:
            for key, value in values.items():
                path = Path(f"/proc/sys/net/{family}/neigh/{self.config.interface}/{key}")
                try:
                    path.write_text(value)
                except OSError as e:
                    log.warning("cannot set %s: %s", path, e)

    def _on_netlink(self) -> None:
        events = self.events.drain()
        if self.events.lost:        # a lost miss: the kernel asks again after FAILED
            log.warning("netlink notifications lost (ENOBUFS)")
        for msg in events:
            event = msg.get("event")
            if event == "RTM_NEWADDR" and self.nbma_interface is not None:
                link = self.ipr.link_lookup(ifname=self.nbma_interface)
                if link and msg.get("index") == link[0]:
                    self.engine_now()
                    for engine in self.engines:
                        self._apply(engine.handle(eng.NbmaChanged(address=msg.get_attr("IFA_ADDRESS"))))
            elif (event in ("RTM_GETNEIGH", "RTM_NEWNEIGH") and msg.get("ifindex") == self.ifindex
                  and msg.get("state", 0) & NUD_INCOMPLETE and msg.get_attr("NDA_DST")):
                self.engine_now()
                target = msg.get_attr("NDA_DST")
                self._apply(self._engine(ip_address(target).version).handle(eng.Resolve(target=target)))

    def _on_route_change(self) -> None:
        assert self.route_changes is not None
        if (self.route_changes.drain() or self.route_changes.lost) and self.learn_due is None:
            self.learn_due = time.monotonic() + LEARN_AFTER

    def _learn(self) -> None:
        """Tell the engine the tunnel's routes with a gateway, but for our shortcuts, when
        they changed."""
        found = set()
        for r in self.ipr.get_routes(family=socket.AF_INET, oif=self.ifindex):
            if r["flags"] & RTM_F_CLONED:       # cached /32s (redirects, PMTU): not routes
                continue
            dst, via = f"{r.get_attr('RTA_DST') or '0.0.0.0'}/{r['dst_len']}", r.get_attr("RTA_GATEWAY")
            for hop in r.get_attr("RTA_MULTIPATH") or ():      # ECMP (two hubs): every hop
                found.add((dst, hop.get_attr("RTA_GATEWAY")))
            found.add((dst, via))
        learned = tuple(sorted((d, v) for d, v in found if v and d not in self.routes))
        if learned != self.learned:
            self.learned = learned
            self.engine_now()
            self._apply(self.engine.handle(eng.Routes(routes=learned)))

    def _on_control(self) -> None:
        conn, _ = self.control.accept()
        with conn:
            conn.settimeout(2)
            try:
                req = json.loads(conn.recv(65536) or b"{}")
                what = req.get("show")
                views = self._engine(req.get("family", 4)).views()
                reply: Any = views[what] if what in views else {"error": f"unknown view {what!r}",
                                                                  "views": sorted(views)}
            except (ValueError, OSError) as e:
                reply = {"error": str(e)}
            conn.sendall(json.dumps(reply).encode() + b"\n")

    def engine_now(self) -> None:
        """Timers due before this input fire first: the engines see time in order."""
        for engine in self.engines:
            self._apply(engine.tick(time.monotonic()))

    # ------------------------------------------------------------ outputs
    def _apply(self, actions: list[Any]) -> None:
        for a in actions:
            try:
                self._do(a)
            except (OSError, NetlinkError) as e:     # a route already gone must not take the node down
                log.warning("%s failed: %s", type(a).__name__, e)

    def _do(self, a: Any) -> None:
        if isinstance(a, eng.Send):
            # With IPsec, nothing leaves before an SA to its destination is up (the
            # drop shunt would eat it): no SA, no send; NHRP's own resends retry.
            if self.protection is None or a.clear or self.protection.ensure(a.dst_nbma, self._identity(a.dst_nbma)):
                if a.src:
                    self._send_from(a)
                else:
                    self.nhrp.sendto(a.data, (self.config.interface, ETH_P_NHRP, 0, 0,
                                              IPv4Address(a.dst_nbma).packed))
        elif isinstance(a, eng.SendData):
            if self.protection is None or self.protection.ensure(a.dst_nbma, self._identity(a.dst_nbma)):
                self.nhrp.sendto(a.packet, (self.config.interface, ETH_P_IP, 0, 0, IPv4Address(a.dst_nbma).packed))
        elif isinstance(a, eng.MapNeighbor):
            if self.protection is not None and self.protection.protect_neighbours:
                v4 = _family(a.protocol) == socket.AF_INET
                self.protection.ensure(a.nbma, a.protocol if v4 else self._identity(a.nbma))
            self.ipr.neigh("replace", dst=a.protocol, lladdr=a.nbma, ifindex=self.ifindex, state=NUD_PERMANENT,
                           family=_family(a.protocol))
            self.mapped[a.protocol] = a.nbma
        elif isinstance(a, eng.UnmapNeighbor):
            self.ipr.neigh("del", dst=a.protocol, ifindex=self.ifindex, family=_family(a.protocol))
            nbma = self.mapped.pop(a.protocol, None)
            # A stopping node leaves its SAs to charon: closing them would blackhole the
            # far end's shortcut until it expires (its charon hears of it, its NHRP not).
            if self.protection is not None and nbma and nbma not in self.mapped.values() and not self.stopping:
                self.protection.release(nbma)
        elif isinstance(a, eng.AddRoute):
            net = str(ip_network(a.prefix, strict=False))
            self.ipr.route("replace", dst=net, gateway=a.via, oif=self.ifindex, flags=4,  # RTNH_F_ONLINK
                           proto=4, priority=10, family=_family(a.via))
            self.routes.add(net)
        elif isinstance(a, eng.DelRoute):
            gone = str(ip_network(a.prefix, strict=False))
            self.ipr.route("del", dst=gone, oif=self.ifindex, priority=10, family=_family(gone.split("/")[0]))
            self.routes.discard(gone)
        elif isinstance(a, eng.FlushRoutes):
            self._flush_tunnel_routes()
        elif isinstance(a, eng.Log):
            log.log(getattr(logging, str(a.level).upper(), logging.INFO), "%s %s", a.message,
                    json.dumps(a.fields, default=str, sort_keys=True))

    def _send_from(self, a: eng.Send) -> None:
        """GRE (with the tunnel's key) built here and sent from ``a.src``, one of our own
        addresses other than the NBMA one: the kernel's tunnel always uses that."""
        data = self.ipr.get_links(self.ifindex)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
        keyed = data is not None and bool((data.get_attr("IFLA_GRE_OFLAGS") or 0) & GRE_KEY_PRESENT)
        gre = struct.pack("!HH", GRE_KEY_PRESENT if keyed else 0, ETH_P_NHRP)
        if keyed:
            gre += struct.pack("!I", data.get_attr("IFLA_GRE_OKEY") or 0)
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE) as s:
            s.bind((a.src, 0))
            s.sendto(gre + a.data, (a.dst_nbma, 0))

    def _flush_tunnel_routes(self) -> None:
        """A start-up "stale route" sweep that takes the operator's static routes with ours."""
        for r in self.ipr.get_routes(family=socket.AF_INET, oif=self.ifindex):
            if r["proto"] != RTPROT_KERNEL and not r["flags"] & RTM_F_CLONED:     # cached /32s: not routes
                dst = f"{r.get_attr('RTA_DST') or '0.0.0.0'}/{r['dst_len']}"
                try:
                    self.ipr.route("del", dst=dst, table=r.get_attr("RTA_TABLE") or r["table"],
                                   priority=r.get_attr("RTA_PRIORITY") or 0)
                except NetlinkError as e:
                    log.warning("cannot flush route %s: %s", dst, e)
                    continue
                log.info("flushed route %s on the tunnel (fault)", dst)

    def _identity(self, nbma: str) -> str | None:
        """The protocol address the station at `nbma` must prove in IKE, if known: IKE
        identities are IPv4 tunnel addresses, so a peer known by its IPv6 one only
        proves whatever identity the lab's key or CA vouches for."""
        if nbma in self.nhs_identity:
            return self.nhs_identity[nbma]
        return next((p for p, n in self.mapped.items() if n == nbma and _family(p) == socket.AF_INET), None)

    def _cleanup(self) -> None:
        if self.protection is not None:
            self.protection.fail_closed(False)
        for net in list(self.routes):
            try:
                self.ipr.route("del", dst=net, oif=self.ifindex, priority=10, family=_family(net.split("/")[0]))
            except OSError:
                pass
        for s in (self.nhrp, self.control, self.events, self.route_changes):
            if s is not None:
                s.close()
        for group in (self.nflog, self.mcast):
            if group is not None:
                group.close()
        self.ipr.close()


def _family(addr: str) -> int:
    return socket.AF_INET6 if ip_address(addr).version == 6 else socket.AF_INET


def query(control: Path, what: str, timeout: float = 5.0, family: int = 4) -> Any:
    """Ask a running node for one of its views (`family` 6: its IPv6 side's)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(control))
        s.sendall(json.dumps({"show": what, "family": family}).encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def _ipsec(d: Any) -> IpsecConfig | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise ConfigError("ipsec", f"expected a mapping, got {type(d).__name__}")
    try:
        return IpsecConfig(**d)
    except TypeError as e:
        raise ConfigError("ipsec", f"{e} (keys: vici, identity, ike_proposals, esp_proposals)") from None


def main(config_path: Path, control: Path, nbma_interface: str | None, nflog_group: int | None,
         log_file: Path | None, multicast_nflog_group: int | None = None, learn_routes: bool = False) -> int:
    # Our decisions at DEBUG; libraries (pyroute2 logs every netlink message) at WARNING.
    logging.basicConfig(filename=str(log_file) if log_file else None, level=logging.WARNING,
                        format="%(asctime)s.%(msecs)03d nhrpd %(levelname)s %(message)s", datefmt="%H:%M:%S")
    log.setLevel(logging.DEBUG)
    doc = json.loads(Path(config_path).read_text())
    config = Config.from_dict(doc)
    node = LinuxNode(config, control, nbma_interface, nflog_group, _ipsec(doc.get("ipsec")), multicast_nflog_group,
                     learn_routes)
    log.info("started pid %d on %s", os.getpid(), config.interface)
    node.run()
    return 0
