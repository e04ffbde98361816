"""Field-by-field comparison of nhrpd's codec with the scapy-side model
(``dmvpnkit.nhrp.decode``): two independent readings of the same bytes."""

from __future__ import annotations

from dmvpnkit.nhrp import model
from dmvpnkit.nhrpd import codec

CIE_EXTENSIONS = (codec.ResponderAddress, codec.ForwardTransit, codec.ReverseTransit, codec.NatAddress)


def cie_tuple(c: codec.Cie | model.Cie) -> tuple:
    plen = c.prefix_length if isinstance(c, codec.Cie) else c.prefix_len
    sub = "" if isinstance(c, codec.Cie) else c.client_nbma_sub
    return (c.code, plen, c.mtu, c.holding_time, c.preference, c.client_nbma, sub, c.client_proto)


def assert_same(data: bytes) -> None:
    """``data`` reads the same through both codecs, and is a well-formed packet."""
    ours = codec.decode(data)
    theirs = model.decode(data)
    assert theirs.chksum_ok and ours.chksum_ok, theirs.summary()
    assert theirs.pktsz == ours.pktsz == len(data)
    assert theirs.extoff == ours.extoff
    assert (theirs.afn, theirs.pro_type, theirs.pro_snap) == (1, ours.pro_type, b"\x00" * 5)
    for name in ("version", "op_type", "hopcnt", "flags", "request_id", "src_nbma", "src_proto",
                 "dst_proto", "error_code", "error_offset", "traffic_code"):
        assert getattr(theirs, name) == getattr(ours, name), (name, theirs, ours)
    assert theirs.src_nbma_sub == ""
    assert theirs.inner == ours.payload
    assert [cie_tuple(c) for c in theirs.cies] == [cie_tuple(c) for c in ours.cies]
    assert len(theirs.extensions) == len(ours.extensions)
    for t, o in zip(theirs.extensions, ours.extensions, strict=True):
        assert (t.type, t.compulsory) == (o.type, o.compulsory)
        assert t.payload == codec.encode_extension(o, pro_type=ours.pro_type)[4:]
        if isinstance(o, CIE_EXTENSIONS):
            assert [cie_tuple(c) for c in t.cies] == [cie_tuple(c) for c in o.cies]
