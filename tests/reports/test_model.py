"""results.json schema 3: what the plugin's records become, validation, schema 1
upgrade, errors that name the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from dmvpnkit import reports
from dmvpnkit.reports import timeline
from dmvpnkit.reports.schema import schema

from .sample import CASES, LAB, NAT_LAB, make_lab_dir, timeline_text


def test_schema_is_valid_and_documents_every_field() -> None:
    s = schema()
    Draft202012Validator.check_schema(s)
    defs = s["$defs"]
    undocumented = []

    def documented(sub: dict) -> bool:
        return "description" in sub or "description" in defs.get(sub.get("$ref", "").rpartition("/")[2], {})

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if not documented(sub):
                    undocumented.append(f"{where}.{name}")
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for v in node:
                walk(v, where)
    walk(s, "$")
    assert not undocumented, undocumented


def test_written_results_validate_and_read_back(tmp_path: Path, make_run) -> None:
    run = make_run(tmp_path, outcomes={4: "FAIL", 9: "NON-STRICT", 7: "SKIP"})
    reports.write(tmp_path, run)
    doc = json.loads((tmp_path / "results.json").read_text())
    Draft202012Validator(schema()).validate(doc)           # an independent check of the file
    assert doc["schema"] == 3 and len(doc["runs"]) == 1
    r0 = doc["runs"][0]
    assert (r0["combination"], r0["impl"], r0["implementations"]) == ("frr", {"hub": "frr", "spoke": "frr"},
                                                                        {"frr": "8.4.4"})
    assert (r0["phase"], r0["lab_kernel"], r0["host"]) == (3, "uml", "lab-a")
    back = reports.load(tmp_path)
    assert back.to_dict() == run.to_dict()
    assert [r.outcome for r in back.results].count("PASS") == 7


def test_evidence_paths_are_relative_and_timeline_structured(tmp_path: Path, make_run) -> None:
    run = make_run(tmp_path, outcomes={4: "FAIL"})
    by_id = {r.id: r for r in run.results}
    ti = by_id[CASES[4][0]]
    assert ti.lab == LAB
    assert ti.evidence.pcaps == [f"labs/{LAB}/pcaps/phase3_redirect/{n}__inet.pcap"
                                 for n in ("hub1", "spoke1", "spoke2")]
    assert f"labs/{LAB}/lab.json" in ti.evidence.configs
    assert f"labs/{LAB}/nodes/hub1/nhrpd.log" in ti.evidence.logs
    # The timeline came out of the failure message: 40 captures, one marked with `=>`.
    assert len(ti.evidence.timeline) == 40
    marked = [e for e in ti.evidence.timeline if e.mark]
    assert [(e.node, e.direction, e.summary.split()[1]) for e in marked] == [("spoke1", "in", "traffic-indication")]
    assert (marked[0].src_node, marked[0].dst_node) == ("hub1", "spoke1")
    # A passing case's timeline came as a text excerpt in its evidence.
    reg = by_id[CASES[0][0]]
    assert [e.summary.split()[1] for e in reg.evidence.timeline[:4]] == [
        "registration-request", "registration-request", "registration-reply", "registration-reply"]
    assert not any(e.mark for e in reg.evidence.timeline)


def test_timeline_names_from_lab_map_when_lines_carry_none() -> None:
    text = ("1795768671.552699 spoke1   172.16.0.6>172.16.0.2 NHRP registration-request id=1 "
            "10.255.0.11->10.255.0.11\n")
    run = reports.from_records(
        [{"case": "t.py::test_x", "outcome": "PASS", "lab": "l", "evidence": {"timeline": text}}],
        report_dir="/tmp", phase=2, impl="frr", labs={"l": {"topology": "hub_2spoke", "nodes": [],
                                                            "addresses": {"172.16.0.6": "spoke1",
                                                                          "172.16.0.2": "hub1"}}})
    e = run.results[0].evidence.timeline[0]
    assert (e.src_node, e.dst_node, e.direction) == ("spoke1", "hub1", None)


def test_old_style_message_that_is_frames_marks_them() -> None:
    msg = ("E       AssertionError: 1795768673.933937 spoke1   172.16.0.2>172.16.0.6 NHRP traffic-indication id=0\n"
           "E       assert '172.16.0.2' == '172.16.0.1'\n")
    prose = ("E       AssertionError: no Registration Request from spoke2 reached hub1:\n"
             "E         1795768671.552699 spoke1   172.16.0.6>172.16.0.2 NHRP registration-request id=1\n")
    assert [e.mark for e in timeline.parse(msg)] == ["offending"]
    assert [e.mark for e in timeline.parse(prose)] == [None]


def test_structured_timeline_from_capture_events(tmp_path: Path) -> None:
    events = [{"ts": 1795768673.933910, "node": "hub1", "iface": "inet", "src": "172.16.0.2", "dst": "172.16.0.6",
               "direction": "out", "summary": "NHRP traffic-indication id=0", "nhrp": {"op": "x"}},
              {"ts": 1795768673.933937, "node": "spoke1", "iface": "inet", "src": "172.16.0.2",
               "dst": "172.16.0.6", "direction": "in", "summary": "NHRP traffic-indication id=0", "mark": True}]
    run = reports.from_records([{"case": "c.py::test_y", "outcome": "FAIL", "evidence": {"timeline": events}}],
                               report_dir=tmp_path, phase=3, impl="hub=frr,spoke=nhrpd")
    tl = run.results[0].evidence.timeline
    assert [(e.iface, e.direction, e.mark) for e in tl] == [("inet", "out", None), ("inet", "in", "offending")]
    assert run.combination == "hub=frr,spoke=nhrpd"
    reports.validate(reports.as_matrix(run).to_dict())


@pytest.mark.parametrize("nodeid, combination, expected", [
    ("c.py::test_x[hub=frr,spoke=nhrpd]", "hub=frr,spoke=nhrpd", "c.py::test_x"),
    ("c.py::test_x[frr-ipv4]", "frr", "c.py::test_x[ipv4]"),
    ("c.py::test_x[ipv4-frr]", "frr", "c.py::test_x[ipv4]"),
    ("c.py::test_x[ipv4]", "frr", "c.py::test_x[ipv4]"),
    ("c.py::test_x", "frr", "c.py::test_x"),
])
def test_case_id_drops_the_combination_parameter(nodeid: str, combination: str, expected: str) -> None:
    assert reports.case_id(nodeid, combination) == expected


@pytest.mark.parametrize("nodeid, expected", [
    ("c.py::test_x[repeat2]", ("c.py::test_x", 2)),
    ("c.py::test_x[ipv4-repeat12]", ("c.py::test_x[ipv4]", 12)),
    ("c.py::test_x[repeat3-ipv4]", ("c.py::test_x[ipv4]", 3)),
    ("c.py::test_x[repeated]", ("c.py::test_x[repeated]", None)),      # a parameter of the case's own
    ("c.py::test_x", ("c.py::test_x", None)),
])
def test_repeat_of_finds_the_repetition(nodeid: str, expected: tuple[str, int | None]) -> None:
    from dmvpnkit.reports.build import repeat_of
    assert repeat_of(nodeid) == expected


def test_repetitions_fold_into_one_result(tmp_path: Path) -> None:
    """Same grade: that grade; different grades: FLAKY, with the worst one's evidence."""
    recs = [{"case": f"c.py::test_{name}[repeat{k}]", "outcome": o, "level": "MUST", "duration": 1.0,
             "message": f"{name} {k}", "evidence": {"pcaps": [str(tmp_path / f"{name}{k}.pcap")]}}
            for name, grades in (("a", ["PASS", "FAIL", "PASS"]), ("b", ["PASS"] * 3)) for k, o in enumerate(grades, 1)]
    recs.append({"case": "c.py::test_c", "outcome": "PASS"})
    run = reports.from_records(recs, report_dir=tmp_path, phase=3, impl="frr")
    a, b, c = run.results
    assert (a.id, a.outcome, [x.outcome for x in a.repeats], a.duration) == ("c.py::test_a", "FLAKY",
                                                                             ["PASS", "FAIL", "PASS"], 3.0)
    assert a.evidence.pcaps == ["a2.pcap"] and a.message.startswith("FLAKY: the same case was graded repeat1 PASS, "
                                                                    "repeat2 FAIL, repeat3 PASS")
    assert (b.id, b.outcome, len(b.repeats), b.message) == ("c.py::test_b", "PASS", 3, "b 1")
    assert (c.id, c.repeats) == ("c.py::test_c", [])
    reports.validate(reports.as_matrix(run).to_dict())


