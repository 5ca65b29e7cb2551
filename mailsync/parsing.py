"""Reading one raw email (RFC 5322 bytes, as IMAP `BODY.PEEK[]` returns them) into what a
backlog row needs.

Mail from the outside world is often broken, and some of it is hostile. `parse()` never
raises: each field is read on its own, a field that cannot be read falls back to a default
with a note in `warnings`, and only a message with nothing usable at all comes back
`unparsed`. (The caller keeps the raw bytes of a message with warnings, so that a better
parser can read it again.) 8-bit text that is not UTF-8 and declares no other charset is read
in VIGIL_MAILSYNC_FALLBACK_CHARSET, with a warning. Every string that comes out is free of NUL
and lone surrogates (PostgreSQL text and jsonb refuse both) and within its column's length.

The MIME structure and MIME headers are parsed by the standard library with `policy.default`
(its header objects cached: see `_header`). Address lists, though, are split with
`email.utils.getaddresses`: `policy.default`'s address parser takes ~0.1 ms an address, is
quadratic (7.7 s for a To header of 10,000 addresses) and raises on an encoded display name
holding a line break, and this runs for every synced email.
"""

import codecs
import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.errors import MessageDefect
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache
from hashlib import sha256
from typing import Any, TypeVar

import nh3
from django.conf import settings

from mailsync.classify import classify
from mailsync.mailtext import (
    EMAIL_ERRORS,
    ID_LENGTH,
    NOT_IN_ADDRESS,
    clean,
    msg_id,
    msg_ids,
)
from mailsync.suppression import normalise

KEY_LENGTH = 255  # message_key, thread_key
NAME_LENGTH = 255  # from_name, attachment names
ADDRESS_LENGTH = 320  # 64-octet local part, "@", 255-octet domain
MAX_REFERENCES = 50
MAX_RECIPIENTS = 1000  # per list (to, cc)
MAX_ATTACHMENTS = 200
MAX_PARTS = 1000  # MIME parts looked at, however they nest
MAX_DEPTH = 20  # multipart nesting followed
MAX_WARNINGS = 20
WARNING_LENGTH = 200
# Raw characters of a header handed to `policy.default`'s header parser, whose time grows
# faster than the header (9 s for a 1 MB subject of short words). A subject of 998 characters
# fits even written entirely in encoded words.
HEADER_SOURCE_LENGTH = 16_384
ADDRESS_SOURCE_LENGTH = MAX_RECIPIENTS * 400  # room for MAX_RECIPIENTS named addresses
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=366)  # a sender's clock can be wrong, not by years

BLOCK_TAGS = {"p", "br", "div", "blockquote", "pre", "ul", "ol", "li", "hr"}
TABLE_TAGS = {"table", "thead", "tbody", "tr", "td", "th"}
INLINE_TAGS = {"span", "b", "strong", "i", "em", "u", "code", "a"}
HEADING_TAGS = {f"h{n}" for n in range(1, 7)}
# Tags whose content is dropped with them; everything else outside the allowed tags keeps
# its text (escaped) and loses its markup. No img: a remote image would tell the sender
# when and where the email was read.
DROPPED_CONTENT = {"script", "style", "title", "textarea", "template", "noscript"}
HTML_CLEANER = nh3.Cleaner(
    tags=BLOCK_TAGS | TABLE_TAGS | INLINE_TAGS | HEADING_TAGS,
    clean_content_tags=DROPPED_CONTENT,
    attributes={
        "*": set(),  # not even ammonia's default lang and title
        "a": {"href", "title"},
        "td": {"colspan", "rowspan"},
        "th": {"colspan", "rowspan"},
    },
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",  # a relative link would point into the CRM itself
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)
TEXT_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags=DROPPED_CONTENT, attributes={})
# Where rendered HTML breaks a line; marked before the tags are stripped so that paragraphs
# do not run together in the derived text.
LINE_ENDING_TAGS = re.compile(r"<(?:br|/p|/div|/li|/tr|/h[1-6]|/blockquote|/pre|/table)\b", re.I)
BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")  # bytes that are not UTF-8, surrogate-escaped
ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")  # RFC 2047
STAND_IN = re.compile(r"=\?(\d{1,6})\?=")

HEADER_REGISTRY = HeaderRegistry()
CACHED_HEADER_LENGTH = 1000


@lru_cache(maxsize=4096)
def _cached_header(name: str, value: str) -> Any:
    return HEADER_REGISTRY(name, value)


