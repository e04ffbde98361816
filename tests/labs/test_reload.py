"""`dmvpnkit lab reload NODE` on real labs: a node's edited configuration reaches its
running daemons (built-in FRR driver, and FRR through implementations/frr-profile.yaml),
and an implementation that declares no reload says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmvpnkit.labs.implementations import frr

from .conftest import REPO, dmvpnkit

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(not (frr.FRR_LIB / "nhrpd").exists(), reason="Debian's FRR is not installed")]


@pytest.mark.parametrize("impl", ["frr", str(REPO / "implementations" / "frr-profile.yaml")], ids=["frr", "profile"])
def test_reload_applies_the_edited_config(lab_up, impl: str) -> None:
    lab, _ = lab_up("hub_2spoke", "--impl", impl)
    st = lab.status()
    spoke1 = next(n for n in st["nodes"] if n["name"] == "spoke1")
    conf = Path(st["lab_dir"]) / "nodes" / "spoke1" / "frr.conf"
    text = conf.read_text()
    assert " ip nhrp holdtime 60\n" in text

    def running() -> str:
        return lab.exec("spoke1", "vtysh", "-N", spoke1["id"], "-c", "show running-config").stdout

    assert " ip nhrp holdtime 60\n" in running()
    conf.write_text(text.replace(" ip nhrp holdtime 60\n", " ip nhrp holdtime 90\n"))
    pids = lab.exec("spoke1", "cat", f"/run/frr/{spoke1['id']}/nhrpd.pid").stdout
    out = dmvpnkit("lab", "reload", "--lab", lab.name, "spoke1")
    assert f"spoke1: {'frr' if impl == 'frr' else 'frr-profile'} applied {conf.parent}\n" == out.stdout
    now = running()
    assert " ip nhrp holdtime 90\n" in now and " ip nhrp holdtime 60\n" not in now
    # applied to the running daemon, not by restarting it
    assert lab.exec("spoke1", "cat", f"/run/frr/{spoke1['id']}/nhrpd.pid").stdout == pids


def test_reload_without_a_reload_is_refused(lab_up) -> None:
    lab, _ = lab_up("hub_2spoke", "--impl", "nhrpd")
    p = dmvpnkit("lab", "reload", "--lab", lab.name, "spoke1", check=False)
    assert p.returncode == 2
    assert "nhrpd: reload: spoke1's implementation declares no reload" in p.stderr
    p = dmvpnkit("lab", "reload", "--lab", lab.name, "inet", check=False)
    assert p.returncode == 2 and "'inet' is not a DMVPN node (those are hub1, spoke1, spoke2)" in p.stderr
