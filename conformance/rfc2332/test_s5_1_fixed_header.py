"""RFC 2332 5.1: the NHRP fixed header, on every packet a node sends. The checks are the
passive rules `dmvpnkit audit` runs (dmvpnkit.rules.header), here on the lab's capture."""

from __future__ import annotations

import pytest

from dmvpnkit.capture import expect_all
from dmvpnkit.rules import enforce, header

from ..conftest import bringup, hairpin

pytestmark = pytest.mark.topology("hub_2spoke")


@pytest.fixture(scope="module")
def sent(lab):
    """Every NHRP packet, as its sender captured it: registrations and, in phase 3,
    the redirect and resolution exchange."""
    tl = bringup(lab)
    if lab.phase == 3:
        tl = type(tl)([*tl, *hairpin(lab, "s5_1_traffic")["timeline"]], tl.names)
    return expect_all(tl, "NHRP packets sent by the lab's nodes", lambda e: e.nhrp is not None or bool(e.error),
                      direction="out")


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_every_packet_decodes(sent) -> None:
    """Every NHRP packet has the layout of 5.1 and 5.2: fixed header, mandatory part,
    CIEs and extensions within ar$pktsz."""
    enforce(header.decodes, sent)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_version_is_one(sent) -> None:
    """"ar$op.version ... A value of 0x01 is used for NHRP version 1" (5.1)."""
    enforce(header.version, sent)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_checksum_is_correct(sent) -> None:
    """"ar$chksum: The standard IP checksum over the entire NHRP packet starting at the
    fixed header" (5.1)."""
    enforce(header.checksum, sent)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_pktsz_is_the_packet_length(sent) -> None:
    """"ar$pktsz: The total length of the NHRP packet, in octets (excluding link layer
    encapsulation)" (5.1)."""
    enforce(header.pktsz, sent)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_address_family_matches_the_networks(sent) -> None:
    """ar$afn names the NBMA address family (1 = IPv4 here) and ar$pro.type the
    protocol (0x0800 = IPv4); the address lengths follow (ar$shtl = 4)."""
    enforce(header.address_family, sent)


@pytest.mark.spec("rfc2332", "5.1", "MUST")
def test_hop_count_is_positive(sent) -> None:
    """"ar$hopcnt: The Hop count indicates the maximum number of NHSs that an NHRP packet
    is allowed to traverse before being discarded" (5.1): a sender never starts at 0."""
    enforce(header.hopcnt, sent)
