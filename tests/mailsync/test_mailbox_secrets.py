"""A mailbox's refresh token, access token and password never appear in clear: not in the
database, the admin, the mailbox list, the logs, an exception's message or an error report.
The keys rotate: a new key first, re-encrypt, then the old key goes."""

# rita is a fixture of test_mailbox_connect, imported by name.
# ruff: noqa: F811

import logging
import re
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django.views.debug import ExceptionReporter

from mailsync import crypto, oauth
from mailsync.models import Mailbox
from tests.mailsync.smtp import free_port
from tests.mailsync.test_mailbox_connect import IMAP, LIST, connect, rita  # noqa: F401

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))


def stored_mailbox(owner, address, **fields) -> Mailbox:
    return Mailbox.objects.create(
        owner=owner,
        provider=Mailbox.Provider.IMAP,
        auth=Mailbox.Auth.PASSWORD,
        address=address,
        username=address,
        imap_host="imap.client.example",
        created_at=timezone.now(),
        **fields,
    )


@pytest.fixture
def connected(rita, rep, google, imap_user):
    """Rita's Google mailbox, connected through the provider, and the secrets that must not
    show: its tokens, the client secret and an IMAP password."""
    connect(rita, imap_user.address)
    rita.post(LIST, IMAP)
    mailbox = Mailbox.objects.get(owner=rep, provider="google")
    secrets = [
        crypto.decrypt(mailbox.secret),
        crypto.decrypt(mailbox.access_token),
        google.client_secret,
        IMAP["password"],
    ]
    return mailbox, secrets


def leaked(text: str | bytes, secrets: list[str]) -> list[str]:
    if isinstance(text, bytes):
        return [s for s in secrets if s.encode() in text]
    return [s for s in secrets if s in text]


def test_the_database_holds_only_ciphertext(connected):
    mailbox, secrets = connected
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret, access_token FROM mailsync_mailbox")
        columns = b"".join(bytes(value) for row in cursor.fetchall() for value in row)

    assert leaked(columns, secrets) == []
    assert columns.count(b"gAAAA") == 3  # two tokens and a password, each a Fernet token


def test_the_admin_never_shows_a_secret(connected, client, administrator):
    mailbox, secrets = connected
    client.force_login(administrator)
    stored = [bytes(mailbox.secret).decode(), bytes(mailbox.access_token).decode()]

    changelist = client.get("/admin/mailsync/mailbox/")
    page = client.get(f"/admin/mailsync/mailbox/{mailbox.pk}/change/")

    assert changelist.status_code == page.status_code == 200
    assert mailbox.address in changelist.text and mailbox.address in page.text
    assert leaked(changelist.text + page.text, secrets + stored) == []
    assert not re.search(r"field-(secret|access_token)\b", page.text)


def test_the_mailbox_list_shows_no_secret(connected, rita):
    mailbox, secrets = connected

    page = rita.get(LIST)

    assert page.status_code == 200 and mailbox.address in page.text
    assert leaked(page.text, secrets) == []


def test_logs_name_the_mailbox_and_provider_but_no_token(
    caplog, rita, rep, google, imap_user, settings
):
    caplog.set_level(logging.DEBUG)

    connect(rita, imap_user.address)
    mailbox = Mailbox.objects.get(owner=rep)
    secrets = [crypto.decrypt(mailbox.secret), crypto.decrypt(mailbox.access_token)]
    secrets.append(oauth.access_token(mailbox, timezone.now(), force_refresh=True))
    secrets += [crypto.decrypt(mailbox.secret), google.client_secret]
    google.revoke(imap_user.address)
    with pytest.raises(oauth.GrantRevoked):
        oauth.access_token(mailbox, timezone.now(), force_refresh=True)
    settings.VIGIL_MAIL_PROVIDERS["google"]["token_url"] = f"http://127.0.0.1:{free_port()}/t"
    with pytest.raises(oauth.ProviderUnavailable):
        oauth.access_token(mailbox, timezone.now(), force_refresh=True)

    ours = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith("tests")
    )
    assert leaked(ours, secrets) == []
    assert f"mailbox {mailbox.pk}: connected with google" in ours
    assert f"mailbox {mailbox.pk}: refreshed its google access token" in ours
    assert f"mailbox {mailbox.pk}: google token request failed: Google refused" in ours
    assert "Google could not be reached (ConnectionError)" in ours


