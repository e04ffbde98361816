"""Garbage in: decode() returns a Message or raises DecodeError naming the field and
offset, and never raises anything else."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmvpnkit.nhrp import NHRP, DecodeError, Message, decode
from tests.nhrp import cases
from tests.nhrp.captures import capture_nhrp
from tests.nhrp.strategies import packets

GARBAGE = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SAMPLES = {**{name: [bytes(p)] for name, p in cases.builder_cases().items()},
           **{m.name: [b] for m, b in cases.malformed_cases().items()},
           **capture_nhrp()}
HEADER_FIELDS = {"afn", "pro_type", "pro_snap", "hopcnt", "pktsz", "chksum", "extoff",
                 "version", "op_type", "shtl", "sstl"}


def _decode_or_error(data: bytes) -> Message | DecodeError:
    try:
        return decode(data)
    except DecodeError as e:
        assert e.field and 0 <= e.offset <= max(len(data), 20), (e.field, e.offset)
        assert f"NHRP field {e.field} at offset {e.offset}: " in str(e)
        return e


@GARBAGE
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _decode_or_error(data)


@GARBAGE
@given(st.binary(min_size=20, max_size=300))
def test_random_bytes_with_a_consistent_pktsz(data: bytes) -> None:
    # Get past the pktsz check so the rest of the decoder sees the garbage.
    _decode_or_error(data[:10] + struct.pack("!H", len(data)) + data[12:])


@GARBAGE
@given(packets(), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                           min_size=1, max_size=4))
def test_mutated_packets(pkt: NHRP, edits: list[tuple[int, int]]) -> None:
    data = bytearray(bytes(pkt))
    for at, value in edits:
        data[at % len(data)] = value
    _decode_or_error(bytes(data))


@pytest.mark.parametrize("name", SAMPLES)
def test_every_truncation(name: str) -> None:
    for data in SAMPLES[name]:
        for size in range(len(data)):
            with pytest.raises(DecodeError) as err:
                decode(data[:size])
            if size < 20:       # the header field the cut falls in
                assert err.value.field in HEADER_FIELDS and err.value.offset <= size
            else:               # pktsz claims the bytes that were cut
                assert (err.value.field, err.value.offset) == ("pktsz", 10)


@pytest.mark.parametrize("name", SAMPLES)
def test_every_truncation_with_pktsz_adjusted(name: str) -> None:
    """Cut anywhere and make pktsz agree, so the decoder meets the cut inside."""
    for data in SAMPLES[name]:
        for size in range(20, len(data)):
            _decode_or_error(data[:10] + struct.pack("!H", size) + data[12:size])
