"""Stopping processes the lab started: politely first, then for sure."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Sequence


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


__all__ = ["kill_all"]


def pids_from_files(files: Iterable[Path | str], running: Iterable[int]) -> list[int]:
    """The pids that pid files name and that still run among `running` (a stale pid
    file may name someone else by now)."""
    alive = set(running)
    pids = []
    for f in files:
        try:
            pid = int(Path(f).read_text().strip())
        except (OSError, ValueError):
            continue
        if pid in alive:
            pids.append(pid)
    return pids
