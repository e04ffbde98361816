"""Sample report directories shaped like a real `pytest conformance/ --phase 3` run:
the suite's case IDs and docstrings, the hub_2spoke lab's addresses, timelines cut
from a real phase 3 capture (data/), pcap, config and log files where the plugin
and the lab engine put them."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from dmvpnkit import reports

DATA = Path(__file__).parent / "data"
LAB = "hub_2spoke_gw_41178"
NAT_LAB = "spoke_nat_gw_90211"

# (case, doc, section, level, requirement)
CASES = [
    ("conformance/rfc2332/test_s5_2_3_registration.py::test_spoke_registers_with_its_nhs", "rfc2332", "5.2.3",
     "MUST", '"The Registration Request packet is sent from a station to an NHS to notify the NHS\n'
     'of one or more addresses which may be reached through that station." (5.2.3)'),
    ("conformance/rfc2332/test_s5_2_3_registration.py::test_registration_cie_carries_the_hold_time", "rfc2332",
     "5.2.3", "MUST", '"Holding Time: The Holding Time field specifies the number of seconds for which the\n'
     'NHRP information specified in the CIE is considered to be valid." (5.2.0.1)'),
    ("conformance/rfc2332/test_s5_2_3_registration.py::test_registration_reply_echoes_request_id_and_succeeds",
     "rfc2332", "5.2.4", "MUST", '"The Request ID ... is copied from the Registration Request" and a CIE Code '
     'of 0\nmeans "Successful Registration" (5.2.4).'),
    ("conformance/rfc2332/test_s5_2_3_registration.py::test_registration_reply_goes_back_to_the_registering_nbma",
     "rfc2332", "5.2.4", "MUST", '"The Registration Reply is sent ... to the station which sent the '
     'Registration\nRequest" (5.2.4): from the NHS\'s NBMA address to the spoke\'s.'),
    ("conformance/dmvpn/test_phase3_redirect.py::test_hub_sends_traffic_indication_for_hairpinned_traffic",
     "dmvpn-phase3", "traffic-indication", "MUST", "The hub, forwarding a packet back out of the tunnel "
     "interface it came in on, sends\nthe source spoke an NHRP Traffic Indication carrying the triggering packet."),
    ("conformance/dmvpn/test_phase3_redirect.py::test_spoke_resolves_after_the_indication", "dmvpn-phase3",
     "resolution", "MUST", "On a Traffic Indication the spoke sends a Resolution Request for the destination\n"
     "and gets a Resolution Reply with the same request ID."),
    ("conformance/dmvpn/test_phase3_redirect.py::test_later_data_bypasses_the_hub", "dmvpn-phase3", "shortcut",
     "MUST", "Once the shortcut is installed, data between the spokes' LANs flows spoke to spoke:\n"
     "none of the later packets crosses the hub's NBMA interface."),
    ("conformance/dmvpn/test_phase3_redirect.py::test_resolution_reply_names_the_far_spoke", "rfc2332", "5.2.2",
     "MUST", '"The Resolution Reply ... contains the NBMA address of the destination" in a CIE\n'
     "whose prefix covers the requested address (5.2.2)."),
    ("conformance/faults/test_spoke_nat.py::test_hub_binds_the_post_nat_address", "dmvpn-phase3", "nat", "MUST",
     "The hub maps spoke2's tunnel address to the address it can reach: the NAT's public\n"
     "address, not the private one spoke2 claims."),
    ("conformance/faults/test_spoke_nat.py::test_shortcut_to_a_natted_spoke_carries_traffic", "dmvpn-phase3",
     "nat", "SHOULD", "A shortcut from a public spoke to a spoke behind NAT uses the NAT's public address\n"
     "and carries traffic without loss once installed."),
]

HUB_2SPOKE = {
    "topology": "hub_2spoke",
    "nodes": [{"name": "inet", "role": "router", "nbma": None, "tunnel": None},
              {"name": "hub1", "role": "hub", "nbma": "172.16.0.2", "tunnel": "10.255.0.1"},
              {"name": "spoke1", "role": "spoke", "nbma": "172.16.0.6", "tunnel": "10.255.0.11"},
              {"name": "spoke2", "role": "spoke", "nbma": "172.16.0.10", "tunnel": "10.255.0.12"}],
    "addresses": {"172.16.0.1": "inet", "172.16.0.5": "inet", "172.16.0.9": "inet", "172.16.0.2": "hub1",
                  "172.16.0.6": "spoke1", "172.16.0.10": "spoke2", "10.255.0.1": "hub1",
                  "10.255.0.11": "spoke1", "10.255.0.12": "spoke2"},
}
SPOKE_NAT = {
    "topology": "spoke_nat",
    "nodes": [{"name": "inet", "role": "router"}, {"name": "nat1", "role": "nat"},
              {"name": "hub1", "role": "hub", "nbma": "172.16.0.6", "tunnel": "10.255.0.1"},
              {"name": "spoke1", "role": "spoke", "nbma": "172.16.0.10", "tunnel": "10.255.0.11"},
              {"name": "spoke2", "role": "spoke", "nbma": "192.168.0.2", "tunnel": "10.255.0.12"}],
    "addresses": {"172.16.0.2": "nat1", "192.168.0.1": "nat1", "172.16.0.6": "hub1", "172.16.0.10": "spoke1",
                  "192.168.0.2": "spoke2"},
}

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def timeline_text(name: str) -> str:
    return (DATA / f"{name}.txt").read_text()


def make_lab_dir(report_dir: Path, lab: str, nodes: list[str], captures: dict[str, list[str]]) -> Path:
    d = report_dir / "labs" / lab
    (d / "nodes").mkdir(parents=True, exist_ok=True)
    (d / "lab.json").write_text('{"name": "%s", "state": "down"}\n' % lab)
    for n in nodes:
        nd = d / "nodes" / n
        nd.mkdir(exist_ok=True)
        for daemon in ("zebra", "nhrpd"):
            (nd / f"{daemon}.conf").write_text(f"! {daemon} on {n}\nhostname {n}\n")
            (nd / f"{daemon}.log").write_text(f"2025/11/27 08:30:01 NHRP: {n} {daemon} started\n")
    for cap, ifaces in captures.items():
        (d / "pcaps" / cap).mkdir(parents=True, exist_ok=True)
        for node_iface in ifaces:
            (d / "pcaps" / cap / f"{node_iface}.pcap").write_bytes(PCAP_HEADER)
    return d


def failure_message(what: str, tl: str, mark_line: int | None = None) -> str:
    """pytest's longrepr of an ExpectationFailed: source, then E lines."""
    lines = tl.rstrip("\n").splitlines()
    body = [("=> " if i == mark_line else "   ") + line for i, line in enumerate(lines)]
    return ("    def test_case(redirected, lab) -> None:\n>       expect(tl, ...)\n"
            f"E       dmvpnkit.capture.expect.ExpectationFailed: {what}\n"
            + "\n".join(f"E         {b}" for b in body) + "\n\nconformance/dmvpn/test_phase3_redirect.py:34: "
            "ExpectationFailed")


