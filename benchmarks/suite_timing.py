"""pytest plugin for bench_suite.py: every report's phase and duration, per worker, one
JSON line each into $DMVPNKIT_TIMING (written by the controller only)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def pytest_runtest_logreport(report: Any) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return                      # the controller sees every worker's reports
    node = getattr(report, "node", None)
    worker = node.gateway.id if node is not None else "gw"
    with Path(os.environ["DMVPNKIT_TIMING"]).open("a") as f:
        f.write(json.dumps({"worker": worker, "nodeid": report.nodeid, "when": report.when,
                            "duration": report.duration, "outcome": report.outcome,
                            "start": report.start}) + "\n")
