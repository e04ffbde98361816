"""The containerlab backend: the exported lab file, for real, for every shipped topology.

Nothing containerlab-related can be deployed on this machine (no Docker engine, no
containerlab, no GRE in the host kernel), so the export is checked as containerlab
and the harness would see it, and the backend's refusal is checked against what
this machine lacks, found here independently of the backend.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dmvpnkit.labs import backend as backends
from dmvpnkit.labs import spec, underlay
from dmvpnkit.labs.backends import clab
from dmvpnkit.labs.backends.clab import backend as clab_backend
from dmvpnkit.labs.backends.netns import RUN_ROOT, NetnsBackend
from dmvpnkit.labs.lab import parse_impl
from dmvpnkit.labs import implementations
from dmvpnkit.labs.implementations import ContainerPlan, DmvpnView, Setup, frr, nhrpd
from dmvpnkit.labs.implementations.nhrpd import NhrpdDriver
from dmvpnkit.labs.implementations.view import view
from dmvpnkit.labs.node import CommandError

REPO = Path(__file__).parents[2]
TOPOLOGIES = sorted((REPO / "topologies").glob("*.yaml"))
IMPLS = ["frr", "nhrpd", "hub=frr,spoke=nhrpd"]


@pytest.fixture
def lab() -> Any:
    """A lab name of our own; harness exports make run directories under /run for it."""
    name = "t" + uuid.uuid4().hex[:8]
    frr_run_existed = frr.RUN_DIR.exists()
    yield name
    for root in (RUN_ROOT, frr.RUN_DIR):
        for d in root.glob(f"clab-{name}-*") if root.is_dir() else []:
            shutil.rmtree(d)
    if not frr_run_existed and frr.RUN_DIR.is_dir() and not any(frr.RUN_DIR.iterdir()):
        frr.RUN_DIR.rmdir()


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path}: not a YAML mapping"
    return doc


def ends(link: dict[str, Any]) -> list[tuple[str, str]]:
    if link.get("type") == "veth":
        return [(e["node"], e["interface"]) for e in link["endpoints"]]
    assert all(isinstance(e, str) and e.count(":") == 1 for e in link["endpoints"]), link
    return [tuple(e.split(":")) for e in link["endpoints"]]  # type: ignore[misc]


def host_side(bind: str, path: Path) -> Path:
    host = bind.split(":")[0]
    return Path(host) if host.startswith("/") else path.parent / host


def bound(entry: dict[str, Any], target: str) -> Path:
    found = [b.split(":")[0] for b in entry.get("binds", []) if b.split(":")[1] == target]
    assert len(found) == 1, f"{target} bound {len(found)} times: {entry.get('binds')}"
    return Path(found[0])


def driver(topo: spec.Topology, phase: int, lab_dir: Path, nodes: list[str] | None = None) -> NhrpdDriver:
    nodes = nodes if nodes is not None else [n.name for n in topo.nodes.values() if n.is_dmvpn]
    return NhrpdDriver(Setup(NetnsBackend("t", topo, lab_dir), lab_dir, phase, tuple(nodes)))


def netem(topo: spec.Topology, node: str) -> list[str]:
    """tc lines for the topology's impairment of what `node` sends (none in most topologies)."""
    out = []
    for link in topo.links:
        imp = link.impair.get(node)
        if imp is not None:
            out.append(f"tc qdisc replace dev {link.other(node)} root netem delay {imp.delay:g}ms")
    return out


def test_standalone_export_carries_the_topologys_link_impairment(tmp_path: Path) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml", {"delay": "37.5"})
    doc = yaml.safe_load(clab.export(topo, parse_impl("frr"), 3, tmp_path).read_text())
    for name in ("hub1", "spoke1"):
        assert "tc qdisc replace dev inet root netem delay 37.5ms" in doc["topology"]["nodes"][name]["exec"]
    assert "tc qdisc replace dev spoke1 root netem delay 37.5ms" in doc["topology"]["nodes"]["inet"]["exec"]
    assert not [c for c in doc["topology"]["nodes"]["spoke1_h"]["exec"] if c.startswith("tc ")]


