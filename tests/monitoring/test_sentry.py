"""Sentry is optional: off unless SENTRY_DSN is set, and then it sends no personal data."""

import os

import sentry_sdk
from django.conf import settings

from tests.processes import manage


def test_sentry_is_off_by_default():
    assert settings.SENTRY_DSN == ""
    assert not sentry_sdk.get_client().is_active()


def test_sentry_is_on_when_a_dsn_is_set():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DJANGO_SETTINGS_MODULE="crm.settings_test", SENTRY_DSN="https://key@127.0.0.1:9/1")
    code = (
        "import sentry_sdk; c = sentry_sdk.get_client();"
        " print(c.is_active(), c.options['send_default_pii'], c.options['include_local_variables'])"
    )

    result = manage("shell", "-c", code, env=env)

    assert result.stdout.splitlines()[-1].split() == ["True", "False", "False"], result.stderr