# ---------------------------------------------------------------- schema 1

V1 = {"schema": 1, "dmvpnkit": "0.1.0", "phase": 3, "impl": "frr", "kernel": "6.1.0-27-amd64",
      "lab_kernel": "uml", "wall_time": 49.5,
      "results": [{"case": c, "doc": d, "section": s, "level": lv, "requirement": req, "outcome": "PASS",
                   "duration": 1.2, "message": ""} for c, d, s, lv, req in CASES]}


def test_schema_1_is_upgraded_with_evidence_found_on_disk(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(V1))
    doc["results"][9]["outcome"] = "NON-STRICT"
    doc["results"][9]["message"] = ("E       AssertionError: no data sent from spoke1 straight to the NAT's public "
                                    "address:\nE         " + timeline_text("hub_2spoke_bringup").splitlines()[0])
    (tmp_path / "results.json").write_text(json.dumps(doc))
    make_lab_dir(tmp_path, NAT_LAB, ["hub1", "spoke1", "spoke2"],
                 {"test_shortcut_to_a_natted_spoke_carries_traffic": ["hub1__inet", "spoke2__nat1"],
                  "bringup": ["hub1__inet"]})
    run = reports.load(tmp_path / "results.json")
    assert (run.combination, run.impl, run.phase, run.wall_time) == ("frr", {"hub": "frr", "spoke": "frr"}, 3, 49.5)
    nat = run.results[9]
    assert nat.outcome == "NON-STRICT" and nat.id == CASES[9][0]
    assert nat.evidence.pcaps == [
        f"labs/{NAT_LAB}/pcaps/test_shortcut_to_a_natted_spoke_carries_traffic/{f}.pcap"
        for f in ("hub1__inet", "spoke2__nat1")]
    assert f"labs/{NAT_LAB}/nodes/spoke2/nhrpd.conf" in nat.evidence.configs
    assert len(nat.evidence.timeline) == 1 and nat.evidence.timeline[0].src_node == "spoke1"
    assert run.results[0].evidence.pcaps == []          # read the bring-up capture: not attributable in v1
    reports.validate(reports.as_matrix(run).to_dict())


