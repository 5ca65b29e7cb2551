"""Inbound mail is classified as a person's email, an automatic reply or a delivery report,
from its headers and its report parts only, in bounded time whatever the input.

The samples under samples/ are hand-built, modelled on real messages: a Gmail vacation
responder's reply, an Exchange Online out-of-office reply, a Postfix bounce and delay warning,
and an Exchange Online non-delivery report (their shapes as the sisimai project's set of
real bounce emails shows them; the addresses, ids and texts are ours)."""

import time
from email import message_from_bytes, policy
from email.parser import BytesParser
from pathlib import Path

import pytest

import mailsync.classify
from mailsync.classify import MAX_RECIPIENTS, classify
from mailsync.parsing import parse

SAMPLES = Path(__file__).parent / "samples"
SEQUENCE_EMAIL = "177254000000.4242.1234567890123456789@vigil.localhost"


def sample(name: str, *replacements: tuple[bytes, bytes]) -> bytes:
    raw = (SAMPLES / name).read_bytes()
    for old, new in replacements:
        assert old in raw, old
        raw = raw.replace(old, new)
    return raw


def plain(*headers: str, body: str = "Thanks, let's talk on Monday.") -> bytes:
    lines = [
        "From: Lena Lead <lena.lead@prospect.example>",
        "To: rita@vigil.example",
        "Subject: Re: a word about Prospect Media",
        "Date: Tue, 3 Mar 2026 10:00:00 +0000",
        "Message-ID: <reply-1@prospect.example>",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def report(blocks: str, *, returned: str = "", report_type: str = "delivery-status") -> bytes:
    """A multipart/report around a delivery-status part of these blocks."""
    parts = [
        "From: MAILER-DAEMON@mx1.vigil.example\r\nTo: vigil@vigil.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="b"\r\n\r\n',
        "--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n",
        f"--b\r\nContent-Type: message/delivery-status\r\n\r\n{blocks}\r\n",
    ]
    if returned:
        parts.append(f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}\r\n")
    return ("".join(parts) + "--b--\r\n").encode("utf-8", "surrogateescape")


def recipient(address: str, status: str = "5.1.1", action: str = "failed", **fields) -> str:
    extra = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    return (
        f"\r\nFinal-Recipient: rfc822; {address}\r\nAction: {action}\r\nStatus: {status}\r\n"
        + extra
    )


REPORTING = "Reporting-MTA: dns; mx1.vigil.example\r\n"


def read(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


# Automatic replies


def test_a_gmail_vacation_reply_is_an_automatic_reply():
    email = parse(sample("gmail-vacation.eml"))

    assert (email.kind, email.delivery_report) == ("auto_reply", [])
    assert email.subject == "Out of office until 16 March"  # the rest of the parse as before


def test_an_exchange_out_of_office_is_an_automatic_reply_by_its_loop_header_alone():
    full = sample("exchange-oof.eml")
    loop_only = sample("exchange-oof.eml", (b"Auto-Submitted: auto-generated\n", b""))

    assert parse(full).kind == "auto_reply"
    assert parse(loop_only).kind == "auto_reply"


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        'Auto-Submitted: auto-notified; owner-email="lena.lead@prospect.example"',
        "auto-submitted: AUTO-REPLIED (vacation)",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: auto_reply",
        "X-MS-Exchange-Inbox-Rules-Loop: lena.lead@prospect.example",
    ],
)
def test_each_automatic_reply_header_marks_one(header):
    assert parse(plain(header)).kind == "auto_reply"


@pytest.mark.parametrize(
    ("persons", "automatic"),
    [
        ((), ("Auto-Submitted: auto-replied",)),
        (("Auto-Submitted: no",), ("Auto-Submitted: auto-generated",)),
        (("Auto-Submitted: No (a person wrote this)",), ("Auto-Submitted: auto-replied (x)",)),
        (("Precedence: list", "List-Id: <sales.prospect.example>"), ("Precedence: bulk",)),
        # Outlook puts X-Auto-Response-Suppress on people's mail too.
        (("X-Auto-Response-Suppress: All",), ("X-MS-Exchange-Inbox-Rules-Loop: a@b.example",)),
        (("X-Autoreply: no",), ("X-Autoreply: yes",)),
    ],
)
def test_headers_that_look_alike_tell_a_person_from_a_machine(persons, automatic):
    assert parse(plain(*persons)).kind == "person"
    assert parse(plain(*automatic)).kind == "auto_reply"


def test_nothing_is_guessed_from_a_subject_or_a_body():
    raw = plain(body="I am out of the office until Monday.").replace(
        b"Subject: Re: a word about Prospect Media", b"Subject: Automatic reply: Out of Office"
    )

    assert parse(raw).kind == "person"
    assert parse(b"Auto-Submitted: auto-replied\r\n" + raw).kind == "auto_reply"


