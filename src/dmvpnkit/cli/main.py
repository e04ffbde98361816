"""`dmvpnkit` command line: each subcommand module exposes register(subparsers)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__

SUBCOMMANDS = ("lab", "decode", "audit", "report", "nhrpd", "mutations", "implementations")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmvpnkit", description="DMVPN conformance harness")
    parser.add_argument("--version", action="version", version=f"dmvpnkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"dmvpnkit.cli.{name}")
        except ImportError as e:
            if e.name != f"dmvpnkit.cli.{name}":
                raise
            continue        # a subcommand still being written is simply absent
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (RuntimeError, ValueError, OSError) as e:
        # Our errors carry their evidence in the message; a traceback would bury it.
        if os.environ.get("DMVPNKIT_DEBUG"):
            raise
        print(f"dmvpnkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
