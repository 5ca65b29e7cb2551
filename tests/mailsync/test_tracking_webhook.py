"""The ESP's tracking webhook (Postmark's, through django-anymail): bounces, complaints and
unsubscribes put the address on the list, once per provider event; posts without the
configured basic-auth secret are refused."""

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.test import Client

from mailsync import suppression
from mailsync.models import Suppression, TrackingEvent
from monitoring.models import ErrorEvent

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
    body = payload if isinstance(payload, bytes) else json.dumps(payload)
    return client.post(URL, body, content_type="application/json", **headers)


def quiet_client():
    """A client that answers a server error with its 500 page (and its error event), as the
    server would, instead of raising it into the test."""
    return Client(enforce_csrf_checks=True, raise_request_exception=False)


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
def test_a_post_without_the_secret_is_refused_and_counted_not_reported(secret, headers, caplog):
    response = post(hard_bounce(), quiet_client(), **headers)

    assert response.status_code == 403
    assert not Suppression.objects.exists() and not TrackingEvent.objects.exists()
    assert not ErrorEvent.objects.exists()  # anyone can post: not a bug to report
    refused = [r for r in caplog.records if r.name == "mailsync.webhooks"]
    assert [r.levelname for r in refused] == ["WARNING"]


@pytest.mark.django_db
def test_with_no_secret_configured_every_post_is_refused(settings):
    settings.ANYMAIL = {}

    response = post(hard_bounce(), quiet_client(), **auth())

    assert response.status_code == 403
    assert not Suppression.objects.exists()
    assert not ErrorEvent.objects.exists()


def bounce_with(**fields):
    return json.dumps({**hard_bounce(), **fields}).encode()


MAX_BODY = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
MALFORMED = {
    "not JSON": b"bounced!",
    "empty": b"",
    "a list": b"[]",
    "a string": b'"x"',
    "null": b"null",
    "a number": b"42",
    "invalid UTF-8": b'{"RecordType": "Bounce", "Email": "\xff\xfe@client.example"}',
    "Email a number": bounce_with(Email=42),
    "Email a list": bounce_with(Email=["a@client.example"]),
    "Email an object": bounce_with(Email={"a": "b"}),
    "Email with NUL": bounce_with(Email="a\u0000b@client.example"),
    "Email a lone surrogate": bounce_with(Email="\ud800@client.example"),
    "Email too long as punycode": bounce_with(Email="a@" + "\u00fc." * 150 + "example"),
    "Details with NUL": bounce_with(Details="smtp;550\u0000"),
    "BouncedAt a number": bounce_with(BouncedAt=1762101234),
    "BouncedAt null": bounce_with(BouncedAt=None),
    "BouncedAt an impossible date": bounce_with(BouncedAt="2026-02-30T10:00:00Z"),
    "BouncedAt without a zone": bounce_with(BouncedAt="2026-11-02T16:33:54"),
    "RecordType a list": bounce_with(RecordType=["Bounce"]),
    "no RecordType, as inbound mail": json.dumps(
        {"FromFull": {"Email": "a@client.example"}, "Email": "a@client.example"}
    ).encode(),
    "RecordType unknown": bounce_with(RecordType="Inbound"),
    "Type a list": bounce_with(Type=["HardBounce"]),
    "Metadata null": bounce_with(Metadata=None),
    "Metadata a list": bounce_with(Metadata=["anymail_id"]),
    "ID of 5,000 digits": bounce_with(ID=0).replace(b'"ID": 0', b'"ID": ' + b"9" * 5000),
    "100,000 [": b"[" * 100_000,
    "100,000 {": b'{"a":' * 100_000,
    "nesting at the largest body accepted": b"[" * MAX_BODY,
    "one byte over the largest body": b" " * (MAX_BODY + 1),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_malformed_post_is_a_bad_request_not_a_bug(secret, body):
    started = time.process_time()
    response = post(body, quiet_client(), **auth())

    assert time.process_time() - started < 1
    assert response.status_code == 400
    assert not ErrorEvent.objects.exists()
    assert not Suppression.objects.exists() and not TrackingEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"[" * 100_000, b" " * (MAX_BODY + 1)], ids=["deep", "too big"])
def test_an_unsigned_malformed_post_is_refused_before_it_is_read(secret, body):
    response = post(body, quiet_client())

    assert response.status_code == 403
    assert not ErrorEvent.objects.exists()
