"""Each passive rule PASSes on a conformant capture, FAILs on the capture with its
defect (made with the nhrp builders' malformations), and SKIPs without evidence."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmvpnkit.capture import ExpectationFailed, Timeline
from dmvpnkit.rules import FAIL, PASS, REGISTRY, SKIP, Context, enforce, header
from dmvpnkit.rules.audit import judge, read, stations

from . import captures as c

# rule -> (the defect that breaks it, the station it is judged on)
BROKEN_BY = {
    "header-decodes": ("extoff-past-pktsz", c.S1),
    "header-version": ("wrong-version", c.S1),
    "header-checksum": ("bad-checksum", c.S1),
    "header-pktsz": ("pktsz", c.S2),
    "header-hopcnt": ("hopcnt-zero", c.S1),
    "request-answered-or-resent": ("no-resend", c.S1),
    "reply-echoes-request": ("wrong-id", c.HUB),
    "registration-reply-to-requester": ("reply-elsewhere", c.HUB),
    "resend-keeps-request-id": ("resend-new-id", c.S1),
    "transit-hop-count": ("no-decrement", c.HUB),
    "registration-holding-time": ("hold-zero", c.S1),
    "registration-refresh-interval": ("refresh-fast", c.S1),
    "traffic-indication-shape": ("ti-foreign", c.HUB),
    "traffic-indication-rate": ("ti-flood", c.HUB),
    "error-indication-format": ("ei-code", c.HUB),
    "no-error-indication-about-error-indication": ("ei-about-ei", c.HUB),
    "nat-extension": ("nat-wrong", c.HUB),
    "ipsec-no-cleartext-gre": ("cleartext", c.S1),
}
# the good capture of a rule, where it is not the plain scenario
GOOD = {"ipsec-no-cleartext-gre": ("ipsec",)}


def timeline(tmp_path: Path, *defects: str) -> Timeline:
    p = c.write(tmp_path / f"{'-'.join(defects) or 'good'}.pcap", c.scenario(*defects))
    cap = read([p], names=c.NAMES)
    assert not cap.problems, cap.problems
    return cap.timeline


def test_every_rule_is_covered() -> None:
    assert set(BROKEN_BY) | {"header-address-family"} == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(BROKEN_BY))
def test_a_rule_passes_on_the_good_capture_and_fails_on_its_defect(tmp_path: Path, name: str) -> None:
    rule = REGISTRY[name]
    defect, station = BROKEN_BY[name]
    ctx = Context(station=station, name=c.NAMES[station])
    good = rule(timeline(tmp_path, *GOOD.get(name, ())), ctx)
    assert good.outcome == PASS, good.headline
    assert good.frames and all(f.startswith(f"{tmp_path.name}/") for f in good.frames)
    extra = ("ipsec",) if name == "ipsec-no-cleartext-gre" else ()
    bad = rule(timeline(tmp_path, defect, *extra), ctx)
    assert bad.outcome == FAIL, (bad.outcome, bad.headline)
    assert bad.mark is not None and bad.mark.ref in bad.headline and bad.mark in bad.events


def test_address_family_fails_on_an_ipv6_protocol_type_with_ipv4_addresses(tmp_path: Path) -> None:
    req = c.build.registration_request(c.S1, c.T1, c.T_HUB, 1)
    req.pro_type = 0x86DD
    p = c.write(tmp_path / "afn.pcap", [(0.0, c.wire(req, c.S1, c.HUB))])
    v = header.address_family(read([p]).timeline, Context(station=c.S1))
    assert v.outcome == FAIL and "pro_type 0x86dd" in v.headline, v.headline


def test_without_evidence_a_rule_skips_with_the_reason(tmp_path: Path) -> None:
    """Only the registrations: no Traffic Indication, Error Indication, NAT, resend or ESP."""
    p = c.write(tmp_path / "reg.pcap", c.registrations(set()))
    tl = read([p]).timeline
    for name in ("traffic-indication-shape", "traffic-indication-rate", "error-indication-format",
                 "nat-extension", "transit-hop-count", "resend-keeps-request-id", "ipsec-no-cleartext-gre"):
        v = REGISTRY[name](tl, Context(station=c.HUB if name != "resend-keeps-request-id" else c.S1))
        assert v.outcome == SKIP and v.observed.startswith("no "), (name, v.observed)


def test_one_direction_skips_what_needs_replies(tmp_path: Path) -> None:
    only_out = [f for f in c.registrations(set()) if f[1]["IP"].src == c.S1]
    tl = read([c.write(tmp_path / "out.pcap", only_out)]).timeline
    for name in ("request-answered-or-resent", "reply-echoes-request", "resend-keeps-request-id"):
        v = REGISTRY[name](tl, Context(station=c.S1))
        assert v.outcome == SKIP and "only one direction" in v.observed, (name, v.observed)
    assert header.checksum(tl, Context(station=c.S1)).outcome == PASS


@pytest.mark.parametrize("defects, outcome", [((), PASS), (("resend-new-id",), FAIL)])
def test_the_stations_own_capture_is_judged_with_nothing_received(tmp_path: Path, defects: tuple[str, ...],
                                                                    outcome: str) -> None:
    """A lab's capture at the resender itself, every reply to it lost: `own` says that
    nothing received means nothing arrived, so the resends are judged, not skipped."""
    only_out = [f for f in c.resends(set(defects)) if f[1]["IP"].src == c.S1]
    tl = read([c.write(tmp_path / "own.pcap", only_out)]).timeline
    assert REGISTRY["resend-keeps-request-id"](tl, Context(station=c.S1)).outcome == SKIP
    assert REGISTRY["resend-keeps-request-id"](tl, Context(station=c.S1, own=True)).outcome == outcome


def test_enforce_hands_a_skip_to_absent_when_given(tmp_path: Path) -> None:
    tl = read([c.write(tmp_path / "none.pcap", [f for f in c.registrations(set()) if f[1]["IP"].src == c.S1])]).timeline
    said: list[str] = []
    v = enforce(REGISTRY["resend-keeps-request-id"], tl, Context(station=c.S1), absent=said.append)
    assert v.outcome == SKIP and len(said) == 1 and "only one direction" in said[0], said
    with pytest.raises(ExpectationFailed):          # without `absent`, missing evidence in a lab fails
        enforce(REGISTRY["resend-keeps-request-id"], tl, Context(station=c.S1))


def test_esp_without_keys_is_named_in_the_skip(tmp_path: Path) -> None:
    tl = read([c.write(tmp_path / "esp.pcap", c.esp({"ipsec"}))]).timeline
    v = REGISTRY["registration-holding-time"](tl, Context(station=c.S1))
    assert v.outcome == SKIP and "could not be opened: give the keys" in v.observed, v.observed


def test_enforce_raises_the_rules_failure_with_its_frames(tmp_path: Path) -> None:
    tl = timeline(tmp_path, "bad-checksum")
    with pytest.raises(ExpectationFailed) as e:
        enforce(header.checksum, tl)
    assert "ar$chksum is wrong" in e.value.expected and "bad-checksum.pcap:" in e.value.observed
    assert e.value.mark is not None and not e.value.mark.nhrp.chksum_ok
    assert enforce(header.checksum, timeline(tmp_path)).outcome == PASS


def test_stations_and_roles_come_from_the_traffic(tmp_path: Path) -> None:
    tl = timeline(tmp_path)
    sts = {s.address: s for s in stations(tl, c.NAMES)}
    assert sts[c.HUB].role == "nhs" and sts[c.S1].role == sts[c.S2].role == "client"
    assert sts[c.HUB].label == "hub1 (192.0.2.1)"
    verdicts = {r.name: v for r, v in judge(tl, sts[c.S1])}
    assert verdicts["nat-extension"].outcome == SKIP and "a rule for NHSs" in verdicts["nat-extension"].observed
    assert all(v.outcome != FAIL for st in sts.values() for _, v in judge(tl, st)), \
        [(st.name, r.name, v.headline) for st in sts.values() for r, v in judge(tl, st) if v.outcome == FAIL]
