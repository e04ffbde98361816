"""The SA of a shortcut lives as long as the shortcut (short hold time, `--ipsec`)."""

from __future__ import annotations

import pytest

from dmvpnkit.labs.lab import ConvergenceTimeout, wait_until

from ..conftest import lan_host, nbma, ping

HOLD = 15
pytestmark = [pytest.mark.topology("hub_2spoke", holdtime=HOLD), pytest.mark.phases(3)]


@pytest.mark.spec("dmvpn-ipsec", "spoke-spoke-sa", "SHOULD")
def test_spoke_spoke_sa_goes_with_the_shortcut(lab, measure) -> None:
    """When an idle shortcut expires, the spoke-to-spoke SA created for it is removed too:
    an SA per stale shortcut is state (and keys) kept for nothing."""
    ping(lab, "spoke1_h", lan_host(lab, "spoke2"), 5, 0.5)
    wait_until("spoke1 to install a shortcut to spoke2", lambda: lab.driver.shortcuts("spoke1"), timeout=10)
    far = nbma(lab, "spoke2")
    wait_until("an SA between spoke1 and spoke2", lambda: far in lab.driver.ipsec.established("spoke1"),
               timeout=10)
    wait_until("the idle shortcut to expire", lambda: not lab.driver.shortcuts("spoke1"),
               timeout=HOLD + HOLD / 3 + 2)
    try:
        wait_until("the SA to spoke2 to go", lambda: far not in lab.driver.ipsec.established("spoke1"),
                   timeout=5)
    except ConvergenceTimeout:
        sa = lab.driver.ipsec.established("spoke1")[far]
        pytest.fail(f"spoke1's shortcut to spoke2 expired, its SA did not:\n{sa}")
    assert nbma(lab, "hub1") in lab.driver.ipsec.established("spoke1"), "the SA to the hub went too"
