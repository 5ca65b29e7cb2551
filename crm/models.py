"""Core sales objects, and the two tables of the job engine (JobRun, JobLock)."""

from datetime import time, timedelta
from functools import cache
from zoneinfo import available_timezones

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Now, Trim
from django.utils import timezone

from crm.countries import validate_country


def validate_work_days(value: str) -> None:
    """ISO weekdays, each once: "12345" is Monday to Friday."""
    if value and (not set(value) <= set("1234567") or len(set(value)) != len(value)):
        raise ValidationError(
            "Working days are ISO weekday digits, each once: Monday 1 … Sunday 7, e.g. 12345.",
            code="invalid_work_days",
        )


def validate_hours(starts, ends) -> None:
    """Both or neither. An end at or before the start is on the next day: a night shift
    (22:00–06:00), or round the clock (00:00–00:00)."""
    if (starts is None) != (ends is None):
        raise ValidationError("Give both the start and the end of the working day, or neither.")


class OwnHours(models.Model):
    """Working days and hours of their own (a user's, a team's shift), else the company's
    (WorkingCalendar): a user's in their time zone; a team's are its members' unless they
    have their own, and the hours a dispatch team's alerts go out in."""

    work_days = models.CharField(
        max_length=7,
        blank=True,
        default="",
        db_default="",
        validators=[validate_work_days],
        help_text="The days worked, Monday 1 … Sunday 7, e.g. 12345; blank: the company's.",
    )
    day_starts = models.TimeField(null=True, blank=True, help_text="Blank: the company's.")
    day_ends = models.TimeField(
        null=True,
        blank=True,
        help_text="Blank: the company's. At or before the start: the next day (a night shift).",
    )

    class Meta:
        abstract = True


class Team(OwnHours):
    class Kind(models.TextChoices):
        SALES = "sales", "Sales team"
        VISITING = "visiting", "Visiting / inspection team"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SALES)
    # A team in another region (a visiting team) keeps that region's public holidays.
    holiday_country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        db_default="",
        help_text="ISO 3166 code of the country whose public holidays this team keeps, e.g. "
        "DE; blank: the company's.",
    )
    holiday_subdivision = models.CharField(
        max_length=32, blank=True, default="", db_default="", help_text="e.g. BY; blank: none."
    )

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from crm.workingtime import clean_holiday_region

        validate_hours(self.day_starts, self.day_ends)
        clean_holiday_region(self)


@cache
def time_zones() -> frozenset[str]:
    # Read once: the tz database on disk does not change under a running process.
    return frozenset(available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in time_zones():
        raise ValidationError(
            "“%(value)s” is not a time zone Vigil knows; choose one from the list, "
            "e.g. Europe/Paris.",
            code="invalid_time_zone",
            params={"value": value},
        )


class User(OwnHours, AbstractUser):
    class Role(models.TextChoices):
        REP = "rep", "Sales rep"
        MANAGER = "manager", "Manager / account manager"
        ADMIN = "admin", "Administrator"
        # Sees every invoice and records payments; sales records by the team rule like anyone.
        FINANCE = "finance", "Finance"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REP)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    manager = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reports",
        help_text="Who this user answers to; receives escalations about their work.",
    )
    session_epoch = models.PositiveIntegerField(
        default=0, editable=False, help_text="Raised to end every session of this user at once."
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        # Rows written by SQL (benchmarks, an older release during a deploy) get it too.
        db_default="",
        validators=[validate_time_zone],
        help_text="The IANA time zone dates and times are shown in for this user, e.g. "
        "America/New_York; blank: the company's time zone.",
    )

    alerts_at_once = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Overdue-job alerts reach this user at once, even off duty; otherwise they "
        "wait for the next working hour (when the company counts working time).",
    )
    morning_digest = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Email a digest of the day's work at the start of each working day.",
    )
    last_digest_on = models.DateField(
        null=True, blank=True, editable=False, help_text="The local day the last digest was for."
    )

    class Meta:
        indexes = [models.Index(fields=["role"]), models.Index(fields=["team", "role"])]

    # What names a person on a page (__str__), read alone for a list of people (crm.forms).
    LABEL_FIELDS = ("first_name", "last_name", "username")

    def __str__(self) -> str:
        return self.label_of(self.first_name, self.last_name, self.username)

    @staticmethod
    def label_of(first_name: str, last_name: str, username: str) -> str:
        """Their full name (get_full_name), or their username when they have none."""
        return f"{first_name} {last_name}".strip() or username

    @property
    def is_administrator(self) -> bool:
        return self.is_superuser or self.role == self.Role.ADMIN

    def clean(self) -> None:
        super().clean()
        validate_hours(self.day_starts, self.day_ends)

    def get_session_auth_hash(self) -> str:
        # Every session stores this hash and is dropped when it no longer matches, so raising
        # session_epoch logs the user out of every browser and device at once.
        return f"{super().get_session_auth_hash()}.{self.session_epoch}"