def extras(topo: spec.Topology, node: spec.Node, impl: str | None, phase: int) -> list[str]:
    """What FrrDriver.start / NhrpdDriver.start add to a node, as the shell says it: a
    hub's multicast (both replicate it) and phase 3 redirect rules."""
    rules = [" ".join(["iptables", *r]) for r in frr.MCAST_RULES + ([frr.REDIRECT_RULE] if phase == 3 else [])]
    if impl == "frr" and node.role == "hub":
        return rules
    if impl != "nhrpd":
        return []
    out = [f"ip route replace {p} via {v} dev gre1 onlink metric {m}"
           for p, v, m in nhrpd.static_routes(view(topo, node, phase))]
    return out + (rules if node.role == "hub" else []) + ["touch /run/dmvpnkit-underlay.ready"]


# ---------------------------------------------------------------- the export, everywhere

@pytest.mark.parametrize("harness", [False, True], ids=["standalone", "harness"])
@pytest.mark.parametrize("impl_text", IMPLS)
@pytest.mark.parametrize("topo_file", TOPOLOGIES, ids=[p.stem for p in TOPOLOGIES])
def test_export(topo_file: Path, impl_text: str, harness: bool, tmp_path: Path, lab: str) -> None:
    topo = spec.load(topo_file)
    impl = parse_impl(impl_text)
    lab_dir = tmp_path / "labdir"
    for phase in (1, 2, 3):
        out = tmp_path / f"p{phase}"
        path = clab.export(topo, impl, phase, out, harness=harness, lab_dir=lab_dir, name=lab)
        assert path == out.resolve() / f"{lab}.clab.yml"
        doc = load(path)
        # containerlab's required keys, and namespaces at clab-<lab>-<node>
        assert doc["name"] == lab and doc.get("prefix", "clab") == "clab"
        nodes = doc["topology"]["nodes"]
        assert isinstance(nodes, dict) and set(nodes) == set(topo.nodes)
        # no management network: skipped, as every node has network-mode none
        assert doc["mgmt"] == {"skip-when-unused": True}
        for name, entry in nodes.items():
            node = topo.nodes[name]
            who = impl[node.role] if node.is_dmvpn else None
            assert entry["kind"] == "linux" and entry["restart-policy"] == "no", name
            assert entry["network-mode"] == "none", name
            assert entry["labels"]["dmvpnkit.role"] == node.role
            for b in entry.get("binds", []):
                assert host_side(b, path).exists(), f"{name}: {b}: host side missing"
            if who == "frr":
                assert entry["image"] == frr.IMAGE
                assert bound(entry, "/etc/frr/frr.conf").read_bytes() == frr.render(view(topo, node, phase)).encode()
                daemons = dict(line.split("=", 1) for line in bound(entry, "/etc/frr/daemons").read_text()
                               .splitlines() if "=" in line and not line.startswith("#"))
                switches = {d: v for d, v in daemons.items() if not d.endswith("_options") and d != "vtysh_enable"}
                assert {d for d, v in switches.items() if v == "yes"} == set(frr.DAEMONS)
                assert {v for d, v in switches.items() if d not in frr.DAEMONS} == {"no"}
                assert "bgpd" in switches and "ospfd" in switches
            elif who == "nhrpd":
                assert entry["image"] == nhrpd.IMAGE
                drv = driver(topo, phase, tmp_path / f"drv{phase}", [name])
                drv.write_configs()
                want = (tmp_path / f"drv{phase}" / "nodes" / name / "nhrpd.json").read_bytes()
                assert bound(entry, "/etc/dmvpnkit/nhrpd.json").read_bytes() == want
            else:
                assert entry["image"] == clab.DEFAULT_LINUX_IMAGE
            if harness:
                assert "exec" not in entry and entry["cmd"] == "sleep infinity" and entry["pid-mode"] == "host"
                same = {b.split(":")[0] for b in entry["binds"] if b.split(":")[0] == b.split(":")[1]}
                nid = f"clab-{lab}-{name}"
                assert {str(lab_dir.resolve()), str(RUN_ROOT / nid)} <= same
                if who == "frr":
                    assert str(frr.RUN_DIR / nid) in same
                if who == "nhrpd":
                    assert sys.prefix in same
                    assert str(Path(sys.executable).parent.parent) == sys.prefix
            else:
                want_u = underlay.commands(underlay.plan(topo, node))
                assert entry["exec"] == want_u + netem(topo, name) + extras(topo, node, who, phase), name
                if who == "nhrpd":
                    assert "-m dmvpnkit.nhrpd --config /etc/dmvpnkit/nhrpd.json" in entry["cmd"]
                    assert f"--nbma-interface {node.nbma_iface}" in entry["cmd"]
                    assert ("--nflog-group 1" in entry["cmd"]) == (node.role == "hub" and phase == 3)
        links = [ends(link) for link in doc["topology"]["links"]]
        for pair in links:
            for n, iface in pair:
                assert n in nodes, f"endpoint {n}:{iface}: no such node in the file"
                assert iface in {i.name for i in topo.nodes[n].ifaces}, f"endpoint {n}:{iface}: no such interface"
        assert sorted(sorted(n for n, _ in pair) for pair in links) == \
            sorted(sorted((link.a, link.b)) for link in topo.links)
        assert clab.check_export(path, topo) == []
        assert clab.check_export(path) == []         # the topology named by its labels


