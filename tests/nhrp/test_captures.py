"""Every NHRP packet of the real lab captures in tests/nhrp/data: decode() must read
exactly the fields Wireshark reads, and the scapy layer must round-trip it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dmvpnkit.nhrp import NHRP, DecodeError, decode
from tests.nhrp import oracle
from tests.nhrp.captures import capture_files, capture_nhrp
from tests.nhrp.views import scapy_view

FILES: list[Any] = capture_files() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no capture in tests/nhrp/data yet (frr_phase3_*.pcap)"))]


def _id(path: Path | None) -> str:
    return path.name if path else "none"


@pytest.mark.skipif(oracle.TSHARK is None, reason="tshark not installed (./scripts/bootstrap installs it)")
@pytest.mark.parametrize("path", FILES, ids=_id)
def test_capture_matches_wireshark(path: Path) -> None:
    frames = oracle.run_tshark(path)
    assert frames, f"no NHRP in {path.name}"
    problems = []
    for frame in frames:
        try:
            msg = decode(frame.nhrp)
        except DecodeError as e:
            problems.append(f"frame {frame.number}: {e}")
            continue
        problem = oracle.diff(frame.items, oracle.expected(msg, decode))
        if problem or frame.malformed:
            problems.append(f"frame {frame.number} ({msg.summary()}): {problem or 'malformed'}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_capture_round_trips_through_the_layer(path: Path) -> None:
    for data in capture_nhrp()[path.name]:
        dissected = NHRP(data)
        assert bytes(dissected) == data
        assert decode(data) == scapy_view(dissected)
