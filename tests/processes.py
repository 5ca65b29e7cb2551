"""Running Vigil's own commands in child processes, as an operator or a server would."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connections

from crm import locks

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def manage(*args, env=None, input=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        input=input,
        cwd=ROOT,
        timeout=180,
    )


@contextmanager
def celery(env, *args, bin_dir=BIN):
    """A real `celery -A crm ARGS…` (from the virtualenv of `bin_dir`), its output collected,
    stopped (and its children) when the block ends."""
    proc = subprocess.Popen(
        [str(Path(bin_dir) / "celery"), "-A", "crm", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield Output(proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


QUIET = ("--without-gossip", "--without-mingle", "--without-heartbeat")


def celery_worker_with_beat(env, workdir, bin_dir=BIN):
    """A real `celery worker --beat`."""
    return celery(
        env,
        "worker",
        "--beat",
        "--loglevel=INFO",
        "--concurrency=1",
        *QUIET,
        f"--schedule={workdir}/celerybeat-schedule",
        bin_dir=bin_dir,
    )


class Output:
    """Collects a child process's output lines on a thread, so a test can wait for a line."""

    def __init__(self, proc):
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def seen(self, pattern, timeout):
        """Like wait_for, but a line read already counts too."""
        if not any(re.search(pattern, line) for line in self.lines):
            self.wait_for(pattern, timeout)

    def _read(self, timeout):
        """Yield each new line (also kept in `lines`) until `timeout` seconds pass or the
        process closes its output."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)
            yield line

    def rest(self, timeout):
        """All the output, once the process has closed it (within `timeout` seconds)."""
        for _ in self._read(timeout):
            pass
        return "".join(self.lines)

    def wait_for(self, pattern, timeout):
        """Return the first new line matching `pattern`; fail with the output so far when
        `timeout` seconds pass first or the process ends."""
        regex = re.compile(pattern)
        for line in self._read(timeout):
            if regex.search(line):
                return line
        tail = "".join(self.lines[-80:])
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n{tail}")


def at_once(func, *args, runners=2):
    """Call `func(*args)` from `runners` threads released together, each with its own database
    connection, as runners on several hosts would; returns what each returned."""
    start = threading.Barrier(runners)
    outcomes = []

    def run():
        try:
            start.wait(10)
            outcomes.append(func(*args))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def wait_until_free(job, milliseconds=10_000):
    """Block until the server has ended a killed holder's session (it does so as soon as it
    reads the closed socket), by waiting on the lock itself."""
    key = locks.advisory_key(job)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{milliseconds}ms"])
        cursor.execute("SELECT pg_advisory_lock(%s, %s)::text", key)
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        cursor.execute("SELECT set_config('lock_timeout', '0', false)")


def shell(env, script):
    """`manage.py shell -c SCRIPT` in a child process, its stdin a pipe (a script can wait on
    it) and its output collected; returns (the process, its Output)."""
    child = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", script],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return child, Output(child)


def killed_once(env, script, line, timeout=60):
    """Run SCRIPT in a child process and kill it (SIGKILL) as soon as it prints LINE."""
    child, output = shell(env, script)
    try:
        output.wait_for(line, timeout=timeout)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
