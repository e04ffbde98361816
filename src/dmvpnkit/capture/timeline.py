"""One time-ordered timeline from the per-node captures of a lab.

Each pcap is one node's view (`<node>__<iface>.pcap`): a packet sent from spoke1 to
hub1 appears twice, once as spoke1's "out" and once as hub1's "in". Cases pick the
view they mean by `node`, which is what an engineer reading two tcpdumps does too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, overload

from ..nhrp.model import OP_NAMES, DecodeError, Message, Op, decode
from . import pcap
from .esp import EspError, Keyring

GRE, ESP, UDP, ICMP, TCP, IPIP, ICMPV6 = 47, 50, 17, 1, 6, 4, 58
IKE_PORT, NATT_PORT = 500, 4500     # RFC 7296 2.23, RFC 3948
IKE_EXCHANGES = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"}
OPAQUE_ESP = "esp spi="             # how an ESP packet we could not open is summarised
MACS_FILE = "macs.json"         # written by the tap: "<node>__<iface>" -> the interface's MAC
GRE_NHRP, GRE_IPV4, GRE_IPV6 = 0x2001, 0x0800, 0x86DD
# Request op -> its reply op, for pairing by request ID.
REPLY_OF = {Op.RESOLUTION_REQUEST: Op.RESOLUTION_REPLY, Op.REGISTRATION_REQUEST: Op.REGISTRATION_REPLY,
            Op.PURGE_REQUEST: Op.PURGE_REPLY}


@dataclass(frozen=True)
class Event:
    ts: float
    node: str                   # whose capture this is
    iface: str
    src: str                    # outer (NBMA) addresses
    dst: str
    direction: str = "?"        # "out" (sent by node), "in", or "?" when not known
    nhrp: Message | None = None
    data: str = ""              # non-NHRP summary, e.g. "icmp type 8 10.1.1.10>10.1.2.10"
    error: str = ""             # why an NHRP packet did not decode
    raw: bytes = b""            # the NHRP packet's bytes, for offsets in Error Indications
    esp: int = 0                # SPI of the ESP packet this came in (0: not in ESP); when
                                # it could not be opened, data says why ("esp spi=... (no key)")
    encap: str = ""             # ESP-in-UDP (RFC 3948) as captured: "udp 4500>4500"
    gre: bool = False           # GRE (NHRP or overlay data), in the clear or inside ESP
    overlay: bytes = b""        # the IP packet GRE carried (overlay data), for its protocols (capture.bgp)
    pcap: str = ""              # the capture file it was read from, and its frame number
    frame: int = 0              # there (1-based over every frame of the file, as Wireshark counts)

    @property
    def ref(self) -> str:
        """Where the packet is: `<directory>/<file>:<frame>`, the directory being the one the
        file is in (a lab's capture directory names its scenario); "" when not from a file."""
        if not self.pcap:
            return ""
        p = Path(self.pcap)
        return f"{p.parent.name + '/' if p.parent.name else ''}{p.name}:{self.frame}"

    @property
    def what(self) -> str:
        if self.nhrp is not None:
            s = f"NHRP {self.nhrp.summary()}"
        elif self.error:
            s = f"NHRP undecodable: {self.error}"
        else:
            s = self.data
        if self.esp and not s.startswith(OPAQUE_ESP):
            s = f"esp(0x{self.esp:08x}{' ' + self.encap if self.encap else ''}) {s}"
        elif self.encap:
            s = f"{self.encap} {s}"
        return s

    def line(self, names: dict[str, str] | None = None) -> str:
        def n(a: str) -> str:
            return f"{a}({names[a]})" if names and a in names else a
        arrow = {"out": "->", "in": "<-"}.get(self.direction, "  ")
        return f"{self.ts:.6f} {self.node:<8} {arrow} {n(self.src)}>{n(self.dst)} {self.what}"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"ts": self.ts, "node": self.node, "iface": self.iface, "src": self.src,
                             "dst": self.dst, "direction": self.direction, "summary": self.what,
                             "esp": self.esp, "encap": self.encap, "frame": self.ref}
        if self.nhrp is not None:
            d["nhrp"] = _jsonable(dataclasses.asdict(self.nhrp))
        return d

    def __str__(self) -> str:
        return self.line()


