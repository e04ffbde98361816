"""Link impairment: delay, jitter, loss and rate, the way netem applies them.

One `Impairment` is what one end of a link does to the packets it sends (netem is
an egress qdisc). A link impaired in both directions gets it on both ends, as
Mininet's TCLink does: `delay=75` on a spoke's uplink then adds 150 ms to every
round trip through it. Units are netlab's: milliseconds, percent, kbit/s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["both", "out", "in"]      # out: sent by the node; in: sent to it
DIRECTIONS: tuple[Direction, ...] = ("both", "out", "in")
KEYS = ("delay", "jitter", "loss", "rate")


class ImpairmentError(ValueError):
    pass


class NoNetem(ImpairmentError):
    """The kernel running the lab has no netem qdisc (this machine's host kernel)."""


@dataclass(frozen=True)
class Impairment:
    delay: float = 0.0      # ms added to every packet
    jitter: float = 0.0     # ms of random variation around `delay` (needs delay)
    loss: float = 0.0       # percent of packets dropped, independently
    rate: int = 0           # kbit/s the link is limited to; 0: unlimited

    def __post_init__(self) -> None:
        problems = [f"{k} must be a number >= 0, got {getattr(self, k)!r}" for k in KEYS
                    if isinstance(getattr(self, k), bool) or not isinstance(getattr(self, k), (int, float))
                    or getattr(self, k) < 0]
        if not problems and self.loss > 100:
            problems.append(f"loss must be a percentage (0..100), got {self.loss!r}")
        if not problems and self.jitter and not self.delay:
            problems.append("jitter needs a delay to vary around (netem)")
        if problems:
            raise ImpairmentError("; ".join(problems))

    @property
    def none(self) -> bool:
        return not (self.delay or self.jitter or self.loss or self.rate)

    def describe(self) -> str:
        parts = [f"delay {self.delay:g} ms" if self.delay else "", f"jitter {self.jitter:g} ms" if self.jitter else "",
                 f"loss {self.loss:g} %" if self.loss else "", f"rate {self.rate} kbit/s" if self.rate else ""]
        return ", ".join(p for p in parts if p) or "none"

    def to_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in KEYS if getattr(self, k)}

    @classmethod
    def from_dict(cls, doc: Any, where: str = "impair") -> "Impairment":
        """From a topology's mapping (`{delay: 75, loss: 1}`); errors name the key."""
        if not isinstance(doc, dict):
            raise ImpairmentError(f"{where}: expected a mapping of {', '.join(KEYS)}, got {type(doc).__name__}")
        unknown = sorted(set(doc) - set(KEYS))
        if unknown:
            raise ImpairmentError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(KEYS)})")
        try:
            return cls(**doc)
        except ImpairmentError as e:
            raise ImpairmentError(f"{where}: {e}") from None


def tc_command(ifname: str, imp: Impairment) -> str:
    """`tc qdisc replace ... netem ...` for `imp` on `ifname` (a lab that sets itself up)."""
    parts = ["tc", "qdisc", "replace", "dev", ifname, "root", "netem"]
    if imp.delay:
        parts += ["delay", f"{imp.delay:g}ms"] + ([f"{imp.jitter:g}ms"] if imp.jitter else [])
    if imp.loss:
        parts += ["loss", f"{imp.loss:g}%"]
    if imp.rate:
        parts += ["rate", f"{imp.rate}kbit"]
    return " ".join(parts)


def check_direction(direction: str) -> Direction:
    if direction not in DIRECTIONS:
        raise ImpairmentError(f"direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    return direction


__all__ = ["Impairment", "ImpairmentError", "NoNetem", "Direction", "DIRECTIONS", "check_direction", "tc_command"]
