"""DMVPN phase 3: the hub redirects (Traffic Indication), the spoke resolves, traffic
goes direct."""

from __future__ import annotations

import pytest

from ..conftest import seen
from ..wire import show

pytestmark = [pytest.mark.topology("hub_2spoke"), pytest.mark.phases(3)]


@pytest.fixture(scope="module")
def redirected(lab, request):
    """Hairpin traffic spoke1_h -> spoke2_h through the hub, captured, then a second burst."""
    from dmvpnkit.labs.tap import LabCapture
    cap = LabCapture(lab, lab.lab_dir / "pcaps" / "phase3_redirect")
    cap.start()
    ping = lab.net.run("spoke1_h", ["ping", "-n", "-c", "5", "-i", "0.5", "10.1.2.10"], check=False).stdout
    # Traffic Indication follows the first hairpinned packet after ~1 s of NFLOG batching;
    # the second burst is sent once spoke1 has had time to resolve and install the shortcut.
    later = lab.net.run("spoke1_h", ["ping", "-n", "-c", "10", "-i", "0.1", "10.1.2.10"], check=False).stdout
    fs = seen(cap)
    return {"first": ping, "later": later, "frames": fs}


@pytest.mark.spec("dmvpn-phase3", "traffic-indication", "MUST")
def test_hub_sends_traffic_indication_for_hairpinned_traffic(redirected, lab) -> None:
    """The hub, forwarding a packet back out of the tunnel interface it came in on, sends
    the source spoke an NHRP Traffic Indication carrying the triggering packet."""
    fs = redirected["frames"]
    ti = [f for f in fs if f.nhrp and f.nhrp.op == "traffic-indication" and f.node == "spoke1"]
    assert ti, f"spoke1 received no Traffic Indication:\n{show(fs)}"
    assert ti[0].src == str(lab.topo.nodes["hub1"].nbma), ti[0]
    inner = ti[0].nhrp.inner
    assert len(inner) >= 20 and inner[12:16] == bytes([10, 1, 1, 10]) and inner[16:20] == bytes([10, 1, 2, 10]), \
        f"Traffic Indication does not carry the triggering packet 10.1.1.10>10.1.2.10: {inner[:20].hex()}"


@pytest.mark.spec("dmvpn-phase3", "resolution", "MUST")
def test_spoke_resolves_after_the_indication(redirected) -> None:
    """On a Traffic Indication the spoke sends a Resolution Request for the destination
    and gets a Resolution Reply with the same request ID."""
    fs = redirected["frames"]
    ti = next((f for f in fs if f.nhrp and f.nhrp.op == "traffic-indication" and f.node == "spoke1"), None)
    assert ti is not None, show(fs)
    reqs = [f for f in fs if f.nhrp and f.nhrp.op == "resolution-request" and f.node == "spoke1"
            and f.ts >= ti.ts and f.nhrp.dst_proto == "10.1.2.10"]
    assert reqs, f"spoke1 sent no Resolution Request for 10.1.2.10 after the indication:\n{show(fs)}"
    ids = {r.nhrp.request_id for r in reqs}
    replies = [f for f in fs if f.nhrp and f.nhrp.op == "resolution-reply" and f.node == "spoke1"
               and f.nhrp.request_id in ids]
    assert replies, f"no Resolution Reply matching request IDs {sorted(ids)}:\n{show(fs)}"


@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_later_data_bypasses_the_hub(redirected, lab) -> None:
    """Once the shortcut is installed, data between the spokes' LANs flows spoke to spoke:
    none of the later packets crosses the hub's NBMA interface."""
    assert " 0% packet loss" in redirected["later"], redirected["later"]
    fs = redirected["frames"]
    last_reply = max((f.ts for f in fs if f.nhrp and f.nhrp.op == "resolution-reply"), default=None)
    assert last_reply is not None, show(fs)
    via_hub = [f for f in fs if f.node == "hub1" and f.data.startswith("icmp") and f.ts > last_reply + 1.0]
    direct = [f for f in fs if f.node == "spoke2" and f.data.startswith("icmp type 8")
              and f.src == str(lab.topo.nodes["spoke1"].nbma)]
    assert not via_hub, f"data still crosses the hub after the shortcut:\n{show(via_hub)}"
    assert len(direct) >= 10, f"spoke2 did not receive the burst directly from spoke1:\n{show(fs)}"


@pytest.mark.spec("dmvpn-phase3", "shortcut", "MUST")
def test_shortcut_is_installed_on_the_spoke(redirected, lab) -> None:
    """The spoke installs a shortcut route for the resolved prefix via the far spoke."""
    cuts = lab.driver.shortcuts("spoke1")
    assert any(c.prefix == "10.1.2.0/24" and c.via == "10.255.0.12" for c in cuts), cuts


@pytest.mark.spec("rfc2332", "5.2.2", "MUST")
def test_resolution_reply_names_the_far_spoke(redirected, lab) -> None:
    """"The Resolution Reply ... contains the NBMA address of the destination" in a CIE
    whose prefix covers the requested address (5.2.2)."""
    fs = redirected["frames"]
    replies = [f for f in fs if f.nhrp and f.nhrp.op == "resolution-reply" and f.node == "spoke1"
               and f.nhrp.dst_proto == "10.1.2.10"]
    assert replies, show(fs)
    cies = replies[0].nhrp.cies
    assert cies and cies[0].code == 0, f"negative or empty Resolution Reply:\n{replies[0]}\n{cies}"
    assert cies[0].client_nbma == str(lab.topo.nodes["spoke2"].nbma), cies
    assert 24 <= cies[0].prefix_len <= 32, f"prefix /{cies[0].prefix_len} does not describe spoke2's LAN"
