"""Backends on the kernel this test runs on (no daemons, no underlay: nodes and links
only): what they leave alone in the root namespace, how they fail without netem."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from dmvpnkit.labs import backend as backends
from dmvpnkit.labs import spec
from dmvpnkit.labs.impairment import Impairment, NoNetem
from dmvpnkit.labs.node import CommandError

pytestmark = pytest.mark.lab
TOPO = Path(__file__).parents[2] / "topologies"
ROOT_SYSCTLS = ("net/core/wmem_max", "net/core/rmem_max", "net/ipv4/tcp_rmem", "fs/file-max", "kernel/pty/max",
                "net/ipv4/neigh/default/gc_thresh3", "net/core/netdev_max_backlog")


def sysctls() -> dict[str, str]:
    return {k: Path("/proc/sys", k).read_text() for k in ROOT_SYSCTLS if Path("/proc/sys", k).exists()}


def root_links() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()}


@pytest.fixture(params=["netns", "mininet"])
def built(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[backends.Backend]:
    cls = backends.get(request.param)
    reason = cls.available()
    if reason:
        pytest.skip(reason)
    topo = spec.load(TOPO / "hub_2spoke.yaml")
    b = cls("t" + uuid.uuid4().hex[:8], topo, tmp_path)
    before = sysctls(), root_links()
    try:
        b.build()
        yield b
        assert (sysctls(), root_links()) == before, "the backend changed the root namespace"
    finally:
        b.destroy()
    assert b.running() == set() or b.lab not in b.running()


def test_nodes_are_wired_as_the_topology_says(built: backends.Backend) -> None:
    for link in built.topo.links:
        a, b = built.node(link.a).ipr(), built.node(link.b).ipr()
        assert a.link_lookup(ifname=link.b) and b.link_lookup(ifname=link.a), link
    assert built.node("spoke1").run(["ip", "-o", "link", "show", "inet"]).rc == 0
    with pytest.raises(CommandError, match="spoke1: `ip -o link show nothere` exited 1") as e:
        built.node("spoke1").run(["ip", "-o", "link", "show", "nothere"])
    assert e.value.rc == 1 and "nothere" in e.value.err


def test_impairment_is_netem_or_a_clear_error(built: backends.Backend) -> None:
    """Where the kernel has netem the qdisc is there afterwards; where it has not (this
    project's host kernel) the error names sch_netem."""
    try:
        built.impair("spoke1", "inet", Impairment(delay=10))
    except NoNetem as e:
        assert "sch_netem" in str(e) and "spoke1" in str(e), e
        return
    kinds = {q.get_attr("TCA_KIND") for q in built.node("spoke1").ipr().get_qdiscs()}
    assert "netem" in kinds, kinds
    built.impair("spoke1", "inet", None)
    assert "netem" not in {q.get_attr("TCA_KIND") for q in built.node("spoke1").ipr().get_qdiscs()}
