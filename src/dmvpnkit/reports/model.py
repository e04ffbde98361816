"""The results model: one `Run` per pytest session (one implementation combination),
a `Matrix` of runs for the interop report, and their JSON form (`results.json`).

Schema 3 (documented field by field in `results.schema.json`) always holds a list of
runs, so a single session and a merge of many read the same way:

    {"schema": 3, "generated": ..., "dmvpnkit": ..., "runs": [{...run..., "results": [...]}]}

A case run N times (`--repeat N`) is one result whose `repeats` hold each repetition;
its outcome is FLAKY when their grades differ. Schema 2 is schema 3 without FLAKY and
`repeats`; schema 1, written by the first plugin, is one flat run; `load_matrix` reads both.
Paths in evidence are POSIX paths relative to the directory holding results.json.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import __version__

SCHEMA = 3
OUTCOMES = ("PASS", "NON-STRICT", "INFO", "UNIMPLEMENTED", "FAIL", "FLAKY", "ERROR", "SKIP")
# How bad a grade is: a case's report phases and its repetitions keep the worst.
SEVERITY = {"PASS": 0, "SKIP": 1, "UNIMPLEMENTED": 1, "INFO": 2, "NON-STRICT": 2, "FAIL": 3, "FLAKY": 3, "ERROR": 4}
LEVELS = ("MUST", "SHOULD", "MAY")
MARKS = ("offending", "note")
DIRECTIONS = ("out", "in")
ROLES = ("hub", "spoke")
EVIDENCE_KINDS = ("pcaps", "logs", "configs")


class ReportError(ValueError):
    """Bad results input; the message names the file and the key."""


# ---------------------------------------------------------------- the model

@dataclass(slots=True)
class TimelineEntry:
    """One captured packet: `<ts> <node> <src>><dst> <summary>` with names resolved."""
    ts: float
    node: str                       # where it was captured
    src: str                        # outer (NBMA) addresses
    dst: str
    summary: str
    mark: str | None = None         # "offending": the packet the verdict is about
    src_node: str | None = None     # node owning `src`, where the lab map knows it
    dst_node: str | None = None
    direction: str | None = None    # "out": sent by `node`, "in": received, None: unknown
    iface: str | None = None        # capture interface on `node`

    def to_dict(self) -> dict[str, Any]:
        return {"ts": self.ts, "node": self.node, "src": self.src, "dst": self.dst,
                "summary": self.summary, "mark": self.mark, "src_node": self.src_node,
                "dst_node": self.dst_node, "direction": self.direction, "iface": self.iface}


@dataclass(slots=True)
class Evidence:
    pcaps: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    configs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"pcaps": list(self.pcaps), "timeline": [t.to_dict() for t in self.timeline],
                "logs": list(self.logs), "configs": list(self.configs)}

    def files(self) -> Iterable[str]:
        yield from self.pcaps
        yield from self.logs
        yield from self.configs


@dataclass(slots=True)
class CaseResult:
    id: str                         # stable case ID: the row of the matrix
    outcome: str
    doc: str | None = None
    section: str | None = None
    level: str | None = None
    requirement: str = ""
    duration: float = 0.0
    headline: str = ""              # the failure in one line: "expected: ...; observed: ..."
    message: str = ""
    nodeid: str = ""                # pytest node ID, to re-run the case
    lab: str | None = None          # key into Run.labs
    evidence: Evidence = field(default_factory=Evidence)
    measurements: dict[str, float] = field(default_factory=dict)   # numbers the case measured
    repeats: list[CaseResult] = field(default_factory=list)       # --repeat: each repetition, in order

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "nodeid": self.nodeid or self.id, "doc": self.doc, "section": self.section,
             "level": self.level, "requirement": self.requirement, "outcome": self.outcome,
             "duration": self.duration, "headline": self.headline, "message": self.message, "lab": self.lab,
             "evidence": self.evidence.to_dict(), "measurements": dict(self.measurements)}
        if self.repeats:
            d["repeats"] = [r.to_dict() for r in self.repeats]
        return d


@dataclass(slots=True)
class NodeInfo:
    name: str
    role: str
    nbma: str | None = None
    tunnel: str | None = None


@dataclass(slots=True)
class LabInfo:
    """What a ladder diagram needs of a lab: its nodes in order, and who owns an address."""
    topology: str
    nodes: list[NodeInfo] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"topology": self.topology,
                "nodes": [{"name": n.name, "role": n.role, "nbma": n.nbma, "tunnel": n.tunnel}
                          for n in self.nodes],
                "addresses": dict(self.addresses)}


@dataclass(slots=True)
class Run:
    """One session: one implementation combination, one phase, one machine."""
    combination: str                # "frr" or "hub=frr,spoke=nhrpd"
    impl: dict[str, str]            # role -> implementation
    phase: int | None = None
    created: str = ""               # ISO 8601, UTC
    dmvpnkit: str = __version__
    host: str = ""
    kernel: str = ""
    lab_kernel: str = "host"
    implementations: dict[str, str] = field(default_factory=dict)   # implementation -> version
    topology: str | None = None     # --topology, or None: each case's own
    options: dict[str, Any] = field(default_factory=dict)           # other session options
    wall_time: float | None = None
    labs: dict[str, LabInfo] = field(default_factory=dict)
    results: list[CaseResult] = field(default_factory=list)

    def meta_dict(self) -> dict[str, Any]:
        return {"created": self.created, "dmvpnkit": self.dmvpnkit, "host": self.host,
                "kernel": self.kernel, "lab_kernel": self.lab_kernel, "phase": self.phase,
                "topology": self.topology, "impl": dict(self.impl), "combination": self.combination,
                "implementations": dict(self.implementations), "options": dict(self.options),
                "wall_time": self.wall_time}

    def to_dict(self) -> dict[str, Any]:
        return {**self.meta_dict(), "labs": {k: v.to_dict() for k, v in self.labs.items()},
                "results": [r.to_dict() for r in self.results]}


@dataclass(slots=True)
class Matrix:
    """Runs side by side: the columns of the interop report."""
    runs: list[Run] = field(default_factory=list)
    generated: str = ""
    dmvpnkit: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "generated": self.generated or now_iso(), "dmvpnkit": self.dmvpnkit,
                "runs": [r.to_dict() for r in self.runs]}


def as_matrix(x: Run | Matrix) -> Matrix:
    return x if isinstance(x, Matrix) else Matrix(runs=[x])


# ---------------------------------------------------------------- helpers

def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def hostname() -> str:
    return socket.gethostname()


def parse_combination(text: str) -> dict[str, str]:
    """`frr` -> {hub: frr, spoke: frr}; `hub=frr,spoke=nhrpd` -> per role. No registry
    check here: a report may name implementations this machine does not have."""
    roles: dict[str, str] = {}
    default = ""
    for part in (p.strip() for p in text.split(",") if p.strip()):
        role, eq, impl = part.partition("=")
        if eq:
            roles[role.strip()] = impl.strip()
        else:
            default = role
    if not default and not roles:
        raise ValueError(f"implementation {text!r}: empty")
    out = {r: roles.get(r, default) for r in ROLES}
    out.update(roles)
    missing = [r for r, i in out.items() if not i]
    if missing:
        raise ValueError(f"implementation {text!r}: no implementation for {', '.join(missing)}")
    return out


def combination_label(impl: Mapping[str, str]) -> str:
    if len(set(impl.values())) == 1:
        return next(iter(impl.values()))
    order = [r for r in ROLES if r in impl] + sorted(r for r in impl if r not in ROLES)
    return ",".join(f"{r}={impl[r]}" for r in order)


_VERSION = re.compile(r"\d+(?:\.\d+)+[\w.+~-]*")


def normalise_version(text: str) -> str:
    """`nhrpd version 8.4.4` -> `8.4.4`; anything without a dotted number is kept as is."""
    m = _VERSION.search(text or "")
    return m.group(0) if m else (text or "").strip() or "unknown"


# ---------------------------------------------------------------- reading

def _read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file (a report directory holds results.json)") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ReportError(f"{path}: not valid JSON: {e}") from None


def results_path(path: Path | str) -> Path:
    p = Path(path)
    return p / "results.json" if p.is_dir() or p.suffix != ".json" else p


def load_matrix(path: Path | str, *, validate_schema: bool = True) -> Matrix:
    """Read results.json (schema 1, 2 or 3; or a directory holding one) as a Matrix."""
    p = results_path(path)
    doc = _read_json(p)
    if not isinstance(doc, dict):
        raise ReportError(f"{p}: expected a JSON object at the top, got {_kind(doc)}")
    version = doc.get("schema")
    if version == 1:
        doc = upgrade_v1(doc, p)
    elif version == 2:              # a subset of 3
        doc = {**doc, "schema": SCHEMA}
    elif version != SCHEMA:
        raise ReportError(f"{p}: schema: {version!r} is not a results schema this dmvpnkit reads (1, 2 or 3)")
    if validate_schema:
        from .schema import validate
        validate(doc, source=str(p))
    return matrix_from_dict(doc)


def load(path: Path | str) -> Run:
    """Read the one run of a results.json (schema 1, 2 or 3). A merged file holds several:
    read those with `load_matrix`."""
    p = results_path(path)
    m = load_matrix(p)
    if len(m.runs) != 1:
        raise ReportError(f"{p}: runs: holds {len(m.runs)} runs (a merged matrix); read it with load_matrix()")
    return m.runs[0]


def _kind(x: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(x), "a number")


def _v1_get(r: Mapping[str, Any], key: str, types: tuple[type, ...], where: str, p: Path,
            default: Any = None, required: bool = False) -> Any:
    if key not in r or (r[key] is None and not required):
        if required:
            raise ReportError(f"{p}: {where}.{key}: missing")
        return default
    v = r[key]
    if not isinstance(v, types) or isinstance(v, bool) and bool not in types:
        want = " or ".join(t.__name__ for t in types)
        raise ReportError(f"{p}: {where}.{key}: expected {want}, got {_kind(v)} {v!r:.60}")
    return v


def upgrade_v1(doc: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """Schema 1 (one flat run, the timeline only inside failure messages) -> schema 2.
    Pcaps of cases that used the `capture` fixture are found again on disk."""
    from .evidence import capture_index, discover_v1
    from .timeline import parse
    p = path
    results = doc.get("results")
    if not isinstance(results, list):
        raise ReportError(f"{p}: results: expected an array of case results, got {_kind(results)}")
    impl_text = _v1_get(doc, "impl", (str,), "$", p, default="unknown")
    try:
        impl = parse_combination(impl_text)
    except ValueError as e:
        raise ReportError(f"{p}: impl: {e}") from None
    try:
        created = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    except OSError:
        created = ""
    index = capture_index(path.parent)
    out_results = []
    for i, r in enumerate(results):
        where = f"results[{i}]"
        if not isinstance(r, dict):
            raise ReportError(f"{p}: {where}: expected an object, got {_kind(r)}")
        case = _v1_get(r, "case", (str,), where, p, required=True)
        outcome = _v1_get(r, "outcome", (str,), where, p, required=True)
        if outcome not in OUTCOMES:
            raise ReportError(f"{p}: {where}.outcome: {outcome!r} is not one of {', '.join(OUTCOMES)}")
        level = _v1_get(r, "level", (str,), where, p)
        if level is not None and level not in LEVELS:
            raise ReportError(f"{p}: {where}.level: {level!r} is not one of {', '.join(LEVELS)}")
        message = _v1_get(r, "message", (str,), where, p, default="")
        pcaps, logs, configs = discover_v1(path.parent, case, index)
        out_results.append({
            "id": case, "nodeid": case, "doc": _v1_get(r, "doc", (str,), where, p),
            "section": _v1_get(r, "section", (str,), where, p), "level": level,
            "requirement": inspect.cleandoc(_v1_get(r, "requirement", (str,), where, p, default="")),
            "outcome": outcome, "duration": float(_v1_get(r, "duration", (int, float), where, p, default=0.0)),
            "message": message, "lab": None,
            "evidence": {"pcaps": pcaps, "logs": logs, "configs": configs,
                         "timeline": [t.to_dict() for t in parse(message)]}})
    phase = _v1_get(doc, "phase", (int,), "$", p)
    wall = _v1_get(doc, "wall_time", (int, float), "$", p)
    run = {"created": created, "dmvpnkit": _v1_get(doc, "dmvpnkit", (str,), "$", p, default="unknown"),
           "host": "", "kernel": _v1_get(doc, "kernel", (str,), "$", p, default=""),
           "lab_kernel": _v1_get(doc, "lab_kernel", (str,), "$", p, default="host"),
           "phase": phase, "topology": None, "impl": impl, "combination": combination_label(impl),
           "implementations": {}, "options": {}, "wall_time": None if wall is None else float(wall),
           "labs": {}, "results": out_results}
    return {"schema": SCHEMA, "generated": created, "dmvpnkit": run["dmvpnkit"], "runs": [run]}


# Building from a validated document: the schema has checked types and enums already.

def matrix_from_dict(doc: Mapping[str, Any]) -> Matrix:
    return Matrix(runs=[run_from_dict(r) for r in doc["runs"]], generated=doc.get("generated", ""),
                  dmvpnkit=doc.get("dmvpnkit", __version__))


def run_from_dict(d: Mapping[str, Any]) -> Run:
    labs = {name: LabInfo(topology=lab["topology"],
                          nodes=[NodeInfo(n["name"], n["role"], n.get("nbma"), n.get("tunnel"))
                                 for n in lab.get("nodes", [])],
                          addresses=dict(lab.get("addresses", {})))
            for name, lab in d.get("labs", {}).items()}
    return Run(combination=d["combination"], impl=dict(d["impl"]), phase=d.get("phase"),
               created=d.get("created", ""), dmvpnkit=d.get("dmvpnkit", ""), host=d.get("host", ""),
               kernel=d.get("kernel", ""), lab_kernel=d.get("lab_kernel", "host"),
               implementations=dict(d.get("implementations", {})), topology=d.get("topology"),
               options=dict(d.get("options", {})), wall_time=d.get("wall_time"), labs=labs,
               results=[result_from_dict(r) for r in d["results"]])


def result_from_dict(d: Mapping[str, Any]) -> CaseResult:
    ev = d.get("evidence") or {}
    return CaseResult(
        id=d["id"], outcome=d["outcome"], doc=d.get("doc"), section=d.get("section"), level=d.get("level"),
        requirement=d.get("requirement", ""), duration=float(d.get("duration", 0.0)),
        headline=d.get("headline", ""), message=d.get("message", ""), nodeid=d.get("nodeid", d["id"]),
        lab=d.get("lab"),
        measurements=dict(d.get("measurements", {})), repeats=[result_from_dict(r) for r in d.get("repeats", [])],
        evidence=Evidence(pcaps=list(ev.get("pcaps", [])), logs=list(ev.get("logs", [])),
                          configs=list(ev.get("configs", [])),
                          timeline=[TimelineEntry(float(t["ts"]), t["node"], t["src"], t["dst"], t["summary"],
                                                  t.get("mark"), t.get("src_node"), t.get("dst_node"),
                                                  t.get("direction"), t.get("iface"))
                                    for t in ev.get("timeline", [])]))


# ---------------------------------------------------------------- writing

def dumps(x: Run | Matrix) -> str:
    """results.json text: one line per case result (readable, greppable, and written
    by the C JSON encoder: `indent=` would switch to the slow pure-Python one)."""
    m = as_matrix(x)
    enc = json.JSONEncoder(ensure_ascii=False).encode
    runs = []
    for run in m.runs:
        head = enc({**run.meta_dict(), "labs": {k: v.to_dict() for k, v in run.labs.items()}})
        results = ",\n  ".join(enc(r.to_dict()) for r in run.results)
        runs.append(f'{head[:-1]},\n "results": [\n  {results}\n ]}}' if results else f'{head[:-1]}, "results": []}}')
    top = enc({"schema": SCHEMA, "generated": m.generated or now_iso(), "dmvpnkit": m.dmvpnkit})
    sep = ",\n"
    return f'{top[:-1]}, "runs": [\n{sep.join(runs)}\n]}}\n' if runs else f'{top[:-1]}, "runs": []}}\n'


def dump(x: Run | Matrix, path: Path) -> None:
    """Write results.json atomically (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(dumps(x))
    os.replace(tmp, path)
