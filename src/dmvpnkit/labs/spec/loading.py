"""Loading: a spec file's text to the raw YAML document, through Jinja2 when the file
starts with a `params:` document, then to a `Topology`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import yaml

from .build import topology
from .model import Topology
from .validation import Issue, SpecError


def load(path: str | Path, params: dict[str, Any] | None = None) -> Topology:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError(str(path), [Issue("<file>", f"cannot read: {e.strerror}")]) from None
    return loads(text, source=str(path), params=params)


def loads(text: str, source: str = "<string>", params: dict[str, Any] | None = None) -> Topology:
    doc, used = _render(text, source, params or {})
    return topology(doc, source, used)


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<yaml>"
        raise SpecError(source, [Issue(where, f"invalid YAML: {getattr(e, 'problem', e)}")]) from None


def _render(text: str, source: str, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Split off a leading `params:` document and render the rest as Jinja2."""
    head, sep, body = text.partition("\n---\n")
    first = _yaml(head, source) if sep else None
    if not (isinstance(first, dict) and set(first) == {"params"}):
        if params:
            raise SpecError(source, [Issue("params", "this topology takes no parameters",
                                           f"got {sorted(params)}")])
        return _yaml(text, source), {}
    defaults = first["params"] or {}
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise SpecError(source, [Issue(f"params.{k}", "unknown parameter",
                                       f"known: {', '.join(sorted(defaults))}") for k in unknown])
    used, bad = {}, []
    for k, v in defaults.items():
        try:
            used[k] = _coerce(params.get(k, v), v)
        except ValueError:
            bad.append(Issue(f"params.{k}", f"{params[k]!r} is not a {type(v).__name__}", f"default: {v!r}"))
    if bad:
        raise SpecError(source, bad)
    try:
        rendered = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(body).render(**used)
    except jinja2.TemplateError as e:
        raise SpecError(source, [Issue("<template>", f"cannot render: {e}")]) from None
    return _yaml(rendered, source), used


def _coerce(value: Any, default: Any) -> Any:
    """Command-line parameters arrive as strings; give them the default's type."""
    if isinstance(value, str) and isinstance(default, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(value, str) and isinstance(default, int):
        return int(value)
    if isinstance(value, str) and isinstance(default, float):
        return float(value)
    return value
