"""The daemon's configuration: a frozen dataclass read from a plain dict (the lab
renders it to JSON from the topology). Every mistake is a ``ConfigError`` naming the key.

Keys (required first):
  role             "hub" | "spoke"
  interface        tunnel interface name, e.g. "gre1"
  protocol_address tunnel IPv4 address ("10.255.0.11" or "10.255.0.11/24")
  nbma_address     this node's NBMA IPv4 address
  network_id       int >= 1 (default 1; implicit on the wire)
  holdtime         seconds, 1..65535 (default 7200): CIE Holding Time we offer
  mtu              CIE MTU, 0 = the default (default 0)
  nhs              spoke: [{"nbma": str, "protocol": str | None}], at least one
  unique           bool: set the U bit on registrations (default false)
  redirect         hub: send Traffic Indications for hairpinned traffic (default false)
  shortcut         spoke: resolve on Traffic Indications (default false)
  multicast        copy multicast sent into the tunnel to each registered spoke (hub) or
                   NHS (spoke), as FRR's `ip nhrp map multicast dynamic|NBMA` (default false)
  nat_extension    bool: send/answer the Cisco NAT extension (default true)
  auth             password (at most 8 bytes, Cisco/FRR) or null
  faults           list of Fault names
  routes           [{"prefix": "10.1.2.0/24", "via": "10.255.0.12"}]: static routes
                   into the tunnel (the hub uses them to find the spoke behind a prefix)
  lan_prefixes     ["10.1.2.0/24"]: networks behind this node (answered in Resolution Replies)
  driver           dict, ignored here: settings for the kernel driver
  ipsec            dict, ignored here: strongSwan over VICI for the Linux node (nhrpd/ipsec.py)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .faults import Fault

Role = Literal["hub", "spoke"]
AUTH_MAX = 8      # FRR and IOS carry at most 8 password bytes


class ConfigError(ValueError):
    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"config key {key!r}: {detail}")
        self.key = key


@dataclass(frozen=True, slots=True)
class NhsConfig:
    nbma: str
    protocol: str | None = None


@dataclass(frozen=True, slots=True)
class RouteConfig:
    prefix: ipaddress.IPv4Network
    via: str


@dataclass(frozen=True, slots=True)
class Config:
    role: Role
    interface: str
    protocol_address: str
    nbma_address: str
    network_id: int = 1
    holdtime: int = 7200
    mtu: int = 0
    nhs: tuple[NhsConfig, ...] = ()
    unique: bool = False
    redirect: bool = False
    shortcut: bool = False
    multicast: bool = False
    nat_extension: bool = True
    auth: str | None = None
    faults: frozenset[Fault] = frozenset()
    routes: tuple[RouteConfig, ...] = ()
    lan_prefixes: tuple[ipaddress.IPv4Network, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        if not isinstance(d, Mapping):
            raise ConfigError("<root>", f"expected a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - _KEYS)
        if unknown:
            raise ConfigError(unknown[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
        for key in ("role", "interface", "protocol_address", "nbma_address"):
            if key not in d:
                raise ConfigError(key, "missing")
        role = d["role"]
        if role not in ("hub", "spoke"):
            raise ConfigError("role", f"{role!r} is neither 'hub' nor 'spoke'")
        interface = _str(d, "interface")
        if not interface:
            raise ConfigError("interface", "empty")
        nhs = tuple(_nhs(item, i) for i, item in enumerate(_list(d, "nhs")))
        if role == "spoke" and not nhs:
            raise ConfigError("nhs", "a spoke needs at least one NHS")
        if role == "hub" and nhs:
            raise ConfigError("nhs", "a hub with NHSs of its own (NHS hierarchy) is out of scope")
        auth = d.get("auth")
        if auth is not None:
            if not isinstance(auth, str) or not auth:
                raise ConfigError("auth", f"{auth!r} is not a non-empty string")
            if len(auth.encode()) > AUTH_MAX:
                raise ConfigError("auth", f"{len(auth.encode())} bytes, FRR and IOS carry at most {AUTH_MAX}")
        faults = d.get("faults") or []
        if not isinstance(faults, list):
            raise ConfigError("faults", f"expected a list, got {type(faults).__name__}")
        parsed: set[Fault] = set()
        for i, name in enumerate(faults):
            try:
                parsed.add(Fault.parse(name) if isinstance(name, str) else Fault.parse(repr(name)))
            except ValueError as e:
                raise ConfigError(f"faults[{i}]", str(e)) from None
        return cls(
            role=role, interface=interface,
            protocol_address=_ip(d, "protocol_address", allow_prefix=True),
            nbma_address=_ip(d, "nbma_address"),
            network_id=_int(d, "network_id", 1, 1, 0xFFFFFFFF),
            holdtime=_int(d, "holdtime", 7200, 1, 0xFFFF),
            mtu=_int(d, "mtu", 0, 0, 0xFFFF),
            nhs=nhs,
            unique=_bool(d, "unique", False), redirect=_bool(d, "redirect", False),
            shortcut=_bool(d, "shortcut", False), multicast=_bool(d, "multicast", False),
            nat_extension=_bool(d, "nat_extension", True),
            auth=auth, faults=frozenset(parsed),
            routes=tuple(_route(r, i) for i, r in enumerate(_list(d, "routes"))),
            lan_prefixes=tuple(_net(p, f"lan_prefixes[{i}]") for i, p in enumerate(_list(d, "lan_prefixes"))),
        )

    def has(self, fault: Fault) -> bool:
        return fault in self.faults


_KEYS = frozenset({"role", "interface", "protocol_address", "nbma_address", "network_id", "holdtime",
                   "mtu", "nhs", "unique", "redirect", "shortcut", "multicast", "nat_extension", "auth", "faults",
                   "routes", "lan_prefixes", "driver", "ipsec"})


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d[key]
    if not isinstance(v, str):
        raise ConfigError(key, f"expected a string, got {v!r}")
    return v


def _ip(d: Mapping[str, Any], key: str, allow_prefix: bool = False) -> str:
    return _ip_value(_str(d, key), key, allow_prefix)


def _ip_value(v: Any, key: str, allow_prefix: bool = False) -> str:
    if not isinstance(v, str):
        raise ConfigError(key, f"expected an IPv4 address string, got {v!r}")
    text = v.split("/", 1)[0] if allow_prefix else v
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError as e:
        raise ConfigError(key, f"{v!r} is not an IPv4 address ({e})") from None


def _net(v: Any, key: str) -> ipaddress.IPv4Network:
    if not isinstance(v, str):
        raise ConfigError(key, f"expected an IPv4 prefix string, got {v!r}")
    try:
        return ipaddress.IPv4Network(v, strict=False)
    except ValueError as e:
        raise ConfigError(key, f"{v!r} is not an IPv4 prefix ({e})") from None


def _int(d: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(key, f"{v!r} is not an integer in {lo}..{hi}")
    return v


def _bool(d: Mapping[str, Any], key: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(key, f"{v!r} is not true or false")
    return v


def _list(d: Mapping[str, Any], key: str) -> list[Any]:
    v = d.get(key) or []
    if not isinstance(v, list):
        raise ConfigError(key, f"expected a list, got {type(v).__name__}")
    return v


def _nhs(item: Any, i: int) -> NhsConfig:
    key = f"nhs[{i}]"
    if not isinstance(item, Mapping):
        raise ConfigError(key, f"expected a mapping, got {item!r}")
    extra = sorted(set(item) - {"nbma", "protocol"})
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", "unknown key (known: nbma, protocol)")
    if "nbma" not in item:
        raise ConfigError(f"{key}.nbma", "missing")
    proto = item.get("protocol")
    return NhsConfig(_ip_value(item["nbma"], f"{key}.nbma"),
                     None if proto is None else _ip_value(proto, f"{key}.protocol", allow_prefix=True))


def _route(item: Any, i: int) -> RouteConfig:
    key = f"routes[{i}]"
    if not isinstance(item, Mapping):
        raise ConfigError(key, f"expected a mapping, got {item!r}")
    for k in ("prefix", "via"):
        if k not in item:
            raise ConfigError(f"{key}.{k}", "missing")
    extra = sorted(set(item) - {"prefix", "via"})
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", "unknown key (known: prefix, via)")
    return RouteConfig(_net(item["prefix"], f"{key}.prefix"), _ip_value(item["via"], f"{key}.via"))
