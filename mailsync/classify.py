"""Who wrote an inbound email: a person, an automatic reply, or a delivery report.

An automatic reply says so in its headers (RFC 3834 `Auto-Submitted`, and the older or
vendor ones: `X-Autoreply`, `X-Autorespond`, `Precedence`, Exchange's
`X-MS-Exchange-Inbox-Rules-Loop`). A delivery report is a `multipart/report` of report-type
`delivery-status` (RFC 3464): one block of fields for the report, then one per recipient,
and usually the returned message or its headers, whose Message-ID says which email it is
about. A report is also generated automatically (most carry `Auto-Submitted` too): it is a
delivery report first. Bounces that are not RFC 3464 (old qmail, plain text) count as
automatic only when they say so in a header; nothing is guessed from a subject or a body.

Everything is read from the raw header values of the message and its direct parts, each cut
before it is looked at: a 1 MB header, deep nesting or 5,000 recipients in a report cost
what their first few kilobytes cost.
"""

import re
from collections.abc import Callable, Iterable, Iterator
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from mailsync.mailtext import EMAIL_ERRORS, NOT_IN_ADDRESS, SURROGATE, msg_id
from mailsync.suppression import normalise

PERSON, AUTO_REPLY, DELIVERY_REPORT = "person", "auto_reply", "delivery_report"

MAX_RECIPIENTS = 1000  # recipient blocks read from one report
MAX_PARTS = 50  # direct parts of a report looked at
MAX_HEADERS = 1000  # fields of a report block looked at
FIELD_SOURCE_LENGTH = 2000  # raw characters of a field read
REPORT_TEXT_LENGTH = 1_000_000  # characters of a report read when it comes as text
RETURNED_HEADERS_LENGTH = 64_000  # characters of returned headers read for the Message-ID
DIAGNOSTIC_LENGTH = 300
ADDRESS_LENGTH = 320

AUTOMATIC_PRECEDENCE = {"auto_reply", "auto-reply", "bulk", "junk"}
# Present at all, these mark an automatic reply (unless they say "no").
AUTOMATIC_MARKS = {"x-autoreply", "x-autorespond", "x-ms-exchange-inbox-rules-loop"}
NEGATIVE = {"no", "false", "0"}
ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}
ADDRESS_TYPES = {"rfc822", "utf-8"}  # RFC 3464, RFC 6533
REPORT_TYPES = {"message/delivery-status", "message/global-delivery-status"}
RETURNED_TYPES = {"text/rfc822-headers", "message/rfc822", "message/global-headers"}
STATUS = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
REPORT_TYPE = re.compile(r";\s*report-type\s*=\s*\"?\s*([a-z0-9._-]+)", re.I)
ENCODING = frozenset({"content-transfer-encoding"})
READ_HEADERS = frozenset({"content-type", "auto-submitted", "precedence", *AUTOMATIC_MARKS})

Headers = dict[str, list[str]]


def classify(message: Message, note: Callable[[str], None]) -> tuple[str, list[dict[str, str]]]:
    """The email's kind (a `BacklogEmail.Kind` value) and, for a delivery report, one entry
    per recipient it reports on: recipient, action, status, diagnostic, original_message_id
    (all strings, "" when the report leaves one out). A part of a report the email package
    cannot read is told to `note` (the parse warnings)."""
    headers = _headers(message, READ_HEADERS)
    content_type = _first(headers, "content-type")
    if _main_type(content_type) == "multipart/report":
        report_type = REPORT_TYPE.search(content_type)
        if report_type and report_type.group(1).lower() == "delivery-status":
            return DELIVERY_REPORT, delivery_report(message, note)
        return AUTO_REPLY, []  # read receipts, feedback reports: software wrote them
    if _automatic(headers):
        return AUTO_REPLY, []
    return PERSON, []


def delivery_report(message: Message, note: Callable[[str], None]) -> list[dict[str, str]]:
    """The recipients a delivery report names (at most MAX_RECIPIENTS, one entry an
    address); what could be read before the email package failed, if it does (said to
    `note`)."""
    found: list[dict[str, str]] = []
    try:
        parts = _parts(message)
        original = _original_message_id(parts)
        seen: set[str] = set()
        for block in _recipient_blocks(parts):
            entry = _recipient(block, original)
            if entry and entry["recipient"] not in seen:
                seen.add(entry["recipient"])
                found.append(entry)
                if len(found) >= MAX_RECIPIENTS:
                    break
    except EMAIL_ERRORS as exc:
        note(f"delivery report read in part ({type(exc).__name__}): {len(found)} recipient(s)")
    return found


# Headers


def _headers(part: Message, names: frozenset[str] = frozenset({"content-type"})) -> Headers:
    """The raw values (unfolded, cut to FIELD_SOURCE_LENGTH) of the part's headers of these
    names, by lower-cased name. Raw: policy.default's parsed values can raise, and are slow
    on long ones."""
    found: Headers = {}
    for name, value in part.raw_items():
        key = str(name).lower()
        if key in names:
            found.setdefault(key, []).append(_field(value))
    return found


def _field(value: object) -> str:
    text = str(value)[:FIELD_SOURCE_LENGTH]
    return " ".join(text.split())


