"""The Implementation protocol: how the lab runs a DMVPN implementation under test.

An implementation is a class, found by name in the entry point group
`dmvpnkit.implementations` (dmvpnkit's own `frr` and `nhrpd` register there as any
outside package does) or added from a conftest through the `pytest_dmvpnkit_add_implementations`
hook. The lab makes one instance per implementation it runs, with a `Setup` naming
the nodes that implementation plays; the instance renders their configuration from each
node's `DmvpnView`, starts and stops their daemons through the `Node` API, and
reports its version. What it lacks is declared data: features in `unimplemented`,
normalised state views in `views`, IPsec couplings in `ipsec_couplings`. A case that
needs something missing is UNIMPLEMENTED, with the reason, never PASS.

The optional container part, a classmethod `container`, says how one node runs as a
containerlab node (image, files, commands, binds): the containerlab export and
`--backend clab` take all of it from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from ..backend import Backend
from ..views import CacheEntry, NhsEntry, Shortcut
from .view import DmvpnView, Nhs, Route, view

if TYPE_CHECKING:
    from ..ipsec import StrongswanDriver

ENTRY_POINT_GROUP = "dmvpnkit.implementations"
VIEWS = ("cache", "nhs", "shortcuts")
COUPLINGS = ("trap", "vici")    # charon's trap policies (acquires) | the daemon drives SAs over VICI


class ImplementationError(RuntimeError):
    pass


class Unimplemented(ImplementationError):
    """Raised by the lab when a case asks an implementation for what it declared missing."""

    def __init__(self, impl: str, what: str, reason: str):
        super().__init__(f"{impl}: {what}: {reason}")
        self.impl, self.what, self.reason = impl, what, reason


@dataclass(frozen=True)
class Setup:
    """What the lab gives an implementation: where, which nodes, and the run's options."""
    backend: Backend
    lab_dir: Path
    phase: int
    nodes: tuple[str, ...]                          # the DMVPN nodes this implementation plays
    ipsec: StrongswanDriver | None = None           # a charon per node, when the lab has IPsec
    nhrpd_faults: tuple[str, ...] = ()              # our daemon's fault switches (others ignore them)
    variables: Mapping[str, str] = field(default_factory=dict)   # e.g. frr_prefix; a profile's variables

    def view(self, node: str) -> DmvpnView:
        return view(self.backend.topo, self.backend.topo.nodes[node], self.phase)


@dataclass(frozen=True)
class ContainerPlan:
    """One node of an implementation as a containerlab `linux` node.

    Standalone (`lab export`): the container configures and runs itself from `files`,
    `exec` (after the underlay's commands) and `cmd`. Harness (`--backend clab`): it idles
    and the driver starts daemons through the Node API; `binds` put the paths the
    driver uses where the image's programs look.
    """
    image: str
    files: Mapping[str, str] = field(default_factory=dict)   # container path -> content, bound read-only
    exec: tuple[str, ...] = ()          # standalone: shell commands after the underlay's
    cmd: str | None = None              # standalone: the container's command (None: the image's own)
    binds: tuple[str, ...] = ()         # harness: host:container[:options]
    dirs: tuple[Path, ...] = ()         # harness: host directories made for those binds, removed with the lab


@runtime_checkable
class Implementation(Protocol):
    name: ClassVar[str]
    # feature (`@pytest.mark.feature`) -> why this implementation lacks it
    unimplemented: ClassVar[Mapping[str, str]]
    # which of VIEWS it offers; a case that reads another one is UNIMPLEMENTED
    views: ClassVar[tuple[str, ...]]
    # the IPsec couplings it supports, preferred first; empty: no IPsec
    ipsec_couplings: ClassVar[tuple[str, ...]]

    def __init__(self, setup: Setup) -> None: ...

    @classmethod
    def version(cls, variables: Mapping[str, str]) -> str:
        """What the implementation's binaries say they are (with `variables` applied)."""

    def write_configs(self) -> None:
        """Render every node's configuration into `lab_dir/nodes/<node>/`."""

    def start(self) -> None:
        """Start every node's daemons; return once they run (not: once converged)."""

    def stop(self) -> None:
        """Stop everything this instance started."""

    def stop_daemon(self, node: str, daemon: str) -> None:
        """Stop one daemon of one node, as a crash or an admin would."""

    def start_daemon(self, node: str, daemon: str) -> None:
        """Start it again with the same configuration."""

    # Optional: `unshunted_faults`, a ClassVar frozenset of its `--nhrpd-fault` switches
    # that send GRE before IKE is done; with one of them on, the lab leaves charon's drop
    # shunt out on its nodes (else the shunt, not the implementation, would keep GRE in).

    # Optional: `reload(node)` applies the node's configuration files as they are now to
    # its running daemons (`dmvpnkit lab reload NODE`); without it, a reload is UNIMPLEMENTED.

    # Optional, the container part:
    #   @classmethod
    #   def container(cls, v: DmvpnView, *, node_id: str, harness: bool, image: str | None) -> ContainerPlan
    # `v` is the node as the container names its interfaces, `node_id` its container
    # (FRR's path space), `image` the user's choice (None: the implementation's default).

    # The normalised state views, for those named in `views`; on a dual-stack node
    # (a tunnel6 address), both families' entries.
    def cache(self, node: str) -> list[CacheEntry]: ...
    def nhs(self, node: str) -> list[NhsEntry]: ...
    def shortcuts(self, node: str) -> list[Shortcut]: ...


