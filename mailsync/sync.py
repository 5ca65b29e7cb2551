"""Syncing one mailbox: its INBOX and Sent folder, incrementally by UID, into the backlog.

A worker first claims the mailbox (a conditional UPDATE: exactly one row, or someone else has
it), so one mailbox is never synced by two workers at once. Each fetched batch is stored in
one transaction together with the folder's new state and a renewal of the claim: a worker
that lost its claim (it hung past the lease and another took over) writes nothing, and a
crash between batches resumes after the last committed UID. The server's read flags are
never touched: folders are opened read-only (EXAMINE) and bodies fetched with BODY.PEEK[].
A message deleted (expunged) on the server stays in the backlog; its copy is marked gone.
"""

import contextlib
import imaplib
import logging
import queue
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

import imapclient
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT

from mailsync import backlog, crypto, hosts, oauth
from mailsync.models import Mailbox, MailboxCopy, MailFolder
from mailsync.parsing import parse

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
# Bodies fetched in one command at most this big (sizes are asked first, SIZE_QUERY at a time).
BATCH_BYTES = 32 * 1024 * 1024
SIZE_QUERY = 2000
GONE_UPDATE = 1000  # copies marked gone per UPDATE (SQLite allows 32,766 parameters)
T = TypeVar("T")
# Common names of a Sent folder, for servers without SPECIAL-USE (imapclient's own list).
FOLDERS = {MailFolder.Role.INBOX: "INBOX", MailFolder.Role.SENT: SENT}


class AuthFailed(Exception):
    """The server refused our credentials: retrying will not help until the owner
    reconnects (a revoked grant, a changed password)."""


class ClaimLost(Exception):
    """Another worker took the mailbox over (this one outlived its lease)."""


@dataclass
class Outcome:
    status: str  # synced, skipped, reconnect, failed
    stored: int = 0
    folders: dict[str, int] = field(default_factory=dict)
    error: str = ""


def lease() -> timedelta:
    # A claim outlives the longest a hung server can hold one network call, with room to
    # store a batch; each stored batch renews it.
    return timedelta(seconds=4 * settings.VIGIL_MAILSYNC_SOCKET_TIMEOUT + 60)


def sync_mailbox(mailbox_id: int, queued_at: datetime | None = None) -> Outcome:
    """Sync one mailbox if it is still due and nobody else holds it. `queued_at` is the
    queueing this task was sent for: a second task for the same queueing finds it done."""
    claim = uuid.uuid4().hex
    now = timezone.now()
    due = Mailbox.objects.filter(pk=mailbox_id, status=Mailbox.Status.ACTIVE)
    if queued_at is not None:
        due = due.filter(queued_at=queued_at)
    free = due.filter(claimed_until__isnull=True) | due.filter(claimed_until__lt=now)
    if free.update(claim=claim, claimed_until=now + lease()) != 1:
        return Outcome("skipped")
    mailbox = Mailbox.objects.get(pk=mailbox_id)
    try:
        outcome = _sync(mailbox, claim)
    except (AuthFailed, oauth.GrantRevoked) as exc:
        oauth.needs_reconnect(mailbox, timezone.now(), reason=str(exc))
        outcome = Outcome("reconnect", error=str(exc))
    except ClaimLost:
        return Outcome("skipped", error="another worker took the mailbox over")
    except (OSError, IMAPClientError, oauth.ProviderUnavailable, crypto.SecretUnreadable) as exc:
        outcome = Outcome("failed", error=_describe(exc))
    except Exception as exc:
        # A fault of ours (the bug detector reports it); the other mailboxes go on.
        log.exception("mailbox %s: sync failed", mailbox_id)
        outcome = Outcome("failed", error=_describe(exc))
    _release(mailbox, claim, outcome)
    return outcome


def _sync(mailbox: Mailbox, claim: str) -> Outcome:
    outcome = Outcome("synced")
    with _connect(mailbox) as client:
        if client.has_capability("CONDSTORE"):
            client.enable("CONDSTORE")
        for role, wanted in FOLDERS.items():
            name = wanted if role == MailFolder.Role.INBOX else client.find_special_folder(wanted)
            if name is None:
                continue
            folder, _ = MailFolder.objects.get_or_create(
                mailbox=mailbox, role=role, defaults={"name": name}
            )
            folder.name = name
            outcome.folders[role] = _sync_folder(client, mailbox, folder, claim)
    outcome.stored = sum(outcome.folders.values())
    return outcome


