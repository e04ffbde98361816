"""Two NHSs: every spoke registers with each of its NHSs."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect

from ..conftest import bringup

pytestmark = pytest.mark.topology("dual_hub")


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_spoke_registers_with_every_nhs(lab) -> None:
    """A station registers with each NHS it is configured to serve it (5.2.3); with two
    hubs both hold a binding for every spoke."""
    tl = bringup(lab)
    for hub in lab.topo.hubs:
        for spoke in lab.topo.spokes:
            expect(tl, f"{spoke.name} registering with {hub.name}", node=hub.name, op="registration-request",
                   src=str(spoke.nbma))
        have = {e.protocol for e in lab.driver.cache(hub.name) if e.type == "dynamic"}
        assert {str(s.tunnel) for s in lab.topo.spokes} <= have, (hub.name, have)
