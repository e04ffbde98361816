"""Validation of results.json against `results.schema.json`.

The schema file is the contract. `validate` checks a document against it with a small
compiler for the keywords that file uses (type, enum, const, required, properties,
additionalProperties, items, $ref, minLength, minimum, minProperties): the schema
turns into nested closures once, so a 10,000-result report checks in well under a
second, where a general validator takes many. The tests hold it to the general one
(jsonschema) on good and bad documents. Error messages follow jsonschema's wording,
prefixed with the file and the key: `results.json: runs[0].results[3].outcome: ...`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

from .model import ReportError

Check = Callable[[Any], None]
KEYWORDS = {"$schema", "$id", "$defs", "$ref", "title", "description", "type", "enum", "const", "required",
            "properties", "additionalProperties", "items", "minLength", "minimum", "minProperties"}


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files(__package__).joinpath("results.schema.json").read_text())
    return doc


class _Invalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.path: list[str | int] = []         # filled in, innermost first, on the way out


def where(path: Any) -> str:
    """A path of keys and indices as `runs[0].results[3].outcome`."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _is(kind: str, v: Any) -> bool:
    if kind == "string":
        return isinstance(v, str)
    if kind == "integer":
        return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()
    if kind == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "object":
        return isinstance(v, dict)
    if kind == "array":
        return isinstance(v, list)
    if kind == "boolean":
        return isinstance(v, bool)
    if kind == "null":
        return v is None
    raise ValueError(f"results.schema.json: unknown type {kind!r}")


def _same(a: Any, b: Any) -> bool:
    """JSON equality: 1 is not true, 1 is 1.0."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _no_check(v: Any) -> None:
    return None


def _compile(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check:
    unknown = set(node) - KEYWORDS
    if unknown:
        raise ValueError(f"results.schema.json: keyword(s) {sorted(unknown)} not supported by dmvpnkit's checker")
    # In this order, which decides the error reported when several keywords fail.
    compilers = (_ref, _type, _enum, _const, _min_length, _minimum, _object, _items)
    checks = [c for c in (keyword(node, defs, cache) for keyword in compilers) if c is not None]
    if len(checks) == 1:
        return checks[0]

    def check_all(v: Any) -> None:
        for c in checks:
            c(v)
    return check_all


# One compiler per keyword (or group of keywords): the check it asks for, or None.

def _ref(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    if "$ref" not in node:
        return None
    name = node["$ref"].removeprefix("#/$defs/")
    if name not in cache:
        cache[name] = _no_check                             # placeholder while compiling (recursion)
        compiled = _compile(defs[name], defs, cache)
        cache[name] = compiled

    def check_ref(v: Any, name: str = name) -> None:
        cache[name](v)
    return check_ref


def _type(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    if "type" not in node:
        return None
    kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]

    def check_type(v: Any, kinds: list[str] = kinds) -> None:
        if not any(_is(k, v) for k in kinds):
            raise _Invalid(f"{v!r} is not of type {', '.join(repr(k) for k in kinds)}")
    return check_type


def _enum(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    if "enum" not in node:
        return None
    allowed = node["enum"]

    def check_enum(v: Any, allowed: list[Any] = allowed) -> None:
        if not any(_same(v, a) for a in allowed):
            raise _Invalid(f"{v!r} is not one of {allowed!r}")
    return check_enum


def _const(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    if "const" not in node:
        return None
    const = node["const"]

    def check_const(v: Any, const: Any = const) -> None:
        if not _same(v, const):
            raise _Invalid(f"{const!r} was expected")
    return check_const


def _min_length(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    if "minLength" not in node:
        return None
    n = node["minLength"]

    def check_len(v: Any, n: int = n) -> None:
        if isinstance(v, str) and len(v) < n:
            raise _Invalid(f"{v!r} is too short")
    return check_len


def _minimum(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    if "minimum" not in node:
        return None
    lo = node["minimum"]

    def check_min(v: Any, lo: float = lo) -> None:
        if _is("number", v) and v < lo:
            raise _Invalid(f"{v!r} is less than the minimum of {lo!r}")
    return check_min


def _object(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    """required, properties, additionalProperties and minProperties: one check of a mapping."""
    if not any(k in node for k in ("required", "properties", "additionalProperties", "minProperties")):
        return None
    required = node.get("required", [])
    props = {k: _compile(v, defs, cache) for k, v in node.get("properties", {}).items()}
    extra = node.get("additionalProperties", True)
    extra_check = _compile(extra, defs, cache) if isinstance(extra, dict) else None
    min_props = node.get("minProperties", 0)

    def check_object(v: Any) -> None:
        if not isinstance(v, dict):
            return
        for k in required:
            if k not in v:
                raise _Invalid(f"{k!r} is a required property")
        if len(v) < min_props:
            raise _Invalid(f"{v!r} should be non-empty" if min_props == 1 else f"{v!r} has too few properties")
        if extra is False:
            unexpected = [k for k in v if k not in props]
            if unexpected:
                were = "was" if len(unexpected) == 1 else "were"
                raise _Invalid(f"Additional properties are not allowed "
                               f"({', '.join(repr(k) for k in unexpected)} {were} unexpected)")
        for k, x in v.items():
            c = props.get(k, extra_check)
            if c is not None:
                try:
                    c(x)
                except _Invalid as e:
                    e.path.append(k)
                    raise
    return check_object


def _items(node: dict[str, Any], defs: dict[str, Any], cache: dict[str, Check]) -> Check | None:
    if "items" not in node:
        return None
    item = _compile(node["items"], defs, cache)

    def check_items(v: Any) -> None:
        if not isinstance(v, list):
            return
        for i, x in enumerate(v):
            try:
                item(x)
            except _Invalid as e:
                e.path.append(i)
                raise
    return check_items


@lru_cache(maxsize=1)
def _checker() -> Check:
    s = schema()
    return _compile(s, s.get("$defs", {}), {})


def validate(doc: Any, source: str = "results.json") -> None:
    """Raise ReportError naming `source` and the key of the first violation."""
    try:
        _checker()(doc)
    except _Invalid as e:
        raise ReportError(f"{source}: {where(reversed(e.path))}: {e.message}") from None
