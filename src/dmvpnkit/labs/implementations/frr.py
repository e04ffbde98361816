"""FRR as a DMVPN implementation: zebra + staticd + nhrpd per node.

One `frr.conf` per node is rendered from the topology (templates/frr/frr.conf.j2),
the file a containerlab FRR node mounts too; every daemon reads it. State is read over the
daemons' own vty sockets in-process (the vtysh wire format: a command and a NUL in,
the output and `\\0\\0\\0<status>` back), because spawning `vtysh` costs ~0.6 s in
the UML kernel. Views are normalised into `views.CacheEntry` & co., the shape every
implementation driver returns.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import jinja2

from ..procs import kill_all, pids_from_files
from ..underlay import add_rules
from ..views import CacheEntry, NhsEntry, Shortcut
from . import VIEWS, ContainerPlan, Driver, ImplementationError, Setup
from .view import DmvpnView

FRR_LIB = Path("/usr/lib/frr")
RUN_DIR = Path("/run/frr")
DAEMONS = ("zebra", "staticd", "nhrpd")
ROUTING_DAEMONS = {"static": (), "bgp": ("bgpd",), "ospf": ("ospfd",)}     # what a topology's dmvpn.routing adds
BGP_ASN = 65000             # one AS: iBGP, the hub reflecting
REGISTER_WITHIN = 10.0      # s: how long the routing daemons wait for the spokes to register
# OSPF hellos every second find neighbours fast; a dead interval of 10 s outlives an NHRP
# daemon's restart, which stops the multicast its hellos travel by (4 s did not). Lost
# database exchange is resent after 1 s (FRR's default: 5), for the labs with loss.
OSPF_HELLO, OSPF_DEAD = 1, 10
BGP_KEEPALIVE, BGP_HOLD = 3, 9
# s a routing adjacency outlives a silent neighbour (BGP's hold time, OSPF's dead interval)
DEAD_TIME = {"bgp": float(BGP_HOLD), "ospf": float(OSPF_DEAD)}
# Configuration mutations (`--impl-var KEY=no`): a deliberately wrong FRR configuration
# that a routing case must catch, as nhrpd's fault switches are for the NHRP cases.
MUTATIONS = {
    "bgp_summary_only": "yes",      # phase 3 hub: aggregate the LANs and send only the summary
    "bgp_next_hop_self": "phase",   # hub: itself as next hop of every reflected route (phase: not in phase 2)
    "ospf_distance": "110",         # OSPF's administrative distance (FRR's default; NHRP's is 10)
    "ospf_network": "phase",        # the tunnel's OSPF network type (phase: phase 2's broadcast, else per role)
}
NFLOG_GROUP = 1
# The hub logs hairpinned packets to NFLOG; nhrpd turns them into Traffic Indications.
# Rate limited per source/destination /24 pair, as FRR's documentation recommends.
def _redirect_rule(mask: int, name: str) -> list[str]:
    return ["-A", "FORWARD", "-i", "gre1", "-o", "gre1", "-m", "hashlimit", "--hashlimit-upto",
            "4/minute", "--hashlimit-burst", "1", "--hashlimit-mode", "srcip,dstip",
            "--hashlimit-srcmask", str(mask), "--hashlimit-dstmask", str(mask), "--hashlimit-name",
            name, "-j", "NFLOG", "--nflog-group", str(NFLOG_GROUP), "--nflog-size", "128"]


REDIRECT_RULE = _redirect_rule(24, "loglimit-0")
REDIRECT_RULE6 = _redirect_rule(64, "loglimit6-0")     # ip6tables: per /64 pair, the same group

# Multicast sent into the tunnel is handed to nhrpd (which unicasts a copy to every
# registered spoke) and dropped, as the kernel cannot send it on an mGRE interface.
MCAST_NFLOG_GROUP = 2
MCAST_RULES = [["-A", "OUTPUT", "-o", "gre1", "-d", "224.0.0.0/4", "-j", "NFLOG", "--nflog-group",
                str(MCAST_NFLOG_GROUP)],
               ["-A", "OUTPUT", "-o", "gre1", "-d", "224.0.0.0/4", "-j", "DROP"]]

# As a containerlab node. Debian 12's FRR is 8.4.4 (what this driver targets); quay.io
# has no 8.4.3/8.4.4 image (FRR tags each pushed image docker/X.Y.Z: 8.4.0-8.4.2,
# 8.4.5-8.4.7), and nhrpd/ is identical in frr-8.4.2 and frr-8.4.4, while 8.4.5 changes it.
IMAGE_VERSION = "8.4.2"
IMAGE = f"quay.io/frrouting/frr:{IMAGE_VERSION}"
ETC = "/etc/frr"
# FRR 8.4's daemons file (tools/etc/frr/daemons) names these too; all stay off.
OTHER_DAEMONS = ("bgpd", "ospfd", "ospf6d", "ripd", "ripngd", "isisd", "pimd", "pim6d", "ldpd", "eigrpd",
                 "babeld", "sharpd", "pbrd", "bfdd", "fabricd", "vrrpd", "pathd")
VTYSH_CONF = "service integrated-vtysh-config\n"
IMAGE_IPTABLES = "iptables"        # in an image: legacy there, like the harness's

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


def render(v: DmvpnView, variables: Mapping[str, str] | None = None) -> str:
    """The node's frr.conf (integrated: zebra, staticd, nhrpd, and bgpd or ospfd). `variables`: the
    run's (`--impl-var`), among them the configuration mutations (MUTATIONS)."""
    # `var` as an implementation profile's templates see it: implementations/frr-profile.yaml
    # renders this same file.
    return _env.get_template("frr.conf.j2").render(
        v=v, var={**MUTATIONS, **(variables or {}), "nflog_group": NFLOG_GROUP, "mcast_nflog_group": MCAST_NFLOG_GROUP,
                  "bgp_asn": BGP_ASN, "bgp_keepalive": BGP_KEEPALIVE, "bgp_hold": BGP_HOLD,
                  "ospf_hello": OSPF_HELLO, "ospf_dead": OSPF_DEAD})


