"""What a lab left in the kernel it ran on, read from that kernel's own view: run it
where the lab ran (`python -m tests.labs.leftovers LAB` inside a UML guest, or on the
host). Prints one line per leftover; nothing when clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dmvpnkit.labs.backends.netns import list_netns


def in_other_netns() -> list[str]:
    """Processes outside the first network namespace (pid 1's): only lab nodes make others."""
    root = os.readlink("/proc/1/ns/net")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != root:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"process {pid} in another netns: {cmd.strip()[:120]}")
        except OSError:
            continue
    return found


def mininet_shells() -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(b"mininet:") for a in cmd):
            found.append(f"Mininet shell {pid}: {b' '.join(cmd).decode(errors='replace')[:120]}")
    return found


def of_lab(lab: str, names: set[str]) -> list[str]:
    prefix = f"dk-{lab}-"
    found = [f"netns {n}" for n in list_netns(prefix)]
    found += [f"mount {line.split()[1]}" for line in Path("/proc/mounts").read_text().splitlines()
              if prefix in line]
    for d in (Path("/run/dmvpnkit/mininet") / lab, *Path("/run/dmvpnkit/nodes").glob(f"{prefix}*")):
        if d.exists():
            found.append(f"state {d}")
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0]
        if ifname in names or "-eth" in ifname:
            found.append(f"interface {ifname} in the root namespace")
    rules = subprocess.run(["iptables-legacy", "-S"], capture_output=True, text=True).stdout.splitlines()
    rules += subprocess.run(["iptables-legacy", "-t", "nat", "-S"], capture_output=True, text=True).stdout.splitlines()
    found += [f"iptables rule in the root namespace: {r}" for r in rules if not r.startswith("-P ")]
    return found


def main(argv: list[str]) -> int:
    lab, names = argv[0], set(argv[1:])
    for line in of_lab(lab, names) + in_other_netns() + mininet_shells():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
