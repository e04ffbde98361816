"""Runs from several report directories (other implementations, other role mixes,
other machines) side by side in one matrix.

Evidence is brought under the output directory, `runs/<column>/<path in its run>`,
so the merged report opens and moves as one tree: copied by default (a later run
that rewrites its pcaps in place cannot change a certified record), or symlinked
with relative targets (`link=True`) to save space where the inputs stay put.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

from .model import Matrix, ReportError, Run, load_matrix, now_iso, results_path
from .render import columns


def _fingerprint(run: Run) -> tuple[object, ...]:
    return (run.created, run.host, run.combination, run.phase, run.kernel, len(run.results))


def merge(dirs: Sequence[Path | str], out: Path | str, link: bool = False,
          warn: Callable[[str], None] = lambda msg: None) -> Matrix:
    """Load each directory's results.json (schema 1 or 2), bring the evidence under `out`
    and return the merged Matrix (not yet written: pass it to `reports.write(out, m)`)."""
    if not dirs:
        raise ReportError("merge: no report directories given")
    out = Path(out).resolve()
    sources: list[tuple[Path, Run]] = []
    seen: dict[tuple[object, ...], Path] = {}
    for d in dirs:
        src = results_path(d).resolve()
        for run in load_matrix(src).runs:
            fp = _fingerprint(run)
            if fp in seen:
                warn(f"{src}: run {run.combination} phase {run.phase} of {run.created} is already merged "
                     f"from {seen[fp]}; skipped")
                continue
            seen[fp] = src
            sources.append((src.parent, run))
    merged = Matrix(runs=[run for _, run in sources], generated=now_iso())
    cols = columns(merged)
    out.mkdir(parents=True, exist_ok=True)
    for (base, run), col in zip(sources, cols, strict=False):
        moved: dict[str, str | None] = {}
        for r in run.results:
            ev = r.evidence
            for kind in ("pcaps", "logs", "configs"):
                paths = []
                for p in getattr(ev, kind):
                    if p not in moved:
                        moved[p] = _bring(base / p, out, f"runs/{col.id}", p, link, warn)
                    if moved[p] is not None:
                        paths.append(moved[p])
                setattr(ev, kind, paths)
    return merged


def _bring(src: Path, out: Path, prefix: str, rel: str, link: bool, warn: Callable[[str], None]) -> str | None:
    """Place `src` under `out` and return its path relative to `out` (None: missing)."""
    src = Path(os.path.abspath(src))
    if not src.is_file():
        warn(f"{src}: evidence file missing; dropped from the merged report")
        return None
    try:
        inside = src.relative_to(out)
        return inside.as_posix()            # already part of the output tree
    except ValueError:
        pass
    parts = [p for p in Path(rel).parts if p not in ("..", ".", "/")]
    if len(parts) > 2 and parts[0] == "runs":       # an earlier merge's own prefix
        parts = parts[2:]
    dest_rel = Path(prefix, *parts)
    dest = out / dest_rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    if link:
        dest.symlink_to(os.path.relpath(src, dest.parent))
    else:
        shutil.copy2(src, dest)
    return dest_rel.as_posix()
