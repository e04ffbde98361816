"""What starting one command on a lab node costs, in the lab kernel, by spawn path.

    .venv/bin/python benchmarks/bench_spawn.py [--runs 20] [--resident-mb 150]

A netns node starts a command either from the calling thread's namespace (vfork:
Python's default without a preexec_fn) or through a preexec_fn that enters the
namespace (fork, needed where a daemon gets a mount namespace of its own). In the UML
lab kernel fork() copies the parent's page tables by ptrace round trips, so its cost
grows with the parent's size: a pytest worker is ~140 MB resident. Either way the
node resolves the command on PATH itself (a child searching PATH pays a failed execve
per directory). Prints ms per `true` for each path. Moves itself into a UML guest where the host kernel lacks GRE.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(runs: int, resident_mb: int) -> None:
    from dmvpnkit.labs.backends.netns.namespaces import create_netns, delete_netns
    from dmvpnkit.labs.backends.netns.node import NamespaceNode
    ballast = [bytearray(4096) for _ in range(resident_mb * 256)]    # a worker's resident pages
    name = f"bench-spawn-{os.getpid()}"
    create_netns(name)
    node = NamespaceNode("bench", name, run_root=Path("/tmp"))
    private = Path(f"/tmp/{name}")
    private.mkdir()
    try:
        for label, kw in (("vfork (calling thread's namespace)", {}),
                          ("fork (preexec_fn, private /run)", {"private_run": private})):
            times = []
            for _ in range(runs):
                t = time.monotonic()
                node.popen(["true"], **kw).wait()
                times.append(time.monotonic() - t)
            print(f"{label:<38} median {statistics.median(times) * 1000:6.0f} ms, "
                  f"max {max(times) * 1000:6.0f} ms ({runs} runs, {len(ballast) // 256} MB ballast)", flush=True)
    finally:
        private.rmdir()
        delete_netns(name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--resident-mb", type=int, default=150)
    args = ap.parse_args()
    from dmvpnkit.labs import kernel
    if kernel.choose("auto") == "uml":
        from dmvpnkit.labs.uml import Guest
        guest = Guest(f"bench-spawn{os.getpid()}")
        guest.start(owner=os.getpid())
        try:
            return guest.run([sys.executable, __file__, "--runs", str(args.runs), "--resident-mb",
                              str(args.resident_mb)], cwd=str(ROOT), env=dict(os.environ))
        finally:
            guest.stop()
    measure(args.runs, args.resident_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
