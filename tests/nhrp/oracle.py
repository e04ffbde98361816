"""Wireshark as an independent NHRP oracle.

``tshark -T json -x`` gives, for every frame, the NHRP bytes Wireshark delimited
(``nhrp_raw``) and its field tree. ``observed`` flattens that tree in order into
(field, value) items plus markers: ("cie",) per Client Information Entry, ("ext",)
per extension, ("inner",) for the packet an indication carries, ("expert", name)
for expert infos; ``Frame.malformed`` is a dissector exception. ``expected`` produces
the same list from ``decode()``'s Message by Wireshark 4.0's rules (packet-nhrp.c),
so comparing the two checks every field Wireshark reports against our decoder.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmvpnkit.nhrp.model import Cie, Message

TSHARK = shutil.which("tshark")

Item = tuple[Any, ...]
Pairs = list[tuple[str, Any]]

IPV4_FIELDS = {"nhrp.src.nbma.addr", "nhrp.src.prot.addr", "nhrp.dst.prot.addr",
               "nhrp.client.nbma.addr", "nhrp.client.prot.addr", "nhrp.auth_ext.src_addr"}
BYTES_FIELDS = {"nhrp.protocol_type", "nhrp.src.nbma.saddr", "nhrp.client.nbma.saddr",
                "nhrp.src.nbma.addr_bytes", "nhrp.src.prot.addr_bytes",
                "nhrp.dst.prot.addr_byets", "nhrp.client.nbma.addr_bytes",
                "nhrp.client.prot.addr_bytes", "nhrp.auth_ext.src_addr_bytes",
                "nhrp.auth_ext.data", "nhrp.vendor_ext.data", "nhrp.unknown_ext.value"}
# Extension types packet-nhrp.c reads as CIE lists (our own list, not the model's).
WS_CIE_EXTENSIONS = {3, 4, 5, 9}
# Subtree labels that are not a CIE or an extension.
PLAIN_LABELS = ("NHRP Fixed Header", "NHRP Mandatory Part", "Extension Data")
# Flag bits per packet type, in Wireshark's order (proto_tree_add_bitmask lists).
WS_FLAGS = {1: (("q", 0x8000), ("a", 0x4000), ("d", 0x2000), ("u", 0x1000), ("s", 0x0800),
                ("nat", 0x0002)),
            3: (("u", 0x8000), ("nat", 0x0002)),
            5: (("n", 0x8000), ("nat", 0x0002))}
WS_FLAGS.update({2: WS_FLAGS[1], 4: WS_FLAGS[3], 6: WS_FLAGS[5]})


@dataclass
class Frame:
    number: int
    nhrp: bytes                         # the NHRP bytes, as Wireshark delimited them
    items: list[Item]                   # observed, flattened
    malformed: bool                     # the dissector threw (ran off the data)
    inner_layers: dict[str, dict[str, str]] = field(default_factory=dict)


def run_tshark(pcap: Path) -> list[Frame]:
    """The NHRP frames of ``pcap`` (frames without NHRP are left out)."""
    assert TSHARK is not None
    out = subprocess.run([TSHARK, "-r", str(pcap), "-T", "json", "-x"], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    frames = []
    # Pairs, not dicts: repeated keys (one per CIE, per extension) must all survive.
    for pkt in json.loads(out, object_pairs_hook=lambda kv: kv):
        layers = dict(dict(dict(pkt)["_source"])["layers"])
        if "nhrp" not in layers:
            continue
        items: list[Item] = []
        inner: dict[str, dict[str, str]] = {}
        _flatten(layers["nhrp"], items, inner)
        number = int(dict(layers["frame"])["frame.number"])
        frames.append(Frame(number, bytes.fromhex(layers["nhrp_raw"][0]), items,
                            "_ws.malformed" in layers, inner))
    return frames


def _value(name: str, text: str) -> Any:
    if name in IPV4_FIELDS:
        return text
    if name in BYTES_FIELDS:
        return bytes.fromhex(text.replace(":", ""))
    return int(text, 16) if text.startswith("0x") else int(text)


def _is_tree(value: Any) -> bool:
    return isinstance(value, list) and (not value or isinstance(value[0], tuple))


def _flatten(pairs: Pairs, out: list[Item], inner: dict[str, dict[str, str]]) -> None:
    for key, value in pairs:
        if key.endswith("_raw"):
            continue
        if key == "_ws.expert":
            out.append(("expert", next(k for k, _ in value if not k.startswith("_ws.expert"))))
        elif key == "_ws.malformed":
            continue            # repeats a malformed-group expert info
        elif key == "Packet Causing Indication":
            out.append(("inner",))
            for layer, tree in value:
                if layer == "nhrp":
                    _flatten(tree, out, inner)
                elif not layer.endswith("_raw"):
                    inner[layer] = {k: v for k, v in _leaves(tree)}
        elif _is_tree(value):
            expert_only = all(k.startswith("_ws.") for k, _ in value)   # its label is text
            if key == "Client Information Entry":
                out.append(("cie",))
            elif not (key.endswith("_tree") or key.startswith(PLAIN_LABELS) or expert_only):
                out.append(("ext",))
            _flatten(value, out, inner)
        else:
            out.append((key, _value(key, value)))


def _leaves(pairs: Pairs) -> list[tuple[str, str]]:
    out = []
    for key, value in pairs:
        if _is_tree(value):
            out.extend(_leaves(value))
        elif not key.endswith("_raw"):
            out.append((key, value))
    return out


def packed(text: str) -> bytes:
    """Back from the model's address text to the bytes on the wire."""
    if not text:
        return b""
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return bytes.fromhex(text)


