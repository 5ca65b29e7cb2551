"""What the mail parser and the classifier both read mail with: the errors the email package
raises on malformed input, clean text for PostgreSQL, Message-IDs and the characters no
address we write to holds."""

import re
from email.errors import MessageError

# What the email package raises on malformed input, beyond its documented behaviour: address
# and parameter parsers have raised IndexError, ValueError, TypeError, AttributeError,
# AssertionError and HeaderParseError on crafted headers; deep nesting, RecursionError.
EMAIL_ERRORS = (
    MessageError,
    LookupError,
    ValueError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
)
ID_LENGTH = 998  # message_id, in_reply_to, references, subject: RFC 5322's line limit
MSG_ID = re.compile(r"<([^<>]*)>")
SURROGATE = re.compile("[\ud800-\udfff]")
NOT_IN_ADDRESS = frozenset(' <>()[],;:\\"')  # outside a quoted local part, which we refuse


def clean(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogate."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = SURROGATE.sub("\ufffd", text)
    return text


def msg_id(value: str) -> str:
    """A Message-ID without its angle brackets and any white space, cut to the column."""
    ids = msg_ids(value)
    return ids[0] if ids else ""


def msg_ids(value: str) -> list[str]:
    """The msg-ids of an In-Reply-To or References header, without brackets; bare tokens
    when a sender left the brackets out."""
    value = clean(value)
    found = MSG_ID.findall(value) if "<" in value else value.split()
    ids = ["".join(ident.split()).strip("<>")[:ID_LENGTH] for ident in found]
    return [ident for ident in ids if ident]
