"""strongSwan in the lab: one charon per DMVPN node, protecting GRE with ESP.

Each charon runs on its node in a private mount namespace (`Node.popen(private_run=...)`)
whose /run is `<node's run_dir>/ipsec`, so pid file and VICI socket never collide;
`STRONGSWAN_CONF` and `SWANCTL_DIR` point at the configs rendered into `nodes/<name>/ipsec/`.
charon loads them itself (a start script runs `swanctl --load-all`), and the driver
talks VICI in-process for the `sas()` view.

How NHRP and IKE are coupled is what the implementation declares (`ipsec_couplings`):
- `trap` (FRR): a trap policy for GRE to any address; the kernel's
  acquire on the first GRE packet to an NBMA address starts IKE with it. Stock
  strongSwan cannot do FRR's `tunnel protection vici`.
- `vici` (dmvpnkit-nhrpd, and the suite's scapy peer): the NHRP daemon loads and initiates one connection per
  peer over VICI before sending to it, and removes it with the shortcut; a drop
  shunt keeps GRE from leaving in the clear meanwhile.
"""

from __future__ import annotations

import functools
import os
import subprocess
import time
from pathlib import Path

import jinja2

from .backend import Backend
from .procs import kill_all
from .spec import Ipsec, Node
from .vici import IkeSa, sas, session

CHARON = Path("/usr/lib/ipsec/charon")
PKI = Path("/usr/bin/pki")
CERT_DAYS = 30
START_TIMEOUT = 30.0
_env = jinja2.Environment(loader=jinja2.PackageLoader("dmvpnkit.labs", "templates/strongswan"),
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=True)


class IpsecError(RuntimeError):
    pass


def _pki(*args: str, out: Path) -> None:
    done = subprocess.run([str(PKI), *args], capture_output=True)
    if done.returncode != 0:
        raise IpsecError(f"pki {' '.join(args)} failed ({done.returncode}): "
                         f"{done.stderr.decode(errors='replace')[-500:]}")
    out.write_bytes(done.stdout)


