"""Syncing one mailbox: its INBOX and Sent folder, incrementally by UID, into the backlog.

A worker first claims the mailbox (a conditional UPDATE: exactly one row, or someone else has
it), so one mailbox is never synced by two workers at once. Each fetched batch is stored in
one transaction together with the folder's new state and a renewal of the claim: a worker
that lost its claim (it hung past the lease and another took over) writes nothing, and a
crash between batches resumes after the last committed UID. The server's read flags are
never touched: folders are opened read-only (EXAMINE) and bodies fetched with BODY.PEEK[].
A message deleted (expunged) on the server stays in the backlog; its copy is marked gone.

Three things overlap: a thread downloads the next batch while this one is stored, and when a
folder has more than PARSE_APART messages to read (a first sync), parser processes
(VIGIL_MAILSYNC_PARSERS, one per core) parse the batches that thread hands them: parsing is
pure Python, so in one process it goes at one core's speed (see _Parsers).
"""

import contextlib
import imaplib
import logging
import os
import pickle
import queue
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO, TypeVar, cast

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
# A parser process's program (_Parsers). Its stdout carries the results: whatever else would
# write there (a stray print, a library's warning) goes to stderr instead. Ctrl-C at a terminal
# is the worker's to act on (a warm shutdown lets the sync finish); TERM and KILL to the
# worker's process group stop the parsers too, and a closed pipe always does.
PARSER_PROGRAM = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "results = os.fdopen(os.dup(1), 'wb'); os.dup2(2, 1); "
    "import django; django.setup(); "
    "from mailsync.sync import _parse_forever; _parse_forever(sys.stdin.buffer, results)"
)
# New messages a folder must have for the sync to start parser processes; fewer are parsed on
# the thread that downloads them. A parser costs about a second of a core to start (Django's
# set-up), which parsing apart repays from about 8,500 messages on a 2-core machine (20,000:
# 957 -> 1,237 messages stored a second; a few thousand came out slower).
PARSE_APART = 10_000
# A batch's messages being parsed: its parts in order, each a list of parsed messages to come.
Parts = list[Future[list[backlog.Fetched]]]


class AuthFailed(Exception):
    """The server refused our credentials: retrying will not help until the owner
    reconnects (a revoked grant, a changed password)."""


class ClaimLost(Exception):
    """Another worker took the mailbox over (this one outlived its lease)."""


class ParserDied(Exception):
    """A parser process ended (killed, out of memory) or hung with part of a batch: that
    batch is not stored, and the sync fails; the next one resumes after the last batch."""


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
    with _connect(mailbox) as client, _Parsers(settings.VIGIL_MAILSYNC_PARSERS) as parsers:
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
            outcome.folders[role] = _sync_folder(client, mailbox, folder, claim, parsers)
    outcome.stored = sum(outcome.folders.values())
    return outcome


def _sync_folder(
    client, mailbox: Mailbox, folder: MailFolder, claim: str, parsers: "_Parsers"
) -> int:
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
    if len(uids) > PARSE_APART:
        parsers.start()
    stored = 0
    with contextlib.closing(_prefetched(_fetched_batches(client, uids, parsers.parse))) as batches:
        for chunk, parts in batches:
            fetched = _gathered(parts)
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


def _fetched_batches(
    client, uids: list[int], parse: Callable[[list[tuple[int, bytes]]], Parts]
) -> Iterator[tuple[list[int], Parts]]:
    """The new messages in batches of at most VIGIL_MAILSYNC_BATCH messages and BATCH_BYTES
    (sizes asked first, so a folder of large attachments does not fill the memory), each
    handed to `parse` as soon as it is downloaded."""
    for batch in _plan(client, uids):
        response = client.fetch(batch, ["BODY.PEEK[]"])
        raws = ((uid, response.pop(uid, {}).get(b"BODY[]") or b"") for uid in batch)
        yield batch, parse([(uid, raw) for uid, raw in raws if raw])


def _fetched(uid: int, raw: bytes) -> backlog.Fetched:
    parsed = parse(raw)
    # Raw bytes are kept only for what was not read cleanly (backlog.store).
    keep = parsed.unparsed or parsed.warnings
    return backlog.Fetched(uid, raw if keep else b"", parsed)


def _parsed_here(raws: list[tuple[int, bytes]]) -> Parts:
    done: Future[list[backlog.Fetched]] = Future()
    done.set_result([_fetched(uid, raw) for uid, raw in raws])
    return [done]


def _gathered(parts: Parts) -> list[backlog.Fetched]:
    """A batch's parsed messages, in order. A parser that takes longer than a lease is hung
    (the claim would be lost before it answered anyway)."""
    try:
        return [item for part in parts for item in part.result(lease().total_seconds())]
    except TimeoutError:
        raise ParserDied("a parser process did not answer within a lease") from None


