"""Reading settings from environment variables.

Each reader returns a safe default when the variable is unset and raises ImproperlyConfigured,
naming the variable, when it is set to something unusable: a typo must stop start-up, not
silently fall back to a default.
"""

import os
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no).")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_time_zone(name: str, default: str = "UTC") -> str:
    value = env_str(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not an IANA time zone (e.g. Europe/Madrid)."
        ) from None
    return value


def env_charset(name: str, default: str) -> str:
    """A charset Python decodes text in, ASCII-compatible (so that it can read 8-bit mail)."""
    value = env_str(name, default)
    ascii_bytes = bytes(range(32, 127))
    try:
        usable = ascii_bytes.decode(value, "replace") == ascii_bytes.decode()
    except (LookupError, ValueError, TypeError):
        usable = False
    if not usable:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not an ASCII-compatible text charset (e.g. windows-1252)."
        )
    return value


def env_database(name: str, default: str) -> dict[str, Any]:
    value = env_str(name, default)
    try:
        config = dict(dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True))
    except (ValueError, KeyError) as exc:
        reason = str(exc).split(". ")[0]
        raise ImproperlyConfigured(f"{name} is not a usable database URL: {reason}.") from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured(f"{name} has an unsupported scheme.")
    return config


def env_cache(name: str, default: str) -> dict[str, Any]:
    """The cache: a Redis URL (redis:// or rediss://), shared by every process; "local" or
    nothing, each process its own memory."""
    value = env_str(name, default)
    if value in ("", "local"):
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f'{name} must be a redis:// (or rediss://, unix://) URL, or "local".'
        )
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": value,
        "KEY_PREFIX": "vigil",
        # A cache that does not answer in time is skipped, not waited for.
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }


def env_secret_key(name: str, fallback_file) -> str:
    """The SECRET_KEY from the environment, or one kept in a private file for the embedded
    default, made once so sessions survive restarts without anyone setting a variable."""
    value = env_str(name)
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured(f"{name} must be at least 32 characters long.")
        return value
    if fallback_file.exists():
        return fallback_file.read_text().strip()
    from django.utils.crypto import get_random_string

    key = get_random_string(64)
    fallback_file.parent.mkdir(parents=True, exist_ok=True)
    fallback_file.touch(mode=0o600)
    fallback_file.write_text(key)
    return key


def env_fernet_keys(name: str, fallback_file) -> list[str]:
    """Fernet keys (comma-separated, newest first) from the environment, or one kept in a
    private file for the embedded default. A key that is not a Fernet key stops start-up."""
    import base64
    import binascii

    keys = env_list(name, [])
    if not keys:
        if not fallback_file.exists():
            fallback_file.parent.mkdir(parents=True, exist_ok=True)
            fallback_file.touch(mode=0o600)
            fallback_file.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
        keys = [fallback_file.read_text().strip()]
    for position, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            raise ImproperlyConfigured(
                f"{name}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')."
            )
    return keys
