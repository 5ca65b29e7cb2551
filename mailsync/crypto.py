"""The encryption of mailbox secrets (refresh tokens, access tokens, IMAP passwords) at rest, with
the Fernet keys of settings.VIGIL_MAILBOX_KEYS, newest first: the newest encrypts, any of them
decrypts, so a key is replaced by prepending the new one, running `rotate_mailbox_keys`, and
only then dropping the old one."""

import functools
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction

from mailsync.models import Mailbox

logger = logging.getLogger(__name__)

ROTATE_BATCH = 500


class SecretUnreadable(Exception):
    """None of the configured keys opens a stored secret: the key it was encrypted with was
    dropped from VIGIL_MAILBOX_KEYS, or the value is damaged."""

    def __init__(self, message: str = "no key in VIGIL_MAILBOX_KEYS opens this mailbox secret"):
        super().__init__(message)


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _keys() -> MultiFernet:
    # Keyed by the keys themselves, so override_settings and a changed setting take effect.
    return _fernet(tuple(settings.VIGIL_MAILBOX_KEYS))


def encrypt(text: str) -> bytes:
    return _keys().encrypt(text.encode())


def decrypt(token: bytes | memoryview) -> str:
    """The text of a value from `encrypt` (PostgreSQL hands a BinaryField back as memoryview)."""
    try:
        return _keys().decrypt(bytes(token)).decode()
    except InvalidToken:
        raise SecretUnreadable() from None


def rotate() -> int:
    """Re-encrypt every mailbox's secret and access token with the newest key; returns how many
    mailboxes were re-encrypted. The rows are locked batch by batch until the end, so a token
    refreshed meanwhile is not overwritten with the old one. A value no key opens is left as
    it is (its owner must reconnect) and logged by mailbox id."""
    fernet = _keys()
    rotated = 0
    unreadable: list[int] = []
    with transaction.atomic():
        last_pk = 0
        while batch := _lock_batch(last_pk):
            last_pk = batch[-1].pk
            changed = []
            for mailbox in batch:
                try:
                    mailbox.secret = _rotate_value(fernet, mailbox.secret)
                    mailbox.access_token = _rotate_value(fernet, mailbox.access_token)
                except InvalidToken:
                    unreadable.append(mailbox.pk)
                    continue
                changed.append(mailbox)
            Mailbox.objects.bulk_update(changed, ["secret", "access_token"])
            rotated += len(changed)
    if unreadable:
        logger.warning(
            "rotate_mailbox_keys: no key opens the secret of mailboxes %s; left as they are",
            ", ".join(map(str, unreadable)),
        )
    return rotated


def _lock_batch(after_pk: int) -> list[Mailbox]:
    with_secrets = Mailbox.objects.exclude(secret=b"", access_token=b"")
    return list(
        with_secrets.select_for_update()
        .filter(pk__gt=after_pk)
        .only("pk", "secret", "access_token")
        .order_by("pk")[:ROTATE_BATCH]
    )


def _rotate_value(fernet: MultiFernet, value: bytes | memoryview) -> bytes:
    return fernet.rotate(bytes(value)) if value else b""