@dataclass(frozen=True)
class Pair:
    request: Event              # the first copy sent
    reply: Event | None
    resends: int = 0            # copies resent unanswered, same request ID (RFC 2332 5.2.0.1)

    @property
    def rtt(self) -> float | None:
        return None if self.reply is None else self.reply.ts - self.request.ts


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v.hex() if isinstance(v, bytes) else v


_ip = functools.lru_cache(maxsize=4096)(socket.inet_ntoa)   # lab captures see few addresses


_ip6 = functools.lru_cache(maxsize=4096)(lambda raw: socket.inet_ntop(socket.AF_INET6, raw))


def _inner_summary(ip: bytes) -> str:
    """`icmp type 8 10.1.1.10>10.1.2.10`, `icmp6 type 128 fd00:10:0:101::10>...`, `tcp A>B 179>40000`."""
    if len(ip) >= 40 and ip[0] >> 4 == 6:
        # The next header of the fixed header only: the overlay's traffic (echo, TCP)
        # carries no extension headers.
        ihl, proto, pair = 40, ip[6], f"{_ip6(ip[8:24])}>{_ip6(ip[24:40])}"
    elif len(ip) >= 20 and ip[0] >> 4 == 4:
        ihl, proto, pair = (ip[0] & 0x0F) * 4, ip[9], f"{_ip(ip[12:16])}>{_ip(ip[16:20])}"
    else:
        return f"ip? {len(ip)} bytes"
    if proto in (ICMP, ICMPV6) and len(ip) > ihl:
        return f"{'icmp' if proto == ICMP else 'icmp6'} type {ip[ihl]} {pair}"
    if proto in (UDP, TCP) and len(ip) >= ihl + 4:
        sport, dport = struct.unpack_from(">HH", ip, ihl)
        return f"{'udp' if proto == UDP else 'tcp'} {pair} {sport}>{dport}"
    return f"proto {proto} {pair}"


def gre_payload(gre: bytes) -> tuple[int, bytes] | None:
    if len(gre) < 4:
        return None
    flags, proto = struct.unpack_from(">HH", gre, 0)
    off = 4 + 4 * (bool(flags & 0x8000) + bool(flags & 0x2000) + bool(flags & 0x1000))
    return (proto, gre[off:]) if len(gre) >= off else None


def _gre_event(base: dict[str, Any], body: bytes) -> Event:
    base = {**base, "gre": True}
    gre = gre_payload(body)
    if gre is None:
        return Event(**base, data="gre (truncated)")
    if gre[0] == GRE_NHRP:
        try:
            return Event(**base, nhrp=decode(gre[1]), raw=gre[1])
        except DecodeError as e:
            return Event(**base, error=str(e), raw=gre[1])
    if gre[0] in (GRE_IPV4, GRE_IPV6):
        return Event(**base, data=_inner_summary(gre[1]), overlay=gre[1])
    return Event(**base, data=f"gre proto 0x{gre[0]:04x}")


def _esp_event(base: dict[str, Any], esp: bytes, keys: Keyring | None, encap: str = "") -> Event:
    """What the ESP packet carries when a key opens it, else its header and why not."""
    if len(esp) < 8:
        return Event(**base, encap=encap, data=f"esp (truncated, {len(esp)} bytes)")
    spi, seq = struct.unpack_from(">II", esp)
    base = {**base, "esp": spi, "encap": encap}
    if not keys or keys.lookup(base["dst"], spi) is None:
        return Event(**base, data=f"{OPAQUE_ESP}0x{spi:08x} seq={seq} (no key)")
    try:
        _, nh, inner = keys.decrypt(base["dst"], esp)
    except EspError as e:
        return Event(**base, data=f"{OPAQUE_ESP}0x{spi:08x} seq={seq} ({e.field}: {e.message})")
    if nh == GRE:
        return _gre_event(base, inner)
    if nh == IPIP:                      # tunnel mode
        return Event(**base, data=_inner_summary(inner))
    return Event(**base, data=f"next header {nh}, {len(inner)} bytes")