def sample_records(report_dir: Path, outcomes: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """One record per CASES entry, as the plugin would pass them, with evidence."""
    lab = make_lab_dir(report_dir, LAB, ["hub1", "spoke1", "spoke2"],
                       {"bringup": ["hub1__inet", "spoke1__inet", "spoke2__inet"],
                        "phase3_redirect": ["hub1__inet", "spoke1__inet", "spoke2__inet"]})
    nat = make_lab_dir(report_dir, NAT_LAB, ["hub1", "spoke1", "spoke2"],
                       {"test_shortcut_to_a_natted_spoke_carries_traffic": ["hub1__inet", "spoke1__inet",
                                                                            "spoke2__nat1"]})
    outcomes = outcomes or {}
    records = []
    for i, (case, doc, section, level, req) in enumerate(CASES):
        outcome = outcomes.get(i, "PASS")
        is_nat = "spoke_nat" in case
        lab_dir = nat if is_nat else lab
        captures = [lab_dir / "pcaps" / ("test_shortcut_to_a_natted_spoke_carries_traffic" if is_nat
                                         else "phase3_redirect" if "phase3" in case else "bringup")]
        ev = reports.collect_evidence(lab_dir, captures)
        tl_name = "hub_2spoke_phase3_redirect" if "phase3" in case else "hub_2spoke_bringup"
        message = ""
        if outcome in ("FAIL", "NON-STRICT"):
            message = failure_message("the Traffic Indication to spoke1 does not carry the triggering packet "
                                      "10.1.1.10>10.1.2.10", timeline_text(tl_name), 25)
        elif outcome == "SKIP":
            message = "Skipped: needs ESP in the lab kernel (CONFIG_INET_ESP)"
        ev_out: dict[str, Any] = {**ev}
        if not is_nat and not message:
            ev_out["timeline"] = timeline_text(tl_name)
        records.append({"case": case, "doc": doc, "section": section, "level": level, "requirement": req,
                        "outcome": outcome, "duration": round(0.4 + i * 0.37, 3), "message": message,
                        "lab": NAT_LAB if is_nat else LAB, "evidence": ev_out})
    return records


def build_run(report_dir: Path, impl: str = "frr", outcomes: dict[int, str] | None = None, phase: int = 3,
              host: str = "lab-a", version: str = "nhrpd version 8.4.4") -> reports.Run:
    report_dir.mkdir(parents=True, exist_ok=True)
    records = sample_records(report_dir, outcomes)
    impls = {i.partition("=")[2] or i for i in impl.split(",")}
    return reports.from_records(
        records, report_dir=report_dir, phase=phase, impl=impl,
        implementations={i: version if i == "frr" else "nhrpd 0.1.0" for i in impls},
        labs={LAB: HUB_2SPOKE, NAT_LAB: SPOKE_NAT}, kernel="6.1.0-27-amd64", lab_kernel="uml",
        wall_time=49.53, created="2025-11-27T08:30:00+00:00", host=host,
        options={"backend": "netns", "ipsec": False, "pcap": "all"})
