"""In-guest agent: runs commands for the host over the UML console line.

One JSON object per line, both ways; output bytes travel base64-encoded so the line
discipline never sees them raw. Host -> guest:
  {"op": "run", "id": 7, "argv": [...], "env": {...}, "cwd": "...", "pty": false}
  {"op": "stdin", "id": 7, "data": "<b64>"}   {"op": "stdin", "id": 7, "eof": true}
  {"op": "signal", "id": 7, "sig": 2}         {"op": "poweroff"}
Guest -> host:
  {"ready": true}   {"id": 7, "fd": 1, "data": "<b64>"}   {"id": 7, "rc": 0}
  {"ack": 123}: a line of that many bytes was read (the host's flow control, below)
Every command runs in its own process group so a signal reaches all it started.

Flow control: UML's console stops reading its host side when the guest's tty buffer
(4 KiB) fills and may never resume, so the supervisor keeps at most a window of bytes
unacknowledged, and this agent never blocks: it reads the line at once, acks each line,
and feeds a command's stdin as the pipe takes it.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import selectors
import signal
import subprocess
import sys
import termios
import time
import tty
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Job:
    proc: subprocess.Popen[bytes]
    fds: dict[int, int] = field(default_factory=dict)   # our read fd -> stream number
    stdin_fd: int | None = None
    exited_at: float | None = None
    pending: bytearray = field(default_factory=bytearray)     # stdin not yet taken by the pipe
    close_after: bool = False                                  # eof came: close once pending is out


class Agent:
    def __init__(self, line: str):
        self.fd = os.open(line, os.O_RDWR | os.O_NOCTTY)
        if os.isatty(self.fd):
            tty.setraw(self.fd, termios.TCSANOW)
        self.sel = selectors.DefaultSelector()
        self.jobs: dict[int, _Job] = {}
        self.buf = b""
        self.running = True

    def send(self, msg: dict[str, Any]) -> None:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        while data:
            n = os.write(self.fd, data)
            data = data[n:]

    def serve(self) -> None:
        self.sel.register(self.fd, selectors.EVENT_READ, None)
        self.send({"ready": True, "pid": os.getpid()})
        while self.running or self.jobs:
            for key, _ in self.sel.select(timeout=0.2):
                if key.data is None:
                    self._read_line()
                elif key.data[0] == "stdin":
                    self._flush(key.data[1])
                else:
                    self._read_output(*key.data)
            self._reap()

    def _read_line(self) -> None:
        chunk = os.read(self.fd, 65536)
        if not chunk:
            # The supervisor is gone (killed): nobody can read what the jobs print or
            # stop them later, so they end now, and the guest powers off (uml_init.sh).
            self._kill_jobs()
            self.jobs.clear()
            self.running = False
            self.sel.unregister(self.fd)
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.send({"ack": len(line) + 1})
            if line.strip():
                try:
                    self._handle(json.loads(line))
                except (ValueError, KeyError, TypeError) as e:
                    self.send({"error": f"bad request {line[:200]!r}: {e}"})

    def _handle(self, msg: dict[str, Any]) -> None:
        op = msg["op"]
        if op == "run":
            self._start(msg)
        elif op == "stdin":
            job = self.jobs.get(msg["id"])
            if job and job.stdin_fd is not None:
                if job.stdin_fd in job.fds:
                    # A pty's master is its output too (and interactive): written as it
                    # comes; end of input is the EOF character.
                    os.write(job.stdin_fd, b"\x04" if msg.get("eof") else base64.b64decode(msg["data"]))
                elif msg.get("eof"):
                    job.close_after = True
                    self._flush(msg["id"])
                else:
                    job.pending += base64.b64decode(msg["data"])
                    self._flush(msg["id"])
        elif op == "signal":
            job = self.jobs.get(msg["id"])
            if job:
                try:
                    os.killpg(job.proc.pid, int(msg["sig"]))
                except ProcessLookupError:
                    pass
        elif op == "poweroff":
            self._kill_jobs()
            self.running = False
        else:
            self.send({"error": f"unknown op {op!r}"})

    def _flush(self, jid: int) -> None:
        """Give a command's stdin pipe what it takes now; wait for it to be writable for the rest."""
        job = self.jobs.get(jid)
        if job is None or job.stdin_fd is None:
            return
        fd = job.stdin_fd
        try:
            while job.pending:
                del job.pending[:os.write(fd, job.pending)]
        except BlockingIOError:
            pass
        except OSError:                 # the command closed its stdin: what it did not read is dropped
            job.pending.clear()
        waiting = fd in self.sel.get_map()
        if job.pending and not waiting:
            self.sel.register(fd, selectors.EVENT_WRITE, ("stdin", jid))
        elif not job.pending:
            if waiting:
                self.sel.unregister(fd)
            if job.close_after:
                os.close(fd)
                job.stdin_fd = None

    def _kill_jobs(self) -> None:
        for job in self.jobs.values():
            try:
                os.killpg(job.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _start(self, msg: dict[str, Any]) -> None:
        jid = msg["id"]
        env = {**os.environ, **msg.get("env", {}), "DMVPNKIT_IN_GUEST": "1"}
        try:
            if msg.get("pty"):
                master, slave = pty.openpty()
                proc = subprocess.Popen(msg["argv"], cwd=msg.get("cwd"), env=env, stdin=slave,
                                        stdout=slave, stderr=slave, start_new_session=True)
                os.close(slave)
                job = _Job(proc, {master: 1}, master)
            else:
                # Raw pipe ends this agent owns alone: os.close() on an fd that a Popen file
                # object also closes (when it is collected) would close someone else's
                # reused fd later.
                r_out, w_out = os.pipe()
                r_err, w_err = os.pipe()
                r_in, w_in = os.pipe()
                try:
                    proc = subprocess.Popen(msg["argv"], cwd=msg.get("cwd"), env=env, stdin=r_in, stdout=w_out,
                                            stderr=w_err, start_new_session=True)
                except OSError:
                    for fd in (r_out, r_err, w_in):
                        os.close(fd)
                    raise
                finally:
                    for fd in (w_out, w_err, r_in):
                        os.close(fd)
                os.set_blocking(w_in, False)
                job = _Job(proc, {r_out: 1, r_err: 2}, w_in)
        except OSError as e:
            self.send({"id": jid, "fd": 2, "data": base64.b64encode(f"dmvpnkit agent: {e}\n".encode()).decode()})
            self.send({"id": jid, "rc": 127})
            return
        self.jobs[jid] = job
        for rfd in job.fds:
            os.set_blocking(rfd, False)
            self.sel.register(rfd, selectors.EVENT_READ, (jid, rfd))

    def _read_output(self, jid: int, rfd: int) -> None:
        job = self.jobs[jid]
        try:
            data = os.read(rfd, 65536)
        except BlockingIOError:
            return
        except OSError:     # a pty master reads EIO once the child side is gone
            data = b""
        if data:
            self.send({"id": jid, "fd": job.fds[rfd], "data": base64.b64encode(data).decode()})
            return
        self.sel.unregister(rfd)
        del job.fds[rfd]
        if rfd != job.stdin_fd:
            os.close(rfd)

    def _reap(self) -> None:
        now = time.monotonic()
        for jid, job in list(self.jobs.items()):
            if job.proc.poll() is None:
                continue
            job.exited_at = job.exited_at or now
            # Daemons a command started may still hold its pipes: after the command
            # itself exits, give output 0.5 s to drain, then report the exit status.
            if job.fds and now - job.exited_at > 0.5:
                for rfd in list(job.fds):
                    self.sel.unregister(rfd)
                    del job.fds[rfd]
                    if rfd != job.stdin_fd:
                        os.close(rfd)
            if not job.fds:
                if job.stdin_fd is not None:
                    if job.stdin_fd in self.sel.get_map():
                        self.sel.unregister(job.stdin_fd)
                    try:
                        os.close(job.stdin_fd)
                    except OSError:
                        pass
                del self.jobs[jid]
                self.send({"id": jid, "rc": job.proc.returncode})


def main() -> None:
    Agent(sys.argv[1]).serve()


if __name__ == "__main__":
    main()
