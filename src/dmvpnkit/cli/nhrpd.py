"""`dmvpnkit nhrpd`: our reference NHRP node (run it, or show a running one's views)."""

from __future__ import annotations

import argparse

from ..nhrpd.__main__ import add_arguments, run


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("nhrpd", help="run dmvpnkit's own NHRP node, or show its state",
                       description="dmvpnkit's reference NHRP node (hub or spoke)")
    add_arguments(p)
    p.set_defaults(func=run)
