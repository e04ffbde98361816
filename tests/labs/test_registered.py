"""Bring-up convergence: `Lab.registered()` (the hub has every spoke: required) and
`Lab.unanswered()` (each spoke has taken its Registration Reply: waited for, briefly).
The hub may list a spoke while its reply is still in flight (150 ms in the high-RTT
lab); the bring-up capture ended there held the request but no reply at the spoke. A
spoke that never takes its reply is for the cases to judge, not a lab ERROR. Views
stand in for the implementations here: what is tested is the harness's reading of them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dmvpnkit.labs import spec
from dmvpnkit.labs.implementations.frr import nhs_entry
from dmvpnkit.labs import lab as labmod
from dmvpnkit.labs.lab import ConvergenceTimeout, Lab
from dmvpnkit.labs.views import CacheEntry, NhsEntry

REPO = Path(__file__).parents[2]


@dataclass
class Views:
    views: tuple[str, ...]


@dataclass
class Fixed:
    """A lab's views, as given: the hub's cache, and per spoke its NHS table."""
    hub_cache: list[CacheEntry]
    nhs_of: dict[str, list[NhsEntry]]
    offered: tuple[str, ...] = ("cache", "nhs")
    ipsec: None = field(default=None)

    def of(self, node: str) -> Views:
        return Views(self.offered)

    def cache(self, node: str) -> list[CacheEntry]:
        return self.hub_cache

    def nhs(self, node: str) -> list[NhsEntry]:
        return self.nhs_of[node]

    def unrouted(self) -> dict[str, list[str]]:
        """`Lab.routed()`: every LAN routed into the tunnel."""
        return {}


def hub_2spoke() -> Lab:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    return Lab(name="regtest", topo=topo, lab_dir=Path("/nonexistent"), impl={"hub": "nhrpd", "spoke": "nhrpd"},
               phase=3)


def given(lab: Lab, views: Fixed) -> Lab:
    lab.driver = views      # type: ignore[assignment]  # the cached property, given instead of built
    lab.routed = views.unrouted     # type: ignore[method-assign]  # the kernels' routes, given too
    return lab


def entries(lab: Lab) -> list[CacheEntry]:
    return [CacheEntry(protocol=str(s.tunnel), nbma=str(s.nbma), claimed_nbma=str(s.nbma), type="dynamic",
                       used=False, interface="gre1") for s in lab.topo.spokes]


def nhs(lab: Lab, learnt: bool) -> list[NhsEntry]:
    hub = lab.topo.hubs[0]
    return [NhsEntry(interface="gre1", fqdn="dynamic", nbma=str(hub.nbma), protocol=str(hub.tunnel) if learnt else "")]


def test_a_spoke_counts_once_it_has_the_reply() -> None:
    lab = hub_2spoke()
    given(lab, Fixed(entries(lab), {"spoke1": nhs(lab, True), "spoke2": nhs(lab, False)}))
    assert lab.registered() == {}                           # in hub1's cache,
    assert lab.unanswered() == {"hub1": ["spoke2"]}         # reply not yet at spoke2
    given(lab, Fixed(entries(lab), {"spoke1": nhs(lab, True), "spoke2": nhs(lab, True)}))
    assert lab.unanswered() == {}


def test_the_hub_side_still_decides() -> None:
    lab = hub_2spoke()
    given(lab, Fixed(entries(lab)[:1], {"spoke1": nhs(lab, True), "spoke2": nhs(lab, True)}))
    assert lab.registered() == {"hub1": ["spoke2"]}


def test_without_an_nhs_view_the_hub_side_alone() -> None:
    lab = hub_2spoke()
    given(lab, Fixed(entries(lab), {}, offered=("cache",)))
    assert lab.registered() == {} and lab.unanswered() == {}


def test_frr_nhs_not_answered_yet_is_not_registered() -> None:
    """FRR 8.4's `show ip nhrp nhs json` for one NHS that answered and one that has not
    (as printed in a lab, spoke1 given a second NHS at an address nobody holds)."""
    lab = hub_2spoke()
    hub = lab.topo.hubs[0]
    rows = [{"interface": "gre1", "fqdn": str(hub.nbma), "nbma": str(hub.nbma), "protocol": "(unspec)"},
            {"interface": "gre1", "fqdn": "172.16.0.99", "nbma": "172.16.0.99", "protocol": "(unspec)"}]
    pending = [nhs_entry(r) for r in rows]
    assert [e.protocol for e in pending] == ["", ""]
    given(lab, Fixed(entries(lab), {"spoke1": pending, "spoke2": nhs(lab, True)}))
    assert lab.unanswered() == {"hub1": ["spoke1"]}
    rows[0]["protocol"] = str(hub.tunnel)
    given(lab, Fixed(entries(lab), {"spoke1": [nhs_entry(r) for r in rows], "spoke2": nhs(lab, True)}))
    assert lab.unanswered() == {}


@dataclass
class Answering(Fixed):
    """spoke2 takes its reply at the `at`-th look at its NHS table."""
    at: int = 3
    looks: int = 0

    def nhs(self, node: str) -> list[NhsEntry]:
        if node == "spoke2":
            self.looks += 1
            return self.nhs_of["spoke1"] if self.looks >= self.at else []
        return self.nhs_of[node]


def test_bring_up_waits_for_the_reply_but_never_fails_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labmod, "ANSWER_WITHIN", 1.0)
    lab = hub_2spoke()
    views = Answering(entries(lab), {"spoke1": nhs(lab, True)})
    given(lab, views)
    lab.wait_converged(timeout=1.0)
    assert views.looks == views.at                          # waited until spoke2 had it, no longer
    given(lab, Fixed(entries(lab), {"spoke1": nhs(lab, True), "spoke2": nhs(lab, False)}))
    t = time.monotonic()
    lab.wait_converged(timeout=1.0)                         # never answered: the cases judge it
    assert time.monotonic() - t >= 1.0
    given(lab, Fixed(entries(lab)[:1], {"spoke1": nhs(lab, True), "spoke2": nhs(lab, True)}))
    with pytest.raises(ConvergenceTimeout, match="spoke2"):
        lab.wait_converged(timeout=0.5)                     # the hub lacks spoke2: the lab did not come up


@dataclass
class Routing(Fixed):
    """hub1 routes spoke2's LAN from the `at`-th look at the kernels' routes."""
    at: int = 3
    looks: int = 0

    def unrouted(self) -> dict[str, list[str]]:
        self.looks += 1
        return {} if self.looks >= self.at else {"hub1": ["10.1.2.0/24"]}


def test_bring_up_waits_for_static_routes_but_never_fails_on_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """FRR's zebra installs a hub's static route to a spoke's LAN only once nhrpd's host
    route resolves its next hop, after registration: a first ping sent before that left
    the hub by its default route."""
    monkeypatch.setattr(labmod, "STATIC_ROUTED_WITHIN", 1.0)
    lab = hub_2spoke()
    views = Routing(entries(lab), {"spoke1": nhs(lab, True), "spoke2": nhs(lab, True)})
    given(lab, views)
    lab.wait_converged(timeout=1.0)
    assert views.looks == views.at                          # waited until hub1 had it, no longer
    views.at, views.looks = 10**6, 0
    t = time.monotonic()
    lab.wait_converged(timeout=1.0)                         # never routed: the cases judge it
    assert time.monotonic() - t >= 1.0
