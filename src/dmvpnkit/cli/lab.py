"""`dmvpnkit lab up|down|status|exec|shell|cli|export`.

On a host kernel that lacks GRE/ESP the same command is forwarded, unchanged, into
the lab's UML guest (labs.uml), which shares the host filesystem: output, exit
status and the lab directory are those of a native run (backends that run in the
lab kernel: netns, mininet; containerlab uses the host's kernel and Docker). Which
labs exist, on which backend and kernel, is kept in /run/dmvpnkit/labs/<name>.json
on the host.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import stat
import sys
import termios
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from ..labs import backend as backends
from ..labs import kernel, spec
from ..labs import implementations
from ..labs.lab import Lab, LabError, Timings, check_name, parse_impl, read_lab_json
from ..labs.node import Node
from ..labs.uml import GUEST_DIR, Guest, GuestError

REGISTRY = Path("/run/dmvpnkit/labs")
DEFAULT_LAB_ROOT = Path("labs-run")


Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def register(sub: Subcommands) -> None:
    lab = sub.add_parser("lab", help="bring DMVPN labs up and down, look inside them")
    cmds = lab.add_subparsers(dest="lab_command", required=True)
    _register_up(cmds)
    _register_running(cmds)
    _register_export(cmds)


def _register_up(cmds: Subcommands) -> None:
    up = cmds.add_parser("up", help="build a lab from a topology (or a lab.json) and wait for convergence")
    up.add_argument("topology", help="topologies/NAME.yaml, or a lab directory's lab.json to bring back")
    up.add_argument("--impl", help="implementation (default frr, or the lab.json's), per role "
                    "hub=frr,spoke=nhrpd, or a profile file")
    up.add_argument("--phase", type=int, choices=(1, 2, 3), help="DMVPN phase (default: the topology's)")
    up.add_argument("--frr-prefix", type=Path, metavar="DIR",
                    help="run FRR's daemons from this install or build tree instead of Debian's")
    up.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="topology parameter, e.g. spokes=20")
    up.add_argument("--name", help="lab name (default: the topology's name)")
    up.add_argument("--lab-dir", type=Path, help="where configs, logs and lab.json go "
                    "(default: labs-run/NAME)")
    up.add_argument("--kernel", choices=("auto", "host", "uml"), default="auto",
                    help="run on the host kernel or in the UML lab kernel (default: probe)")
    up.add_argument("--timeout", type=float, help="convergence timeout in seconds")
    up.add_argument("--ipsec", action="store_true",
                    help="protect GRE with strongSwan (the topology's `ipsec:` section, or defaults)")
    up.add_argument("--ipsec-auth", choices=("psk", "cert"), default="",
                    help="with --ipsec: pre-shared key, or certificates from a lab CA made at bring-up")
    up.add_argument("--uml-mem", default="1G", help="memory of the UML lab kernel (default 1G; "
                    "a few GB for 100 nhrpd nodes)")
    up.add_argument("--backend", default=backends.DEFAULT, metavar="NAME",
                    help=f"lab backend: {', '.join(backends.names())} (default {backends.DEFAULT})")
    up.set_defaults(func=cmd_up)


def _running_lab(cmds: Subcommands, name: str, help: str,
                 func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A command about a running lab, which `--lab` picks when several run."""
    p = cmds.add_parser(name, help=help)
    p.add_argument("--lab", help="lab name (default: the only running lab)")
    p.set_defaults(func=func)
    return p


