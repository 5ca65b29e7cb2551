"""`make run`, the README's first command, started as a user would: it serves the site with a
clean log, and Ctrl-C (SIGINT to the terminal's process group) or TERM to make stops web, worker
and beat within 10 s, leaving no process behind."""

import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
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


class MakeRun:
    """`make run PORT=…` in its own session (as in a terminal), its output kept line by line."""

    def __init__(self, var_dir: Path):
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
        self.proc = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"PORT={self.port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.output = Output(self.proc)

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

    def processes_left(self) -> list[str]:
        """Every live process that carries this run's VIGIL_VAR_DIR, whoever its parent is."""
        marker = f"VIGIL_VAR_DIR={self.var_dir}".encode()
        left = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    left.append(f"{proc.name} {(proc / 'cmdline').read_bytes()!r}")
            except OSError:
                continue
        return left

    def kill_all(self) -> None:
        for entry in self.processes_left():
            with contextlib.suppress(OSError):
                os.kill(int(entry.split()[0]), signal.SIGKILL)


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
        run.wait_for_page("/login/", timeout=STARTUP_SECONDS)
        run.output.seen(r"celery@\S+ ready", timeout=60)
        run.output.seen(r"beat: Starting", timeout=60)

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
