from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce


class OutboxMessage(models.Model):
    """One email on its way out. Every email Vigil sends is a row here first, written in the
    same transaction as whatever caused it; the outbox_send job delivers it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"
        SUPPRESSED = "suppressed", "Suppressed (every recipient is on the suppression list)"

    key = models.CharField(
        max_length=255,
        unique=True,
        help_text="Idempotency key: queueing the same key twice queues one email.",
    )
    source = models.CharField(max_length=64, help_text="What queued it (a job or feature).")
    from_email = models.CharField(max_length=255)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998)
    text_body = models.TextField()
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    dropped = models.JSONField(
        default=dict,
        blank=True,
        help_text="Recipients left out (when queued or at send time), each with the reason.",
    )
    message_id = models.CharField(max_length=255, unique=True)
    # The record the email is about (a nurture email: its lead). Who may see that record may
    # read the email in the backlog; mail about no record (reports, summaries, alerts) only
    # administrators, and its recipients in their own mailboxes.
    about_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    about_id = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(status="queued"), name="outbox_due"
            ),
            models.Index(
                fields=["claimed_until"], condition=Q(status="sending"), name="outbox_claimed"
            ),
            models.Index(fields=["source", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {', '.join(self.to)}"


class Suppression(models.Model):
    """An address no email of Vigil may go to. Lifting keeps the row (lifted_at set), so the
    daily build, which skips addresses already listed, does not bring a lifted address back."""

    class Source(models.TextChoices):
        REJECTED = "rejected", "Rejected contact"
        BOUNCE = "bounce", "Bounce"
        COMPLAINT = "complaint", "Spam complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
        MANUAL = "manual", "Added by staff"

    address = models.CharField(
        max_length=320,
        unique=True,
        help_text="Trimmed, lower-cased, with an IDN domain in its ASCII (punycode) form.",
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    reason = models.CharField(max_length=500, help_text="Why the address is suppressed.")
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when an administrator lifted the suppression."
    )

    class Meta:
        permissions = [("lift_suppression", "Can lift a suppression")]

    def __str__(self) -> str:
        return self.address

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class SuppressionLift(models.Model):
    """Audit: an administrator lifted a suppression (who, when, why)."""

    suppression = models.ForeignKey(Suppression, on_delete=models.CASCADE, related_name="lifts")
    address = models.CharField(max_length=320)
    previous_source = models.CharField(max_length=16, choices=Suppression.Source.choices)
    previous_reason = models.CharField(max_length=500)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    lifted_at = models.DateTimeField()
    why = models.TextField()

    def __str__(self) -> str:
        return f"{self.address} lifted {self.lifted_at:%Y-%m-%d}"


class TrackingEvent(models.Model):
    """An ESP event (bounce, complaint, unsubscribe) already acted on. UNIQUE on the provider's
    event id: a provider that posts the same event again changes nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    esp = models.CharField(max_length=32)
    event_type = models.CharField(max_length=32)
    recipient = models.CharField(max_length=320)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.recipient}"


class Mailbox(models.Model):
    """A user's mailbox that Vigil reads (INBOX and Sent) into the email backlog. Its secret (an
    OAuth refresh token or an IMAP password) is stored encrypted (mailsync.crypto) and never
    shown: not in the admin, logs, error reports or job output."""

    class Provider(models.TextChoices):
        GOOGLE = "google", "Google"
        MICROSOFT = "microsoft", "Microsoft 365"
        IMAP = "imap", "Other IMAP server"

    class Auth(models.TextChoices):
        OAUTH2 = "oauth2", "OAuth 2.0 (XOAUTH2)"
        PASSWORD = "password", "Password"

    class Security(models.TextChoices):
        SSL = "ssl", "SSL/TLS"
        STARTTLS = "starttls", "STARTTLS"
        NONE = "none", "None (local servers only)"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be connected"
        ACTIVE = "active", "Connected"
        RECONNECT = "reconnect", "Needs reconnecting"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailboxes"
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    auth = models.CharField(max_length=16, choices=Auth.choices)
    address = models.EmailField(help_text="The mailbox's email address.")
    username = models.CharField(max_length=320, help_text="The IMAP login (often the address).")
    imap_host = models.CharField(max_length=255)
    imap_port = models.PositiveIntegerField(default=993)
    imap_security = models.CharField(max_length=16, choices=Security.choices, default=Security.SSL)
    secret = models.BinaryField(
        editable=False, default=b"", help_text="Encrypted refresh token or password."
    )
    access_token = models.BinaryField(editable=False, default=b"")
    access_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Sync state: the job queues a due mailbox (queued_at) and a worker claims it (claim,
    # claimed_until); a second task for the same queueing, or a second worker, finds it taken.
    next_sync_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    claim = models.CharField(max_length=64, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed syncs in a row.")
    last_error = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    syncs = models.PositiveIntegerField(default=0, help_text="Syncs completed.")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "address"], name="mailbox_once_per_owner")
        ]
        indexes = [
            models.Index(fields=["next_sync_at"], condition=Q(status="active"), name="mailbox_due")
        ]

    def __str__(self) -> str:
        return self.address