class _Parsers:
    """Parser processes for one sync, `count` of them (0 or 1: none), each parsing a part of a
    batch at a time.

    A parser process is a fresh interpreter (PARSER_PROGRAM) that reads parts from its stdin
    and writes them back parsed. It is started with subprocess, not multiprocessing: Celery's
    prefork children are daemonic, and multiprocessing refuses to start a child there. It
    shares nothing with this process (no database connection, socket or lock, as a fork
    would), and it ends when its stdin closes: with this process, even a killed one. A thread
    per process does the exchange (write a part, read it back), so a caller only submits and
    waits on futures, and a process that dies is an end of file, not a hang.

    Nothing starts until `start()`, and a process takes about a second to be ready (Django's
    set-up): until one is, `parse()` parses on the calling thread, so a sync is never slower
    for having started them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._environment = _parser_environment()
        self._threads = ThreadPoolExecutor(max(count, 1), thread_name_prefix="mailsync-parse")
        self._idle: queue.SimpleQueue[subprocess.Popen[bytes]] = queue.SimpleQueue()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> "_Parsers":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the processes, once, without waiting for them."""
        with self._lock:
            if self.count <= 1 or self._processes or self._closed:
                return
            for _ in range(self.count):
                process = subprocess.Popen(  # noqa: S603 - this interpreter, our own program
                    [sys.executable, "-c", PARSER_PROGRAM],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    env=self._environment,
                )
                self._processes.append(process)
                # Submitted first, so every thread has its process before any part comes.
                self._threads.submit(self._welcome, process)

    def parse(self, raws: list[tuple[int, bytes]]) -> Parts:
        if not self._ready.is_set():
            return _parsed_here(raws)
        size = max(1, -(-len(raws) // self.count))
        return [
            self._threads.submit(self._parse_part, raws[start : start + size])
            for start in range(0, len(raws), size)
        ]

    def close(self) -> None:
        """End every process, busy or not: after a failure its work is not wanted, and an idle
        one would wait on its stdin for good. The exchanging threads then meet a closed pipe."""
        with self._lock:
            self._closed = True
        self._threads.shutdown(wait=False, cancel_futures=True)
        for process in self._processes:
            process.kill()
        self._threads.shutdown(wait=True)
        for process in self._processes:
            process.wait()
            for pipe in (process.stdin, process.stdout):
                with contextlib.suppress(OSError):
                    cast(BinaryIO, pipe).close()

    def _welcome(self, process: subprocess.Popen[bytes]) -> None:
        """Wait for a new process's first answer, which says it is ready (Django set up)."""
        self._answer(process, None)
        self._idle.put(process)
        self._ready.set()

    def _parse_part(self, raws: list[tuple[int, bytes]]) -> list[backlog.Fetched]:
        try:
            process = self._idle.get_nowait()
        except queue.Empty:
            raise ParserDied("no parser process is left") from None
        fetched = self._answer(process, raws)
        self._idle.put(process)
        return fetched

    def _answer(
        self, process: subprocess.Popen[bytes], raws: list[tuple[int, bytes]] | None
    ) -> list[backlog.Fetched]:
        requests, results = cast(BinaryIO, process.stdin), cast(BinaryIO, process.stdout)
        try:
            if raws is not None:
                pickle.dump(raws, requests, pickle.HIGHEST_PROTOCOL)
                requests.flush()
            return pickle.load(results)  # noqa: S301 - written by our own parser process
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            process.kill()
            raise ParserDied(f"a parser process ended (status {process.wait()})") from exc


def _parser_environment() -> dict[str, str]:
    """This process's environment (with DJANGO_SETTINGS_MODULE), the project on the import
    path, and the one setting parse() reads as this process has it (a caller or a test may
    have changed it since start-up)."""
    path = [str(settings.BASE_DIR), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in path if p),
        "VIGIL_MAILSYNC_FALLBACK_CHARSET": settings.VIGIL_MAILSYNC_FALLBACK_CHARSET,
    }


def _parse_forever(requests: BinaryIO, results: BinaryIO) -> None:
    """A parser process (PARSER_PROGRAM): parse each part that comes in and send it back,
    until the sync closes the pipe, or ends (then this one ends at its next read or write,
    or meets a part cut short)."""
    with contextlib.suppress(EOFError, BrokenPipeError, pickle.UnpicklingError):
        pickle.dump([], results)  # ready: the first answer
        results.flush()
        while True:
            raws = pickle.load(requests)  # noqa: S301 - written by our own sync
            pickle.dump([_fetched(uid, raw) for uid, raw in raws], results, pickle.HIGHEST_PROTOCOL)
            results.flush()


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


def _prefetched(batches: Iterator[T]) -> Generator[T, None, None]:
    """Iterate `batches` one step ahead on a thread: the next batch downloads (and is parsed,
    or handed to the parsers) while this one is stored (the network and the database wait
    without holding the GIL). At most three batches are in memory: this one, the next, and
    the one the thread holds until there is room for it."""
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
