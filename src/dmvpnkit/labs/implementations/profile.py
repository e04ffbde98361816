"""Implementation profiles: an implementation under test described in one YAML file,
no Python (`--impl PATH`).

    name: myrouter
    variables: {prefix: /opt/myrouter}        # defaults; the command line may override
    version: ["{{ var.prefix }}/bin/nhrpd", "--version"]    # run here; its first line
    files:                                    # per node, into nodes/<node>/
      nhrp.conf: myrouter/nhrp.conf.j2        #   one template (relative to this file),
      # nhrp.conf: {hub: hub.j2, spoke: spoke.j2}  or one per role
    start:                                    # steps on the node, in order
      - sh: "{{ var.prefix }}/bin/nhrpd -d -f {{ node_dir }}/nhrp.conf"
      - wait_for: "{{ run_dir }}/nhrpd.sock"  #   polled, `timeout` s (default 20)
    stop:
      - kill: "{{ run_dir }}/*.pid"           #   pid files: SIGTERM, then SIGKILL
    reload:                                   # optional: apply nodes/<node>/ to running daemons
      - sh: "{{ var.prefix }}/bin/nhrpctl -f {{ node_dir }}/nhrp.conf"
    daemons: {nhrpd: {stop: [...], start: [...]}}   # for the restart faults
    state:                                    # optional normalised views
      cache:
        run: ["myrouter-cli", "show", "nhrp", "json"]
        json: table                           #   dotted path to the entries
        fields: {protocol: proto, nbma: nbma, type: type}   # view field: source key (a|b: either)
      # or  regex: '^(?P<protocol>\\S+)\\s+(?P<nbma>\\S+)'  one entry per matching line
    unimplemented: {multicast: why}
    ipsec_couplings: [trap]

Templates and commands are Jinja2 with `v` (the node's DmvpnView), `var` (the
variables), `node_dir`, `run_dir`, `id` (the node's machine-unique id). `spawn:` starts
a process that does not daemonise (kept, killed at stop). The file is checked whole
before any lab starts: every problem at once, each with its key and a hint.
"""

from __future__ import annotations

import difflib
import glob
import json
import re
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import jinja2
import yaml

from ..procs import kill_all, pids_from_files
from ..spec import Issue, IssuesError
from ..views import CacheEntry, NhsEntry, Shortcut
from . import COUPLINGS, VIEWS, ImplementationError, Setup, Unimplemented

KEYS = ("name", "description", "variables", "version", "files", "start", "stop", "reload", "daemons", "state",
        "unimplemented", "ipsec_couplings")
STEP_KINDS = ("sh", "spawn", "wait_for", "kill")
ROLES = ("hub", "spoke")
RECORDS = {"cache": CacheEntry, "nhs": NhsEntry, "shortcuts": Shortcut}
WAIT_TIMEOUT = 20.0
_env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class ProfileError(IssuesError, ImplementationError):
    what = "implementation profile"


@dataclass(frozen=True)
class Step:
    kind: str                   # one of STEP_KINDS
    text: jinja2.Template
    timeout: float = WAIT_TIMEOUT


@dataclass(frozen=True)
class StateQuery:
    argv: tuple[jinja2.Template, ...]
    json_path: tuple[str, ...] | None
    regex: re.Pattern[str] | None
    fields: Mapping[str, str]   # view field -> source key(s) `a|b`


@dataclass(frozen=True)
class Profile:
    source: Path
    name: str
    variables: Mapping[str, str]
    version: tuple[jinja2.Template, ...]
    files: Mapping[str, Mapping[str, jinja2.Template]]      # file name -> role -> template
    start: tuple[Step, ...]
    stop: tuple[Step, ...]
    reload: tuple[Step, ...]                                 # empty: the profile cannot reload
    daemons: Mapping[str, Mapping[str, tuple[Step, ...]]]   # daemon -> start|stop -> steps
    state: Mapping[str, StateQuery]
    unimplemented: Mapping[str, str]
    ipsec_couplings: tuple[str, ...]


