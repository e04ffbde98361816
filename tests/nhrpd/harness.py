"""A fake clock and a fake NBMA network for nhrpd engines: Send actions become
PacketIn events at the node owning the destination address (after an optional NAT
rewrite of the source), instantly and in order."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from dmvpnkit.nhrpd import codec
from dmvpnkit.nhrpd.config import Config
from dmvpnkit.nhrpd.engine import Engine
from dmvpnkit.nhrpd.events import Action, Event, Log, PacketIn, Send, Start

T0 = 1000.0
HOLD = 60
HUB = {"proto": "10.255.0.1", "nbma": "172.16.0.1"}
SPOKES = {
    "spoke1": {"proto": "10.255.0.11", "nbma": "172.16.0.11", "lan": "10.1.1.0/24"},
    "spoke2": {"proto": "10.255.0.12", "nbma": "172.16.0.12", "lan": "10.1.2.0/24"},
    "spoke3": {"proto": "10.255.0.13", "nbma": "172.16.0.13", "lan": "10.1.3.0/24"},
}


def hub_config(**kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "role": "hub", "interface": "gre1", "protocol_address": HUB["proto"] + "/24",
        "nbma_address": HUB["nbma"], "holdtime": HOLD, "redirect": True,
        "routes": [{"prefix": s["lan"], "via": s["proto"]} for s in SPOKES.values()],
    }
    d.update(kw)
    return d


def spoke_config(name: str, **kw: Any) -> dict[str, Any]:
    s = SPOKES[name]
    d: dict[str, Any] = {
        "role": "spoke", "interface": "gre1", "protocol_address": s["proto"] + "/24",
        "nbma_address": s["nbma"], "holdtime": HOLD, "shortcut": True,
        "nhs": [{"nbma": HUB["nbma"], "protocol": None}], "lan_prefixes": [s["lan"]],
    }
    d.update(kw)
    return d


@dataclass
class Wire:
    """One packet on the fake network."""

    time: float
    src: str            # sending node
    src_nbma: str       # outer source as received (post-NAT)
    dst_nbma: str
    data: bytes
    dst: str | None     # receiving node, None if nobody owns dst_nbma (or the link is down)

    @property
    def pkt(self) -> codec.Packet:
        return codec.decode(self.data)


@dataclass
class Node:
    name: str
    engine: Engine
    actions: list[tuple[float, Action]] = field(default_factory=list)

    def logs(self, level: str | None = None) -> list[Log]:
        return [a for _, a in self.actions if isinstance(a, Log) and (level is None or a.level == level)]

    def of(self, kind: type) -> list[Any]:
        return [a for _, a in self.actions if isinstance(a, kind)]


class Net:
    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.nodes: dict[str, Node] = {}
        self.wire: list[Wire] = []
        self.nat: dict[str, str] = {}           # private NBMA -> public NBMA
        self.cut: set[str] = set()              # nodes whose uplink is down
        self._queue: deque[tuple[str, Send]] = deque()

    def add(self, name: str, config: dict[str, Any]) -> Node:
        node = Node(name, Engine(Config.from_dict(config), self.now))
        self.nodes[name] = node
        return node

    def engine(self, name: str) -> Engine:
        return self.nodes[name].engine

    def public(self, node: Node) -> str:
        return self.nat.get(node.engine.nbma_address, node.engine.nbma_address)

    def owner(self, nbma: str) -> Node | None:
        return next((n for n in self.nodes.values() if self.public(n) == nbma), None)

    # -- driving --------------------------------------------------------------------

    def handle(self, name: str, event: Event) -> list[Action]:
        acts = self.nodes[name].engine.handle(event, now=self.now)
        self._take(name, acts)
        self._pump()
        return acts

    def start(self, *names: str) -> None:
        for name in names or tuple(self.nodes):
            self.handle(name, Start())

    def run(self, until: float) -> None:
        """Advance the clock to ``until``, firing timers in time order."""
        while True:
            due = [(d, n) for n in self.nodes.values() if (d := n.engine.next_deadline()) is not None]
            if not due:
                break
            when = min(d for d, _ in due)
            if when > until:
                break
            self.now = max(self.now, when)
            for d, n in due:
                if d <= self.now:
                    self._take(n.name, n.engine.tick(self.now))
            self._pump()
        self.now = max(self.now, until)
        for n in self.nodes.values():
            self._take(n.name, n.engine.tick(self.now))
        self._pump()

    def run_for(self, seconds: float) -> None:
        self.run(self.now + seconds)

    def _take(self, name: str, acts: list[Action]) -> None:
        node = self.nodes[name]
        for a in acts:
            node.actions.append((self.now, a))
            if isinstance(a, Send):
                self._queue.append((name, a))

    def _pump(self) -> None:
        budget = 10_000
        while self._queue:
            budget -= 1
            assert budget, "packet storm on the fake network"
            name, send = self._queue.popleft()
            sender = self.nodes[name]
            src_nbma = send.src or self.public(sender)     # src: a fault switch's other source
            dst = self.owner(send.dst_nbma)
            if name in self.cut or (dst is not None and dst.name in self.cut):
                dst = None
            self.wire.append(Wire(self.now, name, src_nbma, send.dst_nbma, send.data,
                                  dst.name if dst else None))
            if dst is not None:
                self._take(dst.name, dst.engine.handle(PacketIn(src_nbma, send.data), now=self.now))

    # -- looking --------------------------------------------------------------------

    def sent(self, name: str | None = None, op: int | None = None, to: str | None = None) -> list[Wire]:
        return [w for w in self.wire if (name is None or w.src == name)
                and (op is None or w.data[17] == op) and (to is None or w.dst == to)]


def rechecksum(data: bytes) -> bytes:
    """``data`` with ar$chksum recomputed over ar$pktsz bytes (or all, if that is off)."""
    pktsz = int.from_bytes(data[10:12], "big")
    n = pktsz if 20 <= pktsz <= len(data) else len(data)
    zeroed = data[:12] + b"\x00\x00" + data[14:n]
    return data[:12] + codec.checksum(zeroed).to_bytes(2, "big") + data[14:]
