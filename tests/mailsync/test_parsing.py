"""parse() and sanitise_html(): the cases real mailboxes throw at them, built here as bytes.

Pure functions: no database."""

import base64
import hashlib
import time
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import make_msgid

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsync.parsing import (
    ADDRESS_LENGTH,
    ID_LENGTH,
    KEY_LENGTH,
    MAX_RECIPIENTS,
    MAX_REFERENCES,
    MAX_WARNINGS,
    NAME_LENGTH,
    WARNING_LENGTH,
    ParsedEmail,
    message_key_for,
    parse,
    sanitise_html,
)
from mailsync.suppression import normalise

HEADERS = (
    b"From: Ana Lima <ana@example.com>",
    b"To: Bob <bob@example.org>, carol@example.net",
    b"Cc: Dan <dan@example.com>",
    b"Subject: The offer",
    b"Message-ID: <m1@mail.example.com>",
    b"Date: Tue, 3 Sep 2024 10:11:12 +0200",
)


def message(*headers: bytes, body: bytes = b"Hello Bob\r\n", base: bool = True) -> bytes:
    """A raw message: the base headers, with any of the same names replaced by `headers`."""
    names = {h.split(b":", 1)[0].lower() for h in headers}
    kept = [h for h in HEADERS if h.split(b":", 1)[0].lower() not in names] if base else []
    return b"\r\n".join([*kept, *headers]) + b"\r\n\r\n" + body


