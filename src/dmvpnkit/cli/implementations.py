"""`dmvpnkit implementations`: what `--impl` can name here, and what each declares."""

from __future__ import annotations

import argparse
import json
from typing import Any
from pathlib import Path

from ..labs import implementations


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("implementations", help="installed DMVPN implementations: versions, features, IPsec")
    p.add_argument("--frr-prefix", type=Path, metavar="DIR", help="report FRR from this tree")
    p.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    p.set_defaults(func=cmd_implementations)


def describe(name: str, variables: dict[str, str]) -> dict[str, Any]:
    row: dict[str, object] = {"name": name, "from": implementations.origin(name)}
    try:
        cls = implementations.get(name)
    except implementations.ImplementationError as e:
        return {**row, "error": str(e)}
    try:
        version = cls.version(variables)
    except (OSError, RuntimeError) as e:        # not installed here: say so, list the rest
        version = f"unavailable: {e}"
    return {**row, "version": version, "views": list(cls.views), "ipsec": list(cls.ipsec_couplings),
            "unimplemented": dict(cls.unimplemented)}


def cmd_implementations(args: argparse.Namespace) -> int:
    variables = {"frr_prefix": str(args.frr_prefix.resolve())} if args.frr_prefix else {}
    rows = [describe(n, variables) for n in implementations.names()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']}: {r.get('version', '')}  [{r['from']}]")
        if "error" in r:
            print(f"  error: {r['error']}")
            continue
        print(f"  state views: {', '.join(r['views']) or 'none (wire cases only)'}")
        print(f"  IPsec couplings: {', '.join(r['ipsec']) or 'none'}")
        for feature, why in dict(r["unimplemented"]).items():
            print(f"  unimplemented {feature}: {why}")
    # Non-zero when something named cannot run here (e.g. a wrong --frr-prefix).
    return 0 if all("error" not in r and not str(r["version"]).startswith("unavailable") for r in rows) else 1
