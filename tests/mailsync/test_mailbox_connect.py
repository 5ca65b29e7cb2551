"""Connecting mailboxes: a user adds a Google mailbox and connects it through the provider
(authorization code with PKCE), and its token signs in to the real IMAP server; an expired
access token is refreshed; a revoked grant asks the owner, once, to reconnect; a callback that
is not this session's is refused; a user reaches only their own mailboxes; a generic IMAP
mailbox is added with its password."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from imapclient import IMAPClient

from mailsync import crypto, oauth
from mailsync.models import Mailbox
from notifications.models import Notification
from tests.factories import UserFactory
from tests.mailsync.smtp import free_port

LIST = "/mail/mailboxes/"
CALLBACK = "/mail/oauth/callback"


@pytest.fixture
def rita(client, rep):
    client.force_login(rep)
    return client


def at_provider(response) -> str:
    """Follow the redirect to the provider, which approves and sends the browser back: the
    callback's path and query."""
    assert response.status_code == 302
    back = requests.get(response["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    url = urlsplit(back.headers["Location"])
    assert url.path == CALLBACK
    return f"{url.path}?{url.query}"


def connect(client, address):
    added = client.post(LIST, {"provider": "google", "address": address})
    return client.get(at_provider(added))


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def imap_login(server, user, token) -> None:
    with IMAPClient(server.host, server.port, ssl=False, timeout=10) as imap:
        imap.oauth2_login(user, token)
        imap.select_folder("INBOX", readonly=True)


def test_a_google_mailbox_connects_and_its_token_signs_in_to_imap(
    rita, rep, google, dovecot, imap_user
):
    added = rita.post(LIST, {"provider": "google", "address": imap_user.address})
    authorize = urlsplit(added["Location"])
    asked = parse_qs(authorize.query)
    pending = Mailbox.objects.get(owner=rep)
    assert pending.status == Mailbox.Status.PENDING
    assert asked["code_challenge_method"] == ["S256"] and asked["login_hint"] == [imap_user.address]
    assert asked["access_type"] == ["offline"]
    assert asked["redirect_uri"] == [f"http://testserver{CALLBACK}"]

    done = rita.get(at_provider(added))

    assert (done.status_code, done["Location"]) == (302, LIST)
    assert messages_of(done) == [
        f"{imap_user.address} is connected; its first sync starts shortly."
    ]
    mailbox = Mailbox.objects.get(owner=rep)
    assert (mailbox.status, mailbox.auth, mailbox.attempts, mailbox.last_error) == (
        Mailbox.Status.ACTIVE,
        Mailbox.Auth.OAUTH2,
        0,
        "",
    )
    assert (mailbox.imap_host, mailbox.imap_port) == (dovecot.host, dovecot.port)
    assert mailbox.next_sync_at is not None and mailbox.next_sync_at <= timezone.now()
    refreshed = requests.post(
        google.token_url,
        {"grant_type": "refresh_token", "refresh_token": crypto.decrypt(mailbox.secret)},
        auth=(google.client_id, google.client_secret),
        timeout=10,
    ).json()
    assert google.active_user(refreshed["access_token"]) == imap_user.address
    imap_login(dovecot, imap_user.address, oauth.access_token(mailbox, timezone.now()))


def test_a_stored_access_token_is_used_until_a_minute_before_it_expires(
    rita, rep, google, imap_user
):
    connect(rita, imap_user.address)
    mailbox = Mailbox.objects.get(owner=rep)
    expires_at = mailbox.access_token_expires_at
    refreshes = google.refresh_count

    still_valid = oauth.access_token(mailbox, expires_at - timedelta(seconds=60))
    assert still_valid == crypto.decrypt(mailbox.access_token)
    assert google.refresh_count == refreshes

    nearly_expired = oauth.access_token(mailbox, expires_at - timedelta(seconds=59))

    assert nearly_expired != still_valid and google.refresh_count == refreshes + 1


def test_an_expired_access_token_is_refreshed_and_signs_in(rita, rep, google, dovecot, imap_user):
    connect(rita, imap_user.address)
    mailbox = Mailbox.objects.get(owner=rep)
    first = oauth.access_token(mailbox, timezone.now())
    google.expire_access_tokens()
    refreshes = google.refresh_count

    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        later = timezone.now()
        fresh = oauth.access_token(mailbox, later)

    assert fresh != first and google.refresh_count == refreshes + 1
    imap_login(dovecot, imap_user.address, fresh)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert crypto.decrypt(stored.access_token) == fresh
    assert stored.access_token_expires_at > later + timedelta(minutes=30)
    # Asked again, the fresh token is used as it is; forced, it is replaced.
    assert oauth.access_token(stored, later) == fresh and google.refresh_count == refreshes + 1
    assert oauth.access_token(stored, later, force_refresh=True) != fresh
    assert google.refresh_count == refreshes + 2


def test_a_revoked_grant_asks_the_owner_to_reconnect_once(rita, rep, google, dovecot, imap_user):
    connect(rita, imap_user.address)
    mailbox = Mailbox.objects.get(owner=rep)
    google.revoke(imap_user.address)
    now = timezone.now()

    with pytest.raises(oauth.GrantRevoked) as refused:
        oauth.access_token(mailbox, now, force_refresh=True)
    first = oauth.needs_reconnect(mailbox, now, str(refused.value))
    again = oauth.needs_reconnect(mailbox, now + timedelta(minutes=5), str(refused.value))

    assert (first, again) == (True, False)
    mailbox.refresh_from_db()
    assert mailbox.status == Mailbox.Status.RECONNECT
    assert mailbox.last_error == "Google refused Vigil's access (invalid_grant)"
    assert bytes(mailbox.access_token) == b"" and mailbox.access_token_expires_at is None
    [notice] = Notification.objects.filter(user=rep)
    link = reverse("mailsync:mailbox_connect", args=[mailbox.pk])
    assert notice.link == link and not notice.blocking
    assert notice.title == (
        f"Reconnect your mailbox {imap_user.address}: Google refused Vigil's access (invalid_grant)"
    )
    # The notice's link asks first; its button goes back through the provider.
    page = rita.get(link)
    assert page.status_code == 200 and "Connect with Google" in page.text
    done = rita.get(at_provider(rita.post(link)))
    assert messages_of(done)[-1].endswith("is connected; its first sync starts shortly.")
    mailbox.refresh_from_db()
    assert (mailbox.status, mailbox.last_error) == (Mailbox.Status.ACTIVE, "")
    imap_login(dovecot, imap_user.address, oauth.access_token(mailbox, timezone.now()))


def test_a_new_episode_after_reconnecting_is_a_new_notice(rita, rep, google, imap_user):
    connect(rita, imap_user.address)
    mailbox = Mailbox.objects.get(owner=rep)
    now = timezone.now()
    oauth.needs_reconnect(mailbox, now, "Google refused Vigil's access (invalid_grant)")
    rita.get(at_provider(rita.post(reverse("mailsync:mailbox_connect", args=[mailbox.pk]))))
    # Reconnecting closes the notice that asked for it.
    assert list(Notification.objects.filter(user=rep).values_list("status", flat=True)) == [
        "closed"
    ]

    oauth.needs_reconnect(mailbox, now + timedelta(days=3), "Google refused Vigil's access")

    assert Notification.objects.filter(user=rep).count() == 2


def test_a_user_who_refuses_at_the_provider_is_told_and_nothing_is_stored(rita, rep, google):
    google.deny_consent = True

    done = rita.get(at_provider(rita.post(LIST, {"provider": "google", "address": "r@c.test"})))

    assert messages_of(done) == ["You did not give Vigil access to the mailbox."]
    mailbox = Mailbox.objects.get(owner=rep)
    assert (mailbox.status, bytes(mailbox.secret)) == (Mailbox.Status.PENDING, b"")


def test_a_wrong_or_used_state_is_refused_and_nothing_is_stored(rita, rep, google, imap_user):
    added = rita.post(LIST, {"provider": "google", "address": imap_user.address})
    callback = at_provider(added)
    url = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}

    forged = rita.get(CALLBACK, {**query, "state": "not-the-state"})

    assert forged["Location"] == LIST
    assert messages_of(forged) == [
        "This connection link is not valid (expired, already used or from another session); "
        "connect again."
    ]
    assert Mailbox.objects.get(owner=rep).status == Mailbox.Status.PENDING
    assert rita.get(callback).status_code == 302
    assert Mailbox.objects.get(owner=rep).status == Mailbox.Status.ACTIVE
    replayed = rita.get(callback)
    assert "not valid" in messages_of(replayed)[0]


def test_a_state_from_another_users_session_is_refused(rita, rep, google, imap_user):
    rita.post(LIST, {"provider": "google", "address": imap_user.address})
    mallory = Client()
    mallory.force_login(UserFactory(username="mallory"))
    added = mallory.post(LIST, {"provider": "google", "address": "mallory@client.example"})
    callback = at_provider(added)  # mallory's code and state …

    done = rita.get(callback)  # … followed in rita's browser

    assert "not valid" in messages_of(done)[0]
    assert set(Mailbox.objects.values_list("status", flat=True)) == {Mailbox.Status.PENDING}
    assert not Mailbox.objects.exclude(secret=b"").exists()


def test_an_expired_state_is_refused(rita, rep, google, imap_user):
    added = rita.post(LIST, {"provider": "google", "address": imap_user.address})
    callback = at_provider(added)

    with time_machine.travel(timezone.now() + timedelta(hours=1), tick=False):
        done = rita.get(callback)

    assert "not valid" in messages_of(done)[0]
    assert Mailbox.objects.get(owner=rep).status == Mailbox.Status.PENDING


def test_an_unreachable_provider_fails_the_connection_cleanly(rita, rep, google, settings):
    added = rita.post(LIST, {"provider": "google", "address": "rita@client.example"})
    callback = at_provider(added)
    settings.VIGIL_MAIL_PROVIDERS["google"]["token_url"] = f"http://127.0.0.1:{free_port()}/token"

    done = rita.get(callback)

    assert messages_of(done) == ["Google could not be reached (ConnectionError); connect again."]
    assert Mailbox.objects.get(owner=rep).status == Mailbox.Status.PENDING


def test_google_is_offered_only_when_it_is_set_up(rita, settings):
    settings.VIGIL_MAIL_PROVIDERS = {
        name: {**config, "client_id": ""} for name, config in settings.VIGIL_MAIL_PROVIDERS.items()
    }

    page = rita.get(LIST)
    refused = rita.post(LIST, {"provider": "google", "address": "rita@client.example"})

    assert [v for v, _ in page.context["form"].fields["provider"].choices] == ["imap"]
    assert refused.status_code == 400 and not Mailbox.objects.exists()


def test_a_user_reaches_only_their_own_mailboxes(rita, google, manager, imap_user):
    boss = Client()
    boss.force_login(manager)
    connect(boss, imap_user.address)
    theirs = Mailbox.objects.get(owner=manager)

    page = rita.get(LIST)
    assert imap_user.address not in page.text
    assert rita.get(reverse("mailsync:mailbox_connect", args=[theirs.pk])).status_code == 404
    assert rita.post(reverse("mailsync:mailbox_connect", args=[theirs.pk])).status_code == 404
    assert rita.post(reverse("mailsync:mailbox_remove", args=[theirs.pk])).status_code == 404
    assert Mailbox.objects.filter(pk=theirs.pk, status=Mailbox.Status.ACTIVE).exists()


def test_the_pages_need_a_login_and_csrf_on_every_post(rep, google):
    anonymous = Client()
    assert anonymous.get(LIST)["Location"].startswith("/login")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(rep)

    assert strict.post(LIST, {"provider": "imap", "address": "a@b.example"}).status_code == 403
    assert not Mailbox.objects.exists()


def test_removing_a_mailbox(rita, rep, google, imap_user):
    connect(rita, imap_user.address)
    mailbox = Mailbox.objects.get(owner=rep)

    done = rita.post(reverse("mailsync:mailbox_remove", args=[mailbox.pk]))

    assert done["Location"] == LIST and not Mailbox.objects.exists()
    assert messages_of(done)[-1] == f"{imap_user.address} removed: Vigil no longer reads it."
    assert rita.get(reverse("mailsync:mailbox_remove", args=[mailbox.pk])).status_code == 405


PORT_ERROR = "Give a port between 1 and 65535 (993 for SSL/TLS, 143 for STARTTLS)."
IMAP = {
    "provider": "imap",
    "address": "rita@client.example",
    "imap_host": "imap.client.example",
    "imap_port": "993",
    "imap_security": "ssl",
    "username": "",
    "password": "s3cret pass",
}


@pytest.mark.parametrize(
    ("mistake", "field", "message"),
    [
        (
            {"imap_host": ""},
            "imap_host",
            "Give the IMAP server's host name, e.g. imap.example.com.",
        ),
        (
            {"imap_host": "https://imap.client.example"},
            "imap_host",
            "Give only the server's host name or IP address, e.g. imap.example.com "
            "(no https://, port or spaces).",
        ),
        (
            {"imap_port": "0"},
            "imap_port",
            PORT_ERROR,
        ),
        (
            {"imap_port": "70000"},
            "imap_port",
            PORT_ERROR,
        ),
        (
            {"imap_port": ""},
            "imap_port",
            PORT_ERROR,
        ),
        (
            {"imap_security": "none"},
            "imap_security",
            "Without SSL/TLS or STARTTLS the password would cross the network in clear text: "
            "choose SSL/TLS or STARTTLS (None is only for a server on this machine).",
        ),
        ({"password": ""}, "password", "Give the mailbox's password (or an app password)."),
        ({"address": "not an address"}, "address", "Enter a valid email address."),
    ],
)
def test_the_imap_form_says_what_is_wrong_with_each_field(rita, mistake, field, message):
    response = rita.post(LIST, {**IMAP, **mistake})

    assert response.status_code == 400
    assert response.context["form"].errors == {field: [message]}
    assert "s3cret pass" not in response.text
    assert not Mailbox.objects.exists()


def test_the_same_address_twice_is_refused(rita, rep):
    rita.post(LIST, IMAP)

    again = rita.post(LIST, {**IMAP, "address": "Rita@Client.example"})

    assert again.context["form"].errors == {"address": ["You have already added this mailbox."]}
    assert Mailbox.objects.count() == 1


def test_security_none_is_allowed_for_a_server_on_this_machine(rita, rep):
    for n, host in enumerate(("localhost", "127.0.0.1", "::1", "[::1]")):
        response = rita.post(
            LIST,
            {**IMAP, "address": f"{n}@client.example", "imap_host": host, "imap_security": "none"},
        )
        assert response.status_code == 302, response.context["form"].errors
    assert set(Mailbox.objects.values_list("imap_host", flat=True)) == {
        "localhost",
        "127.0.0.1",
        "::1",
    }


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "::1"])
def test_a_server_on_a_private_network_is_refused_unless_allowed(rita, settings, host):
    settings.VIGIL_MAILSYNC_PRIVATE_HOSTS = False

    response = rita.post(LIST, {**IMAP, "imap_host": host})

    assert "private network" in str(response.context["form"].errors["imap_host"])
    assert not Mailbox.objects.exists()


