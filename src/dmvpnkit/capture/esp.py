"""ESP decryption for lab captures, with the keys `ip xfrm state` prints.

The lab dumps each node's SAs (`ip xfrm state` at capture start and stop, `ip xfrm
monitor` in between) into `xfrm__<node>.txt` next to the pcaps; with those keys the
timeline sees the GRE/NHRP inside ESP (RFC 4303), plain or in UDP (RFC 3948).
Only what the kernel can use for DMVPN is decrypted: AES-GCM (RFC 4106) and
ChaCha20-Poly1305 (RFC 7634), or AES-CBC (or null encryption) with HMAC-SHA-1/2.
No extended sequence numbers: the AAD and ICV cover SPI || 32-bit sequence number.
"""

from __future__ import annotations

import functools
import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

XFRM_GLOB = "xfrm__*.txt"       # one per node, written by the lab next to its pcaps


class EspError(ValueError):
    """An ESP packet we cannot open; `field` names the part at fault ("icv", "pad length")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"ESP {field}: {message}" if field else f"ESP: {message}")
        self.field = field
        self.message = message


class XfrmError(ValueError):
    """A line of an `ip xfrm` dump that looks like key material but does not parse."""


@dataclass(frozen=True)
class SA:
    """One ESP security association as `ip xfrm state` shows it. Either `aead` (with
    `aead_key` = key || 4-byte salt, as the kernel holds it) or `enc` and optionally
    `auth` are set; `icv_bits` is the AEAD's ICV or the HMAC's truncated length."""

    src: str
    dst: str
    spi: int
    mode: str = "transport"
    aead: str = ""
    aead_key: bytes = field(default=b"", repr=False)
    enc: str = ""
    enc_key: bytes = field(default=b"", repr=False)
    auth: str = ""
    auth_key: bytes = field(default=b"", repr=False)
    icv_bits: int = 0
    encap: tuple[int, int] | None = None     # (sport, dport) of ESP-in-UDP

    @property
    def algorithm(self) -> str:
        if self.aead:
            return f"{self.aead} {self.icv_bits}"
        return f"{self.enc} {self.auth} {self.icv_bits}" if self.auth else self.enc


# ------------------------------------------------------------------ ip xfrm text

# A block starts at an unindented "src A dst B" (policies print prefixes: "/32"), after
# an optional `ip -ts` timestamp and the monitor's Deleted/Updated/Expired title.
_HEAD = re.compile(r"(?:\[[^\]]*\]\s*)?(?:(?:Deleted|Updated|Expired)\s+)?src\s+([^\s/]+)\s+dst\s+([^\s/]+)\s*")
_KEYLINE = re.compile(r"(aead|enc|auth|auth-trunc)\s+(\S+)\s+0x((?:[0-9a-fA-F]{2})*)"
                      r"(?:\s+\(\d+ bits\))?(?:\s+(\d+))?\s*")      # `ip -s` adds "(N bits)"
_ENCAP = re.compile(r"encap\s+type\s+\S+\s+sport\s+(\d+)\s+dport\s+(\d+)\b")
_SPI = re.compile(r"spi\s+0x([0-9a-fA-F]{1,8})\b")
_MODE = re.compile(r"\bmode\s+(\S+)")
# `auth NAME` (not -trunc) is the kernel's default truncation for NAME (xfrm_algo.c):
# 96 bits even for hmac(sha256), from before RFC 4868.
DEFAULT_TRUNC_BITS = {"hmac(md5)": 96, "hmac(sha1)": 96, "hmac(sha256)": 96, "hmac(sha384)": 192,
                      "hmac(sha512)": 256}


class _Block:
    def __init__(self, src: str, dst: str) -> None:
        self.src, self.dst = src, dst
        self.fields: dict[str, object] = {}
        self.proto = ""
        self.spi: int | None = None
        self.hidden = False

    def sa(self) -> SA | None:
        f = self.fields
        if self.proto != "esp" or self.spi is None or self.hidden or bool(f.get("aead")) == bool(f.get("enc")):
            return None
        return SA(self.src, self.dst, self.spi, **f)  # type: ignore[arg-type]


def parse_xfrm(text: str, source: str = "<xfrm>") -> list[SA]:
    """The ESP SAs with keys in `ip xfrm state` / `ip xfrm monitor` output, each once
    (in order of first appearance). Policies, acquires, expiry notes and lines we do
    not know are skipped; a key line that does not parse raises XfrmError naming
    `source` and the line number."""
    found: dict[SA, None] = {}
    block: _Block | None = None

    def close() -> None:
        sa = block.sa() if block else None
        if sa is not None:
            found.setdefault(sa)

    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if not line[0].isspace():           # any unindented line ends the block before it
            close()
            m = _HEAD.fullmatch(line)
            block = _Block(m[1], m[2]) if m else None
            continue
        if block is None:
            continue
        s = line.strip()
        word = s.split(None, 1)[0]
        if word == "proto":
            block.proto = s.split()[1] if len(s.split()) > 1 else ""
            spi, mode = _SPI.search(s), _MODE.search(s)
            block.spi = int(spi[1], 16) if spi else None
            if mode:
                block.fields["mode"] = mode[1]
        elif word in ("aead", "enc", "auth", "auth-trunc"):
            if "<<Keys hidden>>" in s:      # `ip xfrm state ... nokeys`: nothing to decrypt with
                block.hidden = True
                continue
            m = _KEYLINE.fullmatch(s)
            if m is None or (m[4] is None) != (word in ("enc", "auth")):
                raise XfrmError(f"{source}:{n}: malformed {word} line (expected '{word} NAME 0xHEX"
                                f"{' BITS' if word in ('aead', 'auth-trunc') else ''}'): {s!r}")
            name, key = m[2], bytes.fromhex(m[3])
            if word == "aead":
                block.fields.update(aead=name, aead_key=key, icv_bits=int(m[4]))
            elif word == "enc":
                block.fields.update(enc=name, enc_key=key)
            elif word == "auth-trunc":
                block.fields.update(auth=name, auth_key=key, icv_bits=int(m[4]))
            elif "auth" not in block.fields:    # auth-trunc, when both are printed, wins
                block.fields.update(auth=name, auth_key=key, icv_bits=DEFAULT_TRUNC_BITS.get(name, 96))
        elif word == "encap":
            m = _ENCAP.match(s)
            if m:
                block.fields["encap"] = (int(m[1]), int(m[2]))
    close()
    return list(found)


class Keyring:
    """SAs by (destination, SPI): the receiver picks the SPI, so the pair names one SA.
    When the destination does not match (a capture behind NAT sees the translated
    address) any SA with that SPI is tried."""

    def __init__(self, sas: Iterable[SA] = ()) -> None:
        self.sas: tuple[SA, ...] = tuple(dict.fromkeys(sas))
        self._exact: dict[tuple[str, int], list[SA]] = {}
        self._by_spi: dict[int, list[SA]] = {}
        for sa in self.sas:
            self._exact.setdefault((sa.dst, sa.spi), []).append(sa)
            self._by_spi.setdefault(sa.spi, []).append(sa)

    @classmethod
    def from_dir(cls, directory: Path | str) -> Keyring:
        """Every `xfrm__<node>.txt` in a capture directory (none: an empty keyring)."""
        sas: list[SA] = []
        for p in sorted(Path(directory).glob(XFRM_GLOB)):
            sas += parse_xfrm(p.read_text(errors="replace"), str(p))
        return cls(sas)

    def __len__(self) -> int:
        return len(self.sas)

    def __iter__(self) -> Iterator[SA]:
        return iter(self.sas)

    def candidates(self, dst: str, spi: int) -> list[SA]:
        exact = self._exact.get((dst, spi), [])
        return exact + [sa for sa in self._by_spi.get(spi, ()) if sa.dst != dst]

    def lookup(self, dst: str, spi: int) -> SA | None:
        c = self.candidates(dst, spi)
        return c[0] if c else None

    def decrypt(self, dst: str, esp: bytes) -> tuple[SA, int, bytes]:
        """(the SA that opened it, next header, payload); EspError from the best
        candidate when none does, or "no key" when there is none."""
        if len(esp) < 8:
            raise EspError("header", f"{len(esp)} bytes, fewer than SPI and sequence number (8)")
        spi = int.from_bytes(esp[:4], "big")
        first: EspError | None = None
        for sa in self.candidates(dst, spi):
            try:
                return (sa, *decrypt(sa, esp))
            except EspError as e:
                first = first or e
        raise first or EspError("", f"no key for spi 0x{spi:08x} to {dst}")


# ------------------------------------------------------------------ decryption

_AEAD = {"rfc4106(gcm(aes))": ((16, 24, 32), (8, 12, 16)),       # key sizes, ICV bytes
         "rfc7539esp(chacha20,poly1305)": ((32,), (16,))}
_ENC = {"cbc(aes)": (16, (16, 24, 32)), "ecb(cipher_null)": (0, (0,))}   # block = IV size, keys
_HASH = {"hmac(sha1)": "sha1", "hmac(sha256)": "sha256", "hmac(sha384)": "sha384", "hmac(sha512)": "sha512"}
_DIGEST = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
_PAD = tuple(bytes(range(1, n + 1)) for n in range(256))     # RFC 4303 2.4 default padding
SUPPORTED = (*_AEAD, *(f"{e} + {a}" for e in _ENC for a in ("none", *_HASH)))


def decrypt(sa: SA, esp: bytes) -> tuple[int, bytes]:
    """(next header, payload) of one ESP packet (from the SPI on, without any UDP
    header); the ICV is checked before anything is decrypted."""
    if len(esp) < 8:
        raise EspError("header", f"{len(esp)} bytes, fewer than SPI and sequence number (8)")
    spi = int.from_bytes(esp[:4], "big")
    if spi != sa.spi:
        raise EspError("spi", f"0x{spi:08x} is not the SA's 0x{sa.spi:08x}")
    plain = _open_aead(sa, esp, spi) if sa.aead else _open_enc_auth(sa, esp, spi)
    pad_len, nh = plain[-2], plain[-1]
    end = len(plain) - 2 - pad_len
    if end < 0:
        raise EspError("pad length", f"{pad_len}, but only {len(plain) - 2} bytes precede the trailer "
                                     f"(spi 0x{spi:08x})")
    if plain[end:-2] != _PAD[pad_len]:
        raise EspError("padding", f"{pad_len} bytes {plain[end:-2].hex()} are not 1, 2, 3, ... "
                                  f"(RFC 4303 2.4; spi 0x{spi:08x})")
    return nh, plain[:end]


def _unsupported(sa: SA) -> EspError:
    return EspError("algorithm", f"{sa.algorithm} (spi 0x{sa.spi:08x}) is not supported; "
                                 f"supported: {', '.join(SUPPORTED)}")


def _open_aead(sa: SA, esp: bytes, spi: int) -> bytes:
    if sa.aead not in _AEAD:
        raise _unsupported(sa)
    key_sizes, icv_sizes = _AEAD[sa.aead]
    key, salt = sa.aead_key[:-4], sa.aead_key[-4:]
    if len(key) not in key_sizes:
        raise EspError("key", f"{sa.aead} key is {len(sa.aead_key)} bytes, expected key + 4-byte salt "
                              f"({' or '.join(str(k + 4) for k in key_sizes)}; spi 0x{spi:08x})")
    icv = sa.icv_bits // 8
    if icv not in icv_sizes or sa.icv_bits % 8:
        raise EspError("icv", f"{sa.icv_bits}-bit ICV is not one {sa.aead} has "
                              f"({', '.join(str(8 * i) for i in icv_sizes)})")
    if len(esp) < 8 + 8 + 2 + icv:
        raise EspError("length", f"{len(esp)} bytes, fewer than header, 8-byte IV, trailer and "
                                 f"{icv}-byte ICV ({8 + 8 + 2 + icv}; spi 0x{spi:08x})")
    from cryptography.exceptions import InvalidTag
    try:    # nonce = salt || IV (RFC 4106 4); AAD = SPI || sequence number (5)
        return _aead_opener(sa.aead, key, icv)(salt + esp[8:16], esp[16:], esp[:8])
    except InvalidTag:
        raise EspError("icv", f"authentication failed for spi 0x{spi:08x}") from None


@functools.lru_cache(maxsize=256)   # one key schedule per SA, not per packet
def _aead_opener(name: str, key: bytes, icv: int) -> Callable[[bytes, bytes, bytes], bytes]:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    if name.startswith("rfc7539esp"):
        return ChaCha20Poly1305(key).decrypt
    if icv == 16:
        return AESGCM(key).decrypt
    aes = algorithms.AES(key)

    def open_short_tag(nonce: bytes, data: bytes, aad: bytes) -> bytes:   # AESGCM wants 16
        d = Cipher(aes, modes.GCM(nonce, data[-icv:], min_tag_length=icv)).decryptor()
        d.authenticate_additional_data(aad)
        return d.update(data[:-icv]) + d.finalize()
    return open_short_tag


def _open_enc_auth(sa: SA, esp: bytes, spi: int) -> bytes:
    if sa.enc not in _ENC or (sa.auth and sa.auth not in _HASH):
        raise _unsupported(sa)
    block, key_sizes = _ENC[sa.enc]
    if len(sa.enc_key) not in key_sizes:
        raise EspError("key", f"{sa.enc} key is {len(sa.enc_key)} bytes, expected "
                              f"{' or '.join(map(str, key_sizes))} (spi 0x{spi:08x})")
    icv = 0
    if sa.auth:
        icv = sa.icv_bits // 8
        if not 0 < icv <= _DIGEST[_HASH[sa.auth]] or sa.icv_bits % 8:
            raise EspError("icv", f"{sa.icv_bits}-bit truncation of {sa.auth} (spi 0x{spi:08x})")
    ct_len = len(esp) - 8 - block - icv
    if ct_len < 2 or (block and ct_len % block):
        raise EspError("length", f"{len(esp)} bytes leave {ct_len} bytes of ciphertext between header, "
                                 f"{block}-byte IV and {icv}-byte ICV; expected a positive multiple of "
                                 f"{block or 1} (spi 0x{spi:08x})")
    if icv:     # the ICV covers SPI .. the end of the ciphertext (RFC 4303 3.3.2)
        mac = hmac.digest(sa.auth_key, esp[:-icv], _HASH[sa.auth])[:icv]
        if not hmac.compare_digest(mac, esp[-icv:]):
            raise EspError("icv", f"authentication failed for spi 0x{spi:08x}")
    ct = esp[8 + block:len(esp) - icv]
    if not block:
        return ct
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    d = Cipher(algorithms.AES(sa.enc_key), modes.CBC(esp[8:8 + block])).decryptor()
    return d.update(ct) + d.finalize()

