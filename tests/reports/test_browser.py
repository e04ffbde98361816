"""The report in a real browser: headless Chromium over the DevTools protocol opens
index.html from disk, filters, clicks a cell, lands on its case page; screenshots go
to the test's tmp dir (and to $DMVPNKIT_SCREENSHOTS when set, to look at them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dmvpnkit import reports
from dmvpnkit.reports.render import case_slug

from .cdp import Browser, chromium_binary
from .sample import CASES

pytestmark = pytest.mark.skipif(chromium_binary() is None,
                                reason="chromium is not installed (scripts/bootstrap: apt-get install chromium)")


def keep(shot: Path) -> Path:
    where = os.environ.get("DMVPNKIT_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy2(shot, Path(where) / shot.name)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return shot


@pytest.fixture
def report(tmp_path: Path, make_run) -> Path:
    d = tmp_path / "report"
    runs = [make_run(d, outcomes={4: "FAIL", 9: "NON-STRICT", 7: "SKIP"}),
            make_run(d, impl="hub=frr,spoke=nhrpd", outcomes={0: "FAIL", 8: "UNIMPLEMENTED"}, host="lab-b"),
            make_run(d, phase=2, outcomes={5: "ERROR", 6: "INFO"})]
    reports.write(d, reports.Matrix(runs=runs))
    return d


def test_open_filter_and_click_through_to_a_case_page(report: Path, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with Browser(tmp_path / "profile", 1400, 1000) as b:
        b.open((report / "index.html").as_uri())
        assert b.js("document.title") == "DMVPN interop matrix"
        assert b.js("document.querySelectorAll('#matrix tr.case:not([hidden])').length") == len(CASES)
        keep(b.screenshot(shots / "index.png"))

        # Outcome filter: untick PASS with a click; rows left are those with another outcome somewhere.
        b.click("#filters input[name=outcome][value=PASS]")
        assert b.js("document.querySelector('#filters input[value=PASS]').checked") is False
        assert b.js("document.querySelectorAll('#matrix tr.case:not([hidden])').length") == 7
        assert b.js("document.getElementById('shown').textContent") == f"7 of {len(CASES)} cases"
        # Phase filter: only the phase 2 column is left, and rows with a non-PASS cell there.
        b.js("var s=document.querySelector('#filters select[name=phase]'); s.value='2';"
             "s.dispatchEvent(new Event('change', {bubbles: true}))")
        assert b.js("[...document.querySelectorAll('#matrix thead th.col')]"
                    ".map(th => getComputedStyle(th).display !== 'none')") == [False, False, True]
        assert b.js("document.querySelectorAll('#matrix tr.case:not([hidden])').length") == 2
        keep(b.screenshot(shots / "index-filtered.png"))
        b.click("#filters button[type=reset]")
        assert b.wait_for(f"document.querySelectorAll('#matrix tr.case:not([hidden])').length == {len(CASES)}")

        # Click the failing cell of the first column: its case page opens.
        b.events.clear()
        b.click("#matrix td.cell.o-fail.c0 a")
        b.wait_event("Page.loadEventFired")
        href = b.js("location.href")
        assert href.endswith(f"/cases/01-frr-p3/{case_slug(CASES[4][0])}.html"), href
        assert b.js("document.getElementById('outcome').textContent") == "FAIL"
        assert b.js("document.querySelectorAll('svg.ladder g.pkt.offending').length") == 1
        # the highlighted arrow is drawn and visible in the page
        box = b.js("(function(){var r=document.querySelector('svg.ladder g.pkt.offending line')"
                   ".getBoundingClientRect(); return [r.width, r.height];})()")
        assert box[0] > 100
        b.call("Emulation.setDeviceMetricsOverride", width=1400, height=1700, deviceScaleFactor=1, mobile=False)
        b.js("document.getElementById('timeline').scrollIntoView()")
        keep(b.screenshot(shots / "case-fail.png"))


def test_case_page_screenshot_from_the_command_line(report: Path, tmp_path: Path) -> None:
    page = report / "cases" / "01-frr-p3" / f"{case_slug(CASES[0][0])}.html"
    shot = tmp_path / "case-registration.png"
    r = subprocess.run([chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp_path / 'profile-cli'}", f"--screenshot={shot}",
                        "--window-size=1400,1100", page.as_uri()],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    keep(shot)
