"""`dmvpnkit audit` on good and bad input: never a traceback, every problem named by
file (and offset, where there is one), and a report that validates."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dmvpnkit import reports
from dmvpnkit.cli.main import main
from dmvpnkit.rules import REGISTRY

from . import captures as c


def audit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["audit", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def report(d: Path) -> dict:
    reports.validate(json.loads((d / "results.json").read_text()))
    assert (d / "index.html").is_file()
    ET.parse(d / "junit.xml")
    return json.loads((d / "results.json").read_text())


def test_a_good_capture_is_reported_per_station(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = c.write(tmp_path / "lan.pcap", c.scenario())
    rc, out, err = audit(capsys, str(p), "--names", f"{c.HUB}=hub1", f"{c.S1}=spoke1",
                         "--report-dir", str(tmp_path / "r"))
    assert rc == 0, out + err
    doc = report(tmp_path / "r")
    cols = [r["combination"] for r in doc["runs"]]
    assert cols[0] == "hub1 (192.0.2.1)" and "spoke1 (192.0.2.11)" in cols and c.S2 in cols
    hub = doc["runs"][0]
    got = {r["id"]: r for r in hub["results"]}
    assert set(got) == {"audit::input", *(f"audit::{n}" for n in REGISTRY)}
    assert got["audit::header-checksum"]["outcome"] == "PASS"
    assert "frames (" in got["audit::header-checksum"]["message"] and "lan.pcap:" in got["audit::header-checksum"]["message"]
    assert got["audit::header-checksum"]["evidence"]["pcaps"] == ["../lan.pcap"]
    assert got["audit::nat-extension"]["outcome"] == "PASS"
    assert any(line.startswith("PASS       hub1 (192.0.2.1)") for line in out.splitlines())


def test_a_must_failure_sets_the_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = c.write(tmp_path / "bad.pcap", c.scenario("bad-checksum", "refresh-fast"))
    rc, out, _ = audit(capsys, str(p), "--report-dir", str(tmp_path / "r"))
    assert rc == 1
    line = next(x for x in out.splitlines() if "header-checksum" in x and x.startswith("FAIL"))
    assert "[" + tmp_path.name + "/bad.pcap:" in line
    doc = report(tmp_path / "r")
    s1 = next(r for r in doc["runs"] if r["combination"] == c.S1)
    got = {r["id"]: r for r in s1["results"]}
    assert got["audit::header-checksum"]["outcome"] == "FAIL"
    assert got["audit::registration-refresh-interval"]["outcome"] == "NON-STRICT"
    marked = [t for t in got["audit::header-checksum"]["evidence"]["timeline"] if t["mark"] == "offending"]
    assert len(marked) == 1 and "BAD-CHECKSUM" in marked[0]["summary"]
    junit = ET.parse(tmp_path / "r" / "junit.xml").getroot()
    assert any(f.get("message", "").startswith("expected: no packet whose ar$chksum") for f in junit.iter("failure"))


def test_no_nhrp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = c.write(tmp_path / "pings.pcap", [(0.0, c.redirect(set())[0][1])])
    rc, _out, err = audit(capsys, str(p), "--report-dir", str(tmp_path / "r"))
    assert rc == 0 and f"{p}: no NHRP packet among its 1 IPv4 frames" in err
    doc = report(tmp_path / "r")
    assert [r["combination"] for r in doc["runs"]] == ["no station"]
    assert all(r["outcome"] in ("SKIP", "PASS") for r in doc["runs"][0]["results"])


def test_only_one_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = [f for f in c.scenario() if f[1]["IP"].src == c.S1]
    p = c.write(tmp_path / "tx.pcap", frames)
    rc, out, _ = audit(capsys, str(p), "--report-dir", str(tmp_path / "r"))
    assert rc == 0 and "only one direction captured" in out
    report(tmp_path / "r")


def _pcap_boundaries(raw: bytes) -> list[int]:
    out, off = [24], 24
    while off < len(raw):
        off += 16 + struct.unpack_from("<I", raw, off + 8)[0]
        out.append(off)
    return out


def _pcapng_boundaries(raw: bytes) -> list[int]:
    out, off = [0], 0
    while off < len(raw):
        off += struct.unpack_from("<I", raw, off + 4)[0]
        out.append(off)
    return out


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_truncated_at_every_block_boundary(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    frames = c.registrations(set())[:4]
    whole = (c.write if kind == "pcap" else c.pcapng)(tmp_path / f"whole.{kind}", frames).read_bytes()
    bounds = (_pcap_boundaries if kind == "pcap" else _pcapng_boundaries)(whole)
    assert len(bounds) > 4
    for i, at in enumerate(bounds):
        for cut in (at, at + 7):        # on the boundary, and inside the next block
            if cut > len(whole):
                continue
            p = tmp_path / f"cut{i}_{cut}.{kind}"
            p.write_bytes(whole[:cut])
            rc, out, err = audit(capsys, str(p), "--report-dir", str(tmp_path / f"r{cut}"))
            assert rc in (0, 2), (cut, out, err)
            doc = report(tmp_path / f"r{cut}")
            inp = next(r for r in doc["runs"][0]["results"] if r["id"] == "audit::input")
            if cut == at:
                assert "cut short" not in err, (cut, err)
            elif cut < len(whole):
                assert f"{p}: " in err and "offset" in err, (cut, err)
                assert inp["outcome"] == "ERROR" and str(p) in inp["headline"]


def test_not_a_capture_and_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "notes.pcap"
    p.write_text("hello, this is not a capture file at all\n")
    rc, _out, err = audit(capsys, str(p), str(tmp_path / "gone.pcap"), "--report-dir", str(tmp_path / "r"))
    assert rc == 2
    assert f"{p}: not a pcap file (magic 68656c6c at offset 0)" in err
    assert f"{tmp_path / 'gone.pcap'}: no such file or directory" in err
    inp = next(r for r in report(tmp_path / "r")["runs"][0]["results"] if r["id"] == "audit::input")
    assert inp["outcome"] == "ERROR" and "not a pcap file" in inp["message"] and "gone.pcap" in inp["message"]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_unknown_link_type(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str) -> None:
    frames = c.registrations(set())[:2]
    if kind == "pcap":
        p = c.write(tmp_path / "odd.pcap", frames)
        raw = bytearray(p.read_bytes())
        raw[20:24] = struct.pack("<I", 147)
        p.write_bytes(bytes(raw))
        offset = 20
    else:
        p = c.pcapng(tmp_path / "odd.pcapng", frames, linktype=147)
        offset = 28
    _rc, _out, err = audit(capsys, str(p), "--report-dir", str(tmp_path / "r"))
    assert f"{p}: link type 147 at offset {offset} is not one dmvpnkit decodes" in err, err
    report(tmp_path / "r")


def test_a_directory_is_searched_and_bad_names_are_an_error(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "caps" / "deeper"
    d.mkdir(parents=True)
    c.pcapng(d / "hub.pcapng", c.scenario())
    rc, out, _ = audit(capsys, str(tmp_path / "caps"), "--report-dir", str(tmp_path / "r"))
    assert rc == 0 and "1 file(s)" in out
    rc, _, err = audit(capsys, str(tmp_path / "caps"), "--names", "hub1")
    assert rc == 2 and "--names 'hub1': expected ADDR=NAME" in err