class StrongswanDriver:
    """charon on `nodes`, each with the coupling its NHRP implementation uses."""

    def __init__(self, lab: Backend, lab_dir: Path, ipsec: Ipsec, coupling: dict[str, str],
                 no_shunt: frozenset[str] = frozenset()):
        self.lab = lab
        self.no_shunt = no_shunt            # vici-coupled nodes left without the drop shunt (a fault switch)
        self.topo = lab.topo
        self.dir = lab_dir
        self.ipsec = ipsec
        self.coupling = coupling            # node -> "trap" | "vici"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def version(self) -> str:
        return _charon_version()

    def run_dir(self, node: str) -> Path:
        return self.lab.node(node).run_dir / "ipsec"

    def vici(self, node: str) -> Path:
        """The node's VICI socket as seen from outside its mount namespace."""
        return self.run_dir(node) / "charon.vici"

    def vici_config(self, node: str) -> dict[str, str]:
        """What a node that drives its own SAs (`vici` coupling) needs to reach charon."""
        return {"vici": str(self.vici(node)), "identity": str(self.topo.nodes[node].tunnel),
                "auth": "pubkey" if self.ipsec.auth == "cert" else "psk",
                "ike_proposals": self.ipsec.ike_proposals, "esp_proposals": self.ipsec.esp_proposals}

    def node_dir(self, node: str) -> Path:
        return self.dir / "nodes" / node / "ipsec"

    # ------------------------------------------------------------ lifecycle
    def write_configs(self) -> None:
        for name, coupling in self.coupling.items():
            node: Node = self.topo.nodes[name]
            d = self.node_dir(name)
            (d / "swanctl").mkdir(parents=True, exist_ok=True)
            ctx = dict(node=node, ipsec=self.ipsec, coupling=coupling, log=d / "charon.log",
                       vici="/run/charon.vici", shunt=name not in self.no_shunt)
            (d / "strongswan.conf").write_text(_env.get_template("strongswan.conf.j2").render(**ctx))
            (d / "swanctl" / "swanctl.conf").write_text(_env.get_template("swanctl.conf.j2").render(**ctx))
        if self.ipsec.auth == "cert":
            self._certificates()

    def _certificates(self) -> None:
        """A lab CA, and per node a key and a certificate whose subjectAltName is its
        tunnel address (its IKE identity), in the node's swanctl/{private,x509,x509ca}.
        A node the topology gives other credentials gets its certificate from a second
        CA that nobody trusts."""
        ca_dir = self.dir / "ipsec-ca"
        ca_dir.mkdir(parents=True, exist_ok=True)
        cas = {}
        for ca in {"lab"} | ({"rogue"} if self.ipsec.node_psk else set()):
            key, cert = ca_dir / f"{ca}.key", ca_dir / f"{ca}.pem"
            _pki("--gen", "--type", "rsa", "--size", "2048", "--outform", "pem", out=key)
            _pki("--self", "--ca", "--lifetime", str(CERT_DAYS), "--in", str(key), "--dn",
                 f"O=dmvpnkit, CN={ca} CA", "--outform", "pem", out=cert)
            cas[ca] = (key, cert)
        for name in self.coupling:
            sw = self.node_dir(name) / "swanctl"
            for sub in ("private", "x509", "x509ca"):
                (sw / sub).mkdir(parents=True, exist_ok=True)
            ca_key, ca_cert = cas["rogue" if name in self.ipsec.node_psk else "lab"]
            key, pub = sw / "private" / f"{name}.pem", ca_dir / f"{name}.pub"
            _pki("--gen", "--type", "rsa", "--size", "2048", "--outform", "pem", out=key)
            _pki("--pub", "--in", str(key), "--outform", "pem", out=pub)
            _pki("--issue", "--lifetime", str(CERT_DAYS), "--in", str(pub), "--type", "pub",
                 "--cacert", str(ca_cert), "--cakey", str(ca_key), "--dn", f"O=dmvpnkit, CN={name}",
                 "--san", str(self.topo.nodes[name].tunnel), "--outform", "pem", out=sw / "x509" / f"{name}.pem")
            (sw / "x509ca" / "lab.pem").write_bytes(cas["lab"][1].read_bytes())

    def start(self) -> None:
        for name in self.coupling:
            self.start_node(name, wait=False)
        for name in self.coupling:
            self._wait(name)

    def start_node(self, node: str, wait: bool = True) -> None:
        run = self.run_dir(node)
        run.mkdir(parents=True, exist_ok=True)
        for f in run.glob("charon.*"):
            f.unlink()
        d = self.node_dir(node)
        env = {**os.environ, "STRONGSWAN_CONF": str(d / "strongswan.conf"), "SWANCTL_DIR": str(d / "swanctl")}
        with open(d / "charon.stderr", "ab") as err:
            self.procs[node] = self.lab.node(node).popen([str(CHARON)], private_run=run, env=env, stdout=err,
                                                         stderr=err, new_session=True, in_image=True)
        if wait:
            self._wait(node)

    def _wait(self, node: str) -> None:
        """Until charon answers on VICI with the configuration loaded."""
        p = self.procs[node]
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline and p.poll() is None:
            if self.vici(node).exists():
                try:
                    conns = [name for c in session(self.vici(node)).list_conns() for name in c]
                    if "dmvpn" in conns:
                        return
                    last = f"loaded connections: {conns}"
                except Exception as e:  # noqa: BLE001 - not listening yet; keep the evidence
                    last = str(e)
            time.sleep(0.1)
        log = self.node_dir(node) / "charon.log"
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
        raise IpsecError(f"{node}: charon did not load its swanctl.conf (exit {p.poll()}; {last}):\n{tail}")

    def stop_node(self, node: str) -> None:
        """Stop one node's charon as an admin would (SIGTERM: it removes its SAs and policies)."""
        p = self.procs.pop(node, None)
        pid: int | None
        try:
            pid = int((self.run_dir(node) / "charon.pid").read_text())
        except (OSError, ValueError):
            pid = p.pid if p is not None else None
        if pid is None:
            raise IpsecError(f"{node}: charon is not running")
        kill_all([pid])
        if p is not None:
            p.poll()

    def stop(self) -> None:
        kill_all([p.pid for p in self.procs.values()])
        for p in self.procs.values():
            p.poll()
        self.procs.clear()
        for node in self.coupling:
            for f in self.run_dir(node).glob("*"):
                f.unlink(missing_ok=True)
            try:
                self.run_dir(node).rmdir()
            except OSError:
                pass

    # ------------------------------------------------------------ views
    def sas(self, node: str) -> list[IkeSa]:
        return sas(self.vici(node))

    def established(self, node: str) -> dict[str, IkeSa]:
        """remote NBMA address -> the ESTABLISHED IKE SA with an INSTALLED child."""
        return {sa.remote_host: sa for sa in self.sas(node) if sa.up}


@functools.lru_cache(maxsize=1)
def _charon_version() -> str:
    """charon's version line, once per process (each lab records it)."""
    out = subprocess.run([str(CHARON), "--version"], capture_output=True, text=True).stdout
    return out.strip().splitlines()[0] if out.strip() else "strongSwan (unknown version)"
