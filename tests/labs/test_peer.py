"""`NhrpPeer.exchange` takes as its answer only an Error Indication about its own request
(the packet in error it carries has that Request ID): under load a hub still answering
earlier packets sends indications about those first (the fuzz lab test took one)."""

from __future__ import annotations

from dmvpnkit.labs.peer import about
from dmvpnkit.nhrp import build
from dmvpnkit.nhrp.model import Message, decode

HUB, PEER = "172.16.0.2", "172.16.0.30"
HUB_T, PEER_T = "10.255.0.1", "10.255.0.30"


def indication(errored: bytes) -> Message:
    return decode(bytes(build.error_indication(errored, HUB, HUB_T, PEER_T, code=6, offset=0)))


def test_an_indication_is_about_the_request_it_carries() -> None:
    mine = bytes(build.registration_request(PEER, PEER_T, HUB_T, request_id=7))
    earlier = bytes(build.registration_request(PEER, PEER_T, HUB_T, request_id=6))
    assert about(indication(mine), 7)
    assert not about(indication(earlier), 7)
    assert about(indication(earlier), None)         # a request of unknown ID: any indication
    assert about(indication(mine[:20]), 7)           # too little carried to tell: it counts
