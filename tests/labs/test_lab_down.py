"""`dmvpnkit lab down --all` next to a running session: the session's guests are its
own (they power off when it ends, however it ends), so `--all` leaves them and takes
down what no live session owns. Fake guest directories stand in for guests here, in a
directory of the test's own: no lab is touched."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from dmvpnkit.cli import lab as cli_lab
from dmvpnkit.labs import uml
from dmvpnkit.labs.uml import Guest


def started(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


@pytest.fixture
def guests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(uml, "GUEST_DIR", tmp_path)
    monkeypatch.setattr(cli_lab, "GUEST_DIR", tmp_path)
    monkeypatch.setattr(cli_lab, "_registry", lambda: {})
    monkeypatch.setattr(cli_lab, "_backends", lambda: [])
    return tmp_path


def fake_guest(name: str, owner: str | None) -> Guest:
    g = Guest(name)
    g.dir.mkdir()
    if owner is not None:
        (g.dir / "owner").write_text(owner + "\n")
    return g


def test_owner_is_the_live_session_only(guests: Path) -> None:
    me = os.getpid()
    assert fake_guest("live", f"{me} {started(me)}").owner() == me
    assert fake_guest("reused", f"{me} 1").owner() is None          # the pid now names another process
    assert fake_guest("unowned", None).owner() is None               # `lab up`'s
    assert fake_guest("torn", "").owner() is None                    # caught mid-write


def test_down_all_leaves_a_running_sessions_guest(guests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    me = os.getpid()
    live = fake_guest("pytest1w0", f"{me} {started(me)}")
    dead = fake_guest("pytest2w0", f"{me} 1")
    assert cli_lab.cmd_down(argparse.Namespace(all=True, lab=None)) == 0
    out = capsys.readouterr().out
    assert live.dir.exists() and f"lab pytest1w0: left up, the guest of running session {me}" in out
    assert not dead.dir.exists() and "lab pytest2w0: down" in out
