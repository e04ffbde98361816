"""The Backend interface and its registry.

A backend turns a topology into running nodes joined by links (nothing more: the
DMVPN underlay on top is `labs.underlay`, the same for every backend), hands out
its nodes through the `Node` API, impairs links, and removes everything again,
also what a crashed run left. Backends are found by name in the entry point group
`dmvpnkit.backends`, where dmvpnkit registers its own (netns, mininet, clab) and a
package can add one (netlab's provider registry, pluggy's entry points).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar, Protocol

from .impairment import Impairment
from .node import Node
from .spec import Topology

ENTRY_POINT_GROUP = "dmvpnkit.backends"
DEFAULT = "netns"


class BackendError(RuntimeError):
    pass


class Backend(Protocol):
    name: ClassVar[str]
    # Can it run inside the UML lab kernel? (netns and Mininet can; containers need
    # the host's own kernel and Docker engine.)
    in_lab_kernel: ClassVar[bool]
    lab: str
    topo: Topology
    lab_dir: Path

    def __init__(self, lab: str, topo: Topology, lab_dir: Path) -> None: ...

    @classmethod
    def available(cls) -> str | None:
        """None when this machine can run the backend, else the exact reason why not."""

    def build(self) -> None:
        """Create every node and link of the topology (with its links' default
        impairment); nodes have interfaces named after their peers, nothing else."""

    def attach(self) -> None:
        """Reach a lab that another process built (`lab status`, `lab cli`)."""

    def node(self, name: str) -> Node:
        """The node `name` of the topology."""

    def impair(self, node: str, peer: str, imp: Impairment | None) -> None:
        """Impair what `node` sends on its link to `peer` (None: the link's default)."""

    def destroy(self) -> list[str]:
        """Stop everything this lab started and remove what it made; what was removed."""

    @classmethod
    def reap(cls, lab: str) -> list[str]:
        """Remove whatever an earlier, perhaps crashed, run of lab `lab` left."""

    @classmethod
    def running(cls) -> set[str]:
        """Names of this backend's labs that exist on this machine."""

    def cli(self) -> int:
        """An interactive console on the lab (Mininet's CLI); raise if there is none."""


def names() -> list[str]:
    """Installed backends (entry point group `dmvpnkit.backends`), without importing them."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def get(name: str) -> type[Backend]:
    """The backend registered as `name`, imported now."""
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            cls: type[Backend] = ep.load()
        except ImportError as e:
            raise BackendError(f"lab backend {name!r} ({ep.value}) does not import: {e}") from e
        return cls
    raise BackendError(f"no lab backend {name!r} (installed: {', '.join(names()) or 'none'}; "
                       f"entry point group {ENTRY_POINT_GROUP})")


def registry() -> dict[str, type[Backend]]:
    """Every installed backend by name, imported."""
    return {n: get(n) for n in names()}


__all__ = ["Backend", "BackendError", "registry", "names", "get", "ENTRY_POINT_GROUP", "DEFAULT"]
