"""The lab captures in tests/nhrp/data (FRR phase 3 and whatever else is dropped there)."""

from __future__ import annotations

from pathlib import Path

from scapy.utils import PcapReader

from dmvpnkit.nhrp.layer import NHRP

DATA = Path(__file__).parent / "data"


def capture_files() -> list[Path]:
    return sorted(DATA.glob("*.pcap"))


def capture_nhrp() -> dict[str, list[bytes]]:
    """Per capture file, the distinct NHRP packets in it (scapy picks the link layer)."""
    out = {}
    for path in capture_files():
        seen: dict[bytes, None] = {}
        with PcapReader(str(path)) as reader:
            for pkt in reader:
                layer = pkt.getlayer(NHRP)
                if layer is not None:
                    seen.setdefault(bytes(layer), None)
        out[path.name] = list(seen)
    return out
