"""Named network namespaces: create, enter, name an existing one, list, reap.

Namespaces are created with unshare + bind mount from this process (no helper
fork per namespace: forks cost ~25 ms in the UML lab kernel). A namespace someone
else made (a Mininet host's, a container's) gets a name by bind-mounting its
/proc/<pid>/ns/net, so every backend's nodes are reached the same way.

Names: the namespace of node `hub1` in lab `x` is `dk-x-hub1`; everything a lab owns
carries that prefix, which is how `reap()` finds leftovers of a crashed run.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ...procs import kill_all

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 0x4000, 1 << 18
MNT_DETACH = 2

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


def name_netns(nsname: str, pid: int) -> None:
    """Give the network namespace of process `pid` the name `nsname`."""
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    path = NETNS_DIR / nsname
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o444)
    os.close(fd)
    if _libc.mount(f"/proc/{pid}/ns/net".encode(), str(path).encode(), b"none", MS_BIND, None) != 0:
        e = ctypes.get_errno()
        path.unlink(missing_ok=True)
        raise OSError(e, f"bind mount of /proc/{pid}/ns/net failed: {os.strerror(e)}", str(path))


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


def reap(prefix: str) -> list[str]:
    """Remove every namespace (and the processes in it) whose name starts with `prefix`."""
    names = list_netns(prefix)
    pids = [p for n in names for p in pids_in(n) if p != os.getpid()]
    kill_all(pids)
    for n in names:
        delete_netns(n)
    return names


def running_labs() -> set[str]:
    return {n.split("-")[1] for n in list_netns("dk-") if n.count("-") >= 2}


__all__ = ["reap", "list_netns", "pids_in", "kill_all", "inside", "ns_prefix", "create_netns",
           "name_netns", "delete_netns", "running_labs", "NETNS_DIR"]
