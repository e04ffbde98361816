"""index.html and the case pages, read back with html.parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dmvpnkit import reports
from dmvpnkit.reports.render import case_slug

from .htmlscan import El, local_links, parse
from .sample import CASES

OUTCOMES = {4: "FAIL", 9: "NON-STRICT", 7: "SKIP", 5: "ERROR", 8: "UNIMPLEMENTED"}


def matrix(root: El) -> El:
    t = root.find("table", id="matrix")
    assert t is not None
    return t


@pytest.fixture
def two_columns(tmp_path: Path, make_run) -> Path:
    a = make_run(tmp_path, outcomes=OUTCOMES)
    b = make_run(tmp_path, impl="hub=frr,spoke=nhrpd", outcomes={0: "FAIL", 6: "INFO"}, host="lab-b")
    b.results = b.results[:-1]          # the last case did not run in the mixed combination
    reports.write(tmp_path, reports.Matrix(runs=[a, b]))
    return tmp_path


def test_matrix_has_a_column_per_combination_and_a_row_per_case(two_columns: Path) -> None:
    root = parse(two_columns / "index.html")
    t = matrix(root)
    heads = list(t.iter("th", "col"))
    assert [h.find("span", "col-label").all_text() for h in heads] == ["frr · phase 3",
                                                                      "hub=frr,spoke=nhrpd · phase 3"]
    assert [h.find("span", "col-versions").all_text() for h in heads] == ["frr 8.4.4", "frr 8.4.4, nhrpd 0.1.0"]
    rows = list(t.iter("tr", "case"))
    assert sorted(r.attrs["data-case"] for r in rows) == sorted(c[0] for c in CASES)
    for r in rows:
        assert len(list(r.iter("td", "cell"))) == 2
    # grouped by spec document then section: numbered sections in order, named in the suite's order
    groups = [tb.attrs["data-section"] for tb in t.iter("tbody")]
    assert groups == ["rfc2332 5.2.2", "rfc2332 5.2.3", "rfc2332 5.2.4", "dmvpn-phase3 traffic-indication",
                      "dmvpn-phase3 resolution", "dmvpn-phase3 shortcut", "dmvpn-phase3 nat"]


def test_cell_classes_match_outcomes(two_columns: Path) -> None:
    run_a, run_b = reports.load_matrix(two_columns).runs
    want = {(r.id, 0): r.outcome for r in run_a.results} | {(r.id, 1): r.outcome for r in run_b.results}
    t = matrix(parse(two_columns / "index.html"))
    seen = 0
    for row in t.iter("tr", "case"):
        for col, cell in enumerate(row.iter("td", "cell")):
            outcome = want.get((row.attrs["data-case"], col))
            if outcome is None:
                assert "absent" in cell.classes and cell.find("a") is None
                continue
            seen += 1
            assert f"o-{outcome.lower()}" in cell.classes, (row.attrs["data-case"], col, cell.classes)
            assert cell.attrs["data-outcome"] == outcome
            assert cell.find("a").all_text() == outcome
    assert seen == len(CASES) * 2 - 1


def test_column_summary_legend_filters_and_certification_block(two_columns: Path) -> None:
    root = parse(two_columns / "index.html")
    sums = [td.all_text() for td in matrix(root).iter("td", "sum")]
    # column 1: MUSTs 1..8 minus FAIL(4), ERROR(5), UNIMPLEMENTED(8), SKIP(7) not graded -> 5/8; SHOULD 0/1
    assert sums == ["phase 3: MUST 5/8, SHOULD 0/1", "phase 3: MUST 7/8"]
    legend = root.find("section", "legend").all_text()
    for o in reports.OUTCOMES:
        assert o in legend
    form = root.find("form", id="filters")
    selects = {s.attrs["name"]: [o.attrs["value"] for o in s.iter("option")] for s in form.iter("select")}
    assert selects["phase"] == ["", "3"]
    assert selects["section"][:3] == ["", "rfc2332 5.2.2", "rfc2332 5.2.3"]
    boxes = {(i.attrs["name"], i.attrs["value"]) for i in form.iter("input")}
    assert {("level", "MUST"), ("level", "SHOULD"), ("outcome", "FAIL"), ("outcome", "INFO")} <= boxes
    summary = root.find("pre", id="summary").all_text()
    assert "[1] frr · phase 3" in summary and "[2] hub=frr,spoke=nhrpd · phase 3" in summary
    assert "result: phase 3: MUST 5/8, SHOULD 0/1" in summary
    assert "3 MUST requirement(s) not met:" in summary
    assert re.search(r"FAIL +dmvpn-phase3 traffic-indication +conformance/dmvpn/test_phase3_redirect\.py::"
                     r"test_hub_sends_traffic_indication_for_hairpinned_traffic", summary)
    assert "machine: lab-b, kernel 6.1.0-27-amd64, labs on the uml kernel" in summary


def test_every_link_resolves_and_nothing_is_fetched(two_columns: Path) -> None:
    pages = [two_columns / "index.html", *sorted((two_columns / "cases").rglob("*.html"))]
    assert len(pages) == 1 + len(CASES) * 2 - 1
    for page in pages:
        text = page.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), page
        assert "fetch(" not in text and "XMLHttpRequest" not in text and "@import" not in text
        for href, target in local_links(page, parse(page)):
            assert target.is_file(), f"{page.relative_to(two_columns)}: {href} -> {target}"


def test_case_page_shows_requirement_evidence_and_a_ladder(two_columns: Path) -> None:
    case = CASES[4][0]
    page = two_columns / "cases" / "01-frr-p3" / f"{case_slug(case)}.html"
    root = parse(page)
    assert root.find("span", id="outcome").all_text() == "FAIL"
    assert "o-fail" in root.find("span", id="outcome").classes
    assert "sends\nthe source spoke an NHRP Traffic Indication" in root.find("blockquote").all_text()
    assert "does not carry the triggering packet" in root.find("pre", "message").all_text()
    svg = root.find("svg", "ladder")
    nodes = [t.all_text() for t in svg.iter("text", "node")]
    assert nodes == ["hub1", "spoke1", "spoke2"]            # DMVPN nodes, hubs first; no bare addresses
    pkts = list(svg.iter("g", "pkt"))
    assert len(pkts) == 20                                  # 40 captures: each packet seen at both ends
    bad = [g for g in pkts if "offending" in g.classes]
    assert len(bad) == 1 and bad[0].find("rect", "hl") is not None
    assert "NHRP traffic-indication id=0 10.255.0.1->10.1.1.10" in bad[0].find("text", "sum").all_text()
    assert "captured at hub1, spoke1" in bad[0].find("title").all_text()
    # the arrow runs from hub1's lifeline to spoke1's
    xs = {t.all_text(): t.attrs["x"] for t in svg.iter("text", "node")}
    line = bad[0].find("line", "arrow")
    assert (line.attrs["x1"], line.attrs["x2"]) == (xs["hub1"], xs["spoke1"])
    pcaps = [a.all_text() for a in root.find("ul", "pcaps").iter("a")]
    assert pcaps == [f"labs/hub_2spoke_gw_41178/pcaps/phase3_redirect/{n}__inet.pcap"
                     for n in ("hub1", "spoke1", "spoke2")]
    assert len(list(root.find("ul", "logs").iter("a"))) == 6
    assert "pytest conformance/dmvpn/test_phase3_redirect.py::" in root.find("section", id="run").all_text()
    sib = [a.all_text() for a in root.find("p", "siblings").iter("a")]
    assert sib == ["PASS · hub=frr,spoke=nhrpd · phase 3"]


def test_missing_evidence_is_shown_not_linked(tmp_path: Path, make_run) -> None:
    run = make_run(tmp_path)
    (tmp_path / "labs" / "hub_2spoke_gw_41178" / "pcaps" / "bringup" / "hub1__inet.pcap").unlink()
    reports.write(tmp_path, run)
    root = parse(tmp_path / "cases" / "01-frr-p3" / f"{case_slug(CASES[0][0])}.html")
    missing = [li.all_text() for li in root.find("ul", "pcaps").iter("li", "missing")]
    assert missing == ["labs/hub_2spoke_gw_41178/pcaps/bringup/hub1__inet.pcap (missing)"]


def test_rerender_replaces_stale_pages_but_not_a_foreign_cases_dir(tmp_path: Path, make_run) -> None:
    run = make_run(tmp_path)
    reports.write(tmp_path, run)
    stale = tmp_path / "cases" / "01-frr-p3" / "gone.html"
    stale.write_text("old")
    run.results = run.results[:3]
    reports.write(tmp_path, run)
    assert not stale.exists()
    assert len(list((tmp_path / "cases").rglob("*.html"))) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    other = tmp_path / "elsewhere"
    (other / "cases").mkdir(parents=True)
    (other / "cases" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="was not written by dmvpnkit"):
        reports.write(other, run)
    assert (other / "cases" / "notes.txt").read_text() == "mine"


def test_html_escapes_what_cases_print(tmp_path: Path) -> None:
    run = reports.from_records([{"case": "c.py::test_<script>", "outcome": "FAIL", "doc": "rfc2332",
                                 "section": "5.2.3", "level": "MUST",
                                 "requirement": "<b>bold</b> & \"quoted\"",
                                 "message": "E   AssertionError: <img src=x onerror=alert(1)>"}],
                               report_dir=tmp_path, phase=1, impl="frr", host="h")
    reports.write(tmp_path, run)
    pages = [tmp_path / "index.html", *(tmp_path / "cases").rglob("*.html")]
    for p in pages:
        text = p.read_text()
        assert "<img src=x" not in text and "<b>bold" not in text and "test_<script>" not in text


def test_the_mutation_score_beside_the_report_is_shown(tmp_path: Path, make_run) -> None:
    """`dmvpnkit mutations` writes reports/mutations/matrix.json: the matrix page of a run
    in reports/ states both scores, when and from which commit they were measured."""
    import json

    from dmvpnkit.cli.mutations import score
    baseline = {f"c{i}": "PASS" for i in range(8)} | {"c8": "NON-STRICT"}
    caught = {"blunt": {f"c{i}": "FAIL" for i in range(8)}, "aimed": {"c1": "FAIL", "c2": "FAIL"}}
    sc = score(baseline, caught)
    assert (sc.cases, sc.killed, sc.killed_targeted) == (8, 8, 2)
    assert (sc.targeted_switches, sc.blunt_switches) == (["aimed"], ["blunt"])
    assert sc.without_targeted_kill == ["c0", "c3", "c4", "c5", "c6", "c7"]
    assert sc.not_passing_on_baseline == ["c8"]
    (tmp_path / "mutations").mkdir()
    doc = {"phase": 3, "caught": caught, "commit": "0123456789abcdef", "created": "2026-12-02T18:00:00+0000",
           "score": {"cases": sc.cases, "killed": sc.killed, "killed_targeted": sc.killed_targeted,
                     "without_targeted_kill": sc.without_targeted_kill}}
    (tmp_path / "mutations" / "matrix.json").write_text(json.dumps(doc))
    reports.write(tmp_path, make_run(tmp_path))
    line = score_line(tmp_path)
    assert "targeted switch 2/8" in line and "any switch 8/8" in line and "commit 0123456789ab" in line, line
    (tmp_path / "mutations" / "matrix.json").write_text("{\"score\": 1}")
    reports.write(tmp_path, make_run(tmp_path))
    line = score_line(tmp_path)
    assert "mutations/matrix.json is not a mutation matrix (TypeError" in line, line


def score_line(report_dir: Path) -> str:
    m = re.search(r'<p class="meta" id="mutation-score"[^>]*>(.*?)</p>', (report_dir / "index.html").read_text(), re.S)
    assert m, "no mutation score on the matrix page"
    return re.sub(r"<[^>]+>", "", m[1])
