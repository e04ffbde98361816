"""FRR as a DMVPN implementation: zebra + staticd + nhrpd per node.

One `frr.conf` per node is rendered from the topology (templates/frr/frr.conf.j2),
the file a containerlab FRR node mounts too; every daemon reads it. State is read over the
daemons' own vty sockets in-process (the vtysh wire format: a command and a NUL in,
the output and `\\0\\0\\0<status>` back), because spawning `vtysh` costs ~0.6 s in
the UML kernel. Views are normalised into `views.CacheEntry` & co., the shape every
implementation driver returns.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import jinja2

from ..procs import kill_all, pids_from_files
from ..underlay import IPTABLES
from ..views import CacheEntry, NhsEntry, Shortcut
from . import VIEWS, Driver, ImplementationError
from .view import DmvpnView

FRR_LIB = Path("/usr/lib/frr")
RUN_DIR = Path("/run/frr")
DAEMONS = ("zebra", "staticd", "nhrpd")
NFLOG_GROUP = 1
# The hub logs hairpinned packets to NFLOG; nhrpd turns them into Traffic Indications.
# Rate limited per source/destination /24 pair, as FRR's documentation recommends.
REDIRECT_RULE = ["-A", "FORWARD", "-i", "gre1", "-o", "gre1", "-m", "hashlimit", "--hashlimit-upto",
                 "4/minute", "--hashlimit-burst", "1", "--hashlimit-mode", "srcip,dstip",
                 "--hashlimit-srcmask", "24", "--hashlimit-dstmask", "24", "--hashlimit-name",
                 "loglimit-0", "-j", "NFLOG", "--nflog-group", str(NFLOG_GROUP), "--nflog-size", "128"]

# Multicast sent into the tunnel is handed to nhrpd (which unicasts a copy to every
# registered spoke) and dropped, as the kernel cannot send it on an mGRE interface.
MCAST_NFLOG_GROUP = 2
MCAST_RULES = [["-A", "OUTPUT", "-o", "gre1", "-d", "224.0.0.0/4", "-j", "NFLOG", "--nflog-group",
                str(MCAST_NFLOG_GROUP)],
               ["-A", "OUTPUT", "-o", "gre1", "-d", "224.0.0.0/4", "-j", "DROP"]]

_env = jinja2.Environment(loader=jinja2.PackageLoader("dmvpnkit.labs", "templates/frr"),
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=True)


class VtyError(RuntimeError):
    pass


def vty(sock_path: Path, *commands: str, timeout: float = 10.0) -> str:
    """Run show commands on one daemon's vty socket; return their joined output."""
    out = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(sock_path))
        except OSError as e:
            raise VtyError(f"{sock_path}: {e.strerror}") from None
        for cmd in commands:
            s.sendall(cmd.encode() + b"\0")
            buf = b""
            while not (len(buf) >= 4 and buf[-4:-1] == b"\0\0\0"):
                chunk = s.recv(65536)
                if not chunk:
                    raise VtyError(f"{sock_path}: connection closed during {cmd!r}")
                buf += chunk
            status = buf[-1]
            text = buf[:-4].decode(errors="replace")
            if status > 1:          # 1 is CMD_WARNING, which `show ... json` returns for an empty table
                raise VtyError(f"{sock_path}: {cmd!r} failed with status {status}: {text.strip()}")
            out.append(text)
    return "".join(out)


def render(v: DmvpnView) -> str:
    """The node's frr.conf (integrated: zebra, staticd and nhrpd)."""
    # `var` as an implementation profile's templates see it: implementations/frr-profile.yaml
    # renders this same file.
    return _env.get_template("frr.conf.j2").render(
        v=v, var={"nflog_group": NFLOG_GROUP, "mcast_nflog_group": MCAST_NFLOG_GROUP})