def _register_running(cmds: Subcommands) -> None:
    down = _running_lab(cmds, "down", "tear a lab down: namespaces, daemons, lab kernel", cmd_down)
    down.add_argument("--all", action="store_true",
                      help="every lab, including leftovers of crashed runs (not the guests of a running "
                           "pytest session: they go when it ends)")
    st = _running_lab(cmds, "status", "nodes, NHRP cache, shortcuts, bring-up time", cmd_status)
    st.add_argument("--json", action="store_true")
    ex = _running_lab(cmds, "exec", "run a command on a node: lab exec spoke1 -- ping -c3 10.1.2.10", cmd_exec)
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    rl = _running_lab(cmds, "reload", "apply a node's configuration files, as edited in <lab dir>/nodes/NODE/, "
                      "to its running daemons", cmd_reload)
    rl.add_argument("node")
    sh = _running_lab(cmds, "shell", "interactive shell on a node", cmd_shell)
    sh.add_argument("node")
    _running_lab(cmds, "cli", "the backend's own console on a lab (Mininet's CLI: "
                 "`spoke1 ping spoke2_h`, `net`, `dump`)", cmd_cli)


def _register_export(cmds: Subcommands) -> None:
    ex = cmds.add_parser("export", help="write a topology as another tool's lab: "
                         "lab export topologies/hub_2spoke.yaml --format clab -o clab/")
    ex.add_argument("topology")
    ex.add_argument("--format", choices=("clab",), required=True)
    ex.add_argument("-o", "--out", type=Path, required=True, help="output directory")
    ex.add_argument("--impl", default="frr", help="implementation, or per role: hub=frr,spoke=nhrpd")
    ex.add_argument("--phase", type=int, choices=(1, 2, 3), help="DMVPN phase (default: the topology's)")
    ex.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="topology parameter")
    ex.add_argument("--image", action="append", default=[], metavar="IMPL=IMAGE",
                    help="the image an implementation's nodes (or `linux`: the other nodes) run, instead of "
                         "its default: --image frr=quay.io/frrouting/frr:8.4.2")
    ex.add_argument("--mgmt", action="store_true", help="give the nodes containerlab's management network")
    ex.set_defaults(func=cmd_export)


# ---------------------------------------------------------------- registry

def _registry_put(name: str, entry: dict[str, Any]) -> None:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    (REGISTRY / f"{name}.json").write_text(json.dumps(entry))


def _registry() -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(REGISTRY.glob("*.json")) if REGISTRY.exists() else []:
        try:
            out[f.stem] = json.loads(f.read_text())
        except ValueError:
            out[f.stem] = {}
    return out


def _resolve(name: str | None) -> tuple[str, dict[str, Any]]:
    labs = _registry()
    if name:
        if name not in labs:
            raise LabError(f"no lab named {name!r} is running (running: {', '.join(labs) or 'none'})")
        return name, labs[name]
    if len(labs) == 1:
        return next(iter(labs.items()))
    if not labs:
        raise LabError("no lab is running (start one with `dmvpnkit lab up topologies/hub_2spoke.yaml`)")
    raise LabError(f"several labs are running ({', '.join(labs)}): choose one with --lab")