def part(content_type: bytes, body: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([b"Content-Type: " + content_type, *headers]) + b"\r\n\r\n" + body


def multipart_part(subtype: bytes, *parts: bytes, boundary: bytes = b"b2") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    content_type = b"multipart/" + subtype + b'; boundary="' + boundary + b'"'
    return part(content_type, body + b"--" + boundary + b"--\r\n")


def multipart(subtype: bytes, *parts: bytes, headers: tuple[bytes, ...] = ()) -> bytes:
    """A whole multipart message (boundary b1) with the base headers."""
    content_type, body = multipart_part(subtype, *parts, boundary=b"b1").split(b"\r\n\r\n", 1)
    return message(b"MIME-Version: 1.0", content_type, *headers, body=body)


def assert_storable(email: ParsedEmail) -> None:
    """What PostgreSQL and the columns accept, whatever the input."""
    lengths = {
        "message_key": KEY_LENGTH,
        "thread_key": KEY_LENGTH,
        "message_id": ID_LENGTH,
        "in_reply_to": ID_LENGTH,
        "subject": ID_LENGTH,
        "from_name": NAME_LENGTH,
        "from_address": ADDRESS_LENGTH,
        "vigil_key": KEY_LENGTH,
        "text_body": None,
        "html_body": None,
    }
    strings = [(name, getattr(email, name), length) for name, length in lengths.items()]
    strings += [("references", r, ID_LENGTH) for r in email.references]
    strings += [("to", a, ADDRESS_LENGTH) for a in email.to]
    strings += [("cc", a, ADDRESS_LENGTH) for a in email.cc]
    strings += [("warnings", w, WARNING_LENGTH) for w in email.warnings]
    for attachment in email.attachments:
        assert set(attachment) == {"name", "type", "size"}
        assert isinstance(attachment["size"], int) and attachment["size"] >= 0
        strings += [("attachment name", attachment["name"], NAME_LENGTH)]
        strings += [("attachment type", attachment["type"], NAME_LENGTH)]
    for name, value, length in strings:
        assert isinstance(value, str), name
        assert "\x00" not in value, name
        value.encode("utf-8")  # no lone surrogate
        assert length is None or len(value) <= length, name
    for name in ("subject", "from_name", "from_address", "message_key", "thread_key"):
        assert "\r" not in getattr(email, name) and "\n" not in getattr(email, name), name
    assert email.message_key and email.thread_key
    assert len(email.references) <= MAX_REFERENCES
    assert len(email.to) <= MAX_RECIPIENTS and len(email.cc) <= MAX_RECIPIENTS
    assert len(email.warnings) <= MAX_WARNINGS
    assert email.date is None or email.date.utcoffset().total_seconds() == 0


# Ordinary mail


def test_a_plain_message_is_read_whole():
    email = parse(message(b"X-Vigil-Outbox: nurture:42:7"))

    assert email.message_key == email.message_id == "m1@mail.example.com"
    assert email.thread_key == "m1@mail.example.com"
    assert (email.from_name, email.from_address) == ("Ana Lima", "ana@example.com")
    assert email.to == ["bob@example.org", "carol@example.net"]
    assert email.cc == ["dan@example.com"]
    assert email.date == datetime(2024, 9, 3, 8, 11, 12, tzinfo=UTC)
    assert email.subject == "The offer"
    assert email.text_body == "Hello Bob\n"
    assert (email.html_body, email.attachments) == ("", [])
    assert email.vigil_key == "nurture:42:7"
    assert email.raw_size == len(message(b"X-Vigil-Outbox: nurture:42:7"))
    assert email.warnings == []
    assert not email.unparsed


def test_mail_not_from_the_crm_has_no_vigil_key():
    assert parse(message()).vigil_key == ""


def test_multipart_alternative_gives_the_text_and_sanitised_html():
    raw = multipart(
        b"alternative",
        part(
            b"text/plain; charset=utf-8", b"Bonjour caf\xc3\xa9", b"Content-Transfer-Encoding: 8bit"
        ),
        part(
            b"text/html; charset=utf-8",
            b'<p onclick="steal()">Bonjour <b>caf\xc3\xa9</b><script>alert(1)</script>'
            b'<img src="https://tracker.example/open.gif"></p>',
        ),
    )

    email = parse(raw)

    assert email.text_body == "Bonjour café"
    assert email.html_body == "<p>Bonjour <b>café</b></p>"
    assert email.attachments == []


def test_quoted_printable_and_base64_bodies_are_decoded():
    qp = multipart(
        b"alternative",
        part(
            b"text/plain; charset=utf-8",
            b"Bonjour caf=C3=A9 =\r\nsoft break",
            b"Content-Transfer-Encoding: quoted-printable",
        ),
        part(
            b"text/html; charset=iso-8859-1",
            base64.b64encode("<p>Bonjour café</p>".encode("latin-1")),
            b"Content-Transfer-Encoding: base64",
        ),
    )

    email = parse(qp)

    assert email.text_body == "Bonjour café soft break"
    assert email.html_body == "<p>Bonjour café</p>"


def test_an_html_only_email_gets_a_text_body_from_its_html():
    raw = message(
        b"Content-Type: text/html; charset=utf-8",
        body=b"<html><head><title>T</title><style>p {color: red}</style></head><body>"
        b"<p>Hello&nbsp;there &amp; welcome</p><div>second<br>third</div>"
        b"<script>var x = 1;</script></body></html>",
    )

    email = parse(raw)

    assert email.text_body == "Hello\xa0there & welcome\nsecond\nthird"
    assert email.html_body == "<p>Hello&nbsp;there &amp; welcome</p><div>second<br>third</div>"


def test_inline_text_parts_after_the_body_are_kept_alternatives_are_not():
    raw = multipart(
        b"mixed",
        multipart_part(
            b"alternative",
            part(b"text/plain", b"the body"),
            part(b"text/plain", b"another alternative"),
        ),
        part(b"text/plain", b"-- the list footer"),
    )

    assert parse(raw).text_body == "the body\n-- the list footer"


def test_attachments_are_listed_with_their_decoded_size():
    pdf = b"%PDF-1.4 " + bytes(range(256)) * 4
    raw = multipart(
        b"mixed",
        part(b"text/plain", b"See attached."),
        part(
            b'application/pdf; name="ignored.pdf"',
            base64.encodebytes(pdf),
            b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf",
            b"Content-Transfer-Encoding: base64",
        ),
        part(
            b"image/png",
            base64.encodebytes(b"\x89PNG" + b"\x00" * 96),
            b"Content-Disposition: inline",
            b"Content-ID: <logo@x>",
            b"Content-Transfer-Encoding: base64",
        ),
        part(b'text/csv; name="=?utf-8?q?leads_=C3=A9t=C3=A9.csv?="', b"a,b\r\n1,2\r\n"),
        part(b"message/rfc822", b"Subject: forwarded\r\nFrom: x@y.example\r\n\r\ninner body\r\n"),
    )

    email = parse(raw)

    assert email.text_body == "See attached."
    assert email.attachments == [
        {"name": "résumé.pdf", "type": "application/pdf", "size": len(pdf)},
        {"name": "", "type": "image/png", "size": 100},
        {"name": "leads été.csv", "type": "text/csv", "size": 10},
        {"name": "", "type": "message/rfc822", "size": 53},
    ]


def test_a_forwarded_message_is_an_attachment_not_part_of_the_body():
    inner = message(
        b"Subject: the original", b"Message-ID: <inner@x>", body=b"original text\r\n", base=False
    )
    raw = multipart(b"mixed", part(b"text/plain", b"FYI"), part(b"message/rfc822", inner))

    email = parse(raw)

    assert (email.subject, email.message_key, email.text_body) == (
        "The offer",
        "m1@mail.example.com",
        "FYI",
    )
    assert [a["type"] for a in email.attachments] == ["message/rfc822"]


def test_text_parts_named_like_files_are_the_body():
    """A real-world shape: every text part says `inline; filename="msg.txt"`. They are the
    body, as Python's own `EmailMessage.get_body` finds it, not two attachments."""
    named = b'Content-Disposition: inline; filename="msg.txt"'
    raw = multipart(
        b"alternative",
        part(b"text/plain; charset=utf-8", b"Can we meet on Tuesday at 10?\r\n", named),
        part(b"text/html; charset=utf-8", b"<p>Can we meet on Tuesday at 10?</p>\r\n", named),
    )

    email = parse(raw)

    python = BytesParser(policy=policy.default).parsebytes(raw)
    assert email.text_body == "Can we meet on Tuesday at 10?\n"
    assert email.text_body == python.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert email.html_body == "<p>Can we meet on Tuesday at 10?</p>"
    assert email.attachments == []


def test_a_text_file_shown_inline_after_the_body_is_listed_and_its_text_kept():
    raw = multipart(
        b"mixed",
        part(b"text/plain", b"Minutes attached.\r\n"),
        part(
            b"text/plain",
            b"1. Budget approved\r\n",
            b'Content-Disposition: inline; filename="minutes.txt"',
        ),
        part(b"text/plain", b"draft", b'Content-Disposition: attachment; filename="notes.txt"'),
    )

    email = parse(raw)

    assert email.text_body == "Minutes attached.\n\n1. Budget approved\n"
    assert email.attachments == [
        {"name": "minutes.txt", "type": "text/plain", "size": 20},
        {"name": "notes.txt", "type": "text/plain", "size": 5},
    ]


# Threading and keys


def test_references_and_in_reply_to_give_the_thread():
    email = parse(
        message(
            b"In-Reply-To: <parent@x> (from the list)",
            b"References: <root@x>\r\n <middle@x>\r\n\t<parent@x>",
        )
    )

    assert email.in_reply_to == "parent@x"
    assert email.references == ["root@x", "middle@x", "parent@x"]
    assert email.thread_key == "root@x"


def test_without_references_the_thread_is_the_replied_to_message():
    assert parse(message(b"In-Reply-To: <parent@x>")).thread_key == "parent@x"


def test_message_ids_written_without_brackets_are_read():
    email = parse(message(b"Message-ID: bare@x", b"References: root@x  parent@x"))

    assert (email.message_key, email.references) == ("bare@x", ["root@x", "parent@x"])


def test_references_keep_the_root_and_the_latest():
    ids = b" ".join(b"<r%d@x>" % n for n in range(80))

    email = parse(message(b"References: " + ids))

    assert email.references == ["r0@x", *[f"r{n}@x" for n in range(31, 80)]]
    assert email.thread_key == "r0@x"
    assert any("References" in w for w in email.warnings)


def test_a_message_without_message_id_is_keyed_by_its_content():
    raw = message(b"Message-ID:  ")
    other = message(b"Message-ID:  ", b"Subject: The offer, again")

    first, again, different = parse(raw), parse(raw), parse(other)

    assert first.message_key == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert first.message_key == again.message_key != different.message_key
    assert first.thread_key == first.message_key
    assert first.message_id == ""


def test_a_message_id_longer_than_the_key_column_is_hashed_like_its_replies_thread_key():
    long_id = "x" * 400 + "@example.com"
    root = parse(message(b"Message-ID: <" + long_id.encode() + b">"))
    reply = parse(message(b"Message-ID: <reply@x>", b"References: <" + long_id.encode() + b">"))

    assert root.message_id == long_id
    assert root.message_key.startswith("sha256:") and len(root.message_key) <= KEY_LENGTH
    assert reply.thread_key == root.message_key == root.thread_key


def test_message_key_for_is_the_key_parse_gives():
    message_id = make_msgid(domain="vigil.localhost")

    assert message_key_for(message_id) == message_id[1:-1]
    assert message_key_for("<abc@vigil.localhost>") == "abc@vigil.localhost"
    assert message_key_for("  <abc@vigil.localhost>\r\n") == "abc@vigil.localhost"
    assert message_key_for("abc@vigil.localhost") == "abc@vigil.localhost"
    assert message_key_for("") == ""
    assert parse(message(b"Message-ID: " + message_id.encode())).message_key == (
        message_key_for(message_id)
    )


# Dates


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        (b"Tue, 3 Sep 2024 10:11:12 +0200", datetime(2024, 9, 3, 8, 11, 12, tzinfo=UTC)),
        (b"Tue, 3 Sep 2024 10:11:12 -0000", datetime(2024, 9, 3, 10, 11, 12, tzinfo=UTC)),
        (b"3 Sep 2024 10:11:12 GMT", datetime(2024, 9, 3, 10, 11, 12, tzinfo=UTC)),
    ],
)
def test_dates_are_aware_and_in_utc(date, expected):
    assert parse(message(b"Date: " + date)).date == expected


