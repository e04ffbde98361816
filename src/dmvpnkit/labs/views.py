"""Normalised NHRP state, the same records from every implementation driver.

Field values follow FRR's JSON vocabulary where one exists (cache types `dynamic`,
`nhs`, `local`, `cached`, `negative`, ...) so drivers map into it, not around it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CacheEntry:
    protocol: str           # overlay (tunnel) address
    nbma: str               # NBMA address used to reach it (post-NAT where known)
    claimed_nbma: str       # NBMA address the peer claimed for itself
    type: str               # dynamic | nhs | static | cached | local | negative | ...
    used: bool = False
    interface: str = ""


@dataclass(frozen=True)
class NhsEntry:
    interface: str
    fqdn: str               # how the NHS was configured (FRR: `dynamic` or an NBMA name)
    nbma: str
    protocol: str           # learned NHS protocol address; empty until registered


@dataclass(frozen=True)
class Shortcut:
    prefix: str
    via: str
    type: str
    identity: str = ""


def as_dicts(records: list[Any]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]