def test_plugin_schema_1_shape_with_unknown_level_is_rejected(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(V1))
    doc["results"][2]["level"] = "MUSTNT"
    (tmp_path / "results.json").write_text(json.dumps(doc))
    with pytest.raises(reports.ReportError, match=r"results\.json: results\[2\]\.level: 'MUSTNT' is not one of"):
        reports.load(tmp_path)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["results"][3].update(outcome="PASSED"), r"results\[3\]\.outcome: 'PASSED' is not one of PASS"),
    (lambda d: d["results"][1].pop("case"), r"results\[1\]\.case: missing"),
    (lambda d: d["results"][0].update(duration="slow"), r"results\[0\]\.duration: expected int or float"),
    (lambda d: d.update(results={}), r"results: expected an array of case results, got an object"),
    (lambda d: d.update(impl="hub=frr,spoke="), r"impl: implementation 'hub=frr,spoke=': no implementation"),
])
def test_bad_schema_1_names_file_and_key(tmp_path: Path, mutate, message: str) -> None:
    doc = json.loads(json.dumps(V1))
    mutate(doc)
    p = tmp_path / "results.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(reports.ReportError, match=f"^{p}: {message}"):
        reports.load(p)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["runs"][0]["results"][3].update(outcome="PASSED"),
     r"runs\[0\]\.results\[3\]\.outcome: 'PASSED' is not one of"),
    (lambda d: d["runs"][0]["results"][5]["evidence"].pop("pcaps"),
     r"runs\[0\]\.results\[5\]\.evidence: 'pcaps' is a required property"),
    (lambda d: d["runs"][0]["results"][4]["evidence"]["timeline"][2].update(ts="soon"),
     r"runs\[0\]\.results\[4\]\.evidence\.timeline\[2\]\.ts: 'soon' is not of type 'number'"),
    (lambda d: d["runs"][0].update(lab_kernel="kvm"), r"runs\[0\]\.lab_kernel: 'kvm' is not one of"),
    (lambda d: d["runs"][0].update(colour="red"), r"runs\[0\]: Additional properties are not allowed \('colour'"),
    (lambda d: d.update(schema=4), r"schema: 4 is not a results schema this dmvpnkit reads \(1, 2 or 3\)"),
    (lambda d: d["runs"][0]["results"][4].update(repeats=[{"id": "x"}]),
     r"runs\[0\]\.results\[4\]\.repeats\[0\]: 'nodeid' is a required property"),
])
def test_bad_schema_3_names_file_and_key(tmp_path: Path, make_run, mutate, message: str) -> None:
    reports.write(tmp_path, make_run(tmp_path, outcomes={4: "FAIL"}))
    p = tmp_path / "results.json"
    doc = json.loads(p.read_text())
    mutate(doc)
    p.write_text(json.dumps(doc))
    with pytest.raises(reports.ReportError, match=f"^{p}: {message}"):
        reports.load(p)
    if doc["schema"] == 3:
        assert list(Draft202012Validator(schema()).iter_errors(doc))     # the general validator agrees