@pytest.mark.parametrize(
    "date",
    [
        b"",
        b"yesterday",
        b"Mon, 1 Jan 1900 00:00:00 +0000",
        b"Fri, 31 Dec 9999 23:59:59 -1200",
        b"Sat, 1 Jan 2180 00:00:00 +0000",
        b"99999999999999999999999",
        b"Tue, 3 Sep 2024 10:11:12 +9999",
        b"\xff\xfe\x00",
    ],
)
def test_missing_unreadable_and_implausible_dates_are_none_with_a_warning(date):
    email = parse(message(b"Date: " + date))

    assert email.date is None
    assert any("Date" in w for w in email.warnings)
    assert email.subject == "The offer"


# Malformed mail: what is kept, what is noted


def test_a_broken_base64_body_keeps_the_headers_and_notes_the_defect():
    raw = message(
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: base64",
        body=b"SGVsbG8gd29ybGQ!!!*\r\nnot base64 at all===\r\n",
    )

    email = parse(raw)

    assert (email.subject, email.from_address) == ("The offer", "ana@example.com")
    assert any(w.startswith("InvalidBase64") for w in email.warnings)
    assert not email.unparsed


def test_broken_quoted_printable_is_read_as_far_as_it_goes():
    raw = message(
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Transfer-Encoding: quoted-printable",
        body=b"caf=C3=A9 =ZZ bad escape =\r\n=C3",
    )

    email = parse(raw)

    assert email.text_body.startswith("café =ZZ bad escape ")
    assert email.subject == "The offer"