class Account(models.Model):
    """An advertiser or client."""

    name = models.CharField(max_length=200)
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_accounts",
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL)
    country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        db_default="",
        validators=[validate_country],
        help_text="ISO 3166 code, e.g. DE: the time zone and holidays its leads are emailed in.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The account list: its orders (name, newest), everyone's (an administrator's),
            # each within a team or a manager's. By name, the key rides in the index: a search
            # walks it without reading the table (crm.matching, crm 0024).
            models.Index(fields=["name", "id"], name="account_name"),
            models.Index(fields=["team", "name", "id"], name="account_team_name"),
            models.Index(fields=["-created_at", "-id"], name="account_created"),
            models.Index(fields=["team", "-created_at", "-id"], name="account_team_created"),
            models.Index(fields=["account_manager", "name", "id"], name="account_manager_name"),
        ]

    def __str__(self) -> str:
        return self.name


def copied_team() -> models.ForeignKey:
    """The team of a row's account (a lead's, task's or event's: its owner's), copied by the
    database whenever the row or its account (owner) changes (crm.triggers.team_copy); never
    written by Vigil. Not indexed alone: the lists' indexes lead with it."""
    return models.ForeignKey(
        Team,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.DO_NOTHING,  # the parent's team is set to NULL, and so is this
        db_constraint=False,
        db_index=False,
        related_name="+",
    )


