"""The daemon's configuration: a frozen dataclass read from a plain dict (the lab
renders it to JSON from the topology). Every mistake is a ``ConfigError`` naming the key.

Keys (required first):
  role             "hub" | "spoke"
  interface        tunnel interface name, e.g. "gre1"
  protocol_address tunnel address ("10.255.0.11" or "10.255.0.11/24"); an IPv6 one makes
                   the whole config IPv6 (NHRP ar$pro.type 0x86DD): every other protocol
                   address and prefix in it is then IPv6 too
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
  ipv6             the IPv6 side of a dual-stack IPv4 node: {"protocol_address", "nhs": [the
                   IPv6 protocol address of each NHS above, or null], "routes",
                   "lan_prefixes"}; the rest as above. A second engine runs it.
  driver           dict, ignored here: settings for the kernel driver
  ipsec            dict, ignored here: strongSwan over VICI for the Linux node (nhrpd/ipsec.py)
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .codec import PRO_IPV4, PRO_IPV6
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


Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class RouteConfig:
    prefix: Net
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
    lan_prefixes: tuple[Net, ...] = ()
    ipv6: Config | None = None          # a dual-stack node's IPv6 side

    @property
    def version(self) -> int:
        """4 or 6: the family of every protocol address in this config."""
        return ipaddress.ip_address(self.protocol_address).version

    @property
    def pro_type(self) -> int:
        """ar$pro.type of every packet this config's engine sends."""
        return PRO_IPV6 if self.version == 6 else PRO_IPV4

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
        proto = _ip_value(_str(d, "protocol_address"), "protocol_address", allow_prefix=True, version=None)
        v = ipaddress.ip_address(proto).version
        nhs = tuple(_nhs(item, i, v) for i, item in enumerate(_list(d, "nhs")))
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
        config = cls(
            role=role, interface=interface,
            protocol_address=proto,
            nbma_address=_ip(d, "nbma_address"),
            network_id=_int(d, "network_id", 1, 1, 0xFFFFFFFF),
            holdtime=_int(d, "holdtime", 7200, 1, 0xFFFF),
            mtu=_int(d, "mtu", 0, 0, 0xFFFF),
            nhs=nhs,
            unique=_bool(d, "unique", False), redirect=_bool(d, "redirect", False),
            shortcut=_bool(d, "shortcut", False), multicast=_bool(d, "multicast", False),
            nat_extension=_bool(d, "nat_extension", True),
            auth=auth, faults=frozenset(parsed),
            routes=tuple(_route(r, i, v) for i, r in enumerate(_list(d, "routes"))),
            lan_prefixes=tuple(_net(p, f"lan_prefixes[{i}]", v) for i, p in enumerate(_list(d, "lan_prefixes"))),
        )
        if "ipv6" in d:
            if v != 4:
                raise ConfigError("ipv6", "only an IPv4 config has an IPv6 side")
            config = dataclasses.replace(config, ipv6=_ipv6_side(d, config))
        return config

    def has(self, fault: Fault) -> bool:
        return fault in self.faults


_KEYS = frozenset({"role", "interface", "protocol_address", "nbma_address", "network_id", "holdtime",
                   "mtu", "nhs", "unique", "redirect", "shortcut", "multicast", "nat_extension", "auth", "faults",
                   "routes", "lan_prefixes", "driver", "ipsec", "ipv6"})
_IPV6_KEYS = frozenset({"protocol_address", "nhs", "routes", "lan_prefixes"})


def _ipv6_side(d: Mapping[str, Any], v4: Config) -> Config:
    """The `ipv6` mapping, completed from the IPv4 side into a config of its own."""
    six = d["ipv6"]
    if not isinstance(six, Mapping):
        raise ConfigError("ipv6", f"expected a mapping, got {six!r}")
    extra = sorted(set(six) - _IPV6_KEYS)
    if extra:
        raise ConfigError(f"ipv6.{extra[0]}", f"unknown key (known: {', '.join(sorted(_IPV6_KEYS))})")
    if "protocol_address" not in six:
        raise ConfigError("ipv6.protocol_address", "missing")
    protos = six.get("nhs") or [None] * len(v4.nhs)
    if not isinstance(protos, list) or len(protos) != len(v4.nhs):
        raise ConfigError("ipv6.nhs", f"expected one protocol address (or null) per NHS, {len(v4.nhs)}")
    side = {k: v for k, v in d.items() if k != "ipv6"}
    side.update(six, nhs=[{"nbma": n.nbma, "protocol": p} for n, p in zip(v4.nhs, protos, strict=True)])
    try:
        config = Config.from_dict(side)
    except ConfigError as e:
        raise ConfigError(f"ipv6.{e.key}", str(e).split(": ", 1)[-1]) from None
    if config.version != 6:
        raise ConfigError("ipv6.protocol_address", f"{config.protocol_address} is not an IPv6 address")
    return config


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d[key]
    if not isinstance(v, str):
        raise ConfigError(key, f"expected a string, got {v!r}")
    return v


def _ip(d: Mapping[str, Any], key: str, allow_prefix: bool = False) -> str:
    return _ip_value(_str(d, key), key, allow_prefix)


def _ip_value(v: Any, key: str, allow_prefix: bool = False, version: int | None = 4) -> str:
    """An address of `version` (None: either) as text; NBMA addresses are IPv4."""
    family = {4: "an IPv4", 6: "an IPv6", None: "an IP"}[version]
    if not isinstance(v, str):
        raise ConfigError(key, f"expected {family} address string, got {v!r}")
    text = v.split("/", 1)[0] if allow_prefix else v
    try:
        ip = ipaddress.ip_address(text)
    except ValueError as e:
        raise ConfigError(key, f"{v!r} is not {family} address ({e})") from None
    if version is not None and ip.version != version:
        raise ConfigError(key, f"{v!r} is not {family} address (protocol_address's family)")
    return str(ip)


def _net(v: Any, key: str, version: int) -> Net:
    if not isinstance(v, str):
        raise ConfigError(key, f"expected an IPv{version} prefix string, got {v!r}")
    try:
        net = ipaddress.ip_network(v, strict=False)
    except ValueError as e:
        raise ConfigError(key, f"{v!r} is not an IPv{version} prefix ({e})") from None
    if net.version != version:
        raise ConfigError(key, f"{v!r} is not an IPv{version} prefix (protocol_address's family)")
    return net


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


def _nhs(item: Any, i: int, version: int) -> NhsConfig:
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
                     None if proto is None else _ip_value(proto, f"{key}.protocol", allow_prefix=True, version=version))


def _route(item: Any, i: int, version: int) -> RouteConfig:
    key = f"routes[{i}]"
    if not isinstance(item, Mapping):
        raise ConfigError(key, f"expected a mapping, got {item!r}")
    for k in ("prefix", "via"):
        if k not in item:
            raise ConfigError(f"{key}.{k}", "missing")
    extra = sorted(set(item) - {"prefix", "via"})
    if extra:
        raise ConfigError(f"{key}.{extra[0]}", "unknown key (known: prefix, via)")
    return RouteConfig(_net(item["prefix"], f"{key}.prefix", version),
                       _ip_value(item["via"], f"{key}.via", version=version))
