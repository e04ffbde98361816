"""`python -m dmvpnkit.nhrpd --config FILE` runs a node; `... show cache` asks one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_CONTROL = Path("/run/dmvpnkit-nhrpd.sock")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--control", type=Path, default=DEFAULT_CONTROL, help="control socket path")
    sub = p.add_subparsers(dest="action")
    show = sub.add_parser("show", help="print a view of a running node as JSON")
    show.add_argument("view", choices=("cache", "nhs", "shortcuts"))
    p.add_argument("--config", type=Path, help="node configuration (JSON)")
    p.add_argument("--nbma-interface", help="follow this interface's address as the NBMA address")
    p.add_argument("--nflog-group", type=int, help="NFLOG group carrying hairpinned traffic (hub)")
    p.add_argument("--multicast-nflog-group", type=int, help="NFLOG group carrying multicast sent into the tunnel")
    p.add_argument("--learn-routes", action="store_true",
                   help="follow the tunnel's routes from a routing protocol beside the node (FRR's zebra)")
    p.add_argument("--log", type=Path, help="log file (default: stderr)")


def run(args: argparse.Namespace) -> int:
    from .linux import main, query
    if args.action == "show":
        print(json.dumps(query(args.control, args.view), indent=2))
        return 0
    if args.config is None:
        print("nhrpd: --config FILE is required to run a node", file=sys.stderr)
        return 2
    return main(args.config, args.control, args.nbma_interface, args.nflog_group, args.log,
                args.multicast_nflog_group, args.learn_routes)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m dmvpnkit.nhrpd", description=__doc__)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
