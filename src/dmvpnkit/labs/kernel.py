"""Which kernel runs the lab: the host's, or Debian's UML kernel when the host lacks
what DMVPN needs. Each feature is probed by using it in a throwaway namespace, not by
reading config files, so a module that could load but is forbidden counts as missing.
"""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute

from . import netns

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
        netns.create_netns(name)
    except OSError as e:
        return KernelReport(os.uname().release, (f"netns ({e.strerror})",))
    try:
        with netns.inside(name):
            ipr = IPRoute()
            try:
                for kind, kw in (("veth", {"peer": "dkprobe1"}), ("gre", {"gre_local": "127.0.0.1"})):
                    try:
                        ipr.link("add", ifname="dkprobe0", kind=kind, **kw)
                        ipr.link("del", ifname="dkprobe0")
                    except Exception as e:  # noqa: BLE001 - any failure means "not usable"
                        missing.append(f"{kind} ({e})")
            finally:
                ipr.close()
            try:
                socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM).close()
            except OSError as e:
                missing.append(f"xfrm ({e.strerror})")
            if not _has_module("esp4"):
                missing.append("esp4")
            if not Path("/proc/net/netfilter/nfnetlink_log").exists() and not _has_module("nfnetlink_log"):
                missing.append("nfnetlink_log (NFLOG)")
    finally:
        netns.delete_netns(name)
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