def test_a_generic_imap_mailbox_stores_its_password_encrypted_and_signs_in(
    rita, rep, dovecot, imap_user
):
    done = rita.post(
        LIST,
        {
            **IMAP,
            "address": imap_user.address,
            "imap_host": dovecot.host,
            "imap_port": str(dovecot.port),
            "imap_security": "none",
            "username": imap_user.address,
            "password": imap_user.password,
        },
    )

    assert done["Location"] == LIST
    mailbox = Mailbox.objects.get(owner=rep)
    assert (mailbox.auth, mailbox.status) == (Mailbox.Auth.PASSWORD, Mailbox.Status.ACTIVE)
    assert mailbox.next_sync_at is not None
    assert imap_user.password.encode() not in bytes(mailbox.secret)
    with IMAPClient(mailbox.imap_host, mailbox.imap_port, ssl=False, timeout=10) as imap:
        imap.login(mailbox.username, crypto.decrypt(mailbox.secret))


def test_an_imap_mailbox_takes_a_new_password_when_the_old_one_stops_working(rita, rep):
    rita.post(LIST, IMAP)
    mailbox = Mailbox.objects.get(owner=rep)
    oauth.needs_reconnect(mailbox, timezone.now(), "The server refused the password")
    connect_url = reverse("mailsync:mailbox_connect", args=[mailbox.pk])

    page = rita.get(connect_url)
    empty = rita.post(connect_url, {"password": ""})
    done = rita.post(connect_url, {"password": "new pass"})

    assert "The server refused the password" in page.text and 'type="password"' in page.text
    assert empty.status_code == 400
    assert done["Location"] == LIST
    mailbox.refresh_from_db()
    assert (mailbox.status, mailbox.last_error) == (Mailbox.Status.ACTIVE, "")
    assert crypto.decrypt(mailbox.secret) == "new pass"
    assert not Notification.objects.filter(user=rep, status="open").exists()


def test_the_list_page_costs_the_same_for_one_mailbox_or_many(rita, rep, django_assert_num_queries):
    rita.post(LIST, IMAP)
    with django_assert_num_queries(QUERIES):
        one = rita.get(LIST)
    for n in range(5):
        rita.post(LIST, {**IMAP, "address": f"box{n}@client.example"})
    Mailbox.objects.update(last_error="Connection refused", last_synced_at=timezone.now())

    with django_assert_num_queries(QUERIES):
        six = rita.get(LIST)

    assert one.status_code == six.status_code == 200
    assert six.text.count("data-mailbox=") == 6 and "Connection refused" in six.text


# The session, the user, the blocking gate, the mailboxes.
QUERIES = 4