def _header(name: str, value: Any) -> Any:
    """`policy.default`'s header object for a raw value, remembered: the parser asks for a
    part's Content-Type a dozen times while it reads the part, each time parsing it again
    (two thirds of the time of a plain `policy.default` parse), and most values recur from
    message to message. The objects are immutable, so sharing them is safe."""
    if isinstance(value, str) and len(value) <= CACHED_HEADER_LENGTH:
        return _cached_header(name, value)
    return HEADER_REGISTRY(name, value)


POLICY = policy.default.clone(header_factory=_header)
PARSER = BytesParser(policy=POLICY)
COMPAT_PARSER = BytesParser(policy=policy.compat32)
WIRE = policy.compat32.clone(linesep="\r\n")  # to size an attached email as it is sent
READ_HEADERS = {
    "message-id",
    "in-reply-to",
    "references",
    "from",
    "to",
    "cc",
    "date",
    "subject",
    "x-vigil-outbox",  # outbox.CRM_HEADER, lower-cased
}

T = TypeVar("T")


@dataclass
class ParsedEmail:
    """What a backlog row takes from one raw email. See `parse`."""

    message_key: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    thread_key: str = ""
    from_name: str = ""
    from_address: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None
    subject: str = ""
    text_body: str = ""
    html_body: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    raw_size: int = 0
    vigil_key: str = ""
    kind: str = "person"  # BacklogEmail.Kind: see mailsync.classify
    delivery_report: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unparsed: bool = False


# The string fields of ParsedEmail and their columns' lengths (None: a text column).
LENGTHS: dict[str, int | None] = {
    "message_key": KEY_LENGTH,
    "message_id": ID_LENGTH,
    "in_reply_to": ID_LENGTH,
    "thread_key": KEY_LENGTH,
    "from_name": NAME_LENGTH,
    "from_address": ADDRESS_LENGTH,
    "subject": ID_LENGTH,
    "text_body": None,
    "html_body": None,
    "vigil_key": KEY_LENGTH,
}


class _Notes:
    """A message's parse warnings: short, deduplicated, at most MAX_WARNINGS (a message with
    10,000 bad addresses must not make 10,000 of them)."""

    def __init__(self) -> None:
        self.items: dict[str, None] = {}

    def add(self, text: str) -> None:
        if len(self.items) < MAX_WARNINGS:
            self.items.setdefault(clean(_one_line(text))[:WARNING_LENGTH])

    def defects(self, defects: Iterable[MessageDefect]) -> None:
        for defect in defects:
            self.add(type(defect).__name__)