def test_export_default_name_and_mgmt(tmp_path: Path) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    path = clab.export(topo, parse_impl("frr"), 3, tmp_path, mgmt=True)
    assert path.name == "hub_2spoke.clab.yml"
    doc = load(path)
    assert doc["name"] == "hub_2spoke" and "mgmt" not in doc
    assert all("network-mode" not in e for e in doc["topology"]["nodes"].values())
    assert clab.check_export(path) == []
    odd = spec.loads("name: My-Lab\nhubs: {hub1: {}}\nspokes: {spoke1: {}}\n")
    assert clab.lab_name(odd) == "my_lab"
    with pytest.raises(clab.ExportError, match=r"lab name '_x'.*containerlab needs"):
        clab.lab_name(odd, "_x")
    with pytest.raises(clab.ExportError, match=r"impl\['spoke'\] = 'bird'"):
        clab.export(topo, {"hub": "frr", "spoke": "bird"}, 3, tmp_path)
    with pytest.raises(clab.ExportError, match="give lab_dir"):
        clab.export(topo, parse_impl("frr"), 3, tmp_path, harness=True)


def test_eth0_is_renamed_only_beside_the_management_network(tmp_path: Path, lab: str) -> None:
    """A hub called eth0 names the router's interface eth0, which is the management
    interface once containerlab's network is asked for: renamed, and the label says so."""
    topo = spec.loads("name: e\nhubs: {eth0: {}}\nspokes: {spoke1: {}}\n")
    assert clab.iface_names(topo, mgmt=False)["inet"]["eth0"] == "eth0"
    path = clab.export(topo, parse_impl("nhrpd"), 3, tmp_path, mgmt=True)
    doc = load(path)
    inet = doc["topology"]["nodes"]["inet"]
    new = clab.iface_names(topo, mgmt=True)["inet"]["eth0"]
    assert new != "eth0" and new not in {i.name for i in topo.nodes["inet"].ifaces}
    assert inet["labels"][f"dmvpnkit.ifname.{new}"] == "eth0"
    assert f"ip link set {new} up" in inet["exec"] and "ip link set eth0 up" not in inet["exec"]
    assert f"sysctl -qw net.ipv6.conf.{new}.disable_ipv6=1" in inet["exec"]
    assert not [c for c in inet["exec"] if "eth0" in c]
    assert ["eth0:inet", f"inet:{new}"] in [link["endpoints"] for link in doc["topology"]["links"]]
    assert clab.check_export(path, topo) == []
    with pytest.raises(clab.ExportError, match="harness mode needs the topology's interface names.*inet:eth0"):
        clab.export(topo, parse_impl("nhrpd"), 3, tmp_path, mgmt=True, harness=True, lab_dir=tmp_path, name=lab)


def test_a_node_called_host_gets_a_veth_link(tmp_path: Path) -> None:
    """`host:x` in a brief link is containerlab's host link, not a node's interface."""
    topo = spec.loads("name: h\nhubs: {host: {}}\nspokes: {spoke1: {}}\n")
    doc = load(clab.export(topo, parse_impl("frr"), 3, tmp_path))
    veth = [link for link in doc["topology"]["links"] if link.get("type") == "veth"]
    assert [sorted(e["node"] for e in link["endpoints"]) for link in veth] == [["host", "inet"], ["host", "host_h"]]
    assert clab.check_export(tmp_path / "h.clab.yml", topo) == []


