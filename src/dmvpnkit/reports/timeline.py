"""Packet timelines: parse the text excerpts cases print, name the nodes, lay out a ladder.

A timeline line is `<ts> <node> [->|<-] <src>[(name)]><dst>[(name)] <summary>`: the
capture point, the direction seen there (`->` sent, `<-` received), outer (NBMA)
addresses with the node owning them where known (`capture.Timeline.format`; the
first cases' `show()` printed neither arrow nor names). Inside a pytest failure the
lines carry pytest's `E` prefix.

The offending packet: `Timeline.format(mark=...)` prefixes it with `=>`. Without such
a mark the message's shape tells: a message that is itself packets
(`assert ok, bad_frames`) points at them; one that starts with prose ("expected a
Registration Reply ...") shows the packets as context, and nothing is marked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from .model import DIRECTIONS, MARKS, LabInfo, TimelineEntry

_ADDR = r"[0-9A-Fa-f.:]+"
_NAME = r"(?:\((?P<{}>[^()\s]+)\))?"
_LINE = re.compile(
    rf"(?P<mark>=>\s*)?(?P<ts>\d+\.\d+)\s+(?P<node>\S+)\s+(?:(?P<dir>->|<-)\s+)?"
    rf"(?P<src>{_ADDR}){_NAME.format('src_node')}>(?P<dst>{_ADDR}){_NAME.format('dst_node')}"
    rf"\s+(?P<summary>\S.*?)\s*")
_PYTEST_E = re.compile(r"^E\s+")
_HEAD = re.compile(r"^\s*(?:[\w.]+Error|Failed):\s*")
_DIRECTION = {"->": "out", "<-": "in"}


def parse(text: str) -> list[TimelineEntry]:
    """Timeline entries found in `text` (a failure message or a bare excerpt), by time."""
    out: list[TimelineEntry] = []
    seen: set[tuple[str, str, str, str, str]] = set()
    marking = False
    for raw in (text or "").splitlines():
        line = _PYTEST_E.sub("", raw, count=1)
        head = _HEAD.match(line)
        if head:
            line = line[head.end():]
        m = _LINE.fullmatch(line.strip())
        if m is None:
            marking = False
            continue
        if head:
            marking = True              # the message itself is packets: they are its subject
        key = (m["ts"], m["node"], m["src"], m["dst"], m["summary"])
        if key in seen:
            continue
        seen.add(key)
        out.append(TimelineEntry(float(m["ts"]), m["node"], m["src"], m["dst"], m["summary"],
                                 "offending" if m["mark"] or marking else None, m["src_node"], m["dst_node"],
                                 _DIRECTION.get(m["dir"] or "")))
    out.sort(key=lambda e: e.ts)
    return out


def _opt_str(d: Mapping[str, Any], key: str) -> str | None:
    v = d.get(key)
    return None if v in (None, "") else str(v)


def from_dicts(items: Iterable[Mapping[str, Any]], where: str = "timeline") -> list[TimelineEntry]:
    """Structured entries as the plugin passes them (`capture.Event.to_dict()` will do:
    keys beyond ours, like `nhrp`, are ignored). `mark`: None, "offending" or "note"."""
    out = []
    for i, d in enumerate(items):
        try:
            mark = d.get("mark")
            if mark is True:
                mark = "offending"
            if mark not in (None, False, *MARKS):
                raise ValueError(f"mark: {mark!r} is not one of {', '.join(MARKS)}")
            direction = d.get("direction")
            direction = direction if direction in DIRECTIONS else None
            out.append(TimelineEntry(float(d["ts"]), str(d["node"]), str(d["src"]), str(d["dst"]),
                                     str(d["summary"]), mark or None, _opt_str(d, "src_node"),
                                     _opt_str(d, "dst_node"), direction, _opt_str(d, "iface")))
        except KeyError as e:
            raise ValueError(f"{where}[{i}]: missing {e.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{where}[{i}]: {e}") from None
    out.sort(key=lambda e: e.ts)
    return out


def resolve(entries: Iterable[TimelineEntry], addresses: Mapping[str, str]) -> None:
    """Fill src_node/dst_node from an address -> node map (kept where already set)."""
    for e in entries:
        e.src_node = e.src_node or addresses.get(e.src)
        e.dst_node = e.dst_node or addresses.get(e.dst)


# ---------------------------------------------------------------- ladder layout

COL_W, GUTTER, TOP, ROW_H = 150, 86, 46, 26     # px; summaries at ~7 px a character
MERGE_WINDOW = 0.05     # s: the same packet captured at sender and receiver


@dataclass
class Arrow:
    y: int
    x1: int
    x2: int
    t: float                    # seconds since the first packet shown
    ts: float
    label: str
    summary: str
    mark: str | None
    seen: list[str] = field(default_factory=list)       # capture points
    seen_x: list[int] = field(default_factory=list)


@dataclass
class Ladder:
    columns: list[tuple[str, int]]          # (node name or bare address, x)
    arrows: list[Arrow]
    width: int
    height: int
    text_x: int
    shown: int
    total: int
    first: int                              # index of the first packet shown


def short_label(summary: str) -> str:
    words = summary.split()
    if words[:1] == ["NHRP"] and len(words) > 1:
        return words[1]
    if words[:1] == ["icmp"] and len(words) > 2 and words[1] == "type":
        return {"8": "icmp echo", "0": "icmp reply"}.get(words[2], f"icmp {words[2]}")
    return " ".join(words[:2])[:22]


def ladder(entries: Sequence[TimelineEntry], lab: LabInfo | None = None, limit: int = 160) -> Ladder:
    """Packets as arrows between node lifelines; tx and rx captures of one packet merge."""
    packets: list[dict[str, Any]] = []
    open_: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in entries:
        key = (e.src, e.dst, e.summary)
        g = open_.get(key)
        if g is not None and e.ts - g["ts"] <= MERGE_WINDOW and e.node not in g["seen"]:
            g["seen"].append(e.node)
            g["mark"] = g["mark"] or e.mark
            continue
        g = {"ts": e.ts, "src": e.src_node or e.src, "dst": e.dst_node or e.dst, "summary": e.summary,
             "mark": e.mark, "seen": [e.node]}
        open_[key] = g
        packets.append(g)
    total = len(packets)
    first = 0
    if total > limit:
        marked = next((i for i, p in enumerate(packets) if p["mark"]), None)
        first = 0 if marked is None else max(0, min(marked - limit // 3, total - limit))
        packets = packets[first:first + limit]

    names: list[str] = []
    involved = {p["src"] for p in packets} | {p["dst"] for p in packets} | {s for p in packets for s in p["seen"]}
    if lab is not None:
        names = [n.name for n in sorted(lab.nodes, key=lambda n: (n.role not in ("hub",), n.role != "spoke"))
                 if n.role in ("hub", "spoke") or n.name in involved]
    for p in packets:
        for n in (*p["seen"], p["src"], p["dst"]):
            if n not in names:
                names.append(n)
    xs = {n: GUTTER + COL_W // 2 + i * COL_W for i, n in enumerate(names)}
    t0 = packets[0]["ts"] if packets else 0.0
    arrows = [Arrow(y=TOP + 20 + i * ROW_H, x1=xs[p["src"]], x2=xs[p["dst"]], t=p["ts"] - t0, ts=p["ts"],
                    label=short_label(p["summary"]), summary=p["summary"], mark=p["mark"], seen=p["seen"],
                    seen_x=[xs[s] for s in p["seen"]])
              for i, p in enumerate(packets)]
    text_x = GUTTER + len(names) * COL_W + 8
    widest = max((len(a.summary) for a in arrows), default=10)
    return Ladder(columns=[(n, xs[n]) for n in names], arrows=arrows, width=text_x + 7 * widest + 24,
                  height=TOP + 20 + len(arrows) * ROW_H + 10, text_x=text_x, shown=len(arrows), total=total,
                  first=first)