def test_schema_2_files_are_read_as_they_are(tmp_path: Path, make_run) -> None:
    """Schema 3 only adds FLAKY and `repeats`: a schema-2 file reads unchanged."""
    reports.write(tmp_path, make_run(tmp_path, outcomes={4: "FAIL"}))
    p = tmp_path / "results.json"
    doc = json.loads(p.read_text())
    p.write_text(json.dumps({**doc, "schema": 2}))
    assert reports.load(p).to_dict()["results"] == doc["runs"][0]["results"]
    p.write_text(json.dumps({**doc, "schema": 2, "runs": [{**doc["runs"][0], "results": [
        {**doc["runs"][0]["results"][0], "outcome": "FLAKY"}]}]}))
    assert reports.load(p).results[0].outcome == "FLAKY"      # read as schema 3


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(reports.ReportError, match=rf"^{tmp_path}/results\.json: no such file"):
        reports.load(tmp_path)
    (tmp_path / "results.json").write_text('{"schema": 2, "runs": [')
    with pytest.raises(reports.ReportError, match=r"results\.json: not valid JSON: Expecting value: line 1"):
        reports.load(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(reports.ReportError, match=r"results\.json: expected a JSON object at the top, got an array"):
        reports.load(tmp_path)


def test_load_of_a_merged_file_points_to_load_matrix(tmp_path: Path, make_run) -> None:
    m = reports.Matrix(runs=[make_run(tmp_path), make_run(tmp_path, impl="hub=frr,spoke=nhrpd")])
    reports.write(tmp_path, m)
    with pytest.raises(reports.ReportError, match=r"runs: holds 2 runs .*load_matrix"):
        reports.load(tmp_path)
    assert len(reports.load_matrix(tmp_path).runs) == 2


@pytest.mark.parametrize("record, message", [
    ({"case": "c.py::test_x", "outcome": "OK"}, r"record 0 \(c\.py::test_x\): outcome: 'OK' is not one of"),
    ({"outcome": "PASS"}, r"record 0: case: missing"),
    ({"case": "c.py::test_x", "outcome": "PASS", "lab": "nope"}, r"lab: 'nope' is not among the run's labs"),
    ({"case": "c.py::test_x", "outcome": "PASS", "evidence": {"pcap": []}}, r"evidence: unknown key\(s\) pcap"),
    ({"case": "c.py::test_x", "outcome": "PASS", "evidence": {"pcaps": "a.pcap"}},
     r"evidence\.pcaps: expected a list of paths"),
    ({"case": "c.py::test_x", "outcome": "PASS", "evidence": {"timeline": [{"ts": 1.0, "node": "hub1"}]}},
     r"evidence\.timeline\[0\]: missing 'src'"),
    ({"case": "c.py::test_x", "outcome": "PASS", "duration": "long"}, r"duration: expected seconds"),
])
def test_bad_records_name_the_record_and_key(tmp_path: Path, record: dict, message: str) -> None:
    with pytest.raises(reports.ReportError, match=message):
        reports.from_records([record], report_dir=tmp_path, phase=3, impl="frr")



# ---------------------------------------------------------------- the fast checker vs jsonschema

def _paths(x: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _paths(v, prefix + (i,))
    return out


def _small_doc() -> dict:
    run = reports.from_records(
        [{"case": CASES[4][0], "doc": "dmvpn-phase3", "section": "traffic-indication", "level": "MUST",
          "outcome": "FAIL", "lab": "l", "message": "E       AssertionError: " +
          timeline_text("hub_2spoke_bringup").splitlines()[0], "evidence": {"pcaps": ["labs/l/pcaps/x.pcap"]}}],
        report_dir="/r", phase=3, impl="frr", implementations={"frr": "8.4.4"}, host="h", kernel="k",
        labs={"l": {"topology": "hub_2spoke", "nodes": [{"name": "hub1", "role": "hub", "nbma": "172.16.0.2"}],
                    "addresses": {"172.16.0.2": "hub1"}}}, options={"ipsec": True})
    return json.loads(json.dumps(reports.as_matrix(run).to_dict()))


def _agree(doc: object) -> None:
    theirs = not list(Draft202012Validator(schema()).iter_errors(doc))
    try:
        reports.validate(doc)
        ours = True
    except reports.ReportError:
        ours = False
    assert ours == theirs, json.dumps(doc)[:400]


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-3, 5) | st.floats(-2, 5, allow_nan=False)
                           | st.sampled_from(["", "PASS", "MUST", "uml", "frr", "x"]),
                           lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
                               st.sampled_from(["ts", "id", "x", "name"]), inner, max_size=2), max_leaves=4)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fast_checker_agrees_with_jsonschema(data: st.DataObject) -> None:
    doc = _small_doc()
    path = data.draw(st.sampled_from(_paths(doc)))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if not path:
        doc = data.draw(JSON_VALUES) if action == "replace" else doc
    else:
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        key = path[-1]
        if action == "replace":
            parent[key] = data.draw(JSON_VALUES)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent[key], dict):
            parent[key][data.draw(st.sampled_from(["x", "mark", "src_node", "ts"]))] = data.draw(JSON_VALUES)
    _agree(doc)


