"""Real labs through the CLI: convergence, data paths per phase, teardown after SIGKILL."""

from __future__ import annotations

import io
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmvpnkit.labs import spec
from dmvpnkit.labs.uml import Guest

from .conftest import REPO, LabHandle, dmvpnkit, leftovers

pytestmark = pytest.mark.lab

SPOKE2_HOST = "10.1.2.10"
BRINGUP = re.compile(r"bring-up ([\d.]+) s: kernel ([\d.]+) s, topology ([\d.]+) s, "
                     r"daemons ([\d.]+) s, convergence ([\d.]+) s")


def gre_rx(lab: LabHandle) -> dict[str, int]:
    return {n["name"]: n["gre1"]["rx_packets"] for n in lab.status()["nodes"] if "gre1" in n}


def wait_shortcut(lab: LabHandle, node: str, prefix: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        cuts = lab.node(node).get("shortcuts", [])
        if any(c["prefix"] == prefix for c in cuts) or time.monotonic() > deadline:
            return {"shortcuts": cuts}
        time.sleep(0.5)


@pytest.mark.parametrize("backend", ["netns", "mininet"])
def test_phase3_shortcut_takes_traffic_off_the_hub(lab_up, backend: str) -> None:
    lab, out = lab_up("hub_2spoke", "--phase", "3", "--backend", backend)
    assert f"({backend})" in out.stdout and lab.status()["backend"] == backend, out.stdout
    m = BRINGUP.search(out.stdout)
    assert m, out.stdout
    assert float(m[1]) == pytest.approx(sum(map(float, m.groups()[1:])), abs=0.2)
    assert "10.255.0.11" in {e["protocol"] for e in lab.node("hub1")["cache"] if e["type"] == "dynamic"}
    # An IPv4 lab's interfaces have no IPv6 address to finish DAD under the running daemons.
    assert lab.exec("hub1", "ip", "-6", "addr", "show", "scope", "link").stdout == ""

    assert "3 received" in lab.exec("spoke1_h", "ping", "-c3", "-i", "0.3", SPOKE2_HOST).stdout
    cuts = wait_shortcut(lab, "spoke1", "10.1.2.0/24")
    assert {"prefix": "10.1.2.0/24", "via": "10.255.0.12"}.items() <= next(
        c for c in cuts["shortcuts"] if c["prefix"] == "10.1.2.0/24").items(), cuts

    before = gre_rx(lab)
    assert "20 received" in lab.exec("spoke1_h", "ping", "-c20", "-i", "0.05", SPOKE2_HOST).stdout
    after = gre_rx(lab)
    delta = {n: after[n] - before[n] for n in after}
    # 20 echo requests reach spoke2 directly; the hub sees at most NHRP keepalive noise.
    assert delta["spoke2"] >= 20 and delta["hub1"] < 5, delta


def test_phase1_keeps_traffic_on_the_hub(lab_up) -> None:
    lab, _ = lab_up("hub_2spoke", "--phase", "1")
    before = gre_rx(lab)
    assert "20 received" in lab.exec("spoke1_h", "ping", "-c20", "-i", "0.05", SPOKE2_HOST).stdout
    time.sleep(2)       # longer than the hub's NFLOG-to-indication delay in phase 3
    after = gre_rx(lab)
    assert after["hub1"] - before["hub1"] >= 40, (before, after)   # requests and replies
    assert all(not n.get("shortcuts") for n in lab.status()["nodes"])


def test_phase2_routes_point_at_the_far_spoke(lab_up) -> None:
    lab, _ = lab_up("hub_2spoke", "--phase", "2")
    route = lab.exec("spoke1", "ip", "route", "show", "10.1.2.0/24").stdout
    assert "via 10.255.0.12 dev gre1" in route and "onlink" in route, route
    assert "redirect" not in Path(REPO, f"labs-run/{lab.name}/nodes/hub1/frr.conf").read_text()


def test_lab_json_brings_the_lab_back(lab_up, lab_name) -> None:
    lab, _ = lab_up("spoke_nat", "--phase", "3")
    doc = json.loads(Path(REPO, f"labs-run/{lab_name}/lab.json").read_text())
    assert doc["state"] == "up" and doc["kernel"] in ("host", "uml") and doc["phase"] == 3
    # the hub sees spoke2 at the NAT box's public address
    nat_public = "172.16.0.2"
    assert any(e["nbma"] == nat_public for e in lab.node("hub1")["cache"] if e["type"] == "dynamic")
    dmvpnkit("lab", "down", "--lab", lab_name)
    assert leftovers(lab_name) == []
    dmvpnkit("lab", "up", f"labs-run/{lab_name}/lab.json")
    assert json.loads(Path(REPO, f"labs-run/{lab_name}/lab.json").read_text())["state"] == "up"
    assert "3 received" in lab.exec("spoke1_h", "ping", "-c3", "-i", "0.3", "10.0.0.10").stdout


def test_a_daemon_that_dies_at_start_is_named_with_its_output(lab_name, tmp_path: Path) -> None:
    """FRR's daemons run in the foreground: one that exits before opening its vty
    socket fails `lab up` at once, naming the node, the daemon, its exit status and
    the file holding what it printed; the lab is taken down."""
    tree = tmp_path / "frr" / "sbin"
    tree.mkdir(parents=True)
    tmp_path.chmod(0o755)
    for daemon in ("zebra", "staticd", "nhrpd"):
        (tree / daemon).write_text(f'#!/bin/sh\necho "{daemon}: cannot start: $*" >&2\nexit 3\n')
        (tree / daemon).chmod(0o755)
    out = dmvpnkit("lab", "up", "topologies/hub_2spoke.yaml", "--name", lab_name, "--phase", "3",
                   "--frr-prefix", str(tree.parent), check=False)
    try:
        m = re.search(r"(\w+): zebra failed to start \(exited 3\); see (\S+\.out) and", out.stderr + out.stdout)
        assert out.returncode != 0 and m, out.stdout + out.stderr
        assert "zebra: cannot start: -N" in Path(m[2]).read_text()
    finally:
        dmvpnkit("lab", "down", "--lab", lab_name, check=False)
    assert leftovers(lab_name) == []


def test_mininet_cli_runs_on_the_lab(lab_up) -> None:
    """`lab cli` is Mininet's own CLI on the running lab: node names stand for their
    addresses, `net` lists the links the topology has. Driven like a user at the
    prompt: Mininet's CLI hands what is typed during a node command to that node."""
    lab, _ = lab_up("hub_2spoke", "--phase", "3", "--backend", "mininet")
    p = subprocess.Popen([sys.executable, "-m", "dmvpnkit.cli.main", "lab", "cli", "--lab", lab.name], cwd=REPO,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""

    def until_prompt() -> bytes:
        nonlocal seen
        start = len(seen)
        deadline = time.monotonic() + 60
        while not seen[start:].endswith(b"mininet> ") and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 1)[0]:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
        return seen[start:]

    try:
        until_prompt()
        answers = {}
        for command in ("net", "spoke1_h ping -c1 -W2 spoke2_h", "exit"):
            p.stdin.write(command.encode() + b"\n")
            p.stdin.flush()
            answers[command] = until_prompt().decode(errors="replace").replace("\r", "")
        assert p.wait(timeout=30) == 0, seen
    finally:
        p.kill()
    assert "spoke1 inet:spoke1 spoke1_h:spoke1" in answers["net"], seen
    ping = answers["spoke1_h ping -c1 -W2 spoke2_h"]
    assert "PING 10.1.2.10" in ping and "1 packets transmitted, 1 received" in ping, seen


def guest_leftovers(name: str) -> list[str]:
    """Reap lab `name` inside its (still running) UML guest, then list what the guest's
    kernel still holds of it: namespaces, processes, mounts, interfaces, rules."""
    guest = Guest(name)
    if not guest.running():
        return []
    topo = list(spec.load(REPO / "topologies" / "hub_2spoke.yaml").nodes)
    out = io.BytesIO()
    assert guest.run([sys.executable, "-m", "dmvpnkit.cli.main", "lab", "down", "--lab", name], cwd=str(REPO),
                     stdout=io.BytesIO(), stderr=io.BytesIO()) == 0
    assert guest.run([sys.executable, "-m", "tests.labs.leftovers", name, *topo], cwd=str(REPO), stdout=out,
                     stderr=out) == 0, out.getvalue()
    return out.getvalue().decode().splitlines()


@pytest.mark.parametrize("backend, when", [("netns", "topology:"), ("mininet", "building"),
                                           ("mininet", "topology:")])
def test_sigkill_mid_bringup_then_down_leaves_nothing(lab_name, backend: str, when: str) -> None:
    """SIGKILL of the controlling process in the middle of bring-up (`building`: while
    Mininet creates hosts and links; `topology:`: as daemons start), then `lab down`:
    nothing of the lab is left, in the lab kernel or on the host."""
    proc = subprocess.Popen([sys.executable, "-m", "dmvpnkit.cli.main", "lab", "up",
                             "topologies/hub_2spoke.yaml", "--name", lab_name, "--backend", backend], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    try:
        for line in proc.stdout:
            seen += line
            if when == "building" and line.startswith("kernel: UML guest up"):
                time.sleep(2.5)             # Mininet takes ~7 s for these hosts and links
                break
            if line.startswith(when):
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert when in seen or "UML guest up" in seen, seen
        assert leftovers(lab_name), "the killed bring-up should have left something to reap"
        assert guest_leftovers(lab_name) == []
    finally:
        proc.kill()
    down = dmvpnkit("lab", "down", "--lab", lab_name)
    assert f"lab {lab_name}: down" in down.stdout, down.stdout
    assert leftovers(lab_name) == []