def daemons(routing: str) -> tuple[str, ...]:
    """The daemons a node runs: zebra, staticd, nhrpd, and its routing protocol's."""
    return DAEMONS + ROUTING_DAEMONS[routing]


def daemons_file(node: str, routing: str = "static") -> str:
    """/etc/frr/daemons for the image's watchfrr: zebra, staticd, nhrpd (and the routing protocol's)."""
    on = daemons(routing)
    lines = [f"# /etc/frr/daemons of {node}, written by dmvpnkit: {', '.join(on)}."]
    lines += [f"{d}=yes" for d in on] + [f"{d}=no" for d in OTHER_DAEMONS if d not in on]
    lines += ["vtysh_enable=yes", 'zebra_options="  -A 127.0.0.1 -s 90000000"',
              'staticd_options="-A 127.0.0.1"', 'nhrpd_options="  -A 127.0.0.1"']
    return "\n".join(lines) + "\n"


def node_rules(v: DmvpnView) -> list[list[str]]:
    """What start() adds to a node's iptables: multicast to nhrpd, a phase 3 hub's redirect log."""
    return (MCAST_RULES if v.multicast else []) + ([REDIRECT_RULE] if v.redirect else [])


def node_rules6(v: DmvpnView) -> list[list[str]]:
    """A dual-stack phase 3 hub's ip6tables: its IPv6 hairpins to the same NFLOG group
    (FRR's nhrpd reads the family from each packet)."""
    return [REDIRECT_RULE6] if v.redirect and v.ipv6 is not None else []


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


def tool(variables: Mapping[str, str], name: str, default: Path) -> Path:
    """vtysh or frr-reload.py of the same tree (a build tree's vtysh/vtysh and
    tools/frr-reload.py, an install tree's bin/ and sbin/), else Debian's."""
    d = binaries(variables)
    for p in (d / name, d / "vtysh" / name, d / "tools" / name, d.parent / "bin" / name, d.parent / "sbin" / name):
        if p.is_file():
            return p
    return default


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