def test_an_unknown_charset_is_read_as_utf8_with_a_warning():
    raw = message(b"Content-Type: text/plain; charset=x-klingon", body=b"caf\xc3\xa9 caf\xe9")

    email = parse(raw)

    assert email.text_body == "café caf\ufffd"
    assert any("unknown charset" in w for w in email.warnings)


@pytest.mark.parametrize("charset", [b"zlib", b"base64", b'"utf-8\x00"'])
def test_a_wrong_or_unusable_charset_is_replaced_not_raised(charset):
    raw = message(b"Content-Type: text/plain; charset=" + charset, body=b"na\xefve \xff")

    email = parse(raw)

    assert email.text_body.startswith("na")
    assert "\ufffd" in email.text_body
    assert email.warnings


# 8-bit text whose sender did not say (or said wrongly) which charset it is in

JOSE = "José Pérez".encode("windows-1252")
FALLBACK = "decoded as windows-1252"


def test_8bit_text_without_a_charset_is_read_in_the_fallback_charset():
    raw = message(
        b"From: " + JOSE + b" <jose@example.com>",
        b"Subject: Re: " + JOSE,
        body=b"Hola, soy " + JOSE + b".\r\n",
    )

    email = parse(raw)

    assert (email.from_name, email.from_address) == ("José Pérez", "jose@example.com")
    assert email.subject == "Re: José Pérez"
    assert email.text_body == "Hola, soy José Pérez.\n"
    assert sorted(email.warnings) == [
        f"From: 8-bit bytes that are not UTF-8, {FALLBACK}",
        f"Subject: 8-bit bytes that are not UTF-8, {FALLBACK}",
        f"text/plain: 8-bit bytes without a charset, {FALLBACK}",
    ]