def _sync_folder(client, mailbox: Mailbox, folder: MailFolder, claim: str) -> int:
    """Fetch what arrived in the folder since the last committed UID, and mark the copies
    of messages no longer in it gone. After a UIDVALIDITY change the folder is read again
    from the start; the backlog's content key keeps that from storing any email twice."""
    info = client.select_folder(folder.name, readonly=True)
    uidvalidity = int(info[b"UIDVALIDITY"])
    uidnext = int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None
    modseq = int(info[b"HIGHESTMODSEQ"]) if b"HIGHESTMODSEQ" in info else None
    if folder.uidvalidity != uidvalidity:
        if folder.uidvalidity is not None:
            log.info("mailbox %s %s: UIDVALIDITY changed, resyncing", mailbox.pk, folder.role)
        folder.uidvalidity, folder.last_uid = uidvalidity, 0
    elif _unchanged(folder, uidnext, modseq):
        _save_state(mailbox, folder, claim, uidnext, modseq)
        return 0
    # "n:*" always names the folder's last message, even one below n.
    uids = [u for u in client.search(["UID", f"{folder.last_uid + 1}:*"]) if u > folder.last_uid]
    on_server = _when_something_left(client, mailbox, folder, uidvalidity, info, len(uids))
    stored = 0
    for chunk, fetched in _prefetched(_fetched_batches(client, uids)):
        with transaction.atomic():
            stored += backlog.store(mailbox, folder.role, uidvalidity, fetched, timezone.now())
            folder.last_uid = chunk[-1]
            _save_state(mailbox, folder, claim, uidnext, modseq)
    with transaction.atomic():
        if on_server is not None:
            _mark_gone(mailbox, folder.role, uidvalidity, on_server)
        _save_state(mailbox, folder, claim, uidnext, modseq)
    return stored


def _when_something_left(
    client, mailbox: Mailbox, folder: MailFolder, uidvalidity: int, info: dict, new: int
) -> set[int] | None:
    """The folder's whole UID list when a message we hold a copy of may have left it; None
    when none can have. Had nothing left, the server would hold at least our live copies (one
    per message) plus the new messages: one COUNT tells, where reading the UID list of a
    200,000-message folder at every sync would cost megabytes. Nothing is stored between syncs,
    so a sync killed before marking what left is made good by the next one."""
    live = MailboxCopy.objects.filter(mailbox=mailbox, folder=folder.role, gone_at__isnull=True)
    held = live.filter(uidvalidity=uidvalidity).count()
    stale = live.exclude(uidvalidity=uidvalidity).exists()  # the folder was renumbered
    exists = int(info.get(b"EXISTS", 0))
    if not stale and exists >= held + new:
        return None
    return set(client.search(["ALL"]))


def _unchanged(folder: MailFolder, uidnext: int | None, modseq: int | None) -> bool:
    """Whether the folder is as the last sync left it: nothing new (UIDNEXT), and, as far as
    the server says (CONDSTORE: an expunge moves HIGHESTMODSEQ on), nothing deleted. Without
    CONDSTORE, or when flags moved it on, `_when_something_left` tells."""
    return (
        uidnext is not None
        and uidnext <= folder.last_uid + 1
        and modseq is not None
        and modseq == folder.highestmodseq
    )


def _mark_gone(mailbox: Mailbox, folder: str, uidvalidity: int, on_server: set[int]) -> int:
    """Mark the copies of this folder whose message the server no longer has (expunged, or
    not found again after a UIDVALIDITY change) as gone, now. Whatever the folder's size: one
    query for the UIDs we hold, and an UPDATE per GONE_UPDATE copies gone."""
    live = MailboxCopy.objects.filter(mailbox=mailbox, folder=folder, gone_at__isnull=True)
    gone = [
        pk
        for pk, validity, uid in live.values_list("pk", "uidvalidity", "uid").iterator(10_000)
        if validity != uidvalidity or uid not in on_server
    ]
    now = timezone.now()
    for start in range(0, len(gone), GONE_UPDATE):
        MailboxCopy.objects.filter(pk__in=gone[start : start + GONE_UPDATE]).update(gone_at=now)
    return len(gone)