class Driver:
    """The Setup fields a built-in driver reads, by the names it reads them."""

    def __init__(self, setup: Setup):
        self.setup = setup
        self.backend = setup.backend
        self.topo = setup.backend.topo
        self.dir = setup.lab_dir
        self.nodes = list(setup.nodes)

    def families(self, node: str) -> tuple[int, ...]:
        """The IP versions of a node's protocol addresses: its views hold entries of each."""
        return (4, 6) if self.topo.nodes[node].tunnel6 is not None else (4,)


# Added at run time (the `pytest_dmvpnkit_add_implementations` hook, `--impl PATH` profiles).
_added: dict[str, type[Implementation]] = {}


def add(cls: type[Implementation]) -> None:
    problems = check(cls)
    if problems:
        raise ImplementationError(f"implementation {getattr(cls, 'name', cls)!r}: " + "; ".join(problems))
    _added[cls.name] = cls


def check(cls: type) -> list[str]:
    """What keeps `cls` from being an Implementation, each naming the attribute."""
    problems = [f"no {a}" for a in ("name", "unimplemented", "views", "ipsec_couplings", "version",
                                    "write_configs", "start", "stop", "stop_daemon", "start_daemon")
                if not hasattr(cls, a)]
    problems += [f"views: unknown {v!r} (known: {', '.join(VIEWS)})" for v in getattr(cls, "views", ()) if v not in VIEWS]
    problems += [f"ipsec_couplings: unknown {c!r} (known: {', '.join(COUPLINGS)})"
                 for c in getattr(cls, "ipsec_couplings", ()) if c not in COUPLINGS]
    return problems


def container_plan(cls: type[Implementation], v: DmvpnView, *, node_id: str, harness: bool,
                   image: str | None) -> ContainerPlan:
    """`cls`'s container part for one node; an ImplementationError if it has none."""
    make = getattr(cls, "container", None)
    if make is None:
        raise ImplementationError(f"implementation {cls.name!r} has no container part (a `container` classmethod "
                                  f"returning a ContainerPlan): it cannot run as a containerlab node")
    plan = make(v, node_id=node_id, harness=harness, image=image)
    if not isinstance(plan, ContainerPlan):
        raise ImplementationError(f"implementation {cls.name!r}: container() returned {type(plan).__name__}, "
                                  f"not a ContainerPlan")
    return plan


def resolve(text: str) -> str:
    """An `--impl` value -> an implementation name: a name as is; a profile file
    (a path, or a name ending in .yaml) is loaded, checked whole, and added."""
    if "/" not in text and not text.endswith((".yaml", ".yml")):
        get(text)
        return text
    from .profile import for_profile, load
    cls = for_profile(load(text))
    known = getattr(_added.get(cls.name), "profile", None)
    if known is not None and known.source != cls.profile.source:
        raise ImplementationError(f"{text}: profile name {cls.name!r} is already {known.source}'s")
    if cls.name in {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}:
        raise ImplementationError(f"{text}: profile name {cls.name!r} is an installed implementation's; rename it")
    _added[cls.name] = cls
    return cls.name


def profile_path(name: str) -> str | None:
    """The file an added profile implementation came from (lab.json keeps it)."""
    profile = getattr(_added.get(name), "profile", None)
    return str(profile.source.resolve()) if profile is not None else None


def names() -> list[str]:
    """Installed and added implementations, without importing the installed ones."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)} | set(_added))


def get(name: str) -> type[Implementation]:
    """The implementation registered as `name`, imported now."""
    if name in _added:
        return _added[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            cls: type[Implementation] = ep.load()
        except ImportError as e:
            raise ImplementationError(f"implementation {name!r} ({ep.value}) does not import: {e}") from e
        problems = check(cls)
        if problems:
            raise ImplementationError(f"implementation {name!r} ({ep.value}): " + "; ".join(problems))
        return cls
    raise ImplementationError(f"no implementation {name!r} (installed: {', '.join(names()) or 'none'}; "
                              f"entry point group {ENTRY_POINT_GROUP})")


def origin(name: str) -> str:
    """Where `name` comes from: its distribution, or how it was added."""
    if name in _added:
        return f"profile {profile_path(name)}" if profile_path(name) else f"added ({_added[name].__module__})"
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return f"{ep.dist.name if ep.dist else '?'} ({ep.value})"
    return "?"


__all__ = ["Implementation", "ContainerPlan", "container_plan", "Driver", "ImplementationError", "Unimplemented", "Setup", "DmvpnView", "Nhs", "Route",
           "view", "names", "get", "add", "check", "origin", "resolve", "profile_path", "ENTRY_POINT_GROUP", "VIEWS", "COUPLINGS"]