def _ike_summary(ike: bytes, ports: str) -> str:
    """RFC 7296 3.1 header: SPIs (8+8), next payload, version, exchange, flags, message ID."""
    if len(ike) < 28:
        return f"ike {ports} ({len(ike)} bytes, shorter than an IKE header)"
    version, exchange, flags = ike[17], ike[18], ike[19]
    mid = int.from_bytes(ike[20:24], "big")
    if version >> 4 != 2:
        return f"ike {ports} v{version >> 4} exchange {exchange}"
    return (f"ike {ports} {IKE_EXCHANGES.get(exchange, f'exchange {exchange}')} "
            f"{'initiator' if flags & 0x08 else 'responder'} {'response' if flags & 0x20 else 'request'} "
            f"mid={mid}")


def _udp_event(base: dict[str, Any], ip: bytes, body: bytes, keys: Keyring | None) -> Event:
    sport, dport, ulen = struct.unpack_from(">HHH", body)
    payload = body[8:ulen] if 8 <= ulen <= len(body) else body[8:]
    ports = f"{sport}>{dport}"
    if NATT_PORT in (sport, dport):     # RFC 3948 2.2: four zero bytes mark IKE, else ESP
        if payload == b"\xff":
            return Event(**base, data=f"nat-t keepalive {ports}")
        if payload[:4] == b"\0\0\0\0":
            return Event(**base, data=_ike_summary(payload[4:], ports))
        return _esp_event(base, payload, keys, f"udp {ports}")
    if IKE_PORT in (sport, dport):
        return Event(**base, data=_ike_summary(payload, ports))
    return Event(**base, data=_inner_summary(ip))


def events_of(path: Path, node: str, iface: str, own: frozenset[str] = frozenset(),
              mac: bytes | None = None, keys: Keyring | None = None,
              notes: list[str] | None = None) -> Iterator[Event]:
    """Decode one capture file into events (non-IPv4 frames are skipped). Direction
    comes from the link layer where it can (SLL packet type, or the interface's own
    `mac` as Ethernet source), else from the node's `own` NBMA addresses. With `keys`,
    ESP (plain or in UDP) is opened and what it carries decoded like cleartext. What
    could not be read (a file cut short, a link type we do not decode) goes to `notes`."""
    where = str(path)
    for frame, rec in enumerate(pcap.read(path, notes), 1):
        ip = pcap.ipv4_payload(rec)
        if ip is None or len(ip) < 20:
            continue
        ihl = (ip[0] & 0x0F) * 4
        src, dst, proto = _ip(ip[12:16]), _ip(ip[16:20]), ip[9]
        total = struct.unpack_from(">H", ip, 2)[0]
        body = ip[ihl:total] if ihl <= total <= len(ip) else ip[ihl:]
        if rec.outgoing is not None:
            direction = "out" if rec.outgoing else "in"
        elif mac is not None and rec.linktype == pcap.ETHERNET:
            direction = "out" if rec.data[6:12] == mac else "in"
        elif own:
            direction = "out" if src in own else "in"
        else:
            direction = "?"
        base: dict[str, Any] = dict(ts=rec.ts, node=node, iface=iface, src=src, dst=dst, direction=direction,
                                    pcap=where, frame=frame)
        if proto == GRE:
            yield _gre_event(base, body)
        elif proto == ESP:
            yield _esp_event(base, body, keys)
        elif proto == UDP and len(body) >= 8:
            yield _udp_event(base, ip, body, keys)
        else:
            yield Event(**base, data=_inner_summary(ip))


