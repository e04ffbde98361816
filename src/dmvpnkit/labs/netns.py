"""The netns backend: one network namespace per node, built in-process over netlink.

Namespaces are created with unshare + bind mount from this process (no helper
fork per namespace: forks cost ~25 ms in the UML lab kernel), and every netlink
socket is opened while this thread sits in the node's namespace, so a socket stays
bound to its node. veth pairs are created inside one node with the peer placed
straight into the other, so no lab interface ever exists in the root namespace.

Names: the namespace of node `hub1` in lab `x` is `dk-x-hub1`; everything a lab owns
carries that prefix, which is how `reap()` finds leftovers of a crashed run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from pyroute2 import IPRoute

from .spec import Node, Topology

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 0x4000, 1 << 18
MNT_DETACH = 2
GRE_KEY = 0x2000        # key-present flag (GRE_KEY), big-endian on the wire as in the kernel
IPTABLES = "iptables-legacy"   # the UML kernel has no nft IPv4 tables

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str, arg: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what} failed: {os.strerror(e)}", arg)


def ns_prefix(lab: str) -> str:
    return f"dk-{lab}-"


@contextmanager
def inside(nsname: str | None) -> Iterator[None]:
    """Move this thread into a namespace for the duration of the block."""
    if nsname is None:
        yield
        return
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / nsname, os.O_RDONLY)
    try:
        _check(_libc.setns(target, CLONE_NEWNET), "setns", nsname)
        yield
    finally:
        _check(_libc.setns(saved, CLONE_NEWNET), "setns back", "root")
        os.close(saved)
        os.close(target)


def create_netns(nsname: str) -> None:
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    path = NETNS_DIR / nsname
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o444)
    os.close(fd)
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare", nsname)
        _check(_libc.mount(b"/proc/thread-self/ns/net", str(path).encode(), b"none", MS_BIND, None),
               "bind mount", str(path))
    except OSError:
        path.unlink(missing_ok=True)
        raise
    finally:
        _check(_libc.setns(saved, CLONE_NEWNET), "setns back", "root")
        os.close(saved)


def delete_netns(nsname: str) -> None:
    path = NETNS_DIR / nsname
    _libc.umount2(str(path).encode(), MNT_DETACH)
    path.unlink(missing_ok=True)


def list_netns(prefix: str = "") -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def pids_in(nsname: str) -> list[int]:
    """Processes whose network namespace is `nsname` (found by inode, like `ip netns pids`)."""
    try:
        st = os.stat(NETNS_DIR / nsname)
    except FileNotFoundError:
        return []
    want = f"net:[{st.st_ino}]"
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/net") == want:
                    pids.append(int(d))
            except OSError:
                continue
    return pids


def kill_all(pids: Sequence[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for p in pids:
            try:
                os.kill(p, sig)
                alive.append(p)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if _alive(p)]
            if alive:
                time.sleep(0.05)
        if not alive:
            return
        pids = alive


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):    # gone: before the open (ENOENT) or during the read (ESRCH)
        return False


def reap(prefix: str) -> list[str]:
    """Remove every namespace (and the processes in it) whose name starts with `prefix`."""
    names = list_netns(prefix)
    pids = [p for n in names for p in pids_in(n) if p != os.getpid()]
    kill_all(pids)
    for n in names:
        delete_netns(n)
    return names


class NetnsLab:
    """Builds a topology out of namespaces; owns them until `destroy()`."""

    def __init__(self, topo: Topology, lab: str):
        self.topo = topo
        self.prefix = ns_prefix(lab)
        self._ipr: dict[str, IPRoute] = {}

    def ns(self, node: str) -> str:
        return self.prefix + node

    def ipr(self, node: str) -> IPRoute:
        if node not in self._ipr:
            with inside(self.ns(node)):
                self._ipr[node] = IPRoute()
        return self._ipr[node]

    # ------------------------------------------------------------ bring-up
    def build(self) -> None:
        for name in self.topo.nodes:
            create_netns(self.ns(name))
        for link in self.topo.links:
            a = self.ipr(link.a)
            a.link("add", ifname=link.b, kind="veth",
                   peer={"ifname": link.a, "net_ns_fd": self.ns(link.b)})
        for node in self.topo.nodes.values():
            self._configure(node)

    def _configure(self, node: Node) -> None:
        ipr = self.ipr(node.name)
        self._sysctl(node.name, {"net/ipv4/ip_forward": "1" if node.role != "host" else "0",
                                 "net/ipv4/conf/all/rp_filter": "0",
                                 "net/ipv4/conf/default/rp_filter": "0"})
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        for iface in node.ifaces:
            idx = ipr.link_lookup(ifname=iface.name)[0]
            ipr.addr("add", index=idx, address=str(iface.address.ip), prefixlen=iface.address.network.prefixlen)
            ipr.link("set", index=idx, state="up")
        if node.gateway is not None:
            ipr.route("add", dst="0.0.0.0/0", gateway=str(node.gateway))
        if node.is_dmvpn or node.role == "peer":
            self._mgre(node)        # a peer's tunnel makes its kernel accept GRE it gets
        if node.role == "nat":
            self.run(node.name, [IPTABLES, "-t", "nat", "-A", "POSTROUTING", "-o", str(node.public_iface),
                                 "-j", "MASQUERADE"])

    def _mgre(self, node: Node) -> None:
        """`ip tunnel add gre1 mode gre key K ttl 64 dev ETH`: no remote (mGRE) and no
        local either, as FRR documents it: outer sources follow the NBMA interface's
        address, so renumbering that interface needs no change to the tunnel."""
        ipr = self.ipr(node.name)
        d = self.topo.dmvpn
        kw: dict = {}
        if d.gre_key is not None:
            kw = dict(gre_ikey=d.gre_key, gre_okey=d.gre_key, gre_iflags=GRE_KEY, gre_oflags=GRE_KEY)
        ipr.link("add", ifname="gre1", kind="gre", gre_ttl=64,
                 gre_link=ipr.link_lookup(ifname=node.nbma_iface)[0], **kw)
        idx = ipr.link_lookup(ifname="gre1")[0]
        ipr.addr("add", index=idx, address=str(node.tunnel), prefixlen=32)
        ipr.link("set", index=idx, state="up")
        # The hub forwards spoke-to-spoke traffic out the interface it came in on;
        # ICMP redirects there would race NHRP's own redirect (Traffic Indication).
        self._sysctl(node.name, {"net/ipv4/conf/gre1/send_redirects": "0",
                                 "net/ipv4/conf/all/send_redirects": "0"})

    def _sysctl(self, node: str, values: dict[str, str]) -> None:
        with inside(self.ns(node)):   # /proc/sys/net shows the opener's namespace
            for key, val in values.items():
                with open(f"/proc/sys/{key}", "w") as f:
                    f.write(val)

    # ------------------------------------------------------------ processes
    def popen(self, node: str, argv: Sequence[str], private_run: Path | None = None,
              **kw) -> subprocess.Popen:
        """Start `argv` in the node's namespace. With `private_run` it also gets a mount
        namespace of its own whose /run is that directory: for daemons whose pid file
        and sockets are compiled-in /run paths (charon)."""
        fd = os.open(NETNS_DIR / self.ns(node), os.O_RDONLY)

        def enter() -> None:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns", node)
            if private_run is None:
                return
            if _libc.unshare(CLONE_NEWNS) != 0:
                raise OSError(ctypes.get_errno(), "unshare", node)
            if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                raise OSError(ctypes.get_errno(), "mount --make-rprivate /", node)
            if _libc.mount(str(private_run).encode(), b"/run", None, MS_BIND, None) != 0:
                raise OSError(ctypes.get_errno(), "bind /run", str(private_run))
        try:
            return subprocess.Popen(list(argv), preexec_fn=enter, **kw)
        finally:
            os.close(fd)

    def run(self, node: str, argv: Sequence[str], check: bool = True, timeout: float = 60,
            **kw) -> subprocess.CompletedProcess:
        p = self.popen(node, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        out, err = p.communicate(timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{node}: {' '.join(argv)} exited {p.returncode}: {err.strip() or out.strip()}")
        return subprocess.CompletedProcess(argv, p.returncode, out, err)

    # ------------------------------------------------------------ state
    def counters(self, node: str, ifname: str) -> dict[str, int]:
        ipr = self.ipr(node)
        link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
        st = link.get("IFLA_STATS64")
        return {k: st[k] for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes")}

    # ------------------------------------------------------------ teardown
    def destroy(self) -> list[str]:
        for ipr in self._ipr.values():
            ipr.close()
        self._ipr.clear()
        return reap(self.prefix)


def running_labs() -> set[str]:
    return {n.split("-")[1] for n in list_netns("dk-") if n.count("-") >= 2}


__all__ = ["NetnsLab", "reap", "list_netns", "pids_in", "kill_all", "inside", "ns_prefix",
           "create_netns", "delete_netns", "running_labs"]