def _tl(name: str, value: int) -> list[Item]:
    return [(name, value), (f"{name}.type", (value >> 6) & 1), (f"{name}.len", value & 0x3F)]


def _addr(ipv4_name: str, bytes_name: str, text: str, as_ipv4: bool) -> list[Item]:
    raw = packed(text)
    if not raw:
        return []
    return [(ipv4_name, text)] if as_ipv4 and len(raw) == 4 else [(bytes_name, raw)]


def _cie(c: Cie, afn: int) -> list[Item]:
    return [("cie",), ("nhrp.code", c.code), ("nhrp.prefix", c.prefix_len),
            ("nhrp.unused", c.unused), ("nhrp.mtu", c.mtu), ("nhrp.htime", c.holding_time),
            *_tl("nhrp.cli.addr_tl", c.cli_addr_tl), *_tl("nhrp.cli.saddr_tl", c.cli_saddr_tl),
            ("nhrp.prot.len", len(packed(c.client_proto))), ("nhrp.pref", c.preference),
            *_addr("nhrp.client.nbma.addr", "nhrp.client.nbma.addr_bytes", c.client_nbma,
                   afn == 1),
            *([("nhrp.client.nbma.saddr", bytes.fromhex(c.client_nbma_sub))]
              if c.client_nbma_sub else []),
            *_addr("nhrp.client.prot.addr", "nhrp.client.prot.addr_bytes", c.client_proto, True)]