# ---------------------------------------------------------------- any implementation's container part

class _Boxed(frr.FrrDriver):
    """An outside implementation: its container comes only from its own container part."""
    name = "boxed"

    @classmethod
    def container(cls, v: DmvpnView, *, node_id: str, harness: bool, image: str | None) -> ContainerPlan:
        if harness:
            state = RUN_ROOT / node_id / "boxed"
            return ContainerPlan(image or "example/boxed:1", {"/etc/boxed.conf": f"{v.role} {v.tunnel_address}\n"},
                                 binds=(f"{state}:/var/boxed",), dirs=(state,))
        return ContainerPlan(image or "example/boxed:1", {"/etc/boxed.conf": f"{v.role} {v.tunnel_address}\n"},
                             exec=(f"echo {v.nbma_interface}",), cmd="boxed --foreground")


class _Bare(implementations.Driver):
    """Everything an implementation must have, and no container part. Never started here."""
    name = "bare"
    unimplemented: dict[str, str] = {}
    views = ()
    ipsec_couplings = ()

    @classmethod
    def version(cls, variables: Any) -> str:
        return "bare 1"

    def write_configs(self) -> None:
        raise AssertionError("not run")

    start = stop = write_configs

    def stop_daemon(self, node: str, daemon: str) -> None:
        raise AssertionError("not run")

    start_daemon = stop_daemon


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(implementations, "_added", {})
    implementations.add(_Boxed)
    implementations.add(_Bare)


@pytest.mark.parametrize("harness", [False, True], ids=["standalone", "harness"])
def test_an_outside_implementation_exports_from_its_container_part(outside: None, harness: bool, tmp_path: Path,
                                                                    lab: str) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    path = clab.export(topo, parse_impl("hub=frr,spoke=boxed"), 3, tmp_path / "out", harness=harness,
                       lab_dir=tmp_path / "labdir", name=lab, images={"frr": "example/frr:9"})
    doc = load(path)
    nodes = doc["topology"]["nodes"]
    spoke = nodes["spoke1"]
    assert spoke["image"] == "example/boxed:1" and nodes["hub1"]["image"] == "example/frr:9"
    assert bound(spoke, "/etc/boxed.conf").read_text() == "spoke 10.255.0.11\n"
    if harness:
        state = RUN_ROOT / f"clab-{lab}-spoke1"
        assert f"{state / 'boxed'}:/var/boxed" in spoke["binds"] and spoke["cmd"] == "sleep infinity"
        assert json.loads(spoke["labels"]["dmvpnkit.dirs"]) == [str(state), str(state / "boxed")]
        assert (state / "boxed").is_dir()
        assert json.loads(nodes["hub1"]["labels"]["dmvpnkit.dirs"])[1] == str(frr.RUN_DIR / f"clab-{lab}-hub1")
    else:
        assert spoke["exec"][-1] == "echo inet" and spoke["cmd"] == "boxed --foreground"
        assert "cmd" not in nodes["hub1"]          # FRR keeps the image's own (watchfrr)
    assert clab.check_export(path, topo) == []
    if harness:
        spoke["binds"].remove(f"{state / 'boxed'}:/var/boxed")
        expect = f"spoke1.binds: harness mode: boxed's container part binds {state / 'boxed'}:/var/boxed; missing"
    else:
        spoke["cmd"] = "boxed"
        expect = "spoke1.cmd: must be 'boxed --foreground' (None: the image's own), got 'boxed'"
    problems = clab.check_doc(doc, path, topo)
    assert any(p.endswith(expect) for p in problems), problems


def test_an_implementation_without_a_container_part_is_named(outside: None, tmp_path: Path) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    with pytest.raises(clab.ExportError, match="spoke1: implementation 'bare' has no container part"):
        clab.export(topo, parse_impl("hub=frr,spoke=bare"), 3, tmp_path)
    path = clab.export(topo, parse_impl("frr"), 3, tmp_path)
    doc = load(path)
    doc["topology"]["nodes"]["spoke2"]["labels"]["dmvpnkit.impl"] = "bare"
    assert any("topology.nodes.spoke2.labels.dmvpnkit.impl: a spoke needs an implementation with a container part"
               in p and "'bare' has no container part" in p for p in clab.check_doc(doc, path, topo))


