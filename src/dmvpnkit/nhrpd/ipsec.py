"""IPsec for the node: stock strongSwan driven over VICI (the `vici` package).

FRR's `tunnel protection vici` needs strongSwan patches; this uses only what stock
strongSwan offers. Before the node sends NHRP to an NBMA address, or installs a
shortcut to it, an IKE SA with that address must exist: if none does, the node
loads a connection for it (`peer-<nbma>`) and initiates it, waiting until the child
SA is installed. The peer must authenticate as its NHRP protocol address: that is
how NHRP peers map to IKE identities. When a shortcut goes, so does the SA the node
started for it. Connections the peer started are found in `list-sas` and reused.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .config import Config
from .faults import Fault

log = logging.getLogger("nhrpd")
CHILD = "gre"
INITIATE_TIMEOUT = 8.0      # s; IKE_SA_INIT + IKE_AUTH take well under one here, retransmits 1 s apart
POLL = 0.02
FRESH_SECONDS = 2.0         # how long a seen SA is trusted before list-sas is asked again
# Fail closed: GRE that no IPsec policy covers is dropped, also while charon is down
# (a stopping charon removes every policy it installed, its drop shunt included).
FAIL_CLOSED = [["OUTPUT", "-p", "gre", "-m", "policy", "--dir", "out", "--pol", "none", "-j", "DROP"],
               ["INPUT", "-p", "gre", "-m", "policy", "--dir", "in", "--pol", "none", "-j", "DROP"]]


@dataclass(frozen=True)
class IpsecConfig:
    vici: str                                   # charon's VICI socket
    identity: str                               # our IKE identity (our protocol address)
    auth: str = "psk"                           # or "pubkey": certificates charon already holds
    ike_proposals: str = "aes128-sha256-modp2048"
    esp_proposals: str = "aes128gcm16"


def vici_session(path: str | Path, timeout: float | None = 10.0) -> Any:
    """A VICI session on charon's socket at `path` (no timeout: one that waits for events)."""
    import vici                     # only nodes with IPsec need it
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
    except OSError as e:
        s.close()
        raise OSError(e.errno, f"{path}: {e.strerror}") from None
    return vici.Session(s)


def for_node(config: Config, ipsec: IpsecConfig | None) -> Protection | None:
    """The node's protection, its fault switches applied. Only a spoke's neighbours are
    shortcuts whose SAs go with them; a hub's are registrations (and a spoke whose link
    is down would not hear its SA go)."""
    if ipsec is None:
        return None
    careless = config.has(Fault.IPSEC_CLEARTEXT_FIRST)
    in_clear = config.has(Fault.IPSEC_REGISTER_IN_CLEAR_ONCE)
    return Protection(ipsec, never_release=(n.nbma for n in config.nhs), wait=not careless,
                      closed=not careless and not in_clear,
                      release_shortcuts=config.role == "spoke" and not config.has(Fault.IPSEC_KEEP_SA),
                      drop_connection_on_down=config.has(Fault.IPSEC_DOWN_DROPS_CONNECTION) and config.role == "hub",
                      # A hub binding a spoke brings the SA up before it answers, so the
                      # answer would go in ESP after all.
                      protect_neighbours=not config.has(Fault.IPSEC_NO_SHORTCUT_SA)
                      and not (in_clear and config.role == "hub"))


def _text(v: Any) -> str:
    """A VICI value as text (the `vici` package gives bytes)."""
    return v.decode() if isinstance(v, bytes) else str(v or "")


def went_down(event: dict[str, Any]) -> set[str]:
    """The unique IDs of the IKE SAs an `ike-updown` event reports down (none if up)."""
    if event.get("up"):
        return set()
    return {_text(sa.get("uniqueid")) for sa in event.values() if isinstance(sa, dict)}


def conn_name(nbma: str) -> str:
    return f"peer-{nbma}"