def _did_you_mean(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {', '.join(choices)}"


class _Reader:
    """Reads one profile document, collecting every problem instead of stopping at one."""

    def __init__(self, source: Path):
        self.source = source
        self.issues: list[Issue] = []

    def err(self, key: str, message: str, hint: str = "") -> None:
        self.issues.append(Issue(key, message, hint))

    def template(self, key: str, text: Any) -> jinja2.Template:
        if not isinstance(text, (str, int, float)):
            self.err(key, f"expected a string, got {type(text).__name__}")
            return _env.from_string("")
        try:
            return _env.from_string(str(text))
        except jinja2.TemplateSyntaxError as e:
            self.err(key, f"template error: {e.message} (line {e.lineno})", "Jinja2 syntax: {{ v.name }}, {% if %}")
            return _env.from_string("")

    def argv(self, key: str, value: Any) -> tuple[jinja2.Template, ...]:
        if value is None:
            self.err(key, "missing", "a command, e.g. [mydaemon, --version]")
            return ()
        if isinstance(value, str):
            value = shlex.split(value)
        if not isinstance(value, list) or not value:
            self.err(key, "expected a command: a list of arguments or one string")
            return ()
        return tuple(self.template(f"{key}[{i}]", a) for i, a in enumerate(value))

    def steps(self, key: str, value: Any, required: bool = False) -> tuple[Step, ...]:
        if value is None:
            if required:
                self.err(key, "missing", "the steps that start every node's daemons, e.g. - sh: mydaemon -d")
            return ()
        if not isinstance(value, list):
            self.err(key, "expected a list of steps")
            return ()
        out = []
        for i, item in enumerate(value):
            k = f"{key}[{i}]"
            if not isinstance(item, dict) or len(set(item) & set(STEP_KINDS)) != 1:
                self.err(k, f"a step is a mapping with one of {', '.join(STEP_KINDS)}", "- sh: 'cmd args'")
                continue
            kind = next(s for s in STEP_KINDS if s in item)
            for extra in set(item) - {kind, "timeout"}:
                self.err(f"{k}.{extra}", "unknown key", _did_you_mean(str(extra), (kind, "timeout")))
            timeout = item.get("timeout", WAIT_TIMEOUT)
            if not isinstance(timeout, (int, float)) or timeout <= 0:
                self.err(f"{k}.timeout", f"expected seconds > 0, got {timeout!r}")
                timeout = WAIT_TIMEOUT
            out.append(Step(kind, self.template(f"{k}.{kind}", item[kind]), float(timeout)))
        return tuple(out)

    def files(self, value: Any) -> dict[str, dict[str, jinja2.Template]]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err("files", "expected a mapping of file name to template path")
            return {}
        out: dict[str, dict[str, jinja2.Template]] = {}
        read: dict[Path, jinja2.Template | None] = {}
        for fname, spec in value.items():
            by_role = spec if isinstance(spec, dict) else {r: spec for r in ROLES}
            for role in by_role:
                if role not in ROLES:
                    self.err(f"files.{fname}.{role}", "unknown role", _did_you_mean(str(role), ROLES))
            for role in ROLES:
                key = f"files.{fname}" + (f".{role}" if isinstance(spec, dict) else "")
                if role not in by_role:
                    self.err(key, "no template for this role", "files: {name: {hub: a.j2, spoke: b.j2}} or one path")
                    continue
                path = self.source.parent / str(by_role[role])
                if path not in read:            # one file for both roles: read (and report) once
                    try:
                        read[path] = self.template(f"{key} ({path.name})", path.read_text())
                    except OSError as e:
                        self.err(key, f"{path}: {e.strerror}", "template paths are relative to the profile")
                        read[path] = None
                template = read[path]
                if template is not None:
                    out.setdefault(str(fname), {})[role] = template
        return out

    def state(self, value: Any) -> dict[str, StateQuery]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err("state", f"expected a mapping of view ({', '.join(VIEWS)}) to its query")
            return {}
        out = {}
        for view, q in value.items():
            key = f"state.{view}"
            if view not in VIEWS:
                self.err(key, "unknown view", _did_you_mean(str(view), VIEWS))
                continue
            if not isinstance(q, dict):
                self.err(key, "expected a mapping with run, json or regex, and fields")
                continue
            for extra in set(q) - {"run", "json", "regex", "fields"}:
                self.err(f"{key}.{extra}", "unknown key", _did_you_mean(str(extra), ("run", "json", "regex", "fields")))
            if ("json" in q) == ("regex" in q):
                self.err(key, "give exactly one of json (a dotted path) or regex (named groups per line)")
            regex = None
            if "regex" in q:
                try:
                    regex = re.compile(str(q["regex"]))
                except re.error as e:
                    self.err(f"{key}.regex", f"not a regular expression: {e}")
            names = [f.name for f in fields(RECORDS[view])]
            mapping = q.get("fields", {} if regex is not None else None)
            if not isinstance(mapping, dict):
                self.err(f"{key}.fields", f"expected a mapping of {view} field to source key", f"fields: {names}")
                mapping = {}
            for f in mapping:
                if f not in names:
                    self.err(f"{key}.fields.{f}", f"not a field of the {view} view", _did_you_mean(str(f), tuple(names)))
            path = tuple(str(q["json"]).split(".")) if q.get("json") not in (None, "", ".") else ()
            out[view] = StateQuery(self.argv(f"{key}.run", q.get("run")), path if "json" in q else None, regex,
                                   {str(k): str(v) for k, v in mapping.items()})
        return out

    def profile(self, doc: Any) -> Profile:
        if not isinstance(doc, dict):
            raise ProfileError(str(self.source), [Issue("(top)", "expected a mapping")])
        for key in doc:
            if key not in KEYS:
                self.err(str(key), "unknown key", _did_you_mean(str(key), KEYS))
        name = doc.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            self.err("name", f"expected a name of [a-z0-9_-], got {name!r}", "name: myrouter")
        variables = doc.get("variables") or {}
        if not isinstance(variables, dict):
            self.err("variables", "expected a mapping of name to value")
            variables = {}
        daemons: dict[str, dict[str, tuple[Step, ...]]] = {}
        for d, both in (doc.get("daemons") or {}).items():
            if not isinstance(both, dict) or set(both) != {"start", "stop"}:
                self.err(f"daemons.{d}", "expected start: and stop: steps")
                continue
            daemons[str(d)] = {k: self.steps(f"daemons.{d}.{k}", both[k], True) for k in ("start", "stop")}
        unimpl = doc.get("unimplemented") or {}
        if not isinstance(unimpl, dict):
            self.err("unimplemented", "expected a mapping of feature to reason")
            unimpl = {}
        couplings = doc.get("ipsec_couplings") or []
        for c in couplings:
            if c not in COUPLINGS:
                self.err("ipsec_couplings", f"unknown coupling {c!r}", _did_you_mean(str(c), COUPLINGS))
        p = Profile(source=self.source, name=str(name), variables={str(k): str(v) for k, v in variables.items()},
                    version=self.argv("version", doc.get("version")), files=self.files(doc.get("files")),
                    start=self.steps("start", doc.get("start"), required=True), stop=self.steps("stop", doc.get("stop")),
                    reload=self.steps("reload", doc.get("reload")),
                    daemons=daemons, state=self.state(doc.get("state")),
                    unimplemented={str(k): str(v) for k, v in unimpl.items()}, ipsec_couplings=tuple(couplings))
        if self.issues:
            raise ProfileError(str(self.source), self.issues)
        return p


def load(path: str | Path) -> Profile:
    source = Path(path)
    try:
        doc = yaml.safe_load(source.read_text())
    except OSError as e:
        raise ProfileError(str(source), [Issue("(file)", e.strerror or str(e))]) from None
    except yaml.YAMLError as e:
        raise ProfileError(str(source), [Issue("(yaml)", str(e))]) from None
    return _Reader(source).profile(doc)


def _dig(doc: Any, path: tuple[str, ...], where: str) -> list[Any]:
    for part in path:
        if not isinstance(doc, dict) or part not in doc:
            raise ImplementationError(f"{where}: no {'.'.join(path)!r} in the output (at {part!r})")
        doc = doc[part]
    return doc if isinstance(doc, list) else [doc]


def _pick(entry: Mapping[str, Any], source: str) -> Any:
    for key in source.split("|"):
        if key in entry:
            return entry[key]
    return None


def parse_state(q: StateQuery, view: str, out: str, where: str) -> list[Any]:
    """A state command's output -> the view's records, by the profile's mapping."""
    if q.json_path is not None:
        start = min((i for i in (out.find("{"), out.find("[")) if i >= 0), default=-1)
        try:
            doc = json.loads(out[start:]) if start >= 0 else {}
        except ValueError as e:
            raise ImplementationError(f"{where}: output is not JSON ({e}): {out[:200]!r}") from None
        entries = _dig(doc, q.json_path, where) if q.json_path else (doc if isinstance(doc, list) else [doc])
    else:
        assert q.regex is not None
        entries = [m.groupdict() for line in out.splitlines() if (m := q.regex.search(line))]
    cls = RECORDS[view]
    names = [f.name for f in fields(cls)]
    records = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ImplementationError(f"{where}: an entry is {type(entry).__name__}, not a mapping: {entry!r}")
        row = {n: _pick(entry, q.fields.get(n, n)) for n in names}
        records.append(cls(**{n: (bool(v) if n == "used" else ("" if v is None else str(v))) for n, v in row.items()}))
    return records


class ProfileImplementation:
    """An Implementation driven by a Profile; `for_profile` makes the class."""
    profile: ClassVar[Profile]
    name: ClassVar[str]
    unimplemented: ClassVar[Mapping[str, str]]
    views: ClassVar[tuple[str, ...]]
    ipsec_couplings: ClassVar[tuple[str, ...]]

    def __init__(self, setup: Setup):
        self.setup = setup
        self.nodes = list(setup.nodes)
        self.vars = {**self.profile.variables, **setup.variables}
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}

    @classmethod
    def version(cls, variables: Mapping[str, str]) -> str:
        ctx = {"var": {**cls.profile.variables, **variables}}
        argv = [t.render(ctx) for t in cls.profile.version]
        if not argv:
            return "unknown"
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        except OSError as e:
            raise ImplementationError(f"{cls.profile.source}: version: {argv[0]}: {e.strerror}") from None
        return out.strip().splitlines()[0] if out.strip() else "unknown"

    def _ctx(self, node: str) -> dict[str, Any]:
        n = self.setup.backend.node(node)
        return {"v": self.setup.view(node), "var": self.vars, "node_dir": str(self.setup.lab_dir / "nodes" / node),
                "run_dir": str(n.run_dir), "id": n.id}

    def write_configs(self) -> None:
        for node in self.nodes:
            d = self.setup.lab_dir / "nodes" / node
            d.mkdir(parents=True, exist_ok=True)
            role = self.setup.backend.topo.nodes[node].role
            for fname, by_role in self.profile.files.items():
                (d / fname).write_text(by_role[role].render(self._ctx(node)))

    def _steps(self, node: str, steps: tuple[Step, ...], what: str) -> None:
        n = self.setup.backend.node(node)
        ctx = self._ctx(node)
        n.run_dir.mkdir(parents=True, exist_ok=True)
        for i, step in enumerate(steps):
            text = step.text.render(ctx).strip()
            where = f"{self.profile.source}: {what}[{i}] on {node}"
            if not text:
                continue                # a step whose condition rendered it empty
            if step.kind == "sh":
                done = n.run(["sh", "-c", text], check=False, timeout=step.timeout, in_image=True)
                if done.rc != 0:
                    raise ImplementationError(f"{where}: `{text}` exited {done.rc}: {done.err.strip()[-500:]}")
            elif step.kind == "spawn":
                log = open(self.setup.lab_dir / "nodes" / node / f"{self.profile.name}.stderr", "ab")
                with log:
                    self.procs.setdefault(node, []).append(
                        n.popen(["sh", "-c", f"exec {text}"], stdout=log, stderr=log, new_session=True, in_image=True))
            elif step.kind == "wait_for":
                deadline = time.monotonic() + step.timeout
                while not glob.glob(text):
                    if time.monotonic() > deadline:
                        raise ImplementationError(f"{where}: {text} did not appear within {step.timeout:.0f} s")
                    time.sleep(0.02)
            elif step.kind == "kill":
                kill_all(pids_from_files(glob.glob(text), n.pids()))

    def start(self) -> None:
        for node in self.nodes:
            self._steps(node, self.profile.start, "start")

    def stop(self) -> None:
        try:
            for node in self.nodes:
                self._steps(node, self.profile.stop, "stop")
        finally:
            kill_all([p.pid for ps in self.procs.values() for p in ps if p.poll() is None])
            for ps in self.procs.values():
                for p in ps:
                    p.poll()
            self.procs.clear()

    def reload(self, node: str) -> None:
        if not self.profile.reload:
            raise Unimplemented(self.name, "reload", f"{self.profile.source} has no reload steps")
        self._steps(node, self.profile.reload, "reload")

    def _daemon(self, daemon: str) -> Mapping[str, tuple[Step, ...]]:
        if daemon not in self.profile.daemons:
            raise ImplementationError(f"{self.profile.source}: daemons: no {daemon!r} "
                                      f"(has: {', '.join(self.profile.daemons) or 'none'})")
        return self.profile.daemons[daemon]

    def stop_daemon(self, node: str, daemon: str) -> None:
        self._steps(node, self._daemon(daemon)["stop"], f"daemons.{daemon}.stop")

    def start_daemon(self, node: str, daemon: str) -> None:
        self._steps(node, self._daemon(daemon)["start"], f"daemons.{daemon}.start")

    def _state(self, node: str, view: str) -> list[Any]:
        q = self.profile.state[view]
        ctx = self._ctx(node)
        argv = [t.render(ctx) for t in q.argv]
        done = self.setup.backend.node(node).run(argv, check=False, in_image=True)
        where = f"{self.profile.source}: state.{view} on {node}"
        if done.rc not in (0, 1):       # 1: e.g. vtysh's warning for an empty table
            raise ImplementationError(f"{where}: {shlex.join(argv)} exited {done.rc}: {done.err.strip()[-300:]}")
        return parse_state(q, view, done.out, where)

    def cache(self, node: str) -> list[CacheEntry]:
        return self._state(node, "cache")

    def nhs(self, node: str) -> list[NhsEntry]:
        return self._state(node, "nhs")

    def shortcuts(self, node: str) -> list[Shortcut]:
        return self._state(node, "shortcuts")


def for_profile(profile: Profile) -> type[ProfileImplementation]:
    """The Implementation class for `profile`, named as it says."""
    return type(f"Profile_{profile.name}", (ProfileImplementation,), {
        "profile": profile, "name": profile.name, "unimplemented": dict(profile.unimplemented),
        "views": tuple(v for v in VIEWS if v in profile.state), "ipsec_couplings": profile.ipsec_couplings})