def test_images_by_name_from_the_cli_and_the_environment(tmp_path: Path) -> None:
    from dmvpnkit.cli.main import main
    assert clab.image_env("frr") == "DMVPNKIT_CLAB_FRR_IMAGE" and clab.image_env("my-router") == \
        "DMVPNKIT_CLAB_MY_ROUTER_IMAGE"
    topo_file = str(REPO / "topologies" / "hub_2spoke.yaml")
    assert main(["lab", "export", topo_file, "--format", "clab", "-o", str(tmp_path), "--impl", "hub=frr,spoke=nhrpd",
                 "--image", "frr=example/frr:1", "--image", "linux=example/linux:1"]) == 0
    nodes = load(tmp_path / "hub_2spoke.clab.yml")["topology"]["nodes"]
    assert (nodes["hub1"]["image"], nodes["spoke1"]["image"], nodes["inet"]["image"]) == \
        ("example/frr:1", nhrpd.IMAGE, "example/linux:1")
    assert main(["lab", "export", topo_file, "--format", "clab", "-o", str(tmp_path), "--image", "frr"]) != 0


# ---------------------------------------------------------------- every check can fail

def _frr_conf_edited(doc: dict[str, Any], tmp: Path) -> None:
    hub = doc["topology"]["nodes"]["hub1"]
    fake = tmp / "frr.conf"
    fake.write_text(Path(hub["binds"][1].split(":")[0]).read_text().replace("holdtime 60", "holdtime 61"))
    hub["binds"][1] = f"{fake}:/etc/frr/frr.conf:ro"


def _daemons_bgpd(doc: dict[str, Any], tmp: Path) -> None:
    hub = doc["topology"]["nodes"]["hub1"]
    fake = tmp / "daemons"
    fake.write_text(Path(hub["binds"][0].split(":")[0]).read_text().replace("bgpd=no", "bgpd=yes"))
    hub["binds"][0] = f"{fake}:/etc/frr/daemons:ro"


def _nhrpd_json_edited(doc: dict[str, Any], tmp: Path) -> None:
    spoke = doc["topology"]["nodes"]["spoke1"]
    fake = tmp / "nhrpd.json"
    cfg = json.loads(Path(spoke["binds"][0].split(":")[0]).read_text())
    fake.write_text(json.dumps({**cfg, "holdtime": 61}, indent=2) + "\n")
    spoke["binds"][0] = f"{fake}:/etc/dmvpnkit/nhrpd.json:ro"


def _drop_bind(entry: dict[str, Any], container_prefix: str) -> None:
    drop = [b for b in entry["binds"] if b.split(":")[1].startswith(container_prefix)]
    assert len(drop) == 1, entry["binds"]
    entry["binds"].remove(drop[0])


def _set(*keys: str | int, value: Any) -> Callable[[dict[str, Any], Path], None]:
    def mutate(doc: dict[str, Any], tmp: Path) -> None:
        d: Any = doc
        for k in keys[:-1]:
            d = d[k]
        if value is _DELETE:
            del d[keys[-1]]
        else:
            d[keys[-1]] = value
    return mutate


