"""The layering DESIGN.md promises (pyproject's import-linter contracts): the judge
never imports the judged (`nhrpd`), the daemon imports nothing else of ours, and only
the plugin imports pytest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]
LINT = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(REPO / "pyproject.toml")]


def lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    return subprocess.run([*LINT, "--no-cache"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_the_contracts_hold() -> None:
    done = lint()
    assert done.returncode == 0 and "3 kept, 0 broken" in done.stdout, done.stdout[-3000:] + done.stderr


def test_a_judge_importing_the_daemon_breaks_them(tmp_path: Path) -> None:
    shutil.copytree(REPO / "src" / "dmvpnkit", tmp_path / "dmvpnkit", ignore=shutil.ignore_patterns("__pycache__"))
    vici = tmp_path / "dmvpnkit" / "labs" / "vici.py"
    vici.write_text(vici.read_text().replace("import socket\n", "import socket\n\nfrom ..nhrpd import ipsec  # noqa\n", 1))
    done = lint(tmp_path)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "labs, capture, nhrp do not import" in done.stdout and "BROKEN" in done.stdout, done.stdout[-2000:]
    assert "dmvpnkit.labs.vici -> dmvpnkit.nhrpd" in done.stdout, done.stdout[-2000:]
