"""nhrpd's kernel notifications (`Notifications`): route changes, what wakes its
`--learn-routes` instead of a timer, must include a nexthop object replaced under a
route (zebra's way of moving a route, which sends no route notification), and nothing
when nothing changed; neighbour notifications must each wake the loop, also the second
of a burst (pyroute2's IPRoute kept that one in its own buffer until the next one came:
a phase 2 neighbour miss waited a second). Run in a network namespace of its own
(`unshare -n`): the host kernel has nexthop objects and veth, and nothing of the host's
routing is touched."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")

SETUP = textwrap.dedent("""
    import select, subprocess
    from dmvpnkit.nhrpd import linux

    def ip(*args):
        subprocess.run(["ip", *args], check=True)

    def seen(events):
        # The kernel queues a notification before `ip` exits; half a second bounds "none".
        return events.drain() if select.select([events], [], [], 0.5)[0] else []

    ip("link", "set", "lo", "up")
    ip("link", "add", "t0", "type", "veth", "peer", "name", "t1")
    ip("link", "set", "t0", "up")
    ip("link", "set", "t1", "up")           # a nexthop needs its device's carrier
    ip("addr", "add", "10.9.0.1/24", "dev", "t0")
""")

ROUTES = SETUP + textwrap.dedent("""
    rc = linux.route_changes()
    seen(rc)                                # the address's own routes
    ip("nexthop", "add", "id", "5", "via", "10.9.0.2", "dev", "t0")
    print("nexthop-add", bool(seen(rc)))
    ip("route", "add", "10.8.0.0/24", "nhid", "5")
    print("route-add", bool(seen(rc)))
    print("quiet", bool(seen(rc)))
    ip("nexthop", "replace", "id", "5", "via", "10.9.0.3", "dev", "t0")
    print("nexthop-replace", bool(seen(rc)))
    rc.close()
""")

NEIGHBOURS = SETUP + textwrap.dedent("""
    ev = linux.Notifications(linux.RTMGRP_NEIGH)
    subprocess.run(["ip", "-batch", "-"], check=True, text=True, input="".join(
        f"neigh add 10.9.0.{i} lladdr 02:00:00:00:00:0{i} dev t0\\n" for i in (5, 6, 7)))
    got = []
    while select.select([ev], [], [], 0.5)[0]:
        got += [m.get_attr("NDA_DST") for m in ev.drain() if m.get("event") == "RTM_NEWNEIGH"]
    print(" ".join(got))
    ev.close()
""")


def run(script: str) -> str:
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_route_changes_sees_routes_and_nexthops() -> None:
    out = run(ROUTES)
    seen = dict(line.split() for line in out.splitlines())
    assert seen == {"nexthop-add": "True", "route-add": "True", "quiet": "False", "nexthop-replace": "True"}, out


def test_every_neighbour_notification_of_a_burst_is_read_when_it_arrives() -> None:
    """Three neighbours added in one burst: select() wakes for what is unread, and
    drain() hands over all three, none left in a buffer select() cannot see."""
    assert run(NEIGHBOURS).split() == ["10.9.0.5", "10.9.0.6", "10.9.0.7"]
