"""Which IMAP server a mailbox may name: only one whose every address is public, checked by the
connection itself (one lookup, and the connection goes to the address checked, with TLS
verified against the name), refused when the name does not resolve, and one error for every
host refused or unreachable, so the worker cannot be used to scan a network."""

import time

import pytest

from mailsync import hosts
from mailsync.models import Mailbox
from mailsync.sync import sync_mailbox
from tests.imapserver import DOMAIN
from tests.mailsync.factories import imap_mailbox
from tests.mailsync.test_mailbox_connect import IMAP, LIST, rita  # noqa: F401

PUBLIC = "93.184.215.14"  # globally routable; the test never lets a connection reach it
NAME = "imap.client.example"


@pytest.fixture
def public_only(settings):
    settings.VIGIL_MAILSYNC_PRIVATE_HOSTS = False


def host_errors(client, host, port="993"):
    response = client.post(LIST, {**IMAP, "imap_host": host, "imap_port": port})
    assert response.status_code == 400 and not Mailbox.objects.exists()
    return response.context["form"].errors["imap_host"]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1.",
        "127.0.0.1:993",
        "224.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "::127.0.0.1",
    ],
)
def test_the_form_refuses_a_host_that_is_not_a_public_address(rita, public_only, host):  # noqa: F811
    assert host_errors(rita, host)


def test_the_form_gives_one_error_for_a_private_unknown_or_loopback_host(
    rita,  # noqa: F811
    public_only,
    resolver,
):
    resolver.answers["intranet.client.example"] = [["10.1.2.3"]]

    errors = {
        host: host_errors(rita, host)
        for host in ("10.1.2.3", "intranet.client.example", "gone.client.example", "::1")
    }

    assert all(found == [hosts.UNREACHABLE] for found in errors.values()), errors
    assert resolver.lookups == ["intranet.client.example", "gone.client.example"]


def test_a_host_name_is_checked_in_bounded_time_on_the_worst_input(rita, public_only, resolver):  # noqa: F811
    # The model allows 255 characters; DNS 253, labels of 63. Non-ASCII labels go through IDNA.
    worst = [
        "a" * 255,
        "a" * 64 + ".example",
        "ä" * 255,
        ("ä" * 50 + ".") * 5,
        "a." * 127 + "a",
        "-a.example",
        "1." * 126 + "1",
        "0x7f000001",
    ]
    started = time.process_time()

    for host in worst:
        assert host_errors(rita, host), host

    assert time.process_time() - started < 1
    assert resolver.lookups == []
    resolver.answers["imap.xn--bcher-kva.example"] = [[PUBLIC]]
    added = rita.post(LIST, {**IMAP, "imap_host": "IMAP.Bücher.example"})
    assert added.status_code == 302, added.context["form"].errors
    assert Mailbox.objects.get().imap_host == "imap.xn--bcher-kva.example"


@pytest.mark.parametrize("security", ["none", "ssl", "starttls"])
@pytest.mark.parametrize("check_answer", [[PUBLIC], OSError("lookup failed")])
def test_the_connection_goes_only_to_the_address_the_check_allowed(
    rep, dovecot, imap_user, public_only, resolver, connections, security, check_answer
):
    # The resolver answers the check with a public address (or fails it) and a second lookup
    # with the Dovecot on 127.0.0.1: a second lookup must never happen.
    resolver.answers[NAME] = [check_answer, ["127.0.0.1"]]
    mailbox = imap_mailbox(rep, dovecot, imap_user, imap_host=NAME, imap_security=security)
    connections.port, connections.refused = dovecot.port, {PUBLIC}

    outcome = sync_mailbox(mailbox.pk)

    mailbox.refresh_from_db()
    assert (outcome.status, mailbox.syncs, mailbox.last_error) == ("failed", 0, hosts.UNREACHABLE)
    assert resolver.lookups == [NAME]
    assert connections.made == (
        [] if isinstance(check_answer, OSError) else [(PUBLIC, dovecot.port)]
    )


def test_the_worker_gives_one_error_for_refused_unknown_closed_and_silent_hosts(
    rep, dovecot, imap_user, public_only, resolver, connections
):
    resolver.answers.update(
        {
            "private.example": [["10.0.0.7"]],
            "closed.example": [[PUBLIC]],
            "silent.example": [["1.1.1.1"]],
        }
    )
    connections.refused, connections.silent = {PUBLIC}, {"1.1.1.1"}
    connections.port = dovecot.port
    names = ["private.example", "unknown.example", "closed.example", "silent.example", "127.0.0.1"]
    boxes = [
        imap_mailbox(rep, dovecot, imap_user, address=f"{n}@x.test", imap_host=name)
        for n, name in enumerate(names)
    ]

    outcomes = [sync_mailbox(box.pk) for box in boxes]

    errors = {box.imap_host: box.last_error for box in Mailbox.objects.order_by("pk")}
    assert [o.status for o in outcomes] == ["failed"] * 5
    assert set(errors.values()) == {hosts.UNREACHABLE}, errors
    assert connections.made == [(PUBLIC, dovecot.port), ("1.1.1.1", dovecot.port)]


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_is_verified_against_the_name_on_the_checked_address(
    rep, dovecot_tls, resolver, monkeypatch, security
):
    # The certificate names imap.vigil.test only, not 127.0.0.1 nor mail.vigil.test.
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot_tls.tls.ca_path))
    resolver.answers.update(
        {"imap.vigil.test": [["127.0.0.1"]], "mail.vigil.test": [["127.0.0.1"]]}
    )
    user = dovecot_tls.user(dovecot_tls.add_user(f"tls-{security}"))
    port = dovecot_tls.tls_port if security == "ssl" else dovecot_tls.port
    boxes = [
        imap_mailbox(
            rep,
            dovecot_tls,
            user,
            address=f"{n}@{DOMAIN}",
            imap_host=host,
            imap_port=port,
            imap_security=security,
        )
        for n, host in enumerate(("imap.vigil.test", "mail.vigil.test", "127.0.0.1"))
    ]

    outcomes = [sync_mailbox(box.pk).status for box in boxes]

    assert outcomes == ["synced", "failed", "failed"]
    assert resolver.lookups == ["imap.vigil.test", "mail.vigil.test"]
    errors = Mailbox.objects.exclude(pk=boxes[0].pk).values_list("last_error", flat=True)
    assert set(errors) == {hosts.UNREACHABLE}