@dataclass
class _Bodies:
    """What the walk over the MIME parts found."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    parts: int = 0


@dataclass
class _PartInfo:
    content_type: str
    charset: str
    filename: str
    attached: bool  # Content-Disposition: attachment


def parse(raw: bytes) -> ParsedEmail:
    """Everything a backlog row needs from one raw email. Never raises."""
    data = bytes(raw)
    notes = _Notes()
    try:
        email = _read(data, notes)
    except Exception as exc:  # noqa: BLE001 - the promise is never to raise: keep the raw bytes
        notes.add(f"could not parse: {type(exc).__name__}")
        email = _unparsed(data)
    email.warnings = list(notes.items)
    return _within_columns(email)


def sanitise_html(markup: str) -> str:
    """HTML safe to show inside the CRM: formatting and links kept; scripts, styles, event
    handlers, forms, frames, SVG, images and non-web links removed."""
    if not markup or not markup.strip():
        return ""
    return clean(HTML_CLEANER.clean(clean(markup))).strip()


def message_key_for(message_id: str) -> str:
    """The backlog key of a Message-ID, in any of the forms it is written in (`<a@b>`,
    ` <a@b> `, `a@b`): the id without brackets, or a hash of it when it is longer than the
    column. "" for no id."""
    ident = msg_id(message_id)
    if len(ident) > KEY_LENGTH:
        return "sha256:" + sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()
    return ident


def _within_columns(email: ParsedEmail) -> ParsedEmail:
    """The last word on what is stored, whatever path the reading took: every string clean
    and no longer than its column."""
    for name, length in LENGTHS.items():
        setattr(email, name, clean(getattr(email, name))[:length])
    email.references = [clean(r)[:ID_LENGTH] for r in email.references]
    email.to = [clean(a)[:ADDRESS_LENGTH] for a in email.to]
    email.cc = [clean(a)[:ADDRESS_LENGTH] for a in email.cc]
    email.attachments = [
        {
            "name": clean(str(a.get("name", "")))[:NAME_LENGTH],
            "type": clean(str(a.get("type", "")))[:NAME_LENGTH],
            "size": int(a.get("size", 0)),
        }
        for a in email.attachments
    ]
    email.warnings = [clean(w)[:WARNING_LENGTH] for w in email.warnings]
    return email


def _read(data: bytes, notes: _Notes) -> ParsedEmail:
    if not data or data.isspace():
        notes.add("empty message")
        return _unparsed(data)
    message, whole = _mime_tree(data, notes)
    if not any(True for _ in message.raw_items()):
        notes.add("no headers: not an email")
        return _unparsed(data)
    headers = _header_values(message, notes)
    email = ParsedEmail(raw_size=len(data))
    _read_ids(email, headers, data, notes)
    _read_addresses(email, headers, notes)
    email.date = _guarded(notes, "Date", None, lambda: _read_date(headers.get("date", []), notes))
    email.subject = _guarded(notes, "Subject", "", lambda: _read_subject(headers, notes))
    email.vigil_key = clean(_one_line(_first(headers, "x-vigil-outbox")))[:KEY_LENGTH]
    if whole:
        _read_bodies(email, message, notes)
    unclassified: tuple[str, list[dict[str, str]]] = ("person", [])
    email.kind, email.delivery_report = _guarded(
        notes, "automatic-reply headers", unclassified, lambda: classify(message, notes.add)
    )
    return email


def _unparsed(data: bytes) -> ParsedEmail:
    """The row of a message nothing could be read from: keyed by its content."""
    key = _content_key(data)
    return ParsedEmail(message_key=key, thread_key=key, raw_size=len(data), unparsed=True)


def _mime_tree(data: bytes, notes: _Notes) -> tuple[Message, bool]:
    """The parsed message, and whether its body was parsed too. `policy.default` first; if
    its parser fails on a crafted header, the lenient compat32 one; if the MIME nesting is
    too deep for the parser's recursion, the headers only."""
    try:
        return PARSER.parsebytes(data), True
    except RecursionError:
        notes.add("MIME structure nested too deeply to read: body left out")
        return PARSER.parsebytes(data, headersonly=True), False
    except EMAIL_ERRORS as exc:
        notes.add(f"MIME parser failed ({type(exc).__name__}): read leniently")
    try:
        return COMPAT_PARSER.parsebytes(data), True
    except EMAIL_ERRORS:
        notes.add("MIME structure unreadable: body left out")
        return COMPAT_PARSER.parsebytes(data, headersonly=True), False


def _header_values(message: Message, notes: _Notes) -> dict[str, list[str]]:
    """The unfolded values of the headers parse reads, by lower-cased name, as text. Raw
    values: reading them never raises, unlike `policy.default`'s parsed ones."""
    found: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        key = str(name).lower()
        if key in READ_HEADERS:
            found.setdefault(key, []).append(_decode_8bit(_unfold(str(value)), notes, str(name)))
    return found


def _read_ids(
    email: ParsedEmail, headers: dict[str, list[str]], data: bytes, notes: _Notes
) -> None:
    email.message_id = msg_id(_first(headers, "message-id"))
    email.message_key = message_key_for(email.message_id) or _content_key(data)
    if not email.message_id:
        notes.add("no Message-ID: keyed by content")
    replied_to = msg_ids(_first(headers, "in-reply-to"))
    email.in_reply_to = replied_to[0] if replied_to else ""
    references = msg_ids(" ".join(headers.get("references", [])))
    email.references = _capped_references(references, notes)
    parent = email.references[0] if email.references else email.in_reply_to
    email.thread_key = message_key_for(parent) or email.message_key


def _read_addresses(email: ParsedEmail, headers: dict[str, list[str]], notes: _Notes) -> None:
    senders = _addresses(headers.get("from", []), "From", notes, limit=1)
    if senders:
        email.from_name, email.from_address = senders[0]
    elif headers.get("from"):
        notes.add("From: no valid address")
    email.to = [a for _, a in _addresses(headers.get("to", []), "To", notes)]
    email.cc = [a for _, a in _addresses(headers.get("cc", []), "Cc", notes)]