class Timeline(Sequence[Event]):
    """Events from any number of captures, ordered by time; `names` maps NBMA
    addresses to node names (for direction and for readable failure messages)."""

    def __init__(self, events: Iterable[Event], names: dict[str, str] | None = None):
        self.events = sorted(events, key=lambda e: e.ts)
        self.names = dict(names or {})

    @classmethod
    def from_pcaps(cls, paths: Iterable[Path], names: dict[str, str] | None = None) -> Timeline:
        """Capture files (pcap or pcapng) named `<node>__<iface>.pcap` (any other name:
        node = file stem).
        ESP is decrypted with the keys of the `xfrm__<node>.txt` files beside them."""
        names = names or {}
        events: list[Event] = []
        # One macs.json and one keyring per capture directory
        per_dir: dict[Path, tuple[dict[str, bytes], Keyring]] = {}
        for p in paths:
            p = Path(p)
            node, _, iface = p.stem.partition("__")
            own = frozenset(a for a, n in names.items() if n == node)
            if p.parent not in per_dir:
                per_dir[p.parent] = (link_macs(p.parent), Keyring.from_dir(p.parent))
            macs, keys = per_dir[p.parent]
            events.extend(events_of(p, node, iface, own, macs.get(p.stem), keys))
        return cls(events, names)

    @classmethod
    def from_dir(cls, directory: Path, names: dict[str, str] | None = None) -> Timeline:
        return cls.from_pcaps(pcap.capture_files(directory), names)

    @overload
    def __getitem__(self, i: int) -> Event: ...
    @overload
    def __getitem__(self, i: slice) -> Timeline: ...

    def __getitem__(self, i: int | slice) -> Event | Timeline:
        return Timeline(self.events[i], self.names) if isinstance(i, slice) else self.events[i]

    def __len__(self) -> int:
        return len(self.events)

    def where(self, pred: Callable[[Event], bool] | None = None, **match: Any) -> Timeline:
        """Events for which `pred` holds and every `match` key matches (see `matches`).
        The keys are checked first (`check_match`), so a misspelt one fails even on a
        timeline it would have matched nothing in."""
        check_match(match)
        return Timeline((e for e in self.events if (pred is None or pred(e)) and matches(e, **match)),
                        self.names)

    def pairs(self) -> list[Pair]:
        """Each request with the reply its sender saw: same node, reply op, request ID
        and source protocol address (RFC 2332 5.2: the replier copies both). Resends of
        an unanswered request (same ID) belong to the first copy's pair."""
        out: list[Pair] = []
        open_: dict[tuple[str, int, int, str], int] = {}
        for e in self.events:
            m = e.nhrp
            if m is None:
                continue
            if m.op_type in REPLY_OF:
                key = (e.node, REPLY_OF[Op(m.op_type)], m.request_id, m.src_proto)
                if key in open_:        # a resend: the reply will answer the request as a whole
                    i = open_[key]
                    out[i] = Pair(out[i].request, None, out[i].resends + 1)
                else:
                    open_[key] = len(out)
                    out.append(Pair(e, None))
            else:
                i = open_.pop((e.node, m.op_type, m.request_id, m.src_proto), -1)
                if i >= 0:
                    out[i] = Pair(out[i].request, e, out[i].resends)
        return out

    def around(self, ts: float, before: int = 15, after: int = 15) -> Timeline:
        i = next((k for k, e in enumerate(self.events) if e.ts >= ts), len(self.events))
        return self[max(0, i - before):i + after]

    def format(self, limit: int = 40, mark: Event | None = None) -> str:
        shown = self.events[-limit:] if limit else self.events
        if not shown:
            return "(no packets captured)"
        lines = [("=> " if e is mark else "   ") + e.line(self.names) for e in shown]
        if len(self.events) > len(shown):
            lines.insert(0, f"   ... {len(self.events) - len(shown)} earlier packets")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps([e.to_dict() for e in self.events], indent=1)

    def __str__(self) -> str:
        return self.format()


