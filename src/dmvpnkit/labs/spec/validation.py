"""Validation of a rendered spec: every problem is collected as an `Issue` with its YAML
key path and a hint, and raised together as one `SpecError` naming the file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from typing import Any

from .allocation import POOLS, POOLS6
from .model import ROUTING, Dmvpn, Ipsec

# 13 characters leave room for the LAN host (`<node>_h`) within IFNAMSIZ (15).
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,12}$")
IPSEC_AUTH = ("psk", "cert")
SECTIONS = ("hub", "spoke", "nat", "peer")          # each under its plural: `hubs:`, ...
_TOP_KEYS = {"name", "description", "phase", "dmvpn", "addressing", "router", "hubs", "spokes", "nats", "peers",
             "ipsec"}
_IPSEC_KEYS = {"auth", "psk", "ike_proposals", "esp_proposals", "nodes"}
_DMVPN_KEYS = {"network_id", "gre_key", "holdtime", "tunnel_prefix", "tunnel_prefix6", "routing"}
NODE_KEYS = {
    "hub": {"nbma", "tunnel", "lan", "lan_host", "behind", "impair"},
    "spoke": {"nbma", "tunnel", "lan", "lan_host", "behind", "nhs", "impair"},
    "nat": {"public", "impair"},
    "peer": {"nbma", "tunnel", "impair"},
}
_DMVPN = Dmvpn()


def _room6(tunnel_prefix: IPv4Network) -> int:
    """The longest tunnel_prefix6 that holds every tunnel address's twin (`twin6`: its
    host number's decimal digits read as hex)."""
    return 128 - 4 * len(str(tunnel_prefix.num_addresses - 1))


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