def test_lab_info_of_a_real_topology_names_the_nat_box() -> None:
    from dmvpnkit.labs import spec
    topo = spec.load(Path(__file__).parents[2] / "topologies" / "spoke_nat.yaml")
    info = reports.lab_info(topo)
    nat_public = str(topo.nodes["nat1"].iface(topo.nodes["nat1"].public_iface).address.ip)
    assert info["addresses"][nat_public] == "nat1"
    assert info["addresses"][str(topo.nodes["spoke2"].nbma)] == "spoke2"
    run = reports.from_records(
        [{"case": "conformance/faults/test_spoke_nat.py::test_registration_crosses_the_nat", "outcome": "PASS",
          "lab": "spoke_nat_gw_1", "requirement": "The hub receives spoke2's Registration Request from the NAT\n"
          "    box's public address and answers it there.",
          "evidence": {"timeline": f"1795768671.5 hub1 <- {nat_public}>{topo.nodes['hub1'].nbma} "
                                   "NHRP registration-request id=1 10.255.0.12->10.255.0.12"}}],
        report_dir="/r", phase=3, impl="frr", labs={"spoke_nat_gw_1": topo})
    e = run.results[0].evidence.timeline[0]
    assert (e.src_node, e.dst_node) == ("nat1", "hub1")
    assert run.results[0].requirement.splitlines()[1] == "box's public address and answers it there."