@pytest.mark.parametrize("declared", [b"us-ascii", b"utf-8", b'"UTF8"'])
def test_8bit_text_labelled_ascii_or_utf8_is_read_in_the_fallback_charset(declared):
    raw = message(b"Content-Type: text/plain; charset=" + declared, body=b"na\xefve \xff")

    email = parse(raw)

    assert email.text_body == "naïve ÿ"
    assert len(email.warnings) == 1 and email.warnings[0].endswith(FALLBACK)


def test_utf8_stays_utf8_where_it_is_among_8bit_bytes_that_are_not():
    raw = message(b"Subject: caf\xc3\xa9 \xe0 la cr\xe8me", body=b"caf\xc3\xa9 \xe0 la cr\xe8me")

    email = parse(raw)

    assert email.subject == "café à la crème"
    assert email.text_body == "café à la crème"


def test_the_fallback_charset_is_a_setting():
    hello = "Привет".encode("koi8-r")

    with override_settings(VIGIL_MAILSYNC_FALLBACK_CHARSET="koi8-r"):
        email = parse(message(b"Subject: " + hello, body=hello))

    assert (email.subject, email.text_body) == ("Привет", "Привет")
    assert all(w.endswith("decoded as koi8-r") for w in email.warnings)


def test_an_8bit_header_in_utf8_is_decoded():
    raw = message(b"Subject: Caf\xc3\xa9 cr\xc3\xa8me", b"From: J\xc3\xbcrgen <j@example.com>")

    email = parse(raw)

    assert (email.subject, email.from_name) == ("Café crème", "Jürgen")
    assert email.warnings == []


def test_an_8bit_header_not_in_utf8_is_decoded_in_the_fallback_charset():
    email = parse(message(b"Subject: Caf\xe9 cr\xe8me"))

    assert email.subject == "Café crème"
    assert email.warnings == ["Subject: 8-bit bytes that are not UTF-8, decoded as windows-1252"]


def test_nul_bytes_are_stripped_everywhere():
    raw = multipart(
        b"mixed",
        part(b"text/plain; charset=utf-8", b"bo\x00dy"),
        part(b"text/html", b"<p>h\x00tml</p>"),
        part(b'application/octet-stream; name="f\x00.bin"', b"\x00\x00\x00"),
        headers=(b"Subject: =?utf-8?q?nul=00here?= sub\x00ject", b"X-Vigil-Outbox: k\x00ey"),
    )

    email = parse(raw)

    assert email.subject == "nulhere subject"
    assert email.text_body == "body"
    assert email.html_body == "<p>html</p>"
    assert email.attachments == [{"name": "f.bin", "type": "application/octet-stream", "size": 3}]
    assert email.vigil_key == "key"
    assert_storable(email)


