"""ClabBackend: containerlab deploys the exported lab; nodes are its containers.

Every containerlab call goes through pytest-clab's `ClabRunner` (deploy, destroy,
inspect, `tools netem`); `docker exec` is ClabNode's. A state file per lab in
STATE_DIR, written before deploy, names the lab file, so `reap` destroys what a
crashed run left and `running` lists the labs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pytest_clab.exceptions import ClabError, ContainerlabNotFoundError, TopologyNotFoundError
from pytest_clab.runner import ClabRunner
from pytest_clab.settings import CONTAINERLAB_EXECUTABLE

from ...backend import BackendError
from ...impairment import Impairment, ImpairmentError
from ...spec import Topology
from ..netns import NETNS_DIR, RUN_ROOT
from . import export as ex
from .check import check_export
from .node import DOCKER, ClabNode

STATE_DIR = Path("/run/dmvpnkit/clab")
DOCKER_SOCK = Path("/var/run/docker.sock")
DEPLOY_TIMEOUT = 900            # s: the first deploy pulls images
# What containers need of the host kernel they share (ESP/XFRM only for IPsec, out of scope here).
KERNEL_NEEDS = ("netns", "veth", "gre", "nfnetlink_log")


def _runner(file: Path, timeout: int = 300) -> ClabRunner:
    try:
        return ClabRunner(file, command_timeout=timeout)
    except ContainerlabNotFoundError:
        raise BackendError(f"no {CONTAINERLAB_EXECUTABLE} binary on PATH, needed for {file} "
                           f"(https://containerlab.dev/install/)") from None
    except TopologyNotFoundError:
        raise BackendError(f"containerlab lab file {file} does not exist") from None


def _docker_engine_problem() -> str | None:
    problems = []
    if "DOCKER_HOST" not in os.environ and not DOCKER_SOCK.exists():
        problems.append(f"{DOCKER_SOCK} missing")
    if shutil.which(DOCKER) is not None:
        try:
            done = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                  text=True, timeout=20, stdin=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                lines = (done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}").splitlines()
                problems.append(f"`docker info`: {lines[-1]}")
        except subprocess.TimeoutExpired:
            problems.append("`docker info` did not answer within 20 s")
    return "; ".join(problems) or None


class ClabBackend:
    name: ClassVar[str] = "clab"
    in_lab_kernel: ClassVar[bool] = False      # containers run on the host's own kernel

    def __init__(self, lab: str, topo: Topology, lab_dir: Path):
        self.lab = lab
        self.topo = topo
        self.lab_dir = lab_dir
        self._nodes: dict[str, ClabNode] = {}

    @classmethod
    def available(cls) -> str | None:
        missing = []
        if shutil.which(DOCKER) is None:
            missing.append(f"no {DOCKER} client on PATH")
        engine = _docker_engine_problem()
        if engine is not None:
            missing.append(f"no Docker engine ({engine})")
        if shutil.which(CONTAINERLAB_EXECUTABLE) is None:
            missing.append(f"no {CONTAINERLAB_EXECUTABLE} binary on PATH")
        from ...kernel import probe
        report = probe()
        lacks = [m for m in report.missing if m.split(" ")[0] in KERNEL_NEEDS]
        if lacks:
            missing.append(f"host kernel {report.release} lacks: {', '.join(lacks)} (containers share it)")
        return "; ".join(missing) or None

    @property
    def file(self) -> Path:
        return self.lab_dir / "clab" / f"{self.lab}.clab.yml"

    def node(self, name: str) -> ClabNode:
        if name not in self._nodes:
            if name not in self.topo.nodes:
                raise BackendError(f"lab {self.lab} has no node {name!r} (nodes: {', '.join(self.topo.nodes)})")
            self._nodes[name] = ClabNode(name, ex.node_id(self.lab, name))
        return self._nodes[name]

    # ------------------------------------------------------------ bring-up
    def _impl_phase(self) -> tuple[dict[str, str], int]:
        """Which implementation runs where: lab.json, which the lab writes before build()
        (the Backend interface carries neither)."""
        path = self.lab_dir / "lab.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise BackendError(f"{path}: cannot read the lab's implementations: {e}") from None
        impl, phase = doc.get("impl"), doc.get("phase", self.topo.phase)
        if not isinstance(impl, dict) or phase not in (1, 2, 3):
            raise BackendError(f"{path}: `impl` must map hub and spoke to implementations and `phase` be 1-3, "
                               f"got {impl!r}, {phase!r}")
        return impl, phase

    def build(self) -> None:
        reason = self.available()
        if reason is not None:
            raise BackendError(f"lab {self.lab}: --backend clab cannot run here: {reason}")
        impl, phase = self._impl_phase()
        # Images by environment: the Backend interface carries no options.
        images = {n: os.environ[ex.image_env(n)] for n in {*impl.values(), ex.LINUX} if os.environ.get(ex.image_env(n))}
        try:
            path = ex.export(self.topo, impl, phase, self.file.parent, harness=True, lab_dir=self.lab_dir,
                             name=self.lab, images=images)
        except ex.ExportError as e:
            raise BackendError(f"lab {self.lab}: {e}") from None
        problems = check_export(path, self.topo)
        if problems:
            raise BackendError(f"lab {self.lab}: the exported lab file has problems:\n  " + "\n  ".join(problems))
        nodes = yaml.safe_load(path.read_text())["topology"]["nodes"]
        self._need_images(nodes, path)
        runner = _runner(path, DEPLOY_TIMEOUT)
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        state = {"lab": self.lab, "file": str(path), "lab_dir": str(self.lab_dir),
                 "containers": [ex.node_id(self.lab, n) for n in self.topo.nodes],
                 "dirs": sorted({d for e in nodes.values() for d in json.loads(e["labels"][ex.L_DIRS])})}
        (STATE_DIR / self.lab).write_text(json.dumps(state, indent=2) + "\n")
        try:
            runner.deploy()
            runner.wait_until_running()
        except ClabError as e:
            raise BackendError(f"lab {self.lab}: containerlab deploy -t {path}: {e}") from None
        gone = [n for n in self.topo.nodes if not (NETNS_DIR / ex.node_id(self.lab, n)).exists()]
        if gone:
            raise BackendError(f"lab {self.lab}: containerlab made no namespace for {', '.join(gone)} "
                               f"(expected {NETNS_DIR}/{ex.node_id(self.lab, gone[0])})")
        for link in self.topo.links:
            for a, b in ((link.a, link.b), (link.b, link.a)):
                if link.impair.get(a):
                    self.impair(a, b, link.impair[a])

    def _need_images(self, nodes: dict[str, Any], path: Path) -> None:
        """dmvpnkit's own images are built locally: say how when one is missing (a pull would fail)."""
        wanted = sorted({str(n["image"]) for n in nodes.values()})
        for image in (i for i in wanted if i.startswith("dmvpnkit/")):
            done = subprocess.run([DOCKER, "image", "inspect", image], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, check=False)
            if done.returncode != 0:
                target = "" if image.startswith("dmvpnkit/nhrpd") else " --target linux"
                raise BackendError(f"image {image} is not built (needed by {path}): from the repository root, "
                                   f"docker build -f {ex.DOCKERFILE}{target} -t {image} .")

    def attach(self) -> None:
        if not (STATE_DIR / self.lab).exists():
            raise BackendError(f"no clab lab {self.lab} on this machine (no {STATE_DIR / self.lab})")

    def impair(self, node: str, peer: str, imp: Impairment | None) -> None:
        try:
            default = self.topo.link(node, peer).impair.get(node)
        except KeyError as e:
            raise ImpairmentError(str(e)) from None
        imp = imp if imp is not None else default
        container = ex.node_id(self.lab, node)
        # Interfaces are named after the peer (harness mode keeps the topology's names).
        if imp is None or imp.none:
            command = f"tools netem reset -n {container} -i {peer}"
        else:
            command = f"tools netem set -n {container} -i {peer}"
            if imp.delay:
                command += f" --delay {round(imp.delay * 1000)}us"     # a Go duration, never an exponent
            if imp.jitter:
                command += f" --jitter {round(imp.jitter * 1000)}us"
            if imp.loss:
                command += f" --loss {imp.loss:g}"
            if imp.rate:
                command += f" --rate {imp.rate}"
        try:
            _runner(self.file).cmd(command)
        except ClabError as e:
            raise ImpairmentError(f"{node}:{peer}: containerlab {command}: {e}") from None

    # ------------------------------------------------------------ teardown
    def destroy(self) -> list[str]:
        for n in self._nodes.values():
            n.close()
        self._nodes.clear()
        return self.reap(self.lab)

    @classmethod
    def reap(cls, lab: str) -> list[str]:
        state_file = STATE_DIR / lab
        try:
            state = json.loads(state_file.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            raise BackendError(f"{state_file}: unreadable clab state ({e}); destroy the lab by hand: "
                               f"containerlab destroy --name {lab} --cleanup") from None
        file = Path(state["file"])
        if not file.exists():
            raise BackendError(f"{state_file}: its lab file {file} is gone; destroy the lab by hand: "
                               f"containerlab destroy --name {lab} --cleanup, then remove {state_file}")
        runner = _runner(file)
        runner.destroy()                # logs, never raises: whether it worked is asked next
        if runner.is_deployed():
            raise BackendError(f"containerlab destroy -t {file} --cleanup left containers of lab {lab} running")
        containers: list[str] = list(state.get("containers", []))
        for d in state.get("dirs", [str(RUN_ROOT / nid) for nid in containers]):
            shutil.rmtree(d, ignore_errors=True)
        state_file.unlink(missing_ok=True)
        return containers

    @classmethod
    def running(cls) -> set[str]:
        return {p.name for p in STATE_DIR.iterdir() if p.is_file()} if STATE_DIR.is_dir() else set()

    def cli(self) -> int:
        node = ex.node_id(self.lab, next(iter(self.topo.hubs), next(iter(self.topo.nodes.values()))).name)
        raise BackendError(f"the clab backend has no lab console: `docker exec -it {node} vtysh -N {node}` "
                           f"(an FRR node whose daemons the harness started; a lab deployed by hand: "
                           f"`docker exec -it {node} vtysh`), or `dmvpnkit lab shell NODE`")


__all__ = ["STATE_DIR", "ClabBackend"]
