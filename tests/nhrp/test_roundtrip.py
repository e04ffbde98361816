"""Property tests: scapy build -> bytes -> dissect -> build is the identity, and
decode() reads every field exactly as the scapy dissection does."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from scapy.compat import raw

from dmvpnkit.nhrp.layer import NHRP
from dmvpnkit.nhrp.model import decode
from tests.nhrp.strategies import packets
from tests.nhrp.views import scapy_view

PROPERTY = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(packets())
def test_build_dissect_build_is_identity(pkt: NHRP) -> None:
    data = raw(pkt)
    assert raw(NHRP(data)) == data


@PROPERTY
@given(packets())
def test_decode_agrees_with_scapy_dissection(pkt: NHRP) -> None:
    data = raw(pkt)
    msg = decode(data)
    assert msg == scapy_view(NHRP(data))
    assert msg.chksum_ok and msg.pktsz == len(data)