def test_a_plain_text_bounce_counts_as_automatic_only_when_its_headers_say_so():
    qmail = (
        b"From: MAILER-DAEMON@mail.prospect.example\r\nTo: vigil@vigil.example\r\n"
        b"Subject: failure notice\r\n\r\nHi. This is the qmail-send program.\r\n"
        b"<lena.lead@prospect.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n"
    )

    assert parse(qmail).kind == "person"
    assert parse(b"Auto-Submitted: auto-replied\r\n" + qmail).kind == "auto_reply"


def test_other_reports_are_automatic_not_delivery_reports():
    receipt = report("Reporting-UA: mail.prospect.example", report_type="disposition-notification")

    assert classified(read(receipt)) == ("auto_reply", [])


# Delivery reports


def test_a_postfix_bounce_names_the_failed_recipient_and_the_email_it_returns():
    email = parse(sample("postfix-dsn.eml"))

    # It says Auto-Submitted too: a delivery report first.
    assert email.kind == "delivery_report"
    assert email.delivery_report == [
        {
            "recipient": "lena.lead@prospect.example",
            "action": "failed",
            "status": "5.1.1",
            "diagnostic": "550 5.1.1 <lena.lead@prospect.example>: Recipient address "
            "rejected: User unknown in virtual mailbox table",
            "original_message_id": SEQUENCE_EMAIL,
        }
    ]


def test_an_exchange_non_delivery_report_is_read_from_its_returned_message():
    email = parse(sample("exchange-ndr.eml"))

    assert email.kind == "delivery_report"
    assert email.delivery_report == [
        {
            "recipient": "marco.wolff@globex.example",
            "action": "failed",
            "status": "5.1.10",
            "diagnostic": "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
            "marco.wolff@globex.example not found by SMTP address lookup",
            "original_message_id": "177254000000.4242.9876543210987654321@vigil.localhost",
        }
    ]


def test_a_delay_warning_is_a_delivery_report_with_a_temporary_status():
    (entry,) = parse(sample("delayed-dsn.eml")).delivery_report

    assert (entry["action"], entry["status"]) == ("delayed", "4.4.1")
    assert entry["diagnostic"].endswith("Connection timed out")


def test_the_address_written_to_wins_over_the_alias_it_reached():
    blocks = REPORTING + (
        "\r\nFinal-Recipient: rfc822; lena@mail.prospect.example\r\n"
        "Original-Recipient: rfc822;Lena.Lead@Prospect.Example\r\nAction: failed\r\n"
        "Status: 5.1.1 (user unknown)\r\n"
    )

    (entry,) = classified(read(report(blocks)))[1]

    assert (entry["recipient"], entry["status"]) == ("lena.lead@prospect.example", "5.1.1")
    assert entry["original_message_id"] == ""  # nothing returned


def test_a_report_without_recipients_is_still_a_delivery_report():
    assert classified(read(report(REPORTING))) == ("delivery_report", [])


def test_unreadable_recipient_fields_are_left_out():
    blocks = REPORTING + "".join(
        [
            "\r\nFinal-Recipient: lena.lead@prospect.example\r\nAction: failed\r\n",  # no type
            "\r\nFinal-Recipient: x-unix; lena\r\nAction: failed\r\n",
            "\r\nFinal-Recipient: rfc822; not an address\r\nAction: failed\r\n",
            "\r\nFinal-Recipient: rfc822; a@b@c.example\r\nAction: failed\r\n",
            recipient("ok@prospect.example", status="5.x.1", action="exploded"),
        ]
    )

    entries = classified(read(report(blocks)))[1]

    assert [(e["recipient"], e["action"], e["status"]) for e in entries] == [
        ("ok@prospect.example", "", "")
    ]


def test_a_report_read_leniently_or_as_text_still_names_its_recipients():
    raw = report(REPORTING + recipient("lena.lead@prospect.example"))
    compat = BytesParser(policy=policy.compat32).parsebytes(raw)
    global_status = raw.replace(b"message/delivery-status", b"message/global-delivery-status")

    assert classified(compat)[1][0]["recipient"] == "lena.lead@prospect.example"
    assert classified(read(global_status))[1][0]["recipient"] == "lena.lead@prospect.example"


def test_what_is_stored_is_clean_text():
    blocks = REPORTING + recipient(
        "lena.lead@prospect.example", **{"Diagnostic-Code": "smtp; 550 caf\xe9 \x00bad\udcff"}
    )

    (entry,) = parse(report(blocks)).delivery_report

    for value in entry.values():
        assert "\x00" not in value
        value.encode("utf-8")  # no lone surrogate: PostgreSQL's jsonb would refuse it
    assert entry["diagnostic"].startswith("550 caf")


