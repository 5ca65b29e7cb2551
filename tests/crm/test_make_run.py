"""`make run`, the README's first command, started as a user would: it serves the site with a
clean log, and Ctrl-C (SIGINT to the terminal's process group) or TERM to make stops web, worker
and beat within 10 s, leaving no process behind. So does losing its terminal (closed, or an ssh
session gone), Ctrl-C on `make run | tee log` (tee dies first) or a kill -9 of its supervisor."""

import contextlib
import http.cookiejar
import os
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.processes import ROOT, Output

STARTUP_SECONDS = 600  # the first run on a machine creates .venv
STOP_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Terminal:
    """A pty for `make run` to run in, as a terminal window is. Output reads `stdout`, a pipe
    this copies the terminal's output into: the copy stops on demand, so that closing the
    master side really closes it (a read blocked on it in another thread would hold it)."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        read_fd, self._write_fd = os.pipe()
        self.stdout = open(read_fd, errors="replace")  # noqa: SIM115 (Output reads it to EOF)
        self._copying = threading.Event()
        self._thread = threading.Thread(target=self._copy, daemon=True)

    def start(self) -> None:
        os.close(self.slave)  # the session has its own
        self._copying.set()
        self._thread.start()

    def _copy(self) -> None:
        with open(self._write_fd, "wb", buffering=0) as sink:
            while self._copying.is_set():
                if not select.select([self.master], [], [], 0.1)[0]:
                    continue
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: nothing holds the terminal any more
                    return
                sink.write(data)

    def close(self) -> None:
        """What closing the window does: the master side goes, and the kernel hangs up."""
        if self._copying.is_set():
            self._copying.clear()
            self._thread.join()
            os.close(self.master)


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class MakeRun:
    """`make run PORT=…` in its own session (as in a terminal), its output kept line by line:
    read from a pipe, from a terminal (a pty it controls) or through `| tee`."""

    def __init__(self, var_dir: Path, through: str = "pipe"):
        self.var_dir = var_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST", "MAKE"))
            and k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MFLAGS")
        }
        env["VIGIL_VAR_DIR"] = str(var_dir)
        make = ["make", "--no-print-directory", "run", f"PORT={self.port}"]
        self.terminal = Terminal() if through == "terminal" else None
        if self.terminal:
            # A shell leads a session whose controlling terminal is the pty, as in a terminal
            # window; a command after make keeps it from exec'ing make in its place.
            make = ["setsid", "--ctty", "sh", "-c", '"$@"; echo "make ended: $?"', "sh", *make]
        elif through == "tee":
            # As a shell runs `make run | tee log`: make and tee in one process group.
            log = var_dir / f"make-run-{self.port}.log"
            make = ["sh", "-c", f'{" ".join(make)} 2>&1 | tee "$1"', "sh", str(log)]
        stdio = self.terminal.slave if self.terminal else None
        self.proc = subprocess.Popen(
            make,
            cwd=ROOT,
            env=env,
            stdin=stdio if stdio else subprocess.DEVNULL,
            stdout=stdio if stdio else subprocess.PIPE,
            stderr=stdio if stdio else subprocess.STDOUT,
            text=True,
            start_new_session=not self.terminal,  # setsid makes the terminal's session
            # As in a terminal, whatever started the tests: a shell that runs them in the
            # background (`make test &`) leaves Ctrl-C ignored, and every child inherits that.
            preexec_fn=_default_signals,
        )
        if self.terminal:
            self.terminal.start()
        self.output = Output(self.terminal or self.proc)

    def wait_until_up(self) -> None:
        self.wait_for_page("/login/", timeout=STARTUP_SECONDS)
        self.output.seen(r"celery@\S+ ready", timeout=60)
        self.output.seen(r"beat: Starting", timeout=60)

    def wait_for_page(self, path: str, timeout: float) -> None:
        """Once runserver says it is up, the page answers 200 (asked again while it binds)."""
        self.output.seen(r"Quit the server with", timeout=timeout)
        for _ in range(50):
            try:
                with urllib.request.urlopen(self.url + path, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.1)  # paces the retries; make ending is a failure
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"{path} never answered 200:\n{''.join(self.output.lines[-80:])}")

    def processes(self) -> list[tuple[int, list[bytes]]]:
        """(pid, argv) of every live process that carries this run's VIGIL_VAR_DIR, whoever
        its parent is."""
        marker = f"VIGIL_VAR_DIR={self.var_dir}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    found.append((int(proc.name), (proc / "cmdline").read_bytes().split(b"\0")))
            except OSError:
                continue
        return found

    def processes_left(self) -> list[str]:
        return [f"{pid} {b' '.join(argv)!r}" for pid, argv in self.processes()]

    def children_of(self, parent: int) -> list[int]:
        """This run's processes whose parent is `parent`."""
        pids = []
        for pid, _ in self.processes():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                if re.search(rf"^PPid:\s+{parent}$", status, re.MULTILINE):
                    pids.append(pid)
        return pids

    def pids(self, *argv: str) -> list[int]:
        """This run's processes whose command line starts with `argv`."""
        start = [arg.encode() for arg in argv]
        return [pid for pid, args in self.processes() if args[: len(start)] == start]

    def processes_left_within(self, seconds: float) -> list[str]:
        """Waits up to `seconds` for every process of the run to end; returns those still
        running then."""
        deadline = time.monotonic() + seconds
        while (left := self.processes_left()) and (remaining := deadline - time.monotonic()) > 0:
            ended_within(int(left[0].split()[0]), remaining)
        return left

    def kill_all(self) -> None:
        for entry in self.processes_left():
            with contextlib.suppress(OSError):
                os.kill(int(entry.split()[0]), signal.SIGKILL)


