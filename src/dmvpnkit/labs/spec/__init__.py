"""Topology specs: role-based YAML in, a validated, fully addressed `Topology` out.

A spec names roles (hubs, spokes, NAT boxes, LAN hosts, the NBMA router), never an
implementation. Addresses left out are assigned from pools, so a 20-spoke topology is
a few lines. A file may start with a `params:` document; the rest of the file is then
a Jinja2 template rendered with those parameters (overridable from the command line).

Every problem is collected before anything is raised: `SpecError` lists each with
its YAML path and a hint, the way a compiler reports all errors of a file at once.

model: the dataclasses; loading: file -> YAML document; validation: the issues and
the checks of each section; allocation: pools, addresses, uplinks; build: the nodes.
"""

from __future__ import annotations

# `X as X`: public (mypy sees them re-exported) but, as before the split, not in `*`.
from ..impairment import Impairment
from .loading import load, loads
from .model import ROLES as ROLES
from .model import Dmvpn, Iface, Ipsec, Link, Node, Topology, to_dict
from .validation import IPSEC_AUTH as IPSEC_AUTH
from .validation import NAME_RE as NAME_RE
from .validation import Issue, SpecError
from .validation import IssuesError as IssuesError

__all__ = ["Topology", "Ipsec", "Node", "Iface", "Link", "Dmvpn", "SpecError", "Issue", "Impairment", "load",
           "loads", "to_dict"]
