"""dmvpnkit.capture: pcap reading, the merged timeline, pairing and expect_* messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.l2 import GRE, CookedLinux, Ether
from scapy.utils import wrpcap

from dmvpnkit.capture import ExpectationFailed, Timeline, expect, expect_all, expect_none, expect_reply
from dmvpnkit.capture.pcap import PcapError
from dmvpnkit.capture.timeline import MACS_FILE, BadMatch
from dmvpnkit.cli.main import main
from dmvpnkit.nhrp import build

DATA = Path(__file__).parent.parent / "nhrp" / "data"
HUB, SPOKE = "172.16.0.2", "172.16.0.6"
HUB_MAC, SPOKE_MAC = "02:00:00:00:00:02", "02:00:00:00:00:06"
NAMES = {HUB: "hub1", SPOKE: "spoke1"}


def frame(nhrp, src: str, dst: str, src_mac: str, ts: float):
    p = Ether(src=src_mac, dst="02:00:00:00:00:ff") / IP(src=src, dst=dst) / GRE(key_present=1, key=42) / nhrp
    p.time = ts
    return p


def registration(rid: int):
    return build.registration_request(SPOKE, "10.255.0.11", "10.255.0.11", rid, holding_time=60)


def reply(rid: int):
    return build.registration_reply(SPOKE, "10.255.0.11", "10.255.0.1", rid, holding_time=60)


@pytest.fixture
def lab_pcaps(tmp_path: Path) -> Path:
    """spoke1 registers twice (the second is never answered); both ends captured."""
    req1, rep1, req2 = registration(1), reply(1), registration(2)
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [
        frame(req1, SPOKE, HUB, SPOKE_MAC, 10.0), frame(rep1, HUB, SPOKE, HUB_MAC, 10.2),
        frame(req2, SPOKE, HUB, SPOKE_MAC, 30.0)])
    data = Ether(src=SPOKE_MAC) / IP(src=SPOKE, dst=HUB) / GRE(key_present=1, key=42) / \
        IP(src="10.1.1.10", dst="10.1.2.10") / ICMP()
    data.time = 20.0
    wrpcap(str(tmp_path / "hub1__inet.pcap"), [
        frame(req1, SPOKE, HUB, SPOKE_MAC, 10.1), frame(rep1, HUB, SPOKE, HUB_MAC, 10.15), data])
    (tmp_path / MACS_FILE).write_text(json.dumps({"spoke1__inet": SPOKE_MAC, "hub1__inet": HUB_MAC}))
    return tmp_path


def test_merged_in_time_order_with_direction(lab_pcaps: Path) -> None:
    tl = Timeline.from_dir(lab_pcaps, NAMES)
    assert [e.ts for e in tl] == sorted(e.ts for e in tl) and len(tl) == 6
    assert [(e.node, e.direction) for e in tl.where(op="registration-request")] == \
        [("spoke1", "out"), ("hub1", "in"), ("spoke1", "out")]
    assert tl.where(data="icmp type 8")[0].data == "icmp type 8 10.1.1.10>10.1.2.10"
    assert "172.16.0.6(spoke1)>172.16.0.2(hub1)" in tl.format()


def test_direction_follows_the_mac_not_the_address(lab_pcaps: Path) -> None:
    """A renumbered node's new address is in no address book; its MAC still is its own."""
    tl = Timeline.from_dir(lab_pcaps, {})
    assert {e.direction for e in tl.where(node="spoke1", op="registration-request")} == {"out"}


def test_pairs_requests_with_replies(lab_pcaps: Path) -> None:
    pairs = Timeline.from_dir(lab_pcaps, NAMES).pairs()
    at_spoke = [p for p in pairs if p.request.node == "spoke1"]
    assert [(p.request.nhrp.request_id, p.reply is not None) for p in at_spoke] == [(1, True), (2, False)]
    assert at_spoke[0].rtt == pytest.approx(0.2)


def test_expect_helpers_show_the_timeline(lab_pcaps: Path) -> None:
    tl = Timeline.from_dir(lab_pcaps, NAMES)
    assert expect(tl, "a request", op="registration-request", request_id=2).ts == 30.0
    assert len(expect_all(tl, "requests", at_least=3, op="registration-request")) == 3
    unanswered = tl.where(node="spoke1", request_id=2)[0]
    with pytest.raises(ExpectationFailed) as e:
        expect_reply(tl, unanswered)
    assert "=> " in str(e.value) and "registration-request id=2" in str(e.value)
    with pytest.raises(ExpectationFailed) as e:
        expect_none(tl, "data through the hub", node="hub1", data="icmp")
    assert e.value.mark is not None and e.value.mark.data.startswith("icmp")
    with pytest.raises(ExpectationFailed, match="no packet matched .*op='purge-request'"):
        expect(tl, "a purge", op="purge-request")