_DELETE = object()
N = ("topology", "nodes")
STANDALONE_CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any], Path], None], str]] = [
    ("endpoint-node", _set("topology", "links", 0, "endpoints", 0, value="spoke9:inet"), "no node 'spoke9'"),
    ("endpoint-iface", _set("topology", "links", 0, "endpoints", 1, value="inet:nope"), "no interface 'nope'"),
    ("link-missing", lambda d, t: d["topology"]["links"].pop(), "appears 0 times"),
    ("link-twice", lambda d, t: d["topology"]["links"].append(copy.deepcopy(d["topology"]["links"][0])),
     "appears 2 times"),
    ("restart-policy", _set(*N, "inet", "restart-policy", value="always"), "restart-policy: must be 'no'"),
    ("kind", _set(*N, "inet", "kind", value="nokia_srlinux"), "kind: must be 'linux'"),
    ("network-mode", _set(*N, "spoke1", "network-mode", value=_DELETE), "network-mode: must be 'none'"),
    ("skip-mgmt", _set("mgmt", value=_DELETE), "mgmt.skip-when-unused"),
    ("name", _set("name", value=_DELETE), "name: containerlab requires"),
    ("nodes-empty", _set(*N, value={}), "topology.nodes: containerlab requires"),
    ("node-missing", lambda d, t: d["topology"]["nodes"].pop("spoke2_h"), "missing ['spoke2_h']"),
    ("role", _set(*N, "spoke1", "labels", "dmvpnkit.role", value="hub"), "must be 'spoke'"),
    ("bind-host", _set(*N, "hub1", "binds", 2, value="/nonexistent/vtysh.conf:/etc/frr/vtysh.conf"),
     "host side /nonexistent/vtysh.conf does not exist"),
    ("frr.conf", _frr_conf_edited, "differs from frr's container part"),
    ("daemons", _daemons_bgpd, "daemons differs from frr's container part"),
    ("nhrpd.json", _nhrpd_json_edited, "differs from nhrpd's container part"),
    ("exec-underlay", lambda d, t: d["topology"]["nodes"]["spoke2"]["exec"].pop(0),
     "must start with the node's underlay"),
    ("exec-redirect", lambda d, t: d["topology"]["nodes"]["hub1"]["exec"].pop(), "after the underlay must come"),
    ("nhrpd-cmd", _set(*N, "spoke1", "cmd", value="sleep infinity"), "the image's own), got 'sleep infinity'"),
]
HARNESS_CORRUPTIONS: list[tuple[str, Callable[[dict[str, Any], Path], None], str]] = [
    ("cmd", _set(*N, "hub1", "cmd", value="/usr/lib/frr/docker-start"), "must idle"),
    ("exec", _set(*N, "inet", "exec", value=["ip link set lo up"]), "no exec"),
    ("pid-mode", _set(*N, "spoke1", "pid-mode", value=_DELETE), "pid-mode: harness mode"),
    ("frr-run-dir", lambda d, t: _drop_bind(d["topology"]["nodes"]["hub1"], "/run/frr/"),
     "/run/frr/clab-"),
    ("frr-var-run-dir", lambda d, t: _drop_bind(d["topology"]["nodes"]["hub1"], "/var/run/frr/"),
     "/var/run/frr/clab-"),
    ("venv", lambda d, t: d["topology"]["nodes"]["spoke1"]["binds"].remove(f"{sys.prefix}:{sys.prefix}:ro"),
     f"binds {sys.prefix}:{sys.prefix}:ro; missing"),
    ("lab-dir-label", _set("topology", "defaults", "labels", "dmvpnkit.lab-dir", value=_DELETE),
     "must name the lab directory"),
]


@pytest.mark.parametrize("what,mutate,expect", STANDALONE_CORRUPTIONS, ids=[c[0] for c in STANDALONE_CORRUPTIONS])
def test_check_finds_standalone_problems(what: str, mutate: Callable[[dict[str, Any], Path], None], expect: str,
                                         tmp_path: Path) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    path = clab.export(topo, parse_impl("hub=frr,spoke=nhrpd"), 3, tmp_path / "out")
    doc = load(path)
    assert clab.check_doc(copy.deepcopy(doc), path, topo) == []
    mutate(doc, tmp_path)
    problems = clab.check_doc(doc, path, topo)
    assert any(expect in p for p in problems), problems
    assert all(p.startswith(f"{path}: ") for p in problems)


@pytest.mark.parametrize("what,mutate,expect", HARNESS_CORRUPTIONS, ids=[c[0] for c in HARNESS_CORRUPTIONS])
def test_check_finds_harness_problems(what: str, mutate: Callable[[dict[str, Any], Path], None], expect: str,
                                      tmp_path: Path, lab: str) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    path = clab.export(topo, parse_impl("hub=frr,spoke=nhrpd"), 3, tmp_path / "out", harness=True,
                       lab_dir=tmp_path / "labdir", name=lab)
    doc = load(path)
    assert clab.check_doc(copy.deepcopy(doc), path, topo) == []
    mutate(doc, tmp_path)
    problems = clab.check_doc(doc, path, topo)
    assert any(expect in p for p in problems), problems


def test_check_reports_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "none.yml"
    assert clab.check_export(missing) == [f"{missing}: cannot read: No such file or directory"]
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    assert clab.check_export(bad)[0].startswith(f"{bad}: not YAML")


# ---------------------------------------------------------------- the backend on this machine

def _engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30, check=False).returncode == 0


