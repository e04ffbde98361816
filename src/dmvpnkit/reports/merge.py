"""Runs from several report directories (other implementations, other role mixes,
other machines) side by side in one matrix.

Evidence is brought under the output directory, `runs/<column>/<path in its run>`,
so the merged report opens and moves as one tree: copied by default (a later run
that rewrites its pcaps in place cannot change a certified record), or symlinked
with relative targets (`link=True`) to save space where the inputs stay put.
The shards of one job set (`--shard K/N`, a CI matrix) join into one column, their
evidence under `runs/<column>/shard<K>/`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Sequence

from .model import Matrix, ReportError, Run, load_matrix, now_iso, results_path
from .render import columns


def _fingerprint(run: Run) -> tuple[object, ...]:
    return (run.created, run.host, run.combination, run.phase, run.kernel, len(run.results))


def merge(dirs: Sequence[Path | str], out: Path | str, link: bool = False,
          warn: Callable[[str], None] = lambda msg: None) -> Matrix:
    """Load each directory's results.json (any schema), bring the evidence under `out`
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
    groups = _group_shards(sources, warn)
    merged = Matrix(runs=[_joined(parts, warn) for parts in groups], generated=now_iso())
    cols = columns(merged)
    out.mkdir(parents=True, exist_ok=True)
    for parts, col in zip(groups, cols, strict=True):
        for base, run, tag in parts:
            moved: dict[str, str | None] = {}
            prefix = f"runs/{col.id}/{tag}" if tag else f"runs/{col.id}"
            for r in run.results:
                ev = r.evidence
                for kind in ("pcaps", "logs", "configs"):
                    paths = []
                    for p in getattr(ev, kind):
                        if p not in moved:
                            moved[p] = _bring(base / p, out, prefix, p, link, warn)
                        if moved[p] is not None:
                            paths.append(moved[p])
                    setattr(ev, kind, paths)
    return merged


Part = tuple[Path, Run, str]        # a report directory, a run in it, its evidence's subdirectory


def _shard(run: Run) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)/(\d+)", str(run.options.get("shard") or ""))
    return (int(m[1]), int(m[2])) if m else None


def _group_shards(sources: list[tuple[Path, Run]], warn: Callable[[str], None]) -> list[list[Part]]:
    """The matrix's columns, as the runs each is made of: a run of its own, or the
    shards (`--shard K/N`) of one combination, phase, lab kernel and options."""
    groups: list[list[Part]] = []
    shards: dict[tuple[object, ...], list[Part]] = {}
    for base, run in sources:
        s = _shard(run)
        if s is None:
            groups.append([(base, run, "")])
            continue
        opts = {k: v for k, v in run.options.items() if k not in ("shard", "workers")}
        key = (run.combination, run.phase, run.lab_kernel, s[1], json.dumps(opts, sort_keys=True, default=str))
        if key not in shards:
            groups.append(shards.setdefault(key, []))
        if any(_shard(r) == s for _, r, _ in shards[key]):
            warn(f"{base}: shard {s[0]}/{s[1]} of {run.combination} phase {run.phase} is already merged; skipped")
            continue
        shards[key].append((base, run, f"shard{s[0]}"))
    return groups


def _joined(parts: list[Part], warn: Callable[[str], None]) -> Run:
    """One column's run: the run itself, or its shards joined (every case once; wall
    time the longest shard's, as the jobs ran side by side)."""
    if len(parts) == 1 and not parts[0][2]:
        return parts[0][1]
    parts.sort(key=lambda p: _shard(p[1]) or (0, 0))
    runs = [run for _, run, _ in parts]
    first, n = runs[0], (_shard(runs[0]) or (0, 0))[1]
    what = f"{first.combination} phase {first.phase}"
    missing = sorted(set(range(1, n + 1)) - {(_shard(r) or (0, 0))[0] for r in runs})
    if missing:
        warn(f"{what}: shard{'s' if len(missing) > 1 else ''} {', '.join(f'{k}/{n}' for k in missing)} "
             f"not given; its column has the cases of the other {len(runs)}")
    where: dict[str, Path] = {}
    for base, run, _ in parts:
        for r in run.results:
            if r.id in where:
                raise ReportError(f"{what}: case {r.id} is in the shards of both {where[r.id]} and {base}: "
                                  "shards of one job set never overlap (were they split with different durations?)")
            where[r.id] = base
    versions: dict[str, str] = {}
    for run in runs:
        for impl, v in run.implementations.items():
            if versions.setdefault(impl, v) != v:
                warn(f"{what}: the shards ran different {impl} versions ({versions[impl]!r}, {v!r}); the column "
                     "names the first")
    return Run(combination=first.combination, impl=first.impl, phase=first.phase,
               created=min(r.created for r in runs), dmvpnkit=first.dmvpnkit,
               host=", ".join(dict.fromkeys(r.host for r in runs if r.host)),
               kernel=", ".join(dict.fromkeys(r.kernel for r in runs if r.kernel)), lab_kernel=first.lab_kernel,
               implementations=versions, topology=first.topology,
               options={**first.options, "shard": ", ".join(str(r.options["shard"]) for r in runs)},
               wall_time=max((r.wall_time for r in runs if r.wall_time is not None), default=None),
               labs={k: v for r in runs for k, v in r.labs.items()}, results=[c for r in runs for c in r.results])


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