@functools.lru_cache(maxsize=8)
def _version_line(nhrpd: Path, _mtime_ns: int) -> str:
    """`nhrpd --version`'s first line, once per binary (and build of it): each lab
    records it, and an exec of nhrpd costs ~0.1 s of a UML guest's CPU."""
    out = subprocess.run([str(nhrpd), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else "unknown"


class FrrDriver(Driver):
    name = "frr"
    unimplemented: Mapping[str, str] = {
        "ospf-broadcast": "FRR 8.4's nhrpd takes only a host address on the tunnel (it logs '10.255.0.11/16 is "
                          "not a host prefix' and never registers), and OSPF's broadcast network (phase 2) needs "
                          "the tunnel as one subnet",
    }
    views = VIEWS
    ipsec_couplings = ("trap",)     # nhrpd's `tunnel protection vici` needs a patched charon

    def __init__(self, setup: Setup):
        super().__init__(setup)
        self._procs: dict[tuple[str, str], subprocess.Popen[bytes]] = {}    # (node, daemon): handle
        self.daemons = daemons(self.topo.dmvpn.routing)     # what start() runs on every node

    def pathspace(self, node: str) -> str:
        return self.backend.node(node).id

    def sock(self, node: str, daemon: str = "nhrpd") -> Path:
        return RUN_DIR / self.pathspace(node) / f"{daemon}.vty"

    @classmethod
    def version(cls, variables: Mapping[str, str]) -> str:
        nhrpd = binary(variables, "nhrpd")
        try:
            line = _version_line(nhrpd, nhrpd.stat().st_mtime_ns)
        except OSError as e:
            raise ImplementationError(f"frr: {nhrpd}: {e.strerror} (apt-get install frr, or --frr-prefix)") from None
        return f"{line} ({nhrpd.parent})" if variables.get("frr_prefix") else line

    @classmethod
    def container(cls, v: DmvpnView, *, node_id: str, harness: bool, image: str | None) -> ContainerPlan:
        """Standalone: the image's watchfrr runs the daemons the files name. Harness: the
        daemons start() runs in the image keep their sockets and pid files where this
        driver looks (RUN_DIR/<path space>), and resolve user frr as the harness does."""
        files = {f"{ETC}/daemons": daemons_file(v.name, v.routing), f"{ETC}/frr.conf": render(v), f"{ETC}/vtysh.conf": VTYSH_CONF}
        if not harness:
            return ContainerPlan(image or IMAGE, files,
                                 exec=tuple(shlex.join([IMAGE_IPTABLES, *r]) for r in node_rules(v)))
        run = RUN_DIR / node_id
        # The image keeps vty sockets in /var/run/frr/<path space> (a link to /run in
        # Alpine; bound both ways in case it is not).
        return ContainerPlan(image or IMAGE, files, dirs=(run,), binds=(
            f"{run}:{run}", f"{run}:/var/run/frr/{node_id}", "/etc/passwd:/etc/passwd:ro", "/etc/group:/etc/group:ro"))

    # ------------------------------------------------------------ lifecycle
    def write_configs(self) -> None:
        for node in map(self.topo.nodes.__getitem__, self.nodes):
            if node.is_dmvpn:
                d = self.dir / "nodes" / node.name
                d.mkdir(parents=True, exist_ok=True)
                (d / "frr.conf").write_text(render(self.setup.view(node.name), self.setup.variables))

    def start(self) -> None:
        """Start every daemon of every DMVPN node; returns once each listens on its vty
        socket, which FRR opens only after reading its config.

        All zebras first, then staticd and nhrpd everywhere once their zebra
        listens: node by node would serialise each zebra's start-up wait. The
        daemons run in the foreground (no `-d`): daemonising forks a process whose
        libraries are already mapped, and in the UML lab kernel that fork and the
        copy-on-write faults after it cost ~0.1 s per daemon.
        """
        nodes = self.nodes
        for name in nodes:
            if "nhrpd" in self.daemons:
                v = self.setup.view(name)
                for rules, six in ((node_rules(v), False), (node_rules6(v), True)):
                    if rules:
                        add_rules(self.backend.node(name), rules, self.dir / "nodes" / name, ipv6=six)
            # FRR drops to the frr user (root is not in its vty group): it must own
            # its run directory and the node directory it logs into.
            for d in (RUN_DIR, RUN_DIR / self.pathspace(name), self.dir / "nodes" / name):
                d.mkdir(parents=True, exist_ok=True)
                shutil.chown(d, "frr", "frr")
        if nodes:       # one node's file stands for all: the same writer, in sibling directories
            readable_by_frr(self.dir / "nodes" / nodes[0] / "frr.conf")
        routing = ROUTING_DAEMONS[self.topo.dmvpn.routing] if "nhrpd" in self.daemons else ()
        zebras = [self._spawn(name, "zebra") for name in nodes]
        others = []
        for zebra in zebras:
            self._wait_socket(*zebra)
            others += [self._spawn(zebra[0], d) for d in self.daemons if d not in ("zebra", *routing)]
        for one in others:
            self._wait_socket(*one)
        if routing:
            # Into registered spokes: FRR 8.4's nhrpd binds its NHS to NBMA 0.0.0.0 when
            # the kernel asks for the NHS (a BGP connect) just as the registration reply
            # comes ("update binding ... to lladdr (unspec)"), and the session never comes
            # up (seen in 1 of 6 phase 2 labs).
            self._wait_registered()
            for one in [self._spawn(name, d) for name in nodes for d in routing]:
                self._wait_socket(*one)

    def _wait_registered(self) -> None:
        """Until every spoke's NHSs have answered its registration, or REGISTER_WITHIN
        has passed: bring-up's own convergence check reports a spoke that never does."""
        spokes = [n for n in self.nodes if self.topo.nodes[n].role == "spoke"]
        deadline = time.monotonic() + REGISTER_WITHIN
        while True:
            spokes = [n for n in spokes if not all(e.protocol for e in self.nhs(n))]
            if not spokes or time.monotonic() >= deadline:
                return
            time.sleep(0.05)

    def _spawn(self, node: str, daemon: str) -> tuple[str, str]:
        d = self.dir / "nodes" / node
        ps = self.pathspace(node)
        argv = [str(binary(self.setup.variables, daemon)), "-N", ps, "-P", "0",
                "-i", str(self._pid_file(node, daemon)), "-f", str(d / "frr.conf"),
                "--log", f"file:{d / (daemon + '.log')}", "--log-level", "debug"]
        # What a daemon prints before its log is open (a bad option, a missing
        # library) goes to <daemon>.out; its own session keeps a terminal's Ctrl-C
        # from stopping it before the lab's teardown does.
        with open(d / f"{daemon}.out", "ab") as out:      # a restart adds to it
            self._procs[node, daemon] = self.backend.node(node).popen(
                argv, stdout=out, stderr=out, new_session=True, in_image=True)
        return node, daemon

    def _pid_file(self, node: str, daemon: str) -> Path:
        return RUN_DIR / self.pathspace(node) / f"{daemon}.pid"

    def _wait_socket(self, node: str, daemon: str, timeout: float = 20) -> None:
        p = self._procs[node, daemon]
        deadline = time.monotonic() + timeout
        while not self.sock(node, daemon).exists():
            if p.poll() is not None or time.monotonic() > deadline:
                d = self.dir / "nodes" / node
                why = f"exited {p.returncode}" if p.returncode is not None else f"no vty socket after {timeout:.0f} s"
                raise RuntimeError(f"{node}: {daemon} failed to start ({why}); "
                                   f"see {d / (daemon + '.out')} and {d / (daemon + '.log')}")
            time.sleep(0.02)

    def stop_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        """Kill one daemon of one node (SIGTERM, then SIGKILL), as a crash or an admin would."""
        pid_file = self._pid_file(node, daemon)
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            raise RuntimeError(f"{node}: {daemon} is not running (no {pid_file})") from None
        kill_all([pid])
        self._reap((node, daemon))
        for f in (pid_file, self.sock(node, daemon)):
            f.unlink(missing_ok=True)

    def _reap(self, only: tuple[str, str] | None = None) -> None:
        """Collect the exit of daemons already killed by pid (all, or `only` this
        (node, daemon)). A handle that outlives its daemon (clab's docker client) is killed."""
        for key in [only] if only else list(self._procs):
            p = self._procs.pop(key, None)
            if p is None:
                continue
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def start_daemon(self, node: str, daemon: str = "nhrpd") -> None:
        self._wait_socket(*self._spawn(node, daemon))

    def reload(self, node: str) -> None:
        """FRR's own reload: frr-reload.py (Debian: frr-pythontools) diffs the node's frr.conf
        against the running config and applies the difference through vtysh."""
        d = self.dir / "nodes" / node
        vtysh = tool(self.setup.variables, "vtysh", Path("/usr/bin/vtysh"))
        script = tool(self.setup.variables, "frr-reload.py", FRR_LIB / "frr-reload.py")
        argv = [str(script), "--reload", "--stdout", "--pathspace", self.pathspace(node), "--bindir", str(vtysh.parent),
                "--confdir", str(d), "--rundir", str(self.backend.node(node).run_dir), str(d / "frr.conf")]
        try:
            done = self.backend.node(node).run(argv, check=False, in_image=True, timeout=120)
        except FileNotFoundError:
            raise ImplementationError(f"{node}: reload needs {script} (apt-get install frr-pythontools)") from None
        (d / "frr-reload.log").write_text(done.out + done.err)
        if done.rc != 0:
            raise ImplementationError(f"{node}: {script} exited {done.rc} (log: {d / 'frr-reload.log'}): "
                                      f"{done.err.strip()[-500:]}")

    def stop(self) -> None:
        """Stop every daemon this driver started, by the pid files they wrote."""
        kill_all([pid for node in self.nodes for pid in pids_from_files(
            (RUN_DIR / self.pathspace(node)).glob("*.pid"), self.backend.node(node).pids())])
        self._reap()
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

    def _table(self, node: str, view: str) -> list[dict[str, Any]]:
        """`show ip nhrp VIEW json`'s rows, and on a dual-stack node `show ipv6 ...`'s."""
        return [row for f in self.families(node)
                for row in self._json(node, f"show {'ipv6' if f == 6 else 'ip'} nhrp {view} json").get("table", [])]

    def cache(self, node: str) -> list[CacheEntry]:
        table = self._table(node, "cache")
        return [CacheEntry(protocol=e["protocol"], nbma=e.get("nbma", ""),
                           claimed_nbma=e.get("claimed_nbma", e.get("claimedNbma", "")),
                           type=e["type"], used=bool(e.get("used")), interface=e.get("interface", ""))
                for e in table]

    def nhs(self, node: str) -> list[NhsEntry]:
        return [nhs_entry(e) for e in self._table(node, "nhs")]

    def shortcuts(self, node: str) -> list[Shortcut]:
        table = self._table(node, "shortcut")
        return [Shortcut(prefix=e["prefix"], via=e.get("via", ""), type=e.get("type", ""),
                         identity=e.get("identity", "")) for e in table]

    def routes(self, node: str) -> str:
        return self.show(node, "show ip route", daemon="zebra")


def nhs_entry(e: dict[str, str]) -> NhsEntry:
    """One row of `show ip nhrp nhs json`. Until the NHS answers, FRR prints the
    unlearnt protocol address as "(unspec)" (seen: a `nhs dynamic` never answered);
    the view says empty then, as lab bring-up reads it."""
    protocol = e.get("protocol", "")
    return NhsEntry(interface=e.get("interface", ""), fqdn=e.get("fqdn", ""), nbma=e.get("nbma", ""),
                    protocol="" if protocol == "(unspec)" else protocol)


class FrrRouting(FrrDriver):
    """Only FRR's zebra and routing daemon (bgpd, ospfd) on each node, for another NHRP
    implementation (nhrpd) that runs beside them: what they learn, zebra installs in
    the kernel, where that implementation reads it. Not an implementation itself."""

    def __init__(self, setup: Setup):
        super().__init__(setup)
        self.daemons = ("zebra", *ROUTING_DAEMONS[self.topo.dmvpn.routing])