# Hostile input: the worst each length allows, read in bounded time


def classified(message):
    """The classification alone (what it notes goes into parse warnings; see test_parsing)."""
    return classify(message, [].append)


def timed(message):
    started = time.perf_counter()
    result = classified(message)
    return result, time.perf_counter() - started


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("Auto-Submitted: auto-replied ", "auto_reply"),
        ("Auto-Submitted: ", "auto_reply"),  # a word of a million x: not "no"
        ("Precedence: bulk ", "auto_reply"),
        ("X-Autoreply: ", "auto_reply"),
        ("Content-Type: multipart/report; report-type=delivery-status; x=", "delivery_report"),
    ],
)
def test_a_one_megabyte_header_costs_what_its_first_kilobytes_cost(header, kind):
    message = read(plain(header + "x" * 1_000_000))

    (found, _), seconds = timed(message)

    assert seconds < 1
    assert found == kind


def test_five_thousand_recipients_are_capped_quickly():
    blocks = REPORTING + "".join(recipient(f"p{n}@prospect.example") for n in range(5000))
    message = read(report(blocks, returned=f"Message-ID: <{SEQUENCE_EMAIL}>"))

    (kind, entries), seconds = timed(message)

    assert seconds < 2
    assert kind == "delivery_report" and len(entries) == MAX_RECIPIENTS
    assert entries[-1]["recipient"] == f"p{MAX_RECIPIENTS - 1}@prospect.example"
    assert {e["original_message_id"] for e in entries} == {SEQUENCE_EMAIL}


def test_a_one_megabyte_diagnostic_and_message_id_are_cut():
    blocks = REPORTING + recipient(
        "lena.lead@prospect.example", **{"Diagnostic-Code": "smtp; 550 " + "no " * 350_000}
    )
    raw = report(blocks, returned="Message-ID: <" + "i" * 1_000_000 + "@x>")

    (_, entries), seconds = timed(read(raw))

    (entry,) = entries
    assert seconds < 1
    assert len(entry["diagnostic"]) == 300 and entry["diagnostic"].startswith("550 no no")
    assert len(entry["original_message_id"]) <= 998


def test_a_report_nested_a_thousand_levels_deep_is_read_in_bounded_time():
    nested = b'--b\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n' + b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (n, n + 1)
        for n in range(1000)
    )
    raw = report(REPORTING + recipient("lena.lead@prospect.example")).replace(
        b"--b--", nested + b"--b1000--"
    )

    email = parse(raw)  # too deep for the parser: headers only
    headers_only = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    (kind, entries), seconds = timed(headers_only)

    assert email.kind == "delivery_report"
    assert (kind, entries, seconds < 1) == ("delivery_report", [], True)


def status_as_text(text: str):
    """A report whose status part the parser left as text (as a lenient or headers-only
    parse can): classify splits it into blocks itself."""
    message = read(report(REPORTING).replace(b"message/delivery-status", b"text/plain"))
    part = message.get_payload()[1]
    part.set_payload(text)
    part.replace_header("Content-Type", "message/delivery-status")
    return message


def test_thousands_of_parts_blocks_and_lines_are_not_all_read():
    many_parts = report(REPORTING).replace(
        b"--b--", b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 500 + b"--b--"
    )
    many_blocks = "\r\n\r\n".join(f"X-Field-{n}: {n}" for n in range(200_000))
    one_long_field = "Final-Recipient: rfc822; a@b.example\r\nDiagnostic-Code: smtp; 550\r\n"
    one_long_field += " x\r\n" * 500_000  # folded onto the diagnostic, line after line

    for message in (read(many_parts), status_as_text(many_blocks)):
        (kind, entries), seconds = timed(message)

        assert seconds < 1
        assert (kind, entries) == ("delivery_report", [])
    (kind, entries), seconds = timed(status_as_text(one_long_field))
    assert seconds < 1
    assert [(e["recipient"], len(e["diagnostic"])) for e in entries] == [("a@b.example", 300)]


def test_a_report_the_email_package_fails_on_half_way_keeps_what_it_read_and_says_so(
    monkeypatch,
):
    blocks = REPORTING + recipient("lena.lead@prospect.example") + recipient("bo@prospect.example")
    read_one = mailsync.classify._recipient
    calls = []

    def failing_on_the_second(block, original):
        calls.append(block)
        if len(calls) == 2:
            raise ValueError("the email package failed here")
        return read_one(block, original)

    monkeypatch.setattr(mailsync.classify, "_recipient", failing_on_the_second)

    email = parse(report(blocks))

    assert [e["recipient"] for e in email.delivery_report] == ["lena.lead@prospect.example"]
    assert "delivery report read in part (ValueError): 1 recipient(s)" in email.warnings
