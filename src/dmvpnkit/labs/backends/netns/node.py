"""A node reached through a named network namespace: the Node API by setns.

The netns backend's nodes are such namespaces; so are Mininet's hosts once named
(backends.mininet) and containerlab's containers (`clab-<lab>-<node>`). Commands
start in the namespace from a preexec setns, so no helper process is forked (forks
cost ~25 ms in the UML lab kernel); netlink and other sockets are opened while this
thread sits in the namespace, so they stay bound to the node.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Sequence

from pyroute2 import IPRoute

from ...node import CommandError, Completed, Stream
from .namespaces import CLONE_NEWNET, CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_REC, NETNS_DIR, _libc, inside, \
    pids_in

RUN_ROOT = Path("/run/dmvpnkit/nodes")


@functools.lru_cache(maxsize=256)
def _which(cmd: str, path: str) -> str:
    """`cmd` found on `path` by the parent: the child searching PATH itself costs a
    failed execve per directory before the right one, ~20 ms each in the UML lab kernel."""
    return cmd if "/" in cmd else shutil.which(cmd, path=path) or cmd


class NamespaceNode:
    """Node API for the namespace `NETNS_DIR/<netns>`; commands use the harness's tools."""

    def __init__(self, name: str, netns: str, run_root: Path = RUN_ROOT):
        self._name = name
        self.netns = netns
        self._run_dir = run_root / netns
        self._ipr: IPRoute | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def id(self) -> str:
        return self.netns

    @property
    def run_dir(self) -> Path:
        return self._run_dir

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name} in {self.netns}>"

    # ------------------------------------------------------------ processes
    def _preexec(self, private_run: Path | None) -> tuple[int, Callable[[], None]]:
        """An open fd on the namespace and a preexec_fn entering it (and, with
        `private_run`, a mount namespace whose /run is that directory)."""
        try:
            fd = os.open(NETNS_DIR / self.netns, os.O_RDONLY)
        except FileNotFoundError:
            raise CommandError(self._name, Completed((), 127, "", f"namespace {self.netns} is gone")) from None
        node = self._name

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
        return fd, enter

    def popen(self, argv: Sequence[str], *, stdin: Stream = subprocess.DEVNULL,
              stdout: Stream = subprocess.DEVNULL, stderr: Stream = subprocess.DEVNULL,
              env: Mapping[str, str] | None = None, private_run: Path | None = None,
              new_session: bool = False, in_image: bool = False) -> subprocess.Popen[bytes]:
        kw: dict[str, Any] = dict(stdin=stdin, stdout=stdout, stderr=stderr,
                                  env=dict(env) if env is not None else None, start_new_session=new_session)
        argv = [_which(argv[0], (env or os.environ).get("PATH", os.defpath)), *argv[1:]]
        if private_run is None:
            # The child inherits this thread's namespace, and without a preexec_fn
            # Python spawns by vfork: ~70 ms in the UML lab kernel, where fork()ing a
            # pytest worker costs ~290 ms (benchmarks/bench_spawn.py).
            try:
                with inside(self.netns):
                    return subprocess.Popen(argv, **kw)
            except FileNotFoundError as e:
                if str(e.filename) != str(NETNS_DIR / self.netns):
                    raise
                raise CommandError(self._name, Completed((), 127, "", f"namespace {self.netns} is gone")) from None
        fd, enter = self._preexec(private_run)
        try:
            return subprocess.Popen(argv, preexec_fn=enter, **kw)
        finally:
            os.close(fd)

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0,
            env: Mapping[str, str] | None = None, in_image: bool = False) -> Completed:
        p = self.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            done = Completed(tuple(argv), -9, out.decode(errors="replace"),
                             err.decode(errors="replace") + f"\n(killed after {timeout:.0f} s)")
            raise CommandError(self._name, done) from None
        done = Completed(tuple(argv), p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and done.rc != 0:
            raise CommandError(self._name, done)
        return done

    def exec(self, argv: Sequence[str]) -> NoReturn:
        fd, enter = self._preexec(None)
        enter()
        os.close(fd)
        os.execvp(argv[0], list(argv))

    def pids(self) -> list[int]:
        return pids_in(self.netns)

    # ------------------------------------------------------------ network
    def ipr(self) -> IPRoute:
        if self._ipr is None:
            with inside(self.netns):
                self._ipr = IPRoute()
        return self._ipr

    def socket(self, family: int, type: int, proto: int = 0) -> socket.socket:
        with inside(self.netns):
            return socket.socket(family, type, proto)

    def sysctl(self, values: Mapping[str, str]) -> None:
        with inside(self.netns):   # /proc/sys/net shows the opener's namespace
            for key, val in values.items():
                with open(f"/proc/sys/{key}", "w") as f:
                    f.write(val)

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None


__all__ = ["NamespaceNode", "RUN_ROOT"]
