"""Every passive rule over captures taken anywhere: read what can be read, find the
stations (NBMA addresses that sent or received NHRP), tell NHSs from clients by the
traffic, and judge each station on its own."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..capture import pcap
from ..capture.esp import Keyring, XfrmError, parse_xfrm
from ..capture.timeline import Event, Timeline, events_of, link_macs
from .base import REGISTRY, SKIP, Context, Rule, Verdict


@dataclass
class Capture:
    """What the files gave: the merged timeline, and what could not be read."""
    files: list[Path]
    timeline: Timeline
    problems: list[str] = field(default_factory=list)     # what could not be read: file and offset
    notes: list[str] = field(default_factory=list)        # what was read but holds no NHRP
    frames: dict[str, int] = field(default_factory=dict)  # file -> frames decoded into events


@dataclass(frozen=True)
class Station:
    address: str
    name: str
    role: str                   # "nhs" or "client"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.address})" if self.name != self.address else self.address


def capture_paths(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Files as given, and the pcap/pcapng files under each directory (recursively)."""
    files: list[Path] = []
    problems: list[str] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for s in pcap.SUFFIXES for f in p.rglob(f"*{s}") if f.is_file())
            if not found:
                problems.append(f"{p}: no .pcap or .pcapng file in this directory")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or directory")
    return list(dict.fromkeys(files)), problems


def keyring(files: list[Path], keys: list[Path]) -> tuple[Keyring, list[str]]:
    """The SAs of the `--keys` files and of the `xfrm__*.txt` beside the captures."""
    sas, problems = [], []
    sources = list(keys) + sorted({f for c in files for f in c.parent.glob("xfrm__*.txt")})
    for k in sources:
        try:
            sas += parse_xfrm(k.read_text(errors="replace"), str(k))
        except (OSError, XfrmError) as e:
            problems.append(f"{k}: {getattr(e, 'strerror', None) or e}")
    return Keyring(sas), problems


def read_one(path: Path, keys: Keyring, problems: list[str], notes: list[str]) -> list[Event]:
    """The events of one file; what cannot be read is a line in `problems`, never a raise.
    A file that breaks off keeps the events before the break."""
    node, _, iface = path.stem.partition("__")
    events: list[Event] = []
    try:
        for e in events_of(path, node, iface, mac=link_macs(path.parent).get(path.stem), keys=keys, notes=problems):
            events.append(e)
    except pcap.PcapError as e:
        problems.append(str(e))
    except OSError as e:
        problems.append(f"{path}: cannot read: {e.strerror or e}")
    except (ValueError, IndexError, KeyError) as e:     # a frame our decoders choke on
        problems.append(f"{path}: frame {len(events) + 1}: cannot decode: {e!r}")
    if events and not any(e.nhrp is not None or e.error for e in events):
        notes.append(f"{path}: no NHRP packet among its {len(events)} IPv4 frames")
    elif not events and not any(p.startswith(f"{path}:") for p in problems):
        notes.append(f"{path}: no IPv4 frame in this capture")
    return events


def read(paths: Iterable[Path], keys: Iterable[Path] = (), names: dict[str, str] | None = None) -> Capture:
    """Every capture under `paths`, ESP opened with `keys` (`ip xfrm state` output) and the
    `xfrm__*.txt` files beside the captures; `names` maps NBMA addresses to station names."""
    files, problems = capture_paths(paths)
    ring, key_problems = keyring(files, list(keys))
    problems += key_problems
    events: list[Event] = []
    cap = Capture(files, Timeline([]), problems)
    for f in files:
        got = read_one(f, ring, problems, cap.notes)
        cap.frames[str(f)] = len(got)
        events += got
    cap.timeline = Timeline(events, names)
    return cap


def stations(tl: Timeline, names: dict[str, str]) -> list[Station]:
    """Every NBMA address that sent or received NHRP; an NHS is one that answers
    Registration Requests (sends Registration Replies), the rest are clients."""
    seen: dict[str, None] = {}
    nhs: set[str] = set()
    for e in tl.events:
        if e.nhrp is None and not e.error:
            continue
        seen.setdefault(e.src)
        seen.setdefault(e.dst)
        if e.nhrp is not None and e.nhrp.op == "registration-reply":
            nhs.add(e.src)
    out = [Station(a, names.get(a, a), "nhs" if a in nhs else "client") for a in seen]
    return sorted(out, key=lambda s: (s.role != "nhs", s.name))


def judge(tl: Timeline, st: Station, rules: Iterable[Rule] | None = None) -> list[tuple[Rule, Verdict]]:
    """Every rule on one station; a rule for the other role is SKIP, saying why."""
    ctx = Context(station=st.address, name=st.name, role=st.role)
    out = []
    for r in rules if rules is not None else REGISTRY.values():
        if r.applies_to(st.role):
            out.append((r, r(tl, ctx)))
        else:
            who = "answers no Registration Request" if st.role == "client" else "answers Registration Requests"
            out.append((r, Verdict(SKIP, f"{r.name} on {' or '.join(x.upper() if x == 'nhs' else x for x in r.roles)}"
                                   f" stations", f"{st.label} {who}: a rule for "
                                   f"{'NHSs' if r.roles == ('nhs',) else 'clients'}", rule=r.name)))
    return out
