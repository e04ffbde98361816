"""Helpers the cases share: traffic between LAN hosts, the lab's address book."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dmvpnkit.capture import Timeline


@dataclass(frozen=True)
class Ping:
    sent: int
    received: int
    output: str

    @property
    def lossless(self) -> bool:
        return self.sent > 0 and self.received == self.sent

    def __str__(self) -> str:
        return self.output


def ping(lab: Any, src: str, dst: str, count: int, interval: float = 0.2, wait: float = 1.0) -> Ping:
    """`ping` from node `src` to address `dst`; counts parsed from ping's summary line."""
    out = lab.net.run(src, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", str(wait), dst],
                      check=False, timeout=count * interval + wait + 30).stdout
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    return Ping(int(m[1]), int(m[2]), out) if m else Ping(0, 0, out)


def lan_host(lab: Any, spoke: str) -> str:
    """The address of a spoke's LAN host (`spoke1` -> 10.1.1.10)."""
    h = lab.topo.nodes[f"{spoke}_h"]
    return str(h.iface(spoke).address.ip)


def bringup(lab: Any) -> Timeline:
    """What the lab's NBMA interfaces carried from before the daemons started until now."""
    return lab.bringup.timeline()


def nbma(lab: Any, node: str) -> str:
    return str(lab.topo.nodes[node].nbma)


def cleartext_gre(e: Any) -> bool:
    """An event of GRE (NHRP or overlay data) that crossed the NBMA network outside ESP."""
    return e.gre and not e.esp


def nat_public(lab: Any, nat: str = "nat1") -> str:
    n = lab.topo.nodes[nat]
    return str(n.iface(n.public_iface).address.ip)


def tunnel(lab: Any, node: str) -> str:
    return str(lab.topo.nodes[node].tunnel)


def traffic(lab: Any, tag: str, count: int, interval: float, src: str = "spoke1",
            dst: str = "spoke2") -> dict[str, Any]:
    """One burst between two spokes' LAN hosts, captured on every DMVPN node."""
    cap = _capture(lab, tag)
    result = ping(lab, f"{src}_h", lan_host(lab, dst), count, interval)
    return {"ping": result, "timeline": cap.timeline()}


def hairpin(lab: Any, tag: str, src: str = "spoke1", dst: str = "spoke2") -> dict[str, Any]:
    """The phase 3 scenario: traffic between two spokes' LAN hosts that first hairpins
    through the hub, then (once the spoke has resolved) a second, faster burst."""
    cap = _capture(lab, tag)
    first = ping(lab, f"{src}_h", lan_host(lab, dst), 5, 0.5)
    # Traffic Indication follows the first hairpinned packet after ~1 s of NFLOG
    # batching; the second burst goes once the spoke has resolved and installed it.
    later = ping(lab, f"{src}_h", lan_host(lab, dst), 10, 0.1)
    return {"first": first, "later": later, "timeline": cap.timeline()}


def _capture(lab: Any, tag: str) -> Any:
    from dmvpnkit.labs.tap import LabCapture
    cap = LabCapture(lab, lab.lab_dir / "pcaps" / tag)
    cap.start()
    return cap
