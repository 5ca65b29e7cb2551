"""The email backlog: every email exchanged with our leads and advertisers.

An email's natural key is its content (`content_key`), UNIQUE in the table: the same message
in a Sent folder and in a colleague's inbox is one row, with a MailboxCopy for each folder it
sits in, and a different message under the same Message-ID is another row. A Message-ID is
no secret (every reply quotes it) and anyone can write one, so it never joins two mailboxes'
copies, nor a copy to the CRM's own email unless the copy says what the CRM sent. Storing a
batch is a handful of set-based statements, whatever its size, and a re-run inserts nothing
twice.

The raw message is kept (compressed) when its parse noted a problem, so that a better parser
can read it again (`reparse`, the reparse_emails command); the rest are kept as parsed.
"""

import functools
import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from hashlib import sha256
from types import SimpleNamespace
from typing import Any, cast

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import (
    BooleanField,
    Case,
    Exists,
    F,
    Func,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Lower, Substr, Trim
from django.utils.html import strip_tags

from crm import visibility
from crm.matching import Search, search_mode
from crm.models import RPH, Account, Contact, User
from crm.sql import insert_rows
from mailsync import signals
from mailsync.models import (
    BacklogEmail,
    EmailAddress,
    LinkedAddress,
    Mailbox,
    MailboxCopy,
    OutboxMessage,
)
from mailsync.parsing import ParsedEmail, message_key_for, parse, sanitise_html
from mailsync.suppression import normalise

Role = EmailAddress.Role
# An email's place in the email list, newest first: its date, or when it was stored if it has
# none. Each of its copies keeps it too (MailboxCopy.sort_at).
SORT_AT = Coalesce("date", "created_at")
# A backlog row's fields that an outbox message has no value for.
EMPTY: dict[str, Any] = {
    "references": [],
    "from_name": "",
    "attachments": [],
    "raw": None,
    "raw_compressed": False,
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
                "email": ids[key].pk,
                "mailbox": mailbox.pk,
                "folder": folder,
                "uidvalidity": uidvalidity,
                "uid": uid,
                "gone_at": None,  # back in the folder (moved out and in again): not gone
                # The stored row's, whichever folder stored it first (MailboxCopy.sort_at).
                "sort_at": ids[key].sort_at,
                "direction": ids[key].direction,
                "sent_from_crm": ids[key].sent_from_crm,
            }
            for key, uid in first_uid.items()
        ],
        conflict=["mailbox", "folder", "email"],
        update=["uidvalidity", "uid", "gone_at"],
    )
    inbound = [
        SimpleNamespace(pk=ids[key].pk, **row)
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


@dataclass(frozen=True)
class Stored:
    """A backlog row as stored: its id, and what its copies keep of it for the email list."""

    pk: int
    sort_at: datetime
    direction: str
    sent_from_crm: bool


def _insert(rows: dict[str, dict[str, Any]]) -> tuple[dict[str, Stored], int]:
    """Insert the emails not in the backlog yet, and the addresses of all: the stored rows by
    content key, and how many were new."""
    if not rows:
        return {}, 0
    with transaction.atomic():
        before = BacklogEmail.objects.filter(content_key__in=rows).count()
        insert_rows(BacklogEmail, list(rows.values()), conflict=["content_key"])
        # Held until the caller's transaction ends: a reparse moving an email's date meanwhile
        # waits for the new copies, or they wait for it, and read its date (their sort_at).
        stored = (
            BacklogEmail.objects.filter(content_key__in=rows)
            .select_for_update(no_key=True)
            .order_by("pk")
            .values_list("content_key", "pk", SORT_AT, "direction", "sent_from_crm")
        )
        ids = {key: Stored(*row) for key, *row in stored}
    _insert_addresses((ids[key].pk, row) for key, row in rows.items())
    return ids, len(ids) - before


def _insert_addresses(emails: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
    """The from, to and cc addresses of emails (id, row), each once per role."""
    insert_rows(
        EmailAddress,
        [
            {"email": pk, "address": address, "role": role}
            for pk, row in emails
            for role, addresses in (
                (Role.FROM, [row["from_address"]] if row["from_address"] else []),
                (Role.TO, row["to"]),
                (Role.CC, row["cc"]),
            )
            for address in addresses  # a repeated one is skipped by ON CONFLICT DO NOTHING
        ],
        conflict=["email", "address", "role"],
    )


def visible_to(user) -> Q:
    """The backlog emails a user may read: those with a copy in a mailbox they may see (their
    own; a manager's team's; an administrator's, all), and the email of an outbox message
    about a record they may see (a nurture email: whoever may see its lead)."""
    if user.is_administrator:
        return Q()
    in_mailboxes, sent_about = _visibility(user)
    return in_mailboxes | sent_about


def visible_parts(user) -> list[Q]:
    """What visible_to(user) matches, as disjoint conditions that PostgreSQL can each read
    from its own side (their OR makes it test every row of a newest-first walk, a rep's mail
    being a small part of a big backlog): the mail in mailboxes the user may see, then the
    CRM's mail about records they may see, read from the outbox, that is in none of those."""
    if user.is_administrator:
        return [Q()]
    in_mailboxes, sent_about = _visibility(user)
    return [in_mailboxes, sent_about & ~in_mailboxes]


def _visibility(user) -> tuple[Q, Q]:
    """visible_to's two conditions: a copy in a mailbox the user may see; the email of an
    outbox message about a record they may see. The second holds a subquery for each kind of
    record (visibility.TEAM_PATHS): as an expression in each query of a page, Django resolved
    and compiled it again in each, 15 ms of an email list page's 37. It is SQL compiled once
    (_sent_about), that names no outer row: PostgreSQL reads it once per query into a hash."""
    sql, params = _sent_about(*_seen_as(user))
    sent_about = Q(outbox__in=RawSQL(sql, params))  # noqa: S611 - compiled by Django
    return _in_mailboxes(user), sent_about


def _seen_as(user) -> tuple[int, str, bool, int | None, str]:
    """Everything of a user that visibility.visible_to reads, and the database: the key of
    the SQL compiled once per user (_sent_about, _unlinked), which depends on nothing else,
    data included."""
    return user.pk, user.role, user.is_superuser, user.team_id, connection.vendor


def _user(pk: int, role: str, is_superuser: bool, team_id: int | None) -> User:
    return User(pk=pk, role=role, is_superuser=is_superuser, team_id=team_id)


@functools.lru_cache(maxsize=4096)
def _sent_about(
    pk: int, role: str, is_superuser: bool, team_id: int | None, vendor: str
) -> tuple[str, tuple]:
    """The SQL of the outbox messages about a record a user may see, compiled once a user
    and process (4.5 ms)."""
    about = OutboxMessage.objects.filter(_about_records(_user(pk, role, is_superuser, team_id)))
    return about.values("id").query.sql_with_params()


def _in_mailboxes(user) -> Q:
    return Q(Exists(MailboxCopy.objects.filter(copies_visible_to(user), email=OuterRef("pk"))))


def _about_records(user) -> Q:
    """Outbox messages about a record `user` may see."""
    about = Q()
    # The kind is matched by name in the same query: a lookup of its id first would cost a
    # query on every page of a fresh process.
    for model in cast(list[type[Model]], list(visibility.TEAM_PATHS)):
        records = model._default_manager.filter(pk=OuterRef("about_id"))
        kind = Q(
            about_type__app_label=model._meta.app_label,
            about_type__model=model._meta.model_name,
        )
        about |= kind & Q(Exists(visibility.visible_to(user, records)))
    return about


def copies_visible_to(user) -> Q:
    """The mailbox copies a user may see: in their own mailboxes, their team's for a manager,
    all for an administrator."""
    return Q() if user.is_administrator else _owners(user, "mailbox__")


def _owners(user, path: str = "") -> Q:
    """The mailboxes (at `path`) a user who is not an administrator may see."""
    owners = Q(**{f"{path}owner": user})
    if user.role == user.Role.MANAGER and user.team_id:
        owners |= Q(**{f"{path}owner__team_id": user.team_id})
    return owners


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
    its bytes, which the row keeps (compressed or not: the key is of the bytes received)."""
    if row["unparsed"]:
        return "sha256:" + sha256(raw_message(row)).hexdigest()
    date = row["date"].astimezone(UTC).isoformat() if row["date"] else ""
    said = [date if name == "date" else row[name] for name in CONTENT_FIELDS]
    text = json.dumps(said, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "content:" + sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def raw_message(row: Mapping[str, Any] | BacklogEmail) -> bytes:
    """The raw message a backlog row (a model or its values) kept, as received; b"" for
    none."""
    if isinstance(row, Mapping):
        raw, compressed = row.get("raw"), row.get("raw_compressed", False)
    else:
        raw, compressed = row.raw, row.raw_compressed
    data = bytes(raw or b"")
    return zlib.decompress(data) if data and compressed else data


def _kept_raw(email: ParsedEmail, raw: bytes) -> tuple[bytes | None, list[str]]:
    """What a row keeps of its raw message, compressed, and its parse warnings. An email that
    could not be parsed keeps it whatever its size (it is all there is of it, and its key); one
    whose parse noted a problem keeps it up to VIGIL_MAILSYNC_RAW_KEEP_BYTES, so that a better
    parser can read it again (reparse); a bigger one says so in its warnings."""
    if not raw or not (email.unparsed or email.warnings):
        return None, email.warnings
    limit = settings.VIGIL_MAILSYNC_RAW_KEEP_BYTES
    if not email.unparsed and len(raw) > limit:
        return None, [*email.warnings, f"raw message of {len(raw)} bytes not kept (over {limit})"]
    return zlib.compress(raw), email.warnings


def _parsed_fields(email: ParsedEmail) -> dict[str, Any]:
    """A backlog row's fields read from its raw message."""
    return {
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
        "parse_warnings": email.warnings,
        "unparsed": email.unparsed,
        "kind": email.kind,
        "delivery_report": email.delivery_report,
    }


PARSED_FIELDS = tuple(_parsed_fields(ParsedEmail()))


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
    kept, warnings = _kept_raw(email, raw)
    row = {
        **_parsed_fields(email),
        "parse_warnings": warnings,
        "raw": kept,
        "raw_compressed": kept is not None,
        "direction": BacklogEmail.Direction.OUTBOUND
        if outbound
        else BacklogEmail.Direction.INBOUND,
        "sent_from_crm": sent_by_us is not None,
        "outbox_id": sent_by_us.pk if sent_by_us else None,
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


# Reading kept raw messages again


@dataclass
class Reparsed:
    read: int = 0
    changed: int = 0
    kept_key: int = 0  # another row holds the key of what it says now
    unreadable: int = 0

    def add(self, other: "Reparsed") -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


REPARSE_BYTES = 32 * 1024 * 1024  # raw messages read again in one transaction, at most


def reparse(batch: int = 200) -> Reparsed:
    """Read every kept raw message again with today's parser and store what it says now: a
    batch of rows per transaction, so a crash loses at most one batch and a second run
    changes nothing.

    A row's id stays (its copies and links point at it). Its content key becomes
    the one the sync gives the message today, so a copy synced later joins this row instead
    of making a second one; a row whose new key another row has already (a copy synced since
    the parser changed) keeps its old one, as does the CRM's own sent mail (outbox:<id>).
    Nothing is announced again (signals.inbound_email): these are not new emails."""
    done = Reparsed()
    after = 0
    while rows := list(
        BacklogEmail.objects.filter(pk__gt=after, raw__isnull=False)
        .order_by("pk")
        .values_list("pk", "raw_size")[:batch]
    ):
        pks = _within_bytes(rows, REPARSE_BYTES)
        after = pks[-1]
        done.add(_reparse_rows(pks))
    return done


def _within_bytes(rows: list[tuple[int, int]], limit: int) -> list[int]:
    """The first rows whose raw messages add up to `limit` bytes (at least one): an unparsed
    message is kept whatever its size, and a batch of them must not fill the memory."""
    pks: list[int] = []
    total = 0
    for pk, size in rows:
        if pks and total + size > limit:
            break
        pks.append(pk)
        total += size
    return pks


def _reparse_rows(pks: list[int]) -> Reparsed:
    try:
        with transaction.atomic():
            return _reparse_now(pks)
    except IntegrityError:
        # A sync stored a row under one of the new keys after they were checked: once more,
        # now that the check sees it.
        with transaction.atomic():
            return _reparse_now(pks)


def _reparse_now(pks: list[int]) -> Reparsed:
    done = Reparsed()
    changed = []
    for email in BacklogEmail.objects.filter(pk__in=pks).order_by("pk"):
        done.read += 1
        try:
            now_read = _parsed_fields(parse(raw_message(email)))
        except zlib.error:
            done.unreadable += 1
            continue
        if any(getattr(email, name) != value for name, value in now_read.items()):
            for name, value in now_read.items():
                setattr(email, name, value)
            changed.append(email)
    done.changed = len(changed)
    done.kept_key = _rekey(changed)
    BacklogEmail.objects.bulk_update(changed, [*PARSED_FIELDS, "content_key"], batch_size=100)
    _copies_sorted_again(changed)
    EmailAddress.objects.filter(email__in=changed).delete()
    _insert_addresses((email.pk, vars(email)) for email in changed)
    return done


def _copies_sorted_again(emails: list[BacklogEmail]) -> None:
    """Give the copies of emails whose date may have changed the emails' place in the list."""
    if emails:
        sort_at = BacklogEmail.objects.filter(pk=OuterRef("email_id")).values(at=SORT_AT)
        MailboxCopy.objects.filter(email__in=emails).update(sort_at=Subquery(sort_at[:1]))


def _rekey(emails: list[BacklogEmail]) -> int:
    """Give each email the content key of what it says now, unless another row has that key
    or it is the CRM's own sent mail. Returns how many kept their old key for that reason."""
    wanted: dict[int, str] = {}
    for email in emails:
        values = {name: getattr(email, name) for name in (*CONTENT_FIELDS, "unparsed")}
        key = content_key({**values, "raw": email.raw, "raw_compressed": email.raw_compressed})
        if not email.content_key.startswith("outbox:") and key != email.content_key:
            wanted[email.pk] = key
    taken = set(
        BacklogEmail.objects.filter(content_key__in=wanted.values()).values_list(
            "content_key", flat=True
        )
    )
    kept = 0
    for email in emails:
        new_key = wanted.get(email.pk)
        if new_key is None:
            continue
        if new_key in taken:
            kept += 1
        else:
            taken.add(new_key)
            email.content_key = new_key
    return kept


# The email list ("Email" in the navigation): every email a user may read, newest first,
# searched and filtered, read a page at a time from a cursor so that no page costs more than
# its own rows whatever the size of the backlog.

PAGE_SIZE = 50
COUNT_CAP = 1000  # "1,000+": counting a million visible rows on every page costs too much
SEARCH_WORDS = 8
SEARCH_LENGTH = 200
# The search index finds the words that start with a prefix by reading every email that holds
# any of them, before it sees that another word of the search is nowhere: at a million emails
# "w x" read 30,000 pages for the emails holding a word that starts with "w" (2.4 s), "w1" and
# a word nobody has 1 s, "w12" 0.19 s. A shorter word is looked for whole (_prefixed).
PREFIXED = 3
_LETTERS_OR_DIGITS = re.compile(r"[^\W_]+")
_WORD = re.compile(r"[\w@.+-]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class EmailFilters:
    """What the list shows: words to search for, a direction, only the CRM's own mail, only
    mail linked to no record the user may see, one thread."""

    search: str = ""
    direction: str = ""
    sent_from_crm: bool = False
    unlinked: bool = False
    thread: str = ""


@dataclass(frozen=True)
class Cursor:
    """A place in the list: the sort time and id of the row a page starts after."""

    at: datetime
    pk: int

    def __str__(self) -> str:
        return f"{(self.at - _EPOCH) // timedelta(microseconds=1)}_{self.pk}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """A cursor from its string (as a page link carries it); ValueError for anything
        else."""
        micros, _, pk = text.partition("_")
        if not re.fullmatch(r"-?\d{1,17}", micros) or not re.fullmatch(r"\d{1,18}", pk):
            raise ValueError(f"not a page cursor: {text[:40]!r}")
        try:
            return cls(_EPOCH + timedelta(microseconds=int(micros)), int(pk))
        except OverflowError:  # before year 1 or after 9999
            raise ValueError(f"not a page cursor: {text[:40]!r}") from None

    @classmethod
    def of(cls, email: BacklogEmail) -> "Cursor":
        return cls(email.sort_at, email.pk)  # type: ignore[attr-defined]


@dataclass
class EmailPage:
    emails: list[BacklogEmail]
    newer: Cursor | None  # where the page of newer emails starts, if there is one
    older: Cursor | None


def search_document() -> RawSQL:
    """An email's words as PostgreSQL stores them (the generated column search_document of
    migration 0009, GIN-indexed): its subject and addresses, then the start of its text. Only
    for a query on the backlog table itself (it names the table, not an alias)."""
    table = BacklogEmail._meta.db_table
    column = f'"{table}"."search_document"'
    return RawSQL(column, [], output_field=SearchVectorField())  # noqa: S611 - no input


def search_words(text: str) -> list[str]:
    """The words a search looks for: runs of letters, digits and the characters of an
    address, the first SEARCH_WORDS of the first SEARCH_LENGTH characters."""
    words = (w.strip("._+-@") for w in _WORD.findall(text[:SEARCH_LENGTH]))
    return [w for w in words if w][:SEARCH_WORDS]


def searched(emails: QuerySet[BacklogEmail], words: list[str]) -> QuerySet[BacklogEmail]:
    """The emails whose subject, addresses or text hold every word: PostgreSQL's full-text
    search (a word whose runs of letters or digits have PREFIXED characters or more also as
    the start of a longer one, so "ana" finds ana@client.example), a substring search on
    SQLite."""
    if not words:
        return emails
    if connections[emails.db].vendor == "postgresql":
        # The words hold no quote, colon or operator (search_words): each is one quoted term.
        terms = " & ".join(f"'{word}':*" if _prefixed(word) else f"'{word}'" for word in words)
        query = SearchQuery(terms, config="simple", search_type="raw")
        return emails.alias(document=search_document()).filter(document=query)
    for word in words:
        addressed = EmailAddress.objects.filter(email=OuterRef("pk"), address__icontains=word)
        emails = emails.filter(
            Q(subject__icontains=word) | Q(text_body__icontains=word) | Q(Exists(addressed))
        )
    return emails


def _prefixed(word: str) -> bool:
    """Whether `word` is also looked for as the start of longer words: each of its runs of
    letters or digits has PREFIXED characters or more (PostgreSQL splits "w_x" into "w" and
    "x", each a prefix then)."""
    runs = _LETTERS_OR_DIGITS.findall(word)
    return bool(runs) and all(len(run) >= PREFIXED for run in runs)


@dataclass(frozen=True)
class Copies:
    """How a part of the list is read through mailboxes' copies: the copies of `mailboxes`
    newest first, each mailbox from its own index (MailboxCopy.sort_at), that match `filters`
    (its direction and sent_from_crm on the copy, the others on its email: `matching`, None if
    there are none), shown as `shown` (every email as a row shows them)."""

    mailboxes: QuerySet[Mailbox]
    filters: Q
    matching: QuerySet[BacklogEmail] | None
    shown: QuerySet[BacklogEmail]


@dataclass(frozen=True)
class ListPart:
    """One part of email_list: `emails`, the part's emails as a row of the list shows them,
    newest first; read through `copies` if set. What a rep or a manager may see is a small
    part of the backlog, which a walk of the backlog's own order would test row by row."""

    emails: QuerySet[BacklogEmail]
    copies: Copies | None = None


def email_list(user: User, filters: EmailFilters) -> list[ListPart]:
    """The emails `user` may read that match `filters`, newest first (an undated one at the
    time it was stored): one part per part of visible_parts (disjoint), each read through its
    own plan by newest_page; the mail in the user's mailboxes, through their copies."""
    on_copies = Q()  # what a copy knows of its email
    if filters.direction:
        on_copies &= Q(direction=filters.direction)
    if filters.sent_from_crm:
        on_copies &= Q(sent_from_crm=True)
    if user.is_administrator:
        shown = _shown(BacklogEmail.objects.all(), Q())
        return [ListPart(_matching(user, filters, shown).filter(on_copies))]
    in_mailboxes, sent_about = _visibility(user)
    # The row's annotations are built once, and each part is that and a condition.
    shown = _shown(BacklogEmail.objects.all(), in_mailboxes | sent_about)
    emails = _matching(user, filters, shown).filter(on_copies)
    matching = _matching(user, filters, BacklogEmail.objects.all())
    copies = Copies(
        mailboxes_visible_to(user),
        on_copies,
        matching if matching.query.has_filters() else None,
        shown,
    )
    return [
        ListPart(emails.filter(in_mailboxes), copies),
        ListPart(emails.filter(sent_about & ~in_mailboxes)),  # visible_parts
    ]


def _matching(user: User, filters: EmailFilters, emails: QuerySet[Any]) -> QuerySet[Any]:
    """Emails that match the filters a copy does not know: a thread, not linked, words."""
    if filters.thread:
        emails = emails.filter(thread_key=filters.thread)
    if filters.unlinked:
        emails = emails.filter(unlinked(user))
    return searched(emails, search_words(filters.search))


def mailboxes_visible_to(user: User) -> QuerySet[Mailbox]:
    """The mailboxes whose copies copies_visible_to(user) matches."""
    return Mailbox.objects.all() if user.is_administrator else Mailbox.objects.filter(_owners(user))


def _shown(emails: QuerySet[BacklogEmail], visible: Q) -> QuerySet[BacklogEmail]:
    """Emails with what a row of the list shows, newest first; whether the thread has other
    emails is told of those `visible` (visible_to) matches."""
    others = (
        BacklogEmail.objects.filter(thread_key=OuterRef("thread_key"))
        .exclude(pk=OuterRef("pk"))
        .filter(visible)
    )
    return (
        emails.annotate(
            sort_at=SORT_AT,
            snippet=Substr("text_body", 1, 160),
            threaded=Exists(others),
        )
        .only(
            "subject",
            "from_name",
            "from_address",
            "to",
            "date",
            "direction",
            "sent_from_crm",
            "thread_key",
            "kind",
            "created_at",
        )
        .order_by(F("sort_at").desc(), F("pk").desc())
    )


def newest_page(
    parts: list[ListPart],
    *,
    older_than: Cursor | None = None,
    newer_than: Cursor | None = None,
    size: int | None = None,
) -> EmailPage:
    """One page of email_list's emails (PAGE_SIZE rows unless `size`): the newest, the page
    after `older_than`, or the page before `newer_than`. One query per part, whatever the
    page: each starts where the cursor is in its index, never counting the rows before it."""
    size = size or PAGE_SIZE
    rows = [
        row
        for part in parts
        for row in _read(part, size + 1, older_than=older_than, newer_than=newer_than)
    ]
    rows.sort(key=lambda e: (e.sort_at, e.pk), reverse=newer_than is None)
    rows = rows[: size + 1]
    if newer_than is not None:
        shown = rows[:size][::-1]
        return EmailPage(
            shown,
            newer=Cursor.of(shown[0]) if len(rows) > size else None,
            older=Cursor.of(shown[-1]) if shown else None,
        )
    shown = rows[:size]
    return EmailPage(
        shown,
        newer=Cursor.of(shown[0]) if older_than is not None and shown else None,
        older=Cursor.of(shown[-1]) if len(rows) > size else None,
    )


def _read(
    part: ListPart, limit: int, *, older_than: Cursor | None, newer_than: Cursor | None
) -> list[Any]:
    """The first `limit` emails of a part from a cursor: newest first, or oldest first
    after `newer_than`."""
    if part.copies is None:
        emails = _from_cursor(part.emails, "sort_at", "pk", older_than, newer_than)
        return list(emails[:limit])
    ids = _copies_from(part.copies, limit, older_than, newer_than)
    emails = part.copies.shown.filter(pk__in=ids)
    if newer_than is not None:
        emails = emails.order_by(F("sort_at").asc(), F("pk").asc())
    return list(emails)


def _from_cursor(
    rows: QuerySet[Any], at: str, pk: str, older_than: Cursor | None, newer_than: Cursor | None
) -> QuerySet[Any]:
    """Rows (emails, or copies) ordered on (at, pk) newest first from `older_than`, or oldest
    first from `newer_than`."""
    if newer_than is not None:
        after = newer_than
        return (
            rows.filter(**{f"{at}__gte": after.at})
            .filter(Q(**{f"{at}__gt": after.at}) | Q(**{f"{pk}__gt": after.pk}))
            .order_by(F(at).asc(), F(pk).asc())
        )
    if older_than is not None:
        # The redundant `<=` is where the index scan starts; the OR alone would be a filter.
        before = older_than
        rows = rows.filter(**{f"{at}__lte": before.at}).filter(
            Q(**{f"{at}__lt": before.at}) | Q(**{f"{pk}__lt": before.pk})
        )
    return rows.order_by(F(at).desc(), F(pk).desc())


def _matched(copies: Copies) -> QuerySet[MailboxCopy]:
    """The copies whose email matches the list's filters (in any mailbox)."""
    matched = MailboxCopy.objects.filter(copies.filters)
    if copies.matching is not None:
        # Compiled on its own, where the search document's column names the backlog's table
        # (search_document): in a subquery of the ORM's, the table would have another alias.
        matching, matching_params = copies.matching.values("id").query.sql_with_params()
        matched = matched.filter(
            email_id__in=RawSQL(matching, matching_params)  # noqa: S611 - compiled by Django
        )
    return matched


BOX = "visible_box"  # the alias of a mailbox in _copies_from's SQL


def _copies_from(
    copies: Copies, limit: int, older_than: Cursor | None, newer_than: Cursor | None
) -> RawSQL:
    """The ids of the first `limit` emails read through copies, from a cursor. An email in
    two of the mailboxes (or in a mailbox's inbox and Sent folder) is one email. On
    PostgreSQL, each mailbox's first `limit` from its own index (mailboxcopy_newest), merged:
    it reads no `mailbox_id IN (…)` from an index in order, and a manager's team has many."""
    matched = _matched(copies)
    order = "ASC" if newer_than is not None else "DESC"
    if connections[copies.shown.db].vendor != "postgresql":  # no LATERAL; and a few rows only
        rows = _from_cursor(
            matched.filter(mailbox__in=copies.mailboxes),
            "sort_at",
            "email_id",
            older_than,
            newer_than,
        )
        sql, params = rows.values("sort_at", "email_id").distinct()[:limit].query.sql_with_params()
        ids = f"SELECT email_id FROM ({sql}) AS ids"  # noqa: S608 - compiled by Django
        return RawSQL(ids, params)  # noqa: S611 - compiled by Django, values are parameters
    boxes, box_params = copies.mailboxes.values("id").query.sql_with_params()
    each = matched.filter(mailbox_id=RawSQL(f'"{BOX}"."id"', ()))  # noqa: S611 - a name
    each = _from_cursor(each, "sort_at", "email_id", older_than, newer_than)
    each_sql, each_params = (
        each.values("sort_at", "email_id").distinct()[:limit].query.sql_with_params()
    )
    sql = (
        "SELECT email_id FROM (SELECT DISTINCT page.sort_at, page.email_id"  # noqa: S608 - ours
        f' FROM ({boxes}) AS "{BOX}" CROSS JOIN LATERAL ({each_sql}) AS page'
        f" ORDER BY page.sort_at {order}, page.email_id {order} LIMIT {int(limit)}) AS ids"
    )
    return RawSQL(sql, (*box_params, *each_params))  # noqa: S611 - values are parameters


def counted(parts: list[ListPart]) -> tuple[list[ListPart], int]:
    """How many of email_list's emails there are, counted up to COUNT_CAP + 1 (shown as
    "more than 1,000") by reading their ids; and the parts again, each with at most COUNT_CAP
    emails now read from those ids. PostgreSQL cannot tell how rare a searched word is, and
    would walk the newest-first index testing every email for one in a hundred thousand
    (1.3 s at a million emails); a part this small is sorted whole instead."""
    narrowed, total = [], 0
    for part in parts:
        ids: QuerySet[Any, int]
        if part.copies is None:
            ids = part.emails.order_by().values_list("pk", flat=True)
        else:
            ids = _first_copies(part.copies).values_list("email_id", flat=True)
        found = list(ids[: COUNT_CAP + 1])
        total += len(found)
        narrowed.append(
            ListPart(part.emails.filter(pk__in=found)) if len(found) <= COUNT_CAP else part
        )
    return narrowed, min(total, COUNT_CAP + 1)


def _first_copies(copies: Copies) -> QuerySet[MailboxCopy, Any]:
    """One copy of each email read through copies: its first in the mailboxes (by mailbox,
    then folder). Counted in any order, so the count stops at its cap, whichever mailboxes
    hold the mail (reading each mailbox's newest first would read up to the cap in each)."""
    mailboxes = copies.mailboxes.values("id")
    earlier = MailboxCopy.objects.filter(
        Q(mailbox_id__lt=OuterRef("mailbox_id"))
        | Q(mailbox_id=OuterRef("mailbox_id"), folder__lt=OuterRef("folder")),
        email_id=OuterRef("email_id"),
        mailbox__in=mailboxes,
    )
    first = _matched(copies).filter(~Exists(earlier), mailbox__in=mailboxes)
    return first.values("email_id").order_by()


# Emails and records. An email is a record's when one of its addresses is the record's own
# (a contact's or lead's email; an account's contacts') or was linked to the record by hand.


LINKABLE: dict[str, type[Model]] = {"contact": Contact, "rph": RPH, "account": Account}


def addresses_of(record: Contact | RPH | Account) -> list[str]:
    """The addresses whose mail is a record's (give them to `about`): its own, and those
    linked to it by hand; an account's are its contacts' and those linked to it or to one of
    its contacts."""
    if isinstance(record, Account):
        own = list(record.contacts.exclude(email="").values_list("email", flat=True))
        linked = LinkedAddress.objects.filter(Q(account=record) | Q(contact__account=record))
    else:
        own = [record.email] if record.email else []
        linked = LinkedAddress.objects.filter(**{_kind_of(record): record})
    return [*own, *linked.values_list("address", flat=True)]


def unlinked(user: User) -> Q:
    """The emails none of whose addresses is that of a contact or lead `user` may see, or
    linked by hand to a record they may see. Only for a query whose base table is the
    backlog's (the list's, each part's): the condition names its table, not an alias."""
    sql, params = _unlinked(*_seen_as(user))
    return Q(RawSQL(sql, params, output_field=BooleanField()))  # noqa: S611 - compiled by Django


@functools.lru_cache(maxsize=4096)
def _unlinked(
    pk: int, role: str, is_superuser: bool, team_id: int | None, vendor: str
) -> tuple[str, tuple]:
    """unlinked's condition as SQL, compiled once a user and process: resolved and compiled
    in each query of a page, its subqueries cost 25 ms of a rep's "not linked" page."""
    user = _user(pk, role, is_superuser, team_id)
    address = OuterRef("address")
    contacts = Contact.objects.annotate(listed=_normalised("email")).filter(listed=address)
    leads = RPH.objects.annotate(listed=_normalised("email")).filter(listed=address)
    hand = LinkedAddress.objects.filter(_links_visible_to(user), address=address)
    # Each address of an email is looked up in the indexes of addresses as listed (crm 0019):
    # a few index reads per email walked, where reading every visible contact's address into
    # a hash took longer the more contacts there are (half a second at a million).
    known = (
        Exists(visibility.visible_to(user, contacts))
        | Exists(visibility.visible_to(user, leads))
        | Exists(hand)
    )
    linked_email = Exists(EmailAddress.objects.filter(known, email=OuterRef("pk")))
    # Inside a CASE, PostgreSQL checks each email as a newest-first walk reaches it; a bare
    # NOT EXISTS it turns into an anti-join over every address of the backlog, whose size it
    # cannot guess, before the first row of the page.
    query = BacklogEmail.objects.filter(
        Case(When(linked_email, then=False), default=True, output_field=BooleanField())
    ).query
    sql, params = query.get_compiler(connection=connection).compile(query.where)
    return sql, tuple(params)


@dataclass(frozen=True)
class LinkedRecord:
    kind: str  # a key of LINKABLE
    record: Any
    by_hand: bool


def records_of(user: User, email: BacklogEmail) -> list[LinkedRecord]:
    """The contacts, leads and accounts `user` may see that an email is linked to: by one of
    its addresses, or by an address linked to them by hand. Four queries."""
    addresses = EmailAddress.objects.filter(email=email).values("address")
    hand: dict[str, set[int]] = {kind: set() for kind in LINKABLE}
    for row in LinkedAddress.objects.filter(address__in=addresses).values(*LINKABLE):
        for kind, pk in row.items():
            if pk is not None:
                hand[kind].add(pk)
    found: list[LinkedRecord] = []
    for kind, model in LINKABLE.items():
        records = model._default_manager.all()
        linked = Q(pk__in=hand[kind])
        if kind != "account":
            records = records.annotate(listed=_normalised("email"))
            linked |= Q(listed__in=addresses)
        if kind == "contact":
            records = records.select_related("account")
        for record in visibility.visible_to(user, records.filter(linked)).order_by("pk"):
            found.append(LinkedRecord(kind, record, by_hand=record.pk in hand[kind]))
    return found


def linkable_addresses(email: BacklogEmail) -> list[str]:
    """The addresses of an email that may be linked to a record, the other party's first:
    all but ours (a mailbox's, or at our mail domain), which are on every email."""
    parties = [email.from_address, *email.to, *email.cc]
    if email.direction == BacklogEmail.Direction.OUTBOUND:
        parties = [*email.to, *email.cc, email.from_address]
    addresses = list(dict.fromkeys(a for a in map(_address, parties) if a))
    mailboxes = Mailbox.objects.annotate(listed=_normalised("address"))
    ours = set(mailboxes.filter(listed__in=addresses).values_list("listed", flat=True))
    domain = "@" + settings.VIGIL_MAIL_DOMAIN.lower()
    return [a for a in addresses if a not in ours and not a.endswith(domain)]


def linkable_record(user: User, kind: str, pk: int) -> Contact | RPH | Account | None:
    """The record of `kind` with this id, if `user` may link mail to it (see `_linkable`)."""
    model = LINKABLE.get(kind)
    if model is None:
        return None
    return _linkable(user, model._default_manager.filter(pk=pk)).first()


def _linkable(user: User, records: QuerySet) -> QuerySet:
    """The records `user` may link mail to: contacts and accounts of their team; leads they
    may act on (a rep their own, a manager their team's), as the lead pages have it."""
    if records.model is RPH:
        return visibility.mine(user, records)
    return visibility.visible_to(user, records)


def find_records(user: User, text: str, limit: int = 10) -> list[LinkedRecord]:
    """Contacts, leads and accounts `user` may link mail to whose name (a lead's company, a
    contact's or lead's address too) holds `text`, or starts with it for one or two letters
    or digits, as in the search box: what the email page offers to link to. Three queries."""
    text = text.strip()[:100].replace("\x00", "")
    mode = search_mode(text)  # as the search box: one or two letters at the start
    if not mode:
        return []
    found: list[LinkedRecord] = []
    named = {
        "contact": Search(("name", "email"), text, mode).q(),
        "rph": Search(("name", "company", "email"), text, mode).q(),
        "account": Search(("name",), text, mode).q(),
    }
    for kind, model in LINKABLE.items():
        records = _linkable(user, model._default_manager.filter(named[kind]))
        if kind == "contact":
            records = records.select_related("account")
        found += [LinkedRecord(kind, r, False) for r in records.order_by("name", "pk")[:limit]]
    return found


class LinkRefused(Exception):
    """Why an address could not be linked, in one line for the user."""


def link(
    email: BacklogEmail, address: str, record: Contact | RPH | Account, user: User, now: datetime
) -> LinkedAddress:
    """Link one of an email's addresses to a record, so that its mail, past and future, is
    the record's. The caller has checked that `user` may read the email and see the record
    (visible_to, linkable_record). Linking twice changes nothing."""
    address = _address(address)
    if address not in linkable_addresses(email):
        raise LinkRefused(f"{address or 'That address'} is not one of this email's to link.")
    linked, _ = LinkedAddress.objects.get_or_create(
        address=address,
        **{_kind_of(record): record},
        defaults={"email": email, "linked_by": user, "linked_at": now},
    )
    return linked


def _kind_of(record: Model) -> str:
    return next(kind for kind, model in LINKABLE.items() if isinstance(record, model))


def _normalised(field: str) -> Func:
    """An address column as the backlog lists addresses (trimmed, lower-cased; an IDN domain
    stays as written: rare, and only the Python side can encode it)."""
    return Lower(Trim(field))


def _links_visible_to(user: User) -> Q:
    """The hand links to records `user` may see."""
    if user.is_administrator:
        return Q()
    # The link's own record, looked up by key: an IN (…) would read a team's every record.
    contact, rph, account = (
        Exists(visibility.visible_to(user, m._default_manager.filter(pk=OuterRef(f"{kind}_id"))))
        for kind, m in LINKABLE.items()
    )
    return Q(contact | rph | account)
