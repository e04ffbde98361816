"""Live taps: tcpdump on lab interfaces, ready before `start()` returns.

tcpdump prints "listening on" once its socket is bound; waiting for that line means
the first packet of a case is never lost. One pcap per node and interface, named
`<node>__<iface>.pcap`, the layout `dmvpnkit.capture` merges into a timeline.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from pathlib import Path

from ..capture import Timeline
from ..capture.timeline import MACS_FILE
from .lab import Lab


class TapError(RuntimeError):
    pass


class LabCapture:
    def __init__(self, lab: Lab, out_dir: Path, nodes: list[str] | None = None):
        self.lab = lab
        self.dir = out_dir
        topo = lab.topo
        self.points = [(n, topo.nodes[n].nbma_iface) for n in (nodes or [n.name for n in topo.nodes.values()
                                                                          if n.is_dmvpn])]
        self.procs: list[tuple[str, str, subprocess.Popen]] = []

    def path(self, node: str, iface: str) -> Path:
        return self.dir / f"{node}__{iface}.pcap"

    def start(self, timeout: float = 10.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Each interface's MAC tells the timeline which frames the node sent: exact,
        # where addresses mislead (a renumbered node, a NAT box).
        macs = {f"{node}__{iface}": self._mac(node, iface) for node, iface in self.points}
        (self.dir / MACS_FILE).write_text(json.dumps(macs, indent=1) + "\n")
        for node, iface in self.points:
            p = self.lab.net.popen(node, ["tcpdump", "-i", iface, "-U", "-n", "--immediate-mode", "-s", "0",
                                          "-w", str(self.path(node, iface))],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.procs.append((node, iface, p))
        deadline = time.monotonic() + timeout
        for node, iface, p in self.procs:
            seen = b""
            while b"listening on" not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or p.poll() is not None:
                    self.stop()
                    raise TapError(f"tcpdump on {node}:{iface} did not start: {seen.decode(errors='replace')}")
                if select.select([p.stderr], [], [], left)[0]:
                    seen += p.stderr.read1(4096)

    def timeline(self, stop: bool = True) -> Timeline:
        """Decode what was captured: after stopping (flushing every pcap), or, with
        `stop=False`, what tcpdump has written so far (it writes packet by packet)."""
        if stop:
            self.stop()
        return Timeline.from_dir(self.dir, self.lab.topo.nbma_names())

    def _mac(self, node: str, iface: str) -> str:
        ipr = self.lab.net.ipr(node)
        link = ipr.get_links(ipr.link_lookup(ifname=iface)[0])[0]
        return str(link.get_attr("IFLA_ADDRESS"))

    def stop(self) -> None:
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
