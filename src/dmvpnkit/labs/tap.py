"""Live taps: tcpdump on lab interfaces, ready before `start()` returns.

tcpdump prints "listening on" once its socket is bound; waiting for that line means
the first packet of a case is never lost. One pcap per node and interface, named
`<node>__<iface>.pcap`, the layout `dmvpnkit.capture` merges into a timeline.

In IPsec labs each node's ESP keys go to `xfrm__<node>.txt`: `ip xfrm monitor` for
the whole capture (SAs that come and go with a shortcut) between two `ip xfrm state`
dumps; the timeline decrypts with them.
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
        self.nodes = list(dict.fromkeys(n for n, _ in self.points))
        self.procs: list[tuple[str, str, subprocess.Popen]] = []
        self.keylogs: list[subprocess.Popen] = []

    def path(self, node: str, iface: str) -> Path:
        return self.dir / f"{node}__{iface}.pcap"

    def start(self, timeout: float = 10.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Each interface's MAC tells the timeline which frames the node sent: exact,
        # where addresses mislead (a renumbered node, a NAT box).
        macs = {f"{node}__{iface}": self._mac(node, iface) for node, iface in self.points}
        (self.dir / MACS_FILE).write_text(json.dumps(macs, indent=1) + "\n")
        if self.lab.driver.ipsec is not None:
            self._keys_start()
        for node, iface in self.points:
            p = self.lab.node(node).popen(["tcpdump", "-i", iface, "-U", "-n", "--immediate-mode", "-s", "0",
                                           "-w", str(self.path(node, iface))], stderr=subprocess.PIPE)
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
        ipr = self.lab.node(node).ipr()
        link = ipr.get_links(ipr.link_lookup(ifname=iface)[0])[0]
        return str(link.get_attr("IFLA_ADDRESS"))

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
            with open(self._keys(node, "state"), "a") as out:
                out.write(self.lab.node(node).run(["ip", "xfrm", "state"], check=False).out)

    def stop(self) -> None:
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
