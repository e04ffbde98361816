"""Two runs, case by case: which verdicts differ (a backend, a kernel, a machine
must not change what the suite says of an implementation)."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Run


@dataclass(frozen=True)
class Difference:
    case: str
    a: str              # outcome in the first run, or "absent"
    b: str

    def __str__(self) -> str:
        return f"{self.case}: {self.a} -> {self.b}"


def compare(a: Run, b: Run) -> list[Difference]:
    """Cases whose outcome differs between `a` and `b`, or that only one of them ran."""
    ours = {r.id: r.outcome for r in a.results}
    theirs = {r.id: r.outcome for r in b.results}
    return [Difference(case, ours.get(case, "absent"), theirs.get(case, "absent"))
            for case in sorted(ours.keys() | theirs.keys()) if ours.get(case) != theirs.get(case)]


__all__ = ["Difference", "compare"]
