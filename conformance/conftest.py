"""Shared case helpers: traffic between LAN hosts, the frames a case saw."""

from __future__ import annotations

from typing import Any

import pytest

from .wire import Frame, frames


class Traffic:
    def __init__(self, lab: Any):
        self.lab = lab

    def ping(self, src_node: str, dst_node: str, count: int, interval: float = 0.1) -> str:
        dst = str(self.lab.topo.nodes[dst_node].iface(dst_node.removesuffix("_h")).address.ip)
        return self.lab.net.run(src_node, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", dst],
                                check=False).stdout


@pytest.fixture
def traffic(lab: Any) -> Traffic:
    return Traffic(lab)


def seen(capture: Any) -> list[Frame]:
    """Stop the capture (flushing pcaps) and decode what it saw."""
    capture.stop()
    return frames(capture.dir)
