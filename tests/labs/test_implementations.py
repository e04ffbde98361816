"""The Implementation registry, the DMVPN view every renderer gets, FRR from another
tree, and `dmvpnkit implementations` (no lab: tests/fixtures/test_implementations_lab.py
runs them on real labs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from dmvpnkit.labs import implementations, spec
from dmvpnkit.labs.implementations import frr
from dmvpnkit.labs.implementations.view import Route, view
from dmvpnkit.labs.lab import LabError, parse_impl

TOPO = Path(__file__).parents[2] / "topologies"


def test_builtins_come_from_the_entry_point_group() -> None:
    assert {"frr", "nhrpd"} <= set(implementations.names())
    for name in ("frr", "nhrpd"):
        cls = implementations.get(name)
        assert cls.name == name and implementations.check(cls) == []
        assert "dmvpnkit.labs.implementations" in implementations.origin(name)
    assert implementations.get("frr").ipsec_couplings == ("trap",)
    assert implementations.get("nhrpd").ipsec_couplings == ("vici",)
    assert "purge-resolvers" in implementations.get("nhrpd").unimplemented


def test_unknown_implementation_names_the_installed_ones() -> None:
    with pytest.raises(LabError, match=r"--impl 'hub=frr,spoke=nope': spoke: no implementation 'nope' "
                                       r"\(installed: frr, nhrpd.*entry point group dmvpnkit.implementations"):
        parse_impl("hub=frr,spoke=nope")
    assert parse_impl("hub=nhrpd,spoke=frr") == {"hub": "nhrpd", "spoke": "frr"}


def test_a_class_missing_parts_is_refused_naming_them() -> None:
    class Half:
        name = "half"
        views = ("cache", "routes")
        ipsec_couplings = ("tunnel-protection",)

        def start(self) -> None: ...

    problems = implementations.check(Half)
    assert {"no unimplemented", "no stop", "no write_configs", "no version"} <= set(problems), problems
    assert any("views: unknown 'routes'" in p for p in problems), problems
    assert any("ipsec_couplings: unknown 'tunnel-protection'" in p for p in problems), problems
    with pytest.raises(implementations.ImplementationError, match="implementation 'half': no unimplemented"):
        implementations.add(Half)
    assert "half" not in implementations.names()


def test_view_of_a_hub_and_its_spokes() -> None:
    topo = spec.load(TOPO / "hub_2spoke.yaml")
    hub = view(topo, topo.nodes["hub1"], 3)
    assert (hub.role, hub.redirect, hub.shortcut, hub.nhs, hub.interface) == ("hub", True, False, (), "gre1")
    assert [(str(r.prefix), str(r.via), r.kind) for r in hub.routes] == [
        ("10.1.1.0/24", "10.255.0.11", "spoke-lan"), ("10.1.2.0/24", "10.255.0.12", "spoke-lan")]
    s1 = view(topo, topo.nodes["spoke1"], 2)
    assert (s1.role, s1.redirect, s1.shortcut, s1.lan_prefixes) == ("spoke", False, True, (IPv4Network("10.1.1.0/24"),))
    assert [n.name for n in s1.nhs] == ["hub1"] and s1.nhs[0].protocol == topo.nodes["hub1"].tunnel
    # phase 2: the far spoke's LAN via that spoke; phase 3 has no such route
    assert Route(IPv4Network("10.1.2.0/24"), IPv4Address("10.255.0.12"), "far-spoke") in s1.routes
    assert not [r for r in view(topo, topo.nodes["spoke1"], 3).routes if r.kind == "far-spoke"]
    assert json.dumps(s1.context(), default=str)        # templates and JSON get plain values
    with pytest.raises(ValueError, match="inet: not a DMVPN node"):
        view(topo, topo.nodes["inet"], 3)


def test_view_of_natted_nodes() -> None:
    """A spoke behind NAT says so; its NHS is the hub's own address. (hub_nat: the hub's.)"""
    topo = spec.load(TOPO / "spoke_nat.yaml")
    v = view(topo, topo.nodes["spoke2"], 3)
    assert v.behind_nat and not view(topo, topo.nodes["spoke1"], 3).behind_nat
    assert v.nhs[0].nbma == topo.nodes["hub1"].nbma


def _copy_frr(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for d in frr.DAEMONS:
        shutil.copy2(frr.FRR_LIB / d, root / d)


@pytest.mark.skipif(not (frr.FRR_LIB / "nhrpd").exists(), reason="Debian's FRR is not installed")
@pytest.mark.parametrize("layout", ["", "sbin", "lib/frr", "build"])
def test_frr_prefix_finds_an_install_or_build_tree(tmp_path: Path, layout: str) -> None:
    if layout == "build":          # zebra/zebra, staticd/staticd, nhrpd/nhrpd
        for d in frr.DAEMONS:
            (tmp_path / d).mkdir()
            shutil.copy2(frr.FRR_LIB / d, tmp_path / d / d)
    else:
        _copy_frr(tmp_path / layout)
    variables = {"frr_prefix": str(tmp_path)}
    for d in frr.DAEMONS:
        path = frr.binary(variables, d)
        assert path.is_file() and path.is_relative_to(tmp_path) and path.name == d, path
    version = implementations.get("frr").version(variables)
    assert version.startswith("nhrpd version ") and str(tmp_path) in version, version
    assert frr.binary({}, "zebra") == frr.FRR_LIB / "zebra"


def test_frr_prefix_without_the_daemons_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin" / "zebra").write_text("")
    with pytest.raises(implementations.ImplementationError,
                       match=rf"--frr-prefix {tmp_path}: no zebra, staticd, nhrpd under it \(looked in \., sbin"):
        frr.binaries({"frr_prefix": str(tmp_path)})


def test_implementations_command_lists_what_each_declares(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "dmvpnkit.cli.main", "implementations"]
    done = subprocess.run([*cli, "--json"], capture_output=True, text=True)
    assert done.returncode == (0 if (frr.FRR_LIB / "nhrpd").exists() else 1), done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["nhrpd"]["ipsec"] == ["vici"] and rows["frr"]["ipsec"] == ["trap"]
    assert rows["nhrpd"]["views"] == ["cache", "nhs", "shortcuts"]
    assert "purge-resolvers" in rows["nhrpd"]["unimplemented"]
    assert set(rows["frr"]["unimplemented"]) == {"ospf-broadcast"}
    bad = subprocess.run([*cli, "--frr-prefix", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 1 and f"frr: unavailable: --frr-prefix {tmp_path}: no zebra" in bad.stdout, bad.stdout


@pytest.mark.skipif(not (frr.FRR_LIB / "nhrpd").exists(), reason="Debian's FRR is not installed")
def test_a_config_frr_cannot_read_is_an_error_naming_the_directory(tmp_path: Path) -> None:
    """pytest's own tmp root is 0700: staticd would start without its routes."""
    conf = tmp_path / "frr.conf"
    conf.write_text("!\n")
    blocked = next(d for d in reversed(conf.parents) if d.exists() and not d.stat().st_mode & 0o001)
    with pytest.raises(implementations.ImplementationError,
                       match=rf"user frr cannot read {conf} .*: {blocked} is not traversable by others"):
        frr.readable_by_frr(conf)
    ok = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        ok.chmod(0o755)
        (ok / "frr.conf").write_text("!\n")
        frr.readable_by_frr(ok / "frr.conf")
    finally:
        shutil.rmtree(ok)
