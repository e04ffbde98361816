"""dmvpnkit.capture.esp: keys from `ip xfrm` dumps, ESP decryption, ESP in the timeline.

scapy's ESP implementation (scapy.layers.ipsec) is the independent oracle: it builds
the packets, ours opens them.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.ipsec import ESP, SecurityAssociation
from scapy.layers.l2 import GRE, Ether
from scapy.packet import Packet
from scapy.utils import wrpcap

from dmvpnkit.capture import SA, EspError, Keyring, Timeline, XfrmError, decrypt, matches, parse_xfrm
from dmvpnkit.nhrp import build
from dmvpnkit.nhrp.model import decode

HUB, SPOKE, SPOKE_NAT = "172.16.0.2", "172.16.0.6", "192.0.2.66"
GCM = "rfc4106(gcm(aes))"
SPI_IN, SPI_OUT = 0xC5A1B2C3, 0xC0FFEE01
KEY = bytes.fromhex("3f1c5e2a9b7d0c4e8f6a1b3d5c7e9f02")         # 16 key bytes
SALT = bytes.fromhex("a1b2c3d4")

# iproute2 6.1 output, trailing spaces included as it prints them.

STATE = f"""\
src {SPOKE} dst {HUB}
\tproto esp spi 0x{SPI_IN:08x} reqid 1 mode transport
\treplay-window 0 
\taead {GCM} 0x{(KEY + SALT).hex()} 128
\tanti-replay context: seq 0x0, oseq 0x3, bitmap 0x00000000
\tsel src {SPOKE}/32 dst {HUB}/32 proto gre 
src {HUB} dst {SPOKE}
\tproto esp spi 0x{SPI_OUT:08x} reqid 1 mode transport
\treplay-window 32 
\tauth-trunc hmac(sha256) 0x{"11" * 32} 128
\tenc cbc(aes) 0x{"22" * 16}
\tencap type espinudp sport 4500 dport 4500 addr 0.0.0.0
\tanti-replay context: seq 0x2, oseq 0x0, bitmap 0x00000003
\tsel src {HUB}/32 dst {SPOKE}/32 proto gre 
"""

# What `ip xfrm monitor` prints around the SAs: policies, acquires, async events,
# flushes, an AH SA, a keys-hidden dump, and the same SAs again (new, then deleted).
MONITOR = f"""\
src {SPOKE}/32 dst {HUB}/32 proto gre 
\tdir out priority 2080 ptype main 
\ttmpl src {SPOKE} dst {HUB}
\t\tproto esp spi 0x{SPI_IN:08x} reqid 1 mode transport
acquire proto esp 
\t  sel src {SPOKE}/32 dst {HUB}/32 proto gre 
\tpolicy src {SPOKE}/32 dst {HUB}/32 proto gre 
\t\tdir out priority 2080 ptype main 
Async event  (0x20)  timer expired 
\tsrc {SPOKE} dst {HUB}  reqid 0x1 protocol esp  SPI 0x{SPI_IN:08x}
Timestamp: Tue Mar  4 10:00:00 2025 123456 usec
src {SPOKE} dst {HUB}
\tproto ah spi 0x00001000 reqid 2 mode transport
\treplay-window 0 
\tauth-trunc hmac(sha1) 0x{"33" * 20} 96
src {SPOKE} dst {HUB}
\tproto esp spi 0x00002000 reqid 3 mode transport
\treplay-window 0 
\taead {GCM} <<Keys hidden>> 128
{STATE}Deleted src {SPOKE} dst {HUB}
\tproto esp spi 0x{SPI_IN:08x} reqid 1 mode transport
\treplay-window 0 
\taead {GCM} 0x{(KEY + SALT).hex()} 128
\tsel src {SPOKE}/32 dst {HUB}/32 proto gre 
Flushed state proto esp

