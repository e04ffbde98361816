"""A minimal nfnetlink_log (NFLOG) client: the packets an iptables `-j NFLOG` rule logs.

The hub learns of hairpinned traffic (in and out of the tunnel) this way, as FRR does;
pyroute2 has no NFLOG support, so the few messages needed are packed here.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Iterator

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_QTHRESH = 1, 2, 5
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_PF_BIND, NFULNL_CFG_CMD_PF_UNBIND = 1, 3, 4
NFULNL_COPY_PACKET = 2
NFULA_PAYLOAD = 9
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NLA_TYPE_MASK = 0x3FFF


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (_align(len(payload)) - len(payload))


def nflog_config(group: int, copy_range: int, batched: bool) -> list[tuple[int, int, bytes, bool]]:
    """The config messages that bind `group` (family, group, attributes, whether a
    refusal is an error), in order."""
    return [
        # Unbind first: another logger of the same family would otherwise own it.
        (socket.AF_INET, 0, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_PF_UNBIND])), False),
        (socket.AF_INET, 0, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_PF_BIND])), True),
        (socket.AF_UNSPEC, group, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])), True),
        (socket.AF_UNSPEC, group, _attr(NFULA_CFG_MODE, struct.pack(">IBx", copy_range, NFULNL_COPY_PACKET)), True),
        # Each packet as it is logged: the kernel's default (kept when `batched`, a fault
        # switch) queues up to 100 and flushes once a second, holding multicast copies
        # and Traffic Indications back as long.
        *([] if batched else [(socket.AF_UNSPEC, group, _attr(NFULA_CFG_QTHRESH, struct.pack(">I", 1)), True)]),
    ]


class NflogError(OSError):
    pass


class Nflog:
    def __init__(self, group: int, copy_range: int = 0xFFFF, batched: bool = False):
        self.group = group
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self._seq = 0
        for family, grp, attrs, ack in nflog_config(group, copy_range, batched):
            self._config(family, grp, attrs, ack=ack)

    def fileno(self) -> int:
        return self.sock.fileno()

    def _config(self, family: int, group: int, attrs: bytes, ack: bool = True) -> None:
        self._seq += 1
        body = struct.pack("=BB", family, 0) + struct.pack(">H", group) + attrs     # nfgenmsg + attributes
        msg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
        hdr = struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
        self.sock.send(hdr + body)
        reply = self.sock.recv(65536)
        if len(reply) >= 20:
            _len, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", reply, 0)
            err = struct.unpack_from("=i", reply, 16)[0]
            if kind == NLMSG_ERROR and err < 0 and ack:
                raise NflogError(-err, f"NFLOG config for group {group}: {os.strerror(-err)}")

    def packets(self) -> Iterator[bytes]:
        """The logged packets (network layer, from the IP header) of one recv."""
        data = self.sock.recv(1 << 20)
        off = 0
        while off + 16 <= len(data):
            length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                break
            if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                a = off + 16 + 4                    # nlmsghdr + nfgenmsg
                end = off + length
                while a + 4 <= end:
                    alen, atype = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atype & NLA_TYPE_MASK == NFULA_PAYLOAD:
                        yield data[a + 4:a + alen]
                    a += _align(alen)
            off += _align(length)

    def close(self) -> None:
        self.sock.close()