def _read_date(values: list[str], notes: _Notes) -> datetime | None:
    """The Date header as an aware UTC datetime; None, noted, for none, nonsense, or a date
    before 1970 or more than a year ahead."""
    value = values[0].strip()[:200] if values else ""
    if not value:
        notes.add("no Date header")
        return None
    try:
        when = parsedate_to_datetime(value)
        when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        notes.add(f"unreadable Date {value[:60]!r}")
        return None
    if not EARLIEST <= when <= datetime.now(UTC) + LATEST_AHEAD:
        notes.add(f"implausible Date {value[:60]!r}")
        return None
    return when


def _read_subject(headers: dict[str, list[str]], notes: _Notes) -> str:
    value = _first(headers, "subject")
    if len(value) > HEADER_SOURCE_LENGTH:
        notes.add(f"Subject of {len(value)} characters: cut")
        value = value[:HEADER_SOURCE_LENGTH]
    return clean(_one_line(_decode_words(value, notes)))[:ID_LENGTH]


def _read_bodies(email: ParsedEmail, message: Message, notes: _Notes) -> None:
    found = _Bodies()
    _walk(message, 0, False, found, notes)
    email.text_body = clean("\n".join(found.plain))
    html_source = "\n".join(found.html)
    email.html_body = _guarded(notes, "HTML body", "", lambda: sanitise_html(html_source))
    if not email.text_body and html_source:
        email.text_body = _guarded(notes, "HTML body", "", lambda: _html_text(html_source))
    email.attachments = found.attachments


# The MIME walk


def _walk(part: Message, depth: int, in_alternative: bool, found: _Bodies, notes: _Notes) -> None:
    """Collect the body texts and attachments under `part`. The first text/plain and the
    first text/html are the bodies; later ones are added to them unless they are mere
    alternatives (a named one is a file shown inline: listed as an attachment too). Stops at
    MAX_DEPTH levels and MAX_PARTS parts."""
    found.parts += 1
    if found.parts > MAX_PARTS:
        notes.add(f"more than {MAX_PARTS} MIME parts: the rest left out")
        return
    info = _describe(part, notes)
    if part.is_multipart() and info.content_type.startswith("multipart/"):
        if depth >= MAX_DEPTH:
            notes.add(f"MIME parts nested deeper than {MAX_DEPTH}: the rest left out")
        else:
            alternative = info.content_type == "multipart/alternative"
            for child in _subparts(part):
                _walk(child, depth + 1, alternative, found, notes)
    elif not part.is_multipart() and _is_body(info):
        bodies = found.html if info.content_type == "text/html" else found.plain
        if info.filename and (found.plain or found.html) and not in_alternative:
            _attach(part, info, found, notes)  # a file shown inline: listed, its text kept too
        if not (bodies and in_alternative):
            bodies.append(_guarded(notes, "body", "", lambda: _text_of(part, info, notes)))
    else:
        _attach(part, info, found, notes)
    notes.defects(part.defects)


def _is_body(info: _PartInfo) -> bool:
    """Whether a leaf part is body text: text/plain or text/html not sent as an attachment,
    whatever its file name (as for `EmailMessage.get_body`: some mailers name every part,
    the body too, `inline; filename="msg.txt"`)."""
    if info.attached:
        return False
    # A multipart without a usable boundary: its source, as text.
    return info.content_type in ("text/html", "text/plain") or info.content_type.startswith(
        "multipart/"
    )


