"""The UML lab kernel: a persistent guest per lab, and commands forwarded into it.

    host CLI ──unix socket──> supervisor ──console line (fd)──> agent in the guest

The supervisor is a small detached host process that owns the guest: it starts
`linux.uml` with console line 1 on one end of a socketpair, relays requests from any
number of host clients (rewriting request ids so clients never see each other),
and when a client vanishes mid-command (Ctrl-C, SIGKILL) it kills that command in
the guest, as a dying parent would natively. The guest lives until `stop()`, or, for
a guest started with an owner (a pytest session's), until that process dies, however
it dies: the supervisor holds a pidfd of it. If the supervisor itself is killed, the
agent sees its console close, kills what it runs, and the guest powers off.

Guest state lives in /run/dmvpnkit/guests/<lab>/ on the host: the socket, pid
files and the console log. `stop()` works from those files alone, so a later
process can always clean up after a crashed one.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from . import kernel

GUEST_DIR = Path("/run/dmvpnkit/guests")
# Bytes in flight to the agent, unacknowledged: below the guest tty's 4 KiB buffer, which
# UML's console may stop filling for good once it has been full (see agent.py).
WINDOW = 3072
STDIN_CHUNK = 1536          # raw bytes per stdin message: base64 and JSON keep it within WINDOW
INIT = Path(__file__).with_name("uml_init.sh")
BOOT_TIMEOUT = 60.0


class GuestError(RuntimeError):
    pass


def guest_dir(lab: str) -> Path:
    return GUEST_DIR / lab


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _started(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/PID/stat): with its pid, who it is."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_is(pid: int | None, needle: bytes) -> bool:
    if pid is None:
        return False
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


# ---------------------------------------------------------------- supervisor

class Supervisor:
    def __init__(self, lab: str, mem: str, owner: int | None = None):
        self.dir = guest_dir(lab)
        self.lab = lab
        self.mem = mem
        self.owner = owner
        self.sel = selectors.DefaultSelector()
        self.clients: dict[socket.socket, dict[str, Any]] = {}
        self.routes: dict[int, tuple[socket.socket, int]] = {}
        self.next_id = 1
        self.guest_buf = b""
        self.to_guest: collections.deque[bytes] = collections.deque()
        self.in_flight = 0
        self.ready = False
        self.orphaned = False               # the owner died: nobody will read the logs either

    def run(self) -> int:
        host_end, guest_end = socket.socketpair()
        log = open(self.dir / "console.log", "ab", buffering=0)
        fd = guest_end.fileno()
        argv = [kernel.uml_available() or kernel.UML_BINARY, f"mem={self.mem}", "rootfstype=hostfs",
                "rootflags=/", "rw", f"init={INIT}", "con=null", "con0=null,fd:1",
                f"con1=fd:{fd}", f"DK_PYTHON={sys.executable}"]
        self.uml = subprocess.Popen(argv, pass_fds=[fd], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, start_new_session=True, cwd="/", env=kernel.uml_env())
        guest_end.close()
        (self.dir / "uml.pid").write_text(str(self.uml.pid))
        self.guest = host_end
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.dir / "agent.sock.new"))
        self.listener.listen(16)
        self.sel.register(self.guest, selectors.EVENT_READ, "guest")
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")
        signal.signal(signal.SIGTERM, lambda *_: self._poweroff())
        owner_fd = None
        if self.owner is not None:
            try:
                owner_fd = os.pidfd_open(self.owner)
                self.sel.register(owner_fd, selectors.EVENT_READ, "owner")
            except ProcessLookupError:
                self.orphaned = True        # gone before we could watch it
                self._poweroff()
        try:
            while self.uml.poll() is None:
                for key, _ in self.sel.select(timeout=0.5):
                    if key.data == "owner":
                        self.sel.unregister(key.fileobj)
                        self.orphaned = True
                        self._poweroff()
                    elif key.data == "guest":
                        self._from_guest()
                    elif key.data == "listen":
                        conn, _ = self.listener.accept()
                        self.clients[conn] = {"buf": b"", "ids": {}}
                        self.sel.register(conn, selectors.EVENT_READ, "client")
                    elif isinstance(key.fileobj, socket.socket):
                        self._from_client(key.fileobj)
        finally:
            if owner_fd is not None:
                os.close(owner_fd)
            self._shutdown()
        return self.uml.returncode or 0

    def _from_guest(self) -> None:
        data = self.guest.recv(65536)
        if not data:
            self.sel.unregister(self.guest)
            return
        self.guest_buf += data
        while b"\n" in self.guest_buf:
            line, self.guest_buf = self.guest_buf.split(b"\n", 1)
            try:
                msg = json.loads(line)
            except ValueError:
                continue            # console noise before the agent took the line
            if "ack" in msg:
                self.in_flight -= int(msg["ack"])
                self._pump()
                continue
            if msg.get("ready"):
                self.ready = True
                os.replace(self.dir / "agent.sock.new", self.dir / "agent.sock")
                continue
            route = self.routes.get(msg.get("id", -1))
            if route is None:
                continue
            conn, cid = route
            if "rc" in msg:
                del self.routes[msg["id"]]
                self.clients.get(conn, {}).get("ids", {}).pop(cid, None)
            msg["id"] = cid
            try:
                conn.sendall(json.dumps(msg).encode() + b"\n")
            except OSError:
                pass

    def _from_client(self, conn: socket.socket) -> None:
        state = self.clients[conn]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        state["buf"] += data
        while b"\n" in state["buf"]:
            line, state["buf"] = state["buf"].split(b"\n", 1)
            msg = json.loads(line)
            if msg.get("op") == "poweroff":
                self._poweroff()
                continue
            cid = msg["id"]
            if msg["op"] == "run":
                gid, self.next_id = self.next_id, self.next_id + 1
                state["ids"][cid] = gid
                self.routes[gid] = (conn, cid)
            gid = state["ids"].get(cid)
            if gid is not None:
                msg["id"] = gid
                self._to_guest(msg)

    def _drop(self, conn: socket.socket) -> None:
        """A client went away: its commands die with it, as a child of a dead shell would."""
        state = self.clients.pop(conn)
        self.sel.unregister(conn)
        conn.close()
        for gid in state["ids"].values():
            self._to_guest({"op": "signal", "id": gid, "sig": int(signal.SIGKILL)})
            self.routes.pop(gid, None)

    def _to_guest(self, msg: dict[str, Any]) -> None:
        self.to_guest.append(json.dumps(msg).encode() + b"\n")
        self._pump()

    def _pump(self) -> None:
        """Send queued lines while the window allows (one at a time if a line is larger)."""
        while self.to_guest and (self.in_flight == 0 or self.in_flight + len(self.to_guest[0]) <= WINDOW):
            line = self.to_guest.popleft()
            self.guest.sendall(line)
            self.in_flight += len(line)

    def _poweroff(self) -> None:
        try:
            self.guest.sendall(b'{"op": "poweroff"}\n')       # ahead of the queue: it ends it
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while self.uml.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        self._kill_uml()

    def _kill_uml(self) -> None:
        try:
            os.killpg(self.uml.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.uml.wait()

    def _shutdown(self) -> None:
        self._kill_uml()    # UML leaves helper processes in its group; take them all
        for conn in list(self.clients):
            conn.close()
        for name in ("agent.sock", "agent.sock.new", "uml.pid", "supervisor.pid", "owner"):
            (self.dir / name).unlink(missing_ok=True)
        if self.orphaned:
            for f in self.dir.iterdir():
                f.unlink()
            self.dir.rmdir()


# ---------------------------------------------------------------- host side

@dataclass
class Guest:
    lab: str

    @property
    def dir(self) -> Path:
        return guest_dir(self.lab)

    @property
    def sock(self) -> Path:
        return self.dir / "agent.sock"

    def running(self) -> bool:
        return _pid_is(_read_pid(self.dir / "supervisor.pid"), b"dmvpnkit.labs.uml")

    def start(self, mem: str = "1G", owner: int | None = None) -> float:
        """Boot the guest (if not running); return the seconds it took. With `owner`, the
        guest powers off when that process dies."""
        t0 = time.monotonic()
        if self.running() and self.sock.exists():
            return 0.0
        self.stop()                     # whatever a crashed run left behind
        kernel.uml_env()                # build the shim here, where its error reaches the user
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "supervisor.log", "ab")
        if owner is not None:
            (self.dir / "owner").write_text(f"{owner} {_started(owner)}\n")
        sup = subprocess.Popen([sys.executable, "-m", "dmvpnkit.labs.uml", "supervise", self.lab, mem,
                                *([str(owner)] if owner is not None else [])],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               start_new_session=True, cwd="/")
        (self.dir / "supervisor.pid").write_text(str(sup.pid))
        while not self.sock.exists():
            if sup.poll() is not None or time.monotonic() - t0 > BOOT_TIMEOUT:
                tail = self._console_tail()
                self.stop()
                raise GuestError(f"UML lab kernel for {self.lab!r} did not come up "
                                 f"(supervisor exit {sup.poll()}); console tail:\n{tail}")
            time.sleep(0.05)
        return time.monotonic() - t0

    def _owner_file(self) -> tuple[int, str] | None:
        """(pid, start time) of the session this guest was started for, if recorded."""
        try:
            pid, started = (self.dir / "owner").read_text().split()
            return int(pid), started
        except (OSError, ValueError):
            return None

    def owner(self) -> int | None:
        """The pid of the live session this guest was started for (None: started
        without an owner, as `lab up` does, or for one that is gone)."""
        rec = self._owner_file()
        return rec[0] if rec is not None and _started(rec[0]) == rec[1] else None

    def orphaned(self) -> bool:
        """Started for an owner that is gone (its pid dead, or now someone else's), or
        left half made: no supervisor, and older than any boot takes."""
        rec = self._owner_file()
        if rec is not None:
            return _started(rec[0]) != rec[1]
        try:
            age = time.time() - self.dir.stat().st_mtime
        except OSError:
            return False
        return not self.running() and not (self.dir / "uml.pid").exists() and age > BOOT_TIMEOUT

    def _console_tail(self, n: int = 25) -> str:
        try:
            lines = (self.dir / "console.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no console log)"
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """Power the guest off and remove every trace; safe to call at any time."""
        sup = _read_pid(self.dir / "supervisor.pid")
        if self.sock.exists():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    s.connect(str(self.sock))
                    s.sendall(b'{"op": "poweroff"}\n')
            except OSError:
                pass
        deadline = time.monotonic() + 15
        while _pid_is(sup, b"dmvpnkit.labs.uml") and time.monotonic() < deadline:
            time.sleep(0.1)
        uml = _read_pid(self.dir / "uml.pid")
        for pid, needle in ((sup, b"dmvpnkit.labs.uml"), (uml, b"linux.uml")):
            if pid is not None and _pid_is(pid, needle):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.dir.exists():
            for f in self.dir.iterdir():
                f.unlink()
            self.dir.rmdir()

    def run(self, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None,
            stdout: BinaryIO | None = None, stderr: BinaryIO | None = None,
            stdin: BinaryIO | None = None, pty: bool = False) -> int:
        """Run a command in the guest, streaming its output; return its exit status."""
        out = stdout or sys.stdout.buffer
        err = stderr or sys.stderr.buffer
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(self.sock))
        except OSError as e:
            raise GuestError(f"lab kernel for {self.lab!r} is not running ({e.strerror})") from None
        req = {"op": "run", "id": 1, "argv": argv, "env": env or {}, "cwd": cwd or os.getcwd(), "pty": pty}
        s.sendall(json.dumps(req).encode() + b"\n")
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ, "guest")
        if stdin is not None:
            try:
                sel.register(stdin, selectors.EVENT_READ, "stdin")
            except PermissionError:     # a regular file or /dev/null: always readable, epoll refuses it
                while data := os.read(stdin.fileno(), STDIN_CHUNK):
                    s.sendall(json.dumps({"op": "stdin", "id": 1, "data": base64.b64encode(data).decode()}).encode()
                              + b"\n")
                s.sendall(json.dumps({"op": "stdin", "id": 1, "eof": True}).encode() + b"\n")
        buf = b""
        interrupts = 0
        try:
            while True:
                try:
                    events = sel.select()
                except KeyboardInterrupt:
                    # First Ctrl-C goes to the remote command; a second one kills it.
                    interrupts += 1
                    sig = signal.SIGINT if interrupts == 1 else signal.SIGKILL
                    s.sendall(json.dumps({"op": "signal", "id": 1, "sig": int(sig)}).encode() + b"\n")
                    continue
                for key, _ in events:
                    if key.data == "stdin" and stdin is not None:
                        data = os.read(stdin.fileno(), STDIN_CHUNK)
                        msg = ({"op": "stdin", "id": 1, "data": base64.b64encode(data).decode()} if data
                               else {"op": "stdin", "id": 1, "eof": True})
                        if not data:
                            sel.unregister(stdin)
                        s.sendall(json.dumps(msg).encode() + b"\n")
                        continue
                    chunk = s.recv(65536)
                    if not chunk:
                        raise GuestError(f"lab kernel for {self.lab!r} went away during {argv[:3]}")
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        msg = json.loads(line)
                        if "rc" in msg:
                            return int(msg["rc"])
                        if "data" in msg:
                            stream = out if msg["fd"] == 1 else err
                            stream.write(base64.b64decode(msg["data"]))
                            stream.flush()
        finally:
            s.close()


def reap_orphans() -> list[str]:
    """Stop every guest whose owner has died (a session killed before its supervisor
    could power the guest off, or whose supervisor was killed too); return their names."""
    gone = [d.name for d in sorted(GUEST_DIR.iterdir()) if Guest(d.name).orphaned()] if GUEST_DIR.is_dir() else []
    for name in gone:
        Guest(name).stop()
    return gone


def main(argv: list[str]) -> int:
    if argv[:1] == ["supervise"] and len(argv) in (3, 4):
        lab, mem = argv[1], argv[2]
        (guest_dir(lab) / "supervisor.pid").write_text(str(os.getpid()))
        return Supervisor(lab, mem, int(argv[3]) if len(argv) == 4 else None).run()
    if argv[:1] == ["run"] and len(argv) >= 5 and argv[2] == "--owner":
        # A command in guest GUEST (booted for OWNER_PID if it is not running) with this
        # process's stdio, cwd and environment: how an xdist worker (execnet's
        # `popen//python=...`) runs in a guest of its own, also when xdist restarts it.
        guest = Guest(argv[1])
        guest.start(owner=int(argv[3]))
        return guest.run(argv[4:], env=dict(os.environ), cwd=os.getcwd(), stdin=sys.stdin.buffer,
                         stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)
    print("usage: python -m dmvpnkit.labs.uml supervise LAB MEM [OWNER_PID] | run GUEST --owner PID ARGV...",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
