"""SIGKILL at any point of a pytest session leaves nothing on the host.

A session on this host runs its labs in UML guests it owns. Here a real session
(`conformance/dmvpn/test_phase3_redirect.py --phase 3`) is killed with SIGKILL at a
point of its run, found from what the session writes (its guest directory, lab.json's
state, the daemons' logs, a case's captures), and the host must come back to what it
was: no guest, supervisor or `linux.uml` process, lab namespace, interface, mount,
iptables rule or registry entry, with no help, or (when the supervisor was killed too)
after what the next session's start does (`reap_orphans`).

What is killed is listed at TARGETS. CI runs the short list; DMVPNKIT_KILL_MATRIX=full
runs every target at every point.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dmvpnkit.labs.implementations import frr
from dmvpnkit.labs.uml import GUEST_DIR, Guest, reap_orphans

from .conftest import REPO

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not (frr.FRR_LIB / "nhrpd").exists(), reason="Debian's FRR is not installed")]

CASES = "conformance/dmvpn/test_phase3_redirect.py"
REGISTRY = Path("/run/dmvpnkit/labs")


class Session:
    """A pytest session of the suite, started in its own process group: with xdist,
    each worker in a guest of its own (`pytest<pid>w<i>`), else all of it in `pytest<pid>`."""

    def __init__(self, report_dir: Path, workers: int):
        self.report_dir = report_dir
        # `--dist load`: every worker gets cases of the one module, so killing either
        # one crashes a case (the plugin's own scheduling gives a module to one worker).
        xdist = ["-n", str(workers), "--dist", "load"] if workers else ["-p", "no:xdist"]
        self.proc = subprocess.Popen([sys.executable, "-m", "pytest", CASES, "--phase", "3", *xdist,
                                      "--report-dir", str(report_dir), "-p", "no:cacheprovider", "-q"],
                                     cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.prefix = f"pytest{self.proc.pid}"

    def guests(self) -> list[Guest]:
        found = GUEST_DIR.glob(f"{self.prefix}*") if GUEST_DIR.is_dir() else []
        return [Guest(d.name) for d in found if d.name == self.prefix or d.name.startswith(f"{self.prefix}w")]

    def lab_json(self) -> dict:
        for f in (self.report_dir / "labs").glob("*/lab.json"):
            try:
                return json.loads(f.read_text())
            except ValueError:          # caught mid-write
                pass
        return {}

    def lab_dirs(self) -> list[Path]:
        return list((self.report_dir / "labs").glob("*"))

    def pids(self, name: str) -> list[int]:
        """Supervisors (supervisor.pid) or UML process groups (uml.pid) of its guests."""
        out = []
        for g in self.guests():
            try:
                out.append(int((g.dir / name).read_text()))
            except (OSError, ValueError):
                pass
        return out


POINTS: dict[str, Callable[[Session], bool]] = {
    "boot": lambda s: bool(s.pids("uml.pid")) and not all(g.sock.exists() for g in s.guests()),
    "topology": lambda s: s.lab_json().get("state") == "starting",
    "daemons": lambda s: any(d.glob("nodes/*/zebra.log") for d in s.lab_dirs()),
    "case": lambda s: s.lab_json().get("state") == "up" and any(
        p.name != "bringup" for d in s.lab_dirs() for p in (d / "pcaps").glob("*")),
    "teardown": lambda s: s.lab_json().get("state") == "stopping",
}
# pytest: the session's process group, as a CI timeout kills it (-n 2, README's way);
# sequential: the same without xdist (the whole session in one guest); worker: one
# xdist worker, inside its guest; guest: one guest's linux.uml processes; everything:
# the session's group and every guest supervisor at once.
TARGETS = ("pytest", "sequential", "worker", "guest", "everything")
SHORT = [("pytest", "boot"), ("pytest", "daemons"), ("pytest", "case"), ("pytest", "teardown"),
         ("sequential", "case"), ("worker", "case"), ("guest", "topology"), ("everything", "case")]
FULL = [(t, p) for t in TARGETS for p in POINTS if not (t == "worker" and p == "boot")]   # no worker yet
MATRIX = FULL if os.environ.get("DMVPNKIT_KILL_MATRIX") == "full" else SHORT


def host_state() -> dict[str, list[str]]:
    """What a lab could leave in the host's root namespace."""
    def out(argv: list[str]) -> list[str]:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return sorted(done.stdout.splitlines()) if done.returncode == 0 else [f"(exit {done.returncode})"]
    return {"netns": out(["ip", "netns", "list"]), "links": out(["ip", "-o", "-br", "link"]),
            "mounts": sorted(Path("/proc/mounts").read_text().splitlines()),
            "iptables": out(["iptables-legacy", "-S"]), "nat": out(["iptables-legacy", "-t", "nat", "-S"])}


