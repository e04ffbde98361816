"""HTML from a Matrix: `index.html` (the interop matrix) and one page per cell under
`cases/<column>/<case>.html`, from the Jinja2 templates beside this module.

Everything is static and relative: the directory opens from disk, moves as a whole,
and fetches nothing (one stylesheet, `report.css`, copied beside index.html).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from . import timeline as tl
from .model import LEVELS, OUTCOMES, CaseResult, Matrix, Run, as_matrix, dump, now_iso

DOC_ORDER = ("rfc2332", "dmvpn-phase1", "dmvpn-phase2", "dmvpn-phase3", "dmvpn-ipsec")
UNGRADED = ("SKIP", "INFO")          # not in a level's denominator
OUTCOME_HELP = {
    "PASS": "the requirement holds",
    "NON-STRICT": "a SHOULD missed",
    "INFO": "informational, no verdict",
    "UNIMPLEMENTED": "the implementation lacks the feature",
    "FAIL": "the requirement is broken",
    "FLAKY": "repeated, graded differently between repetitions: a verdict that cannot be trusted",
    "ERROR": "the lab broke: no verdict",
    "SKIP": "needs a capability absent on this machine",
}
CASES_DIR = "cases"
MARKER = ".dmvpnkit-report"


def outcome_class(outcome: str) -> str:
    return "o-" + outcome.lower()


# ---------------------------------------------------------------- columns and rows

@dataclass
class Column:
    index: int
    id: str                     # directory name under cases/
    label: str                  # "frr · phase 3"
    detail: str                 # what tells apart runs of the same label
    run: Run
    levels: dict[str, tuple[int, int]] = field(default_factory=dict)    # level -> (passed, graded)
    counts: dict[str, int] = field(default_factory=dict)                # outcome -> n

    @property
    def score_line(self) -> str:
        parts = [f"{lv} {p}/{t}" for lv, (p, t) in self.levels.items() if t]
        phase = f"phase {self.run.phase}" if self.run.phase is not None else "all phases"
        return f"{phase}: {', '.join(parts) or 'no graded cases'}"

    @property
    def versions(self) -> str:
        impls = sorted(set(self.run.impl.values()))
        return ", ".join(f"{i} {self.run.implementations.get(i, '(version not recorded)')}" for i in impls)


def _slugify(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")[:limit] or "x"


def columns(m: Matrix) -> list[Column]:
    """One column per run; runs sharing combination and phase are told apart by lab
    kernel, then host, then date, then a number."""
    base = [(f"{r.combination} · phase {r.phase}" if r.phase is not None else r.combination)
            + (" · ipsec" if r.options.get("ipsec") else "") for r in m.runs]
    details = ["" for _ in m.runs]
    for label in set(base):
        same = [i for i, b in enumerate(base) if b == label]
        if len(same) < 2:
            continue
        for attr in ("lab_kernel", "host", "created"):
            values = [getattr(m.runs[i], attr) for i in same]
            if len(set(values)) < 2:
                continue
            for i in same:
                v = getattr(m.runs[i], attr)
                v = v[:16].replace("T", " ") if attr == "created" else v or f"unknown {attr}"
                details[i] = f"{details[i]}, {v}" if details[i] else v
            if len({details[i] for i in same}) == len(same):
                break
    seen: dict[str, int] = {}
    out = []
    for i, run in enumerate(m.runs):
        label = base[i] + (f" · {details[i]}" if details[i] else "")
        n = seen[label] = seen.get(label, 0) + 1
        if n > 1:
            label += f" #{n}"
        combo = run.combination.replace("=", "-").replace(",", "_") + ("-ipsec" if run.options.get("ipsec") else "")
        cid = _slugify(f"{combo}-p{run.phase}" if run.phase is not None else combo, 40)
        col = Column(index=i, id=f"{i + 1:02d}-{cid}", label=label, detail=details[i], run=run)
        col.counts = {o: 0 for o in OUTCOMES}
        graded = {lv: [0, 0] for lv in LEVELS}
        for r in run.results:
            col.counts[r.outcome] += 1
            if r.level in graded and r.outcome not in UNGRADED:
                graded[r.level][1] += 1
                graded[r.level][0] += r.outcome == "PASS"
        col.levels = {lv: (p, t) for lv, (p, t) in graded.items()}
        col.counts = {o: n for o, n in col.counts.items() if n}
        out.append(col)
    return out


@dataclass
class Cell:
    column: Column
    result: CaseResult
    href: str                   # relative to index.html

    @property
    def cls(self) -> str:
        return outcome_class(self.result.outcome)


@dataclass
class Row:
    id: str
    slug: str
    name: str
    module: str
    doc: str | None
    section: str | None
    level: str | None
    requirement: str
    cells: list[Cell | None]


@dataclass
class Group:
    doc: str | None
    section: str | None
    rows: list[Row]

    @property
    def key(self) -> str:
        return f"{self.doc or '(no spec)'} {self.section or ''}".strip()


def case_slug(case_id: str) -> str:
    readable = case_id.removeprefix("conformance/").replace(".py::", "--").replace("/", "-")
    return f"{_slugify(readable, 90)}-{hashlib.sha1(case_id.encode()).hexdigest()[:8]}"


def _natural(s: str | None) -> list[Any]:
    return [(0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", s or "") if t]


def _doc_key(doc: str | None) -> tuple[int, str]:
    return (DOC_ORDER.index(doc), "") if doc in DOC_ORDER else (len(DOC_ORDER) + (doc is None), doc or "")


def grid(m: Matrix, cols: list[Column]) -> list[Group]:
    """Rows (cases, in first-seen order) grouped by spec document and section."""
    rows: dict[str, Row] = {}
    for col in cols:
        for r in col.run.results:
            row = rows.get(r.id)
            if row is None:
                module, _, name = r.id.rpartition("::")
                row = rows[r.id] = Row(id=r.id, slug=case_slug(r.id), name=name or r.id, module=module,
                                       doc=r.doc, section=r.section, level=r.level, requirement=r.requirement,
                                       cells=[None] * len(cols))
            row.cells[col.index] = Cell(col, r, f"{CASES_DIR}/{col.id}/{row.slug}.html")
    groups: dict[tuple[str | None, str | None], Group] = {}
    for row in rows.values():
        groups.setdefault((row.doc, row.section), Group(row.doc, row.section, [])).rows.append(row)
    order = {k: i for i, k in enumerate(groups)}

    def key(g: Group) -> tuple[Any, ...]:
        # Numbered sections (5.2.3) in numeric order; named ones (traffic-indication)
        # in the suite's order, which follows the protocol's flow.
        numbered = bool(g.section) and g.section[0].isdigit()      # type: ignore[index]
        return (_doc_key(g.doc), (0, _natural(g.section)) if numbered else (1, order[(g.doc, g.section)]))
    return sorted(groups.values(), key=key)


# ---------------------------------------------------------------- certification text

def summary_text(m: Matrix, cols: list[Column] | None = None, generated: str | None = None) -> str:
    """Plain text for a certification record: per run, what ran where and how it scored."""
    cols = columns(m) if cols is None else cols
    ncases = len({r.id for run in m.runs for r in run.results})
    lines = ["DMVPN interoperability report (dmvpnkit)",
             f"generated {generated or m.generated or now_iso()} by dmvpnkit {m.dmvpnkit}; "
             f"{len(m.runs)} run(s), {ncases} case(s)", ""]
    for c in cols:
        run = c.run
        roles = ", ".join(f"{k}={v}" for k, v in run.impl.items())
        lines += [f"[{c.index + 1}] {c.label}",
                  f"    implementations: {c.versions} ({roles})",
                  f"    machine: {run.host or 'unknown host'}, kernel {run.kernel or '?'}, labs on the "
                  f"{run.lab_kernel} kernel",
                  f"    run: {run.created or '?'}, dmvpnkit {run.dmvpnkit}"
                  + (f", {run.wall_time:.1f} s" if run.wall_time is not None else "")
                  + f", topology {run.topology or 'per case'}"
                  + "".join(f", {k}={v}" for k, v in sorted(run.options.items())),
                  f"    result: {c.score_line}",
                  f"    outcomes: {', '.join(f'{o} {n}' for o, n in c.counts.items()) or 'none'}"]
        missed = [r for r in run.results if r.level == "MUST" and r.outcome not in ("PASS", *UNGRADED)]
        verdict = "every graded MUST holds" if not missed else f"{len(missed)} MUST requirement(s) not met:"
        lines.append(f"    verdict: {verdict}")
        for r in missed:
            lines.append(f"      {r.outcome:<13} {r.doc or '-'} {r.section or '-'}  {r.id}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- rendering

def _env() -> Any:
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader("dmvpnkit.reports", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["outcome_class"] = outcome_class
    env.filters["urlpath"] = lambda p: quote(p, safe="/")
    return env


@dataclass
class Link:
    path: str
    href: str
    exists: bool


class _Links:
    """Evidence links of a case page; files shared by many cases are looked up once."""

    def __init__(self, root: Path, up: str):
        self.root, self.up = f"{root}{os.sep}", up
        self.cache: dict[str, Link] = {}

    def __call__(self, paths: Iterable[str]) -> list[Link]:
        out = []
        for p in paths:
            link = self.cache.get(p)
            if link is None:
                link = self.cache[p] = Link(p, self.up + quote(p, safe="/"), os.path.exists(self.root + p))
            out.append(link)
        return out


def rerun_command(run: Run, r: CaseResult) -> str:
    argv = ["pytest", r.nodeid or r.id]
    argv += ["--phase", str(run.phase)] if run.phase is not None else []
    argv += ["--impl", run.combination]
    argv += ["--topology", run.topology] if run.topology else []
    argv += ["--ipsec"] if run.options.get("ipsec") else []
    argv += ["--frr-prefix", str(run.options["frr_prefix"])] if run.options.get("frr_prefix") else []
    argv += ["--backend", str(run.options["backend"])] if run.options.get("backend", "netns") != "netns" else []
    return shlex.join(argv)


def write(run_dir: Path | str, x: Run | Matrix) -> None:
    """Write results.json, index.html, report.css and a page per cell into `run_dir`.
    Evidence paths in `x` are relative to `run_dir`. Earlier case pages are replaced."""
    out = Path(run_dir)
    m = as_matrix(x)
    m.generated = m.generated or now_iso()
    cases = out / CASES_DIR
    if cases.exists() and not (cases / MARKER).exists():
        raise FileExistsError(f"{cases}: exists and was not written by dmvpnkit; not replacing it")
    out.mkdir(parents=True, exist_ok=True)
    dump(m, out / "results.json")
    render(out, m)


MUTATIONS = Path("mutations") / "matrix.json"      # where `dmvpnkit mutations` writes by default


def mutation_score(out: Path) -> dict[str, Any] | None:
    """The score of `dmvpnkit mutations` run beside this report (`reports/mutations/`),
    with when and from which commit it was measured; None without a (readable) matrix."""
    try:
        text = (out / MUTATIONS).read_text()
    except OSError:
        return None
    try:
        doc = json.loads(text)
        sc = doc["score"]
        return {"cases": int(sc["cases"]), "killed": int(sc["killed"]),
                "killed_targeted": int(sc["killed_targeted"]),
                "without_targeted_kill": [str(c) for c in sc["without_targeted_kill"]],
                "switches": len(doc["caught"]), "phase": doc.get("phase"), "ipsec": bool(doc.get("ipsec")),
                "commit": str(doc.get("commit", ""))[:12], "created": str(doc.get("created", "")),
                "path": MUTATIONS.as_posix()}
    except (ValueError, KeyError, TypeError) as e:     # shown, not hidden: the score is evidence
        return {"error": f"{MUTATIONS.as_posix()} is not a mutation matrix ({type(e).__name__}: {e})"}


def render(out: Path, m: Matrix) -> None:
    env = _env()
    cols = columns(m)
    groups = grid(m, cols)
    rows = [row for g in groups for row in g.rows]
    css = resources.files(__package__).joinpath("static", "report.css").read_text()
    (out / "report.css").write_text(css)

    # Case pages into a fresh directory, swapped in whole.
    tmp = out / f".{CASES_DIR}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / MARKER).write_text("written by dmvpnkit.reports: replaced on every render\n")
    page = env.get_template("case.html.j2")
    up = "../../"
    links = _Links(out, up)
    for col in cols:
        (tmp / col.id).mkdir()
    for row in rows:
        siblings = [c for c in row.cells if c is not None]
        for cell in siblings:
            r, run = cell.result, cell.column.run
            lab = run.labs.get(r.lab) if r.lab else None
            ev = r.evidence
            html = page.render(
                row=row, cell=cell, col=cell.column, run=run, r=r, lab=lab, up=up,
                ladder=tl.ladder(ev.timeline, lab) if ev.timeline else None,
                pcaps=links(ev.pcaps), logs=links(ev.logs), configs=links(ev.configs),
                repeats=[{"result": x, "pcaps": links(x.evidence.pcaps), "logs": links(x.evidence.logs)}
                         for x in r.repeats],
                siblings=siblings, rerun=rerun_command(run, r),
                help=OUTCOME_HELP, tl=tl)
            with open(f"{tmp}{os.sep}{cell.href[len(CASES_DIR) + 1:]}", "w") as f:
                f.write(html)
    old = out / CASES_DIR
    if old.exists():
        trash = out / f".{CASES_DIR}.{os.getpid()}.old"
        os.replace(old, trash)
        os.replace(tmp, old)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, old)

    phases = sorted({c.run.phase for c in cols if c.run.phase is not None})
    levels_present = [lv for lv in LEVELS if any(row.level == lv for row in rows)]
    outcomes_present = [o for o in OUTCOMES if any(o in c.counts for c in cols)]
    index = env.get_template("index.html.j2").render(
        m=m, cols=cols, groups=groups, ncases=len(rows), phases=phases, levels=levels_present,
        outcomes=outcomes_present, all_outcomes=OUTCOMES, help=OUTCOME_HELP,
        summary=summary_text(m, cols), generated=m.generated, mutations=mutation_score(out))
    tmpi = out / f".index.html.{os.getpid()}.tmp"
    tmpi.write_text(index)
    os.replace(tmpi, out / "index.html")