class Contact(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        BOUNCED = "bounced", "Bounced"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        REJECTED = "rejected", "Rejected"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="Why the contact has its status, e.g. why it was rejected.",
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # A team's contact list reads this table alone (contact_team_name_email leads with it).
    team = copied_team()

    class Meta:
        indexes = [
            models.Index(fields=["status"]),
            models.Index(fields=["email"]),
            # A team's contact list: its order, and each status in that order. The email rides
            # along, so that a search walks the order without reading the table (crm 0017).
            models.Index(
                fields=["team", "name", "id"], include=["email"], name="contact_team_name_email"
            ),
            models.Index(fields=["team", "status", "name", "id"], name="contact_team_status_name"),
            # The contact list: its default order, and each filter in that order.
            models.Index(fields=["name", "id"], include=["email"], name="contact_name_email"),
            models.Index(fields=["status", "name", "id"], name="contact_status_name"),
            models.Index(fields=["account", "name", "id"], name="contact_account_name"),
            # An address as the backlog lists it: whose mail an email is (crm 0019).
            models.Index(Lower(Trim("email")), name="contact_email_listed"),
        ]

    def __str__(self) -> str:
        return self.name


class RPH(models.Model):
    """A lead record, worked through a status workflow until converted or closed."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        NURTURE_P2 = "nurture_p2", "Nurture P2"
        CONVERTED = "converted", "Converted"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200)
    company = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    team = copied_team()  # the owner's

    class Source(models.TextChoices):
        WEB = "web", "Website"
        REFERRAL = "referral", "Referral"
        EVENT = "event", "Event"
        COLD_CALL = "cold_call", "Cold call"
        IMPORT = "import", "Import"
        OTHER = "other", "Other"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    status_changed_at = models.DateTimeField()
    source = models.CharField(
        max_length=16,
        choices=Source.choices,
        blank=True,
        default="",
        # Rows written by SQL (imports, benchmarks) get it too.
        db_default="",
        help_text="Where the lead came from.",
    )
    last_activity_at = models.DateTimeField(
        default=timezone.now,
        db_default=Now(),
        editable=False,  # set by the lead services, not typed
        help_text="The last time someone created, edited, moved or converted the lead.",
    )
    # Where the lead is, for sending in their working day; blank: from its contact's account,
    # else the company's (nurture).
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        validators=[validate_time_zone],
        help_text="The lead's IANA time zone, e.g. America/Chicago; blank: its country's.",
    )
    country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        db_default="",
        validators=[validate_country],
        help_text="ISO 3166 code, e.g. DE; blank: its contact's account's.",
    )

    class Meta:
        verbose_name = "RPH lead"
        indexes = [
            models.Index(fields=["status", "status_changed_at"]),
            # The lead list: its default order, and each filter in that order.
            models.Index(fields=["-last_activity_at", "-id"], name="rph_activity"),
            models.Index(fields=["owner", "-last_activity_at", "-id"], name="rph_owner_activity"),
            # A manager's: their team's leads (crm 0016), with what a search tests, so that a
            # search walks it alone (crm 0027).
            models.Index(
                fields=["team", "-last_activity_at", "-id"],
                include=["name", "company", "email"],
                name="rph_team_activity_search",
            ),
            # A rep's leads in one status: counted from the index alone (crm 0011).
            models.Index(
                fields=["owner", "status", "-last_activity_at", "-id"],
                name="rph_owner_status_activity",
            ),
            models.Index(fields=["status", "-last_activity_at", "-id"], name="rph_status_activity"),
            models.Index(fields=["source", "-last_activity_at", "-id"], name="rph_source_activity"),
            models.Index(fields=["name", "id"], name="rph_name"),
            # An address as the backlog lists it: whose mail an email is (crm 0019).
            models.Index(Lower(Trim("email")), name="rph_email_listed"),
        ]

    def __str__(self) -> str:
        return self.name

    # One action moves a lead from one status to the next; "converted" only by converting it.
    MOVES: dict[str, tuple[str, ...]] = {
        Status.NEW: (Status.CONTACTED, Status.NURTURE_P2, Status.CLOSED),
        Status.CONTACTED: (Status.NURTURE_P2, Status.CLOSED),
        Status.NURTURE_P2: (Status.CONTACTED, Status.CLOSED),
        Status.CLOSED: (Status.CONTACTED,),
        Status.CONVERTED: (),
    }


class LeadStatusChange(models.Model):
    """One status move of a lead: who moved it, when, from what to what."""

    rph = models.ForeignKey(RPH, on_delete=models.CASCADE, related_name="status_changes")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    at = models.DateTimeField()
    from_status = models.CharField(max_length=16, choices=RPH.Status.choices)
    to_status = models.CharField(max_length=16, choices=RPH.Status.choices)

    class Meta:
        indexes = [models.Index(fields=["rph", "-at", "-id"], name="lead_status_change_rph")]

    def __str__(self) -> str:
        return f"{self.rph_id}: {self.from_status} → {self.to_status}"


class ContactStatusChange(models.Model):
    """One status change of a contact: who made it, when, from what to what, and why."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="status_changes")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    at = models.DateTimeField()
    from_status = models.CharField(max_length=16, choices=Contact.Status.choices)
    to_status = models.CharField(max_length=16, choices=Contact.Status.choices)
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["contact", "-at", "-id"], name="contact_status_change_contact")
        ]

    def __str__(self) -> str:
        return f"{self.contact_id}: {self.from_status} → {self.to_status}"


class Opportunity(models.Model):
    class Stage(models.TextChoices):
        PROSPECTING = "prospecting", "Prospecting"
        QUALIFICATION = "qualification", "Qualification"
        PROPOSAL = "proposal", "Proposal"
        NEGOTIATION = "negotiation", "Negotiation"
        WON = "won", "Won"
        LOST = "lost", "Lost"

    OPEN_STAGES = [Stage.PROSPECTING, Stage.QUALIFICATION, Stage.PROPOSAL, Stage.NEGOTIATION]

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="opportunities")
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.PROSPECTING)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    expected_close = models.DateField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "opportunities"
        indexes = [
            models.Index(fields=["stage", "expected_close"]),
            # Covers the dashboard's pipeline (count and sum per stage) without touching rows.
            models.Index(
                fields=["owner", "stage"], include=["amount"], name="opportunity_pipeline"
            ),
            # The admin's list and its autocomplete, by name.
            models.Index(fields=["name", "id"], name="opportunity_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    class Kind(models.TextChoices):
        ACTION = "action", "Action"
        INSPECTION = "inspection", "Inspection"
        FOLLOW_UP = "follow_up", "Follow-up"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ACTION)
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE)
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.CASCADE)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True)
    # A manager's dashboard reads a team's open tasks through task_team_status_due (crm 0020).
    team = copied_team()

    class Meta:
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["owner", "status", "due_at"]),
            models.Index(fields=["team", "status", "due_at"], name="task_team_status_due"),
        ]

    def __str__(self) -> str:
        return self.title


