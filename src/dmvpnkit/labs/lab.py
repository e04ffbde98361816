"""A running lab: topology + backend + implementation drivers, and its lab directory.

The lab directory holds everything needed to understand or rebuild a run:
`lab.json` (what was asked for, the resolved topology, timings, state), rendered
configs and daemon logs under `nodes/<name>/`. `Lab.from_dir()` reattaches to a
running lab from it; the kernel state (namespaces, daemons) is the source of truth.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from pyroute2.netlink.exceptions import NetlinkError

from .. import __version__
from . import backend as backends
from . import spec as specmod
from . import underlay
from .backend import Backend
from . import implementations
from .implementations import Implementation, Setup, Unimplemented
from .implementations.frr import DEAD_TIME
from .ipsec import StrongswanDriver
from .node import Node
from .spec import Ipsec, Topology
from .views import CacheEntry, NhsEntry, Shortcut

if TYPE_CHECKING:
    from .tap import LabCapture

LAB_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
REGISTRATION_BACKOFF_CAP = 64.0     # s between registration retries at most (FRR, Cisco)
ANSWER_WITHIN = 5.0                 # s after the hub has a spoke: until its reply is at the spoke (in flight, or resent)
ROUTING_CONVERGENCE = 30.0          # s after registration: BGP connects every 1 s and sends at once (timers 3 9)
STATIC_ROUTED_WITHIN = 5.0          # s after registration: a static route's next hop resolves (milliseconds)
ROUTING_DEAD_SLACK = 3.0            # s past a dead time: the keepalive or hello in flight, and zebra
T = TypeVar("T")


class LabError(RuntimeError):
    pass


class Unsupported(LabError):
    """The topology cannot be run this way at all, whatever the implementation: a lab
    that is not built (its cases are skipped with the reason), not one that failed."""


class ConvergenceTimeout(LabError):
    pass


def parse_impl(text: str) -> dict[str, str]:
    """`frr`, `hub=frr,spoke=nhrpd` or a profile file (`implementations/x.yaml`) ->
    {role: implementation name} for hub and spoke."""
    roles = {"hub": "", "spoke": ""}
    for part in text.split(","):
        role, eq, impl = part.strip().partition("=")
        if not eq:
            roles = {r: role for r in roles}
            continue
        if role not in roles:
            raise LabError(f"--impl {text!r}: unknown role {role!r} (roles: hub, spoke)")
        roles[role] = impl
    for role, impl in roles.items():
        try:
            roles[role] = implementations.resolve(impl)
        except implementations.ImplementationError as e:
            raise LabError(f"--impl {text!r}: {role}: {e}") from None
    return roles


class Drivers:
    """One instance per implementation in the lab, each running the nodes of the roles
    it was given; per-node calls go to that node's implementation."""

    def __init__(self, impl: dict[str, str], backend: Backend, lab_dir: Path, phase: int,
                 nhrpd_faults: tuple[str, ...] = (), ipsec: Ipsec | None = None,
                 variables: dict[str, str] | None = None):
        self.impl = impl
        self.variables = dict(variables or {})
        classes = {name: implementations.get(name) for name in dict.fromkeys(impl.values())}
        nodes = {name: tuple(n.name for n in backend.topo.nodes.values() if n.is_dmvpn and impl[n.role] == name)
                 for name in classes}
        # IPsec: a charon on every node with a tunnel, coupled to NHRP the way the
        # node's implementation prefers (labs.ipsec); the scapy peer drives its SAs over VICI.
        self.ipsec: StrongswanDriver | None = None
        if ipsec is not None:
            coupling = {"peer": "vici"}
            for name, cls in classes.items():
                if not cls.ipsec_couplings:
                    raise LabError(f"{name} declares no IPsec coupling: it cannot run with --ipsec")
                coupling[name] = cls.ipsec_couplings[0]
            by_node = {n.name: coupling[impl[n.role] if n.is_dmvpn else "peer"]
                       for n in backend.topo.nodes.values() if n.is_dmvpn or n.role == "peer"}
            # A fault switch that sends before IKE is done has charon's drop shunt left out
            # on the nodes of the implementation that declares it (`unshunted_faults`).
            careless = frozenset(n.name for n in backend.topo.nodes.values() if n.is_dmvpn
                                 and set(getattr(classes[impl[n.role]], "unshunted_faults", ())) & set(nhrpd_faults))
            self.ipsec = StrongswanDriver(backend, lab_dir, ipsec, by_node, careless)
        self.drivers: dict[str, Implementation] = {
            name: cls(Setup(backend, lab_dir, phase, nodes[name], self.ipsec, tuple(nhrpd_faults), self.variables))
            for name, cls in classes.items()}
        self.by_node = {n: self.drivers[name] for name, ns in nodes.items() for n in ns}
        self.name = combination(impl)

    def versions(self) -> dict[str, str]:
        v = {name: d.version(self.variables) for name, d in self.drivers.items()}
        if self.ipsec is not None:
            v["strongswan"] = self.ipsec.version()
        return v

    def couplings(self) -> dict[str, str]:
        """Implementation (or `peer`) -> how its nodes drive IKE; empty without IPsec."""
        if self.ipsec is None:
            return {}
        nodes = self.ipsec.topo.nodes
        return {(self.impl[nodes[n].role] if nodes[n].is_dmvpn else "peer"): c
                for n, c in self.ipsec.coupling.items()}

    def unimplemented(self, feature: str, role: str | None = None) -> str | None:
        """Why the implementation playing `role` (any role if None) lacks `feature`."""
        for name, d in self.drivers.items():
            plays = role is None or self.impl.get(role) == name
            reason = d.unimplemented.get(feature) if plays else None
            if reason:
                return f"{name}: {reason}"
        return None

    def write_configs(self) -> None:
        for d in self.drivers.values():
            d.write_configs()
        if self.ipsec is not None:
            self.ipsec.write_configs()

    def start(self) -> None:
        if self.ipsec is not None:      # IKE first: no NHRP packet may leave unprotected
            self.ipsec.start()
        for d in self.drivers.values():
            d.start()

    def stop(self) -> None:
        try:
            for d in self.drivers.values():
                d.stop()
        finally:
            if self.ipsec is not None:
                self.ipsec.stop()

    def of(self, node: str) -> Implementation:
        return self.by_node[node]

    def _viewing(self, node: str, what: str) -> Implementation:
        d = self.of(node)
        if what not in d.views:
            raise Unimplemented(d.name, f"the {what} view", f"{node}'s implementation offers only "
                                f"{', '.join(d.views) or 'no state views'}")
        return d

    def cache(self, node: str) -> list[CacheEntry]:
        return self._viewing(node, "cache").cache(node)

    def nhs(self, node: str) -> list[NhsEntry]:
        return self._viewing(node, "nhs").nhs(node)

    def shortcuts(self, node: str) -> list[Shortcut]:
        return self._viewing(node, "shortcuts").shortcuts(node)

    def reload(self, node: str) -> None:
        """Apply the node's configuration files (lab_dir/nodes/<node>/) as they are now."""
        d = self.of(node)
        reload = getattr(d, "reload", None)
        if reload is None:
            raise Unimplemented(d.name, "reload", f"{node}'s implementation declares no reload")
        reload(node)

    def stop_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        """Stop one daemon of a node: the NHRP implementation's, or `charon`."""
        if daemon == "charon" and self.ipsec is not None:
            self.ipsec.stop_node(node)
        else:
            self.of(node).stop_daemon(node, daemon)

    def start_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        if daemon == "charon" and self.ipsec is not None:
            self.ipsec.start_node(node)
        else:
            self.of(node).start_daemon(node, daemon)


