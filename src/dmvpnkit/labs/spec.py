"""Topology specs: role-based YAML in, a validated, fully addressed `Topology` out.

A spec names roles (hubs, spokes, NAT boxes, LAN hosts, the NBMA router), never an
implementation. Addresses left out are assigned from pools, so a 20-spoke topology is
a few lines. A file may start with a `params:` document; the rest of the file is then
a Jinja2 template rendered with those parameters (overridable from the command line).

Every problem is collected before anything is raised: `SpecError` lists each with
its YAML path and a hint, the way a compiler reports all errors of a file at once.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Iterator

import jinja2
import yaml

from .impairment import DIRECTIONS, Impairment, ImpairmentError

# 13 characters leave room for the LAN host (`<node>_h`) within IFNAMSIZ (15).
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,12}$")
ROLES = ("router", "hub", "spoke", "nat", "host")


@dataclass(frozen=True)
class Issue:
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" + (f" (hint: {self.hint})" if self.hint else "")


class IssuesError(ValueError):
    """All problems of one file, each with its key path (a compiler's error list)."""
    what = "file"

    def __init__(self, source: str, issues: list[Issue]):
        self.source = source
        self.issues = issues
        lines = "\n".join(f"  {source}: {i}" for i in issues)
        super().__init__(f"{len(issues)} error(s) in {self.what}:\n{lines}")


class SpecError(IssuesError):
    what = "topology spec"


@dataclass(frozen=True)
class Iface:
    name: str                 # named after the node at the other end
    address: IPv4Interface
    peer: str


@dataclass(frozen=True)
class Node:
    name: str
    role: str
    ifaces: tuple[Iface, ...] = ()
    gateway: IPv4Address | None = None      # underlay default route
    # DMVPN nodes (hub, spoke) only:
    nbma_iface: str | None = None
    tunnel: IPv4Address | None = None
    lan: IPv4Network | None = None
    nhs: tuple[str, ...] = ()               # hub names, in preference order
    # NAT boxes only: the interface that masquerades
    public_iface: str | None = None

    def iface(self, name: str) -> Iface:
        for i in self.ifaces:
            if i.name == name:
                return i
        raise KeyError(f"{self.name} has no interface {name!r}")

    @property
    def nbma(self) -> IPv4Address | None:
        return self.iface(self.nbma_iface).address.ip if self.nbma_iface else None

    @property
    def is_dmvpn(self) -> bool:
        return self.role in ("hub", "spoke")


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    prefix: IPv4Network
    # The topology's impairment of what each end sends (node name -> netem settings).
    impair: dict[str, Impairment] = field(default_factory=dict)

    def other(self, node: str) -> str:
        return self.b if node == self.a else self.a


@dataclass(frozen=True)
class Dmvpn:
    network_id: int = 1
    gre_key: int | None = 42
    holdtime: int = 60
    tunnel_prefix: IPv4Network = IPv4Network("10.255.0.0/16")


@dataclass(frozen=True)
class Ipsec:
    """The topology's `ipsec:` section: IKEv2 with a pre-shared key or with certificates
    (`auth: cert`: a lab CA made at bring-up), ESP in transport mode for GRE.
    `node_psk` gives single nodes other credentials (an IKE failure on purpose): another
    key, or with certificates a certificate from another CA."""
    auth: str = "psk"
    psk: str = "dmvpnkit-lab-psk"
    ike_proposals: str = "aes128-sha256-modp2048"
    esp_proposals: str = "aes128gcm16"
    node_psk: dict[str, str] = field(default_factory=dict)

    def psk_of(self, node: str) -> str:
        return self.node_psk.get(node, self.psk)


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    phase: int
    dmvpn: Dmvpn
    lan_summary: IPv4Network
    nodes: dict[str, Node]
    links: tuple[Link, ...]
    source: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    ipsec: Ipsec | None = None

    def role(self, role: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == role]

    @property
    def hubs(self) -> list[Node]:
        return self.role("hub")

    @property
    def spokes(self) -> list[Node]:
        return self.role("spoke")

    def link(self, a: str, b: str) -> Link:
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        raise KeyError(f"topology {self.name} has no link between {a} and {b}")

    def lan_host(self, node: str) -> Node | None:
        return self.nodes.get(f"{node}_h")

    def nbma_names(self) -> dict[str, str]:
        """NBMA address -> node: each DMVPN node's own, and each NAT box's public one."""
        names = {str(n.nbma): n.name for n in self.nodes.values() if n.nbma_iface}
        names.update({str(n.iface(n.public_iface).address.ip): n.name
                      for n in self.nodes.values() if n.public_iface})
        return names


# ---------------------------------------------------------------- loading

def load(path: str | Path, params: dict[str, Any] | None = None) -> Topology:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(str(path), [Issue("<file>", f"cannot read: {e.strerror}")]) from None
    return loads(text, source=str(path), params=params)


def loads(text: str, source: str = "<string>", params: dict[str, Any] | None = None) -> Topology:
    doc, used = _render(text, source, params or {})
    return _Validator(source, used).topology(doc)


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        raise SpecError(source, [Issue(where, f"invalid YAML: {getattr(e, 'problem', e)}")]) from None


def _render(text: str, source: str, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Split off a leading `params:` document and render the rest as Jinja2."""
    head, sep, body = text.partition("\n---\n")
    first = _yaml(head, source) if sep else None
    if not (isinstance(first, dict) and set(first) == {"params"}):
        if params:
            raise SpecError(source, [Issue("params", "this topology takes no parameters",
                                           f"got {sorted(params)}")])
        return _yaml(text, source), {}
    defaults = first["params"] or {}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise SpecError(source, [Issue(f"params.{k}", "unknown parameter",
                                       f"known: {', '.join(sorted(defaults))}") for k in unknown])
    used, bad = {}, []
    for k, v in defaults.items():
        try:
            used[k] = _coerce(params.get(k, v), v)
        except ValueError:
            bad.append(Issue(f"params.{k}", f"{params[k]!r} is not a {type(v).__name__}", f"default: {v!r}"))
    if bad:
        raise SpecError(source, bad)
    try:
        rendered = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(body).render(**used)
    except jinja2.TemplateError as e:
        raise SpecError(source, [Issue("<template>", f"cannot render: {e}")]) from None
    return _yaml(rendered, source), used


def _coerce(value: Any, default: Any) -> Any:
    """Command-line parameters arrive as strings; give them the default's type."""
    if isinstance(value, str) and isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(value, str) and isinstance(default, int):
        return int(value)
    if isinstance(value, str) and isinstance(default, float):
        return float(value)
    return value


# ---------------------------------------------------------------- validation

_TOP_KEYS = {"name", "description", "phase", "dmvpn", "addressing", "router", "hubs", "spokes", "nats", "peers",
             "ipsec"}
_IPSEC_KEYS = {"auth", "psk", "ike_proposals", "esp_proposals", "nodes"}
IPSEC_AUTH = ("psk", "cert")
_DMVPN_KEYS = {"network_id", "gre_key", "holdtime", "tunnel_prefix"}
_ADDR_KEYS = {"nbma_pool", "private_pool", "lan_pool"}
_NODE_KEYS = {
    "hub": {"nbma", "tunnel", "lan", "lan_host", "behind", "impair"},
    "spoke": {"nbma", "tunnel", "lan", "lan_host", "behind", "nhs", "impair"},
    "nat": {"public", "impair"},
    "peer": {"nbma", "tunnel", "impair"},
}


class _Validator:
    def __init__(self, source: str, params: dict[str, Any]):
        self.source = source
        self.params = params
        self.issues: list[Issue] = []

    def err(self, path: str, message: str, hint: str = "") -> None:
        self.issues.append(Issue(path, message, hint))

    # typed getters: record an issue and return a fallback instead of raising
    def _keys(self, m: Any, path: str, allowed: set[str]) -> dict[str, Any]:
        if m is None:
            return {}
        if not isinstance(m, dict):
            self.err(path, f"expected a mapping, got {type(m).__name__}")
            return {}
        for k in m:
            if k not in allowed:
                self.err(f"{path}.{k}" if path else str(k), "unknown key",
                         f"allowed here: {', '.join(sorted(allowed))}")
        return m

    def _int(self, m: dict[str, Any], key: str, path: str, default: int | None, lo: int, hi: int) -> int | None:
        v = m.get(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.err(f"{path}.{key}", f"must be an integer in {lo}..{hi}, got {v!r}")
            return default
        return v

    def _net(self, v: Any, path: str) -> IPv4Network | None:
        try:
            return IPv4Network(str(v), strict=True)
        except ValueError as e:
            self.err(path, f"not an IPv4 prefix: {v!r}", str(e))
            return None

    def _addr(self, v: Any, path: str) -> IPv4Address | None:
        try:
            return IPv4Address(str(v))
        except ValueError:
            self.err(path, f"not an IPv4 address: {v!r}")
            return None

    def topology(self, doc: Any) -> Topology:
        if not isinstance(doc, dict):
            raise SpecError(self.source, [Issue("<document>", "a topology is a YAML mapping",
                                                "start with `name: ...`")])
        doc = self._keys(doc, "", _TOP_KEYS)
        name = doc.get("name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,40}$", name):
            self.err("name", f"missing or invalid topology name: {name!r}", "letters, digits, _ . -")
            name = "invalid"
        phase = self._int(doc, "phase", "", 3, 1, 3) or 3
        d = self._keys(doc.get("dmvpn"), "dmvpn", _DMVPN_KEYS)
        tunnel_prefix = self._net(d.get("tunnel_prefix", "10.255.0.0/16"), "dmvpn.tunnel_prefix")
        dmvpn = Dmvpn(
            network_id=self._int(d, "network_id", "dmvpn", 1, 1, 2**32 - 1) or 1,
            gre_key=self._int(d, "gre_key", "dmvpn", 42, 0, 2**32 - 1),
            holdtime=self._int(d, "holdtime", "dmvpn", 60, 1, 65535) or 60,
            tunnel_prefix=tunnel_prefix or IPv4Network("10.255.0.0/16"),
        )
        a = self._keys(doc.get("addressing"), "addressing", _ADDR_KEYS)
        pools = {k: self._net(a.get(k, dflt), f"addressing.{k}") for k, dflt in
                 (("nbma_pool", "172.16.0.0/16"), ("private_pool", "192.168.0.0/16"),
                  ("lan_pool", "10.0.0.0/12"))}
        router = doc.get("router", "inet")
        if not isinstance(router, str) or not NAME_RE.match(router):
            self.err("router", f"invalid node name {router!r}", NAME_RE.pattern)
            router = "inet"
        sections = {role: doc.get(f"{role}s") or {} for role in ("hub", "spoke", "nat", "peer")}
        for role, sec in sections.items():
            if not isinstance(sec, dict):
                self.err(f"{role}s", f"expected a mapping of {role} names, got {type(sec).__name__}")
                sections[role] = {}
        if not sections["hub"]:
            self.err("hubs", "a DMVPN needs at least one hub")
        seen: dict[str, str] = {router: "router"}
        for role, sec in sections.items():
            for n in sec:
                path = f"{role}s.{n}"
                if not isinstance(n, str) or not NAME_RE.match(n):
                    self.err(path, f"invalid node name {n!r}", "lowercase letter, then up to 12 of [a-z0-9_]")
                elif n in seen:
                    self.err(path, f"node name already used by a {seen[n]}")
                else:
                    seen[n] = role
        topo = self._build(name, doc, phase, dmvpn, pools, router, sections, seen)
        if "ipsec" in doc:
            topo = dataclasses.replace(topo, ipsec=self._ipsec(doc["ipsec"], seen))
        if self.issues:
            raise SpecError(self.source, self.issues)
        return topo

    def _ipsec(self, doc: Any, seen: dict[str, str]) -> Ipsec:
        d = self._keys(doc, "ipsec", _IPSEC_KEYS)
        out: dict[str, Any] = {}
        for key in ("psk", "ike_proposals", "esp_proposals"):
            if key in d:
                if isinstance(d[key], str) and d[key] and '"' not in d[key]:
                    out[key] = d[key]
                else:
                    self.err(f"ipsec.{key}", f"must be a non-empty string without quotes, got {d[key]!r}")
        if "auth" in d:
            if d["auth"] in IPSEC_AUTH:
                out["auth"] = d["auth"]
            else:
                self.err("ipsec.auth", f"{d['auth']!r} is not one of {', '.join(IPSEC_AUTH)}")
        nodes = d.get("nodes") or {}
        if not isinstance(nodes, dict):
            self.err("ipsec.nodes", f"expected a mapping of node names, got {type(nodes).__name__}")
            nodes = {}
        node_psk = {}
        for n, v in nodes.items():
            per = self._keys(v, f"ipsec.nodes.{n}", {"psk"})
            if seen.get(n) not in ("hub", "spoke", "peer"):
                self.err(f"ipsec.nodes.{n}", "not a hub, spoke or peer of this topology")
            elif isinstance(per.get("psk"), str) and per["psk"]:
                node_psk[n] = per["psk"]
        return Ipsec(**out, node_psk=node_psk)

    def _build(self, name: str, doc: dict[str, Any], phase: int, dmvpn: Dmvpn, pools: dict[str, IPv4Network | None],
               router: str, sections: dict[str, dict[str, Any]], seen: dict[str, str]) -> Topology:
        hubs, spokes, nats = sections["hub"], sections["spoke"], sections["nat"]
        alloc = _Allocator(pools)
        ifaces: dict[str, list[Iface]] = {router: []}
        links: list[Link] = []
        nodes: dict[str, Node] = {}
        used: dict[IPv4Address, str] = {}

        def claim(addr: IPv4Address, path: str) -> None:
            if addr in used:
                self.err(path, f"duplicate address {addr}", f"already used at {used[addr]}")
            used[addr] = path

        def link(a: str, b: str, net: IPv4Network, a_ip: IPv4Address, b_ip: IPv4Address, path: str) -> None:
            claim(a_ip, f"{path} ({a})")
            claim(b_ip, f"{path} ({b})")
            ifaces.setdefault(a, []).append(Iface(b, IPv4Interface(f"{a_ip}/{net.prefixlen}"), b))
            ifaces.setdefault(b, []).append(Iface(a, IPv4Interface(f"{b_ip}/{net.prefixlen}"), a))
            links.append(Link(a, b, net))

        def uplink(node: str, spec: dict[str, Any], key: str, path: str) -> tuple[str, IPv4Address]:
            """Connect a node to the router (or its NAT box); return (iface, gateway)."""
            behind = spec.get("behind")
            upstream = router
            if behind is not None:
                if behind not in nats:
                    self.err(f"{path}.behind", f"no NAT box named {behind!r}",
                             f"declared NAT boxes: {', '.join(nats) or 'none'}")
                else:
                    upstream = behind
            explicit = spec.get(key)
            pool = "private_pool" if upstream != router else "nbma_pool"
            if explicit is not None:
                try:
                    ifa = IPv4Interface(str(explicit) if "/" in str(explicit) else f"{explicit}/30")
                except ValueError:
                    self.err(f"{path}.{key}", f"not an IPv4 address: {explicit!r}")
                    ifa = None
                if ifa is not None:
                    alloc.reserve(ifa.network)
                    gw = next(h for h in ifa.network.hosts() if h != ifa.ip)
                    link(node, upstream, ifa.network, ifa.ip, gw, f"{path}.{key}")
                    return upstream, gw
            net = alloc.take(pool, 30)
            if net is None:
                self.err(f"{path}.{key}", f"address pool addressing.{pool} is exhausted",
                         "use a larger pool")
                return upstream, IPv4Address(0)
            gw, ip = list(net.hosts())[:2]
            link(node, upstream, net, ip, gw, f"{path}.{key}")
            return upstream, gw

        for n, spec in nats.items():
            spec = self._keys(spec, f"nats.{n}", _NODE_KEYS["nat"])
            iface, gw = uplink(n, spec, "public", f"nats.{n}")
            nodes[n] = Node(n, "nat", gateway=gw, public_iface=iface)

        tunnel_prefix = dmvpn.tunnel_prefix
        # Peers: scapy NHRP stations the suite drives by hand; an NBMA address and a
        # tunnel address to claim, no daemon, no mGRE interface.
        for role, sec, base in (("hub", hubs, 1), ("spoke", spokes, 11), ("peer", sections["peer"], 101)):
            for idx, (n, spec) in enumerate(sec.items()):
                path = f"{role}s.{n}"
                spec = self._keys(spec, path, _NODE_KEYS[role])
                iface, gw = uplink(n, spec, "nbma", path)
                if "tunnel" in spec:
                    tun = self._addr(spec["tunnel"], f"{path}.tunnel")
                    if tun is not None and tun not in tunnel_prefix:
                        self.err(f"{path}.tunnel", f"{tun} is outside dmvpn.tunnel_prefix {tunnel_prefix}")
                else:
                    off = base + idx
                    tun = tunnel_prefix.network_address + off if off < tunnel_prefix.num_addresses - 1 else None
                    if tun is None:
                        self.err(path, "no tunnel address left in dmvpn.tunnel_prefix", "use a larger prefix")
                if tun is not None:
                    claim(tun, f"{path}.tunnel")
                if role == "peer":
                    nodes[n] = Node(n, role, gateway=gw, nbma_iface=iface, tunnel=tun)
                    continue
                lan = self._net(spec["lan"], f"{path}.lan") if "lan" in spec else alloc.take("lan_pool", 24)
                if lan is not None:
                    alloc.reserve(lan)
                nhs: tuple[str, ...] = ()
                if role == "spoke":
                    raw = spec.get("nhs", list(hubs))
                    if not isinstance(raw, list) or not raw:
                        self.err(f"{path}.nhs", "must be a non-empty list of hub names")
                        raw = []
                    for i, h in enumerate(raw):
                        if h not in hubs:
                            self.err(f"{path}.nhs[{i}]", f"no hub named {h!r}",
                                     f"hubs: {', '.join(hubs) or 'none'}")
                    nhs = tuple(h for h in raw if h in hubs)
                lan_host = spec.get("lan_host", True)
                if not isinstance(lan_host, bool):
                    self.err(f"{path}.lan_host", f"must be true or false, got {lan_host!r}")
                if lan is not None and lan_host is True:
                    h = f"{n}_h"
                    if h in seen:
                        self.err(path, f"LAN host name {h} is already a node name")
                    gw_ip, host_ip = lan.network_address + 1, lan.network_address + 10
                    if lan.num_addresses < 16:
                        self.err(f"{path}.lan", f"{lan} is too small for a LAN host", "use /28 or larger")
                    else:
                        link(n, h, lan, gw_ip, host_ip, f"{path}.lan")
                        nodes[h] = Node(h, "host", gateway=gw_ip)
                nodes[n] = Node(n, role, gateway=gw, nbma_iface=iface, tunnel=tun, lan=lan, nhs=nhs)

        for role, sec in (("hub", hubs), ("spoke", spokes), ("nat", nats), ("peer", sections["peer"])):
            for n, spec in sec.items():
                if isinstance(spec, dict) and "impair" in spec:
                    self._impair(links, n, spec["impair"], f"{role}s.{n}.impair")
        for n, node in list(nodes.items()):
            nodes[n] = _with_ifaces(node, ifaces.get(n, []))
        for n, node in nodes.items():
            if node.role == "nat" and not any(i.peer in spokes or i.peer in hubs for i in node.ifaces):
                self.err(f"nats.{n}", "NAT box has nothing behind it", "give a spoke `behind: " + n + "`")
        nodes = {router: Node(router, "router", ifaces=tuple(ifaces[router])), **nodes}
        lans = [n.lan for n in nodes.values() if n.lan is not None]
        summary = pools["lan_pool"] or IPv4Network("10.0.0.0/12")
        for member in nodes.values():
            if member.lan is not None and not member.lan.subnet_of(summary):
                self.err(f"{member.role}s.{member.name}.lan", f"{member.lan} is outside addressing.lan_pool {summary}",
                         "spokes route the LAN summary to the hub")
        for i, x in enumerate(lans):
            for y in lans[i + 1:]:
                if x.overlaps(y):
                    self.err("lan", f"LAN prefixes {x} and {y} overlap")
        return Topology(name=name, description=str(doc.get("description", "")), phase=phase,
                        dmvpn=dmvpn, lan_summary=summary, nodes=nodes, links=tuple(links),
                        source=self.source, params=self.params)


    def _impair(self, links: list[Link], node: str, doc: Any, path: str) -> None:
        """`impair: {delay: 75, loss: 1, direction: both}` on a node: its uplink's default."""
        doc = dict(doc) if isinstance(doc, dict) else doc
        direction = doc.pop("direction", "both") if isinstance(doc, dict) else "both"
        if direction not in DIRECTIONS:
            self.err(f"{path}.direction", f"{direction!r} is not one of {', '.join(DIRECTIONS)}")
            return
        try:
            imp = Impairment.from_dict(doc, path)
        except ImpairmentError as e:
            where, _, msg = str(e).partition(": ")
            self.err(where, msg)
            return
        i = next((i for i, link in enumerate(links) if link.a == node), None)
        if i is None:
            return
        up = links[i].b
        ends = {"both": (node, up), "out": (node,), "in": (up,)}[direction]
        links[i] = dataclasses.replace(links[i], impair={**links[i].impair, **{e: imp for e in ends}})


def _with_ifaces(node: Node, ifaces: list[Iface]) -> Node:
    return Node(**{**node.__dict__, "ifaces": tuple(ifaces)})


class _Allocator:
    """Hands out subnets from the pools, skipping what the spec set explicitly."""

    def __init__(self, pools: dict[str, IPv4Network | None]):
        self.pools = pools
        self.taken: list[IPv4Network] = []
        self.iters: dict[tuple[str, int], Iterator[IPv4Network]] = {}

    def reserve(self, net: IPv4Network) -> None:
        self.taken.append(net)

    def take(self, pool: str, prefixlen: int) -> IPv4Network | None:
        base = self.pools.get(pool)
        if base is None:
            return None
        it = self.iters.setdefault((pool, prefixlen), base.subnets(new_prefix=prefixlen))
        for net in it:
            if not any(net.overlaps(t) for t in self.taken):
                self.taken.append(net)
                return net
        return None


def to_dict(topo: Topology) -> dict[str, Any]:
    """JSON-ready form, for lab.json and `lab status`."""
    def conv(v: Any) -> Any:
        if isinstance(v, (IPv4Address, IPv4Interface, IPv4Network)):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if hasattr(v, "__dataclass_fields__"):
            return {k: conv(getattr(v, k)) for k in v.__dataclass_fields__}
        return v
    out: dict[str, Any] = conv(topo)
    return out


__all__ = ["Topology", "Ipsec", "Node", "Iface", "Link", "Dmvpn", "SpecError", "Issue", "Impairment", "load",
           "loads", "to_dict"]
