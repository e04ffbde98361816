"""`mypy --strict src/`: the harness's public APIs are typed, and stay so."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]
MYPY = [sys.executable, "-m", "mypy", "--strict", "--config-file", str(REPO / "pyproject.toml"), "--no-incremental"]


def mypy(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MYPY, str(src)], capture_output=True, text=True, cwd=REPO, timeout=600)


def test_src_is_clean_under_strict() -> None:
    done = mypy(REPO / "src")
    assert done.returncode == 0 and "Success: no issues found" in done.stdout, done.stdout[-4000:] + done.stderr


def test_an_untyped_function_breaks_it(tmp_path: Path) -> None:
    shutil.copytree(REPO / "src" / "dmvpnkit", tmp_path / "dmvpnkit", ignore=shutil.ignore_patterns("__pycache__"))
    views = tmp_path / "dmvpnkit" / "labs" / "views.py"
    views.write_text(views.read_text() + "\n\ndef untyped(records):\n    return records\n")
    done = mypy(tmp_path / "dmvpnkit")
    assert done.returncode == 1 and 'views.py:' in done.stdout and "[no-untyped-def]" in done.stdout, done.stdout[-2000:]