class Event(models.Model):
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField()
    # A manager's dashboard reads a team's week through event_team_start (crm 0020).
    team = copied_team()

    class Meta:
        indexes = [
            models.Index(fields=["start_at"]),
            models.Index(fields=["owner", "start_at"]),
            models.Index(fields=["team", "start_at"], name="event_team_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_at__gte=models.F("start_at")), name="event_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class Dispatch(models.Model):
    """A job sent to a team (typically a visiting team), with a time it is due by."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = [Status.SCHEDULED, Status.IN_PROGRESS]

    title = models.CharField(max_length=200)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="dispatches")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.CASCADE)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    scheduled_at = models.DateTimeField()
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    # The team of its account (none without one), which sees it as well as the team it is
    # sent to; copied by the database (crm 0020).
    account_team = copied_team()

    class Meta:
        verbose_name_plural = "dispatches"
        indexes = [
            # Open dispatches by due time: the overdue scan and the dashboard's list.
            models.Index(
                fields=["due_at"],
                condition=Q(status__in=["scheduled", "in_progress"]),
                name="dispatch_open_due",
            ),
            models.Index(fields=["team", "status"]),
            # The dashboard's count of the open dispatches on a team's accounts.
            models.Index(
                fields=["account_team"],
                include=["team"],
                condition=Q(status__in=["scheduled", "in_progress"]),
                name="dispatch_open_by_account_team",
            ),
        ]

    def __str__(self) -> str:
        return self.title


# --- The job engine ------------------------------------------------------------------------------


class WorkingCalendar(models.Model):
    """The company's working time (one row, edited in the admin): the days and hours people
    work, in each one's own time zone, and the public holidays they keep (crm.workingtime)."""

    enabled = models.BooleanField(
        default=False,
        help_text="Count deadlines in working time: holidays, absences and hours off do not "
        "run down a grace period. Off: the wall clock, as Vigil always has.",
    )
    work_days = models.CharField(
        max_length=7,
        blank=True,  # refused in clean(), in one line
        default="12345",
        validators=[validate_work_days],
        help_text="The days people work, Monday 1 … Sunday 7, e.g. 12345.",
    )
    day_starts = models.TimeField(default=time(9))
    day_ends = models.TimeField(
        default=time(17), help_text="At or before the start: the next day (a night shift)."
    )
    holiday_country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        help_text="ISO 3166 code of the country whose public holidays everyone keeps, e.g. "
        "FR; blank: none.",
    )
    holiday_subdivision = models.CharField(
        max_length=32, blank=True, default="", help_text="A region of it, e.g. BY; blank: none."
    )

    class Meta:
        verbose_name = verbose_name_plural = "working calendar"

    def __str__(self) -> str:
        return "Working calendar"

    def clean(self) -> None:
        from crm.workingtime import clean_holiday_region

        if not self.work_days:
            raise ValidationError({"work_days": "Name at least one working day."})
        validate_hours(self.day_starts, self.day_ends)
        clean_holiday_region(self)

    @classmethod
    def current(cls) -> "WorkingCalendar":
        return cls.objects.first() or cls.objects.create()

    @classmethod
    def read(cls) -> "WorkingCalendar":
        """The row current() reads, without creating one (two runners at once would each
        create one): unsaved defaults when there is none."""
        return cls.objects.order_by("pk").first() or cls()


class Holiday(models.Model):
    """A day off an administrator adds (a company holiday, a bridge day): for everyone, or
    for one team."""

    date = models.DateField()
    name = models.CharField(max_length=100)
    team = models.ForeignKey(
        Team,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="holidays",
        help_text="Blank: the whole company.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["date", "team"],
                name="holiday_once_a_day",
                violation_error_message="This team already has a day off on that date.",
            ),
            models.UniqueConstraint(
                fields=["date"],
                condition=Q(team=None),
                name="company_holiday_once_a_day",
                violation_error_message="The company already has a day off on that date.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.date:%Y-%m-%d})"


class Absence(models.Model):
    """A user away from work: leave, sickness, training. Whole days, in the user's zone,
    first and last included; their delegate (or else their manager) stands in."""

    class Kind(models.TextChoices):
        LEAVE = "leave", "Leave"
        SICK = "sick", "Sick"
        TRAINING = "training", "Training"

    # An absence is a stretch of days, not years: a typo (2062) must not hide someone for
    # decades, and a calendar walks these days one by one.
    LONGEST = timedelta(days=366)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="absences"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LEAVE)
    first_day = models.DateField()
    last_day = models.DateField()
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="delegations",
        help_text="Who sees this user's blocking items meanwhile; blank: their manager.",
    )
    note = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [models.Index(fields=["user", "last_day"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(last_day__gte=models.F("first_day")), name="absence_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_kind_display()} {self.first_day} – {self.last_day}"

    def clean(self) -> None:
        if self.first_day and self.last_day:
            if self.last_day < self.first_day:
                raise ValidationError({"last_day": "The last day comes on or after the first."})
            if self.last_day - self.first_day >= self.LONGEST:
                raise ValidationError({"last_day": "An absence lasts a year at most."})
        if self.delegate_id and self.delegate_id == self.user_id:
            raise ValidationError({"delegate": "A delegate is someone else."})


class CalendarFeed(models.Model):
    """A user's private calendar feed (crm/feeds.py): its secret address is shown once, and
    only a hash of its key is kept; replacing or revoking it ends the old address."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_read_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"Calendar feed of {self.user}"


class JobRun(models.Model):
    """One run of a job: the ledger behind `manage.py jobs`, the admin and the bug detector."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        CATCHUP = "catchup", "Catch-up"
        MANUAL = "manual", "Manual (runjob)"
        ADMIN = "admin", "Admin (Run now)"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        ABANDONED = "abandoned", "Abandoned (its runner stopped)"

    SCHEDULED_TRIGGERS = [Trigger.SCHEDULE, Trigger.CATCHUP]

    job = models.CharField(max_length=64)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    slot = models.DateTimeField(
        null=True, blank=True, help_text="The scheduled time this run stands for."
    )
    as_of = models.DateTimeField()
    dry_run = models.BooleanField(default=False)
    missed_slots = models.PositiveIntegerField(
        default=0, help_text="Earlier slots missed while down, covered by this run."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    host = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # A scheduled slot runs at most once, however many Beats or workers race for it;
            # a run whose runner died (killed, OOM, deploy) leaves the slot to a new run.
            models.UniqueConstraint(
                fields=["job", "slot"],
                condition=Q(trigger__in=["schedule", "catchup"]) & ~Q(status="abandoned"),
                name="jobrun_one_run_per_slot",
            ),
        ]
        indexes = [
            models.Index(fields=["job", "-started_at"]),
            models.Index(fields=["status", "-started_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.job} @ {self.as_of:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def duration_s(self) -> float | None:
        if self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


class JobLock(models.Model):
    """A lease per job: whoever holds an unexpired lease is the only one running the job.
    The holder renews it while running; a killed holder's lease simply runs out."""

    job = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=200, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.job}: {self.holder or 'free'}"


class NotDumped(models.Manager):
    """No rows: the default manager of a table the database keeps, which dumpdata reads. A
    fixture's records make their rows again through the triggers as loaddata saves them."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().none()


class OwnerRollup(models.Model):
    """A rollup kept by the database (crm/rollups.py), a row per change to one person's
    records: summed per key, the rows give what the person has."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )

    dumped = NotDumped()
    objects = models.Manager()

    class Meta:
        abstract = True
        default_manager_name = "dumped"


class OwnerPipeline(OwnerRollup):
    """Changes to one person's opportunities in one stage: how many, their amount. Added up
    per owner and stage, the rows give their pipeline. Folded after the nightly notifications
    run; a dashboard adds up its people's instead of every opportunity."""

    stage = models.CharField(max_length=16)
    opportunities = models.BigIntegerField()
    amount = models.DecimalField(max_digits=24, decimal_places=2)

    class Meta(OwnerRollup.Meta):
        indexes = [models.Index(fields=["owner", "stage"], name="ownerpipeline_owner_stage")]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.stage}: {self.opportunities}"


class OwnerTaskDay(OwnerRollup):
    """Changes to one person's open tasks that fall due on one day (UTC): how many. Added up,
    the rows give how many are due before a day."""

    due_day = models.DateField()
    tasks = models.BigIntegerField()

    class Meta(OwnerRollup.Meta):
        # With the count, so that a team's sum reads the index alone: its 20 people's ranges
        # of days (0.4 ms) instead of a scan of everyone's rows (3 ms at 200 people).
        indexes = [
            models.Index(
                fields=["owner", "due_day"], include=["tasks"], name="ownertaskday_owner_day_tasks"
            )
        ]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.due_day}: {self.tasks}"