def expected(msg: Message, decode_inner: Any = None, nested: bool = False) -> list[Item]:
    """What Wireshark 4.0 shows for ``msg``. ``decode_inner`` decodes an Error
    Indication's errored packet (Wireshark dissects it as NHRP, ``nested``)."""
    spl = len(packed(msg.src_proto))
    out: list[Item] = [("nhrp.hdr.afn", msg.afn), ("nhrp.hdr.pro.type", msg.pro_type),
                       ("nhrp.protocol_type", msg.pro_snap), ("nhrp.hdr.hopcnt", msg.hopcnt),
                       ("nhrp.hdr.pktsz", msg.pktsz), ("nhrp.hdr.chksum", msg.chksum)]
    if not msg.chksum_ok:
        out.append(("expert", "nhrp.hdr.bad_checksum"))
    out += [("nhrp.hdr.chksum.status", int(msg.chksum_ok)), ("nhrp.hdr.extoff", msg.extoff),
            ("nhrp.hdr.version", msg.version), ("nhrp.hdr.op.type", msg.op_type),
            *_tl("nhrp.hdr.shtl", msg.shtl), *_tl("nhrp.hdr.sstl", msg.sstl),
            ("nhrp.src.prot.len", spl), ("nhrp.dst.prot.len", len(packed(msg.dst_proto)))]
    if msg.op_type == 7:
        out += [("nhrp.err.code", msg.error_code), ("nhrp.err.offset", msg.error_offset)]
    elif msg.op_type != 8:
        out.append(("nhrp.flags", msg.flags))
        out += [(f"nhrp.flag.{name}", int(bool(msg.flags & bit)))
                for name, bit in WS_FLAGS.get(msg.op_type, (("nat", 0x0002),))]
        out.append(("nhrp.reqid", msg.request_id))
    out += _addr("nhrp.src.nbma.addr", "nhrp.src.nbma.addr_bytes", msg.src_nbma, msg.afn == 1)
    if msg.src_nbma_sub:
        out.append(("nhrp.src.nbma.saddr", bytes.fromhex(msg.src_nbma_sub)))
    out += _addr("nhrp.src.prot.addr", "nhrp.src.prot.addr_bytes", msg.src_proto, True)
    out += _addr("nhrp.dst.prot.addr", "nhrp.dst.prot.addr_byets", msg.dst_proto, True)
    for c in msg.cies:
        out += _cie(c, msg.afn)
    if msg.op_type in (7, 8):
        out.append(("inner",))
        if msg.op_type == 7:
            out += expected(decode_inner(msg.inner), decode_inner, nested=True)
            if msg.extensions:
                out.append(("expert", "nhrp.ext.not_allowed"))
    for i, ext in enumerate(msg.extensions):
        out += _extension(ext, msg, spl)
        if ext.type == 0 and not nested and i + 1 < len(msg.extensions):
            out.append(("expert", "nhrp.ext.extra"))    # Wireshark stops at End
            break
    return out


def _extension(ext: Any, msg: Message, spl: int) -> list[Item]:
    size = len(ext.payload)
    out: list[Item] = [("ext",), ("nhrp.ext.c", int(ext.compulsory)), ("nhrp.ext.type", ext.type),
                       ("nhrp.ext.len", size)]
    p = ext.payload
    if not size or ext.type == 0:
        return out
    if ext.type == 9 and size == 8:     # RFC 2735 Device Capabilities, Wireshark's guess
        src, dst = int.from_bytes(p[:4], "big"), int.from_bytes(p[4:], "big")
        return out + [("nhrp.devcap_ext.srccap", src), ("nhrp.devcap_ext.srccap.V", src & 1),
                      ("nhrp.devcap_ext.dstcap", dst), ("nhrp.devcap_ext.dstcap.V", dst & 1)]
    if ext.type in WS_CIE_EXTENSIONS:
        return out + [i for c in ext.cies for i in _cie(c, msg.afn)]
    if ext.type == 7:
        # Wireshark takes RFC 2332's layout: Src Addr (ar$spl bytes) before the data.
        if size < 4 + spl:
            return out + [("expert", "nhrp.ext.malformed")]
        out += [("nhrp.auth_ext.reserved", int.from_bytes(p[:2], "big")),
                ("nhrp.auth_ext.spi", int.from_bytes(p[2:4], "big"))]
        if spl:
            src = p[4:4 + spl]
            out.append(("nhrp.auth_ext.src_addr", str(ipaddress.IPv4Address(src)))
                       if spl == 4 else ("nhrp.auth_ext.src_addr_bytes", src))
        if size > 4 + spl:
            out.append(("nhrp.auth_ext.data", p[4 + spl:]))
        return out
    if ext.type == 8:
        if size < 3:
            return out + [("expert", "nhrp.ext.malformed")]
        out.append(("nhrp.vendor_ext.id", int.from_bytes(p[:3], "big")))
        return out + ([("nhrp.vendor_ext.data", p[3:])] if size > 3 else [])
    return out + [("nhrp.unknown_ext.value", p)]


def diff(observed: list[Item], wanted: list[Item]) -> str:
    """Empty when equal, else the first differing position with some context."""
    if observed == wanted:
        return ""
    at = next((i for i, (a, b) in enumerate(zip(observed, wanted, strict=False)) if a != b),
              min(len(observed), len(wanted)))
    lo = max(at - 3, 0)
    return (f"first difference at item {at}\n  wireshark: {observed[lo:at + 4]}\n"
            f"  dmvpnkit:  {wanted[lo:at + 4]}")
