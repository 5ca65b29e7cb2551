"""The email backlog: every email exchanged with our leads and advertisers.

An email's natural key is its content (`content_key`), UNIQUE in the table: the same message
in a Sent folder and in a colleague's inbox is one row, with a MailboxCopy for each folder it
sits in, and a different message under the same Message-ID is another row. A Message-ID is
no secret (every reply quotes it) and anyone can write one, so it never joins two mailboxes'
copies, nor a copy to the CRM's own email unless the copy says what the CRM sent. Storing a
batch is a handful of set-based statements, whatever its size, and a re-run inserts nothing
twice.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from hashlib import sha256
from types import SimpleNamespace
from typing import Any, cast

from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.utils.html import strip_tags

from crm import visibility
from crm.sql import insert_rows
from mailsync import signals
from mailsync.models import BacklogEmail, EmailAddress, Mailbox, MailboxCopy, OutboxMessage
from mailsync.parsing import ParsedEmail, message_key_for, parse, sanitise_html
from mailsync.suppression import normalise

Role = EmailAddress.Role
# A backlog row's fields that an outbox message has no value for.
EMPTY: dict[str, Any] = {
    "references": [],
    "from_name": "",
    "attachments": [],
    "raw": None,
    "parse_warnings": [],
    "unparsed": False,
    "kind": BacklogEmail.Kind.PERSON,
    "delivery_report": [],
}


@dataclass
class Fetched:
    """One message as the server gave it: its UID in the folder and its raw bytes, parsed
    already if the caller did it (the sync parses on the thread that downloads)."""

    uid: int
    raw: bytes
    parsed: ParsedEmail | None = None


def store(
    mailbox: Mailbox, folder: str, uidvalidity: int, fetched: Sequence[Fetched], now: datetime
) -> int:
    """Store a fetched batch of one folder: new emails, where each was seen, and its
    addresses. Call inside the transaction that also moves the folder's state on. Returns how
    many emails were new to the backlog."""
    parsed = {item.uid: item.parsed or parse(item.raw) for item in fetched}
    outbox = _outbox_rows(parsed.values())
    rows: dict[str, dict[str, Any]] = {}
    first_uid: dict[str, int] = {}  # an email twice in a folder is one copy, at its first UID
    own = _address(mailbox.address)
    for item in fetched:
        row = _row(own, folder, parsed[item.uid], item.raw, outbox, now)
        if row["content_key"] not in rows:
            rows[row["content_key"]] = row
            first_uid[row["content_key"]] = item.uid
    ids, new = _insert(rows)
    insert_rows(
        MailboxCopy,
        [
            {
                "email": ids[key],
                "mailbox": mailbox.pk,
                "folder": folder,
                "uidvalidity": uidvalidity,
                "uid": uid,
            }
            for key, uid in first_uid.items()
        ],
        conflict=["mailbox", "folder", "email"],
        update=["uidvalidity", "uid"],
    )
    inbound = [
        SimpleNamespace(pk=ids[key], **row)
        for key, row in rows.items()
        if row["direction"] == BacklogEmail.Direction.INBOUND
    ]
    if inbound:
        signals.inbound_email.send(sender=BacklogEmail, emails=inbound)
    return new


def record_sent(messages: Iterable[OutboxMessage], now: datetime) -> int:
    """Put outbox messages just sent into the backlog, tagged as sent from the CRM. A copy
    the mailbox sync finds later in a Sent folder joins this row when it says the same."""
    rows = {}
    for msg in messages:
        key = message_key_for(msg.message_id)
        rows[sent_key(msg.pk)] = {
            **EMPTY,
            "content_key": sent_key(msg.pk),
            "message_key": key,
            "message_id": key,
            "in_reply_to": message_key_for(msg.headers.get("In-Reply-To", "")),
            "thread_key": _thread_key(msg.headers, key),
            "from_address": _address(msg.from_email),
            "to": [a for a in map(_address, msg.to) if a],
            "cc": [a for a in map(_address, msg.cc) if a],
            "date": now,
            "subject": msg.subject,
            "text_body": msg.text_body.replace("\x00", ""),
            "html_body": sanitise_html(msg.html_body),
            "raw_size": len(msg.text_body.encode()) + len(msg.html_body.encode()),
            "direction": BacklogEmail.Direction.OUTBOUND,
            "sent_from_crm": True,
            "outbox_id": msg.pk,
            "created_at": now,
        }
    return _insert(rows)[1]


def _insert(rows: dict[str, dict[str, Any]]) -> tuple[dict[str, int], int]:
    """Insert the emails not in the backlog yet, and the addresses of all: their ids by
    content key, and how many were new."""
    if not rows:
        return {}, 0
    before = BacklogEmail.objects.filter(content_key__in=rows).count()
    insert_rows(BacklogEmail, list(rows.values()), conflict=["content_key"])
    ids = dict(BacklogEmail.objects.filter(content_key__in=rows).values_list("content_key", "pk"))
    insert_rows(
        EmailAddress,
        [
            {"email": ids[key], "address": address, "role": role}
            for key, row in rows.items()
            for role, addresses in (
                (Role.FROM, [row["from_address"]] if row["from_address"] else []),
                (Role.TO, row["to"]),
                (Role.CC, row["cc"]),
            )
            for address in addresses  # a repeated one is skipped by ON CONFLICT DO NOTHING
        ],
        conflict=["email", "address", "role"],
    )
    return ids, len(ids) - before


def visible_to(user) -> Q:
    """The backlog emails a user may read: those with a copy in a mailbox they may see (their
    own; a manager's team's; an administrator's, all), and the email of an outbox message
    about a record they may see (a nurture email: whoever may see its lead)."""
    if user.is_administrator:
        return Q()
    owners = Q(mailbox__owner=user)
    if user.role == user.Role.MANAGER and user.team_id:
        owners |= Q(mailbox__owner__team_id=user.team_id)
    readable = Q(Exists(MailboxCopy.objects.filter(owners, email=OuterRef("pk"))))
    # The kind is matched by name in the same query: a lookup of its id first would cost a
    # query on every page of a fresh process.
    for model in cast(list[type[Model]], list(visibility.TEAM_PATHS)):
        records = model._default_manager.filter(pk=OuterRef("outbox__about_id"))
        kind = Q(
            outbox__about_type__app_label=model._meta.app_label,
            outbox__about_type__model=model._meta.model_name,
        )
        readable |= kind & Q(Exists(visibility.visible_to(user, records)))
    return readable


def about(addresses: Iterable[str]) -> QuerySet[BacklogEmail]:
    """Backlog emails from, to or copied to any of these addresses."""
    normalised = sorted({a for a in map(_address, addresses) if a})
    listed = EmailAddress.objects.filter(email=OuterRef("pk"), address__in=normalised)
    return BacklogEmail.objects.filter(Exists(listed))


def sent_key(outbox_id: int) -> str:
    """The content key of the email an outbox message was sent as."""
    return f"outbox:{outbox_id}"


# What a copy says: two copies that agree on all of it are one email. Transport headers
# (Received, Return-Path, Delivered-To, DKIM and ARC signatures) are not read at all.
CONTENT_FIELDS = (
    "message_id",
    "in_reply_to",
    "references",
    "from_name",
    "from_address",
    "to",
    "cc",
    "date",
    "subject",
    "text_body",
    "html_body",
    "attachments",
)


def content_key(row: Mapping[str, Any]) -> str:
    """The content key of a backlog row from the sync (also of rows stored before there was
    one: the migration reads them with it). A message that could not be parsed is keyed by
    its bytes, which the row keeps."""
    if row["unparsed"]:
        return "sha256:" + sha256(bytes(row["raw"] or b"")).hexdigest()
    date = row["date"].astimezone(UTC).isoformat() if row["date"] else ""
    said = [date if name == "date" else row[name] for name in CONTENT_FIELDS]
    text = json.dumps(said, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "content:" + sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _row(
    own_address: str,
    folder: str,
    email: ParsedEmail,
    raw: bytes,
    outbox: dict[str, OutboxMessage],
    now: datetime,
) -> dict[str, Any]:
    sent_by_us = outbox.get(email.message_key)
    if sent_by_us is not None and not _says_what_was_sent(email, sent_by_us):
        sent_by_us = None
    outbound = folder == "sent" or sent_by_us is not None or email.from_address == own_address
    row = {
        "message_key": email.message_key,
        "message_id": email.message_id,
        "in_reply_to": email.in_reply_to,
        "references": email.references,
        "thread_key": email.thread_key,
        "from_name": email.from_name,
        "from_address": email.from_address,
        "to": email.to,
        "cc": email.cc,
        "date": email.date,
        "subject": email.subject,
        "text_body": email.text_body,
        "html_body": email.html_body,
        "attachments": email.attachments,
        "raw_size": email.raw_size,
        "raw": raw if email.unparsed else None,
        "direction": BacklogEmail.Direction.OUTBOUND
        if outbound
        else BacklogEmail.Direction.INBOUND,
        "sent_from_crm": sent_by_us is not None,
        "outbox_id": sent_by_us.pk if sent_by_us else None,
        "parse_warnings": email.warnings,
        "unparsed": email.unparsed,
        "kind": email.kind,
        "delivery_report": email.delivery_report,
        "created_at": now,
    }
    row["content_key"] = sent_key(sent_by_us.pk) if sent_by_us else content_key(row)
    return row


def _says_what_was_sent(email: ParsedEmail, sent: OutboxMessage) -> bool:
    """Whether a copy carrying an outbox message's Message-ID says what that message said.
    Whoever received it knows its Message-ID and outbox key and may write them on anything;
    only a copy of the very email joins the CRM's row (MIME encodings and line breaks differ
    between providers, so the words are compared, not the bytes)."""
    return (
        email.from_address == _address(sent.from_email)
        and _addresses(email.to) == _addresses(map(_address, sent.to))
        and _addresses(email.cc) == _addresses(map(_address, sent.cc))
        and not email.attachments  # the outbox sends none
        and _words(email.subject) == _words(sent.subject)
        and _words(email.text_body) == _words(sent.text_body)
        and _words(strip_tags(email.html_body)) == _words(strip_tags(sanitise_html(sent.html_body)))
    )


def _addresses(addresses: Iterable[str]) -> list[str]:
    return sorted(a for a in addresses if a)


def _words(text: str) -> list[str]:
    return text.replace("\x00", "").split()


def _outbox_rows(emails: Iterable[ParsedEmail]) -> dict[str, OutboxMessage]:
    """The outbox rows whose Message-ID and key the batch's emails carry, by message key.
    An X-Vigil-Outbox header alone, which anyone can write, proves nothing; nor does a
    Message-ID alone (see _says_what_was_sent)."""
    keys = {e.vigil_key for e in emails if e.vigil_key}
    if not keys:
        return {}
    rows = OutboxMessage.objects.filter(key__in=keys).only(
        "pk", "key", "message_id", "from_email", "to", "cc", "subject", "text_body", "html_body"
    )
    by_key = {message_key_for(row.message_id): row for row in rows}
    return {e.message_key: by_key[e.message_key] for e in emails if e.message_key in by_key}


def _thread_key(headers: dict[str, str], key: str) -> str:
    references = [message_key_for(r) for r in headers.get("References", "").split()]
    return references[0] if references else message_key_for(headers.get("In-Reply-To", "")) or key


def _address(address: str) -> str:
    """`Name <a@b>` or `a@b` as listed in the backlog; "" for anything else."""
    bare = parseaddr(address)[1] if address else ""
    return normalise(bare)[:320] if "@" in bare else ""
