"""Settings come from the environment; a bad value stops start-up with one clear line."""

import os
import subprocess

import pytest
from django.core.exceptions import ImproperlyConfigured

from crm import env
from tests.processes import BIN, ROOT, manage


@pytest.mark.parametrize(
    ("reader", "name", "value", "message"),
    [
        (lambda: env.env_bool("DEBUG"), "DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        (lambda: env.env_int("EMAIL_PORT", 25, minimum=1), "EMAIL_PORT", "0", "at least 1"),
        (lambda: env.env_int("EMAIL_PORT", 25), "EMAIL_PORT", "twenty", "not a whole number"),
        (lambda: env.env_time_zone("TIME_ZONE"), "TIME_ZONE", "Mars/Olympus", "IANA time zone"),
        (lambda: env.env_database("DATABASE_URL", ""), "DATABASE_URL", "foo://x", "database URL"),
        (lambda: env.env_cache("VIGIL_CACHE_URL", ""), "VIGIL_CACHE_URL", "memcached://x", "redis"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch, reader, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        reader()
    assert name in str(caught.value)


def test_unset_variables_fall_back_to_safe_defaults(monkeypatch, tmp_path):
    for name in ("DEBUG", "TIME_ZONE", "EMAIL_PORT", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)

    assert env.env_bool("DEBUG") is False
    assert env.env_time_zone("TIME_ZONE") == "UTC"
    assert env.env_int("EMAIL_PORT", 25) == 25
    key = env.env_secret_key("SECRET_KEY", tmp_path / "secret_key")
    assert len(key) == 64 and env.env_secret_key("SECRET_KEY", tmp_path / "secret_key") == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_cache_is_the_redis_broker_else_process_memory(monkeypatch):
    monkeypatch.delenv("VIGIL_CACHE_URL", raising=False)

    assert env.env_cache("VIGIL_CACHE_URL", "")["BACKEND"].endswith("LocMemCache")
    shared = env.env_cache("VIGIL_CACHE_URL", "redis://redis:6379/0")
    assert shared["BACKEND"].endswith("RedisCache") and shared["LOCATION"] == "redis://redis:6379/0"
    monkeypatch.setenv("VIGIL_CACHE_URL", "local")
    assert env.env_cache("VIGIL_CACHE_URL", "redis://redis:6379/0")["BACKEND"].endswith(
        "LocMemCache"
    )


def test_a_short_secret_key_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be at least 32"):
        env.env_secret_key("SECRET_KEY", tmp_path / "secret_key")


@pytest.mark.parametrize(
    ("name", "value"),
    [("TIME_ZONE", "Mars/Olympus"), ("DATABASE_URL", "nosuchdb://x"), ("DEBUG", "perhaps")],
)
def test_manage_py_with_a_bad_variable_prints_one_line_and_exits_2(name, value, tmp_path):
    env_vars = {
        **os.environ,
        "VIGIL_VAR_DIR": str(tmp_path),
        name: value,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
    }
    result = manage("check", env=env_vars)

    assert result.returncode == 2
    assert result.stderr.startswith(f"vigil: configuration error: {name}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_celery_with_a_bad_variable_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run(
        [str(BIN / "celery"), "-A", "crm", "inspect", "ping"],
        env={
            **os.environ,
            "VIGIL_VAR_DIR": str(tmp_path),
            "EMAIL_PORT": "smtp",
            "DJANGO_SETTINGS_MODULE": "crm.settings",
        },
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )

    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "vigil: configuration error: EMAIL_PORT='smtp' is not a whole number."
    )
