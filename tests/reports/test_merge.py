"""`dmvpnkit report merge|render|summary|validate`: runs from other implementations,
role mixes and machines in one matrix, evidence brought along."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from dmvpnkit import reports
from dmvpnkit.cli import report as cli
from dmvpnkit.reports.render import case_slug

from .htmlscan import local_links, parse
from .sample import CASES, build_run
from .test_model import V1


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dmvpnkit")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def two_runs(tmp_path: Path, make_run) -> tuple[Path, Path]:
    a, b = tmp_path / "machine-a" / "reports", tmp_path / "machine-b" / "reports"
    reports.write(a, make_run(a, outcomes={4: "FAIL"}, host="lab-a"))
    reports.write(b, make_run(b, impl="hub=frr,spoke=nhrpd", outcomes={9: "NON-STRICT"}, host="lab-b"))
    return a, b


def test_merge_two_runs_into_one_matrix(two_runs: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_runs
    out = tmp_path / "interop"
    assert run_cli("report", "merge", str(a), str(b), "-o", str(out)) == 0
    assert "merged 2 run(s) from 2 directories" in capsys.readouterr().out
    m = reports.load_matrix(out)
    assert [(r.combination, r.host) for r in m.runs] == [("frr", "lab-a"), ("hub=frr,spoke=nhrpd", "lab-b")]
    # evidence now lives under the output directory, one subtree per column
    fail = m.runs[0].results[4]
    assert fail.evidence.pcaps[0] == "runs/01-frr-p3/labs/hub_2spoke_gw_41178/pcaps/phase3_redirect/hub1__inet.pcap"
    assert m.runs[1].results[0].evidence.configs[0].startswith("runs/02-hub-frr_spoke-nhrpd-p3/labs/")
    for run in m.runs:
        for r in run.results:
            for f in r.evidence.files():
                assert (out / f).is_file() and not (out / f).is_symlink(), f
    # the matrix: two columns, every case once, every link resolving inside the output tree
    root = parse(out / "index.html")
    assert len(list(root.find("table", id="matrix").iter("th", "col"))) == 2
    assert len(list(root.find("table", id="matrix").iter("tr", "case"))) == len(CASES)
    for page in [out / "index.html", *(out / "cases").rglob("*.html")]:
        for href, target in local_links(page, parse(page)):
            assert target.is_file() and out in target.parents or target == out / "index.html", (page, href)
    # inputs untouched
    assert reports.load(a).results[4].evidence.pcaps[0].startswith("labs/")


def test_merge_can_link_evidence_instead_of_copying(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_runs
    out = tmp_path / "linked"
    m = reports.merge([a, b], out, link=True)
    reports.write(out, m)
    f = out / m.runs[0].results[0].evidence.pcaps[0]
    assert f.is_symlink() and not os.path.isabs(os.readlink(f))
    assert f.resolve() == (a / "labs/hub_2spoke_gw_41178/pcaps/bringup/hub1__inet.pcap").resolve()


def test_merge_skips_a_run_given_twice_and_warns_of_missing_evidence(two_runs: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    a, _ = two_runs
    (a / "labs/hub_2spoke_gw_41178/nodes/spoke2/zebra.log").unlink()
    warnings: list[str] = []
    m = reports.merge([a, a], tmp_path / "out", warn=warnings.append)
    assert len(m.runs) == 1
    assert any("already merged" in w for w in warnings)
    assert any("zebra.log: evidence file missing" in w for w in warnings)
    gone = "hub_2spoke_gw_41178/nodes/spoke2/zebra.log"
    assert not any(p.endswith(gone) for r in m.runs[0].results for p in r.evidence.logs)


def test_merge_a_merged_report_with_another_run(two_runs: tuple[Path, Path], tmp_path: Path, make_run) -> None:
    a, b = two_runs
    first = tmp_path / "first"
    reports.write(first, reports.merge([a], first))
    c = tmp_path / "machine-c"
    reports.write(c, make_run(c, phase=2, host="lab-c"))
    out = tmp_path / "second"
    m = reports.merge([first, c], out)
    reports.write(out, m)
    assert [r.phase for r in m.runs] == [3, 2]
    p = m.runs[0].results[0].evidence.pcaps[0]
    assert p.startswith("runs/01-frr-p3/labs/") and (out / p).is_file()     # not runs/.../runs/...
    root = parse(out / "index.html")
    assert [o.attrs["value"] for o in root.find("select").iter("option")] == ["", "2", "3"]


def test_merge_of_a_schema_1_report_and_same_label_columns(tmp_path: Path, make_run) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "results.json").write_text(json.dumps(V1))
    new = tmp_path / "new"
    reports.write(new, make_run(new))
    out = tmp_path / "out"
    m = reports.merge([old, new], out)
    reports.write(out, m)
    labels = [th.find("span", "col-label").all_text()
              for th in parse(out / "index.html").find("table", id="matrix").iter("th", "col")]
    assert labels == ["frr · phase 3 · unknown host", "frr · phase 3 · lab-a"]


def test_render_rereads_results_and_upgrades_schema_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results.json").write_text(json.dumps(V1))
    assert run_cli("report", "render", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "upgraded schema 1 to 2" in out and "1 run(s), 10 result(s)" in out
    assert json.loads((tmp_path / "results.json").read_text())["schema"] == 3
    assert json.loads((tmp_path / "results.v1.json").read_text()) == V1
    assert (tmp_path / "cases" / "01-frr-p3" / f"{case_slug(CASES[0][0])}.html").is_file()
    assert run_cli("report", "render", str(tmp_path)) == 0           # schema 3 now: no second backup
    assert "upgraded" not in capsys.readouterr().out


def test_summary_and_validate_commands(two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = two_runs
    assert run_cli("report", "summary", str(a)) == 0
    text = capsys.readouterr().out
    assert text.startswith("DMVPN interoperability report") and "MUST 8/9, SHOULD 1/1" in text
    assert run_cli("report", "validate", str(a / "results.json")) == 0
    assert "valid (1 run(s), 10 result(s))" in capsys.readouterr().out


def test_cli_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"schema": 2, "generated": "", "dmvpnkit": "0.1.0", "runs": [{}]}')
    with pytest.raises(reports.ReportError, match=r"results\.json: runs\[0\]: 'created' is a required property"):
        run_cli("report", "render", str(tmp_path))
    with pytest.raises(reports.ReportError, match=r"nowhere/results\.json: no such file"):
        run_cli("report", "merge", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o"))


def test_compare_names_every_case_whose_verdict_differs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = tmp_path / "netns", tmp_path / "mininet"
    reports.write(a, build_run(a))
    reports.write(b, build_run(b, outcomes={1: "FAIL"}))
    assert run_cli("report", "compare", str(a), str(a)) == 0
    assert "0 differ" in capsys.readouterr().out
    assert run_cli("report", "compare", str(a), str(b)) == 1
    out = capsys.readouterr().out
    assert "1 differ" in out and f"{CASES[1][0]}: PASS -> FAIL" in out, out


def _shards(tmp_path: Path, make_run, n: int, given: list[int] | None = None) -> list[Path]:
    """Job K of N (a CI matrix) ran every Nth case of the sample run, on a machine of its own."""
    dirs = []
    for k in given or range(1, n + 1):
        d = tmp_path / f"job{k}" / "reports"
        run = make_run(d, outcomes={4: "FAIL"}, host=f"runner-{k}")
        run.results = run.results[k - 1::n]
        run.options["shard"] = f"{k}/{n}"
        run.wall_time = 10.0 * k
        reports.write(d, run)
        dirs.append(d)
    return dirs


def test_shards_of_one_combination_merge_into_one_column(tmp_path: Path, make_run, two_runs) -> None:
    jobs = _shards(tmp_path, make_run, 3)
    warnings: list[str] = []
    out = tmp_path / "merged"
    m = reports.merge([*jobs, two_runs[1]], out, warn=warnings.append)
    reports.write(out, m)
    assert not warnings
    assert [(r.combination, len(r.results)) for r in m.runs] == [("frr", len(CASES)), ("hub=frr,spoke=nhrpd", len(CASES))]
    joined = m.runs[0]
    assert sorted(r.id for r in joined.results) == sorted(c[0] for c in CASES)
    assert joined.options["shard"] == "1/3, 2/3, 3/3" and joined.wall_time == 30.0
    assert joined.host == "runner-1, runner-2, runner-3"
    # each shard's evidence under its own subtree of the one column, and there
    for r in joined.results:
        for f in r.evidence.files():
            assert f.startswith("runs/01-frr-p3/shard") and (out / f).is_file(), f
    root = parse(out / "index.html")
    assert len(list(root.find("table", id="matrix").iter("th", "col"))) == 2


def test_a_missing_shard_is_named_and_overlapping_shards_are_refused(tmp_path: Path, make_run) -> None:
    warnings: list[str] = []
    m = reports.merge(_shards(tmp_path / "some", make_run, 3, given=[1, 3]), tmp_path / "out", warn=warnings.append)
    assert len(m.runs) == 1 and len(m.runs[0].results) == len(CASES[0::3]) + len(CASES[2::3])
    assert warnings == ["frr phase 3: shard 2/3 not given; its column has the cases of the other 2"]
    a, b = _shards(tmp_path / "overlap", make_run, 2)
    run = reports.load(b)
    run.results = reports.load(a).results[:1] + run.results
    reports.write(b, run)
    with pytest.raises(reports.ReportError, match=r"case .* is in the shards of both .*job1/reports and .*job2/reports"):
        reports.merge([a, b], tmp_path / "out2")