def _first(headers: Headers, name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def _first_word(value: str) -> str:
    """`auto-replied; owner-email=…` or `auto-replied (vacation)` → `auto-replied`."""
    return re.split(r"[\s;(]", value.strip(), maxsplit=1)[0].lower()


def _automatic(headers: Headers) -> bool:
    for value in headers.get("auto-submitted", []):
        word = _first_word(value)
        if word and word != "no":
            return True
    for name in AUTOMATIC_MARKS:
        if any(_first_word(value) not in NEGATIVE for value in headers.get(name, [])):
            return True
    return any(_first_word(v) in AUTOMATIC_PRECEDENCE for v in headers.get("precedence", []))


def _main_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


# The report


def _parts(message: Message) -> list[tuple[str, Message]]:
    """The report's direct parts with their content types. A message read headers-only
    (nested too deeply to parse) has none."""
    payload = message.get_payload()
    if not isinstance(payload, list):
        return []
    parts = []
    for part in payload[:MAX_PARTS]:
        if isinstance(part, Message):
            parts.append((_main_type(_first(_headers(part), "content-type")), part))
    return parts


Block = dict[str, str]


def _recipient_blocks(parts: list[tuple[str, Message]]) -> Iterator[Block]:
    """The field blocks of the report's status parts that name a recipient."""
    for content_type, part in parts:
        if content_type in REPORT_TYPES:
            for block in _status_blocks(part):
                if "final-recipient" in block or "original-recipient" in block:
                    yield block


def _status_blocks(part: Message) -> Iterator[Block]:
    """A status part's blocks of fields. The email package parses message/delivery-status
    into one header-only message a block; message/global-delivery-status into one message
    whose body holds the blocks after the first; a part it could not split is text."""
    payload = part.get_payload()
    if isinstance(payload, list):
        for n, block in enumerate(payload):
            if n > MAX_RECIPIENTS or not isinstance(block, Message):
                break
            yield _block(block.raw_items())
            body = block.get_payload()
            if isinstance(body, str) and body.strip():
                yield from _text_blocks(body)
    elif isinstance(payload, str):
        yield from _text_blocks(_text(part))


def _block(items: Iterable[tuple[str, object]]) -> Block:
    block: Block = {}
    for n, (name, value) in enumerate(items):
        if n >= MAX_HEADERS:
            break
        block.setdefault(str(name).strip().lower(), _field(value))
    return block


def _text_blocks(text: str) -> Iterator[Block]:
    """Blocks of `Name: value` lines (a line starting with white space continues the last
    one) separated by blank lines; each value read up to FIELD_SOURCE_LENGTH."""
    fields: list[tuple[str, list[str]]] = []
    length = blocks = 0  # length: of the last field's value so far
    for line in text[:REPORT_TEXT_LENGTH].splitlines():
        if not line.strip():
            if fields:
                yield _block((name, "".join(parts)) for name, parts in fields)
                fields, blocks = [], blocks + 1
                if blocks > MAX_RECIPIENTS:
                    return
        elif line[0] in " \t" and fields:
            if length < FIELD_SOURCE_LENGTH:
                fields[-1][1].append(" " + line.strip())
                length += len(line)
        elif ":" in line and len(fields) < MAX_HEADERS:
            name, _, value = line.partition(":")
            fields.append((name, [value[:FIELD_SOURCE_LENGTH]]))
            length = len(value)
    if fields:
        yield _block((name, "".join(parts)) for name, parts in fields)


def _recipient(block: Block, original_message_id: str) -> dict[str, str] | None:
    # Original-Recipient is the address as the sender wrote it; Final-Recipient may be an
    # alias it was forwarded to.
    address = _address(block.get("original-recipient", "")) or _address(
        block.get("final-recipient", "")
    )
    if not address:
        return None
    action = _first_word(block.get("action", ""))
    status = STATUS.match(block.get("status", ""))
    diagnostic = block.get("diagnostic-code", "")
    if ";" in diagnostic:  # "smtp; 550 5.1.1 …": the type is not worth keeping
        diagnostic = diagnostic.partition(";")[2]
    return {
        "recipient": address,
        "action": action if action in ACTIONS else "",
        "status": ".".join(status.groups()) if status else "",
        "diagnostic": _clean(diagnostic.strip())[:DIAGNOSTIC_LENGTH],
        "original_message_id": original_message_id,
    }


def _address(field: str) -> str:
    """The address of an `rfc822; ana@example.com` field, normalised; "" if it is not one
    we could have written to."""
    kind, semicolon, address = field.partition(";")
    if not semicolon or kind.strip().lower() not in ADDRESS_TYPES:
        return ""
    address = _clean(normalise(address.strip().strip("<>")))
    local, at, domain = address.partition("@")
    if not (local and at and domain) or "@" in domain or len(address) > ADDRESS_LENGTH:
        return ""
    if not address.isprintable() or NOT_IN_ADDRESS.intersection(address):
        return ""
    return address


# The returned message


def _original_message_id(parts: list[tuple[str, Message]]) -> str:
    """The Message-ID of the email the report is about, from the returned message or its
    headers; "" if the report returned neither."""
    for content_type, part in parts:
        if content_type not in RETURNED_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            returned = payload[0]
        elif isinstance(payload, str):
            returned = HeaderParser(policy=compat32).parsestr(_text(part, RETURNED_HEADERS_LENGTH))
        else:
            continue
        ident = msg_id(_clean(_first(_headers(returned, frozenset({"message-id"})), "message-id")))
        if ident:
            return ident
    return ""


def _text(part: Message, limit: int = REPORT_TEXT_LENGTH) -> str:
    """A text part's content, its transfer encoding undone."""
    encoding = _first(_headers(part, ENCODING), "content-transfer-encoding").lower()
    payload = part.get_payload()
    if encoding in {"base64", "quoted-printable"}:
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            return data[:limit].decode("utf-8", "replace")
    return str(payload)[:limit] if isinstance(payload, str) else ""


def _clean(text: str) -> str:
    """Text PostgreSQL stores (in jsonb too): no NUL, no lone surrogate; raw 8-bit bytes
    (kept by the parser as surrogate escapes) read as UTF-8."""
    text = text.replace("\x00", "")
    if text.isascii():
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return SURROGATE.sub("\ufffd", text)