def _subparts(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _describe(part: Message, notes: _Notes) -> _PartInfo:
    """A part's type, charset and file name, each header parsed once (every `Message`
    accessor parses it again)."""
    content_type = _mime_header(part, "content-type", notes)
    disposition = _mime_header(part, "content-disposition", notes)
    type_params = content_type.params if content_type is not None else {}
    params = disposition.params if disposition is not None else {}
    kind = str(content_type.content_type if content_type is not None else part.get_default_type())
    filename = str(params.get("filename") or type_params.get("name") or "")
    filename = clean(_one_line(_decode_words(filename, notes)))[:NAME_LENGTH]
    attached = (
        disposition is not None and str(disposition.content_disposition).lower() == "attachment"
    )
    charset = str(type_params.get("charset") or "").strip()
    return _PartInfo(kind.lower()[:NAME_LENGTH], charset, filename, attached)


def _mime_header(part: Message, name: str, notes: _Notes) -> Any:
    """A part's first `name` header parsed by `policy.default` (parameters decoded, RFC 2231
    included); None if it has none, or, noted, if the parser fails on it."""
    for raw_name, value in part.raw_items():
        if raw_name.lower() == name:
            source = _decode_8bit(_unfold(str(value))[:HEADER_SOURCE_LENGTH], notes, raw_name)
            try:
                return _header(raw_name, source)
            except EMAIL_ERRORS as exc:
                notes.add(f"unreadable {raw_name} ({type(exc).__name__})")
                return None
    return None


def _text_of(part: Message, info: _PartInfo, notes: _Notes) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    text = _decode(data, info.charset, info.content_type, notes)
    return text.replace("\r\n", "\n") if "\r" in text else text


def _attach(part: Message, info: _PartInfo, found: _Bodies, notes: _Notes) -> None:
    if len(found.attachments) >= MAX_ATTACHMENTS:
        notes.add(f"more than {MAX_ATTACHMENTS} attachments: the rest not listed")
        return
    size = _guarded(notes, "attachment", 0, lambda: _attachment_size(part))
    found.attachments.append({"name": info.filename, "type": info.content_type, "size": size})


def _attachment_size(part: Message) -> int:
    """Decoded size of an attachment; for an attached email, the size of its source."""
    if part.is_multipart():
        return sum(len(p.as_bytes(policy=WIRE)) for p in _subparts(part))
    data = part.get_payload(decode=True)
    return len(data) if isinstance(data, bytes) else 0


# Text


def _decode(data: bytes, charset: str, where: str, notes: _Notes) -> str:
    """Bytes in their declared charset as text. Without one, or where a sender wrote 8-bit
    text and declared US-ASCII or UTF-8 (the commonest mislabelling), see `_utf8_or_fallback`.
    Bytes invalid in another charset are replaced; a charset Python does not know (or that is
    not a text encoding) is read as UTF-8 with replacement characters, which cannot fail.
    Each noted."""
    if _codec(charset) in ("", "ascii", "utf-8"):
        return _decode_unlabelled(data, charset, where, notes)
    try:
        return data.decode(charset)
    except LookupError:
        notes.add(f"{where}: unknown charset {charset[:40]!r}, read as UTF-8")
    except UnicodeDecodeError:
        notes.add(f"{where}: bytes invalid in charset {charset[:40]!r}, replaced")
        try:
            return data.decode(charset, "replace")
        except (LookupError, ValueError, TypeError):
            pass
    except (ValueError, TypeError):  # e.g. a codec that cannot decode, a name with NUL
        notes.add(f"{where}: unusable charset {charset[:40]!r}, read as UTF-8")
    return data.decode("utf-8", "replace")


def _codec(charset: str) -> str | None:
    """Python's name of a charset ("" for none declared; None for one it does not know)."""
    if not charset:
        return ""
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError, TypeError):
        return None


def _decode_unlabelled(data: bytes, charset: str, where: str, notes: _Notes) -> str:
    text, fallback = _utf8_or_fallback(data)
    if fallback:
        declared = f"not in charset {charset[:40]!r}" if charset else "without a charset"
        notes.add(f"{where}: 8-bit bytes {declared}, decoded as {fallback}")
    elif charset and not data.isascii() and _codec(charset) == "ascii":
        notes.add(f"{where}: 8-bit bytes in charset {charset[:40]!r}, read as UTF-8")
    return text


def _utf8_or_fallback(data: bytes) -> tuple[str, str]:
    """Text whose sender did not say its charset: UTF-8 where the bytes are UTF-8 (RFC 6532),
    and each run of bytes that are not read in VIGIL_MAILSYNC_FALLBACK_CHARSET (windows-1252
    by default, as Thunderbird does: "José", not "Jos\ufffd"). Returns the text and the
    fallback charset if it was needed, else ""."""
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError:
        pass
    fallback = settings.VIGIL_MAILSYNC_FALLBACK_CHARSET
    escaped = data.decode("utf-8", "surrogateescape")
    text = ESCAPED_BYTES.sub(
        lambda run: run.group().encode("utf-8", "surrogateescape").decode(fallback, "replace"),
        escaped,
    )
    return text, fallback


def _decode_8bit(value: str, notes: _Notes, label: str) -> str:
    """A header as the parser left it (raw 8-bit bytes as surrogate escapes) as text: UTF-8
    (RFC 6532) where it is, the fallback charset elsewhere, noted (see `_utf8_or_fallback`)."""
    if value.isascii():
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate no parser made: clean() replaces it
        return value
    text, fallback = _utf8_or_fallback(data)
    if fallback:
        notes.add(f"{label}: 8-bit bytes that are not UTF-8, decoded as {fallback}")
    return text


