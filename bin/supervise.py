#!/usr/bin/env python
"""`make run`'s supervisor: starts the processes a Procfile lists, prints their output line by
line after their name, and stops them together. Linux only; the standard library only.

    bin/supervise.py [PROCFILE]      (default: Procfile)

Each process runs in a session of its own (its own process group, no terminal), so that only
the supervisor stops it, and all of it: runserver's reloader and the server it starts, say.
Whatever ends the supervisor, the processes end with it:
- Ctrl-C, TERM, or HUP (its terminal closed, an ssh session lost): each group gets TERM, and
  KILL if it has not stopped KILL_WAIT seconds later;
- its output gone (the `tee` of `make run | tee log` died, its terminal closed): the same,
  since nobody would see what they do any more;
- one process ending: the others are stopped too;
- the supervisor killed outright (kill -9): the kernel sends each process TERM
  (PR_SET_PDEATHSIG).
"""

import contextlib
import ctypes
import os
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

KILL_WAIT = 5.0  # seconds a process has, after TERM, before KILL
LAST_LINES_WAIT = 2.0  # seconds to read what an ended process still had in its pipe
PR_SET_PDEATHSIG = 1
ENTRY = re.compile(r"([A-Za-z0-9_-]+):\s*(\S.*)")

Event = tuple[str, int | str]  # ("signal", signum) | ("output lost", 0) | ("ended", name)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    reader: threading.Thread = field(init=False)


class Output:
    """The supervisor's stdout, written by every child's reader thread and the main loop. A
    failed write means nobody reads it any more: it is reported once, and later lines dropped
    (the children's pipes are still drained, or they would block)."""

    def __init__(self, events: "queue.SimpleQueue[Event]", width: int) -> None:
        self.events = events
        self.width = max(width, len("system"))
        self.lock = threading.Lock()
        self.lost = False

    def line(self, name: str, text: bytes) -> None:
        stamp = time.strftime("%H:%M:%S").encode()
        with self.lock:
            if self.lost:
                return
            try:
                sys.stdout.buffer.write(
                    b"%s %s | %s" % (stamp, name.ljust(self.width).encode(), text)
                )
                sys.stdout.buffer.flush()
            except OSError:
                self.lost = True
                self.events.put(("output lost", 0))

    def system(self, text: str) -> None:
        self.line("system", f"{text}\n".encode())


def watch_output(events: "queue.SimpleQueue[Event]") -> None:
    """Report our output gone as soon as it is, not at the next line a child prints: poll()
    flags a pipe whose reader died (POLLERR) and a terminal that hung up (POLLHUP) even when
    asked for no event. A regular file (nohup.out) never is."""
    poller = select.poll()
    poller.register(sys.stdout.fileno(), 0)
    poller.poll()
    events.put(("output lost", 0))


def read_procfile(path: Path) -> dict[str, str]:
    """{"web.1": command, …}, in the Procfile's order; a line that is not `name: command` (or
    a comment) is an error."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = ENTRY.fullmatch(line)
        if match is None or f"{match[1]}.1" in entries:
            sys.exit(f"supervise: {path}:{number}: not a new `name: command` line")
        entries[f"{match[1]}.1"] = match[2]
    if not entries:
        sys.exit(f"supervise: {path} lists no process")
    return entries


def die_with_this_process() -> Callable[[], None]:
    """What a child runs before its command: TERM from the kernel when the supervisor dies.
    It is set on the child and kept through exec; PR_SET_PDEATHSIG watches the thread that
    forked, so children are started from the main thread only."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded here: the child only calls it
    supervisor = os.getpid()

    def before_exec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != supervisor:  # the supervisor died before prctl: nobody would stop us
            os._exit(1)

    return before_exec


def start(name: str, command: str, before_exec: Callable[[], None]) -> Child:
    proc = subprocess.Popen(  # noqa: S603 (the command is our Procfile's)
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # No other thread runs yet (every thread starts once the children have): a
        # preexec_fn is safe then.
        preexec_fn=before_exec,
    )
    return Child(name, proc)


def pump(name: str, stream: IO[bytes], output: Output) -> None:
    for text in iter(stream.readline, b""):
        output.line(name, text)


def watch(child: Child, events: "queue.SimpleQueue[Event]") -> None:
    """Report that the child ended without reaping it: until the main loop reaps it, its
    zombie keeps its process group id, which no other process can then take."""
    os.waitid(os.P_PID, child.proc.pid, os.WEXITED | os.WNOWAIT)
    events.put(("ended", child.name))


def signal_group(child: Child, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.proc.pid, signum)


def reap(child: Child, output: Output) -> int:
    """The child's exit code (128 + signal when a signal ended it), once nothing of its
    group is left: whatever it started and left behind is killed."""
    signal_group(child, signal.SIGKILL)
    child.reader.join(LAST_LINES_WAIT)
    code = child.proc.wait()
    output.system(f"{child.name} stopped (rc={code})")
    return 128 - code if code < 0 else code


def listen(events: "queue.SimpleQueue[Event]") -> None:
    """Ctrl-C, TERM and HUP become events of the main loop. A signal ignored when we started
    stays ignored (`nohup make run` means to outlive the terminal)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, lambda number, _frame: events.put(("signal", number)))


def supervise(
    children: dict[str, Child], events: "queue.SimpleQueue[Event]", output: Output
) -> int:
    running = dict(children)
    code: int | None = None
    stopping = False
    kill_at: float | None = None  # while the TERM sent may not have ended them all
    while running:
        timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
        try:
            kind, value = events.get(timeout=timeout)
        except queue.Empty:
            for child in running.values():
                output.system(f"sending SIGKILL to {child.name} (pid {child.proc.pid})")
                signal_group(child, signal.SIGKILL)
            kill_at = None
            continue
        if kind == "signal":
            signum = int(value)
            output.system(f"{signal.Signals(signum).name} received")
            code = 128 + signum if code is None else code
        elif kind == "output lost":
            code = 1 if code is None else code
        else:
            ended = reap(running.pop(str(value)), output)
            code = ended if code is None else code
        if not stopping:
            stopping, kill_at = True, time.monotonic() + KILL_WAIT
            for child in running.values():
                output.system(f"sending SIGTERM to {child.name} (pid {child.proc.pid})")
                signal_group(child, signal.SIGTERM)
    return code or 0


def main() -> int:
    entries = read_procfile(Path(sys.argv[1] if len(sys.argv) > 1 else "Procfile"))
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()  # put() is safe in a signal handler
    listen(events)
    output = Output(events, max(map(len, entries)))
    before_exec = die_with_this_process()
    children = {name: start(name, command, before_exec) for name, command in entries.items()}
    threading.Thread(target=watch_output, args=(events,), daemon=True).start()
    for child in children.values():
        output.system(f"{child.name} started (pid={child.proc.pid})")
    for child in children.values():
        child.reader = threading.Thread(
            target=pump, args=(child.name, child.proc.stdout, output), daemon=True
        )
        child.reader.start()
        threading.Thread(target=watch, args=(child, events), daemon=True).start()
    return supervise(children, events, output)


if __name__ == "__main__":
    sys.exit(main())