def _pollable_stdin() -> bool:
    """A pipe or socket on stdin is forwarded to the guest; a file or /dev/null is not."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _forward(name: str, argv: list[str], pty: bool = False, env: dict[str, str] | None = None) -> int:
    stdin = sys.stdin.buffer if pty or _pollable_stdin() else None
    env = {**({"DMVPNKIT_DEBUG": "1"} if os.environ.get("DMVPNKIT_DEBUG") else {}), **(env or {})}
    return Guest(name).run([sys.executable, "-m", "dmvpnkit.cli.main", "lab", *argv],
                           env=env, stdin=stdin, pty=pty)


# ---------------------------------------------------------------- commands

def cmd_up(args: argparse.Namespace) -> int:
    source, params = Path(args.topology), _params(args.param)
    if source.name == "lab.json":
        source, params = _recall(args, source.parent, params)
    topo = spec.load(source, params or None)
    impl = parse_impl(args.impl or "frr")
    name = check_name(args.name or topo.name.replace("-", "_").lower())
    lab_dir = (args.lab_dir or DEFAULT_LAB_ROOT / name).resolve()
    phase = args.phase or topo.phase
    backend = backends.get(args.backend)
    variables = {"frr_prefix": str(Path(args.frr_prefix).resolve())} if args.frr_prefix else {}

    def lab(kernel_name: str) -> Lab:
        return Lab(name=name, topo=topo, lab_dir=lab_dir, impl=impl, phase=phase,
                   topology_file=str(source.resolve()), kernel=kernel_name, ipsec=args.ipsec,
                   ipsec_auth=args.ipsec_auth, backend_name=args.backend, variables=variables)

    if kernel.in_guest():
        the_lab = lab("uml")
        the_lab.timings.kernel = float(os.environ.get("DMVPNKIT_KERNEL_SECONDS", "0"))
        return _up(the_lab, args.timeout)

    which = kernel.choose(args.kernel) if backend.in_lab_kernel else "host"
    if which == "host":
        reason = backend.available()
        if reason:
            raise LabError(f"--backend {args.backend} cannot run here: {reason}")
    entry = {"lab_dir": str(lab_dir), "kernel": which, "backend": args.backend}
    _registry_put(name, entry)
    rc = 1
    try:
        if which == "host":
            rc = _up(lab("host"), args.timeout)
        else:
            by_role = ",".join(f"{r}={implementations.profile_path(i) or i}" for r, i in impl.items())
            fwd = ["up", str(source.resolve()), "--impl", by_role,
                   "--phase", str(phase), "--name", name, "--lab-dir", str(lab_dir), "--backend", args.backend]
            fwd += [f"--param={k}={v}" for k, v in params.items()]
            fwd += ["--timeout", str(args.timeout)] if args.timeout else []
            fwd += ["--ipsec"] if args.ipsec else []
            fwd += ["--ipsec-auth", args.ipsec_auth] if args.ipsec_auth else []
            fwd += ["--frr-prefix", variables["frr_prefix"]] if variables else []
            rc = _up_in_guest(name, args.uml_mem, fwd)
    finally:
        if rc != 0:     # failed or interrupted: leave nothing behind
            _teardown(name, entry)
    return rc


def _recall(args: argparse.Namespace, lab_dir: Path, params: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """Bring a recorded lab back: its lab.json fills in what the command line leaves
    out; return the topology file and the parameters."""
    doc = read_lab_json(lab_dir)
    profiles = doc.get("profiles", {})
    args.impl = args.impl or ",".join(f"{r}={profiles.get(i, i)}" for r, i in doc["impl"].items())
    args.phase = args.phase or doc["phase"]
    args.frr_prefix = args.frr_prefix or doc.get("variables", {}).get("frr_prefix")
    args.name = args.name or doc["name"]
    args.ipsec = args.ipsec or bool(doc.get("ipsec"))
    args.ipsec_auth = args.ipsec_auth or doc.get("ipsec_auth", "")
    if args.backend == backends.DEFAULT:
        args.backend = doc.get("backend", backends.DEFAULT)
    return Path(doc["topology_file"]), {**{k: str(v) for k, v in doc["params"].items()}, **params}


def _up_in_guest(name: str, mem: str, argv: list[str]) -> int:
    """Boot lab `name`'s UML guest and run `lab` with `argv` in it."""
    guest = Guest(name)
    print(f"kernel: host kernel {os.uname().release} lacks GRE/ESP; starting the UML lab kernel", flush=True)
    boot = guest.start(mem=mem)
    print(f"kernel: UML guest up in {boot:.1f} s", flush=True)
    return _forward(name, argv, env={"DMVPNKIT_KERNEL_SECONDS": f"{boot:.3f}"})


def _params(pairs: list[str]) -> dict[str, str]:
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise LabError(f"--param {bad[0]!r}: expected KEY=VALUE")
    return dict(p.split("=", 1) for p in pairs)


def _up(lab: Lab, timeout: float | None = None) -> int:
    prev = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        timings = lab.up(log=lambda m: print(m, flush=True), timeout=timeout)
    finally:
        signal.signal(signal.SIGTERM, prev)
    print(f"lab {lab.name} up ({lab.driver.name}, phase {lab.phase}, {lab.backend_name} backend, "
          f"{lab.kernel} kernel); {timings.line()}")
    print(f"lab directory: {lab.lab_dir}")
    return 0


