"""IPv6 over the overlay, the NBMA staying IPv4 (dual stack, as FRR's `ipv6 nhrp` and
Cisco's IPv6 DMVPN run): NHRP packets about IPv6 addresses carry ar$pro.type 0x86DD
and 16-byte protocol addresses; registration, the phase 3 redirect, resolution and the
shortcut work for IPv6 traffic as they do for IPv4."""

from __future__ import annotations

from typing import Any

import pytest

from dmvpnkit.capture import expect, expect_all, expect_none, expect_reply

from ..conftest import _capture, bringup, nbma, ping, wait_quietly

PRO_IPV6, AFN_IPV4 = 0x86DD, 1
# A dual-stack overlay is routed statically (the spec refuses it with BGP or OSPF).
pytestmark = [pytest.mark.topology("hub_2spoke", ipv6=True), pytest.mark.routing("static")]


def tunnel6(lab: Any, node: str) -> str:
    return str(lab.topo.nodes[node].tunnel6)


def lan_host6(lab: Any, spoke: str) -> str:
    """A spoke's LAN host's IPv6 address (`spoke2` -> fd00:10:0:102::10)."""
    return str(lab.topo.nodes[f"{spoke}_h"].iface(spoke).address6.ip)


def registered6(lab: Any) -> bool:
    """hub1 holds a neighbour entry for every spoke's IPv6 tunnel address: what any
    Linux NHRP implementation installs to send to a registered spoke (as `Lab.registered`
    reads it for implementations without a cache view)."""
    out = lab.node("hub1").run(["ip", "-6", "neigh", "show", "dev", "gre1"], check=False).out
    have = {line.split()[0] for line in out.splitlines() if " lladdr " in line}
    return all(tunnel6(lab, s.name) in have for s in lab.topo.spokes)


def shortcut6(lab: Any) -> bool:
    """spoke1's kernel routes spoke2's IPv6 LAN host via spoke2."""
    out = lab.node("spoke1").run(["ip", "-6", "route", "get", lan_host6(lab, "spoke2")], check=False).out
    return f" via {tunnel6(lab, 'spoke2')} " in out


# Registration is resent within the back-off's first steps (1, 2, 4 s) when lost; FRR
# registers each family on its own timer.
REGISTERED_WITHIN = 10.0
SHORTCUT_WITHIN = 10.0      # as conftest.SHORTCUT_WITHIN: indication batching, resolution


