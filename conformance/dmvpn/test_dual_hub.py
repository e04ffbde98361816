"""Two NHSs: every spoke registers with each of its NHSs."""

from __future__ import annotations

import pytest

from ..wire import frames, show

pytestmark = pytest.mark.topology("dual_hub")


@pytest.mark.spec("rfc2332", "5.2.3", "MUST")
def test_spoke_registers_with_every_nhs(lab) -> None:
    """A station registers with each NHS it is configured to serve it (5.2.3); with two
    hubs both hold a binding for every spoke."""
    lab.bringup.stop()
    fs = frames(lab.bringup.dir)
    for hub in lab.topo.hubs:
        for spoke in lab.topo.spokes:
            got = [f for f in fs if f.nhrp and f.nhrp.op == "registration-request" and f.node == hub.name
                   and f.src == str(spoke.nbma)]
            assert got, f"{spoke.name} did not register with {hub.name}:\n{show(fs)}"
        have = {e.protocol for e in lab.driver.cache(hub.name) if e.type == "dynamic"}
        assert {str(s.tunnel) for s in lab.topo.spokes} <= have, (hub.name, have)
