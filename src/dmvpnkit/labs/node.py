"""The Node command API: one interface for every node of every backend.

Everything above a backend (the underlay, implementation drivers, faults, the tap,
the scapy peer, the CLI, the cases) reaches a lab node only through this: run a
command, start a long-running process, a netlink handle, sysctls, a socket in the
node's network, where its run files live, the processes on it, a shell. A netns
node, a Mininet host and a containerlab container all answer it (munet's Commander
idea), so the same case runs unchanged on every backend.
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping, NoReturn, Protocol, Sequence, Union

from pyroute2 import IPRoute

# What subprocess accepts for a standard stream.
Stream = Union[int, IO[bytes], IO[str], None]


@dataclass(frozen=True)
class Completed:
    """A finished command: its argv, exit status and both streams."""

    argv: tuple[str, ...]
    rc: int
    out: str
    err: str


class CommandError(RuntimeError):
    """A command on a node exited non-zero; carries all of it as evidence."""

    def __init__(self, node: str, done: Completed):
        self.node = node
        self.argv = done.argv
        self.rc = done.rc
        self.out = done.out
        self.err = done.err
        detail = done.err.strip() or done.out.strip() or "(no output)"
        super().__init__(f"{node}: `{' '.join(done.argv)}` exited {done.rc}: {detail[-2000:]}")


class Node(Protocol):
    """A lab node as the harness sees it."""

    @property
    def name(self) -> str:
        """The topology's name for it (`spoke1`)."""

    @property
    def id(self) -> str:
        """Unique on this machine across labs (`dk-lab-spoke1`): daemons' path spaces."""

    @property
    def run_dir(self) -> Path:
        """The node's own directory for sockets and pid files, as the harness sees it
        (a container sees it at the same path)."""

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0,
            env: Mapping[str, str] | None = None, in_image: bool = False) -> Completed:
        """Run to completion; raise CommandError when `check` and it exits non-zero.
        `in_image`: with the node's own filesystem and tools (a container's image)
        rather than the harness's tools in the node's network; the same where nodes
        have no image."""

    def popen(self, argv: Sequence[str], *, stdin: Stream = subprocess.DEVNULL,
              stdout: Stream = subprocess.DEVNULL, stderr: Stream = subprocess.DEVNULL,
              env: Mapping[str, str] | None = None, private_run: Path | None = None,
              new_session: bool = False, in_image: bool = False) -> subprocess.Popen[bytes]:
        """Start a long-running process on the node and hand back its handle.
        `private_run`: the process gets a mount namespace of its own whose /run is
        that directory (for daemons with compiled-in /run paths: charon)."""

    def ipr(self) -> IPRoute:
        """A netlink socket bound to the node's network namespace (kept open)."""

    def sysctl(self, values: Mapping[str, str]) -> None:
        """Write `net/ipv4/...`-style keys of the node's network namespace."""

    def socket(self, family: int, type: int, proto: int = 0) -> socket.socket:
        """A socket opened in the node's network namespace."""

    def pids(self) -> list[int]:
        """Processes running on the node."""

    def exec(self, argv: Sequence[str]) -> NoReturn:
        """Replace this process with `argv` on the node (`lab exec`, `lab shell`)."""

    def close(self) -> None:
        """Release what the harness holds open on the node (netlink sockets)."""


def link_mac(node: Node, iface: str) -> str:
    """The hardware address of `iface` on `node`."""
    ipr = node.ipr()
    return str(ipr.get_links(ipr.link_lookup(ifname=iface)[0])[0].get_attr("IFLA_ADDRESS"))


__all__ = ["Node", "Completed", "CommandError", "Stream", "link_mac"]