def test_encoded_line_breaks_cannot_inject_headers_or_addresses():
    raw = message(
        b"Subject: =?utf-8?q?Hi=0D=0ABcc:_victim@example.com?=",
        b"From: =?utf-8?q?Ana=0D=0ATo:_evil@example.com?= <ana@example.com>",
        b"To: =?utf-8?q?x=0D=0ACc:_evil@example.com?= <bob@example.org>,\r\n"
        b' "Quoted\r\n Cc: evil@example.com" <carol@example.net>',
        b"Cc: ",
    )

    email = parse(raw)

    assert email.subject == "Hi Bcc: victim@example.com"
    assert (email.from_name, email.from_address) == ("Ana To: evil@example.com", "ana@example.com")
    assert email.to == ["bob@example.org", "carol@example.net"]
    assert email.cc == []
    assert_storable(email)


def test_a_folded_header_is_one_header():
    email = parse(message(b"Subject: Hello\r\n Bcc: evil@example.com\r\n\tand more"))

    assert email.subject == "Hello Bcc: evil@example.com and more"
    assert email.cc == ["dan@example.com"]


def test_a_filename_cannot_carry_a_line_break():
    raw = multipart(
        b"mixed",
        part(
            b"application/pdf",
            b"x",
            b"Content-Disposition: attachment; filename*=utf-8''a%0D%0AContent-Type%3A%20x.pdf",
        ),
    )

    assert parse(raw).attachments[0]["name"] == "a Content-Type: x.pdf"


def test_international_addresses_are_kept_normalised():
    raw = message(
        b"From: =?utf-8?q?J=C3=BCrgen?= <J\xc3\xbcrgen@B\xc3\xbccher.Example>",
        b"To: \xe7\x94\xb0\xe4\xb8\xad@\xe4\xbe\x8b\xe3\x81\x88.jp, Ana@Example.COM",
    )

    email = parse(raw)

    assert (
        email.from_address == "jürgen@xn--bcher-kva.example" == normalise("Jürgen@Bücher.Example")
    )
    assert email.from_name == "Jürgen"
    assert email.to == [normalise("田中@例え.jp"), "ana@example.com"]


def test_invalid_addresses_are_left_out_with_a_warning_each():
    raw = message(
        b"To: bob@example.org, not-an-address, @example.com, a@b@c, <>, x y@z, BOB@example.org"
    )

    email = parse(raw)

    assert email.to == ["bob@example.org"]
    dropped = [w for w in email.warnings if w.startswith("To: left out")]
    assert len(dropped) == 4


def test_an_address_list_the_parser_cannot_read_costs_only_that_list():
    raw = message(b"From: " + b"(" * 5000 + b"ana@example.com")

    email = parse(raw)

    assert email.from_address == ""
    assert email.to == ["bob@example.org", "carol@example.net"]
    assert any("From" in w for w in email.warnings)


def test_ten_thousand_recipients_are_capped_quickly():
    to = b", ".join(b"Person %d <p%d@example.com>" % (n, n) for n in range(10_000))

    started = time.perf_counter()
    email = parse(message(b"To: " + to))

    assert time.perf_counter() - started < 5
    assert email.to == [f"p{n}@example.com" for n in range(MAX_RECIPIENTS)]
    assert any("kept the first 1000" in w for w in email.warnings)


def test_a_one_megabyte_subject_is_cut_quickly():
    started = time.perf_counter()
    email = parse(message(b"Subject: " + b"spam " * 200_000))

    assert time.perf_counter() - started < 5
    assert len(email.subject) == ID_LENGTH
    assert email.subject.startswith("spam spam")
    assert any("Subject" in w for w in email.warnings)


def test_warnings_are_few_and_short():
    to = b", ".join(b"invalid-%d-" % n + b"x" * 300 for n in range(100))

    email = parse(message(b"To: " + to))

    assert len(email.warnings) == MAX_WARNINGS
    assert all(len(w) <= WARNING_LENGTH for w in email.warnings)


def test_defects_are_noted_by_class_name_once():
    raw = multipart(
        b"mixed",
        part(b"text/plain", b"ok", b"Content-Transfer-Encoding: base64", b"Content-Type: x/y"),
        part(b"text/plain", b"!!!", b"Content-Transfer-Encoding: base64"),
        part(b"text/plain", b"???", b"Content-Transfer-Encoding: base64"),
    )

    warnings = parse(raw).warnings

    assert len(warnings) == len(set(warnings))
    assert any(w.endswith("Defect") for w in warnings)