def _backends() -> list[type[backends.Backend]]:
    """Every installed backend that can run here; one that does not import is named on
    stderr and skipped, so it cannot keep the others' labs from coming down."""
    found = []
    for name in backends.names():
        try:
            b = backends.get(name)
        except backends.BackendError as e:
            print(f"dmvpnkit: warning: {e}", file=sys.stderr)
            continue
        if not kernel.in_guest() or b.in_lab_kernel:
            found.append(b)
    return found


def _reap_everywhere(name: str) -> list[str]:
    """What any backend left of lab `name`."""
    return [r for b in _backends() for r in b.reap(name)]


def cmd_down(args: argparse.Namespace) -> int:
    if args.all:
        names = set(_registry()) | ({p.name for p in GUEST_DIR.glob("*")} if GUEST_DIR.exists() else set())
        for b in _backends():
            names |= b.running()
        for name in sorted(names):
            # A running session's guest is its own: it powers off when the session
            # ends, however it ends; taking it down would crash that session's cases.
            owner = Guest(name).owner()
            if owner is not None:
                print(f"lab {name}: left up, the guest of running session {owner} (it goes when that ends)")
                continue
            _teardown(name, _registry().get(name, {}))
            print(f"lab {name}: down")
        return 0
    if kernel.in_guest():
        removed = _reap_everywhere(check_name(args.lab))
        print(f"removed {len(removed)} nodes")
        return 0
    name, entry = _resolve(args.lab)
    _teardown(name, entry)
    print(f"lab {name}: down")
    return 0


def _teardown(name: str, entry: dict[str, Any]) -> None:
    """Everything a lab may have left, whether its controller exited cleanly or not."""
    guest = Guest(name)
    if guest.running():
        try:
            _forward(name, ["down", "--lab", name])
        except GuestError:
            pass
    guest.stop()
    _reap_everywhere(name)
    (REGISTRY / f"{name}.json").unlink(missing_ok=True)
    if entry.get("lab_dir") and (Path(entry["lab_dir"]) / "lab.json").exists():
        doc = read_lab_json(Path(entry["lab_dir"]))
        if doc.get("state") in ("up", "starting"):
            doc["state"] = "down"
            (Path(entry["lab_dir"]) / "lab.json").write_text(json.dumps(doc, indent=2) + "\n")


def _in_lab(args: argparse.Namespace, argv: list[str], pty: bool = False) -> tuple[int | None, Path]:
    """Forward a command about a running lab into its guest (returning its exit status),
    or say where the lab directory is when it runs right here."""
    if kernel.in_guest():
        return None, Path(os.environ["DMVPNKIT_LAB_DIR"])
    name, entry = _resolve(args.lab)
    lab_dir = Path(entry["lab_dir"])
    if entry.get("kernel") != "uml":
        return None, lab_dir
    if not pty:
        return _forward(name, [argv[0], "--lab", name, *argv[1:]], env={"DMVPNKIT_LAB_DIR": str(lab_dir)}), lab_dir
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    if saved:
        tty.setraw(fd)
    try:
        return _forward(name, [argv[0], "--lab", name, *argv[1:]], pty=True,
                        env={"DMVPNKIT_LAB_DIR": str(lab_dir)}), lab_dir
    finally:
        if saved:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def cmd_status(args: argparse.Namespace) -> int:
    rc, lab_dir = _in_lab(args, ["status"] + (["--json"] if args.json else []))
    if rc is not None:
        return rc
    st = Lab.from_dir(lab_dir).status()
    print(json.dumps(st, indent=2) if args.json else format_status(st))
    return 0