def _host_has_gre() -> bool:
    done = subprocess.run(["unshare", "--net", "ip", "link", "add", "dkt0", "type", "gre", "local", "127.0.0.1"],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0


def test_available_names_what_this_machine_lacks() -> None:
    reason = clab.ClabBackend.available()
    lacks = {"docker client": shutil.which("docker") is None,
             "Docker engine": not _engine_answers() or not (os.environ.get("DOCKER_HOST")
                                                            or Path("/var/run/docker.sock").exists()),
             "containerlab binary": shutil.which("containerlab") is None,
             "lacks: gre": not _host_has_gre()}
    if not any(lacks.values()):
        assert reason is None
        return
    assert reason is not None
    for piece, missing in lacks.items():
        assert (piece in reason) == missing, f"{piece!r} missing={missing}: {reason}"
    if lacks["Docker engine"] and not Path("/var/run/docker.sock").exists():
        assert "/var/run/docker.sock missing" in reason
    if lacks["lacks: gre"]:
        assert f"host kernel {os.uname().release} lacks: gre (" in reason


def test_backend_is_registered_and_refuses_to_build_here(tmp_path: Path, lab: str) -> None:
    assert backends.get("clab") is clab.ClabBackend
    assert clab.ClabBackend.name == "clab" and clab.ClabBackend.in_lab_kernel is False
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    b = clab.ClabBackend(lab, topo, tmp_path)
    assert vars(b) == {"lab": lab, "topo": topo, "lab_dir": tmp_path, "_nodes": {}}    # the constructor only assigns
    reason = clab.ClabBackend.available()
    if reason is None:
        pytest.skip("this machine could deploy a clab lab; the refusal is not testable here")
    with pytest.raises(backends.BackendError) as e:
        b.build()
    assert str(e.value) == f"lab {lab}: --backend clab cannot run here: {reason}"
    assert not (tmp_path / "clab").exists()


def test_nodes_are_containers(tmp_path: Path, lab: str) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    b = clab.ClabBackend(lab, topo, tmp_path)
    n = b.node("spoke1")
    assert isinstance(n, clab.ClabNode) and b.node("spoke1") is n
    assert (n.name, n.id, n.netns, n.container) == ("spoke1", f"clab-{lab}-spoke1", f"clab-{lab}-spoke1",
                                                   f"clab-{lab}-spoke1")
    assert n.run_dir == RUN_ROOT / f"clab-{lab}-spoke1"
    assert n.docker_argv(["ip", "-j", "link"], env={"A": "1"}) == \
        ["docker", "exec", "-e", "A=1", f"clab-{lab}-spoke1", "ip", "-j", "link"]
    with pytest.raises(backends.BackendError, match="has no node 'nope'"):
        b.node("nope")
    with pytest.raises(CommandError, match=f"namespace clab-{lab}-spoke1 is gone"):
        n.run(["true"])                  # the harness's tools go through the namespace
    with pytest.raises(backends.BackendError, match="IPsec on clab is out of scope"):
        n.popen(["charon"], private_run=tmp_path, in_image=True)
    with pytest.raises(backends.BackendError, match=rf"docker exec -it clab-{lab}-hub1 vtysh -N clab-{lab}-hub1"):
        b.cli()


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on PATH")
def test_in_image_commands_go_through_docker_exec(lab: str) -> None:
    if _engine_answers():
        pytest.skip("a Docker engine answers: there is no container to refuse the command")
    n = clab.ClabNode("spoke1", f"clab-{lab}-spoke1")
    with pytest.raises(CommandError) as e:
        n.run(["ip", "link"], in_image=True, env={"X": "1"})
    assert e.value.argv == ("docker", "exec", "-e", "X=1", f"clab-{lab}-spoke1", "ip", "link")
    assert e.value.rc != 0 and "docker daemon" in e.value.err.lower()


def test_state_files_reap_and_running(tmp_path: Path, lab: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clab_backend, "STATE_DIR", tmp_path / "state")
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    b = clab.ClabBackend(lab, topo, tmp_path)
    assert clab.ClabBackend.running() == set() and clab.ClabBackend.reap(lab) == [] and b.destroy() == []
    with pytest.raises(backends.BackendError, match=f"no clab lab {lab} on this machine"):
        b.attach()
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / lab).write_text(json.dumps({"lab": lab, "file": str(tmp_path / "gone.clab.yml"),
                                                      "containers": [f"clab-{lab}-hub1"]}))
    assert clab.ClabBackend.running() == {lab}
    b.attach()
    with pytest.raises(backends.BackendError, match=f"containerlab destroy --name {lab} --cleanup"):
        clab.ClabBackend.reap(lab)
    if shutil.which("containerlab") is None:
        lab_file = clab.export(topo, parse_impl("frr"), 3, tmp_path / "clab", name=lab)
        (tmp_path / "state" / lab).write_text(json.dumps({"lab": lab, "file": str(lab_file), "containers": []}))
        with pytest.raises(backends.BackendError, match=f"no containerlab binary on PATH, needed for {lab_file}"):
            clab.ClabBackend.reap(lab)
        with pytest.raises(backends.BackendError, match="no containerlab binary on PATH"):
            b.impair("spoke1", "inet", None)
        assert clab.ClabBackend.running() == {lab}     # nothing destroyed: still there to retry