def test_a_content_type_that_crashes_policy_default_is_read_leniently():
    raw = message(b"Content-Type: charset*;xxxxx*0*", body=b"still here\r\n")

    email = parse(raw)

    assert (email.subject, email.text_body) == ("The offer", "still here\n")
    assert any("IndexError" in w for w in email.warnings)
    assert not email.unparsed


def test_one_crashing_part_header_costs_only_that_part():
    raw = multipart(
        b"mixed",
        part(b"text/plain", b"kept"),
        part(b"charset*;xxxxx*0*", b"read as plain text"),
        part(b"application/pdf", b"%PDF", b"Content-Disposition: attachment; filename=a.pdf"),
    )

    email = parse(raw)

    assert email.text_body == "kept\nread as plain text"
    assert email.attachments == [{"name": "a.pdf", "type": "application/pdf", "size": 4}]


def test_empty_input_is_unparsed():
    email = parse(b"")

    assert email.unparsed
    assert email.message_key == "sha256:" + hashlib.sha256(b"").hexdigest()
    assert email.warnings == ["empty message"]
    assert_storable(email)


@pytest.mark.parametrize(
    "raw",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 8,
        b"\r\n\r\njust a body without headers",
        b"   \r\n\t",
    ],
)
def test_binary_garbage_is_unparsed_with_a_warning(raw):
    email = parse(raw)

    assert email.unparsed
    assert email.warnings
    assert email.message_key == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert email.raw_size == len(raw)
    assert (email.subject, email.text_body, email.to) == ("", "", [])


def test_a_message_of_headers_only_is_read():
    email = parse(b"From: ana@example.com\r\nSubject: only headers")

    assert (email.subject, email.from_address, email.text_body) == (
        "only headers",
        "ana@example.com",
        "",
    )
    assert not email.unparsed


def test_a_multipart_without_boundary_keeps_its_headers():
    raw = message(
        b"Content-Type: multipart/mixed",
        body=b"--zz\r\nContent-Type: text/plain\r\n\r\nlost boundary\r\n--zz--\r\n",
    )

    email = parse(raw)

    assert email.subject == "The offer"
    assert "lost boundary" in email.text_body
    assert "NoBoundaryInMultipartDefect" in email.warnings


def nested(depth: int) -> bytes:
    opening = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (n, n + 1)
        for n in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % n for n in reversed(range(depth)))
    innermost = b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n--b%d--\r\n" % (depth, depth)
    return message(
        b"Content-Type: multipart/mixed; boundary=b0", body=opening + innermost + closing
    )


def test_deep_nesting_is_followed_twenty_levels():
    shallow, deep = parse(nested(15)), parse(nested(30))

    assert shallow.text_body == "deep"
    assert deep.text_body == ""
    assert any("deeper than 20" in w for w in deep.warnings)
    assert deep.subject == "The offer"


def test_nesting_too_deep_for_the_parser_keeps_the_headers():
    email = parse(nested(1500))

    assert (email.subject, email.from_address) == ("The offer", "ana@example.com")
    assert email.text_body == ""
    assert any("nested too deeply" in w for w in email.warnings)
    assert not email.unparsed


# sanitise_html


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
        ('<b onmouseover="alert(1)">x</b>', "<b>x</b>"),
        ('<img src="x" onerror="alert(1)">after', "after"),
        ('<img src="https://tracker.example/pixel.gif?id=7">', ""),
        ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
        ('<a href=" JaVaScRiPt:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
        (
            '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>',
            '<a rel="noopener noreferrer nofollow">x</a>',
        ),
        ('<a href="/admin/delete">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
        ('<div style="background:url(https://tracker.example/x)">x</div>', "<div>x</div>"),
        ("<style>body{background:url(https://t.example/x)}</style>x", "x"),
        ('<svg onload="alert(1)"><circle r="1"/></svg>x', "x"),
        ('<iframe src="https://evil.example"></iframe>x', "x"),
        ('<form action="https://evil.example"><input name="p"></form>x', "x"),
        ('<object data="x.swf"></object><embed src="x.swf">x', "x"),
        ("<!-- secret --><p>x</p>", "<p>x</p>"),
        ('<p class="c" id="i" title="t">x</p>', "<p>x</p>"),
        (
            '<table><tr><td colspan="2" style="x" onclick="y">a</td></tr></table>',
            '<table><tbody><tr><td colspan="2">a</td></tr></tbody></table>',
        ),
        ("", ""),
        ("  \r\n ", ""),
    ],
)
def test_sanitise_html_removes_what_could_run_track_or_mislead(dirty, clean):
    assert sanitise_html(dirty) == clean


