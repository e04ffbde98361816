"""`audit` over the captures of a real FRR phase 3 run gives the suite's verdicts: the
suite's observe cases and `audit` call the same rules, here on the same packets, once
through the lab fixtures and once through audit's own reading, stations and roles."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dmvpnkit.cli.main import main
from dmvpnkit.labs.implementations import frr

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not (frr.FRR_LIB / "nhrpd").exists(), reason="Debian's FRR is not installed")]
REPO = Path(__file__).parents[2]
MODULES = ("conformance/rfc2332/test_s5_1_fixed_header.py", "conformance/rfc2332/test_s5_2_3_registration.py",
           "conformance/rfc2332/test_s5_3_extensions.py")
# suite case -> the rule it calls, and the station audit judges it on (None: every station)
SAME_RULE = {
    "test_every_packet_decodes": ("header-decodes", None),
    "test_version_is_one": ("header-version", None),
    "test_checksum_is_correct": ("header-checksum", None),
    "test_pktsz_is_the_packet_length": ("header-pktsz", None),
    "test_address_family_matches_the_networks": ("header-address-family", None),
    "test_hop_count_is_positive": ("header-hopcnt", None),
    "test_registration_cie_carries_the_hold_time": ("registration-holding-time", None),
    "test_registration_reply_goes_back_to_the_registering_nbma": ("registration-reply-to-requester", "hub1"),
    "test_transit_nhs_decrements_the_hop_count": ("transit-hop-count", "hub1"),
}


def _worst(outcomes: list[str]) -> str:
    """The verdict on every station: FAIL if one fails, else PASS if one passed, else SKIP."""
    for o in ("FAIL", "PASS"):
        if o in outcomes:
            return o
    return "SKIP"


def test_audit_of_a_suite_run_gives_the_suites_verdicts(pytester: pytest.Pytester, report_dir: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "conformance", pytester.path / "conformance", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "topologies", pytester.path / "topologies")
    r = pytester.runpytest_subprocess(*MODULES, "--phase", "3", "--impl", "frr", "-p", "no:xdist", "--pcap", "all",
                                      "--report-dir", str(report_dir), "--rootdir", str(pytester.path), timeout=900)
    run = json.loads((report_dir / "results.json").read_text())["runs"][0]
    suite = {x["nodeid"].split("::")[1]: (x["outcome"], x["lab"]) for x in run["results"]}
    assert set(SAME_RULE) <= set(suite), r.stdout.str()[-3000:]
    compared = {}
    for lab in sorted({lab for _, lab in suite.values()}):
        out = report_dir / "audit" / lab
        main(["audit", str(report_dir / "labs" / lab / "pcaps"), "--report-dir", str(out)])
        capsys.readouterr()
        audit = json.loads((out / "results.json").read_text())["runs"]
        for case, (rule, station) in SAME_RULE.items():
            if suite[case][1] != lab:
                continue
            cells = [x["outcome"] for col in audit for x in col["results"] if x["id"] == f"audit::{rule}"
                     and (station is None or col["combination"].startswith(f"{station} ("))]
            compared[case] = (suite[case][0], _worst(cells))
    assert compared.keys() == SAME_RULE.keys()
    assert all(s == a for s, a in compared.values()), compared
    assert {s for s, _ in compared.values()} == {"PASS"}, compared    # FRR 8.4 keeps all of these
