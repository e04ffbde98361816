"""The harness's own reading of charon over VICI (strongSwan's `vici` package).

The judge does not borrow the judged's code: our NHRP daemon drives charon over VICI
too (`nhrpd.ipsec`), but a verdict about its SAs must not rest on its parser, so the
lab's view of `list-sas` and the scapy peer's SA set-up live here, written apart.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vici import Session as ViciSession   # Initiator's field `vici` would shadow the module

CHILD = "gre"
POLL = 0.02


@dataclass(frozen=True)
class ChildSa:
    name: str
    state: str              # INSTALLED, REKEYING, ...
    mode: str               # TRANSPORT
    protocol: str           # ESP
    spi_in: str
    spi_out: str
    encap: bool             # ESP in UDP (NAT-T)
    local_ts: tuple[str, ...] = ()
    remote_ts: tuple[str, ...] = ()


@dataclass(frozen=True)
class IkeSa:
    """One IKE SA of a node, as `swanctl --list-sas` shows it, normalised."""
    name: str               # connection name
    uniqueid: str
    state: str              # ESTABLISHED, CONNECTING, ...
    local_host: str
    remote_host: str        # the peer's NBMA address (post-NAT as seen from here)
    remote_id: str
    initiator: bool
    nat_any: bool           # NAT detected on the path
    children: tuple[ChildSa, ...] = field(default_factory=tuple)

    @property
    def up(self) -> bool:
        """Established, with a child SA installed: traffic can flow."""
        return self.state == "ESTABLISHED" and any(c.state == "INSTALLED" for c in self.children)


def session(path: str | Path, timeout: float = 10.0) -> ViciSession:
    """A VICI session on the charon socket at `path` (the error names the path)."""
    import vici                     # only labs with IPsec need it
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError as e:
        s.close()
        raise OSError(e.errno, f"{path}: {e.strerror}") from None
    return vici.Session(s)


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v or "")


def parse_sas(listing: list[dict[str, Any]]) -> list[IkeSa]:
    """VICI `list-sas` answers (one {name: sa} per IKE SA) -> IkeSa records."""
    out = []
    for item in listing:
        for name, sa in item.items():
            children = tuple(
                ChildSa(name=_text(c.get("name")), state=_text(c.get("state")), mode=_text(c.get("mode")),
                        protocol=_text(c.get("protocol")), spi_in=_text(c.get("spi-in")),
                        spi_out=_text(c.get("spi-out")), encap=_text(c.get("encap")) == "yes",
                        local_ts=tuple(map(_text, c.get("local-ts", []))),
                        remote_ts=tuple(map(_text, c.get("remote-ts", []))))
                for c in (sa.get("child-sas") or {}).values())
            out.append(IkeSa(name=_text(name), uniqueid=_text(sa.get("uniqueid")), state=_text(sa.get("state")),
                             local_host=_text(sa.get("local-host")), remote_host=_text(sa.get("remote-host")),
                             remote_id=_text(sa.get("remote-id")), initiator=_text(sa.get("initiator")) == "yes",
                             nat_any=_text(sa.get("nat-any")) == "yes", children=children))
    return out


def sas(path: str | Path) -> list[IkeSa]:
    return parse_sas(list(session(path).list_sas()))


@dataclass(frozen=True)
class Initiator:
    """What the scapy peer needs to bring up a transport-mode GRE SA before it sends."""
    vici: str                                   # charon's VICI socket
    identity: str                               # our IKE identity (our protocol address)
    auth: str                                   # psk | pubkey
    ike_proposals: str
    esp_proposals: str

    def _load(self, s: ViciSession, name: str, nbma: str, remote_id: str | None) -> None:
        s.load_conn({name: {
            "version": "2", "remote_addrs": [nbma], "proposals": [self.ike_proposals],
            "local-1": {"auth": self.auth, "id": self.identity},
            "remote-1": {"auth": self.auth, "id": remote_id or "%any"},
            "children": {CHILD: {"mode": "transport", "local_ts": ["dynamic[gre]"],
                                 "remote_ts": ["dynamic[gre]"], "esp_proposals": [self.esp_proposals]}}}})

    def ensure(self, nbma: str, remote_id: str | None, timeout: float = 8.0) -> None:
        """Until an SA to `nbma` is up: loads `peer-<nbma>` and initiates it unless one
        (either end's) already is. Raises TimeoutError naming the address."""
        s = session(self.vici, timeout=5.0)
        if any(sa.remote_host == nbma and sa.up for sa in parse_sas(list(s.list_sas()))):
            return
        name = f"peer-{nbma}"
        self._load(s, name, nbma, remote_id)
        for _ in s.initiate({"child": CHILD, "ike": name, "timeout": -1}):
            pass
        deadline = time.monotonic() + timeout
        while not any(sa.remote_host == nbma and sa.up for sa in parse_sas(list(s.list_sas()))):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no IPsec SA to {nbma} after {timeout:.0f} s (see charon.log)")
            time.sleep(POLL)

    def attempt(self, nbma: str, remote_id: str | None, timeout: float = 8.0) -> str | None:
        """One IKE exchange with `nbma` on a connection of its own (`probe-<nbma>`), waited
        for and then removed with whatever SA it made: None if an SA came up, else charon's
        reason. It is a stimulus (a node trying IKE once more), not how a node gets an SA."""
        from vici.exception import CommandException
        s = session(self.vici, timeout=timeout + 5.0)
        name = f"probe-{nbma}"
        self._load(s, name, nbma, remote_id)
        try:
            for _ in s.initiate({"child": CHILD, "ike": name, "timeout": int(timeout * 1000)}):
                pass
            return None
        except CommandException as e:
            return str(e)
        finally:
            if any(sa.name == name for sa in parse_sas(list(s.list_sas()))):
                for _ in s.terminate({"ike": name, "timeout": -1}):
                    pass
            s.unload_conn({"name": name})
