"""The ESP's tracking webhook (Postmark's, through django-anymail): bounces, complaints and
unsubscribes put the address on the list, once per provider event; posts without the
configured basic-auth secret are refused."""

import base64
import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from mailsync import suppression
from mailsync.models import Suppression, TrackingEvent

URL = "/webhooks/mail/tracking/"
SECRET = "postmark:s3cret-hook"


def auth(secret=SECRET):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def hard_bounce(event_id=4323372036854775807, address="John.Doe@Client.example", kind="HardBounce"):
    return {
        "RecordType": "Bounce",
        "ID": event_id,
        "Type": kind,
        "TypeCode": 1,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": address,
        "From": "crm@vigil.example",
        "BouncedAt": "2026-11-02T16:33:54.9070259Z",
        "Inactive": True,
        "Metadata": {},
    }


def post(payload, client=None, **headers):
    client = client or Client(enforce_csrf_checks=True)  # no session, no CSRF token
    return client.post(URL, json.dumps(payload), content_type="application/json", **headers)


@pytest.fixture
def secret(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


@pytest.mark.django_db
def test_a_signed_bounce_suppresses_the_address(secret):
    response = post(hard_bounce(), **auth())

    assert response.status_code == 200
    row = Suppression.objects.get()
    assert (row.address, row.source) == ("john.doe@client.example", "bounce")
    assert "unknown user" in row.reason
    assert row.created_at == datetime(2026, 11, 2, 16, 33, 54, 907025, tzinfo=UTC)
    assert TrackingEvent.objects.get().event_id == "Postmark:4323372036854775807"


@pytest.mark.django_db
def test_the_same_event_posted_again_is_recorded_once(secret, administrator):
    post(hard_bounce(), **auth())
    suppression.lift(
        Suppression.objects.all(), administrator, "confirmed by phone", datetime.now(UTC)
    )

    again = post(hard_bounce(), **auth())

    assert again.status_code == 200
    assert TrackingEvent.objects.count() == 1
    assert suppression.suppressed(["john.doe@client.example"]) == {}  # the lift holds
    post(hard_bounce(event_id=99), **auth())  # a new bounce suppresses again
    assert list(suppression.suppressed(["john.doe@client.example"])) == ["john.doe@client.example"]


@pytest.mark.django_db
def test_complaints_and_unsubscribes_are_listed_with_their_source(secret):
    complaint = {**hard_bounce(event_id=7, address="angry@client.example")}
    complaint.update(RecordType="SpamComplaint", Type="SpamComplaint")
    unsubscribe = {
        "RecordType": "SubscriptionChange",
        "MessageID": "a4909a96-73e6-4d8b-9e60-7e7d0d8c2c2b",
        "ChangedAt": "2026-11-02T17:00:00Z",
        "Recipient": "gone@client.example",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "Metadata": {},
    }

    post(complaint, **auth())
    post(unsubscribe, **auth())
    post(unsubscribe, **auth())  # no event id: recognised by what it says

    assert dict(Suppression.objects.values_list("address", "source")) == {
        "angry@client.example": "complaint",
        "gone@client.example": "unsubscribe",
    }
    assert TrackingEvent.objects.count() == 2


@pytest.mark.django_db
def test_a_soft_bounce_does_not_suppress(secret):
    post(hard_bounce(kind="SoftBounce"), **auth())

    assert not Suppression.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [{}, auth("postmark:wrong"), auth("someone:s3cret-hook")],
    ids=["unsigned", "wrong", "user"],
)
def test_a_post_without_the_secret_is_refused(secret, headers):
    response = post(hard_bounce(), **headers)

    assert response.status_code == 400
    assert not Suppression.objects.exists() and not TrackingEvent.objects.exists()


@pytest.mark.django_db
def test_with_no_secret_configured_every_post_is_refused(settings):
    settings.ANYMAIL = {}

    response = post(hard_bounce(), **auth())

    assert response.status_code == 400
    assert not Suppression.objects.exists()