def _fetched_batches(client, uids: list[int]) -> Iterator[tuple[list[int], list[backlog.Fetched]]]:
    """The new messages, parsed, in batches of at most VIGIL_MAILSYNC_BATCH messages and
    BATCH_BYTES (sizes asked first, so a folder of large attachments does not fill the
    memory)."""
    for batch in _plan(client, uids):
        response = client.fetch(batch, ["BODY.PEEK[]"])
        fetched = []
        for uid in batch:
            raw = response.pop(uid, {}).get(b"BODY[]") or b""
            if raw:
                parsed = parse(raw)
                # Raw bytes are kept only for what was not read cleanly (backlog.store).
                keep = parsed.unparsed or parsed.warnings
                fetched.append(backlog.Fetched(uid, raw if keep else b"", parsed))
        yield batch, fetched


def _plan(client, uids: list[int]) -> Iterator[list[int]]:
    limit = settings.VIGIL_MAILSYNC_BATCH
    for start in range(0, len(uids), SIZE_QUERY):
        asked = uids[start : start + SIZE_QUERY]
        sizes = client.fetch(asked, ["RFC822.SIZE"])
        batch: list[int] = []
        total = 0
        for uid in asked:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if batch and (len(batch) >= limit or total + size > BATCH_BYTES):
                yield batch
                batch, total = [], 0
            batch.append(uid)
            total += size
        if batch:
            yield batch


