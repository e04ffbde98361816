"""`dmvpnkit lab up|down|status|exec|shell`.

On a host kernel that lacks GRE/ESP the same command is forwarded, unchanged, into
the lab's UML guest (labs.uml), which shares the host filesystem: output, exit
status and the lab directory are those of a native run. Which labs exist and where
they run is kept in /run/dmvpnkit/labs/<name>.json on the host.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import stat
import sys
import termios
import tty
from pathlib import Path
from typing import Any

from ..labs import kernel, spec
from ..labs.lab import Lab, LabError, check_name, parse_impl, read_lab_json
from ..labs.netns import NETNS_DIR, CLONE_NEWNET, list_netns, ns_prefix, reap
from ..labs.uml import Guest, GuestError, GUEST_DIR

REGISTRY = Path("/run/dmvpnkit/labs")
DEFAULT_LAB_ROOT = Path("labs-run")


def register(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="bring DMVPN labs up and down, look inside them")
    cmds = lab.add_subparsers(dest="lab_command", required=True)

    up = cmds.add_parser("up", help="build a lab from a topology (or a lab.json) and wait for convergence")
    up.add_argument("topology", help="topologies/NAME.yaml, or a lab directory's lab.json to bring back")
    up.add_argument("--impl", default="frr", help="implementation, or per role: hub=frr,spoke=frr")
    up.add_argument("--phase", type=int, choices=(1, 2, 3), help="DMVPN phase (default: the topology's)")
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
    up.set_defaults(func=cmd_up)

    down = cmds.add_parser("down", help="tear a lab down: namespaces, daemons, lab kernel")
    down.add_argument("--lab", help="lab name (default: the only running lab)")
    down.add_argument("--all", action="store_true", help="every lab, including leftovers of crashed runs")
    down.set_defaults(func=cmd_down)

    st = cmds.add_parser("status", help="nodes, NHRP cache, shortcuts, bring-up time")
    st.add_argument("--lab", help="lab name (default: the only running lab)")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    ex = cmds.add_parser("exec", help="run a command on a node: lab exec spoke1 -- ping -c3 10.1.2.10")
    ex.add_argument("--lab", help="lab name (default: the only running lab)")
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)

    sh = cmds.add_parser("shell", help="interactive shell on a node")
    sh.add_argument("--lab", help="lab name (default: the only running lab)")
    sh.add_argument("node")
    sh.set_defaults(func=cmd_shell)


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
    source = Path(args.topology)
    params = dict(p.split("=", 1) for p in args.param if "=" in p)
    bad = [p for p in args.param if "=" not in p]
    if bad:
        raise LabError(f"--param {bad[0]!r}: expected KEY=VALUE")
    impl_text, phase = args.impl, args.phase
    if source.name == "lab.json":           # bring a recorded lab back
        doc = read_lab_json(source.parent)
        source = Path(doc["topology_file"])
        params = {**{k: str(v) for k, v in doc["params"].items()}, **params}
        impl_text = args.impl if args.impl != "frr" else ",".join(f"{r}={i}" for r, i in doc["impl"].items())
        phase = phase or doc["phase"]
        args.name = args.name or doc["name"]
        args.ipsec = args.ipsec or bool(doc.get("ipsec"))
        args.ipsec_auth = args.ipsec_auth or doc.get("ipsec_auth", "")
    topo = spec.load(source, params or None)
    impl = parse_impl(impl_text)
    name = check_name(args.name or topo.name.replace("-", "_").lower())
    lab_dir = (args.lab_dir or DEFAULT_LAB_ROOT / name).resolve()
    phase = phase or topo.phase

    if kernel.in_guest():
        lab = Lab(name=name, topo=topo, lab_dir=lab_dir, impl=impl, phase=phase,
                  topology_file=str(source.resolve()), kernel="uml", ipsec=args.ipsec,
                  ipsec_auth=args.ipsec_auth)
        lab.timings.kernel = float(os.environ.get("DMVPNKIT_KERNEL_SECONDS", "0"))
        return _up(lab, args.timeout)

    which = kernel.choose(args.kernel)
    entry = {"lab_dir": str(lab_dir), "kernel": which}
    _registry_put(name, entry)
    rc = 1
    try:
        rc = _up_on(which, name, source, topo, impl, phase, params, lab_dir, args.timeout, args.uml_mem,
                    args.ipsec, args.ipsec_auth)
    finally:
        if rc != 0:     # failed or interrupted: leave nothing behind
            _teardown(name, entry)
    return rc


def _up_on(which: str, name: str, source: Path, topo: spec.Topology, impl: dict[str, str], phase: int,
           params: dict[str, str], lab_dir: Path, timeout: float | None, uml_mem: str = "1G",
           ipsec: bool = False, ipsec_auth: str = "") -> int:
    if which == "host":
        lab = Lab(name=name, topo=topo, lab_dir=lab_dir, impl=impl, phase=phase,
                  topology_file=str(source.resolve()), kernel="host", ipsec=ipsec,
                  ipsec_auth=ipsec_auth)
        return _up(lab, timeout)
    else:
        guest = Guest(name)
        print(f"kernel: host kernel {os.uname().release} lacks GRE/ESP; starting the UML lab kernel",
              flush=True)
        boot = guest.start(mem=uml_mem)
        print(f"kernel: UML guest up in {boot:.1f} s", flush=True)
        fwd = ["up", str(source.resolve()), "--impl", ",".join(f"{r}={i}" for r, i in impl.items()),
               "--phase", str(phase), "--name", name, "--lab-dir", str(lab_dir)]
        fwd += [f"--param={k}={v}" for k, v in params.items()]
        fwd += ["--timeout", str(timeout)] if timeout else []
        fwd += ["--ipsec"] if ipsec else []
        fwd += ["--ipsec-auth", ipsec_auth] if ipsec_auth else []
        return _forward(name, fwd, env={"DMVPNKIT_KERNEL_SECONDS": f"{boot:.3f}"})


def _up(lab: Lab, timeout: float | None = None) -> int:
    prev = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        timings = lab.up(log=lambda m: print(m, flush=True), timeout=timeout)
    finally:
        signal.signal(signal.SIGTERM, prev)
    print(f"lab {lab.name} up ({lab.driver.name}, phase {lab.phase}, {lab.kernel} kernel); {timings.line()}")
    print(f"lab directory: {lab.lab_dir}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if args.all:
        names = set(_registry()) | {p.name for p in GUEST_DIR.glob("*")} if GUEST_DIR.exists() else set(_registry())
        names |= {n.split("-")[1] for n in list_netns("dk-") if n.count("-") >= 2}
        for name in sorted(names):
            _teardown(name, _registry().get(name, {}))
            print(f"lab {name}: down")
        return 0
    if kernel.in_guest():
        removed = reap(ns_prefix(check_name(args.lab)))
        print(f"removed {len(removed)} namespaces")
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
    reap(ns_prefix(name))
    (REGISTRY / f"{name}.json").unlink(missing_ok=True)
    if entry.get("lab_dir") and (Path(entry["lab_dir"]) / "lab.json").exists():
        doc = read_lab_json(Path(entry["lab_dir"]))
        if doc.get("state") in ("up", "starting"):
            doc["state"] = "down"
            (Path(entry["lab_dir"]) / "lab.json").write_text(json.dumps(doc, indent=2) + "\n")


def cmd_status(args: argparse.Namespace) -> int:
    if kernel.in_guest():
        st = Lab.from_dir(Path(os.environ["DMVPNKIT_LAB_DIR"])).status()
    else:
        name, entry = _resolve(args.lab)
        if entry.get("kernel") == "uml":
            return _forward(name, ["status", "--lab", name] + (["--json"] if args.json else []),
                            env={"DMVPNKIT_LAB_DIR": entry["lab_dir"]})
        st = Lab.from_dir(Path(entry["lab_dir"])).status()
    print(json.dumps(st, indent=2) if args.json else format_status(st))
    return 0


def format_status(st: dict[str, Any]) -> str:
    t = st["timings"]
    lines = [f"lab {st['name']}: topology {st['topology']}, impl {st['impl']['hub']}"
             + (f"/{st['impl']['spoke']}" if st['impl']['spoke'] != st['impl']['hub'] else "")
             + f", phase {st['phase']}, {st['kernel']} kernel",
             f"bring-up {t['total']:.1f} s: kernel {t['kernel']:.1f} s, topology {t['topology']:.1f} s, "
             f"daemons {t['daemons']:.1f} s, convergence {t['convergence']:.1f} s",
             f"lab directory: {st['lab_dir']}", ""]
    lines.append(f"{'node':<12} {'role':<7} {'nbma':<15} {'tunnel':<15} {'gre1 rx/tx pkts':>16}")
    for n in st["nodes"]:
        gre = n.get("gre1")
        pk = f"{gre['rx_packets']}/{gre['tx_packets']}" if gre else ""
        state = "" if n["up"] else "  (namespace missing)"
        lines.append(f"{n['name']:<12} {n['role']:<7} {n.get('nbma', ''):<15} {n.get('tunnel', ''):<15} {pk:>16}{state}")
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


def _enter_node(name: str, node: str) -> None:
    path = NETNS_DIR / f"{ns_prefix(name)}{node}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise LabError(f"lab {name} has no node {node!r}") from None
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
        raise LabError(f"cannot enter {path}: {os.strerror(ctypes.get_errno())}")
    os.close(fd)


def cmd_exec(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise LabError("lab exec NODE -- COMMAND...: no command given")
    name = args.lab
    if not kernel.in_guest():
        name, entry = _resolve(args.lab)
        if entry.get("kernel") == "uml":
            return _forward(name, ["exec", "--lab", name, args.node, "--", *argv])
    _enter_node(name, args.node)
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise LabError(f"{args.node}: command not found: {argv[0]}") from None


def cmd_shell(args: argparse.Namespace) -> int:
    name = args.lab
    if not kernel.in_guest():
        name, entry = _resolve(args.lab)
        if entry.get("kernel") == "uml":
            fd = sys.stdin.fileno()
            saved = termios.tcgetattr(fd) if os.isatty(fd) else None
            if saved:
                tty.setraw(fd)
            try:
                return _forward(name, ["shell", "--lab", name, args.node], pty=True)
            finally:
                if saved:
                    termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    _enter_node(name, args.node)
    os.environ["PS1"] = f"[{name}:{args.node}] \\w# "
    os.execvp("bash", ["bash", "--norc", "-i"])