class MailFolder(models.Model):
    """Where the sync stopped in one folder: committed with the messages it stored."""

    class Role(models.TextChoices):
        INBOX = "inbox", "Inbox"
        SENT = "sent", "Sent"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folders")
    role = models.CharField(max_length=8, choices=Role.choices)
    name = models.CharField(max_length=255, help_text="The folder's name on the server.")
    uidvalidity = models.BigIntegerField(null=True)
    last_uid = models.BigIntegerField(default=0)
    highestmodseq = models.BigIntegerField(null=True)
    uidnext = models.BigIntegerField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "role"], name="mailfolder_role_once")
        ]

    def __str__(self) -> str:
        return f"{self.mailbox} {self.name}"


class BacklogEmail(models.Model):
    """One email as a mailbox holds it, or as the CRM sent it. Its natural key is its
    content: two mailboxes that hold the same message share one row (a MailboxCopy each);
    a different message under the same Message-ID is a row of its own, so a copy in one
    mailbox can never show or change what another mailbox holds."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", "Received"
        OUTBOUND = "outbound", "Sent"

    class Kind(models.TextChoices):
        PERSON = "person", "Written by a person"
        AUTO_REPLY = "auto_reply", "Automatic reply"
        DELIVERY_REPORT = "delivery_report", "Delivery report"

    content_key = models.CharField(
        max_length=255,
        unique=True,
        help_text="A hash of what the email says (transport headers left out), or "
        "outbox:<id> for the email the CRM sent.",
    )
    message_key = models.CharField(
        max_length=255, db_index=True, help_text="The Message-ID as a key: not unique."
    )
    message_id = models.CharField(max_length=998, blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list, blank=True)
    thread_key = models.CharField(max_length=255, db_index=True)
    from_name = models.CharField(max_length=255, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    date = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True, help_text="Sanitised; remote images removed.")
    attachments = models.JSONField(default=list, blank=True)
    raw_size = models.PositiveIntegerField(default=0)
    raw = models.BinaryField(
        null=True,
        blank=True,
        help_text="The message as received, kept when it could not be parsed or its parse "
        "noted a problem (up to VIGIL_MAILSYNC_RAW_KEEP_BYTES), for reparse_emails.",
    )
    raw_compressed = models.BooleanField(
        default=False, help_text="raw is zlib-compressed (rows stored before 0008 are not)."
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    sent_from_crm = models.BooleanField(
        default=False, help_text="The email of an outbox message, or a copy with its content."
    )
    outbox = models.OneToOneField(
        OutboxMessage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="backlog",
    )
    parse_warnings = models.JSONField(default=list, blank=True)
    unparsed = models.BooleanField(default=False)
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.PERSON,
        help_text="Who wrote it: a person, an automatic reply, or a delivery report.",
    )
    delivery_report = models.JSONField(
        default=list,
        blank=True,
        help_text="A delivery report's recipients: address, action, status, diagnostic.",
    )
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["thread_key", "date"]),
            # The email list, newest first (an undated email at the time it was stored), read
            # page by page from a cursor on (sort time, id): mailsync.backlog.newest_page.
            models.Index(
                Coalesce("date", "created_at").desc(), F("id").desc(), name="backlogemail_newest"
            ),
            # The same for "sent from the CRM", a small part of the backlog (mailsync 0012).
            models.Index(
                Coalesce("date", "created_at").desc(),
                F("id").desc(),
                condition=Q(sent_from_crm=True),
                name="backlogemail_from_crm",
            ),
        ]
        # And, on PostgreSQL only, a GIN index on the search document (migration 0009,
        # mailsync.backlog.SEARCH_DOCUMENT).

    def __str__(self) -> str:
        return self.subject or self.message_key


class MailboxCopy(models.Model):
    """Where a backlog email was seen: one row per (mailbox, folder) it sits in."""

    email = models.ForeignKey(BacklogEmail, on_delete=models.CASCADE, related_name="copies")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="copies")
    folder = models.CharField(max_length=8, choices=MailFolder.Role.choices)
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    gone_at = models.DateTimeField(
        null=True, blank=True, help_text="When a sync found it no longer on the server."
    )
    # The email's place in the list (its date, or when it was stored if it has none), kept
    # here so that a mailbox's mail can be read newest first from its own index: a rep's
    # mailbox holds a small part of the backlog, which a walk of the backlog's own order
    # would check row by row. Written with the copy (backlog.store) and again when the
    # email's date changes (backlog.reparse); always Coalesce(email.date, email.created_at).
    sort_at = models.DateTimeField(editable=False)
    # And the email's direction and origin (which never change once it is stored), for the
    # list's filters on that walk.
    direction = models.CharField(
        max_length=8, choices=BacklogEmail.Direction.choices, editable=False
    )
    sent_from_crm = models.BooleanField(editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "folder", "email"], name="mailboxcopy_once_per_folder"
            )
        ]
        indexes = [
            # The email list of a user who may see some mailboxes, one mailbox at a time
            # (mailsync.backlog.newest_page), from a cursor on (sort time, email id).
            models.Index(
                fields=["mailbox", "-sort_at", "-email"],
                include=["folder", "direction", "sent_from_crm"],
                name="mailboxcopy_newest",
            ),
            # The same for "sent from the CRM" (mailsync 0012).
            models.Index(
                fields=["mailbox", "-sort_at", "-email"],
                include=["folder", "direction"],
                condition=Q(sent_from_crm=True),
                name="mailboxcopy_from_crm",
            ),
        ]

    def save(self, *args, **kwargs) -> None:
        if self._state.adding:
            self.sort_at = self.email.date or self.email.created_at
            self.direction = self.email.direction
            self.sent_from_crm = self.email.sent_from_crm
        super().save(*args, **kwargs)


class EmailAddress(models.Model):
    """An address on a backlog email (from, to or cc), normalised: how emails are linked to
    contacts, RPHs and accounts, whichever was created first."""

    class Role(models.TextChoices):
        FROM = "from", "From"
        TO = "to", "To"
        CC = "cc", "Cc"

    email = models.ForeignKey(BacklogEmail, on_delete=models.CASCADE, related_name="addresses")
    address = models.CharField(max_length=320, db_index=True)
    role = models.CharField(max_length=4, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["email", "address", "role"], name="emailaddress_once")
        ]


class LinkedAddress(models.Model):
    """An address linked by hand to a contact, lead or account: its mail, past and future,
    is that record's mail, as if the record carried the address (mailsync.backlog.addresses_of).
    Exactly one of contact, rph and account is set."""

    address = models.CharField(
        max_length=320, help_text="Normalised as the backlog's addresses are (lower-cased, IDN)."
    )
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    rph = models.ForeignKey(
        "crm.RPH", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    account = models.ForeignKey(
        "crm.Account", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    email = models.ForeignKey(
        BacklogEmail,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The email it was linked from.",
    )
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    linked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(contact__isnull=False, rph__isnull=True, account__isnull=True)
                | Q(contact__isnull=True, rph__isnull=False, account__isnull=True)
                | Q(contact__isnull=True, rph__isnull=True, account__isnull=False),
                name="linkedaddress_one_record",
            ),
            # Leading on the address: the index the email list's "not linked" filter reads.
            models.UniqueConstraint(fields=["address", "contact"], name="linkedaddress_contact"),
            models.UniqueConstraint(fields=["address", "rph"], name="linkedaddress_rph"),
            models.UniqueConstraint(fields=["address", "account"], name="linkedaddress_account"),
        ]

    def __str__(self) -> str:
        return self.address
