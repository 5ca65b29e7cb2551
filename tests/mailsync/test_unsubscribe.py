"""Unsubscribe: a signed link per recipient and RFC 8058 headers. GET asks and changes nothing
(mail scanners follow links); POST, with no session or CSRF token, unsubscribes; a tampered or
expired token gets a clear page."""

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote, urlsplit

import pytest
import time_machine
from django.test import Client

from mailsync import outbox, suppression
from mailsync.models import OutboxMessage, Suppression

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def site(settings):
    settings.VIGIL_SITE_URL = "https://crm.example.com"
    settings.VIGIL_MAIL_DOMAIN = "mail.example.com"


def path_of(url):
    return urlsplit(url).path


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)


@time_machine.travel(T0, tick=False)  # the token is signed with the time: one second for both
def test_the_headers_follow_rfc_8058(site):
    headers = suppression.unsubscribe_headers("Lena@Lead.example")

    https, mailto = headers["List-Unsubscribe"].split(", ")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert https.startswith("<https://crm.example.com/unsubscribe/") and https.endswith("/>")
    assert https[1:-1] == suppression.unsubscribe_url("lena@lead.example")
    assert mailto.startswith("<mailto:unsubscribe@mail.example.com?subject=unsubscribe%20")
    token = unquote(mailto[1:-1].split("subject=")[1]).removeprefix("unsubscribe ")
    assert suppression.address_of(token) == "lena@lead.example"


@pytest.mark.django_db
def test_the_headers_reach_the_recipient(site, smtp_server):
    outbox.queue(
        [
            outbox.Email(
                key="nurture:1:1",
                to=["lena@lead.example"],
                subject="Step 1",
                text_body="Hello",
                source="nurture",
                headers=suppression.unsubscribe_headers("lena@lead.example"),
            )
        ],
        T0,
    )
    outbox.deliver(outbox.claim(T0, 10), T0)

    [received] = smtp_server.received
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://crm.example.com/unsubscribe/" in received["List-Unsubscribe"]


@pytest.mark.django_db
def test_get_shows_a_confirmation_and_changes_nothing(site, client):
    url = suppression.unsubscribe_url("lena@lead.example")

    response = client.get(path_of(url))

    assert response.status_code == 200
    assert b"lena@lead.example" in response.content and b'method="post"' in response.content
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_post_unsubscribes_without_a_session_or_csrf_token(site, client):
    url = suppression.unsubscribe_url("Lena@Lead.example")

    response = client.post(path_of(url), {"List-Unsubscribe": "One-Click"})
    again = client.post(path_of(url))

    assert response.status_code == again.status_code == 200
    assert b"unsubscribed" in response.content
    row = Suppression.objects.get()
    assert (row.address, row.source) == ("lena@lead.example", "unsubscribe")


@pytest.mark.django_db
def test_after_unsubscribing_nothing_more_is_sent(site, client, smtp_server):
    outbox.queue(
        [outbox.Email(key="n:1", to=["lena@lead.example"], subject="s", text_body="b", source="t")],
        T0,
    )
    client.post(path_of(suppression.unsubscribe_url("lena@lead.example")))

    outbox.deliver(outbox.claim(T0, 10), T0)

    assert smtp_server.received == []
    assert OutboxMessage.objects.get().status == "suppressed"


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_token_gets_a_clear_page(site, client, method):
    token = suppression.unsubscribe_token("lena@lead.example")
    forged = token.replace(
        token.split(":")[0], suppression.unsubscribe_token("x@y.example").split(":")[0]
    )

    for bad in (forged, token[:-2] + "xx", "garbage"):
        response = getattr(client, method)(f"/unsubscribe/{bad}/")
        assert response.status_code == 400
        assert b"This unsubscribe link is not valid" in response.content
    assert not Suppression.objects.exists()


@pytest.mark.django_db
def test_an_expired_token_gets_the_same_page(site, client):
    with time_machine.travel(T0, tick=False):
        url = suppression.unsubscribe_url("lena@lead.example")
    with time_machine.travel(T0 + suppression.TOKEN_MAX_AGE + timedelta(days=1), tick=False):
        response = client.post(path_of(url))

    assert response.status_code == 400
    assert b"too old" in response.content
    assert not Suppression.objects.exists()
