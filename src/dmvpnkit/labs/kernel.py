"""Which kernel runs the lab: the host's, or Debian's UML kernel when the host lacks
what DMVPN needs. Each feature is probed by using it in a throwaway namespace, not by
reading config files, so a module that could load but is forbidden counts as missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .backends.netns import NamespaceNode, create_netns, delete_netns

NETLINK_XFRM = 6
UML_BINARY = "linux.uml"
UML_MODULES = Path("/usr/lib/uml/modules")


@dataclass(frozen=True)
class KernelReport:
    release: str
    missing: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing


def probe() -> KernelReport:
    missing: list[str] = []
    name = f"dk-probe{os.getpid()}"
    try:
        create_netns(name)
    except OSError as e:
        return KernelReport(os.uname().release, (f"netns ({e.strerror})",))
    node = NamespaceNode("probe", name)
    try:
        ipr = node.ipr()
        for kind, kw in (("veth", {"peer": "dkprobe1"}), ("gre", {"gre_local": "127.0.0.1"})):
            try:
                ipr.link("add", ifname="dkprobe0", kind=kind, **kw)
                ipr.link("del", ifname="dkprobe0")
            except Exception as e:  # noqa: BLE001 - any failure means "not usable"
                missing.append(f"{kind} ({e})")
        try:
            node.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM).close()
        except OSError as e:
            missing.append(f"xfrm ({e.strerror})")
        if not _has_module("esp4"):
            missing.append("esp4")
        if not Path("/proc/net/netfilter/nfnetlink_log").exists() and not _has_module("nfnetlink_log"):
            missing.append("nfnetlink_log (NFLOG)")
    finally:
        node.close()
        delete_netns(name)
    return KernelReport(os.uname().release, tuple(missing))


def _has_module(mod: str) -> bool:
    if Path(f"/sys/module/{mod}").exists():
        return True
    builtin = Path(f"/lib/modules/{os.uname().release}/modules.builtin")
    try:
        return any(line.rstrip().endswith(f"/{mod}.ko") for line in builtin.read_text().splitlines())
    except OSError:
        return False


def uml_available() -> str | None:
    """Path of the UML kernel if it and its module tree are installed."""
    exe = shutil.which(UML_BINARY)
    return exe if exe and UML_MODULES.is_dir() and any(UML_MODULES.iterdir()) else None


XSTATE_SHIM = Path(__file__).with_name("umlxstate.c")
SHIM_CACHE = Path("/run/dmvpnkit")


def uml_env() -> dict[str, str]:
    """Environment for `linux.uml`: the host's, plus the XSAVE shim preloaded.

    Debian's UML 6.1 cannot restore FP state on hosts whose XSAVE area outgrew its
    buffer (AMX CPUs); every guest process then dies. The shim (umlxstate.c) is
    harmless elsewhere, so it is always used; built once per source version.
    """
    src = XSTATE_SHIM.read_bytes()
    so = SHIM_CACHE / f"umlxstate-{hashlib.sha256(src).hexdigest()[:12]}.so"
    if not so.exists():
        SHIM_CACHE.mkdir(parents=True, exist_ok=True)
        # Per process and thread: a session starts its workers' guests from parallel threads.
        tmp = so.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise NoLabKernel("building the UML XSAVE shim needs a C compiler (apt-get install gcc libc6-dev)")
        done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(XSTATE_SHIM), "-ldl"],
                              capture_output=True, text=True)
        if done.returncode:
            raise NoLabKernel(f"building {XSTATE_SHIM} failed:\n{done.stderr}")
        tmp.replace(so)
    env = dict(os.environ)
    env["LD_PRELOAD"] = " ".join(filter(None, [env.get("LD_PRELOAD", ""), str(so)]))
    return env


def in_guest() -> bool:
    return os.environ.get("DMVPNKIT_IN_GUEST") == "1"


class NoLabKernel(RuntimeError):
    pass


def choose(backend_kernel: str = "auto") -> str:
    """'host' or 'uml'; raise NoLabKernel naming what is missing when neither works."""
    if in_guest():
        return "host"
    if backend_kernel == "uml":
        if not uml_available():
            raise NoLabKernel("--kernel uml: linux.uml or /usr/lib/uml/modules not installed "
                              "(apt-get install user-mode-linux)")
        return "uml"
    report = probe()
    if report.ok:
        return "host"
    if backend_kernel == "host":
        raise NoLabKernel(f"--kernel host: kernel {report.release} lacks: {', '.join(report.missing)}")
    if uml_available():
        return "uml"
    raise NoLabKernel(f"kernel {report.release} lacks {', '.join(report.missing)} and no UML lab "
                      "kernel is installed (apt-get install user-mode-linux)")
