"""`RouteChanges`, what wakes nhrpd's `--learn-routes` instead of a timer: it must see a
route change and a nexthop object replaced under a route (zebra's way of moving a
route, which sends no route notification), and nothing when nothing changed. Run in a
network namespace of its own (`unshare -n`): the host kernel has nexthop objects and
veth, and nothing of the host's routing is touched."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import select, subprocess
    from dmvpnkit.nhrpd.linux import RouteChanges

    def ip(*args):
        subprocess.run(["ip", *args], check=True)

    def seen():
        # The kernel queues a notification before `ip` exits; half a second bounds "none".
        return bool(select.select([rc], [], [], 0.5)[0]) and rc.drain()

    ip("link", "set", "lo", "up")
    ip("link", "add", "t0", "type", "veth", "peer", "name", "t1")
    ip("link", "set", "t0", "up")
    ip("link", "set", "t1", "up")           # a nexthop needs its device's carrier
    ip("addr", "add", "10.9.0.1/24", "dev", "t0")
    rc = RouteChanges()
    seen()                                  # the address's own routes
    ip("nexthop", "add", "id", "5", "via", "10.9.0.2", "dev", "t0")
    print("nexthop-add", seen())
    ip("route", "add", "10.8.0.0/24", "nhid", "5")
    print("route-add", seen())
    print("quiet", seen())
    ip("nexthop", "replace", "id", "5", "via", "10.9.0.3", "dev", "t0")
    print("nexthop-replace", seen())
    rc.close()
""")


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_route_changes_sees_routes_and_nexthops() -> None:
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    seen = dict(line.split() for line in done.stdout.splitlines())
    assert seen == {"nexthop-add": "True", "route-add": "True", "quiet": "False", "nexthop-replace": "True"}, \
        done.stdout