@pytest.mark.parametrize("match, why", [
    ({"op": "registration-requst"}, "not an NHRP op"),
    ({"op": 9}, "not an NHRP op"),
    ({"reqest_id": 2}, "'reqest_id' is neither an event field"),
    ({"request_id": "2"}, "a str, where the field holds int"),
    ({"after": "30"}, "a str, where the field holds int or float"),
    ({"gre": 1}, "a int, where the field holds bool"),
    ({"direction": "outbound"}, "one of 'in', 'out', '?'"),
])
def test_a_match_that_can_never_hold_is_an_error(lab_pcaps: Path, match: dict, why: str) -> None:
    """A misspelt op or field would match nothing, and expect_none would pass without
    testing anything: every helper refuses it, on a full timeline and on an empty one."""
    tl = Timeline.from_dir(lab_pcaps, NAMES)
    for timeline in (tl, Timeline([], NAMES)):
        for helper in (expect, expect_all, expect_none):
            with pytest.raises(BadMatch, match=why):
                helper(timeline, "a probe", **match)
        with pytest.raises(BadMatch, match=why):
            timeline.where(**match)
    expect_none(tl, "a purge", op="purge-request", direction="out", after=0, gre=True)  # all valid


def test_undecodable_nhrp_is_an_event_with_its_error(tmp_path: Path) -> None:
    raw = bytes(registration(1))[:30]            # cut inside the mandatory part
    p = Ether() / IP(src=SPOKE, dst=HUB) / GRE(proto=0x2001) / raw
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [p])
    (e,) = Timeline.from_dir(tmp_path)
    assert e.nhrp is None and "offset" in e.error and e.raw == raw


def test_sll_captures_carry_their_direction(tmp_path: Path) -> None:
    out = CookedLinux(pkttype=4, proto=0x0800) / IP(src=SPOKE, dst=HUB) / GRE() / registration(1)
    inn = CookedLinux(pkttype=0, proto=0x0800) / IP(src=HUB, dst=SPOKE) / GRE() / reply(1)
    wrpcap(str(tmp_path / "spoke1__any.pcap"), [out, inn])
    assert [e.direction for e in Timeline.from_dir(tmp_path)] == ["out", "in"]


def test_real_frr_captures_pair_up() -> None:
    tl = Timeline.from_pcaps(sorted(DATA.glob("*.pcap")))
    assert tl.where(op="traffic-indication") and not tl.where(lambda e: bool(e.error))
    answered = [p for p in tl.pairs() if p.reply is not None]
    assert {p.request.nhrp.op for p in answered} == {"registration-request", "resolution-request"}


@pytest.mark.parametrize("content, why", [
    (b"\x0a\x0d\x0d\x0a" + b"\0" * 40, "pcapng section header at offset 0: byte-order magic 00000000"),
    (b"GIF89a" + b"\0" * 40, "not a pcap file"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "shorter than a pcap file header"),
])
def test_bad_capture_files_are_named(tmp_path: Path, content: bytes, why: str) -> None:
    f = tmp_path / "x__y.pcap"
    f.write_bytes(content)
    with pytest.raises(PcapError, match=f"{f}.*{why}"):
        Timeline.from_pcaps([f])


def test_decode_cli(lab_pcaps: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(lab_pcaps), "--nhrp", "--node", "hub1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("hub1" in x and "registration" in x for x in lines)
    assert main(["decode", str(lab_pcaps / "spoke1__inet.pcap"), "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["nhrp"]["request_id"] for e in events] == [1, 1, 2]


def test_decode_cli_names_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", str(tmp_path / "nope.pcap")]) == 2
    assert "nope.pcap: no such file" in capsys.readouterr().err


def test_a_resent_request_pairs_with_its_reply(tmp_path: Path) -> None:
    """The first Registration Request is lost (the NHS was not up yet); the resend with
    the same request ID is answered: the request as a whole got its reply."""
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [
        frame(registration(7), SPOKE, HUB, SPOKE_MAC, 1.0), frame(registration(7), SPOKE, HUB, SPOKE_MAC, 2.0),
        frame(reply(7), HUB, SPOKE, HUB_MAC, 2.1)])
    tl = Timeline.from_dir(tmp_path, NAMES)
    (pair,) = tl.pairs()
    assert (pair.request.ts, pair.resends, pair.reply.ts) == (1.0, 1, 2.1)
    assert expect_reply(tl, tl.where(op="registration-request")[0]).ts == 2.1


def test_ipv6_overlay_data_is_summarised(tmp_path: Path) -> None:
    """IPv6 over the IPv4 NBMA: GRE protocol 0x86DD, summarised like IPv4's."""
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    inner = IPv6(src="fd00:10:0:101::10", dst="fd00:10:0:102::10") / ICMPv6EchoRequest()
    p = Ether(src=SPOKE_MAC) / IP(src=SPOKE, dst=HUB) / GRE(key_present=1, key=42, proto=0x86DD) / inner
    tcp = Ether(src=SPOKE_MAC) / IP(src=SPOKE, dst=HUB) / GRE(proto=0x86DD) / \
        IPv6(src="fd00:255::11", dst="fd00:255::1") / TCP(sport=40000, dport=179)
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [p, tcp])
    echo, bgp = Timeline.from_dir(tmp_path)
    assert echo.data == "icmp6 type 128 fd00:10:0:101::10>fd00:10:0:102::10" and echo.gre
    assert echo.overlay == bytes(inner)
    assert bgp.data == "tcp fd00:255::11>fd00:255::1 40000>179"