Expired src {HUB} dst {SPOKE}
\tproto esp spi 0x00003000 reqid 1 mode transport
\treplay-window 0 
\tauth hmac(sha1) 0x{"44" * 20}
\tenc cbc(aes) 0x{"55" * 16}
\thard 1
[2025-03-04T10:00:01.000001] Updated src {HUB} dst {SPOKE}
\tproto esp spi 0x00004000(16384) reqid 1(0x00000001) mode tunnel
\treplay-window 0 seq 0x00000000 flag af-unspec (0x00100000)
\tauth hmac(sha256) 0x{"66" * 32} (256 bits)
\tenc cbc(aes) 0x{"77" * 32} (256 bits)
\tlifetime config:
\t  limit: soft (INF)(bytes), hard (INF)(bytes)
\tlifetime current:
\t  0(bytes), 0(packets)
\tstats:
\t  replay-window 0 replay 0 failed 0
some line from a newer iproute2 we do not know
\tunknown-attribute 0x1234
"""


# ------------------------------------------------------------------ parse_xfrm

def test_parse_state_aead_and_enc_auth() -> None:
    gcm, cbc = parse_xfrm(STATE)
    assert (gcm.src, gcm.dst, gcm.spi, gcm.mode, gcm.encap) == (SPOKE, HUB, SPI_IN, "transport", None)
    assert (gcm.aead, gcm.aead_key, gcm.icv_bits, gcm.enc, gcm.auth) == (GCM, KEY + SALT, 128, "", "")
    assert (cbc.enc, cbc.enc_key, cbc.auth, cbc.auth_key, cbc.icv_bits) == \
        ("cbc(aes)", b"\x22" * 16, "hmac(sha256)", b"\x11" * 32, 128)
    assert cbc.encap == (4500, 4500) and cbc.aead == ""
    assert KEY.hex() not in repr(gcm) and str(KEY) not in repr(gcm)     # keys stay out of reprs


def test_parse_monitor_noise_and_dedupe() -> None:
    sas = parse_xfrm(STATE + MONITOR + STATE)
    assert [hex(sa.spi) for sa in sas] == [hex(SPI_IN), hex(SPI_OUT), "0x3000", "0x4000"]
    expired, updated = sas[2], sas[3]
    assert (expired.auth, expired.icv_bits) == ("hmac(sha1)", 96)        # auth: the default truncation
    assert (updated.mode, updated.auth, updated.icv_bits, len(updated.enc_key)) == \
        ("tunnel", "hmac(sha256)", 96, 32)                               # kernel default for sha256, too


def test_parse_ignores_what_is_not_an_esp_sa() -> None:
    assert parse_xfrm("") == []
    assert parse_xfrm(MONITOR.split("Deleted")[0].replace(STATE, "")) == []


@pytest.mark.parametrize("line", [
    f"\taead {GCM} 0x3f1c5e2 128",                  # odd number of hex digits
    f"\taead {GCM} 0x3f1c5e2a",                     # no ICV length
    "\tauth-trunc hmac(sha256) 0xzz11 128",
    "\tenc cbc(aes) 0x2222 128",                    # enc has no length after the key
    "\tenc cbc(aes)",
])
def test_malformed_key_line_names_file_and_line(line: str) -> None:
    text = f"src {SPOKE} dst {HUB}\n\tproto esp spi 0x1 reqid 1 mode transport\n{line}\n"
    with pytest.raises(XfrmError, match=r"xfrm__spoke1\.txt:3: malformed (aead|auth-trunc|enc) line"):
        parse_xfrm(text, "xfrm__spoke1.txt")


def test_keyring_lookup_by_destination_then_spi(tmp_path: Path) -> None:
    (tmp_path / "xfrm__spoke1.txt").write_text(STATE)
    (tmp_path / "xfrm__hub1.txt").write_text(MONITOR)          # the same SAs, seen from the hub
    (tmp_path / "notes.txt").write_text("aead garbage")       # not an xfrm dump: not read
    keys = Keyring.from_dir(tmp_path)
    assert len(keys) == 4
    assert keys.lookup(HUB, SPI_IN).spi == SPI_IN
    assert keys.lookup(SPOKE_NAT, SPI_OUT).dst == SPOKE      # behind NAT: the SPI alone finds it
    assert keys.lookup(HUB, 0xDEAD) is None
    assert len(Keyring.from_dir(tmp_path / "nowhere")) == 0


# ------------------------------------------------------------------ decrypt

def nhrp_request(rid: int = 7) -> Packet:
    return build.registration_request(SPOKE, "10.255.0.11", "10.255.0.1", rid, holding_time=60)


def gre_ip(dst: str = HUB, rid: int = 7) -> Packet:
    return IP(src=SPOKE, dst=dst) / GRE(key_present=1, key=42, proto=0x2001) / nhrp_request(rid)


def protect(sa: SecurityAssociation, pkt: Packet) -> bytes:
    """The ESP part (SPI onwards) of the packet scapy protects."""
    out = sa.encrypt(pkt)
    return bytes(out[UDP].payload) if UDP in out else bytes(out[IP].payload)


# (our SA fields, scapy's SecurityAssociation arguments)
SUITES = {
    "aes128-gcm16": (dict(aead=GCM, aead_key=KEY + SALT, icv_bits=128),
                     dict(crypt_algo="AES-GCM", crypt_key=KEY + SALT)),
    "aes256-gcm16": (dict(aead=GCM, aead_key=b"k" * 32 + SALT, icv_bits=128),
                     dict(crypt_algo="AES-GCM", crypt_key=b"k" * 32 + SALT)),
    "chacha20poly1305": (dict(aead="rfc7539esp(chacha20,poly1305)", aead_key=b"c" * 36, icv_bits=128),
                         dict(crypt_algo="CHACHA20-POLY1305", crypt_key=b"c" * 36)),
    "aes128-sha1": (dict(enc="cbc(aes)", enc_key=KEY, auth="hmac(sha1)", auth_key=b"a" * 20, icv_bits=96),
                    dict(crypt_algo="AES-CBC", crypt_key=KEY, auth_algo="HMAC-SHA1-96", auth_key=b"a" * 20)),
    "aes256-sha256": (dict(enc="cbc(aes)", enc_key=b"e" * 32, auth="hmac(sha256)", auth_key=b"a" * 32,
                           icv_bits=128),
                      dict(crypt_algo="AES-CBC", crypt_key=b"e" * 32, auth_algo="SHA2-256-128",
                           auth_key=b"a" * 32)),
    "aes128-sha512": (dict(enc="cbc(aes)", enc_key=KEY, auth="hmac(sha512)", auth_key=b"a" * 64,
                           icv_bits=256),
                      dict(crypt_algo="AES-CBC", crypt_key=KEY, auth_algo="SHA2-512-256", auth_key=b"a" * 64)),
    "null-sha256": (dict(enc="ecb(cipher_null)", auth="hmac(sha256)", auth_key=b"a" * 32, icv_bits=128),
                    dict(crypt_algo="NULL", crypt_key=b"", auth_algo="SHA2-256-128", auth_key=b"a" * 32)),
}


def pair(suite: str, spi: int = SPI_IN, nat_t: bool = False) -> tuple[SA, SecurityAssociation]:
    ours, theirs = SUITES[suite]
    encap = UDP(sport=4500, dport=4500) if nat_t else None
    return (SA(SPOKE, HUB, spi, encap=(4500, 4500) if nat_t else None, **ours),  # type: ignore[arg-type]
            SecurityAssociation(ESP, spi=spi, nat_t_header=encap, **theirs))


@pytest.mark.parametrize("nat_t", [False, True], ids=["esp", "esp-in-udp"])
@pytest.mark.parametrize("suite", sorted(SUITES))
def test_decrypt_opens_what_scapy_sealed(suite: str, nat_t: bool) -> None:
    ours, theirs = pair(suite, nat_t=nat_t)
    for rid in (1, 2, 3):                       # sequence numbers 1..3, fresh IVs
        nh, payload = decrypt(ours, protect(theirs, gre_ip(rid=rid)))
        assert nh == 47 and payload[:8] == bytes(GRE(key_present=1, key=42, proto=0x2001))[:8]
        assert decode(payload[8:]).request_id == rid


@pytest.mark.parametrize("icv", [8, 12])
def test_gcm_short_icv(icv: int) -> None:
    """A shorter GCM tag is the leading bytes of the full one (SP 800-38D 7.1)."""
    ours, theirs = pair("aes128-gcm16")
    full = protect(theirs, gre_ip())
    short = full[:len(full) - 16 + icv]
    short_sa = dataclasses.replace(ours, icv_bits=8 * icv)
    assert decrypt(short_sa, short)[0] == 47
    with pytest.raises(EspError, match="icv: authentication failed"):
        decrypt(short_sa, full)


@pytest.mark.parametrize("suite", ["aes128-gcm16", "aes128-sha1", "aes256-sha256"])
def test_wrong_key_or_altered_packet_fails_the_icv(suite: str) -> None:
    ours, theirs = pair(suite)
    esp = protect(theirs, gre_ip())
    wrong = dataclasses.replace(ours, **{k: bytes(len(v)) for k in ("aead_key", "enc_key", "auth_key")
                                         if (v := getattr(ours, k))})
    with pytest.raises(EspError, match=f"ESP icv: authentication failed for spi 0x{SPI_IN:08x}") as e:
        decrypt(wrong, esp)
    assert e.value.field == "icv"
    flipped = esp[:20] + bytes([esp[20] ^ 1]) + esp[21:]
    with pytest.raises(EspError, match="icv"):
        decrypt(ours, flipped)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_truncation_is_an_esp_error(suite: str) -> None:
    ours, theirs = pair(suite)
    esp = protect(theirs, gre_ip())
    for n in range(len(esp)):
        with pytest.raises(EspError):
            decrypt(ours, esp[:n])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SUITES)), st.binary(max_size=120))
def test_garbage_after_the_spi_is_an_esp_error(suite: str, tail: bytes) -> None:
    ours, _ = pair(suite)
    with pytest.raises(EspError):
        decrypt(ours, struct.pack(">I", SPI_IN) + tail)


def _gcm_packet(plain: bytes, seq: int = 1) -> bytes:
    """GCM-sealed by hand, to put an invalid trailer under a valid ICV."""
    head, iv = struct.pack(">II", SPI_IN, seq), b"\x01" * 8
    return head + iv + AESGCM(KEY).encrypt(SALT + iv, plain, head)


@pytest.mark.parametrize("plain, field, match", [
    (b"\x00" * 6 + b"\x09\x2f", "pad length", "pad length: 9, but only 6 bytes precede the trailer"),
    (b"\x00" * 4 + b"\x01\x03\x02\x2f", "padding", r"padding: 2 bytes 0103 are not 1, 2, 3"),
])
def test_bad_trailer_is_named(plain: bytes, field: str, match: str) -> None:
    ours, _ = pair("aes128-gcm16")
    with pytest.raises(EspError, match=match) as e:
        decrypt(ours, _gcm_packet(plain))
    assert e.value.field == field


def test_padding_per_rfc4303_is_stripped() -> None:
    ours, _ = pair("aes128-gcm16")
    assert decrypt(ours, _gcm_packet(b"abcdef" + b"\x01\x02\x03" + b"\x03\x2f")) == (47, b"abcdef")


@pytest.mark.parametrize("sa, match", [
    (SA(SPOKE, HUB, SPI_IN, enc="cbc(des3_ede)", enc_key=b"k" * 24, auth="hmac(md5)", auth_key=b"a" * 16,
        icv_bits=96), r"algorithm: cbc\(des3_ede\) hmac\(md5\) 96 \(spi 0xc5a1b2c3\) is not supported"),
    (SA(SPOKE, HUB, SPI_IN, aead="rfc4309(ccm(aes))", aead_key=b"k" * 19, icv_bits=128),
     r"algorithm: rfc4309\(ccm\(aes\)\) 128"),
    (SA(SPOKE, HUB, SPI_IN, aead=GCM, aead_key=KEY, icv_bits=128), r"key: .* 16 bytes, expected key \+ 4-byte salt"),
    (SA(SPOKE, HUB, SPI_IN, aead=GCM, aead_key=KEY + SALT, icv_bits=64 + 4), r"icv: 68-bit ICV"),
    (SA(SPOKE, HUB, SPI_IN, enc="cbc(aes)", enc_key=b"k" * 15), r"key: cbc\(aes\) key is 15 bytes"),
    (SA(SPOKE, HUB, 0x1234, aead=GCM, aead_key=KEY + SALT, icv_bits=128), r"spi: 0xc5a1b2c3 is not the SA's"),
])
def test_unusable_sa_is_named(sa: SA, match: str) -> None:
    with pytest.raises(EspError, match=match):
        decrypt(sa, _gcm_packet(b"\x01\x02\x02\x2f"))


def test_keyring_decrypt_says_no_key() -> None:
    with pytest.raises(EspError, match=f"^ESP: no key for spi 0x{SPI_IN:08x} to {HUB}$"):
        Keyring().decrypt(HUB, _gcm_packet(b"\x00\x2f"))


# ------------------------------------------------------------------ timeline

def eth(ip: Packet, ts: float) -> Packet:
    p = Ether(src="02:00:00:00:00:06", dst="02:00:00:00:00:02") / ip
    p.time = ts
    return p


def ike(exchange: int, flags: int, mid: int = 0) -> bytes:
    """An IKEv2 header (RFC 7296 3.1) with no payloads."""
    return b"\x11" * 8 + b"\x00" * 8 + struct.pack(">BBBBII", 0, 0x20, exchange, flags, mid, 28)


def reply(rid: int) -> Packet:
    return IP(src=HUB, dst=SPOKE) / GRE(proto=0x2001) / \
        build.registration_reply(SPOKE, "10.255.0.11", "10.255.0.1", rid, holding_time=60)


@pytest.fixture
def ipsec_pcap(tmp_path: Path) -> Path:
    """spoke1 (behind a NAT, public address SPOKE_NAT) registers with hub1 inside ESP
    and the reply comes back in ESP-in-UDP; IKE and a ping around it."""
    ours, theirs = pair("aes128-gcm16")
    udp_ours, udp_theirs = pair("aes128-sha1", spi=SPI_OUT, nat_t=True)
    data = IP(src=SPOKE, dst=HUB) / GRE(proto=0x0800) / IP(src="10.1.1.10", dst="10.1.2.10") / ICMP()
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [
        eth(IP(src=SPOKE, dst=HUB) / UDP(sport=500, dport=500) / ike(34, 0x08), 1.0),
        eth(IP(src=HUB, dst=SPOKE) / UDP(sport=500, dport=500) / ike(34, 0x20), 1.1),
        eth(IP(src=SPOKE, dst=HUB) / UDP(sport=4500, dport=4500) / (b"\0" * 4 + ike(35, 0x08, 1)), 1.2),
        eth(IP(src=SPOKE, dst=HUB) / UDP(sport=4500, dport=4500) / b"\xff", 1.3),
        eth(theirs.encrypt(gre_ip(rid=7)), 2.0),
        eth(udp_theirs.encrypt(reply(7)), 2.1),
        eth(theirs.encrypt(data), 3.0),
    ])
    (tmp_path / "xfrm__spoke1.txt").write_text(
        f"src {SPOKE} dst {HUB}\n\tproto esp spi 0x{SPI_IN:08x} reqid 1 mode transport\n"
        f"\treplay-window 0 \n\taead {GCM} 0x{ours.aead_key.hex()} 128\n")
    # The hub knows the spoke by its public address; spoke1's capture shows the private one.
    (tmp_path / "xfrm__hub1.txt").write_text(
        f"src {HUB} dst {SPOKE_NAT}\n\tproto esp spi 0x{SPI_OUT:08x} reqid 1 mode transport\n"
        f"\treplay-window 0 \n\tauth-trunc hmac(sha1) 0x{udp_ours.auth_key.hex()} 96\n"
        f"\tenc cbc(aes) 0x{udp_ours.enc_key.hex()}\n"
        f"\tencap type espinudp sport 4500 dport 4500 addr 0.0.0.0\n")
    return tmp_path


def test_timeline_decrypts_nhrp_inside_esp(ipsec_pcap: Path) -> None:
    tl = Timeline.from_dir(ipsec_pcap)
    (reg,) = tl.where(op="registration-request")
    assert reg.esp == SPI_IN and reg.encap == "" and reg.gre and reg.nhrp.src_nbma == SPOKE
    assert reg.what.startswith(f"esp(0x{SPI_IN:08x}) NHRP registration-request id=7")
    assert reg.to_dict()["esp"] == SPI_IN and reg.to_dict()["nhrp"]["request_id"] == 7
    assert matches(reg, esp=True) and matches(reg, esp=SPI_IN) and not matches(reg, esp=False)
    (ping,) = tl.where(data="icmp", esp=True)
    assert ping.data == "icmp type 8 10.1.1.10>10.1.2.10" and ping.esp == SPI_IN and ping.gre
    assert not tl.where(gre=True, esp=False) and len(tl.where(data="ike", gre=False)) == 3


def test_timeline_decrypts_esp_in_udp_behind_nat(ipsec_pcap: Path) -> None:
    tl = Timeline.from_dir(ipsec_pcap)
    (rep,) = tl.where(op="registration-reply")
    assert (rep.dst, rep.esp, rep.encap) == (SPOKE, SPI_OUT, "udp 4500>4500")
    assert matches(rep, encap=True) and matches(rep, encap="udp 4500>4500")
    assert f"esp(0x{SPI_OUT:08x} udp 4500>4500) NHRP registration-reply id=7" in rep.line()
    (p,) = tl.pairs()
    assert p.reply is rep and p.rtt == pytest.approx(0.1)


def test_timeline_summarises_ike(ipsec_pcap: Path) -> None:
    assert [e.data for e in Timeline.from_dir(ipsec_pcap)[:4]] == [
        "ike 500>500 IKE_SA_INIT initiator request mid=0",
        "ike 500>500 IKE_SA_INIT responder response mid=0",
        "ike 4500>4500 IKE_AUTH initiator request mid=1",
        "nat-t keepalive 4500>4500"]


def test_timeline_without_keys_keeps_esp_opaque(ipsec_pcap: Path) -> None:
    for f in ipsec_pcap.glob("xfrm__*.txt"):
        f.unlink()
    tl = Timeline.from_dir(ipsec_pcap)
    assert not tl.where(lambda e: e.nhrp is not None or e.gre) and len(tl) == 7
    esp = tl.where(esp=True)
    assert [e.data for e in esp] == [f"esp spi=0x{SPI_IN:08x} seq=1 (no key)",
                                     f"esp spi=0x{SPI_OUT:08x} seq=1 (no key)",
                                     f"esp spi=0x{SPI_IN:08x} seq=2 (no key)"]
    assert esp[1].what == f"udp 4500>4500 esp spi=0x{SPI_OUT:08x} seq=1 (no key)"
    assert tl.where(data="esp spi=")[0].to_dict()["summary"].endswith("(no key)")


def test_timeline_says_why_esp_did_not_open(ipsec_pcap: Path) -> None:
    f = ipsec_pcap / "xfrm__spoke1.txt"
    f.write_text(f.read_text().replace(KEY.hex(), "00" * 16))
    e = Timeline.from_dir(ipsec_pcap).where(esp=SPI_IN)[0]
    assert e.nhrp is None and e.data == \
        f"esp spi=0x{SPI_IN:08x} seq=1 (icv: authentication failed for spi 0x{SPI_IN:08x})"


def test_timeline_names_a_malformed_key_file(ipsec_pcap: Path) -> None:
    f = ipsec_pcap / "xfrm__spoke1.txt"
    f.write_text(f.read_text().replace(" 128\n", " twelve\n"))
    with pytest.raises(XfrmError, match=r"xfrm__spoke1\.txt:4: malformed aead line"):
        Timeline.from_dir(ipsec_pcap)


def test_cleartext_events_are_unprotected(tmp_path: Path) -> None:
    wrpcap(str(tmp_path / "spoke1__inet.pcap"), [
        eth(gre_ip(), 1.0), eth(IP(src=SPOKE, dst=HUB, proto=50) / b"\x00\x00\x01", 2.0)])
    reg, short = Timeline.from_dir(tmp_path)
    assert (reg.esp, reg.encap, reg.gre) == (0, "", True) and matches(reg, esp=False, encap=False, gre=True)
    assert reg.what.startswith("NHRP registration-request") and reg.to_dict()["esp"] == 0
    assert short.data == "esp (truncated, 3 bytes)"
