"""A Run from what the pytest plugin has at session end: its result records, the labs
it built, the evidence paths each case left."""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import timeline as tl
from .evidence import lab_info, relative
from .model import (
    EVIDENCE_KINDS,
    LEVELS,
    OUTCOMES,
    SEVERITY,
    CaseResult,
    Evidence,
    LabInfo,
    NodeInfo,
    ReportError,
    Run,
    combination_label,
    hostname,
    normalise_version,
    now_iso,
    parse_combination,
)


def case_id(nodeid: str, combination: str) -> str:
    """The row key: the node ID without the combination parameter the plugin may add
    (`test_x[hub=frr,spoke=nhrpd]` -> `test_x`), so runs of different mixes line up."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid
    base, _, params = nodeid[:-1].partition("[")
    if params == combination:
        return base
    for cut in (f"{combination}-", f"-{combination}"):
        if params.startswith(cut) or params.endswith(cut):
            rest = params[len(cut):] if params.startswith(cut) else params[:-len(cut)]
            return f"{base}[{rest}]"
    if f"-{combination}-" in params:
        return f"{base}[{params.replace(f'-{combination}-', '-', 1)}]"
    return nodeid


_REPEAT = re.compile(r"(?:^|-)repeat(\d+)(?=-|$)")


def repeat_of(nodeid: str) -> tuple[str, int | None]:
    """The case and the repetition a node ID names: `test_x[repeat2]` -> (`test_x`, 2),
    `test_x[a-repeat2]` -> (`test_x[a]`, 2); (nodeid, None) when it is no repetition."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return nodeid, None
    base, _, params = nodeid[:-1].partition("[")
    m = _REPEAT.search(params)
    if m is None:
        return nodeid, None
    rest = (params[:m.start()] + params[m.end():]).strip("-")
    return (f"{base}[{rest}]" if rest else base), int(m.group(1))


def fold_repeats(results: Iterable[CaseResult]) -> list[CaseResult]:
    """One result per case: repetitions (`--repeat`) become one result holding them in
    `repeats`, graded as they all were, or FLAKY when their grades differ; its message and
    evidence are the worst graded repetition's, so a failure is shown with its packets."""
    out: list[CaseResult | list[CaseResult]] = []
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        base, k = repeat_of(r.nodeid)
        if k is None:
            out.append(r)
        elif base not in groups:
            groups[base] = [r]
            out.append(groups[base])
        else:
            groups[base].append(r)
    return [x if isinstance(x, CaseResult) else _folded(x) for x in out]


def _folded(reps: list[CaseResult]) -> CaseResult:
    reps = sorted(reps, key=lambda r: repeat_of(r.nodeid)[1] or 0)
    grades = [r.outcome for r in reps]
    worst = max(reps, key=lambda r: SEVERITY[r.outcome])
    flaky = len(set(grades)) > 1
    message, headline = worst.message, worst.headline
    if flaky:
        each = ", ".join(f"repeat{repeat_of(r.nodeid)[1]} {r.outcome}" for r in reps)
        message = f"FLAKY: the same case was graded {each}; the worst ({worst.nodeid}):\n{worst.message}"
        headline = f"FLAKY: graded {each}; the worst: {worst.headline}"
    return CaseResult(id=repeat_of(worst.id)[0], nodeid=repeat_of(worst.nodeid)[0],
                      outcome="FLAKY" if flaky else grades[0], doc=worst.doc, section=worst.section,
                      level=worst.level, requirement=worst.requirement,
                      duration=round(sum(r.duration for r in reps), 3), headline=headline, message=message,
                      lab=worst.lab,
                      evidence=worst.evidence, measurements=dict(worst.measurements), repeats=reps)


def _lab(name: str, x: Any) -> LabInfo:
    d = x if isinstance(x, Mapping) else lab_info(x)
    try:
        return LabInfo(topology=str(d["topology"]),
                       nodes=[NodeInfo(str(n["name"]), str(n["role"]), n.get("nbma"), n.get("tunnel"))
                              for n in d.get("nodes", [])],
                       addresses={str(k): str(v) for k, v in d.get("addresses", {}).items()})
    except (KeyError, TypeError, AttributeError) as e:
        raise ReportError(f"labs[{name!r}]: expected lab_info() of a topology, or a topology: {e!r}") from None


def _paths(value: Any, report_dir: Path, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)) or not isinstance(value, Iterable):
        raise ReportError(f"{where}: expected a list of paths, got {type(value).__name__}")
    return [relative(p, report_dir) for p in value]


