"""Hypothesis strategies for nhrpd's codec values."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from dmvpnkit.nhrpd import codec

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
ipv4 = st.integers(0, 0xFFFFFFFF).map(lambda i: str(ipaddress.IPv4Address(i)))
maybe_ipv4 = st.one_of(st.just(""), ipv4)
ipv6 = st.integers(0, (1 << 128) - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
# Protocol addresses, by ar$pro.type: the NBMA ones are IPv4 in both.
maybe_proto = {codec.PRO_IPV4: maybe_ipv4, codec.PRO_IPV6: st.one_of(st.just(""), ipv6)}
unknown_types = st.integers(0, 0x3FFF).filter(lambda t: t not in codec.KNOWN_EXTENSIONS)


def cie_lists(pro_type: int) -> st.SearchStrategy[tuple[codec.Cie, ...]]:
    cies = st.builds(codec.Cie, u8, u8, u16, u16, u8, maybe_ipv4, maybe_proto[pro_type])
    return st.lists(cies, max_size=3).map(tuple)


def extensions(pro_type: int) -> st.SearchStrategy[codec.Extension]:
    return st.one_of(
        st.builds(codec.End, st.booleans()),
        st.builds(codec.ResponderAddress, cie_lists(pro_type), st.booleans()),
        st.builds(codec.ForwardTransit, cie_lists(pro_type), st.booleans()),
        st.builds(codec.ReverseTransit, cie_lists(pro_type), st.booleans()),
        st.builds(codec.NatAddress, cie_lists(pro_type), st.booleans()),
        st.builds(codec.Authentication, st.binary(max_size=16), u32, st.booleans()),
        st.builds(codec.VendorPrivate, st.integers(0, 0xFFFFFF), st.binary(max_size=8), st.booleans()),
        st.builds(codec.UnknownExtension, unknown_types, st.binary(max_size=12), st.booleans()),
    )


@st.composite
def packets(draw: st.DrawFn) -> codec.Packet:
    op = draw(st.integers(1, 8))
    pro = draw(st.sampled_from(sorted(codec.PROTO_LEN)))
    common = {"src_nbma": draw(maybe_ipv4), "src_proto": draw(maybe_proto[pro]),
              "dst_proto": draw(maybe_proto[pro]), "flags": draw(u16), "hopcnt": draw(u8),
              "extensions": tuple(draw(st.lists(extensions(pro), max_size=5))), "pro_type": pro}
    if op == codec.Op.ERROR_INDICATION:
        return codec.Packet(op, error_code=draw(u16), error_offset=draw(u16),
                            payload=draw(st.binary(max_size=64)), **common)
    if op == codec.Op.TRAFFIC_INDICATION:
        return codec.Packet(op, traffic_code=draw(u16), payload=draw(st.binary(max_size=64)), **common)
    return codec.Packet(op, request_id=draw(u32), cies=draw(cie_lists(pro)), **common)