def link_macs(directory: Path) -> dict[str, bytes]:
    try:
        doc = json.loads((directory / MACS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {k: bytes.fromhex(v.replace(":", "")) for k, v in doc.items() if isinstance(v, str)}


class BadMatch(TypeError):
    """A `where`/`expect*` key or value that can never match an event: a misspelt op
    or field, or a value of the wrong type. It is the case's error, not a finding."""


_NUMBER = (int, float)
EVENT_MATCH: dict[str, tuple[type, ...]] = {
    "node": (str,), "src": (str,), "dst": (str,), "iface": (str,), "direction": (str,), "gre": (bool,),
    "esp": (bool, int), "encap": (bool, str), "after": _NUMBER, "before": _NUMBER, "data": (str,),
    "op": (str, int)}
DIRECTIONS = ("in", "out", "?")
_FIELD_TYPES = {"int": (int,), "str": (str,), "bytes": (bytes,), "bool": (bool,)}
NHRP_MATCH: dict[str, tuple[type, ...]] = {
    f.name: _FIELD_TYPES.get(str(f.type), (tuple,)) for f in dataclasses.fields(Message)}


def check_match(match: dict[str, Any]) -> None:
    """Raise BadMatch for a key that names neither an event field nor an NHRP message
    field, an op that is not an NHRP op, or a value of a type the field never holds."""
    for k, v in match.items():
        want = EVENT_MATCH.get(k) or NHRP_MATCH.get(k)
        if want is None:
            raise BadMatch(f"match key {k!r} is neither an event field ({', '.join(EVENT_MATCH)}) nor an "
                           f"NHRP message field ({', '.join(NHRP_MATCH)})")
        if not isinstance(v, want) or (isinstance(v, bool) and bool not in want):
            raise BadMatch(f"match key {k}={v!r}: a {type(v).__name__}, where the field holds "
                           f"{' or '.join(t.__name__ for t in want)}")
        if k == "op" and (v not in OP_NAMES.values() if isinstance(v, str) else v not in OP_NAMES):
            raise BadMatch(f"match key op={v!r} is not an NHRP op (one of {', '.join(OP_NAMES.values())}, "
                           f"or their numbers {min(OP_NAMES)}-{max(OP_NAMES)})")
        if k == "direction" and v not in DIRECTIONS:
            raise BadMatch(f"match key direction={v!r}: one of {', '.join(map(repr, DIRECTIONS))}")


def matches(e: Event, **match: Any) -> bool:
    """`node`, `src`, `dst`, `direction`, `iface`, `gre`: equal; `op`: NHRP op name or Op;
    `data`: prefix of the summary; `after`/`before`: timestamps; `esp`, `encap`: True
    (in ESP / in UDP), False (not), or the SPI / encapsulation string; any other key:
    the NHRP message field of that name (`request_id=7`, `dst_proto="10.1.2.10"`)."""
    for k, v in match.items():
        if k in ("node", "src", "dst", "direction", "iface", "gre"):
            if getattr(e, k) != v:
                return False
        elif k in ("esp", "encap"):
            if (bool(getattr(e, k)) if isinstance(v, bool) else getattr(e, k)) != v:
                return False
        elif k == "after":
            if e.ts <= v:
                return False
        elif k == "before":
            if e.ts >= v:
                return False
        elif k == "data":
            if not e.data.startswith(v):
                return False
        elif k == "op":
            if e.nhrp is None or (e.nhrp.op_type != v if isinstance(v, int) else e.nhrp.op != v):
                return False
        elif e.nhrp is None or getattr(e.nhrp, k) != v:
            return False
    return True
