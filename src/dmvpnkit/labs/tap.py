"""Live taps: tcpdump on lab interfaces, ready before `start()` returns.

tcpdump prints "listening on" once its socket is bound; waiting for that line means
the first packet of a case is never lost. Stopping, each interface first sends a
marker frame and waits until its pcap holds it: a tcpdump interrupted while packets
still sit in its ring buffer (a busy one-CPU lab kernel) drops them, packets the case
may already have seen answered. One pcap per node and interface, named
`<node>__<iface>.pcap`, the layout `dmvpnkit.capture` merges into a timeline.

In IPsec labs each node's ESP keys go to `xfrm__<node>.txt`: `ip xfrm monitor` for
the whole capture (SAs that come and go with a shortcut) between two `ip xfrm state`
dumps; the timeline decrypts with them.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

from ..capture import Timeline
from ..capture.timeline import MACS_FILE
from .lab import Lab
from .node import CommandError, link_mac


# IEEE 802's local experimental EtherType: nothing in a lab reads it, and the timeline
# decodes IPv4 frames only.
MARKER_ETHERTYPE = 0x88B5
SYNC_WITHIN = 2.0           # s: a marker lost to egress netem is sent again meanwhile


class TapError(RuntimeError):
    pass


class LabCapture:
    def __init__(self, lab: Lab, out_dir: Path, nodes: list[str] | None = None):
        self.lab = lab
        self.dir = out_dir
        topo = lab.topo
        names = nodes or [n.name for n in topo.nodes.values() if n.is_dmvpn]
        bare = [n for n in names if not topo.nodes[n].nbma_iface]
        if bare:
            raise TapError(f"no NBMA interface to capture on {', '.join(bare)} (not DMVPN nodes)")
        self.points = [(n, str(topo.nodes[n].nbma_iface)) for n in names]
        self.nodes = list(dict.fromkeys(n for n, _ in self.points))
        self.procs: list[tuple[str, str, subprocess.Popen[bytes]]] = []
        self.keylogs: list[subprocess.Popen[bytes]] = []
        self.macs: dict[str, str] = {}

    def __enter__(self) -> LabCapture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()                 # also when the scenario failed: no tcpdump outlives it

    def path(self, node: str, iface: str) -> Path:
        return self.dir / f"{node}__{iface}.pcap"

    def start(self, timeout: float = 10.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Each interface's MAC tells the timeline which frames the node sent: exact,
        # where addresses mislead (a renumbered node, a NAT box).
        self.macs = {f"{node}__{iface}": link_mac(self.lab.node(node), iface) for node, iface in self.points}
        (self.dir / MACS_FILE).write_text(json.dumps(self.macs, indent=1) + "\n")
        if self.lab.driver.ipsec is not None:
            self._keys_start()
        for node, iface in self.points:
            p = self.lab.node(node).popen(["tcpdump", "-i", iface, "-U", "-n", "--immediate-mode", "-s", "0",
                                           "-w", str(self.path(node, iface))], stderr=subprocess.PIPE)
            self.procs.append((node, iface, p))
        deadline = time.monotonic() + timeout
        for node, iface, p in self.procs:
            seen, err = b"", p.stderr
            while b"listening on" not in seen:
                left = deadline - time.monotonic()
                if err is None or left <= 0 or p.poll() is not None:
                    self.stop()
                    raise TapError(f"tcpdump on {node}:{iface} did not start: {seen.decode(errors='replace')}")
                if select.select([err], [], [], left)[0]:
                    seen += os.read(err.fileno(), 4096)

    def timeline(self, stop: bool = True) -> Timeline:
        """Decode what was captured: after stopping (flushing every pcap), or, with
        `stop=False`, what tcpdump has written so far (it writes packet by packet, but
        may lag the wire by the packets in its buffer: for polling, never for a verdict)."""
        if stop:
            self.stop()
        return Timeline.from_dir(self.dir, self.lab.topo.nbma_names())

    def _keys(self, node: str, what: str) -> Path:
        return self.dir / f"xfrm__{node}.{what}.txt"

    def _keys_start(self) -> None:
        for node in self.nodes:
            with open(self._keys(node, "monitor"), "ab") as out:
                # Line-buffered: SIGTERM must not lose keys still in stdio's buffer.
                self.keylogs.append(self.lab.node(node).popen(["stdbuf", "-oL", "ip", "xfrm", "monitor"],
                                                              stdout=out, stderr=subprocess.STDOUT))
        self._keys_dump()

    def _keys_dump(self) -> None:
        for node in self.nodes:
            try:
                state = self.lab.node(node).run(["ip", "xfrm", "state"], check=False).out
            except CommandError:        # the node is gone (a lab that failed to come up): its error tells why
                continue
            with open(self._keys(node, "state"), "a") as out:
                out.write(state)

    def sync(self, timeout: float = SYNC_WITHIN) -> list[str]:
        """Until every running tcpdump has written all it captured before now: a marker
        frame (to the interface's own MAC, which no neighbour takes) goes out of each
        interface, and tcpdump writes in order, packet by packet. Returns the
        interfaces whose marker did not show within `timeout` (100 % egress loss; the
        stop then goes ahead as it would have without)."""
        token = b"dmvpnkit-sync " + os.urandom(8).hex().encode()
        offset = {(n, i): self.path(n, i).stat().st_size if self.path(n, i).exists() else 0
                  for n, i, p in self.procs if p.poll() is None}
        deadline, sent = time.monotonic() + timeout, 0.0
        while offset and time.monotonic() < deadline:
            if time.monotonic() - sent > 0.2:
                for node, iface in list(offset):
                    try:
                        self._marker(node, iface, token)
                    except OSError:         # the node is gone (a lab that failed to come up)
                        del offset[(node, iface)]
                sent = time.monotonic()
            time.sleep(0.01)
            offset = {k: off for k, off in offset.items() if token not in self._tail(self.path(*k), off)}
        return [f"{n}:{i}" for n, i in offset]

    def _marker(self, node: str, iface: str, token: bytes) -> None:
        mac = bytes.fromhex(self.macs[f"{node}__{iface}"].replace(":", ""))
        with self.lab.node(node).socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((iface, 0))
            s.send((mac + mac + struct.pack(">H", MARKER_ETHERTYPE) + token).ljust(60, b"\0"))

    @staticmethod
    def _tail(path: Path, offset: int) -> bytes:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read()
        except FileNotFoundError:
            return b""

    def stop(self) -> None:
        if self.procs:
            self.sync()
        if self.keylogs:
            self._keys_dump()
            for p in self.keylogs:
                p.terminate()
            for p in self.keylogs:
                p.wait()
            self.keylogs.clear()
        for _, _, p in self.procs:
            p.send_signal(signal.SIGINT)      # flushes the pcap, unlike SIGKILL
        for _, _, p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stderr:
                p.stderr.close()
        self.procs.clear()