def test_impl_and_phase_come_from_lab_json(tmp_path: Path, lab: str) -> None:
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    b = clab.ClabBackend(lab, topo, tmp_path)
    with pytest.raises(backends.BackendError, match="lab.json: cannot read the lab's implementations"):
        b._impl_phase()           # the lab writes it before build(): never guessed
    (tmp_path / "lab.json").write_text(json.dumps({"impl": {"hub": "frr", "spoke": "nhrpd"}, "phase": 2}))
    assert b._impl_phase() == ({"hub": "frr", "spoke": "nhrpd"}, 2)
    (tmp_path / "lab.json").write_text(json.dumps({"impl": "frr", "phase": 2}))
    with pytest.raises(backends.BackendError, match="lab.json: `impl` must map hub and spoke"):
        b._impl_phase()


# ---------------------------------------------------------------- images

def test_frr_image_matches_the_frr_the_driver_targets() -> None:
    assert frr.IMAGE == f"quay.io/frrouting/frr:{frr.IMAGE_VERSION}"
    nhrpd = Path("/usr/lib/frr/nhrpd")
    if not nhrpd.exists():
        pytest.skip("no host FRR to compare with")
    version = subprocess.run([str(nhrpd), "--version"], capture_output=True, text=True, check=True).stdout.split()[2]
    assert version.split(".")[:2] == frr.IMAGE_VERSION.split(".")[:2], version


def test_dockerfile_builds_the_images_the_export_names() -> None:
    text = (REPO / "containers" / "nhrpd" / "Dockerfile").read_text()
    froms = [line.split() for line in text.splitlines() if line.startswith("FROM ")]
    assert [f[-1] for f in froms] == ["linux", "frr", "build", "nhrpd"]      # nhrpd: the default target
    assert f"ARG FRR=quay.io/frrouting/frr:{frr.IMAGE_VERSION}" in text
    assert "ARG DEBIAN=debian:bookworm-slim" in text
    for pkg in ("iproute2", "iptables", "procps", "python3"):
        assert f" {pkg}" in text, pkg
    assert "python3 -m venv /opt/dmvpnkit" in text and "/opt/dmvpnkit/bin/pip install" in text
    assert nhrpd.IMAGE == "dmvpnkit/nhrpd:0.1.0" and clab.DEFAULT_LINUX_IMAGE == "dmvpnkit/linux:0.1.0"
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert {"*", "!pyproject.toml", "!README.md", "!src"} <= set(ignore)


def test_harness_nhrpd_needs_the_images_python(tmp_path: Path, lab: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's venv runs in the image only on the python it was made from."""
    topo = spec.load(REPO / "topologies" / "hub_2spoke.yaml")
    monkeypatch.setattr(sys, "executable", "/opt/elsewhere/bin/python3.12")
    with pytest.raises(clab.ExportError, match="whose python is /usr/bin/python3.11, but it is /opt/elsewhere"):
        clab.export(topo, parse_impl("nhrpd"), 3, tmp_path, harness=True, lab_dir=tmp_path, name=lab)
    path = clab.export(topo, parse_impl("nhrpd"), 3, tmp_path, harness=True, lab_dir=tmp_path, name=lab,
                       images={"nhrpd": "example/own-python:1"})
    assert load(path)["topology"]["nodes"]["spoke1"]["image"] == "example/own-python:1"