def test_exception_messages_and_error_reports_hold_no_secret(connected, google, imap_user):
    mailbox, secrets = connected
    google.revoke(imap_user.address)

    with pytest.raises(oauth.GrantRevoked) as revoked:
        oauth.access_token(mailbox, timezone.now(), force_refresh=True)
    report = ExceptionReporter(None, revoked.type, revoked.value, revoked.tb)
    unreadable = Mailbox(secret=Fernet(KEY_C).encrypt(secrets[0].encode()))
    with pytest.raises(crypto.SecretUnreadable) as unread:
        crypto.decrypt(unreadable.secret)

    for failure in (revoked.value, unread.value):
        assert leaked(f"{failure} {failure!r} {failure.__cause__}", secrets) == []
    assert str(revoked.value) == "Google refused Vigil's access (invalid_grant)"
    # The error report (as Django mails or shows it) shows no local of the token functions.
    ours = [
        frame
        for frame in report.get_traceback_data()["frames"]
        if frame["filename"].endswith("mailsync/oauth.py")
    ]
    assert [frame["function"] for frame in ours] == ["access_token", "_call_token_endpoint"]
    assert dict(ours[0]["vars"])["refresh_token"] == "'********************'"
    assert leaked(str([frame["vars"] for frame in ours]), secrets) == []


def test_a_provider_that_is_down_is_transient_and_says_no_secret(connected, settings):
    mailbox, secrets = connected
    settings.VIGIL_MAIL_PROVIDERS["google"]["token_url"] = f"http://127.0.0.1:{free_port()}/t"

    with pytest.raises(oauth.ProviderUnavailable) as down:
        oauth.access_token(mailbox, timezone.now(), force_refresh=True)

    assert str(down.value) == "Google could not be reached (ConnectionError)"
    assert down.value.__cause__ is None and leaked(repr(down.value), secrets) == []
    mailbox.refresh_from_db()
    assert crypto.decrypt(mailbox.secret) == secrets[0]  # nothing lost


@pytest.mark.django_db
def test_rotating_the_keys_re_encrypts_every_secret_with_the_new_key(rep, settings):
    settings.VIGIL_MAILBOX_KEYS = [KEY_A]
    oauth_box = stored_mailbox(
        rep,
        "a@client.example",
        secret=crypto.encrypt("refresh-a"),
        access_token=crypto.encrypt("access-a"),
    )
    password_box = stored_mailbox(rep, "b@client.example", secret=crypto.encrypt("pw-b"))
    stored_mailbox(rep, "pending@client.example")  # nothing to re-encrypt
    settings.VIGIL_MAILBOX_KEYS = [KEY_B, KEY_A]

    out = StringIO()
    call_command("rotate_mailbox_keys", stdout=out)

    assert out.getvalue() == "re-encrypted 2 mailbox secrets\n"
    settings.VIGIL_MAILBOX_KEYS = [KEY_B]
    oauth_box.refresh_from_db()
    password_box.refresh_from_db()
    assert crypto.decrypt(oauth_box.secret) == "refresh-a"
    assert crypto.decrypt(oauth_box.access_token) == "access-a"
    assert crypto.decrypt(password_box.secret) == "pw-b"
    assert crypto.rotate() == 2  # again: harmless
    assert crypto.decrypt(Mailbox.objects.get(pk=oauth_box.pk).secret) == "refresh-a"


@pytest.mark.django_db
def test_rotation_goes_in_batches_and_past_a_secret_no_key_opens(
    rep, settings, monkeypatch, caplog, django_assert_num_queries
):
    monkeypatch.setattr(crypto, "ROTATE_BATCH", 2)
    settings.VIGIL_MAILBOX_KEYS = [KEY_A]
    boxes = [
        stored_mailbox(rep, f"{n}@client.example", secret=crypto.encrypt(f"pw-{n}"))
        for n in range(5)
    ]
    lost = stored_mailbox(rep, "lost@client.example", secret=Fernet(KEY_C).encrypt(b"pw-lost"))
    settings.VIGIL_MAILBOX_KEYS = [KEY_B, KEY_A]

    # A savepoint and its release, 4 batches of at most 2 rows locked and read, 3 bulk updates.
    with django_assert_num_queries(9):
        assert crypto.rotate() == 5

    settings.VIGIL_MAILBOX_KEYS = [KEY_B]
    assert [crypto.decrypt(Mailbox.objects.get(pk=b.pk).secret) for b in boxes] == [
        f"pw-{n}" for n in range(5)
    ]
    assert f"no key opens the secret of mailboxes {lost.pk}" in caplog.text
    assert "pw-lost" not in caplog.text


def test_a_value_no_configured_key_opens_is_unreadable(settings):
    settings.VIGIL_MAILBOX_KEYS = [KEY_A]
    foreign = Fernet(KEY_C).encrypt(b"refresh-c")

    with pytest.raises(crypto.SecretUnreadable) as unreadable:
        crypto.decrypt(foreign)

    assert str(unreadable.value) == "no key in VIGIL_MAILBOX_KEYS opens this mailbox secret"
    assert unreadable.value.__cause__ is None and unreadable.value.__suppress_context__
    assert KEY_C not in repr(unreadable.value) and "refresh-c" not in repr(unreadable.value)
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(b"")
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(b"not a token at all")


def test_each_encryption_is_different_and_the_newest_key_encrypts(settings):
    settings.VIGIL_MAILBOX_KEYS = [KEY_B, KEY_A]

    one, two = crypto.encrypt("same"), crypto.encrypt("same")

    assert one != two
    assert Fernet(KEY_B).decrypt(one) == b"same"