def record_to_result(i: int, r: Mapping[str, Any], report_dir: Path, combination: str,
                     labs: Mapping[str, LabInfo]) -> CaseResult:
    nodeid = r.get("nodeid") or r.get("case") or r.get("id")
    if not isinstance(nodeid, str) or not nodeid:
        raise ReportError(f"record {i}: case: missing (the pytest node ID)")
    where = f"record {i} ({nodeid})"
    outcome = r.get("outcome")
    if outcome not in OUTCOMES:
        raise ReportError(f"{where}: outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
    level = r.get("level")
    if level is not None and level not in LEVELS:
        raise ReportError(f"{where}: level: {level!r} is not one of {', '.join(LEVELS)}")
    for key in ("doc", "section", "lab"):
        if r.get(key) is not None and not isinstance(r[key], str):
            raise ReportError(f"{where}: {key}: expected a string, got {r[key]!r:.60}")
    try:
        duration = float(r.get("duration") or 0.0)
    except (TypeError, ValueError):
        raise ReportError(f"{where}: duration: expected seconds, got {r.get('duration')!r:.60}") from None
    message = r.get("message") or ""
    lab = r.get("lab")
    if lab is not None and lab not in labs:
        raise ReportError(f"{where}: lab: {lab!r} is not among the run's labs ({', '.join(labs) or 'none'})")

    ev = r.get("evidence") or {}
    if not isinstance(ev, Mapping):
        raise ReportError(f"{where}: evidence: expected an object, got {type(ev).__name__}")
    unknown = set(ev) - {*EVIDENCE_KINDS, "timeline"}
    if unknown:
        raise ReportError(f"{where}: evidence: unknown key(s) {', '.join(sorted(unknown))} "
                          f"(expected {', '.join((*EVIDENCE_KINDS, 'timeline'))})")
    raw_tl = ev.get("timeline")
    from_message = tl.parse(message)
    try:
        if raw_tl is None:
            entries = from_message
        elif isinstance(raw_tl, str):
            entries = tl.parse(raw_tl)
        else:
            entries = tl.from_dicts(raw_tl, where="timeline")
    except ValueError as e:
        raise ReportError(f"{where}: evidence.{e}") from None
    if entries is not from_message:      # the message may point at packets the timeline holds
        pointed = {(round(m.ts, 6), m.node) for m in from_message if m.mark}
        for entry in entries:
            if entry.mark is None and (round(entry.ts, 6), entry.node) in pointed:
                entry.mark = "offending"
    if lab is not None:
        tl.resolve(entries, labs[lab].addresses)

    return CaseResult(
        id=r.get("id") or case_id(nodeid, combination), nodeid=nodeid, outcome=outcome, doc=r.get("doc"),
        section=None if r.get("section") is None else str(r["section"]), level=level,
        requirement=inspect.cleandoc(str(r.get("requirement") or "")), duration=round(duration, 3),
        headline=str(r.get("headline") or ""), message=str(message), lab=lab,
        evidence=Evidence(pcaps=_paths(ev.get("pcaps"), report_dir, f"{where}: evidence.pcaps"),
                          logs=_paths(ev.get("logs"), report_dir, f"{where}: evidence.logs"),
                          configs=_paths(ev.get("configs"), report_dir, f"{where}: evidence.configs"),
                          timeline=entries),
        measurements={str(k): float(v) for k, v in (r.get("measurements") or {}).items()})


def from_records(records: Iterable[Mapping[str, Any]], *, report_dir: Path | str, phase: int | None,
                 impl: str | Mapping[str, str], implementations: Mapping[str, str] | None = None,
                 labs: Mapping[str, Any] | None = None, kernel: str | None = None, lab_kernel: str = "host",
                 topology: str | None = None, wall_time: float | None = None, created: str | None = None,
                 host: str | None = None, options: Mapping[str, Any] | None = None) -> Run:
    """Build a Run from the plugin's records (the schema-1 result dicts, plus optional
    `lab` and `evidence` keys). `labs` maps a lab name to `lab_info(topo)` or to the
    topology itself; `implementations` maps an implementation to its version string
    as the daemon prints it ("nhrpd version 8.4.4" is kept as "8.4.4")."""
    report_dir = Path(report_dir).resolve()
    try:
        roles = parse_combination(impl) if isinstance(impl, str) else dict(impl)
    except ValueError as e:
        raise ReportError(f"impl: {e}") from None
    combination = combination_label(roles)
    lab_map = {name: _lab(name, x) for name, x in (labs or {}).items()}
    results = fold_repeats(record_to_result(i, r, report_dir, combination, lab_map) for i, r in enumerate(records))
    return Run(combination=combination, impl=roles, phase=phase, created=created or now_iso(),
               host=hostname() if host is None else host, kernel=os.uname().release if kernel is None else kernel,
               lab_kernel=lab_kernel,
               implementations={k: normalise_version(v) for k, v in (implementations or {}).items()},
               topology=topology, options=dict(options or {}),
               wall_time=None if wall_time is None else round(float(wall_time), 1), labs=lab_map,
               results=results)