class Validator:
    """Checks of a spec's sections; each records an issue and returns a fallback instead
    of raising, so that one run finds every problem."""

    def __init__(self, source: str):
        self.source = source
        self.issues: list[Issue] = []

    def err(self, path: str, message: str, hint: str = "") -> None:
        self.issues.append(Issue(path, message, hint))

    # ------------------------------------------------------------ typed getters

    def mapping(self, m: Any, path: str, allowed: set[str]) -> dict[str, Any]:
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

    def integer(self, m: dict[str, Any], key: str, path: str, default: int | None, lo: int, hi: int) -> int | None:
        v = m.get(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.err(f"{path}.{key}", f"must be an integer in {lo}..{hi}, got {v!r}")
            return default
        return v

    def prefix(self, v: Any, path: str) -> IPv4Network | None:
        try:
            return IPv4Network(str(v), strict=True)
        except ValueError as e:
            self.err(path, f"not an IPv4 prefix: {v!r}", str(e))
            return None

    def prefix6(self, v: Any, path: str, longest: int = 128) -> IPv6Network | None:
        """An IPv6 prefix no longer than /`longest`."""
        try:
            net = IPv6Network(str(v), strict=True)
        except ValueError as e:
            self.err(path, f"not an IPv6 prefix: {v!r}", str(e))
            return None
        if net.prefixlen > longest:
            self.err(path, f"{net} is longer than /{longest}", f"use a /{longest} or shorter")
            return None
        return net

    def address(self, v: Any, path: str) -> IPv4Address | None:
        try:
            return IPv4Address(str(v))
        except ValueError:
            self.err(path, f"not an IPv4 address: {v!r}")
            return None

    # ------------------------------------------------------------ sections

    def document(self, doc: Any) -> dict[str, Any]:
        """The top-level mapping; anything else cannot be checked further."""
        if not isinstance(doc, dict):
            raise SpecError(self.source, [Issue("<document>", "a topology is a YAML mapping",
                                                "start with `name: ...`")])
        return self.mapping(doc, "", _TOP_KEYS)

    def name(self, doc: dict[str, Any]) -> str:
        name = doc.get("name")
        if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9_.-]{1,40}$", name):
            self.err("name", f"missing or invalid topology name: {name!r}", "letters, digits, _ . -")
            return "invalid"
        return name

    def phase(self, doc: dict[str, Any]) -> int:
        return self.integer(doc, "phase", "", 3, 1, 3) or 3

    def dmvpn(self, doc: dict[str, Any]) -> Dmvpn:
        d = self.mapping(doc.get("dmvpn"), "dmvpn", _DMVPN_KEYS)
        tunnel_prefix = self.prefix(d.get("tunnel_prefix", _DMVPN.tunnel_prefix), "dmvpn.tunnel_prefix")
        return Dmvpn(
            network_id=self.integer(d, "network_id", "dmvpn", _DMVPN.network_id, 1, 2**32 - 1) or _DMVPN.network_id,
            gre_key=self.integer(d, "gre_key", "dmvpn", _DMVPN.gre_key, 0, 2**32 - 1),
            holdtime=self.integer(d, "holdtime", "dmvpn", _DMVPN.holdtime, 1, 65535) or _DMVPN.holdtime,
            tunnel_prefix=tunnel_prefix or _DMVPN.tunnel_prefix,
            routing=self.routing(d.get("routing", _DMVPN.routing)),
            tunnel_prefix6=self.prefix6(d["tunnel_prefix6"], "dmvpn.tunnel_prefix6",
                                        _room6(tunnel_prefix or _DMVPN.tunnel_prefix))
            if "tunnel_prefix6" in d else None,
        )

    def dual_stack(self, dmvpn: Dmvpn) -> None:
        if dmvpn.tunnel_prefix6 is not None and dmvpn.routing != "static":
            self.err("dmvpn.tunnel_prefix6", f"a dual-stack overlay is routed statically only, not by {dmvpn.routing}",
                     "routing: static, or no tunnel_prefix6")

    def routing(self, v: Any) -> str:
        if v not in ROUTING:
            self.err("dmvpn.routing", f"unknown routing {v!r}", f"one of: {', '.join(ROUTING)}")
            return _DMVPN.routing
        return str(v)

    def pools(self, doc: dict[str, Any]) -> dict[str, IPv4Network | None]:
        a = self.mapping(doc.get("addressing"), "addressing", set(POOLS) | set(POOLS6))
        return {k: self.prefix(a.get(k, default), f"addressing.{k}") for k, default in POOLS.items()}

    def pools6(self, doc: dict[str, Any]) -> dict[str, IPv6Network | None]:
        """The IPv6 pools (a dual-stack overlay's): each LAN's /64 is numbered in one."""
        a = doc["addressing"] if isinstance(doc.get("addressing"), dict) else {}
        return {k: self.prefix6(a.get(k, default), f"addressing.{k}", 48) for k, default in POOLS6.items()}

    def router(self, doc: dict[str, Any]) -> str:
        router = doc.get("router", "inet")
        if not isinstance(router, str) or not NAME_RE.match(router):
            self.err("router", f"invalid node name {router!r}", NAME_RE.pattern)
            return "inet"
        return router

    def sections(self, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Each role's section (`hubs:`, ...) as a mapping of node names to their specs."""
        sections = {role: doc.get(f"{role}s") or {} for role in SECTIONS}
        for role, sec in sections.items():
            if not isinstance(sec, dict):
                self.err(f"{role}s", f"expected a mapping of {role} names, got {type(sec).__name__}")
                sections[role] = {}
        if not sections["hub"]:
            self.err("hubs", "a DMVPN needs at least one hub")
        return sections

    def names(self, router: str, sections: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Node name -> role; each name is valid and used once."""
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
        return seen

    def ipsec(self, doc: Any, seen: dict[str, str]) -> Ipsec:
        d = self.mapping(doc, "ipsec", _IPSEC_KEYS)
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
        return Ipsec(**out, node_psk=self._node_psk(d.get("nodes") or {}, seen))

    def _node_psk(self, nodes: Any, seen: dict[str, str]) -> dict[str, str]:
        """`ipsec.nodes`: single hubs, spokes or peers with a key of their own."""
        if not isinstance(nodes, dict):
            self.err("ipsec.nodes", f"expected a mapping of node names, got {type(nodes).__name__}")
            return {}
        node_psk = {}
        for n, v in nodes.items():
            per = self.mapping(v, f"ipsec.nodes.{n}", {"psk"})
            if seen.get(n) not in ("hub", "spoke", "peer"):
                self.err(f"ipsec.nodes.{n}", "not a hub, spoke or peer of this topology")
            elif isinstance(per.get("psk"), str) and per["psk"]:
                node_psk[n] = per["psk"]
        return node_psk