def binaries(variables: Mapping[str, str]) -> Path:
    """The directory FRR's daemons are run from: Debian's, or `frr_prefix`'s. A prefix
    may be an install tree (`sbin/` or Debian's `lib/frr/`) or a build tree (`zebra/zebra`)."""
    prefix = variables.get("frr_prefix")
    if not prefix:
        return FRR_LIB
    root = Path(prefix)
    for d in (root, root / "sbin", root / "lib" / "frr", root / "libexec" / "frr"):
        if all((d / daemon).is_file() for daemon in DAEMONS):
            return d
    if all((root / daemon / daemon).is_file() for daemon in DAEMONS):
        return root             # a build tree: each daemon in its own directory
    raise ImplementationError(f"--frr-prefix {prefix}: no {', '.join(DAEMONS)} under it "
                              f"(looked in ., sbin, lib/frr, libexec/frr and <daemon>/<daemon>)")


def binary(variables: Mapping[str, str], daemon: str) -> Path:
    d = binaries(variables)
    return d / daemon / daemon if (d / daemon).is_dir() else d / daemon


def readable_by_frr(conf: Path) -> None:
    """staticd reads its config only after dropping root: where user frr cannot reach
    the file it runs without a single route, and every verdict after that would be
    about the harness. Say so instead."""
    done = subprocess.run(["runuser", "-u", "frr", "--", "test", "-r", str(conf)], capture_output=True)
    if done.returncode != 0:
        blocked = next((str(d) for d in reversed(conf.parents) if d.exists() and not os.stat(d).st_mode & 0o001), "")
        raise ImplementationError(f"user frr cannot read {conf} (FRR's daemons read their config after "
                                  f"dropping root){f': {blocked} is not traversable by others' if blocked else ''}; "
                                  f"chmod o+x it or put the lab (--report-dir, --lab-dir) elsewhere")