@pytest.fixture(scope="module")
def redirected6(lab: Any) -> dict[str, Any]:
    """spoke1's LAN host pings spoke2's over IPv6: through the hub first, then (once
    spoke1 holds the shortcut) a second, faster burst."""
    wait_quietly("every spoke registered its IPv6 address at hub1", lambda: registered6(lab), REGISTERED_WITHIN)
    with _capture(lab, "ipv6_redirect") as cap:
        first = ping(lab, "spoke1_h", lan_host6(lab, "spoke2"), 5, 0.5)
        wait_quietly("spoke1's IPv6 shortcut to spoke2", lambda: shortcut6(lab), SHORTCUT_WITHIN)
        later = ping(lab, "spoke1_h", lan_host6(lab, "spoke2"), 10, 0.1)
        return {"first": first, "later": later, "timeline": cap.timeline()}


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_spoke_registers_its_ipv6_address(lab: Any) -> None:
    """Each spoke registers its IPv6 tunnel address with the hub in a Registration
    Request of ar$pro.type 0x86DD from its IPv4 NBMA address, for the whole address
    (prefix 128, or 0xFF with the U bit), and the hub accepts it and binds it."""
    wait_quietly("every spoke registered its IPv6 address at hub1", lambda: registered6(lab), REGISTERED_WITHIN)
    tl = bringup(lab)
    for spoke in ("spoke1", "spoke2"):
        req = expect(tl, f"{spoke}'s IPv6 Registration Request at hub1", node="hub1", op="registration-request",
                     src=nbma(lab, spoke), pro_type=PRO_IPV6, src_proto=tunnel6(lab, spoke))
        m = req.nhrp
        assert m.afn == AFN_IPV4 and m.src_nbma == nbma(lab, spoke), f"the NBMA side is not {spoke}'s IPv4:\n{req}"
        assert m.cies and m.cies[0].prefix_len in (128, 0xFF), f"prefix /{m.cies[0].prefix_len if m.cies else '-'}"
        reply = expect_reply(tl, req)
        assert reply.nhrp.pro_type == PRO_IPV6 and reply.nhrp.cies and reply.nhrp.cies[0].code == 0, \
            f"hub1 did not accept {spoke}'s IPv6 registration:\n{reply}"
    cache = lab.driver.cache("hub1")
    bound = {e.protocol: e.nbma for e in cache if e.type == "dynamic"}
    assert all(bound.get(tunnel6(lab, s)) == nbma(lab, s) for s in ("spoke1", "spoke2")), \
        f"hub1's cache does not bind each spoke's IPv6 address at its NBMA address: {cache}"


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_protocol_type_matches_the_protocol_addresses(lab: Any, redirected6: dict[str, Any]) -> None:
    """ar$pro.type names the protocol of the packet's protocol addresses (5.1): 0x86DD
    with IPv6 ones, 0x0800 with IPv4 ones; ar$afn is IPv4's (1) in both, the NBMA's."""
    for tl in (bringup(lab), redirected6["timeline"]):
        expect_none(tl, "an NHRP packet whose ar$pro.type is not its protocol addresses' family", lambda e: (
            e.nhrp is not None and any(a and ((":" in a) != (e.nhrp.pro_type == PRO_IPV6))
                                       for a in (e.nhrp.src_proto, e.nhrp.dst_proto))))
        expect_none(tl, "an NHRP packet whose ar$afn is not IPv4's",
                    lambda e: e.nhrp is not None and e.nhrp.afn != AFN_IPV4)


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "traffic-indication", "MUST")
def test_hub_indicates_hairpinned_ipv6_traffic(lab: Any, redirected6: dict[str, Any]) -> None:
    """IPv6 traffic hairpinned through the hub gets spoke1 a Traffic Indication of
    ar$pro.type 0x86DD carrying the triggering IPv6 packet."""
    ti = expect(redirected6["timeline"], "an IPv6 Traffic Indication at spoke1", node="spoke1",
                op="traffic-indication", pro_type=PRO_IPV6)
    assert ti.src == nbma(lab, "hub1"), f"the indication did not come from hub1's NBMA address:\n{ti}"
    inner = ti.nhrp.inner
    src, dst = (lab.topo.nodes[f"{s}_h"].iface(s).address6.ip.packed for s in ("spoke1", "spoke2"))
    assert len(inner) >= 40 and inner[0] >> 4 == 6 and inner[8:24] == src and inner[24:40] == dst, \
        f"the indication does not carry the triggering IPv6 packet: {inner[:40].hex()}"


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "resolution", "MUST")
def test_spoke_resolves_the_ipv6_destination(lab: Any, redirected6: dict[str, Any]) -> None:
    """After the indication spoke1 resolves the IPv6 destination; the reply (same
    request ID) names spoke2's NBMA and IPv6 tunnel address for a prefix covering it."""
    tl, target = redirected6["timeline"], lan_host6(lab, "spoke2")
    ti = expect(tl, "an IPv6 Traffic Indication at spoke1", node="spoke1", op="traffic-indication",
                pro_type=PRO_IPV6)
    req = expect(tl, f"spoke1's Resolution Request for {target}", node="spoke1", op="resolution-request",
                 direction="out", dst_proto=target, pro_type=PRO_IPV6, after=ti.ts)
    reply = expect_reply(tl, req)
    cies = reply.nhrp.cies
    assert cies and cies[0].code == 0, f"negative or empty Resolution Reply:\n{reply}"
    assert (cies[0].client_nbma, cies[0].client_proto) == (nbma(lab, "spoke2"), tunnel6(lab, "spoke2")), cies
    assert 64 <= cies[0].prefix_len <= 128, f"prefix /{cies[0].prefix_len} does not cover spoke2's IPv6 LAN host"


@pytest.mark.phases(3)
@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_later_ipv6_data_goes_spoke_to_spoke(lab: Any, redirected6: dict[str, Any]) -> None:
    """Once resolved, IPv6 data goes from spoke1 to spoke2 directly: the later burst
    arrives at spoke2 from spoke1's NBMA address, and none of it crosses the hub."""
    assert redirected6["later"].lossless, redirected6["later"]
    tl = redirected6["timeline"]
    last = expect_all(tl, "IPv6 Resolution Replies", op="resolution-reply", pro_type=PRO_IPV6)[-1]
    expect_none(tl, "IPv6 data crossing the hub once the shortcut is up", node="hub1", data="icmp6",
                after=last.ts + 1.0)
    expect_all(tl, "the later IPv6 burst arriving at spoke2 straight from spoke1", at_least=10, node="spoke2",
               data="icmp6 type 128", src=nbma(lab, "spoke1"))