class Protection:
    def __init__(self, config: IpsecConfig, never_release: Iterable[str] = (), wait: bool = True,
                 closed: bool = True, release_shortcuts: bool = True, protect_neighbours: bool = True,
                 drop_connection_on_down: bool = False):
        self.config = config
        self.wait = wait                        # False: a fault switch (send while IKE still runs)
        self.closed = closed                    # False: fault switches (unprotected GRE passes)
        self.release_shortcuts = release_shortcuts
        # Bring an SA up before mapping a neighbour: a spoke's shortcut, a hub's registered spoke.
        self.protect_neighbours = protect_neighbours
        self.drop_connection_on_down = drop_connection_on_down    # a fault switch
        self.seen: dict[str, float] = {}        # NBMA address -> when an SA to it was last confirmed
        self.ours: set[str] = set()             # NBMA addresses we loaded a connection for
        self.keep = set(never_release)          # the NHSes: their SAs outlive any shortcut

    def fail_closed(self, on: bool) -> None:
        """Install (or remove) the rules that drop unprotected GRE in this namespace."""
        if not self.closed:
            return
        iptables = shutil.which("iptables-legacy") or "iptables"    # the lab kernel has no nft tables
        for rule in FAIL_CLOSED:
            present = subprocess.run([iptables, "-C", *rule], capture_output=True).returncode == 0
            if on != present:
                done = subprocess.run([iptables, "-I" if on else "-D", *rule], capture_output=True, text=True)
                if done.returncode != 0:
                    log.warning("ipsec: %s %s: %s", iptables, " ".join(rule), done.stderr.strip())

    def watch(self) -> None:
        """Start what runs beside the daemon's loop: only the fault switch's listener."""
        if self.drop_connection_on_down:
            threading.Thread(target=self._drop_connection_on_down, name="ike-updown", daemon=True).start()

    def _drop_connection_on_down(self) -> None:
        """Whenever an IKE SA goes down (charon's `ike-updown` event without `up`), terminate
        every other ESTABLISHED IKE SA: the fault switch. Every one, whichever side started
        it, so the spokes' SAs go whatever connection charon filed each under; the down
        events of the switch's own terminations are not acted on again."""
        dropped: set[str] = set()
        try:
            events = vici_session(self.config.vici, timeout=None).listen(["ike-updown"])
            for _, event in events:
                down = went_down(event)
                if not down or down <= dropped:
                    continue
                try:
                    session = self._session()
                    ids = [uid for item in session.list_sas() for sa in item.values()
                           if _text(sa.get("state")) == "ESTABLISHED" and (uid := _text(sa.get("uniqueid"))) not in down]
                    for uid in ids:
                        dropped.add(uid)
                        for _ in session.terminate({"ike-id": uid, "timeout": -1}):
                            pass
                    log.info("ipsec: IKE SA %s went down; terminated the %d others (fault)", ",".join(down), len(ids))
                except Exception as e:  # noqa: BLE001 - one failed terminate: the next event is another try
                    log.warning("ipsec: terminating the SAs other than %s: %s", ",".join(down), e)
        except Exception as e:  # noqa: BLE001 - charon gone: the switch stops acting, the daemon goes on
            log.warning("ipsec: ike-updown listener stopped: %s", e)

    def _session(self) -> Any:
        return vici_session(self.config.vici, timeout=5.0)

    @staticmethod
    def _established(session: Any, nbma: str) -> list[str]:
        """Unique IDs of the ESTABLISHED IKE SAs to `nbma` with an INSTALLED child SA."""
        return [_text(sa.get("uniqueid")) for item in session.list_sas() for sa in item.values()
                if _text(sa.get("remote-host")) == nbma and _text(sa.get("state")) == "ESTABLISHED"
                and any(_text(c.get("state")) == "INSTALLED" for c in (sa.get("child-sas") or {}).values())]

    def ensure(self, nbma: str, protocol: str | None = None) -> bool:
        """An SA to `nbma` exists when this returns True; `protocol` is the identity
        the peer must prove (any, if not known yet)."""
        now = time.monotonic()
        if now - self.seen.get(nbma, -FRESH_SECONDS) < FRESH_SECONDS:
            return True
        try:
            session = self._session()
            if not self._established(session, nbma):
                self._initiate(session, nbma, protocol)
        except Exception as e:  # noqa: BLE001 - charon down or IKE failed: the packet waits for a resend
            log.warning("ipsec: no SA to %s (%s): %s", nbma, protocol or "any identity", e)
            self.seen.pop(nbma, None)
            return False
        self.seen[nbma] = time.monotonic()
        return True

    def _initiate(self, session: Any, nbma: str, protocol: str | None) -> None:
        c = self.config
        name = conn_name(nbma)
        session.load_conn({name: {
            "version": "2", "remote_addrs": [nbma], "proposals": [c.ike_proposals],
            "local-1": {"auth": c.auth, "id": c.identity},     # charon finds the cert by the id
            "remote-1": {"auth": c.auth, "id": protocol or "%any"},
            "children": {CHILD: {"mode": "transport", "local_ts": ["dynamic[gre]"],
                                 "remote_ts": ["dynamic[gre]"], "esp_proposals": [c.esp_proposals]}},
        }})
        self.ours.add(nbma)
        t = time.monotonic()
        # Started in the background, then waited for by polling: the SA that comes up
        # may be the peer's own (both ends of a shortcut initiate; a peer behind NAT can
        # only be reached once it has), and either one will do.
        for _ in session.initiate({"child": CHILD, "ike": name, "timeout": -1}):
            pass
        if not self.wait:
            return
        while not self._established(session, nbma):
            if time.monotonic() - t > INITIATE_TIMEOUT:
                raise TimeoutError(f"no SA after {INITIATE_TIMEOUT:.0f} s (charon.log says why)")
            time.sleep(POLL)
        log.info("ipsec: SA to %s (%s) up in %.3f s", nbma, protocol or "any identity", time.monotonic() - t)

    def release(self, nbma: str) -> None:
        """The shortcut to `nbma` is gone: close the SAs to it (not an NHS's)."""
        self.seen.pop(nbma, None)
        if nbma in self.keep or not self.release_shortcuts:
            return
        try:
            session = self._session()
            for ike_id in self._established(session, nbma):
                for _ in session.terminate({"ike-id": ike_id, "timeout": -1}):
                    pass
            if nbma in self.ours:
                session.unload_conn({"name": conn_name(nbma)})
                self.ours.discard(nbma)
            log.info("ipsec: SA to %s closed with its shortcut", nbma)
        except Exception as e:  # noqa: BLE001 - nothing to undo if charon is gone
            log.warning("ipsec: closing SA to %s: %s", nbma, e)