class FrrDriver(Driver):
    name = "frr"
    unimplemented: Mapping[str, str] = {}
    views = VIEWS
    ipsec_couplings = ("trap",)     # nhrpd's `tunnel protection vici` needs a patched charon

    def pathspace(self, node: str) -> str:
        return self.backend.node(node).id

    def sock(self, node: str, daemon: str = "nhrpd") -> Path:
        return RUN_DIR / self.pathspace(node) / f"{daemon}.vty"

    @classmethod
    def version(cls, variables: Mapping[str, str]) -> str:
        nhrpd = binary(variables, "nhrpd")
        try:
            out = subprocess.run([str(nhrpd), "--version"], capture_output=True, text=True).stdout
        except OSError as e:
            raise ImplementationError(f"frr: {nhrpd}: {e.strerror} (apt-get install frr, or --frr-prefix)") from None
        line = out.splitlines()[0].strip() if out else "unknown"
        return f"{line} ({nhrpd.parent})" if variables.get("frr_prefix") else line

    # ------------------------------------------------------------ lifecycle
    def write_configs(self) -> None:
        for node in map(self.topo.nodes.__getitem__, self.nodes):
            if node.is_dmvpn:
                d = self.dir / "nodes" / node.name
                d.mkdir(parents=True, exist_ok=True)
                (d / "frr.conf").write_text(render(self.setup.view(node.name)))

    def start(self) -> None:
        """Start every daemon of every DMVPN node; returns once all have daemonised.

        All zebras first, then staticd and nhrpd everywhere once their zebra
        listens: node by node would serialise each zebra's start-up wait.
        """
        nodes = self.nodes
        for name in nodes:
            if self.topo.nodes[name].role == "hub":
                for rule in MCAST_RULES + ([REDIRECT_RULE] if self.setup.phase == 3 else []):
                    self.backend.node(name).run([IPTABLES, *rule])
            # FRR drops to the frr user (root is not in its vty group): it must own
            # its run directory and the node directory it logs into.
            for d in (RUN_DIR, RUN_DIR / self.pathspace(name), self.dir / "nodes" / name):
                d.mkdir(parents=True, exist_ok=True)
                shutil.chown(d, "frr", "frr")
            readable_by_frr(self.dir / "nodes" / name / "frr.conf")
        zebras = {name: self._spawn(name, "zebra") for name in nodes}
        procs = [(name, "zebra", p) for name, p in zebras.items()]
        for name, p in zebras.items():
            self._wait_socket(name, "zebra", p)
            procs += [(name, d, self._spawn(name, d)) for d in DAEMONS if d != "zebra"]
        for node, daemon, p in procs:
            if p.wait(timeout=30) != 0:
                raise RuntimeError(f"{node}: {daemon} failed to start (exit {p.returncode}); "
                                   f"see {self.dir / 'nodes' / node / (daemon + '.log')}")

    def _spawn(self, node: str, daemon: str) -> subprocess.Popen:
        d = self.dir / "nodes" / node
        ps = self.pathspace(node)
        argv = [str(binary(self.setup.variables, daemon)), "-N", ps, "-d", "-P", "0",
                "-i", str(self._pid_file(node, daemon)), "-f", str(d / "frr.conf"),
                "--log", f"file:{d / (daemon + '.log')}", "--log-level", "debug"]
        return self.backend.node(node).popen(argv, in_image=True)

    def _pid_file(self, node: str, daemon: str) -> Path:
        return RUN_DIR / self.pathspace(node) / f"{daemon}.pid"

    def _wait_socket(self, node: str, daemon: str, p: subprocess.Popen, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.sock(node, daemon).exists():
            if time.monotonic() > deadline or (p.poll() not in (None, 0)):
                raise RuntimeError(f"{node}: {daemon} did not open its vty socket")
            time.sleep(0.02)

    def stop_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        """Kill one daemon of one node (SIGTERM, then SIGKILL), as a crash or an admin would."""
        pid_file = self._pid_file(node, daemon)
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            raise RuntimeError(f"{node}: {daemon} is not running (no {pid_file})") from None
        kill_all([pid])
        for f in (pid_file, self.sock(node, daemon)):
            f.unlink(missing_ok=True)

    def start_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        p = self._spawn(node, daemon)
        if p.wait(timeout=30) != 0:
            raise RuntimeError(f"{node}: {daemon} failed to start (exit {p.returncode}); "
                               f"see {self.dir / 'nodes' / node / (daemon + '.log')}")
        self._wait_socket(node, daemon, p)

    def stop(self) -> None:
        """Stop every daemon this driver started, by the pid files they wrote."""
        kill_all([pid for node in self.nodes for pid in pids_from_files(
            (RUN_DIR / self.pathspace(node)).glob("*.pid"), self.backend.node(node).pids())])
        for node in self.nodes:
            for f in (RUN_DIR / self.pathspace(node)).glob("*"):
                f.unlink(missing_ok=True)
            try:
                (RUN_DIR / self.pathspace(node)).rmdir()
            except OSError:
                pass

    # ------------------------------------------------------------ views
    def show(self, node: str, *commands: str, daemon: str = "nhrpd") -> str:
        return vty(self.sock(node, daemon), *commands)

    def _json(self, node: str, command: str) -> Any:
        text = self.show(node, command)
        # FRR 8.4 prints the text table's header line before the JSON of
        # `show ip nhrp shortcut json`; the document starts at the first brace.
        start = text.find("{")
        try:
            return json.loads(text[start:]) if start >= 0 else {}
        except ValueError as e:
            raise VtyError(f"{node}: {command!r} returned no JSON: {text[:200]!r}") from e

    def cache(self, node: str) -> list[CacheEntry]:
        table = self._json(node, "show ip nhrp cache json").get("table", [])
        return [CacheEntry(protocol=e["protocol"], nbma=e.get("nbma", ""),
                           claimed_nbma=e.get("claimed_nbma", e.get("claimedNbma", "")),
                           type=e["type"], used=bool(e.get("used")), interface=e.get("interface", ""))
                for e in table]

    def nhs(self, node: str) -> list[NhsEntry]:
        table = self._json(node, "show ip nhrp nhs json").get("table", [])
        return [NhsEntry(interface=e.get("interface", ""), fqdn=e.get("fqdn", ""),
                         nbma=e.get("nbma", ""), protocol=e.get("protocol", ""))
                for e in table]

    def shortcuts(self, node: str) -> list[Shortcut]:
        table = self._json(node, "show ip nhrp shortcut json").get("table", [])
        return [Shortcut(prefix=e["prefix"], via=e.get("via", ""), type=e.get("type", ""),
                         identity=e.get("identity", "")) for e in table]

    def routes(self, node: str) -> str:
        return self.show(node, "show ip route", daemon="zebra")
