"""A containerlab node: its network namespace by setns, its image by `docker exec`.

containerlab links every container's namespace as `clab-<lab>-<node>` in the named
namespace directory, so netlink, sockets, sysctls and the harness's own tools
(tcpdump, iptables, ping: `in_image=False`) reach it exactly like a netns node.
Commands that need the container's filesystem (its FRR, its python: `in_image=True`)
go through `docker exec`, argument lists only, never a shell.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from ...backend import BackendError
from ...node import CommandError, Completed, Stream
from ..netns import NamespaceNode

DOCKER = "docker"


class ClabNode(NamespaceNode):
    """Node API for container `container` (also its namespace's name)."""

    def __init__(self, name: str, container: str):
        super().__init__(name, container)
        self.container = container

    def docker_argv(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                    interactive: bool = False, tty: bool = False) -> list[str]:
        cmd = [DOCKER, "exec"] + (["-i"] if interactive else []) + (["-t"] if tty else [])
        for key, val in (env or {}).items():
            cmd += ["-e", f"{key}={val}"]
        return [*cmd, self.container, *argv]

    def popen(self, argv: Sequence[str], *, stdin: Stream = subprocess.DEVNULL,
              stdout: Stream = subprocess.DEVNULL, stderr: Stream = subprocess.DEVNULL,
              env: Mapping[str, str] | None = None, private_run: Path | None = None,
              new_session: bool = False, in_image: bool = False) -> subprocess.Popen[bytes]:
        if not in_image:
            return super().popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                                 private_run=private_run, new_session=new_session)
        if private_run is not None:
            raise BackendError(f"{self.name}: a private /run for a process in the image is not supported on "
                               f"clab nodes (it serves charon: IPsec on clab is out of scope)")
        # The handle is the docker client's: it exits with the command's status, and
        # killing it does not kill the command (stop daemons by their pids).
        interactive = stdin is not None and stdin != subprocess.DEVNULL
        return subprocess.Popen(self.docker_argv(argv, env=env, interactive=interactive), stdin=stdin,
                                stdout=stdout, stderr=stderr, start_new_session=new_session)

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0,
            env: Mapping[str, str] | None = None, in_image: bool = False) -> Completed:
        if not in_image:
            return super().run(argv, check=check, timeout=timeout, env=env)
        full = tuple(self.docker_argv(argv, env=env))
        p = self.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, in_image=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            done = Completed(full, -9, out.decode(errors="replace"),
                             err.decode(errors="replace") + f"\n(docker exec killed after {timeout:.0f} s; "
                             f"the command may still run in {self.container})")
            raise CommandError(self.name, done) from None
        done = Completed(full, p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and done.rc != 0:
            raise CommandError(self.name, done)
        return done

    def exec(self, argv: Sequence[str]) -> NoReturn:
        """Interactive, in the image (`lab shell`, `lab exec`): `docker exec -it`."""
        full = self.docker_argv(argv, interactive=True, tty=os.isatty(0))
        os.execvp(full[0], full)


__all__ = ["DOCKER", "ClabNode"]