def _decode_words(value: str, notes: _Notes) -> str:
    """RFC 2047 encoded words decoded: by `email.header` (fast), or where it gives up (an
    unknown charset, bytes invalid in theirs, broken base64, raw UTF-8 around them) by
    `policy.default`, which replaces what it cannot decode."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except EMAIL_ERRORS:
        pass
    try:
        return str(_header("subject", value))
    except EMAIL_ERRORS as exc:
        notes.add(f"undecodable encoded words ({type(exc).__name__})")
        return value


def _html_text(markup: str) -> str:
    """Readable text of an HTML-only email, for search and previews."""
    marked = LINE_ENDING_TAGS.sub(lambda m: "\n" + m.group(0), clean(markup))
    text = html.unescape(TEXT_CLEANER.clean(marked))
    return clean(BLANK_LINES.sub("\n\n", text)).strip()


def _one_line(text: str) -> str:
    """Folds every line break (and run of white space) into one space, so a decoded header
    cannot smuggle in a line that looks like another header."""
    return " ".join(text.split())


def _unfold(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


def _first(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


# Identifiers


def _capped_references(ids: list[str], notes: _Notes) -> list[str]:
    """At most MAX_REFERENCES: the first (the thread's root) and the latest."""
    if len(ids) <= MAX_REFERENCES:
        return ids
    notes.add(f"{len(ids)} References: kept the first and the last {MAX_REFERENCES - 1}")
    return [ids[0], *ids[-(MAX_REFERENCES - 1) :]]


def _content_key(data: bytes) -> str:
    return "sha256:" + sha256(data).hexdigest()


# Addresses


def _addresses(
    values: list[str], label: str, notes: _Notes, limit: int = MAX_RECIPIENTS
) -> list[tuple[str, str]]:
    """(display name, normalised address) of each valid address in the headers, deduplicated
    by address, in order; invalid ones noted and left out."""
    source = ", ".join(values)
    if len(source) > ADDRESS_SOURCE_LENGTH:
        notes.add(f"{label}: {len(source)} characters, cut")
        source = source[: source.rfind(",", 0, ADDRESS_SOURCE_LENGTH) + 1]  # whole addresses
    if not source.strip():
        return []
    words: list[str] = []
    try:
        pairs = getaddresses([ENCODED_WORD.sub(lambda m: _stand_in(m, words), source)])
    except EMAIL_ERRORS as exc:
        notes.add(f"{label}: unreadable address list ({type(exc).__name__})")
        return []
    kept: dict[str, str] = {}
    for name, address in pairs:
        if len(kept) >= limit:
            if limit > 1:
                notes.add(f"{label}: {len(pairs)} addresses, kept the first {limit}")
            break
        normalised = _valid_address(_restore(address, words))
        if normalised:
            kept.setdefault(normalised, name)
        elif address:
            notes.add(f"{label}: left out {_restore(address, words)[:80]!r}, not an address")
    return [
        (_display_name(_restore(name, words), notes), address) for address, name in kept.items()
    ]


def _stand_in(match: re.Match[str], words: list[str]) -> str:
    """An encoded word replaced by a plain atom for `getaddresses`, which does not know
    RFC 2047 and would split `=?utf-8?q?Doe=3A_J?=` at its colon, or read an address out of
    it; the word is put back, then decoded, in the display name only."""
    words.append(match.group(0))
    return f"=?{len(words) - 1}?="


def _restore(text: str, words: list[str]) -> str:
    if not words or "=?" not in text:
        return text
    return STAND_IN.sub(lambda m: words[int(m[1])] if int(m[1]) < len(words) else m[0], text)


def _valid_address(address: str) -> str:
    """The normalised address, or "" if this is not one we could write to."""
    if not address or len(address) > ADDRESS_LENGTH or address.count("@") != 1:
        return ""
    normalised = clean(normalise(address))
    local, _, domain = normalised.partition("@")
    if not local or not domain or len(normalised) > ADDRESS_LENGTH:
        return ""
    if not normalised.isprintable() or NOT_IN_ADDRESS.intersection(normalised):
        return ""
    return normalised


def _display_name(name: str, notes: _Notes) -> str:
    return clean(_one_line(_decode_words(name, notes)))[:NAME_LENGTH]


def _guarded(notes: _Notes, what: str, default: T, read_field: Callable[[], T]) -> T:
    """One field read so that the email package failing on it loses only that field."""
    try:
        return read_field()
    except EMAIL_ERRORS as exc:
        notes.add(f"{what}: could not read ({type(exc).__name__})")
        return default
