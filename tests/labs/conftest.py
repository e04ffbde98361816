"""Helpers for tests that bring real labs up through the `dmvpnkit lab` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from dmvpnkit.labs.backends.netns import list_netns

REPO = Path(__file__).parents[2]


def dmvpnkit(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "dmvpnkit.cli.main", *args], cwd=REPO, text=True,
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"dmvpnkit {' '.join(args)} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


class LabHandle:
    def __init__(self, name: str):
        self.name = name

    def exec(self, node: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return dmvpnkit("lab", "exec", "--lab", self.name, node, "--", *argv, check=check)

    def status(self) -> dict[str, Any]:
        return json.loads(dmvpnkit("lab", "status", "--lab", self.name, "--json").stdout)

    def node(self, name: str) -> dict[str, Any]:
        return next(n for n in self.status()["nodes"] if n["name"] == name)


def leftovers(name: str) -> list[str]:
    """Everything of lab `name` that may exist on the host after `lab down`."""
    found = [f"netns {n}" for n in list_netns(f"dk-{name}-")]
    for p in (Path("/run/dmvpnkit/guests") / name, Path("/run/dmvpnkit/labs") / f"{name}.json",
              Path("/run/dmvpnkit/mininet") / name, *Path("/run/dmvpnkit/nodes").glob(f"dk-{name}-*")):
        if p.exists():
            found.append(str(p))
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"supervise" in cmd and name.encode() in cmd:
            found.append(f"supervisor pid {pid}")
    return found


@pytest.fixture
def lab_name() -> str:
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture
def lab_up(lab_name: str) -> Iterator:
    """Bring a lab up by the CLI; always take it down, and check nothing is left."""
    started: list[str] = []

    def up(topology: str, *args: str) -> tuple[LabHandle, subprocess.CompletedProcess]:
        started.append(lab_name)
        out = dmvpnkit("lab", "up", f"topologies/{topology}.yaml", "--name", lab_name, *args)
        return LabHandle(lab_name), out

    yield up
    for name in started:
        dmvpnkit("lab", "down", "--lab", name, check=False)
        assert leftovers(name) == []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        for item in items:
            if item.get_closest_marker("lab"):
                item.add_marker(pytest.mark.skip(reason="lab tests need root"))