def ended_within(pid: int, seconds: float) -> bool:
    """Waits on the process itself (a pidfd is readable once it has ended)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], seconds)[0])
    finally:
        os.close(pidfd)


def status(opener, url: str, data: dict | None = None) -> int:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, data=body, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    """One SQLite database and broker folder for this module's runs, apart from everyone's."""
    return tmp_path_factory.mktemp("make-run-var")


@pytest.mark.timeout(STARTUP_SECONDS + 120)
@pytest.mark.parametrize("stop", ["ctrl-c", "term-to-make"])
def test_make_run_serves_with_a_clean_log_and_stops_all_three_processes(var_dir, stop):
    run = MakeRun(var_dir)
    try:
        run.wait_until_up()

        # A browser asks every page, the admin's too, for /favicon.ico.
        cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))
        with opener.open(run.url + "/favicon.ico", timeout=10) as response:
            assert response.headers["Content-Type"] == "image/x-icon"
            assert response.read(4) == b"\0\0\1\0"
        assert status(opener, run.url + "/admin/login/") == 200

        # A routine 403: a rep opening the managers' page of locked users.
        assert status(opener, run.url + "/login/") == 200
        [csrf] = [c.value for c in cookies if c.name == "csrftoken"]
        sign_in = {"username": "rep11", "password": "vigil-demo", "csrfmiddlewaretoken": csrf}
        assert status(opener, run.url + "/login/", sign_in) == 200
        assert "sessionid" in {c.name for c in cookies}
        assert status(opener, run.url + "/team/locked/") == 403
        run.output.seen(r"Forbidden \(Permission denied\): /team/locked/", timeout=10)

        started = time.monotonic()
        if stop == "ctrl-c":
            os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        else:
            run.proc.send_signal(signal.SIGTERM)  # make alone, as a supervisor would
        run.proc.wait(timeout=STOP_SECONDS + 20)
        stopped_after = time.monotonic() - started
        log = run.output.rest(timeout=5)

        assert stopped_after < STOP_SECONDS, log[-4000:]
        assert run.processes_left() == []
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", run.port), timeout=2),
        ):
            pass
        for name in ("web", "worker", "beat"):
            assert re.search(rf"{name}\.1 +stopped", log), log[-4000:]
        assert "SIGKILL" not in log
        assert "Segmentation fault" not in log
        assert "No hostname was supplied" not in log
        assert "Traceback" not in log
        assert "Not Found: /favicon.ico" not in log
        assert not re.search(r'"GET /favicon\.ico HTTP/1\.1" 404', log)
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        run.kill_all()


@contextlib.contextmanager
def make_run(var_dir, through):
    """A MakeRun, up and serving; whatever the test does, nothing of it outlives the test."""
    run = MakeRun(var_dir, through)
    try:
        run.wait_until_up()
        yield run
    finally:
        if run.terminal:
            run.terminal.close()
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
        run.proc.wait()
        run.kill_all()


@pytest.mark.timeout(STARTUP_SECONDS + 120)
def test_closing_its_terminal_stops_all_three_processes(var_dir):
    """A closed window or a lost ssh session: the terminal hangs up, its shell dies of SIGHUP,
    the kernel sends SIGHUP to the command it ran, and every write to the terminal fails."""
    with make_run(var_dir, through="terminal") as run:
        run.terminal.close()

        assert run.processes_left_within(STOP_SECONDS) == []


@pytest.mark.timeout(STARTUP_SECONDS + 120)
def test_ctrl_c_on_make_run_piped_to_tee_stops_all_three_processes(var_dir):
    """Ctrl-C reaches tee too, which dies first: stopping, the supervisor writes to a pipe
    nobody reads any more."""
    with make_run(var_dir, through="tee") as run:
        [tee] = run.pids("tee")
        os.kill(tee, signal.SIGINT)
        assert ended_within(tee, STOP_SECONDS)
        os.killpg(run.proc.pid, signal.SIGINT)

        assert run.processes_left_within(STOP_SECONDS) == []


@pytest.mark.timeout(STARTUP_SECONDS + 120)
def test_killing_the_supervisor_outright_stops_all_three_processes(var_dir):
    """kill -9 of what make runs: nothing can catch that, but the kernel tells its children."""
    with make_run(var_dir, through="pipe") as run:
        [supervisor] = run.children_of(run.proc.pid)
        os.kill(supervisor, signal.SIGKILL)

        assert run.processes_left_within(STOP_SECONDS) == []