def combination(impl: dict[str, str]) -> str:
    """`frr` when every role runs the same implementation, else `hub=frr,spoke=nhrpd`."""
    names = set(impl.values())
    return names.pop() if len(names) == 1 else ",".join(f"{r}={i}" for r, i in impl.items())


def check_name(name: str) -> str:
    if not name or len(name) > 24 or any(c not in LAB_NAME_CHARS for c in name):
        raise LabError(f"lab name {name!r}: use 1-24 of [a-z0-9_] (it prefixes namespace names)")
    return name


def wait_until(what: str, probe: Callable[[], T], timeout: float, interval: float = 0.2,
               ok: Callable[[T], bool] = bool) -> T:
    """Poll `probe` until `ok(value)`; on timeout the last value is the error's evidence."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
        except Unimplemented:
            raise                   # declared missing: waiting will not bring it
        except Exception as e:  # noqa: BLE001 - daemons may not answer yet; keep the evidence
            last = e
        else:
            if ok(value):
                return value
            last = value
        if time.monotonic() > deadline:
            raise ConvergenceTimeout(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def wait_quietly(what: str, probe: Callable[[], T], timeout: float, interval: float = 0.2,
                 ok: Callable[[T], bool] = bool) -> bool:
    """`wait_until`, False on timeout: for a state that the cases judge, with the
    evidence, so not reaching it is their finding and not a lab or fixture error."""
    try:
        wait_until(what, probe, timeout, interval, ok)
        return True
    except ConvergenceTimeout:
        return False


@dataclass
class Timings:
    kernel: float = 0.0
    topology: float = 0.0
    daemons: float = 0.0
    convergence: float = 0.0
    routing: float = 0.0        # of convergence: after registration, until every LAN was routed

    @property
    def total(self) -> float:
        return self.kernel + self.topology + self.daemons + self.convergence

    def line(self) -> str:
        return (f"bring-up {self.total:.1f} s: kernel {self.kernel:.1f} s, topology {self.topology:.1f} s, "
                f"daemons {self.daemons:.1f} s, convergence {self.convergence:.1f} s"
                + (f" (routes {self.routing:.1f} s of it)" if self.routing else ""))


@dataclass
class Lab:
    name: str
    topo: Topology
    lab_dir: Path
    impl: dict[str, str]
    phase: int
    topology_file: str = ""
    kernel: str = "host"
    timings: Timings = field(default_factory=Timings)
    nhrpd_faults: tuple[str, ...] = ()      # fault switches for every nhrpd node (testing the tests)
    ipsec: bool = False                     # protect GRE with strongSwan (topology's `ipsec:` or defaults)
    ipsec_auth: str = ""                    # "psk" | "cert": overrides the topology's
    backend_name: str = backends.DEFAULT    # netns | mininet | clab | an installed one
    variables: dict[str, str] = field(default_factory=dict)     # for the implementations: frr_prefix=DIR
    # Kept by the pytest plugin for the cases: the capture of bring-up (started before
    # the daemons), and the implementations' versions once the lab is up.
    bringup: LabCapture | None = field(default=None, repr=False, compare=False)
    versions: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_name(self.name)       # a bad name is the caller's error, reported where it is made

    # Built on first use, not by the constructor: reading a lab (decode, report, `lab
    # ls`) must not look up backends and implementations it never drives.
    @functools.cached_property
    def backend(self) -> Backend:
        return backends.get(self.backend_name)(self.name, self.topo, self.lab_dir)

    @functools.cached_property
    def driver(self) -> Drivers:
        sa = (self.topo.ipsec or Ipsec()) if self.ipsec else None
        if sa is not None and self.ipsec_auth:
            sa = dataclasses.replace(sa, auth=self.ipsec_auth)
        return Drivers(self.impl, self.backend, self.lab_dir, self.phase, self.nhrpd_faults, sa, self.variables)

    def node(self, name: str) -> Node:
        """The node `name`, through the Node API of the lab's backend."""
        return self.backend.node(name)

    # ------------------------------------------------------------ persistence
    @property
    def json_path(self) -> Path:
        return self.lab_dir / "lab.json"

    def save(self, state: str) -> None:
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "dmvpnkit": __version__, "name": self.name, "state": state,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "topology_file": self.topology_file, "params": self.topo.params,
            "impl": self.impl, "phase": self.phase, "kernel": self.kernel,
            "profiles": {i: p for i in set(self.impl.values()) if (p := implementations.profile_path(i))},
            "ipsec": self.driver.couplings() if self.ipsec else None, "ipsec_auth": self.ipsec_auth,
            "backend": self.backend_name, "variables": self.variables, "timings": asdict(self.timings),
            "topology": specmod.to_dict(self.topo),
        }
        tmp = self.json_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, self.json_path)

    @classmethod
    def from_dir(cls, lab_dir: Path) -> "Lab":
        doc = read_lab_json(lab_dir)
        for path in doc.get("profiles", {}).values():      # profile implementations, added again
            implementations.resolve(path)
        topo = specmod.load(doc["topology_file"], {k: str(v) for k, v in doc["params"].items()} or None)
        lab = cls(name=doc["name"], topo=topo, lab_dir=lab_dir, impl=doc["impl"], phase=doc["phase"],
                  topology_file=doc["topology_file"], kernel=doc.get("kernel", "host"),
                  ipsec=bool(doc.get("ipsec")), ipsec_auth=doc.get("ipsec_auth", ""),
                  backend_name=doc.get("backend", backends.DEFAULT), variables=doc.get("variables", {}))
        lab.timings = Timings(**doc.get("timings", {}))
        lab.backend.attach()
        return lab

    # ------------------------------------------------------------ lifecycle
    def up(self, log: Callable[[str], None] = print, timeout: float | None = None,
           before_daemons: Callable[["Lab"], None] | None = None) -> Timings:
        """Build, start, wait for convergence. `before_daemons` runs once the topology
        exists and nothing has been sent yet: where a capture of bring-up starts."""
        self._require()
        leftovers = self.backend.reap(self.name)
        if leftovers:
            log(f"reaped {len(leftovers)} nodes left by an earlier run of lab {self.name}")
        self.save("starting")
        try:
            t = time.monotonic()
            self.backend.build()
            for name in self.topo.nodes:
                underlay.configure(self.topo, self.node(name))
            self.timings.topology = time.monotonic() - t
            log(f"topology: {len(self.topo.nodes)} nodes, {len(self.topo.links)} links "
                f"({self.backend_name}) in {self.timings.topology:.1f} s")
            if before_daemons is not None:
                before_daemons(self)
            t = time.monotonic()
            self.driver.write_configs()
            self.driver.start()
            self.timings.daemons = time.monotonic() - t
            log(f"daemons: {self.driver.name} on {len(self.topo.hubs) + len(self.topo.spokes)} "
                f"DMVPN nodes in {self.timings.daemons:.1f} s")
            t = time.monotonic()
            self.wait_converged(timeout)
            self.timings.convergence = time.monotonic() - t
            done = self.timings
            routes = f", every LAN routed {done.routing:.1f} s later" if done.routing else ""
            log(f"converged: every spoke registered with its NHS in {done.convergence - done.routing:.1f} s{routes}")
        except BaseException:
            self.down()
            self.save("failed")
            raise
        self.save("up")
        return self.timings

    def _require(self) -> None:
        """What the topology at this phase asks of every implementation in the lab: one
        that declared it missing makes the lab, and so each case on it, UNIMPLEMENTED,
        before anything is built. A topology that no implementation could run at this
        phase raises Unsupported (its cases are skipped)."""
        if self.phase == 2 and self.topo.dmvpn.routing == "ospf":
            if len(self.topo.hubs) > 1:
                raise Unsupported(f"topology {self.topo.name}: OSPF in phase 2 is one broadcast network with one "
                                  f"DR every router hears, and its {len(self.topo.hubs)} hubs do not hear each "
                                  "other (no topology peers its hubs)")
            for name, d in self.driver.drivers.items():
                if reason := d.unimplemented.get("ospf-broadcast"):
                    raise Unimplemented(name, "OSPF in phase 2", reason)
        if self.topo.dmvpn.tunnel_prefix6 is not None:
            for name, d in self.driver.drivers.items():
                if reason := d.unimplemented.get("ipv6"):
                    raise Unimplemented(name, "IPv6 over the overlay", reason)

    def shut_out(self, spoke: str, hub: str) -> bool:
        """True when IKE between the two must fail: the topology gave them different credentials."""
        sa = self.driver.ipsec.ipsec if self.driver.ipsec is not None else None
        return sa is not None and sa.psk_of(spoke) != sa.psk_of(hub)

    def registered(self) -> dict[str, list[str]]:
        """Per hub, the spokes (by name) not yet in its cache as dynamic entries (a
        spoke the topology shuts out of IKE on purpose is not expected)."""
        missing: dict[str, list[str]] = {}
        for hub in self.topo.hubs:
            have = self._registered_at(hub.name)
            lost = [s.name for s in self._expected(hub.name) if str(s.tunnel) not in have]
            if lost:
                missing[hub.name] = lost
        return missing

    def unanswered(self) -> dict[str, list[str]]:
        """Per hub, the spokes whose implementation shows its NHSs but that have not
        taken this hub's Registration Reply (its protocol address still unlearnt). The
        hub counts a spoke while the reply may still be in flight (150 ms in the
        high-RTT lab), and what is captured of bring-up ends once both have it."""
        missing: dict[str, list[str]] = {}
        for hub in self.topo.hubs:
            lost = [s.name for s in self._expected(hub.name) if not self._answered(s.name, str(hub.nbma))]
            if lost:
                missing[hub.name] = lost
        return missing

    def _expected(self, hub: str) -> list[specmod.Node]:
        """The spokes that register with `hub`: not one the topology shuts out of IKE on purpose."""
        return [s for s in self.topo.spokes if hub in s.nhs and not self.shut_out(s.name, hub)]

    def routed(self) -> dict[str, list[str]]:
        """Per DMVPN node, the other nodes' LANs its kernel does not route into the
        tunnel (any implementation's routes: what its forwarding uses). Hubs do not
        route each other's LANs (no topology peers them), only the spokes'."""
        dmvpn = [n for n in self.topo.nodes.values() if n.is_dmvpn]
        missing: dict[str, list[str]] = {}
        for n in dmvpn:
            ipr = self.node(n.name).ipr()
            gre = ipr.link_lookup(ifname=underlay.MGRE)[0]
            lost = []
            for other in dmvpn:
                # A LAN without its link (`lan_host: false`) is never advertised.
                if other is n or other.lan is None or self.topo.lan_host(other.name) is None \
                        or n.role == other.role == "hub":
                    continue
                host = str(next(other.lan.hosts()))
                try:
                    oif = ipr.route("get", dst=host)[0].get_attr("RTA_OIF")
                except NetlinkError:        # unreachable: missing, as a wrong way is
                    oif = None
                if oif != gre:
                    lost.append(str(other.lan))
            if lost:
                missing[n.name] = lost
        return missing

    def _answered(self, spoke: str, hub_nbma: str) -> bool:
        """`spoke` has learnt from its registration with the NHS at `hub_nbma`; without
        an NHS view, taken as answered (the hub's side decides alone)."""
        if "nhs" not in self.driver.of(spoke).views:
            return True
        return any(e.protocol and hub_nbma in (e.nbma, e.fqdn) for e in self.driver.nhs(spoke))

    def _registered_at(self, hub: str) -> set[str]:
        """Tunnel addresses the hub has a dynamic binding for: from its cache view, or,
        for an implementation without one, from the NBMA neighbours it put on the
        tunnel (what any Linux NHRP implementation installs to send to a spoke)."""
        if "cache" in self.driver.of(hub).views:
            return {e.protocol for e in self.driver.cache(hub) if e.type == "dynamic"}
        ipr = self.node(hub).ipr()
        gre = ipr.link_lookup(ifname=underlay.MGRE)[0]
        return {n.get_attr("NDA_DST") for n in ipr.get_neighbours(ifindex=gre)
                if n.get_attr("NDA_LLADDR") not in (None, "0.0.0.0")}

    def wait_converged(self, timeout: float | None = None) -> None:
        # Registration is sent at start-up and, when lost (IPsec's acquire eats the
        # first packet), retried with back-off: within one hold time, or within the
        # backoff's cap when the hold time is shorter; plus start-up per spoke.
        limit = timeout or max(self.topo.dmvpn.holdtime, REGISTRATION_BACKOFF_CAP) + 0.5 * len(self.topo.spokes)
        wait_until("every spoke registered with its NHS (hub -> spokes missing)",
                   self.registered, limit, ok=lambda missing: not missing)
        # Then until each spoke has taken its reply, briefly: one in flight arrives
        # within a round trip, one lost is resent within seconds. A spoke that never
        # takes it is for the registration cases to judge from the packets, not a lab
        # that failed to come up.
        wait_quietly("every spoke to take its Registration Reply (hub -> spokes)", self.unanswered,
                     ANSWER_WITHIN, ok=lambda missing: not missing)
        t = time.monotonic()
        # A timeout asked for (a large lab's) is the routing protocol's too.
        self.wait_routed(max(timeout or 0.0, ROUTING_CONVERGENCE))
        self.timings.routing = time.monotonic() - t

    def wait_routed(self, timeout: float = ROUTING_CONVERGENCE) -> None:
        """Until every DMVPN node routes every other LAN into the tunnel again (a scenario
        that cut a node off waits for this before it sends traffic).

        With a routing protocol, a LAN still missing after `timeout` fails the lab.
        Static routes lag registration too: FRR's zebra installs one once nhrpd's host
        route for its next hop is in (a hub without it, seen under load, sent the first
        ping out of its default route). But the harness wrote them, so one still
        missing after STATIC_ROUTED_WITHIN is the cases' finding, not a lab that
        failed to come up."""
        routing = self.topo.dmvpn.routing
        what = f"every DMVPN node routing every other LAN into the tunnel ({routing}; node -> LANs missing)"
        if routing == "static":
            wait_quietly(what, self.routed, STATIC_ROUTED_WITHIN, ok=lambda missing: not missing)
        else:
            # BGP's connect retry (1 s) and first UPDATEs, OSPF's hellos (1 s) and
            # flooding, follow registration closely.
            wait_until(what, self.routed, timeout, ok=lambda missing: not missing)

    def wait_unrouted(self, node: str, silent: str, since: float) -> bool:
        """With a routing protocol, until `node` stops routing `silent`'s LAN into the
        tunnel, once the protocol's dead time has run from `since` (wall clock, when
        `silent` went quiet); False if it still does then. A scenario that cuts a node
        off waits for this before it restores the node: restored sooner, the adjacency
        may be reset after `wait_routed` has seen the route, as the far side's timer runs
        out late. Static routes never go: True at once."""
        dead = DEAD_TIME.get(self.topo.dmvpn.routing)
        lan = self.topo.nodes[silent].lan
        if dead is None or lan is None:
            return True
        return wait_quietly(f"{node} to stop routing {silent}'s LAN {lan} ({self.topo.dmvpn.routing})",
                            lambda: str(lan) in self.routed().get(node, []),
                            max(0.0, since + dead + ROUTING_DEAD_SLACK - time.time()))

    def down(self) -> list[str]:
        self.save("stopping")
        try:
            self.driver.stop()
        finally:
            removed = self.backend.destroy()
        self.save("down")
        return removed

    def status(self) -> dict[str, Any]:
        nodes = []
        for n in self.topo.nodes.values():
            row: dict[str, Any] = {"name": n.name, "role": n.role, "id": self.node(n.name).id}
            ifaces: dict[str, dict[str, int]] = {}
            try:
                ifaces = counters(self.node(n.name))
                row.update(up=True, interfaces=sorted(ifaces))
            except Exception as e:  # noqa: BLE001 - a node that is gone is status, not a crash
                row.update(up=False, error=str(e))
            if n.is_dmvpn and row["up"]:
                row.update(nbma=str(n.nbma), tunnel=str(n.tunnel), lan=str(n.lan))
                try:
                    row["cache"] = [asdict(e) for e in self.driver.cache(n.name)]
                    row["shortcuts"] = [asdict(e) for e in self.driver.shortcuts(n.name)]
                    row["gre1"] = ifaces[underlay.MGRE]
                    if self.driver.ipsec is not None:
                        row["sas"] = [asdict(sa) for sa in self.driver.ipsec.sas(n.name)]
                except Exception as e:  # noqa: BLE001 - a dead daemon is status, not a crash
                    row["error"] = str(e)
            nodes.append(row)
        return {"name": self.name, "impl": self.impl, "phase": self.phase, "kernel": self.kernel,
                "backend": self.backend_name, "topology": self.topo.name, "lab_dir": str(self.lab_dir),
                "timings": {**asdict(self.timings), "total": self.timings.total}, "nodes": nodes}


def counters(node: Node) -> dict[str, dict[str, int]]:
    """Interface name -> packet and byte counters, from netlink."""
    out = {}
    for link in node.ipr().get_links():
        st = link.get("IFLA_STATS64") or {}
        out[link.get("IFLA_IFNAME")] = {k: st.get(k, 0) for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")}
    return out


def read_lab_json(lab_dir: Path) -> dict[str, Any]:
    path = lab_dir / "lab.json"
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc
    except FileNotFoundError:
        raise LabError(f"{path}: no such lab (lab.json missing)") from None
    except ValueError as e:
        raise LabError(f"{path}: not valid JSON: {e}") from None