def _prefetched(batches: Iterator[T]) -> Iterator[T]:
    """Iterate `batches` one step ahead on a thread: the next batch downloads and is parsed
    while this one is stored (the network and the database wait without holding the GIL)."""
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        ahead.put((True, item), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put((False, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            ahead.put((False, exc))

    thread = threading.Thread(target=produce, name="mailsync-fetch", daemon=True)
    thread.start()
    try:
        while True:
            more, item = ahead.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            ahead.get_nowait()
        thread.join(timeout=settings.VIGIL_MAILSYNC_SOCKET_TIMEOUT + 5)


def _save_state(
    mailbox: Mailbox, folder: MailFolder, claim: str, uidnext: int | None, modseq: int | None
) -> None:
    """Move the folder's state on and renew the claim, in the caller's transaction: if the
    claim was lost, raise, and the batch stored with it rolls back."""
    with transaction.atomic():
        renewed = Mailbox.objects.filter(pk=mailbox.pk, claim=claim).update(
            claimed_until=timezone.now() + lease()
        )
        if renewed != 1:
            raise ClaimLost
        folder.uidnext, folder.highestmodseq = uidnext, modseq
        folder.save(update_fields=["name", "uidvalidity", "last_uid", "uidnext", "highestmodseq"])


def _connect(mailbox: Mailbox) -> imapclient.IMAPClient:
    """A signed-in session. An access token the server refuses may have been revoked before
    its time: one fresh token on a new connection (after a failed XOAUTH2 exchange some
    servers keep the old one unusable), then give up."""
    try:
        return _signed_in(mailbox, force_refresh=False)
    except LoginError:
        if mailbox.auth == Mailbox.Auth.PASSWORD:
            raise AuthFailed("the server refused the password") from None
    try:
        return _signed_in(mailbox, force_refresh=True)
    except LoginError:
        raise AuthFailed("the server refused the access token") from None


def _signed_in(mailbox: Mailbox, *, force_refresh: bool) -> imapclient.IMAPClient:
    client = _connected(mailbox)
    try:
        if mailbox.auth == Mailbox.Auth.PASSWORD:
            _log_in(client, mailbox.username, crypto.decrypt(bytes(mailbox.secret)))
        else:
            access_token = oauth.access_token(mailbox, timezone.now(), force_refresh=force_refresh)
            client.oauth2_login(mailbox.username, access_token)
    except BaseException:
        _close_quietly(client)
        raise
    return client


def _connected(mailbox: Mailbox) -> imapclient.IMAPClient:
    """A session with the server, over TLS unless the mailbox says none, not signed in yet.
    Whatever goes wrong until then is one error (hosts.UNREACHABLE): a refused host, an
    unknown name, a closed port and a silent one must look alike."""
    targets = hosts.resolve(
        mailbox.imap_host,
        mailbox.imap_port,
        private_allowed=settings.VIGIL_MAILSYNC_PRIVATE_HOSTS,
    )
    security = mailbox.imap_security
    context = ssl.create_default_context()  # verifies the certificate and the host name
    client = None
    try:
        client = _CheckedClient(
            mailbox.imap_host,
            mailbox.imap_port,
            targets,
            ssl_context=context if security == Mailbox.Security.SSL else None,
            timeout=settings.VIGIL_MAILSYNC_SOCKET_TIMEOUT,
        )
        if security == Mailbox.Security.STARTTLS:
            client.starttls(context)
    except (OSError, IMAPClientError) as exc:
        if client is not None:
            _close_quietly(client)
        log.info("mailbox %s: could not connect (%s)", mailbox.pk, type(exc).__name__)
        raise hosts.Unreachable from None
    return client


@sensitive_variables("password")
def _log_in(client: imapclient.IMAPClient, username: str, password: str) -> None:
    """LOGIN carries printable ASCII only (imaplib sends it as a quoted string); anything else
    goes as AUTHENTICATE PLAIN, UTF-8 in base64 (RFC 4616), if the server offers it."""
    if _quotable(username) and _quotable(password) and not client.has_capability("LOGINDISABLED"):
        client.login(username, password)
    elif client.has_capability("AUTH=PLAIN") and "\0" not in username + password:
        client.plain_login(username, password)
    else:
        raise AuthFailed("the server offers no way to sign in with this password")


def _quotable(text: str) -> bool:
    return text.isascii() and text.isprintable()


class _CheckedIMAP4(imaplib.IMAP4):
    """imaplib's session on a socket to an address hosts.resolve checked, never a new lookup.
    `host` stays the name, so TLS (here or by STARTTLS) verifies the certificate against it."""

    def __init__(
        self,
        host: str,
        port: int,
        targets: list[hosts.Target],
        ssl_context: ssl.SSLContext | None,
        timeout: float | None,
    ) -> None:
        self._targets, self._ssl_context = targets, ssl_context
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = hosts.connect(self._targets, timeout)
        if self._ssl_context is None:
            return sock
        try:
            return self._ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class _CheckedClient(imapclient.IMAPClient):
    def __init__(
        self,
        host: str,
        port: int,
        targets: list[hosts.Target],
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        self._targets = targets
        super().__init__(
            host, port, ssl=ssl_context is not None, ssl_context=ssl_context, timeout=timeout
        )

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 - imapclient's name
        context = self.ssl_context if self.ssl else None
        return _CheckedIMAP4(self.host, self.port, self._targets, context, self._timeout.connect)


def _close_quietly(client: imapclient.IMAPClient) -> None:
    with contextlib.suppress(OSError, IMAPClientError):
        client.shutdown()


def _release(mailbox: Mailbox, claim: str, outcome: Outcome) -> None:
    now = timezone.now()
    mine = Mailbox.objects.filter(pk=mailbox.pk, claim=claim)
    done = {"claim": "", "claimed_until": None, "queued_at": None}
    if outcome.status == "synced":
        mine.update(**done, attempts=0, last_error="", last_synced_at=now, syncs=F("syncs") + 1)
    elif outcome.status == "failed":
        attempts = mailbox.attempts + 1
        delay = timedelta(minutes=settings.VIGIL_MAILSYNC_INTERVAL_MINUTES) * 2 ** min(
            attempts - 1, 10
        )
        mine.update(
            **done,
            attempts=attempts,
            last_error=outcome.error,
            next_sync_at=now + min(delay, MAX_BACKOFF),
        )
    else:
        mine.update(**done)


def _describe(exc: BaseException) -> str:
    """A short, secret-free account of a failure for the mailbox's last_error."""
    if isinstance(exc, hosts.Unreachable):
        return str(exc)
    if isinstance(exc, socket.timeout | TimeoutError):
        return "the server did not answer in time"
    return f"{type(exc).__name__}: {exc}"[:500]