def test_sanitise_html_keeps_formatting_and_safe_links():
    dirty = (
        "<h2>Offer</h2><p>Dear <strong>Bob</strong>, <em>see</em> <u>our</u> <code>terms</code>"
        "</p><ul><li>one</li></ul><ol><li>two</li></ol><blockquote>quoted</blockquote><pre>pre"
        '</pre><hr><a href="https://example.com/o?a=1&amp;b=2" title="t">site</a> '
        '<a href="mailto:ana@example.com">mail</a>'
    )

    html = sanitise_html(dirty)

    for kept in ("<h2>", "<strong>", "<em>", "<u>", "<code>", "<ul>", "<ol>", "<blockquote>"):
        assert kept in html
    assert (
        '<a href="https://example.com/o?a=1&amp;b=2" title="t" rel="noopener noreferrer nofollow">'
        in html
    )
    assert '<a href="mailto:ana@example.com" rel="noopener noreferrer nofollow">' in html


def test_sanitise_html_accepts_nul_and_lone_surrogates():
    assert sanitise_html("<p>a\x00b\udce9</p>") == "<p>ab\ufffd</p>"


# Whatever the bytes


VALID = multipart(
    b"mixed",
    multipart_part(
        b"alternative",
        part(
            b"text/plain; charset=utf-8",
            b"Hello caf=C3=A9",
            b"Content-Transfer-Encoding: quoted-printable",
        ),
        part(
            b"text/html; charset=iso-8859-1",
            base64.b64encode(b"<p>caf\xe9</p>"),
            b"Content-Transfer-Encoding: base64",
        ),
    ),
    part(
        b'application/pdf; name="a.pdf"',
        base64.encodebytes(b"%PDF" * 40),
        b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf",
        b"Content-Transfer-Encoding: base64",
    ),
    part(b"message/rfc822", b"Subject: inner\r\nFrom: x@y.example\r\n\r\ninner\r\n"),
    headers=(
        b"References: <root@x> <parent@x>",
        b"In-Reply-To: <parent@x>",
        b"X-Vigil-Outbox: key-1",
        b"Subject: =?utf-8?b?Q2Fmw6k=?= offer",
    ),
)
TOKENS = [
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b":", b";", b",", b"<", b">", b'"', b"(", b")", b"\\",
    b"=?", b"?=", b"=?utf-8?q?", b"=?x-bad?b?", b"=0D=0A", b"--b1", b"--b2", b"--b1--",
    b"boundary=", b"charset=", b"*=", b"''", b"%0D%0A", b"\x00", b"\xff", b"\xc3", b"\xe9",
    b"@", b" ", b"\t", b"Content-Type: multipart/mixed; boundary=b1\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\nbegin 644 f\r\n", b"==", b"=\r\n",
]  # fmt: skip


@st.composite
def mutations(draw) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 10))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "noise"]))
        if action == "insert":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif action == "replace":
            data[at : at + 3] = draw(st.sampled_from(TOKENS))
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_the_valid_message_of_the_fuzz_tests_is_read_whole():
    email = parse(VALID)

    assert email.subject == "Café offer"
    assert email.text_body == "Hello café"
    assert email.html_body == "<p>café</p>"
    assert [a["type"] for a in email.attachments] == ["application/pdf", "message/rfc822"]
    assert (email.thread_key, email.vigil_key) == ("root@x", "key-1")


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes_never_raise(raw):
    assert_storable(parse(raw))


@FUZZ
@given(mutations())
def test_mutated_messages_never_raise(raw):
    assert_storable(parse(raw))
