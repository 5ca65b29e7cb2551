"""requirements.txt is complete by itself: installed alone into a fresh virtualenv (no test tool
to bring a missing package along), it runs a worker and Beat on Redis and PostgreSQL, as the
production processes do."""

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from crm.models import JobRun
from tests.processes import ROOT, celery_worker_with_beat

BROKER = "redis://127.0.0.1:6379/15"


def runtime_venv() -> Path:
    """A virtualenv with requirements.txt alone, kept in the user's cache and keyed by the
    file's hash: built once per version of the file, shared by concurrent runs."""
    requirements = (ROOT / "requirements.txt").read_bytes()
    key = hashlib.sha256(requirements + sys.version.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vigil"
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / f"runtime-venv-{key}"
    with open(cache / f"runtime-venv-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
            installed = subprocess.run(
                [
                    str(venv / "bin" / "pip"),
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                    str(ROOT / "requirements.txt"),
                ],
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert installed.returncode == 0, installed.stderr[-3000:]
            (venv / ".complete").touch()
    return venv


@pytest.mark.timeout(1200)
@pytest.mark.django_db(transaction=True)
def test_requirements_alone_run_a_worker_and_beat_on_redis(subprocess_env, tmp_path):
    venv = runtime_venv()
    assert not (venv / "bin" / "pytest").exists()  # nothing of the dev tools came along

    redis.Redis.from_url(BROKER).flushdb()
    env = {k: v for k, v in subprocess_env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(
        # The production settings, on this test's database and Redis.
        DJANGO_SETTINGS_MODULE="crm.settings",
        CELERY_BROKER_URL=BROKER,
        VIGIL_VAR_DIR=str(tmp_path),
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    with celery_worker_with_beat(env, tmp_path, bin_dir=venv / "bin") as output:
        output.wait_for(r"Connected to redis://\S*127\.0\.0\.1:6379/15", timeout=60)
        # Beat's start-up catch-up queues one run per job through Redis; the worker runs them.
        while not JobRun.objects.filter(status=JobRun.Status.SUCCEEDED).exists():
            output.wait_for(r"Task crm\.run_scheduled_job\[.*\] succeeded", timeout=90)

    assert set(JobRun.objects.values_list("status", flat=True)) == {JobRun.Status.SUCCEEDED}
    assert not any("Error" in line for line in output.lines), "".join(output.lines[-40:])