def alive(pid: int | None, needle: bytes) -> bool:
    try:
        return pid is not None and needle in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def group_alive(pgid: int | None) -> bool:
    if pgid is None:
        return False
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("target,point", MATRIX, ids=[f"{t}-{p}" for t, p in MATRIX])
def test_sigkill_leaves_nothing_behind(target: str, point: str, report_dir: Path) -> None:
    before = host_state()
    s = Session(report_dir, workers=0 if target == "sequential" else 2)
    sups: list[int] = []
    umls: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while not POINTS[point](s):
            assert s.proc.poll() is None, f"the session ended ({s.proc.returncode}) before {point}: " \
                                          f"{s.proc.stdout.read().decode(errors='replace')[-2000:]}"
            assert time.monotonic() < deadline, f"the session never reached {point}"
            time.sleep(0.01)
        sups, umls = s.pids("supervisor.pid"), s.pids("uml.pid")
        assert sups and all(alive(p, b"dmvpnkit.labs.uml") for p in sups) and all(map(group_alive, umls))
        if target in ("pytest", "sequential", "everything"):
            os.killpg(s.proc.pid, signal.SIGKILL)
        if target == "everything":
            for p in sups:
                os.kill(p, signal.SIGKILL)
        if target == "worker":      # the execnet worker, from inside its guest: the oldest process with its
            #                         command line (the newest may be one it is forking)
            assert s.guests()[0].run(["pkill", "-KILL", "-o", "-f", "sys.stdin.readline"], stdout=io.BytesIO()) == 0
        if target == "guest":
            os.killpg(umls[0], signal.SIGKILL)
        rc = s.proc.wait(timeout=600)
        if target in ("worker", "guest"):   # the session goes on without it, and says which case crashed
            text = s.proc.stdout.read().decode(errors="replace")
            assert rc != 0 and "crashed" in text, text[-3000:]
        deadline = time.monotonic() + 30
        while any(alive(p, b"dmvpnkit.labs.uml") for p in sups) or any(map(group_alive, umls)):
            assert time.monotonic() < deadline, f"30 s after the kill: supervisors {sups}, linux.uml groups {umls}"
            time.sleep(0.1)
        if target == "everything":  # nobody left to remove their directories: the next session's start does
            left = s.guests()
            assert left and all(g.orphaned() for g in left)
            assert {g.lab for g in left} <= set(reap_orphans())
        assert s.guests() == [], [sorted(p.name for p in g.dir.iterdir()) for g in s.guests()]
        assert not list(REGISTRY.glob(f"{s.prefix}*"))
        assert host_state() == before
    finally:
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
        for g in s.guests():
            g.stop()
        s.proc.stdout.close()


def test_a_guest_without_an_owner_is_never_reaped(tmp_path: Path) -> None:
    """`lab up` guests have no owner and stay; an owner that is alive keeps its guest."""
    GUEST_DIR.mkdir(parents=True, exist_ok=True)
    mine = Guest(f"t-owner-{os.getpid()}")
    mine.dir.mkdir()
    try:
        (mine.dir / "owner").write_text(f"{os.getpid()} {Path(f'/proc/{os.getpid()}/stat').read_text().rsplit(')', 1)[1].split()[19]}\n")
        assert not mine.orphaned() and mine.lab not in reap_orphans()
        (mine.dir / "owner").write_text(f"{os.getpid()} 1\n")      # the pid now names another process
        assert mine.orphaned() and mine.lab in reap_orphans() and not mine.dir.exists()
        mine.dir.mkdir()
        assert not mine.orphaned() and mine.lab not in reap_orphans()
    finally:
        if mine.dir.exists():
            mine.stop()
