"""LabCapture on a lab that failed to come up: `up()` has already destroyed its nodes
when the lab fixture stops the bring-up capture, and the lab's own error (which spoke
never registered) must reach the report, not a capture's "namespace is gone"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dmvpnkit.labs import spec
from dmvpnkit.labs.node import CommandError, Completed
from dmvpnkit.labs.tap import LabCapture

REPO = Path(__file__).parents[2]


@dataclass
class Node:
    name: str
    gone: bool

    def run(self, argv: list[str], check: bool = True) -> Completed:
        if self.gone:
            raise CommandError(self.name, Completed((), 127, "", "namespace is gone"))
        return Completed(tuple(argv), 0, f"src 172.16.0.1 dst 172.16.0.6 ({self.name})\n", "")


@dataclass
class HalfGoneLab:
    """A lab whose hub1 namespace is gone and whose spokes are still there."""
    topo: spec.Topology

    def node(self, name: str) -> Node:
        return Node(name, gone=name == "hub1")


def test_keys_of_the_nodes_left_are_kept_and_a_gone_node_is_skipped(tmp_path: Path) -> None:
    lab = HalfGoneLab(spec.load(REPO / "topologies" / "hub_2spoke.yaml"))
    cap = LabCapture(lab, tmp_path)      # type: ignore[arg-type]  # the two members LabCapture uses
    cap._keys_dump()
    assert not cap._keys("hub1", "state").exists()
    assert cap._keys("spoke1", "state").read_text() == "src 172.16.0.1 dst 172.16.0.6 (spoke1)\n"
    assert "(spoke2)" in cap._keys("spoke2", "state").read_text()
