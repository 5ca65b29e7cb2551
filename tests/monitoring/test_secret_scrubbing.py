"""No secret is stored with an error event: not in its context, its message or its traceback.
What is secret is what Django's SafeExceptionReporterFilter says is."""

import json
import logging

import pytest
from django.forms.models import model_to_dict

from monitoring.models import ErrorEvent
from monitoring.scrubbing import SUBSTITUTE

SECRETS = {
    "password": "hunter2-in-the-form",
    "token": "qs-token-5f1e9a",
    "authorization": "bearer-token-9c2d77",
    "api key header": "x-api-key-41b0c3",
    "csrf cookie": "csrf-cookie-3e8f1a2b",
    "other cookie": "cookie-value-77aa",
}


def stored(event: ErrorEvent) -> str:
    return json.dumps(model_to_dict(event), default=str)


@pytest.mark.django_db
@pytest.mark.urls("tests.monitoring.urls")
def test_a_request_carrying_every_kind_of_secret_is_stored_without_them(client, rep):
    client.force_login(rep)
    session_id = client.session.session_key
    client.cookies["csrftoken"] = SECRETS["csrf cookie"]
    client.cookies["remember_me"] = SECRETS["other cookie"]
    client.raise_request_exception = False

    response = client.post(
        f"/test/fails/?token={SECRETS['token']}&page=2",
        {"password": SECRETS["password"], "amount": "12.50"},
        headers={
            "Authorization": f"Bearer {SECRETS['authorization']}",
            "X-Api-Key": SECRETS["api key header"],
        },
    )

    assert response.status_code == 500
    event = ErrorEvent.objects.get()
    text = stored(event)
    for kind, value in {**SECRETS, "session id": session_id}.items():
        assert value not in text, f"the {kind} was stored"
    assert SUBSTITUTE in event.message
    assert event.context["request"] == {
        "method": "POST",
        "url": f"/test/fails/?token={'%2A' * len(SUBSTITUTE)}&page=2",
        "user_id": rep.pk,
    }


@pytest.mark.django_db
def test_settings_marked_secret_are_cut_out_of_messages_and_tracebacks(settings):
    settings.PAYMENTS_API_KEY = "payments-key-0a9b8c7d"
    settings.VIGIL_MAIL_PROVIDERS = {
        "google": {**settings.VIGIL_MAIL_PROVIDERS["google"], "client_secret": "g-client-5ecr3t"}
    }
    log = logging.getLogger("tests.monitoring.settings")

    try:
        raise ConnectionError(f"refused with {settings.PAYMENTS_API_KEY}")
    except ConnectionError:
        log.exception("provider said %s, key %s", "g-client-5ecr3t is invalid", settings.SECRET_KEY)

    text = stored(ErrorEvent.objects.get())
    for value in ("payments-key-0a9b8c7d", "g-client-5ecr3t", settings.SECRET_KEY):
        assert value not in text
    assert "ConnectionError: refused with ********************" in text