def format_status(st: dict[str, Any]) -> str:
    t = st["timings"]
    lines = [f"lab {st['name']}: topology {st['topology']}, impl {st['impl']['hub']}"
             + (f"/{st['impl']['spoke']}" if st['impl']['spoke'] != st['impl']['hub'] else "")
             + f", phase {st['phase']}, {st.get('backend', 'netns')} backend, {st['kernel']} kernel",
             Timings(**{k: v for k, v in t.items() if k != "total"}).line(),
             f"lab directory: {st['lab_dir']}", ""]
    lines.append(f"{'node':<12} {'role':<7} {'nbma':<15} {'tunnel':<15} {'gre1 rx/tx pkts':>16}")
    for n in st["nodes"]:
        gre = n.get("gre1")
        pk = f"{gre['rx_packets']}/{gre['tx_packets']}" if gre else ""
        state = "" if n["up"] else "  (node missing)"
        lines.append(f"{n['name']:<12} {n['role']:<7} {n.get('nbma', ''):<15} {n.get('tunnel', ''):<15} "
                     f"{pk:>16}{state}")
    for n in st["nodes"]:
        if "error" in n:
            lines += ["", f"{n['name']}: {n['error']}"]
        if "cache" not in n:
            continue
        lines += ["", f"{n['name']} NHRP cache:"]
        for e in n.get("cache") or []:
            lines.append(f"  {e['type']:<9} {e['protocol']:<15} nbma {e['nbma']:<15} claimed {e['claimed_nbma']}"
                         + ("  used" if e["used"] else ""))
        if not n.get("cache"):
            lines.append("  (empty)")
        if n.get("shortcuts"):
            lines.append(f"{n['name']} shortcuts:")
            for s in n["shortcuts"]:
                lines.append(f"  {s['type']:<9} {s['prefix']:<18} via {s['via']}")
    return "\n".join(lines)


def _node(lab_dir: Path, node: str) -> Node:
    lab = Lab.from_dir(lab_dir)
    if node not in lab.topo.nodes:
        raise LabError(f"lab {lab.name} has no node {node!r} (nodes: {', '.join(lab.topo.nodes)})")
    return lab.node(node)


def cmd_exec(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("lab exec NODE -- COMMAND...: no command given")
    rc, lab_dir = _in_lab(args, ["exec", args.node, "--", *argv])
    if rc is not None:
        return rc
    try:
        _node(lab_dir, args.node).exec(argv)
    except FileNotFoundError:
        raise LabError(f"{args.node}: command not found: {argv[0]}") from None


def cmd_reload(args: argparse.Namespace) -> int:
    rc, lab_dir = _in_lab(args, ["reload", args.node])
    if rc is not None:
        return rc
    lab = Lab.from_dir(lab_dir)
    node = lab.topo.nodes.get(args.node)
    if node is None or not node.is_dmvpn:
        raise LabError(f"lab {lab.name}: {args.node!r} is not a DMVPN node "
                       f"(those are {', '.join(n.name for n in lab.topo.nodes.values() if n.is_dmvpn)})")
    lab.driver.reload(args.node)
    print(f"{args.node}: {lab.driver.of(args.node).name} applied {lab_dir / 'nodes' / args.node}")
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    rc, lab_dir = _in_lab(args, ["shell", args.node], pty=True)
    if rc is not None:
        return rc
    node = _node(lab_dir, args.node)
    os.environ["PS1"] = f"[{lab_dir.name}:{args.node}] \\w# "
    node.exec(["bash", "--norc", "-i"])


def cmd_cli(args: argparse.Namespace) -> int:
    rc, lab_dir = _in_lab(args, ["cli"], pty=True)
    if rc is not None:
        return rc
    return Lab.from_dir(lab_dir).backend.cli()


def cmd_export(args: argparse.Namespace) -> int:
    from ..labs.backends import clab
    topo = spec.load(Path(args.topology), _params(args.param) or None)
    images = {}
    for item in args.image:
        impl, sep, image = item.partition("=")
        if not sep or not impl or not image:
            raise LabError(f"--image {item!r}: expected IMPL=IMAGE, e.g. frr=quay.io/frrouting/frr:8.4.2")
        images[impl] = image
    path = clab.export(topo, parse_impl(args.impl), args.phase or topo.phase, args.out, mgmt=args.mgmt,
                       images=images)
    print(f"wrote {path}; deploy with: containerlab deploy -t {path}")
    return 0
