"""The IMAP test harness itself (tests/imapserver.py): a real Dovecot and OAuth provider behave as
the mailbox sync tests assume. No database needed."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import imapclient
import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from imapclient.exceptions import LoginError
from imapclient.imapclient import DRAFTS, SENT  # not re-exported by imapclient 4.1

from tests.imapserver import dovecot, imap_user, oauth_provider  # noqa: F401

REDIRECT_URI = "http://127.0.0.1:9/oauth/callback"  # never fetched: we read the 302 ourselves


def message(n: int, subject: str = "Hello") -> bytes:
    return (
        f"From: Ann <ann@customer.example>\r\nTo: rep@example.test\r\n"
        f"Subject: {subject} {n}\r\nMessage-ID: <m{n}@customer.example>\r\n"
        f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nBody {n}\r\n"
    ).encode()


def xoauth2(dovecot, address, token, mech="XOAUTH2"):  # noqa: F811
    """Log in with a token on a fresh connection, then log out; LoginError when refused."""
    with connect(dovecot) as client:
        if mech == "OAUTHBEARER":
            client.oauthbearer_login(address, token)
        else:
            client.oauth2_login(address, token)


def connect(dovecot):  # noqa: F811
    """A connection not logged in yet (leaving the `with` block logs out)."""
    return imapclient.IMAPClient(dovecot.host, dovecot.port, ssl=False, timeout=10)


def authorization_code(provider, user, verifier, **params):
    """Run GET /authorize as a browser would: (the authlib session, the 302 Location)."""
    session = OAuth2Session(
        provider.client_id,
        provider.client_secret,
        scope="imap",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    url, _state = session.create_authorization_url(
        provider.authorize_url, code_verifier=verifier, login_hint=user, **params
    )
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return session, response.headers["Location"]


def test_password_login(dovecot, imap_user):  # noqa: F811
    assert imap_user.address == f"{imap_user.name}@example.test"
    with dovecot.client(imap_user.address) as imap:
        assert imap.select_folder("INBOX")[b"EXISTS"] == 0
    with connect(dovecot) as bad, pytest.raises(LoginError):
        bad.login(imap_user.address, "wrong password")


def test_xoauth2_and_oauthbearer_with_issued_token(dovecot, oauth_provider, imap_user):  # noqa: F811
    access, _refresh = oauth_provider.issue_tokens(imap_user.address)
    xoauth2(dovecot, imap_user.address, access)
    xoauth2(dovecot, imap_user.address, access, mech="OAUTHBEARER")
    # The token is someone else's: Dovecot compares the introspected username with the login.
    other = dovecot.add_user(f"{imap_user.name}-other")
    with pytest.raises(LoginError):
        xoauth2(dovecot, other, access)
    # A token is no password, a password no token.
    with pytest.raises(LoginError):
        xoauth2(dovecot, imap_user.address, imap_user.password)
    with connect(dovecot) as client, pytest.raises(LoginError):
        client.login(imap_user.address, access)


def test_expired_token_refused_until_refreshed(dovecot, oauth_provider, imap_user):  # noqa: F811
    access, refresh = oauth_provider.issue_tokens(imap_user.address)
    oauth_provider.expire_access_tokens()
    with pytest.raises(LoginError):
        xoauth2(dovecot, imap_user.address, access)

    refreshes = oauth_provider.refresh_count
    response = requests.post(
        oauth_provider.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh},
        auth=(oauth_provider.client_id, oauth_provider.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["refresh_token"] == refresh and token["access_token"] != access
    assert oauth_provider.refresh_count == refreshes + 1
    xoauth2(dovecot, imap_user.address, token["access_token"])


def test_revoked_user_tokens_refused(dovecot, oauth_provider, imap_user):  # noqa: F811
    access, refresh = oauth_provider.issue_tokens(imap_user.address)
    oauth_provider.revoke(imap_user.address)
    with pytest.raises(LoginError):
        xoauth2(dovecot, imap_user.address, access)
    response = requests.post(
        oauth_provider.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": oauth_provider.client_id,  # client auth in the form body this time
            "client_secret": oauth_provider.client_secret,
        },
        timeout=10,
    )
    assert (response.status_code, response.json()) == (400, {"error": "invalid_grant"})
    # Consent given again: new tokens work.
    xoauth2(dovecot, imap_user.address, oauth_provider.issue_tokens(imap_user.address)[0])


def test_authorization_code_with_pkce(dovecot, oauth_provider, imap_user, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the provider is plain http
    verifier = generate_token(48)
    session, location = authorization_code(oauth_provider, imap_user.address, verifier)
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert set(query) == {"code", "state"}
    sent = oauth_provider.authorize_requests[-1]
    assert sent["code_challenge_method"] == "S256" and sent["login_hint"] == imap_user.address

    token = session.fetch_token(
        oauth_provider.token_url, authorization_response=location, code_verifier=verifier
    )
    assert token["scope"] == "imap" and token["refresh_token"]
    xoauth2(dovecot, imap_user.address, token["access_token"])

    # The code was single use.
    again = requests.post(
        oauth_provider.token_url,
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(oauth_provider.client_id, oauth_provider.client_secret),
        timeout=10,
    )
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_pkce_and_client_are_checked(oauth_provider, imap_user, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    verifier = generate_token(48)
    _session, location = authorization_code(oauth_provider, imap_user.address, verifier)
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    client = (oauth_provider.client_id, oauth_provider.client_secret)

    wrong_secret = requests.post(
        oauth_provider.token_url, data=form, auth=(client[0], "nope"), timeout=10
    )
    assert (wrong_secret.status_code, wrong_secret.json()) == (401, {"error": "invalid_client"})
    wrong_verifier = requests.post(
        oauth_provider.token_url,
        data={**form, "code_verifier": generate_token(48)},
        auth=client,
        timeout=10,
    )
    assert (wrong_verifier.status_code, wrong_verifier.json()["error"]) == (400, "invalid_grant")

    unknown_client = requests.get(
        oauth_provider.authorize_url,
        params={"response_type": "code", "client_id": "other", "redirect_uri": REDIRECT_URI},
        allow_redirects=False,
        timeout=10,
    )
    assert unknown_client.status_code == 400
    oauth_provider.deny_consent = True  # reset by the imap_user fixture
    _session, denied = authorization_code(oauth_provider, imap_user.address, verifier, state="s1")
    assert parse_qs(urlsplit(denied).query) == {"error": ["access_denied"], "state": ["s1"]}


def test_sent_folder_is_special_use(dovecot, imap_user):  # noqa: F811
    with dovecot.client(imap_user.address) as imap:
        assert imap.find_special_folder(SENT) == "Sent"
        assert imap.find_special_folder(DRAFTS) == "Drafts"


def test_select_shows_highestmodseq_once_condstore_enabled(dovecot, imap_user):  # noqa: F811
    dovecot.append(imap_user.address, "INBOX", message(1))
    with dovecot.client(imap_user.address) as imap:
        assert b"HIGHESTMODSEQ" not in imap.select_folder("INBOX")
    with dovecot.client(imap_user.address) as imap:
        assert imap.enable("CONDSTORE") == [b"CONDSTORE"]
        before = imap.select_folder("INBOX")[b"HIGHESTMODSEQ"]
        imap.add_flags([1], [imapclient.FLAGGED])
        assert imap.select_folder("INBOX")[b"HIGHESTMODSEQ"] > before
    assert dovecot.status(imap_user.address, "INBOX")["HIGHESTMODSEQ"] > before


def test_body_peek_leaves_message_unseen(dovecot, imap_user):  # noqa: F811
    raw = message(1)
    uid = dovecot.append(imap_user.address, "Sent", raw, flags=[imapclient.FLAGGED])
    with dovecot.client(imap_user.address) as imap:
        imap.select_folder("Sent")
        assert imap.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == raw
    assert dovecot.flags(imap_user.address, "Sent", uid) == ("\\Flagged",)
    with dovecot.client(imap_user.address) as imap:  # the contrast: BODY[] does set \Seen
        imap.select_folder("Sent")
        imap.fetch([uid], ["BODY[]"])
    assert "\\Seen" in dovecot.flags(imap_user.address, "Sent", uid)


def test_append_many_keeps_order_flags_and_dates(dovecot, imap_user):  # noqa: F811
    when = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    items = [message(0), (message(1), [imapclient.SEEN]), (message(2), (), when)]
    uids = dovecot.append_many(imap_user.address, "Sent", items * 3, batch=4)
    assert uids == list(range(1, 10))
    with dovecot.client(imap_user.address) as imap:
        imap.select_folder("Sent", readonly=True)
        data = imap.fetch(uids[:3], ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])
    assert [data[u][b"BODY[]"] for u in uids[:3]] == [message(0), message(1), message(2)]
    assert set(data[2][b"FLAGS"]) - {imapclient.RECENT} == {imapclient.SEEN}
    assert data[3][b"INTERNALDATE"].replace(tzinfo=UTC) == when  # the server's local time is UTC


def test_reset_uidvalidity_keeps_messages(dovecot, imap_user):  # noqa: F811
    address = imap_user.address
    dovecot.append_many(address, "INBOX", [message(1), (message(2), [imapclient.SEEN])])
    before = dovecot.status(address, "INBOX")

    validity = dovecot.reset_uidvalidity(address, "INBOX")
    after = dovecot.status(address, "INBOX")
    assert validity == after["UIDVALIDITY"] != before["UIDVALIDITY"]
    assert after["MESSAGES"] == 2
    with dovecot.client(address) as imap:
        info = imap.select_folder("INBOX", readonly=True)
        assert info[b"UIDVALIDITY"] == validity
        data = imap.fetch(imap.search("ALL"), ["FLAGS", "BODY.PEEK[]"])
    assert sorted(data) == [3, 4]  # renumbered: the old UIDs 1 and 2 are gone
    assert data[3][b"BODY[]"] == message(1) and data[4][b"BODY[]"] == message(2)
    assert dovecot.flags(address, "INBOX", 4) == ("\\Seen",)

    kept = dovecot.reset_uidvalidity(address, "INBOX", renumber=False)
    assert kept == validity + 1
    with dovecot.client(address) as imap:
        imap.select_folder("INBOX", readonly=True)
        assert imap.search("ALL") == [3, 4]
